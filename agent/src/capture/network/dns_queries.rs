//! Matches DNS queries with their responses and turns each lookup into one
//! `dns_query` record: the name, type, answers and response code, from the
//! client's point of view (`src` = client, `dst` = server).
//!
//! A response produces the record (it repeats the question, so a response whose
//! query was missed still counts). A query waits in a bounded table for its
//! response; after [`ANSWER_TIMEOUT_SECS`] it is reported with an empty response
//! code, so lookups that nobody answers are visible too. Queries pushed out of
//! the full table are reported the same way and counted.

use std::net::IpAddr;

use shaobing_wire::v1::NetAction;

use super::dns::{self, DnsMessage};
use super::lru::LruMap;
use super::record::{DnsRecord, LocalAddrs, NetRecord, Transport};

/// Seconds a query waits for its response.
pub const ANSWER_TIMEOUT_SECS: i64 = 5;
const NANOS_PER_SEC: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct QueryKey {
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    id: u16,
}

#[derive(Debug, Clone, Default)]
struct PendingQuery {
    time_ns: i64,
    name: String,
    qtype: u16,
}

/// Queries waiting for a response, bounded.
pub struct DnsQueries {
    pending: LruMap<QueryKey, PendingQuery>,
    /// Queries pushed out of the full table since the last take.
    evicted: u64,
}

impl DnsQueries {
    pub fn new(max_pending: usize) -> Self {
        DnsQueries {
            pending: LruMap::new(max_pending),
            evicted: 0,
        }
    }

    /// Queries evicted unanswered since the last call (resets the count).
    pub fn take_evicted(&mut self) -> u64 {
        std::mem::take(&mut self.evicted)
    }

    /// Accounts one parsed DNS message sent from `src` to `dst` at `now_ns`.
    pub fn observe(
        &mut self,
        message: DnsMessage,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        now_ns: i64,
        locals: &LocalAddrs,
        out: &mut Vec<NetRecord>,
    ) {
        if !message.is_response {
            let key = QueryKey {
                client: src,
                server: dst,
                id: message.id,
            };
            let query = PendingQuery {
                time_ns: now_ns,
                name: message.name,
                qtype: message.qtype,
            };
            // A retransmitted query replaces the first one.
            if let Some((key, query)) = self.pending.insert(key, query) {
                self.evicted += 1;
                out.push(unanswered(&key, query, locals));
            }
            return;
        }
        let key = QueryKey {
            client: dst,
            server: src,
            id: message.id,
        };
        let (time_ns, duration_ms) = match self.pending.remove(&key) {
            Some(query) => (
                query.time_ns,
                ((now_ns - query.time_ns).max(0) / 1_000_000) as u64,
            ),
            None => (now_ns, 0),
        };
        out.push(NetRecord {
            action: NetAction::DnsQuery,
            transport: Transport::Udp,
            src: key.client.0,
            src_port: key.client.1,
            dst: key.server.0,
            dst_port: key.server.1,
            direction: locals.direction(&key.client.0, &key.server.0),
            time_unix_nano: time_ns,
            bytes: 0,
            packets: 0,
            duration_ms,
            dns: Some(Box::new(DnsRecord {
                name: message.name,
                qtype: dns::type_name(message.qtype),
                rcode: dns::rcode_name(message.rcode),
                answers: message.answers,
            })),
        });
    }

    /// Reports queries that waited longer than [`ANSWER_TIMEOUT_SECS`].
    pub fn expire(&mut self, now_ns: i64, locals: &LocalAddrs, out: &mut Vec<NetRecord>) {
        let cutoff = now_ns.saturating_sub(ANSWER_TIMEOUT_SECS * NANOS_PER_SEC);
        while let Some((_, query)) = self.pending.peek_oldest() {
            if query.time_ns > cutoff {
                break;
            }
            if let Some((key, query)) = self.pending.pop_oldest() {
                out.push(unanswered(&key, query, locals));
            }
        }
    }
}

