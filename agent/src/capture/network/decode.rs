//! Pure packet decoder: Ethernet (up to two VLAN tags) → IPv4/IPv6 (with IPv6
//! extension headers) → TCP/UDP/ICMP/ICMPv6 headers.
//!
//! No I/O, no allocation, no panics: every read is bounds-checked and anything
//! malformed comes back as a [`DecodeError`] for the caller to count and skip.
//! Fragments are reported as [`DecodeError::Fragment`] (their transport header is
//! absent or incomplete).
//!
//! Frames may be cut short by the capture's snap length (the BPF filter keeps only
//! headers for most packets), so lengths come from the IP header, not the frame:
//! [`Packet::ip_len`] is the packet's size on the wire above layer 2, and payload
//! slices are what was captured of it (never past the length the headers state,
//! so Ethernet padding is not payload).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const MAX_VLAN_TAGS: usize = 2;
const MAX_IPV6_EXTENSIONS: usize = 8;

/// IP protocol numbers the decoder understands.
pub const PROTO_ICMP: u8 = 1;
/// TCP.
pub const PROTO_TCP: u8 = 6;
/// UDP.
pub const PROTO_UDP: u8 = 17;
/// ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;

/// The header that was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Ethernet,
    Vlan,
    Ipv4,
    Ipv6,
    Ipv6Extension,
    Tcp,
    Udp,
    Icmp,
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Extension => "ipv6 extension",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
        })
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ends inside a header.
    #[error("truncated {0} header")]
    Truncated(Layer),
    /// A length or header-length field is impossible.
    #[error("bad {0} length")]
    BadLength(Layer),
    /// A header field is invalid (IP version, too many VLAN tags or extensions).
    #[error("bad {0} header")]
    BadHeader(Layer),
    /// An IP fragment: its transport header is absent or incomplete.
    #[error("ip fragment")]
    Fragment,
    /// Not IPv4 or IPv6 (ARP, LLDP, ...).
    #[error("not ip (ethertype {0:#06x})")]
    NotIp(u16),
}

impl DecodeError {
    /// Name of the agent counter this error is counted under.
    pub fn counter(self) -> &'static str {
        match self {
            DecodeError::Truncated(_) | DecodeError::BadLength(_) | DecodeError::BadHeader(_) => {
                "network.malformed"
            }
            DecodeError::Fragment => "network.fragments",
            DecodeError::NotIp(_) => "network.not_ip",
        }
    }
}

/// TCP flag bits (the low byte of the flags field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    /// Whether every bit of `mask` is set.
    pub fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }
}

/// A decoded transport header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: TcpFlags,
    },
    Udp {
        src_port: u16,
        dst_port: u16,
        /// The captured part of the datagram's payload.
        payload: &'a [u8],
    },
    /// ICMP (`v6 == false`) or ICMPv6.
    Icmp {
        v6: bool,
        kind: u8,
        code: u8,
        /// Identifier of echo requests and replies.
        echo_id: Option<u16>,
    },
    /// Another IP protocol (GRE, ESP, SCTP, ...), by number.
    Other(u8),
}

/// One decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// First VLAN id when the frame carried a tag in its data.
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Size of the IP packet on the wire, from its header.
    pub ip_len: u32,
    pub transport: Transport<'a>,
}

/// Decodes an Ethernet frame.
pub fn decode(frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let mut ethertype = be16(frame, 12).ok_or(DecodeError::Truncated(Layer::Ethernet))?;
    let mut offset = 14;
    let mut vlan = None;
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(DecodeError::BadHeader(Layer::Vlan));
        }
        let tci = be16(frame, offset).ok_or(DecodeError::Truncated(Layer::Vlan))?;
        ethertype = be16(frame, offset + 2).ok_or(DecodeError::Truncated(Layer::Vlan))?;
        vlan.get_or_insert(tci & 0x0fff);
        offset += 4;
    }
    let ip = frame.get(offset..).unwrap_or_default();
    let mut packet = match ethertype {
        ETHERTYPE_IPV4 => decode_ipv4(ip)?,
        ETHERTYPE_IPV6 => decode_ipv6(ip)?,
        other => return Err(DecodeError::NotIp(other)),
    };
    packet.vlan = vlan;
    Ok(packet)
}

/// Decodes a frame that starts at the IP header (tun, WireGuard and other
/// interfaces without a link-layer header).
pub fn decode_ip(frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(frame),
        Some(6) => decode_ipv6(frame),
        Some(_) => Err(DecodeError::BadHeader(Layer::Ipv4)),
        None => Err(DecodeError::Truncated(Layer::Ipv4)),
    }
}

fn decode_ipv4(data: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let header = data.get(..20).ok_or(DecodeError::Truncated(Layer::Ipv4))?;
    if header[0] >> 4 != 4 {
        return Err(DecodeError::BadHeader(Layer::Ipv4));
    }
    let header_len = usize::from(header[0] & 0x0f) * 4;
    if header_len < 20 {
        return Err(DecodeError::BadLength(Layer::Ipv4));
    }
    if data.len() < header_len {
        return Err(DecodeError::Truncated(Layer::Ipv4));
    }
    let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    // A zero total length is what the kernel shows for IPv4 "BIG TCP" super-packets
    // on their way to the driver: the real size is the captured size then.
    let total_len = if total_len == 0 {
        data.len()
    } else {
        total_len
    };
    if total_len < header_len {
        return Err(DecodeError::BadLength(Layer::Ipv4));
    }
    let fragment = u16::from_be_bytes([header[6], header[7]]);
    if fragment & 0x3fff != 0 {
        return Err(DecodeError::Fragment);
    }
    let src = IpAddr::V4(Ipv4Addr::new(
        header[12], header[13], header[14], header[15],
    ));
    let dst = IpAddr::V4(Ipv4Addr::new(
        header[16], header[17], header[18], header[19],
    ));
    let captured_end = total_len.min(data.len());
    let payload = &data[header_len..captured_end];
    let transport = decode_transport(header[9], payload, total_len - header_len)?;
    Ok(Packet {
        vlan: None,
        src,
        dst,
        ip_len: total_len as u32,
        transport,
    })
}

