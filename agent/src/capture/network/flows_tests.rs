//! Flow-table tests: the records each TCP/UDP/ICMP exchange produces, closing,
//! idling out, eviction at the cap, and ports reused after a close.

use std::net::IpAddr;

use shaobing_wire::v1::{Direction, NetAction};

use super::*;
use crate::capture::network::decode::{TcpFlags, decode};
use crate::capture::network::frames;
use crate::capture::network::record::LocalAddrs;

const SYN: u8 = TcpFlags::SYN;
const SYN_ACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
const ACK: u8 = TcpFlags::ACK;
const FIN_ACK: u8 = TcpFlags::FIN | TcpFlags::ACK;
const RST: u8 = TcpFlags::RST;
const SEC: i64 = 1_000_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

struct Harness {
    table: FlowTable,
    locals: LocalAddrs,
    out: Vec<NetRecord>,
}

impl Harness {
    fn new(max_flows: usize) -> Self {
        Harness {
            table: FlowTable::new(max_flows, 60),
            locals: LocalAddrs::new([ip("10.0.0.1")]),
            out: Vec::new(),
        }
    }

    fn feed(&mut self, frame: &[u8], at_secs: i64) {
        let packet = decode(frame).expect("test frame decodes");
        self.table
            .observe(&packet, at_secs * SEC, &self.locals, &mut self.out);
    }

    fn tcp(&mut self, from: (&str, u16), to: (&str, u16), flags: u8, payload: usize, at: i64) {
        let frame = frames::tcp(ip(from.0), from.1, ip(to.0), to.1, flags, payload);
        self.feed(&frame, at);
    }

    fn actions(&self) -> Vec<NetAction> {
        self.out.iter().map(|r| r.action).collect()
    }
}

#[test]
fn outbound_tcp_connection_reports_connect_accept_and_summary() {
    let mut h = Harness::new(16);
    let client = ("10.0.0.1", 40000);
    let server = ("198.51.100.7", 443);
    h.tcp(client, server, SYN, 0, 0);
    h.tcp(server, client, SYN_ACK, 0, 0);
    h.tcp(client, server, ACK, 0, 0);
    h.tcp(client, server, ACK, 100, 1);
    h.tcp(server, client, ACK, 1000, 2);
    h.tcp(client, server, FIN_ACK, 0, 3);
    h.tcp(server, client, FIN_ACK, 0, 3);
    h.tcp(client, server, ACK, 0, 3);
    assert_eq!(
        h.actions(),
        vec![NetAction::Connect, NetAction::Accept, NetAction::Flow]
    );
    for record in &h.out {
        assert_eq!(record.src, ip("10.0.0.1"));
        assert_eq!((record.src_port, record.dst_port), (40000, 443));
        assert_eq!(record.direction, Direction::Outbound);
        assert_eq!(record.transport, Transport::Tcp);
    }
    let summary = &h.out[2];
    assert_eq!(summary.packets, 7, "the trailing ACK comes after the close");
    assert_eq!(summary.bytes, 7 * 40 + 1100);
    assert_eq!(summary.duration_ms, 3000);
    assert_eq!(summary.time_unix_nano, 3 * SEC);
    assert_eq!(
        h.table.len(),
        1,
        "closed flows linger to absorb trailing packets"
    );
}

#[test]
fn inbound_scan_reports_one_connect_per_port_and_no_summaries() {
    let mut h = Harness::new(4096);
    for port in 1..=100u16 {
        h.tcp(("192.0.2.66", 55555), ("10.0.0.1", port), SYN, 0, 0);
        h.tcp(("10.0.0.1", port), ("192.0.2.66", 55555), RST | ACK, 0, 0);
    }
    assert_eq!(h.out.len(), 100);
    assert!(h.out.iter().all(|r| r.action == NetAction::Connect
        && r.direction == Direction::Inbound
        && r.src == ip("192.0.2.66")));
    let mut later = Vec::new();
    h.table.expire(3600 * SEC, &mut later);
    assert!(
        later.is_empty(),
        "unestablished attempts are not summarised"
    );
    assert_eq!(h.table.len(), 0);
}

#[test]
fn rst_closes_an_established_flow_with_a_summary() {
    let mut h = Harness::new(16);
    h.tcp(("192.0.2.9", 50000), ("10.0.0.1", 22), SYN, 0, 0);
    h.tcp(("10.0.0.1", 22), ("192.0.2.9", 50000), SYN_ACK, 0, 0);
    h.tcp(("192.0.2.9", 50000), ("10.0.0.1", 22), RST, 0, 1);
    h.tcp(("192.0.2.9", 50000), ("10.0.0.1", 22), RST, 0, 1);
    assert_eq!(
        h.actions(),
        vec![NetAction::Connect, NetAction::Accept, NetAction::Flow]
    );
    assert_eq!(h.out[1].direction, Direction::Inbound);
    assert_eq!(h.out[2].packets, 3);
}

#[test]
fn stray_rst_does_not_create_a_flow() {
    let mut h = Harness::new(16);
    h.tcp(("192.0.2.9", 80), ("10.0.0.1", 50000), RST, 0, 0);
    assert!(h.out.is_empty());
    assert_eq!(h.table.len(), 0);
}