fn unanswered(key: &QueryKey, query: PendingQuery, locals: &LocalAddrs) -> NetRecord {
    NetRecord {
        action: NetAction::DnsQuery,
        transport: Transport::Udp,
        src: key.client.0,
        src_port: key.client.1,
        dst: key.server.0,
        dst_port: key.server.1,
        direction: locals.direction(&key.client.0, &key.server.0),
        time_unix_nano: query.time_ns,
        bytes: 0,
        packets: 0,
        duration_ms: 0,
        dns: Some(Box::new(DnsRecord {
            name: query.name,
            qtype: dns::type_name(query.qtype),
            rcode: String::new(),
            answers: Vec::new(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use shaobing_wire::v1::Direction;

    use super::*;
    use crate::capture::network::frames;

    const SEC: i64 = NANOS_PER_SEC;

    fn endpoint(ip: &str, port: u16) -> (IpAddr, u16) {
        (ip.parse().expect("test address"), port)
    }

    #[test]
    fn query_and_response_make_one_record() {
        let locals = LocalAddrs::new([endpoint("10.0.0.1", 0).0]);
        let mut queries = DnsQueries::new(16);
        let mut out = Vec::new();
        let client = endpoint("10.0.0.1", 40000);
        let server = endpoint("10.0.0.53", 53);
        let query = frames::dns_query(7, "c2.threat.example", frames::DNS_A);
        queries.observe(
            dns::parse(&query).unwrap(),
            client,
            server,
            SEC,
            &locals,
            &mut out,
        );
        assert!(out.is_empty(), "the query waits for its response");
        let response = frames::dns_response(&query, 0, &["192.0.2.10".parse().unwrap()]).unwrap();
        queries.observe(
            dns::parse(&response).unwrap(),
            server,
            client,
            SEC + 20_000_000,
            &locals,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        let record = &out[0];
        assert_eq!((record.src, record.src_port), client);
        assert_eq!(record.dst_port, 53);
        assert_eq!(record.direction, Direction::Outbound);
        assert_eq!(record.time_unix_nano, SEC, "timed at the query");
        assert_eq!(record.duration_ms, 20);
        let dns = record.dns.as_deref().unwrap();
        assert_eq!(dns.name, "c2.threat.example");
        assert_eq!((dns.qtype.as_str(), dns.rcode.as_str()), ("A", "NOERROR"));
        assert_eq!(dns.answers, vec!["192.0.2.10"]);
        queries.expire(100 * SEC, &locals, &mut out);
        assert_eq!(out.len(), 1, "an answered query is not reported again");
    }

    #[test]
    fn unanswered_and_evicted_queries_are_reported() {
        let locals = LocalAddrs::default();
        let mut queries = DnsQueries::new(2);
        let mut out = Vec::new();
        let server = endpoint("10.0.0.53", 53);
        for (n, port) in [40001u16, 40002, 40003].into_iter().enumerate() {
            let query = frames::dns_query(1, &format!("q{n}.example"), frames::DNS_AAAA);
            let message = dns::parse(&query).unwrap();
            queries.observe(
                message,
                endpoint("10.0.0.1", port),
                server,
                SEC,
                &locals,
                &mut out,
            );
        }
        assert_eq!(queries.take_evicted(), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].dns.as_deref().unwrap().name, "q0.example");
        queries.expire(SEC + 4 * SEC, &locals, &mut out);
        assert_eq!(out.len(), 1, "still within the timeout");
        queries.expire(SEC + 5 * SEC, &locals, &mut out);
        assert_eq!(out.len(), 3);
        let late = out[2].dns.as_deref().unwrap();
        assert!(late.rcode.is_empty() && late.answers.is_empty());
        assert_eq!(late.qtype, "AAAA");
    }

    #[test]
    fn response_without_a_seen_query_still_counts() {
        let locals = LocalAddrs::default();
        let mut queries = DnsQueries::new(4);
        let mut out = Vec::new();
        let query = frames::dns_query(9, "x.invalid", frames::DNS_A);
        let response = frames::dns_response(&query, 3, &[]).unwrap();
        let server = endpoint("10.0.0.53", 53);
        let client = endpoint("10.0.0.1", 5000);
        queries.observe(
            dns::parse(&response).unwrap(),
            server,
            client,
            SEC,
            &locals,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].src, client.0);
        assert_eq!(out[0].dns.as_deref().unwrap().rcode, "NXDOMAIN");
    }
}
