//! [`PacketProcessor`]: the per-interface pipeline from raw frames to
//! [`NetRecord`]s — decode, then DNS matching for UDP port 53, then the flow table
//! for everything else — with local tallies of what was skipped, flushed to the
//! agent counters once a second (the hot path never takes a lock).

use std::collections::BTreeMap;

use super::decode::{self, DecodeError, Packet, Transport as Wire};
use super::dns;
use super::dns_queries::DnsQueries;
use super::flows::FlowTable;
use super::record::{LocalAddrs, NetRecord};
use crate::counters::Counters;

const DNS_PORT: u16 = 53;
/// Most DNS queries waiting for an answer per interface.
const MAX_PENDING_DNS: usize = 4096;

/// How frames on an interface start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// An Ethernet header (also Linux loopback).
    Ethernet,
    /// The IP header directly (tun, WireGuard, other `ARPHRD_NONE` devices).
    RawIp,
}

/// Decodes frames and tracks flows and DNS lookups for one interface.
pub struct PacketProcessor {
    link: LinkType,
    flows: FlowTable,
    dns: DnsQueries,
    locals: LocalAddrs,
    records: Vec<NetRecord>,
    tallies: BTreeMap<&'static str, u64>,
}

impl PacketProcessor {
    pub fn new(link: LinkType, max_flows: usize, flow_idle_secs: u64, locals: LocalAddrs) -> Self {
        PacketProcessor {
            link,
            flows: FlowTable::new(max_flows, flow_idle_secs),
            dns: DnsQueries::new(MAX_PENDING_DNS),
            locals,
            records: Vec::new(),
            tallies: BTreeMap::new(),
        }
    }

    /// Replaces the host's addresses (they decide directions of new flows).
    pub fn set_local_addrs(&mut self, locals: LocalAddrs) {
        self.locals = locals;
    }

    /// Flows currently tracked.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    /// Accounts one captured frame seen at `now_ns`.
    pub fn process(&mut self, frame: &[u8], now_ns: i64) {
        let decoded = match self.link {
            LinkType::Ethernet => decode::decode(frame),
            LinkType::RawIp => decode::decode_ip(frame),
        };
        match decoded {
            Ok(packet) => self.account(&packet, now_ns),
            Err(error) => self.skip(error),
        }
    }

    fn account(&mut self, packet: &Packet<'_>, now_ns: i64) {
        *self.tallies.entry("network.packets").or_default() += 1;
        if let Wire::Udp {
            src_port,
            dst_port,
            payload,
        } = packet.transport
            && (src_port == DNS_PORT || dst_port == DNS_PORT)
        {
            match dns::parse(payload) {
                Ok(message) => {
                    let src = (packet.src, src_port);
                    let dst = (packet.dst, dst_port);
                    self.dns
                        .observe(message, src, dst, now_ns, &self.locals, &mut self.records);
                    return;
                }
                // Not DNS after all (or broken): count it and track it as a UDP flow.
                Err(_) => *self.tallies.entry("network.dns_malformed").or_default() += 1,
            }
        }
        if let Wire::Other(_) = packet.transport {
            *self.tallies.entry("network.other_protocol").or_default() += 1;
            return;
        }
        self.flows
            .observe(packet, now_ns, &self.locals, &mut self.records);
    }

    fn skip(&mut self, error: DecodeError) {
        *self.tallies.entry(error.counter()).or_default() += 1;
    }

    /// Summarises idle flows and reports unanswered DNS queries.
    pub fn expire(&mut self, now_ns: i64) {
        self.flows.expire(now_ns, &mut self.records);
        self.dns.expire(now_ns, &self.locals, &mut self.records);
    }

    /// Summarises every open flow (at shutdown).
    pub fn drain(&mut self) {
        self.flows.drain(&mut self.records);
    }

    /// Records produced since the last call.
    pub fn take_records(&mut self) -> Vec<NetRecord> {
        std::mem::take(&mut self.records)
    }

    /// Whether records are waiting.
    pub fn pending_records(&self) -> usize {
        self.records.len()
    }

    /// Adds the local tallies (and evictions) to the agent counters and resets them.
    pub fn flush_counters(&mut self, counters: &Counters) {
        let evicted = self.flows.take_evicted();
        if evicted > 0 {
            counters.add("network.flows_evicted", evicted);
        }
        let dns_evicted = self.dns.take_evicted();
        if dns_evicted > 0 {
            counters.add("network.dns_pending_evicted", dns_evicted);
        }
        for (name, count) in std::mem::take(&mut self.tallies) {
            counters.add(name, count);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use shaobing_wire::v1::NetAction;

    use super::*;
    use crate::capture::network::decode::TcpFlags;
    use crate::capture::network::frames;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn routes_dns_to_the_matcher_and_counts_what_it_skips() {
        let mut processor = PacketProcessor::new(
            LinkType::Ethernet,
            64,
            60,
            LocalAddrs::new([ip("10.0.0.1")]),
        );
        let query = frames::dns_query(5, "a.example", frames::DNS_A);
        let response = frames::dns_response(&query, 0, &[ip("192.0.2.1")]).unwrap();
        processor.process(
            &frames::udp(ip("10.0.0.1"), 40000, ip("10.0.0.53"), 53, &query),
            1,
        );
        processor.process(
            &frames::udp(ip("10.0.0.53"), 53, ip("10.0.0.1"), 40000, &response),
            2,
        );
        processor.process(
            &frames::udp(ip("10.0.0.1"), 40001, ip("10.0.0.53"), 53, b"not dns"),
            3,
        );
        processor.process(
            &frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::SYN, 0)[..30],
            4,
        );
        let mut fragment = frames::udp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, b"x");
        fragment[20] = 0x20;
        processor.process(&fragment, 5);
        processor.process(
            &frames::ip_frame(ip("10.0.0.1"), ip("10.0.0.2"), 47, &[0; 4]),
            6,
        );

        let records = processor.take_records();
        let actions: Vec<NetAction> = records.iter().map(|r| r.action).collect();
        assert_eq!(actions, vec![NetAction::DnsQuery, NetAction::Connect]);
        assert_eq!(
            records[1].dst_port, 53,
            "undecodable port-53 traffic is a udp flow"
        );
        assert_eq!(processor.pending_records(), 0);

        let counters = Counters::default();
        processor.flush_counters(&counters);
        assert_eq!(counters.get("network.packets"), 4);
        assert_eq!(counters.get("network.malformed"), 1);
        assert_eq!(counters.get("network.fragments"), 1);
        assert_eq!(counters.get("network.dns_malformed"), 1);
        assert_eq!(counters.get("network.other_protocol"), 1);
        processor.flush_counters(&counters);
        assert_eq!(
            counters.get("network.packets"),
            4,
            "tallies reset after a flush"
        );
    }

    #[test]
    fn raw_ip_links_decode_without_ethernet() {
        let mut processor = PacketProcessor::new(LinkType::RawIp, 64, 60, LocalAddrs::default());
        let frame = frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::SYN, 0);
        processor.process(&frame[14..], 1);
        assert_eq!(processor.take_records().len(), 1);
        processor.drain();
        assert_eq!(processor.flow_count(), 0);
    }
}
