//! The enricher: one blocking thread between the capture threads and the spool
//! writer. It attaches the local process to each record when that can be known,
//! turns records into wire events, and hands them on in [`Capture`]s (blocking on
//! the agent channel here is fine: capture threads never wait for it, they drop
//! and count when the queue in front of this thread is full).
//!
//! Process attribution ([`SocketOwners`]): the record's local endpoint (the
//! source of outbound records, the destination of inbound ones) is looked up in
//! the socket tables — first an exact match on both endpoints (a connected or
//! accepted socket), else the listener on the local port (an inbound attempt that
//! has not been accepted yet belongs to the listening service) — and the socket
//! inode in the process table. Results are cached per conversation so that a
//! flow summary after the socket closed still names the process seen at connect.
//! Nothing is guessed: no match means no process (the owning user is still
//! reported when the socket was found).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use shaobing_wire::v1::{Direction, Event, Host, NetAction};
use tokio::sync::mpsc;

use super::lru::LruMap;
use super::proc_net::{SocketEntry, SocketTables};
use super::procs::ProcessTable;
use super::record::{self, NetRecord, ProcessInfo, Transport};
use crate::capture::Capture;

/// Events per capture handed to the agent channel.
const EVENTS_PER_CAPTURE: usize = 500;
/// Conversations whose process is remembered.
const OWNER_CACHE: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConversationKey {
    transport: Transport,
    local: (IpAddr, u16),
    remote: (IpAddr, u16),
}

/// Finds the process behind a record's local socket.
pub struct SocketOwners {
    tables: SocketTables,
    processes: ProcessTable,
    cache: LruMap<ConversationKey, Option<ProcessInfo>>,
}

impl SocketOwners {
    pub fn new(tables: SocketTables, processes: ProcessTable) -> Self {
        SocketOwners {
            tables,
            processes,
            cache: LruMap::new(OWNER_CACHE),
        }
    }

    /// The process of each record, in order (`None` where it cannot be known).
    pub fn lookup(&mut self, records: &[NetRecord]) -> Vec<Option<ProcessInfo>> {
        let keys: Vec<Option<ConversationKey>> = records.iter().map(conversation).collect();
        let mut found: Vec<Option<Option<ProcessInfo>>> = keys
            .iter()
            .map(|key| {
                key.as_ref()
                    .and_then(|key| self.cache.get_mut(key).cloned())
            })
            .collect();
        let misses: Vec<Transport> = keys
            .iter()
            .zip(&found)
            .filter(|(key, hit)| key.is_some() && hit.is_none())
            .filter_map(|(key, _)| key.as_ref().map(|k| k.transport))
            .collect();
        if !misses.is_empty() {
            let mut transports = misses;
            transports.sort_by_key(|t| t.name());
            transports.dedup();
            let entries = self.tables.read(&transports);
            let sockets = SocketIndex::new(&entries);
            for (key, slot) in keys.iter().zip(found.iter_mut()) {
                if let (Some(key), None) = (key, &slot) {
                    let owner = self.resolve(key, &sockets);
                    self.cache.insert(key.clone(), owner.clone());
                    *slot = Some(owner);
                }
            }
        }
        found.into_iter().map(Option::flatten).collect()
    }

    fn resolve(&mut self, key: &ConversationKey, sockets: &SocketIndex<'_>) -> Option<ProcessInfo> {
        let socket = sockets.find(key)?;
        let owner = self.processes.owner(socket.inode);
        let user = self.processes.user_name(socket.uid);
        Some(match owner {
            Some(process) => process,
            None => ProcessInfo {
                pid: 0,
                exe: String::new(),
                user,
            },
        })
    }
}

/// The socket tables indexed for lookups by conversation.
struct SocketIndex<'a> {
    connected: HashMap<ConversationKey, &'a SocketEntry>,
    listeners: HashMap<(Transport, u16), Vec<&'a SocketEntry>>,
}

impl<'a> SocketIndex<'a> {
    fn new(entries: &'a [SocketEntry]) -> Self {
        let mut index = SocketIndex {
            connected: HashMap::new(),
            listeners: HashMap::new(),
        };
        for entry in entries {
            if entry.is_listener() {
                index
                    .listeners
                    .entry((entry.transport, entry.local.1))
                    .or_default()
                    .push(entry);
            } else {
                let key = ConversationKey {
                    transport: entry.transport,
                    local: entry.local,
                    remote: entry.remote,
                };
                index.connected.insert(key, entry);
            }
        }
        index
    }

    /// The socket of the conversation itself, else the listener on its local port
    /// (bound to its local address or to the wildcard address).
    fn find(&self, key: &ConversationKey) -> Option<&'a SocketEntry> {
        if let Some(entry) = self.connected.get(key) {
            return Some(entry);
        }
        self.listeners
            .get(&(key.transport, key.local.1))?
            .iter()
            .find(|entry| entry.local.0 == key.local.0 || entry.local.0.is_unspecified())
            .copied()
    }
}