fn decode_ipv6(data: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let header = data.get(..40).ok_or(DecodeError::Truncated(Layer::Ipv6))?;
    if header[0] >> 4 != 6 {
        return Err(DecodeError::BadHeader(Layer::Ipv6));
    }
    let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    // Zero means a jumbogram or an IPv6 "BIG TCP" super-packet: use what was captured.
    let total_len = if payload_len == 0 {
        data.len()
    } else {
        40 + payload_len
    };
    let mut src = [0u8; 16];
    src.copy_from_slice(&header[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&header[24..40]);
    let mut next = header[6];
    let mut offset = 40;
    for _ in 0..=MAX_IPV6_EXTENSIONS {
        let extension_len = match next {
            // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
            0 | 43 | 60 => {
                let len = data
                    .get(offset + 1)
                    .ok_or(DecodeError::Truncated(Layer::Ipv6Extension))?;
                (usize::from(*len) + 1) * 8
            }
            // Authentication header: (len + 2) * 4 bytes.
            51 => {
                let len = data
                    .get(offset + 1)
                    .ok_or(DecodeError::Truncated(Layer::Ipv6Extension))?;
                (usize::from(*len) + 2) * 4
            }
            // Fragment header: 8 bytes; only an "atomic" fragment (offset 0, no
            // more fragments) carries a whole transport header.
            44 => {
                let field =
                    be16(data, offset + 2).ok_or(DecodeError::Truncated(Layer::Ipv6Extension))?;
                if field & 0xfff9 != 0 {
                    return Err(DecodeError::Fragment);
                }
                8
            }
            protocol => {
                if total_len < offset {
                    return Err(DecodeError::BadLength(Layer::Ipv6));
                }
                let payload = data
                    .get(offset..total_len.min(data.len()))
                    .unwrap_or_default();
                let transport = decode_transport(protocol, payload, total_len - offset)?;
                return Ok(Packet {
                    vlan: None,
                    src: IpAddr::V6(Ipv6Addr::from(src)),
                    dst: IpAddr::V6(Ipv6Addr::from(dst)),
                    ip_len: total_len as u32,
                    transport,
                });
            }
        };
        next = *data
            .get(offset)
            .ok_or(DecodeError::Truncated(Layer::Ipv6Extension))?;
        offset += extension_len;
        if offset > data.len() {
            return Err(DecodeError::Truncated(Layer::Ipv6Extension));
        }
    }
    Err(DecodeError::BadHeader(Layer::Ipv6Extension))
}

/// Decodes the transport header in `payload` (the captured bytes), of which the IP
/// header says there are `stated_len`.
fn decode_transport(
    protocol: u8,
    payload: &[u8],
    stated_len: usize,
) -> Result<Transport<'_>, DecodeError> {
    match protocol {
        PROTO_TCP => {
            if stated_len < 20 {
                return Err(DecodeError::BadLength(Layer::Tcp));
            }
            let header = payload
                .get(..20)
                .ok_or(DecodeError::Truncated(Layer::Tcp))?;
            let data_offset = usize::from(header[12] >> 4) * 4;
            if data_offset < 20 || data_offset > stated_len {
                return Err(DecodeError::BadLength(Layer::Tcp));
            }
            Ok(Transport::Tcp {
                src_port: u16::from_be_bytes([header[0], header[1]]),
                dst_port: u16::from_be_bytes([header[2], header[3]]),
                flags: TcpFlags(header[13]),
            })
        }
        PROTO_UDP => {
            if stated_len < 8 {
                return Err(DecodeError::BadLength(Layer::Udp));
            }
            let header = payload.get(..8).ok_or(DecodeError::Truncated(Layer::Udp))?;
            let udp_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            if udp_len < 8 || udp_len > stated_len {
                return Err(DecodeError::BadLength(Layer::Udp));
            }
            Ok(Transport::Udp {
                src_port: u16::from_be_bytes([header[0], header[1]]),
                dst_port: u16::from_be_bytes([header[2], header[3]]),
                payload: &payload[8..udp_len.min(payload.len())],
            })
        }
        PROTO_ICMP | PROTO_ICMPV6 => {
            let v6 = protocol == PROTO_ICMPV6;
            if stated_len < 8 {
                return Err(DecodeError::BadLength(Layer::Icmp));
            }
            // Type, code, checksum and the 4-byte rest of header (echo id and sequence).
            let header = payload
                .get(..8)
                .ok_or(DecodeError::Truncated(Layer::Icmp))?;
            let (kind, code) = (header[0], header[1]);
            let is_echo = if v6 {
                matches!(kind, 128 | 129)
            } else {
                matches!(kind, 0 | 8)
            };
            let echo_id = is_echo.then(|| u16::from_be_bytes([header[4], header[5]]));
            Ok(Transport::Icmp {
                v6,
                kind,
                code,
                echo_id,
            })
        }
        other => Ok(Transport::Other(other)),
    }
}

fn be16(data: &[u8], offset: usize) -> Option<u16> {
    let bytes = data.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
