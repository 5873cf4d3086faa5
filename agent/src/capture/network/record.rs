//! [`NetRecord`]: what the flow table and DNS matcher report (a connection
//! attempt, an accepted connection, a flow summary, an ICMP exchange or a DNS
//! lookup), and its conversion to a wire [`Event`].
//!
//! Field conventions: `src` is always the side that started the exchange (TCP
//! SYN sender, first UDP sender, ICMP requester, DNS client) and `dst` the other;
//! for ICMP `src_port` holds the ICMP type and `dst_port` the code (as Zeek does).

use std::collections::HashSet;
use std::net::IpAddr;

use shaobing_wire::v1::{Direction, Event, Host, NetAction, NetworkEvent, event::Body};

/// Event source name of packet-derived events.
pub const SOURCE_PACKET: &str = "packet";
/// Event source name of listening-socket events.
pub const SOURCE_PROC_NET: &str = "proc_net";

/// Transport protocol of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
}

impl Transport {
    /// The wire name: `tcp`, `udp`, `icmp`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
        }
    }
}

/// The DNS part of a `dns_query` record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsRecord {
    pub name: String,
    /// `A`, `AAAA`, ...
    pub qtype: String,
    /// `NOERROR`, `NXDOMAIN`, ...; empty when no response was seen.
    pub rcode: String,
    pub answers: Vec<String>,
}

/// One observation about the network, before it becomes an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRecord {
    pub action: NetAction,
    pub transport: Transport,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub direction: Direction,
    pub time_unix_nano: i64,
    pub bytes: u64,
    pub packets: u64,
    pub duration_ms: u64,
    pub dns: Option<Box<DnsRecord>>,
}

/// The process behind a socket, when it can be known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: u32,
    pub exe: String,
    pub user: String,
}

impl NetRecord {
    /// The wire body, with the process attached when known.
    pub fn to_network_event(&self, process: Option<&ProcessInfo>) -> NetworkEvent {
        let dns = self.dns.as_deref();
        let process = process.cloned().unwrap_or_default();
        NetworkEvent {
            action: self.action as i32,
            transport: self.transport.name().to_string(),
            src_ip: self.src.to_string(),
            src_port: u32::from(self.src_port),
            dst_ip: self.dst.to_string(),
            dst_port: u32::from(self.dst_port),
            direction: self.direction as i32,
            bytes: self.bytes,
            packets: self.packets,
            duration_ms: self.duration_ms,
            dns_query: dns.map(|d| d.name.clone()).unwrap_or_default(),
            dns_type: dns.map(|d| d.qtype.clone()).unwrap_or_default(),
            dns_answers: dns.map(|d| d.answers.clone()).unwrap_or_default(),
            dns_rcode: dns.map(|d| d.rcode.clone()).unwrap_or_default(),
            pid: process.pid,
            exe: process.exe,
            user: process.user,
        }
    }
}

/// A wire event around a network body. `event_id` stays empty: the spool assigns it.
pub fn network_event(host: &Host, source: &str, time_unix_nano: i64, body: NetworkEvent) -> Event {
    Event {
        event_id: String::new(),
        time_unix_nano,
        host: Some(host.clone()),
        source: source.to_string(),
        raw: String::new(),
        body: Some(Body::Network(body)),
    }
}

/// The host's own addresses, which decide a flow's direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAddrs {
    addrs: HashSet<IpAddr>,
}

impl LocalAddrs {
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        LocalAddrs {
            addrs: addrs.into_iter().collect(),
        }
    }

    /// Whether `ip` is one of the host's addresses (loopback always is).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_loopback() || self.addrs.contains(ip)
    }

    /// Direction of an exchange started by `initiator` towards `responder`.
    pub fn direction(&self, initiator: &IpAddr, responder: &IpAddr) -> Direction {
        match (self.contains(initiator), self.contains(responder)) {
            (true, true) => Direction::Local,
            (true, false) => Direction::Outbound,
            (false, true) => Direction::Inbound,
            (false, false) => Direction::Unspecified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_follows_the_hosts_addresses() {
        let locals = LocalAddrs::new(["10.0.0.5".parse().unwrap()]);
        let here: IpAddr = "10.0.0.5".parse().unwrap();
        let there: IpAddr = "198.51.100.9".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(locals.direction(&here, &there), Direction::Outbound);
        assert_eq!(locals.direction(&there, &here), Direction::Inbound);
        assert_eq!(locals.direction(&lo, &here), Direction::Local);
        assert_eq!(locals.direction(&there, &there), Direction::Unspecified);
    }

    #[test]
    fn records_become_events_without_an_id() {
        let record = NetRecord {
            action: NetAction::DnsQuery,
            transport: Transport::Udp,
            src: "10.0.0.5".parse().unwrap(),
            src_port: 40000,
            dst: "10.0.0.53".parse().unwrap(),
            dst_port: 53,
            direction: Direction::Outbound,
            time_unix_nano: 7,
            bytes: 0,
            packets: 0,
            duration_ms: 3,
            dns: Some(Box::new(DnsRecord {
                name: "a.example".into(),
                qtype: "A".into(),
                rcode: "NOERROR".into(),
                answers: vec!["192.0.2.1".into()],
            })),
        };
        let process = ProcessInfo {
            pid: 42,
            exe: "/usr/bin/dig".into(),
            user: "root".into(),
        };
        let body = record.to_network_event(Some(&process));
        assert_eq!(body.action(), NetAction::DnsQuery);
        assert_eq!(body.dns_query, "a.example");
        assert_eq!(body.dns_answers, vec!["192.0.2.1"]);
        assert_eq!(body.exe, "/usr/bin/dig");
        assert_eq!(body.direction(), Direction::Outbound);
        let event = network_event(&Host::default(), SOURCE_PACKET, 7, body);
        assert!(event.event_id.is_empty());
        assert_eq!(event.source, "packet");
    }
}
