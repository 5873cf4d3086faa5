//! Reads the kernel's socket tables, `/proc/net/{tcp,tcp6,udp,udp6}` (of the
//! agent's network namespace): local and remote address, state, owner uid and
//! socket inode of every socket.
//!
//! Addresses are printed by the kernel as hex words in host byte order; ports as
//! hex numbers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::record::Transport;

/// TCP state `LISTEN`.
const TCP_LISTEN: u8 = 0x0a;
/// TCP state `CLOSE`: what an unconnected UDP socket shows.
const UDP_UNCONNECTED: u8 = 0x07;

/// One row of a socket table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEntry {
    pub transport: Transport,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

impl SocketEntry {
    /// A TCP socket in `LISTEN`, or a UDP socket bound to a port and not connected.
    pub fn is_listener(&self) -> bool {
        match self.transport {
            Transport::Tcp => self.state == TCP_LISTEN,
            Transport::Udp => {
                self.state == UDP_UNCONNECTED && self.remote.1 == 0 && self.local.1 != 0
            }
            Transport::Icmp => false,
        }
    }
}

/// Where the socket tables are (`/proc/net` unless a test says otherwise).
#[derive(Debug, Clone)]
pub struct SocketTables {
    dir: PathBuf,
}

impl Default for SocketTables {
    fn default() -> Self {
        SocketTables {
            dir: PathBuf::from("/proc/net"),
        }
    }
}

impl SocketTables {
    /// Tables under `dir` (files `tcp`, `tcp6`, `udp`, `udp6`).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        SocketTables { dir: dir.into() }
    }

    /// Every socket of `transports` (a missing table, e.g. no IPv6, is empty).
    pub fn read(&self, transports: &[Transport]) -> Vec<SocketEntry> {
        let mut entries = Vec::new();
        for &transport in transports {
            let names: &[&str] = match transport {
                Transport::Tcp => &["tcp", "tcp6"],
                Transport::Udp => &["udp", "udp6"],
                Transport::Icmp => &[],
            };
            for name in names {
                entries.extend(read_table(&self.dir.join(name), transport));
            }
        }
        entries
    }
}

fn read_table(path: &Path, transport: Transport) -> Vec<SocketEntry> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_table(&text, transport),
        Err(error) => {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(path = %path.display(), %error, "cannot read socket table");
            }
            Vec::new()
        }
    }
}

/// Parses one table's text; malformed rows are skipped.
pub fn parse_table(text: &str, transport: Transport) -> Vec<SocketEntry> {
    text.lines()
        .skip(1)
        .filter_map(|line| parse_row(line, transport))
        .collect()
}

fn parse_row(line: &str, transport: Transport) -> Option<SocketEntry> {
    let mut fields = line.split_ascii_whitespace();
    let _slot = fields.next()?;
    let local = parse_endpoint(fields.next()?)?;
    let remote = parse_endpoint(fields.next()?)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt
    let mut fields = fields.skip(3);
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some(SocketEntry {
        transport,
        local,
        remote,
        state,
        uid,
        inode,
    })
}

fn parse_endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(host_word(address)?)),
        32 => {
            let mut octets = [0u8; 16];
            for (index, chunk) in octets.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&host_word(address.get(index * 8..index * 8 + 8)?)?);
            }
            // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d: report them as IPv4.
            IpAddr::V6(Ipv6Addr::from(octets)).to_canonical()
        }
        _ => return None,
    };
    Some((ip, port))
}

/// A hex word printed in host byte order, as network-order bytes.
fn host_word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   116        0 23456 1 0000000000000000 100 0 0 10 0
   1: 0500000A:D431 0900000A:115C 01 00000000:00000000 02:000A7C2A 00000000  1000        0 98765 2 0000000000000000 20 4 30 10 -1
   2: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: B80D0120000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2 0000000000000000 0
  101: 0500000A:A000 3500000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 556 2 0000000000000000 0
";

    // The sample rows are from a little-endian machine (x86-64, aarch64).
    #[test]
    fn parses_ipv4_rows_and_skips_garbage() {
        let rows = parse_table(TCP, Transport::Tcp);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].local, ("127.0.0.1".parse().unwrap(), 3306));
        assert!(rows[0].is_listener());
        assert_eq!((rows[0].uid, rows[0].inode), (116, 23456));
        assert_eq!(rows[1].local, ("10.0.0.5".parse().unwrap(), 54321));
        assert_eq!(rows[1].remote, ("10.0.0.9".parse().unwrap(), 4444));
        assert!(!rows[1].is_listener());
    }

    #[test]
    fn parses_ipv6_rows() {
        let rows = parse_table(TCP6, Transport::Tcp);
        assert_eq!(rows[0].local, ("::".parse().unwrap(), 22));
        assert_eq!(rows[1].local, ("2001:db8::1".parse().unwrap(), 8080));
        assert!(rows.iter().all(SocketEntry::is_listener));
        let mapped = TCP6.replace(
            "B80D0120000000000000000001000000:1F90",
            "0000000000000000FFFF00000500000A:1F90",
        );
        let rows = parse_table(&mapped, Transport::Tcp);
        assert_eq!(
            rows[1].local,
            ("10.0.0.5".parse().unwrap(), 8080),
            "v4-mapped shown as v4"
        );
    }

    #[test]
    fn unconnected_udp_sockets_are_listeners() {
        let rows = parse_table(UDP, Transport::Udp);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_listener(), "bound to :53, not connected");
        assert!(!rows[1].is_listener(), "a connected client socket");
    }

    #[test]
    fn reads_tables_from_a_directory_and_tolerates_missing_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("tcp"), TCP).expect("write tcp");
        std::fs::write(dir.path().join("udp"), UDP).expect("write udp");
        let tables = SocketTables::at(dir.path());
        assert_eq!(tables.read(&[Transport::Tcp]).len(), 2);
        assert_eq!(tables.read(&[Transport::Tcp, Transport::Udp]).len(), 4);
        assert!(
            SocketTables::at(dir.path().join("none"))
                .read(&[Transport::Udp])
                .is_empty()
        );
    }
}
