//! AF_PACKET capture sockets. The socket is created here rather than by pnet so
//! that the BPF filter and receive buffer are in place before pnet binds it to
//! the interface (a socket opened with protocol 0 receives nothing until bound,
//! so no unfiltered packet slips in), and so that a duplicate of it can be kept to
//! read the kernel's drop counters (`PACKET_STATISTICS`).
//!
//! Capabilities: creating the socket needs `CAP_NET_RAW`; attaching a classic BPF
//! filter to one's own socket and reading its statistics need nothing more.
//! `SO_RCVBUF` is capped by `net.core.rmem_max` (raising past it would need
//! `CAP_NET_ADMIN`, which the agent does not ask for); a capped buffer is logged
//! as a warning when the socket opens, as it otherwise shows only as kernel drops.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use super::bpf::{self, Framing};

/// `SOL_PACKET` (linux/socket.h).
const SOL_PACKET: libc::c_int = 263;
/// `PACKET_STATISTICS` (linux/if_packet.h).
const PACKET_STATISTICS: libc::c_int = 6;

/// Why a capture socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot open a packet socket (needs CAP_NET_RAW): {0}")]
    Open(io::Error),
    #[error("cannot attach the bpf filter: {0}")]
    Filter(io::Error),
    #[error("cannot duplicate the packet socket: {0}")]
    Duplicate(io::Error),
}

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct TpacketStats {
    packets: u32,
    drops: u32,
}

/// Reads a capture socket's kernel counters through a duplicate descriptor.
pub struct DropCounter {
    socket: Socket,
}

impl DropCounter {
    /// Packets received and dropped by the kernel since the last call (the kernel
    /// resets its counters on every read).
    pub fn take(&self) -> io::Result<(u64, u64)> {
        let stats = packet_statistics(self.socket.as_raw_fd())?;
        Ok((u64::from(stats.packets), u64::from(stats.drops)))
    }
}

/// Opens an unbound AF_PACKET socket with the filter for `framing` (when `bpf`)
/// and the requested receive buffer. Returns the descriptor to hand to pnet
/// (which takes ownership and binds it) and a [`DropCounter`] on a duplicate.
pub fn open(
    framing: Framing,
    bpf: bool,
    receive_buffer: usize,
) -> Result<(RawFd, DropCounter), SocketError> {
    let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
        .map_err(SocketError::Open)?;
    if bpf {
        let program: Vec<SockFilter> = bpf::program(framing)
            .into_iter()
            .map(|insn| SockFilter::new(insn.code, insn.jt, insn.jf, insn.k))
            .collect();
        socket
            .attach_filter(&program)
            .map_err(SocketError::Filter)?;
    }
    if receive_buffer > 0 {
        match socket
            .set_recv_buffer_size(receive_buffer)
            .and_then(|()| socket.recv_buffer_size())
        {
            Ok(reported) if buffer_capped(receive_buffer, reported) => tracing::warn!(
                requested = receive_buffer,
                granted = reported / 2,
                "capture receive buffer capped by net.core.rmem_max: raise that sysctl \
                 (see deploy/network-capabilities.md) or expect kernel drops under bursts"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, receive_buffer, "cannot set the capture socket's receive buffer");
            }
        }
    }
    let duplicate = socket.try_clone().map_err(SocketError::Duplicate)?;
    Ok((socket.into_raw_fd(), DropCounter { socket: duplicate }))
}

/// Whether the kernel granted less than `requested` bytes of receive buffer,
/// given the `SO_RCVBUF` value it `reported` afterwards (the kernel doubles the
/// granted size for its bookkeeping, and silently caps the request at
/// `net.core.rmem_max`).
pub fn buffer_capped(requested: usize, reported: usize) -> bool {
    reported / 2 < requested
}

#[allow(unsafe_code)]
fn packet_statistics(fd: RawFd) -> io::Result<TpacketStats> {
    let mut stats = TpacketStats::default();
    let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: `stats` is a live, writable `repr(C)` struct laid out as the
    // kernel's `struct tpacket_stats`; `len` holds its exact size and the kernel
    // writes at most that many bytes; `fd` is owned by the `DropCounter` that
    // called us and stays open for the whole call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_PACKET,
            PACKET_STATISTICS,
            (&raw mut stats).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_capped_by_rmem_max_is_noticed() {
        // Requested 4 MiB on a stock kernel (rmem_max 212992): reported 425984.
        assert!(buffer_capped(4 << 20, 2 * 212_992));
        // Granted in full: the kernel reports twice the request.
        assert!(!buffer_capped(4 << 20, 2 * (4 << 20)));
        // Tiny requests are raised to the kernel's minimum, which is not a cap.
        assert!(!buffer_capped(1, 4608));
    }
}