#[test]
fn midstream_flow_is_summarised_once_both_sides_spoke() {
    let mut h = Harness::new(16);
    // Data from the server side first: the low port marks the server.
    h.tcp(("10.0.0.1", 22), ("192.0.2.9", 50000), ACK, 500, 0);
    h.tcp(("192.0.2.9", 50000), ("10.0.0.1", 22), ACK, 0, 1);
    assert!(h.out.is_empty(), "no connect for a flow seen mid-stream");
    h.table.expire(100 * SEC, &mut h.out);
    assert_eq!(h.actions(), vec![NetAction::Flow]);
    let summary = &h.out[0];
    assert_eq!((summary.src, summary.dst_port), (ip("192.0.2.9"), 22));
    assert_eq!(summary.direction, Direction::Inbound);

    // A one-sided ACK probe (nmap -sA) answered by RST is not a connection.
    let mut h = Harness::new(16);
    h.tcp(("192.0.2.9", 50001), ("10.0.0.1", 8080), ACK, 0, 0);
    h.tcp(("10.0.0.1", 8080), ("192.0.2.9", 50001), RST, 0, 0);
    h.table.expire(100 * SEC, &mut h.out);
    assert!(h.out.is_empty());
}

#[test]
fn udp_flow_reports_connect_then_summary_at_idle() {
    let mut h = Harness::new(16);
    let request = frames::udp(ip("10.0.0.1"), 40000, ip("198.51.100.7"), 123, &[0; 48]);
    let reply = frames::udp(ip("198.51.100.7"), 123, ip("10.0.0.1"), 40000, &[0; 48]);
    h.feed(&request, 0);
    h.feed(&reply, 0);
    h.feed(&request, 10);
    h.table.expire(69 * SEC, &mut h.out);
    assert_eq!(
        h.actions(),
        vec![NetAction::Connect],
        "not idle yet at 59 s"
    );
    h.table.expire(70 * SEC, &mut h.out);
    assert_eq!(h.actions(), vec![NetAction::Connect, NetAction::Flow]);
    let summary = &h.out[1];
    assert_eq!((summary.packets, summary.bytes), (3, 3 * 76));
    assert_eq!(summary.transport, Transport::Udp);
    assert_eq!(summary.direction, Direction::Outbound);
    assert_eq!(summary.duration_ms, 10_000);
}

#[test]
fn udp_reply_seen_first_keeps_the_client_as_source() {
    let mut h = Harness::new(16);
    let reply = frames::udp(ip("198.51.100.7"), 123, ip("10.0.0.1"), 40000, &[0; 48]);
    h.feed(&reply, 0);
    assert_eq!(h.out[0].src, ip("10.0.0.1"));
    assert_eq!(h.out[0].dst_port, 123);
}

#[test]
fn icmp_echo_pairs_request_and_reply() {
    let mut h = Harness::new(16);
    let request = frames::icmp(ip("192.0.2.5"), ip("10.0.0.1"), 8, 0, [0, 7, 0, 1]);
    let reply = frames::icmp(ip("10.0.0.1"), ip("192.0.2.5"), 0, 0, [0, 7, 0, 1]);
    h.feed(&request, 0);
    h.feed(&reply, 0);
    h.feed(&request, 1);
    assert_eq!(h.actions(), vec![NetAction::Icmp]);
    let icmp = &h.out[0];
    assert_eq!((icmp.src_port, icmp.dst_port), (8, 0), "type and code");
    assert_eq!(icmp.direction, Direction::Inbound);
    h.table.drain(&mut h.out);
    assert_eq!(h.out[1].packets, 3);
}

#[test]
fn eviction_at_the_cap_is_counted_and_summarised() {
    let mut h = Harness::new(2);
    for port in [41000u16, 41001, 41002] {
        let frame = frames::udp(ip("10.0.0.1"), port, ip("198.51.100.7"), 9999, b"x");
        h.feed(&frame, 0);
    }
    assert_eq!(h.table.len(), 2);
    assert_eq!(h.table.take_evicted(), 1);
    assert_eq!(h.table.take_evicted(), 0, "the count resets when taken");
    let summaries: Vec<&NetRecord> = h
        .out
        .iter()
        .filter(|r| r.action == NetAction::Flow)
        .collect();
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        summaries[0].src_port, 41000,
        "the least recently seen flow goes"
    );
}

#[test]
fn new_syn_on_a_closed_flow_starts_a_new_connection() {
    let mut h = Harness::new(16);
    let client = ("10.0.0.1", 40000);
    let server = ("198.51.100.7", 80);
    h.tcp(client, server, SYN, 0, 0);
    h.tcp(server, client, SYN_ACK, 0, 0);
    h.tcp(client, server, RST, 0, 1);
    h.tcp(client, server, SYN, 0, 2);
    assert_eq!(
        h.actions(),
        vec![
            NetAction::Connect,
            NetAction::Accept,
            NetAction::Flow,
            NetAction::Connect
        ]
    );
    assert_eq!(h.table.len(), 1);
}

#[test]
fn other_protocols_are_ignored() {
    let mut h = Harness::new(16);
    let gre = frames::ip_frame(ip("10.0.0.1"), ip("192.0.2.1"), 47, &[0; 8]);
    h.feed(&gre, 0);
    assert!(h.out.is_empty());
    assert_eq!(h.table.len(), 0);
}
