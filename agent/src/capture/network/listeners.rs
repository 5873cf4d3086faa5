//! Listening sockets: a periodic snapshot of `/proc/net/{tcp,tcp6,udp,udp6}`
//! compared with the previous one, emitting `listen` for new listeners and
//! `listen_closed` for the ones gone (source `proc_net`), with the owning process.
//!
//! A listener is a TCP socket in `LISTEN` or a UDP socket bound to a port and not
//! connected, identified by transport, address, port and socket inode (a service
//! restarted on the same port is a new listener). The set is saved as this
//! source's checkpoint, so after an agent restart only the changes made while it
//! was down are reported, not every listener again.
//!
//! The listening address is reported as the destination (`dst_ip`/`dst_port`),
//! which the detection mapping reads as `DestinationIp`/`DestinationPort`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shaobing_wire::v1::{Direction, Event, Host, NetAction, NetworkEvent};
use tokio::sync::mpsc;

use super::proc_net::SocketTables;
use super::procs::ProcessTable;
use super::record::{self, ProcessInfo, Transport};
use crate::capture::{Capture, Checkpoint};

/// Checkpoint key of the listener set.
pub const CHECKPOINT_SOURCE: &str = "proc_net:listeners";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ListenerKey {
    transport: &'static str,
    ip: IpAddr,
    port: u16,
    inode: u64,
}

impl ListenerKey {
    fn text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.transport, self.ip, self.port, self.inode
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let transport = match parts.next()? {
            "tcp" => "tcp",
            "udp" => "udp",
            _ => return None,
        };
        Some(ListenerKey {
            transport,
            ip: parts.next()?.parse().ok()?,
            port: parts.next()?.parse().ok()?,
            inode: parts.next()?.parse().ok()?,
        })
    }
}

/// The known listeners and what to compare the next snapshot with.
pub struct ListenerWatch {
    tables: SocketTables,
    processes: Option<ProcessTable>,
    known: BTreeMap<ListenerKey, Option<ProcessInfo>>,
}

impl ListenerWatch {
    /// A watch starting from the listener set saved in `checkpoint` (the
    /// position of [`CHECKPOINT_SOURCE`]), or from nothing.
    pub fn new(
        tables: SocketTables,
        processes: Option<ProcessTable>,
        checkpoint: Option<&str>,
    ) -> Self {
        let known = checkpoint
            .and_then(|text| serde_json::from_str::<Vec<String>>(text).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|key| ListenerKey::parse(key))
            .map(|key| (key, None))
            .collect();
        ListenerWatch {
            tables,
            processes,
            known,
        }
    }

    /// Takes a snapshot; returns the changes (with the new checkpoint) if any.
    pub fn poll(&mut self, now_ns: i64, host: &Host) -> Option<Capture> {
        let sockets = self.tables.read(&[Transport::Tcp, Transport::Udp]);
        let mut current = BTreeMap::new();
        let mut events = Vec::new();
        for socket in sockets.iter().filter(|s| s.is_listener()) {
            let key = ListenerKey {
                transport: socket.transport.name(),
                ip: socket.local.0,
                port: socket.local.1,
                inode: socket.inode,
            };
            if current.contains_key(&key) {
                continue;
            }
            let process = match self.known.remove(&key) {
                Some(process) => process,
                None => {
                    let process = self.describe(socket.inode, socket.uid);
                    events.push(listener_event(
                        NetAction::Listen,
                        &key,
                        process.as_ref(),
                        now_ns,
                        host,
                    ));
                    process
                }
            };
            current.insert(key, process);
        }
        for (key, process) in std::mem::replace(&mut self.known, current) {
            events.push(listener_event(
                NetAction::ListenClosed,
                &key,
                process.as_ref(),
                now_ns,
                host,
            ));
        }
        if events.is_empty() {
            return None;
        }
        let keys: Vec<String> = self.known.keys().map(ListenerKey::text).collect();
        let position = serde_json::to_string(&keys).unwrap_or_default();
        Some(Capture {
            events,
            checkpoint: Some(Checkpoint {
                source: CHECKPOINT_SOURCE.to_string(),
                position,
            }),
        })
    }

    fn describe(&mut self, inode: u64, uid: u32) -> Option<ProcessInfo> {
        let processes = self.processes.as_mut()?;
        match processes.owner(inode) {
            Some(process) => Some(process),
            None => Some(ProcessInfo {
                user: processes.user_name(uid),
                ..ProcessInfo::default()
            }),
        }
    }
}

