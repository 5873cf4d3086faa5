//! Network capture hot path on one core: packets per second through the decoder
//! alone and through the whole per-interface pipeline (decode → DNS matching /
//! flow table → records), over a synthetic capture buffer of realistic frames;
//! then the memory taken by 100k concurrent flows.
//!
//! The buffer mixes, interleaved across 2,000 concurrent conversations: inbound
//! HTTPS connections over IPv4 (handshake, request, ten 1448-byte response
//! segments cut to the BPF snap length as the kernel would deliver them, ACKs,
//! FIN exchange), the same over IPv6, outbound DNS lookups with their answers, and
//! pings. Targets: ≥ 200k packets/s per core; ≤ 48 MB RSS with 100k flows.
//!
//! Run: `cargo bench -p shaobing-agent --bench network_throughput`

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group};
use shaobing_agent::capture::network::bpf::SNAP_LEN;
use shaobing_agent::capture::network::decode::{TcpFlags, decode};
use shaobing_agent::capture::network::frames;
use shaobing_agent::capture::network::processor::{LinkType, PacketProcessor};
use shaobing_agent::capture::network::record::LocalAddrs;

const CONCURRENT: usize = 2_000;
const CONVERSATIONS: usize = 12_000;
const FLOWS_FOR_MEMORY: u32 = 100_000;
/// Simulated time between packets (200k packets per second).
const PACKET_GAP_NS: i64 = 5_000;

fn snap(frame: Vec<u8>) -> Vec<u8> {
    let mut frame = frame;
    frame.truncate(SNAP_LEN as usize);
    frame
}

/// The frames of one conversation, in order.
fn conversation(n: usize) -> Vec<Vec<u8>> {
    let client_port = 20_000 + (n % 40_000) as u16;
    let (server, client): (IpAddr, IpAddr) = if n % 10 < 7 {
        (
            "10.0.0.1".parse().expect("address"),
            format!("198.51.100.{}", n % 250 + 1)
                .parse()
                .expect("address"),
        )
    } else if n % 10 < 9 {
        (
            "2001:db8::1".parse().expect("address"),
            format!("2001:db8:1::{:x}", n % 65_000 + 1)
                .parse()
                .expect("address"),
        )
    } else if n % 20 == 9 {
        let resolver: IpAddr = "10.0.0.53".parse().expect("address");
        let host: IpAddr = "10.0.0.1".parse().expect("address");
        let query = frames::dns_query(n as u16, &format!("api{}.example", n % 100), frames::DNS_A);
        let answer = frames::dns_response(&query, 0, &["192.0.2.7".parse().expect("address")])
            .expect("response");
        return vec![
            frames::udp(host, client_port, resolver, 53, &query),
            frames::udp(resolver, 53, host, client_port, &answer),
        ];
    } else {
        let peer: IpAddr = format!("203.0.113.{}", n % 250 + 1)
            .parse()
            .expect("address");
        let host: IpAddr = "10.0.0.1".parse().expect("address");
        let id = (n as u16).to_be_bytes();
        return (0..4u8)
            .flat_map(|seq| {
                [
                    frames::icmp(peer, host, 8, 0, [id[0], id[1], 0, seq]),
                    frames::icmp(host, peer, 0, 0, [id[0], id[1], 0, seq]),
                ]
            })
            .collect();
    };
    let (syn, ack, psh, fin) = (TcpFlags::SYN, TcpFlags::ACK, TcpFlags::PSH, TcpFlags::FIN);
    let to_server = |flags, len| snap(frames::tcp(client, client_port, server, 443, flags, len));
    let to_client = |flags, len| snap(frames::tcp(server, 443, client, client_port, flags, len));
    let mut packets = vec![
        to_server(syn, 0),
        to_client(syn | ack, 0),
        to_server(ack, 0),
        to_server(psh | ack, 300),
    ];
    for segment in 0..10 {
        packets.push(to_client(ack, 1448));
        if segment % 2 == 1 {
            packets.push(to_server(ack, 0));
        }
    }
    packets.extend([
        to_client(fin | ack, 0),
        to_server(fin | ack, 0),
        to_client(ack, 0),
    ]);
    packets
}

/// Conversations interleaved `CONCURRENT` at a time, as a busy server sees them.
fn capture_buffer() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for window in (0..CONVERSATIONS).collect::<Vec<_>>().chunks(CONCURRENT) {
        let mut open: Vec<std::vec::IntoIter<Vec<u8>>> = window
            .iter()
            .map(|&n| conversation(n).into_iter())
            .collect();
        loop {
            let before = frames.len();
            for conversation in &mut open {
                frames.extend(conversation.next());
            }
            if frames.len() == before {
                break;
            }
        }
    }
    frames
}

fn locals() -> LocalAddrs {
    LocalAddrs::new([
        "10.0.0.1".parse().expect("address"),
        "2001:db8::1".parse().expect("address"),
    ])
}

fn throughput(c: &mut Criterion) {
    let buffer = capture_buffer();
    let bytes: usize = buffer.iter().map(Vec::len).sum();
    eprintln!(
        "capture buffer: {} frames, {} conversations, {:.1} MB captured",
        buffer.len(),
        CONVERSATIONS,
        bytes as f64 / 1e6
    );
    let mut group = c.benchmark_group("network");
    group.throughput(Throughput::Elements(buffer.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            buffer
                .iter()
                .filter(|frame| decode(black_box(frame)).is_ok())
                .count()
        })
    });
    let mut processor = PacketProcessor::new(LinkType::Ethernet, 65_536, 120, locals());
    let mut now = 1_700_000_000_000_000_000i64;
    group.bench_function("decode+flows+dns", |b| {
        b.iter(|| {
            for frame in &buffer {
                now += PACKET_GAP_NS;
                processor.process(black_box(frame), now);
            }
            processor.expire(now);
            processor.take_records().len()
        })
    });
    group.finish();
}

/// Resident set size of this process, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Fills a flow table with 100k concurrent TCP flows and reports the memory.
fn flow_memory() {
    let before = rss_bytes();
    let mut processor =
        PacketProcessor::new(LinkType::Ethernet, FLOWS_FOR_MEMORY as usize, 120, locals());
    let server: IpAddr = "10.0.0.1".parse().expect("address");
    let mut now = 1_700_000_000_000_000_000i64;
    let mut records = 0;
    for n in 0..FLOWS_FOR_MEMORY {
        let client = IpAddr::from([198, 18, (n >> 8) as u8, n as u8]);
        let port = 30_000 + (n % 7) as u16;
        for frame in [
            frames::tcp(client, port, server, 443, TcpFlags::SYN, 0),
            frames::tcp(server, 443, client, port, TcpFlags::SYN | TcpFlags::ACK, 0),
        ] {
            now += PACKET_GAP_NS;
            processor.process(&frame, now);
        }
        records += processor.take_records().len();
    }
    let after = rss_bytes();
    assert_eq!(processor.flow_count(), FLOWS_FOR_MEMORY as usize);
    eprintln!(
        "flow table: {} concurrent flows ({} records), process RSS {:.1} MB (was {:.1} MB before the table: {:.0} bytes per flow)",
        processor.flow_count(),
        records,
        after as f64 / 1e6,
        before as f64 / 1e6,
        after.saturating_sub(before) as f64 / f64::from(FLOWS_FOR_MEMORY)
    );
}

criterion_group!(benches, throughput);

fn main() {
    flow_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
