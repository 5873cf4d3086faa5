//! Decoder tests: every protocol layer on well-formed frames, then truncated,
//! bad-length and fragmented frames, which must be errors and never panics.

use std::net::IpAddr;

use super::*;
use crate::capture::network::frames;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn tcp_syn_over_ipv4() {
    let frame = frames::tcp(ip("10.0.0.1"), 40000, ip("10.0.0.2"), 443, TcpFlags::SYN, 0);
    let packet = decode(&frame).expect("valid frame");
    assert_eq!(packet.src, ip("10.0.0.1"));
    assert_eq!(packet.dst, ip("10.0.0.2"));
    assert_eq!(packet.ip_len, 40);
    assert_eq!(packet.vlan, None);
    assert_eq!(
        packet.transport,
        Transport::Tcp {
            src_port: 40000,
            dst_port: 443,
            flags: TcpFlags(TcpFlags::SYN)
        }
    );
}

#[test]
fn udp_over_ipv6_with_payload() {
    let frame = frames::udp(ip("2001:db8::1"), 5353, ip("2001:db8::2"), 53, b"hello");
    let packet = decode(&frame).expect("valid frame");
    assert_eq!(packet.src, ip("2001:db8::1"));
    assert_eq!(packet.ip_len, 40 + 8 + 5);
    let Transport::Udp {
        src_port,
        dst_port,
        payload,
    } = packet.transport
    else {
        panic!("expected udp, got {:?}", packet.transport);
    };
    assert_eq!((src_port, dst_port, payload), (5353, 53, &b"hello"[..]));
}

#[test]
fn icmp_echo_and_unreachable() {
    let echo = frames::icmp(ip("10.0.0.1"), ip("10.0.0.2"), 8, 0, [0x12, 0x34, 0, 1]);
    let packet = decode(&echo).expect("echo");
    assert_eq!(
        packet.transport,
        Transport::Icmp {
            v6: false,
            kind: 8,
            code: 0,
            echo_id: Some(0x1234)
        }
    );
    let unreachable = frames::icmp(ip("2001:db8::1"), ip("2001:db8::2"), 1, 4, [0; 4]);
    let packet = decode(&unreachable).expect("unreachable");
    assert_eq!(
        packet.transport,
        Transport::Icmp {
            v6: true,
            kind: 1,
            code: 4,
            echo_id: None
        }
    );
}

#[test]
fn vlan_tags_are_skipped_and_the_first_id_kept() {
    let frame = frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::ACK, 10);
    let tagged = frames::with_vlan(&frame, 42);
    let packet = decode(&tagged).expect("one tag");
    assert_eq!(packet.vlan, Some(42));
    assert_eq!(packet.ip_len, 50);
    let double = frames::with_vlan(&tagged, 7);
    assert_eq!(decode(&double).expect("two tags").vlan, Some(7));
    let triple = frames::with_vlan(&double, 8);
    assert_eq!(decode(&triple), Err(DecodeError::BadHeader(Layer::Vlan)));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut frame = frames::udp(ip("10.0.0.1"), 1000, ip("10.0.0.2"), 53, b"ab");
    frame.resize(60, 0xee);
    let packet = decode(&frame).expect("padded frame");
    assert_eq!(packet.ip_len, 30);
    assert!(matches!(packet.transport, Transport::Udp { payload, .. } if payload == b"ab"));
}

#[test]
fn snapped_frames_keep_the_stated_length() {
    let frame = frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::ACK, 1400);
    let packet = decode(&frame[..80]).expect("headers are complete");
    assert_eq!(packet.ip_len, 1440);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    // Hop-by-hop (8 bytes) then destination options (16 bytes) then UDP.
    let mut transport = vec![60, 0, 0, 0, 0, 0, 0, 0, 17, 1];
    transport.resize(24, 0);
    transport.extend_from_slice(&[0, 7, 0, 9, 0, 8, 0, 0]);
    let frame = frames::ip_frame(ip("2001:db8::1"), ip("2001:db8::2"), 0, &transport);
    let packet = decode(&frame).expect("extension chain");
    assert!(matches!(
        packet.transport,
        Transport::Udp {
            src_port: 7,
            dst_port: 9,
            ..
        }
    ));
}

#[test]
fn raw_ip_frames_decode_without_a_link_header() {
    let frame = frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::SYN, 0);
    let packet = decode_ip(&frame[14..]).expect("raw ipv4");
    assert_eq!(packet.dst, ip("10.0.0.2"));
    assert_eq!(decode_ip(&[]), Err(DecodeError::Truncated(Layer::Ipv4)));
    assert_eq!(decode_ip(&[0x50]), Err(DecodeError::BadHeader(Layer::Ipv4)));
}

#[test]
fn non_ip_frames_are_reported_by_ethertype() {
    let mut arp = vec![0u8; 42];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(decode(&arp), Err(DecodeError::NotIp(0x0806)));
    assert_eq!(DecodeError::NotIp(0x0806).counter(), "network.not_ip");
}