/// The conversation as seen from this host, for records that have a local socket.
fn conversation(record: &NetRecord) -> Option<ConversationKey> {
    if record.transport == Transport::Icmp {
        return None;
    }
    let src = (record.src, record.src_port);
    let dst = (record.dst, record.dst_port);
    let (local, remote) = match record.direction {
        Direction::Outbound | Direction::Local => (src, dst),
        Direction::Inbound => (dst, src),
        Direction::Unspecified => return None,
    };
    Some(ConversationKey {
        transport: record.transport,
        local,
        remote,
    })
}

/// Runs the enricher until every capture thread has gone (or the agent channel
/// closed), flushing everything received.
pub fn run(
    records: Receiver<Vec<NetRecord>>,
    host: Host,
    tx: mpsc::Sender<Capture>,
    mut owners: Option<SocketOwners>,
) {
    loop {
        let mut batch = match records.recv_timeout(Duration::from_millis(500)) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        while batch.len() < EVENTS_PER_CAPTURE {
            match records.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        let processes = match owners.as_mut() {
            Some(owners) => owners.lookup(&batch),
            None => vec![None; batch.len()],
        };
        let events: Vec<Event> = batch
            .iter()
            .zip(&processes)
            .map(|(record, process)| to_event(record, process.as_ref(), &host))
            .collect();
        for chunk in events.chunks(EVENTS_PER_CAPTURE) {
            let capture = Capture {
                events: chunk.to_vec(),
                checkpoint: None,
            };
            if tx.blocking_send(capture).is_err() {
                return;
            }
        }
    }
}

fn to_event(record: &NetRecord, process: Option<&ProcessInfo>, host: &Host) -> Event {
    // DNS lookups name the client's resolver process only when it is local.
    let process = match record.action {
        NetAction::DnsQuery if record.direction == Direction::Inbound => None,
        _ => process,
    };
    let body = record.to_network_event(process);
    record::network_event(host, record::SOURCE_PACKET, record.time_unix_nano, body)
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    fn record(
        action: NetAction,
        direction: Direction,
        src: (&str, u16),
        dst: (&str, u16),
    ) -> NetRecord {
        NetRecord {
            action,
            transport: Transport::Tcp,
            src: src.0.parse().expect("address"),
            src_port: src.1,
            dst: dst.0.parse().expect("address"),
            dst_port: dst.1,
            direction,
            time_unix_nano: 0,
            bytes: 0,
            packets: 0,
            duration_ms: 0,
            dns: None,
        }
    }

    #[test]
    fn finds_this_process_for_connected_and_listening_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = listener.local_addr().expect("addr");
        let client = TcpStream::connect(server).expect("connect");
        let client_addr = client.local_addr().expect("client addr");
        let (accepted, _) = listener.accept().expect("accept");

        let mut owners = SocketOwners::new(SocketTables::default(), ProcessTable::default());
        let local = "127.0.0.1";
        let connect = record(
            NetAction::Connect,
            Direction::Outbound,
            (local, client_addr.port()),
            (local, server.port()),
        );
        // An inbound attempt from elsewhere to the listening port: the listener's process.
        let attempt = record(
            NetAction::Connect,
            Direction::Inbound,
            ("192.0.2.1", 5555),
            (local, server.port()),
        );
        let closed_port = record(
            NetAction::Connect,
            Direction::Inbound,
            ("192.0.2.1", 5555),
            (local, 1),
        );
        let icmp = NetRecord {
            transport: Transport::Icmp,
            ..record(
                NetAction::Icmp,
                Direction::Inbound,
                ("192.0.2.1", 8),
                (local, 0),
            )
        };
        let found = owners.lookup(&[connect.clone(), attempt, closed_port, icmp]);
        let me = std::process::id();
        assert_eq!(found[0].as_ref().map(|p| p.pid), Some(me));
        assert_eq!(found[1].as_ref().map(|p| p.pid), Some(me));
        assert_eq!(found[2], None, "nothing listens on port 1");
        assert_eq!(found[3], None, "icmp has no socket");

        // Once the sockets are gone the cached owner still names the process.
        drop((client, accepted, listener));
        let again = owners.lookup(&[connect]);
        assert_eq!(again[0].as_ref().map(|p| p.pid), Some(me));
    }

    #[test]
    fn enricher_turns_records_into_events_and_ends_with_its_inputs() {
        let (records_tx, records_rx) = std::sync::mpsc::sync_channel(4);
        let (tx, mut rx) = mpsc::channel(4);
        let host = Host {
            hostname: "web-1".into(),
            ..Host::default()
        };
        let thread = std::thread::spawn(move || run(records_rx, host, tx, None));
        let connect = record(
            NetAction::Connect,
            Direction::Outbound,
            ("10.0.0.1", 4000),
            ("198.51.100.7", 4444),
        );
        records_tx
            .send(vec![connect.clone(), connect])
            .expect("send");
        drop(records_tx);
        thread.join().expect("enricher thread");
        let capture = rx.try_recv().expect("one capture");
        assert_eq!(capture.events.len(), 2);
        assert!(capture.checkpoint.is_none());
        let event = &capture.events[0];
        assert_eq!(event.source, "packet");
        assert!(event.event_id.is_empty());
        assert_eq!(
            event.host.as_ref().map(|h| h.hostname.as_str()),
            Some("web-1")
        );
        assert!(rx.try_recv().is_err());
    }
}