fn listener_event(
    action: NetAction,
    key: &ListenerKey,
    process: Option<&ProcessInfo>,
    now_ns: i64,
    host: &Host,
) -> Event {
    let process = process.cloned().unwrap_or_default();
    let body = NetworkEvent {
        action: action as i32,
        transport: key.transport.to_string(),
        dst_ip: key.ip.to_string(),
        dst_port: u32::from(key.port),
        direction: Direction::Unspecified as i32,
        pid: process.pid,
        exe: process.exe,
        user: process.user,
        ..NetworkEvent::default()
    };
    record::network_event(host, record::SOURCE_PROC_NET, now_ns, body)
}

/// Polls every `interval` until `stop`, sending changes to the agent channel.
pub fn run(
    mut watch: ListenerWatch,
    host: Host,
    tx: mpsc::Sender<Capture>,
    interval: Duration,
    stop: Arc<AtomicBool>,
) {
    let step = Duration::from_millis(100);
    loop {
        if let Some(capture) = watch.poll(shaobing_wire::now_unix_nano(), &host)
            && tx.blocking_send(capture).is_err()
        {
            return;
        }
        let mut waited = Duration::ZERO;
        while waited < interval {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(step);
            waited += step;
        }
    }
}

#[cfg(test)]
mod tests {
    use shaobing_wire::v1::event::Body;

    use super::*;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn row(slot: u32, port: u16, state: &str, inode: u64) -> String {
        format!(
            "   {slot}: 00000000:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
    }

    fn network(event: &Event) -> &NetworkEvent {
        match &event.body {
            Some(Body::Network(network)) => network,
            other => panic!("expected a network body, got {other:?}"),
        }
    }

    #[test]
    fn reports_new_and_closed_listeners_and_checkpoints_the_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |rows: &[String]| {
            std::fs::write(dir.path().join("tcp"), format!("{HEADER}{}", rows.concat()))
                .expect("write tcp");
        };
        write(&[row(0, 22, "0A", 100), row(1, 40000, "01", 101)]);
        let mut watch = ListenerWatch::new(SocketTables::at(dir.path()), None, None);
        let host = Host::default();

        let first = watch
            .poll(1, &host)
            .expect("the first snapshot reports every listener");
        assert_eq!(
            first.events.len(),
            1,
            "an established socket is not a listener"
        );
        let listen = network(&first.events[0]);
        assert_eq!(listen.action(), NetAction::Listen);
        assert_eq!((listen.dst_ip.as_str(), listen.dst_port), ("0.0.0.0", 22));
        assert_eq!(first.events[0].source, "proc_net");
        let checkpoint = first.checkpoint.expect("checkpoint");
        assert_eq!(checkpoint.source, CHECKPOINT_SOURCE);
        assert_eq!(checkpoint.position, r#"["tcp 0.0.0.0 22 100"]"#);

        assert!(watch.poll(2, &host).is_none(), "nothing changed");

        write(&[row(0, 4444, "0A", 102)]);
        let changes = watch.poll(3, &host).expect("changes");
        let actions: Vec<(NetAction, u32)> = changes
            .events
            .iter()
            .map(|e| (network(e).action(), network(e).dst_port))
            .collect();
        assert_eq!(
            actions,
            vec![(NetAction::Listen, 4444), (NetAction::ListenClosed, 22)]
        );

        // A restarted agent with that checkpoint reports nothing new.
        let position = changes.checkpoint.expect("checkpoint").position;
        let mut restarted = ListenerWatch::new(SocketTables::at(dir.path()), None, Some(&position));
        assert!(restarted.poll(4, &host).is_none());
        // A garbled checkpoint is treated as "nothing known".
        let mut garbled = ListenerWatch::new(SocketTables::at(dir.path()), None, Some("{not json"));
        assert_eq!(garbled.poll(5, &host).map(|c| c.events.len()), Some(1));
    }

    #[test]
    fn keys_round_trip_through_text() {
        let key = ListenerKey {
            transport: "udp",
            ip: "::".parse().expect("address"),
            port: 53,
            inode: 9,
        };
        assert_eq!(ListenerKey::parse(&key.text()), Some(key));
        assert_eq!(ListenerKey::parse("sctp :: 1 2"), None);
        assert_eq!(ListenerKey::parse("tcp nonsense 1 2"), None);
    }
}