#[test]
fn every_truncation_of_valid_frames_is_an_error_not_a_panic() {
    let frames = [
        frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::SYN, 0),
        frames::udp(ip("2001:db8::1"), 1, ip("2001:db8::2"), 53, b""),
        frames::icmp(ip("10.0.0.1"), ip("10.0.0.2"), 8, 0, [0; 4]),
        frames::with_vlan(&frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, 0, 0), 3),
    ];
    for frame in &frames {
        for cut in 0..frame.len() {
            let result = decode(&frame[..cut]);
            let error = result.expect_err("a truncated header must not decode");
            assert!(
                matches!(error, DecodeError::Truncated(_)),
                "cut at {cut}: {error:?}"
            );
            assert_eq!(error.counter(), "network.malformed");
        }
        assert!(decode(frame).is_ok());
    }
}

#[test]
fn bad_lengths_are_errors() {
    let good = frames::tcp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 2, TcpFlags::SYN, 0);

    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    assert_eq!(decode(&short_ihl), Err(DecodeError::BadLength(Layer::Ipv4)));

    let mut long_ihl = good.clone();
    long_ihl[14] = 0x4f;
    assert_eq!(decode(&long_ihl), Err(DecodeError::Truncated(Layer::Ipv4)));

    let mut small_total = good.clone();
    small_total[16..18].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        decode(&small_total),
        Err(DecodeError::BadLength(Layer::Ipv4))
    );

    let mut total_below_tcp_header = good.clone();
    total_below_tcp_header[16..18].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(
        decode(&total_below_tcp_header),
        Err(DecodeError::BadLength(Layer::Tcp))
    );

    let mut bad_data_offset = good.clone();
    bad_data_offset[14 + 20 + 12] = 0x20;
    assert_eq!(
        decode(&bad_data_offset),
        Err(DecodeError::BadLength(Layer::Tcp))
    );

    let mut wrong_version = good.clone();
    wrong_version[14] = 0x65;
    assert_eq!(
        decode(&wrong_version),
        Err(DecodeError::BadHeader(Layer::Ipv4))
    );

    let udp = frames::udp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 53, b"abcd");
    let mut udp_len_too_big = udp.clone();
    udp_len_too_big[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(
        decode(&udp_len_too_big),
        Err(DecodeError::BadLength(Layer::Udp))
    );
    let mut udp_len_too_small = udp;
    udp_len_too_small[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        decode(&udp_len_too_small),
        Err(DecodeError::BadLength(Layer::Udp))
    );

    let v6 = frames::udp(ip("2001:db8::1"), 1, ip("2001:db8::2"), 53, b"abcd");
    let mut v6_short_payload = v6;
    v6_short_payload[14 + 4..14 + 6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        decode(&v6_short_payload),
        Err(DecodeError::BadLength(Layer::Udp))
    );
}

#[test]
fn fragments_are_reported_as_fragments() {
    let good = frames::udp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 53, b"abcd");
    let mut more_fragments = good.clone();
    more_fragments[20] = 0x20;
    assert_eq!(decode(&more_fragments), Err(DecodeError::Fragment));
    let mut later_fragment = good;
    later_fragment[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
    assert_eq!(decode(&later_fragment), Err(DecodeError::Fragment));
    assert_eq!(DecodeError::Fragment.counter(), "network.fragments");

    // IPv6 fragment header with offset 0 and M set: a first fragment.
    let mut transport = vec![17, 0, 0, 1, 0, 0, 0, 1];
    transport.extend_from_slice(&[0, 7, 0, 9, 0, 8, 0, 0]);
    let v6_fragment = frames::ip_frame(ip("2001:db8::1"), ip("2001:db8::2"), 44, &transport);
    assert_eq!(decode(&v6_fragment), Err(DecodeError::Fragment));
    // An atomic fragment (offset 0, no more) carries the whole datagram.
    transport[3] = 0;
    let atomic = frames::ip_frame(ip("2001:db8::1"), ip("2001:db8::2"), 44, &transport);
    assert!(matches!(
        decode(&atomic).expect("atomic fragment").transport,
        Transport::Udp { src_port: 7, .. }
    ));
}

#[test]
fn endless_ipv6_extension_chains_are_refused() {
    let mut transport = Vec::new();
    for _ in 0..12 {
        transport.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
    }
    let frame = frames::ip_frame(ip("2001:db8::1"), ip("2001:db8::2"), 60, &transport);
    assert_eq!(
        decode(&frame),
        Err(DecodeError::BadHeader(Layer::Ipv6Extension))
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic sweep; the cargo-fuzz target covers this properly.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let base = frames::udp(ip("10.0.0.1"), 1, ip("10.0.0.2"), 53, &[0u8; 40]);
    for _ in 0..20_000 {
        let mut frame = base.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = (state as usize) % frame.len();
            frame[index] = (state >> 32) as u8;
        }
        let cut = (state >> 40) as usize % (frame.len() + 1);
        let _ = decode(&frame[..cut]);
        let _ = decode_ip(&frame[14.min(cut)..cut]);
    }
}
