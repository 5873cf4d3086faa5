//! Builders of well-formed Ethernet frames and DNS messages for tests, benchmarks
//! and the namespace tests' DNS responder. Checksums are left zero: nothing in the
//! agent verifies them (offloading makes captured checksums unreliable anyway).

use std::net::IpAddr;

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// An Ethernet frame around an IPv4 or IPv6 packet carrying `transport` (a
/// complete transport header plus payload) with IP protocol `protocol`.
pub fn ip_frame(src: IpAddr, dst: IpAddr, protocol: u8, transport: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + 40 + transport.len());
    frame.extend_from_slice(&MAC_B);
    frame.extend_from_slice(&MAC_A);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            frame.extend_from_slice(&0x0800u16.to_be_bytes());
            let total = (20 + transport.len()) as u16;
            frame.extend_from_slice(&[0x45, 0]);
            frame.extend_from_slice(&total.to_be_bytes());
            frame.extend_from_slice(&[0, 1, 0x40, 0, 64, protocol, 0, 0]);
            frame.extend_from_slice(&src.octets());
            frame.extend_from_slice(&dst.octets());
        }
        (src, dst) => {
            frame.extend_from_slice(&0x86ddu16.to_be_bytes());
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&(transport.len() as u16).to_be_bytes());
            frame.extend_from_slice(&[protocol, 64]);
            frame.extend_from_slice(&v6_octets(src));
            frame.extend_from_slice(&v6_octets(dst));
        }
    }
    frame.extend_from_slice(transport);
    frame
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// A TCP segment frame with `flags` and `payload_len` zero bytes of payload.
pub fn tcp(
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    flags: u8,
    payload_len: usize,
) -> Vec<u8> {
    let mut segment = Vec::with_capacity(20 + payload_len);
    segment.extend_from_slice(&src_port.to_be_bytes());
    segment.extend_from_slice(&dst_port.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    segment.resize(20 + payload_len, 0);
    ip_frame(src, dst, 6, &segment)
}

/// A UDP datagram frame.
pub fn udp(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(8 + payload.len());
    datagram.extend_from_slice(&src_port.to_be_bytes());
    datagram.extend_from_slice(&dst_port.to_be_bytes());
    datagram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(payload);
    let protocol = 17;
    ip_frame(src, dst, protocol, &datagram)
}

/// An ICMP (IPv4) or ICMPv6 (IPv6) message frame; `rest` is the 4 bytes after
/// the checksum (the echo identifier and sequence for echoes).
pub fn icmp(src: IpAddr, dst: IpAddr, kind: u8, code: u8, rest: [u8; 4]) -> Vec<u8> {
    let message = [kind, code, 0, 0, rest[0], rest[1], rest[2], rest[3]];
    let protocol = if src.is_ipv4() { 1 } else { 58 };
    ip_frame(src, dst, protocol, &message)
}

/// Inserts an 802.1Q tag with `vlan` after the MAC addresses.
pub fn with_vlan(frame: &[u8], vlan: u16) -> Vec<u8> {
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&0x8100u16.to_be_bytes());
    tagged.extend_from_slice(&vlan.to_be_bytes());
    tagged.extend_from_slice(&frame[12..]);
    tagged
}

/// DNS record type numbers used by the builders.
pub const DNS_A: u16 = 1;
/// AAAA.
pub const DNS_AAAA: u16 = 28;
/// CNAME.
pub const DNS_CNAME: u16 = 5;

/// A DNS query for `name` of type `qtype`.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut message = Vec::with_capacity(32 + name.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    push_question(&mut message, name, qtype);
    message
}

/// A DNS response to `query` (a message from [`dns_query`] or a real client) with
/// `rcode` and one answer per address (A or AAAA by address family), each using a
/// compression pointer to the question name.
pub fn dns_response(query: &[u8], rcode: u8, answers: &[IpAddr]) -> Option<Vec<u8>> {
    // Header (12) + question: the name runs to its zero label, then type and class.
    let name_end = 12 + query.get(12..)?.iter().position(|&b| b == 0)? + 1;
    let question = query.get(12..name_end + 4)?;
    let mut message = Vec::with_capacity(64 + answers.len() * 28);
    message.extend_from_slice(query.get(..2)?);
    message.extend_from_slice(&[0x81, 0x80 | (rcode & 0x0f), 0, 1]);
    message.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    message.extend_from_slice(&[0, 0, 0, 0]);
    message.extend_from_slice(question);
    for answer in answers {
        message.extend_from_slice(&[0xc0, 12]);
        let (rtype, rdata) = match answer {
            IpAddr::V4(v4) => (DNS_A, v4.octets().to_vec()),
            IpAddr::V6(v6) => (DNS_AAAA, v6.octets().to_vec()),
        };
        message.extend_from_slice(&rtype.to_be_bytes());
        message.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        message.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        message.extend_from_slice(&rdata);
    }
    Some(message)
}

fn push_question(message: &mut Vec<u8>, name: &str, qtype: u16) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        message.push(label.len().min(63) as u8);
        message.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    message.push(0);
    message.extend_from_slice(&qtype.to_be_bytes());
    message.extend_from_slice(&[0, 1]);
}
