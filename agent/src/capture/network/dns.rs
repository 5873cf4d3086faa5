//! Pure DNS message parser (RFC 1035 wire format): header, first question, and
//! the answers an analyst reads (A, AAAA, CNAME, PTR, NS, MX).
//!
//! Names are lowercased, have no trailing dot, and show bytes outside
//! `[a-z0-9-_*]` as `\DDD` escapes so odd names stay visible but printable.
//! Compression pointers must point backwards (no loops); names longer than 255
//! bytes and labels longer than 63 are errors.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Most answers kept from one response.
pub const MAX_ANSWERS: usize = 32;
const MAX_NAME_LEN: usize = 255;

/// Why a DNS message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("dns message truncated")]
    Truncated,
    #[error("bad dns name")]
    BadName,
    #[error("dns message has no question")]
    NoQuestion,
}

/// The parts of a DNS message that become a `dns_query` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    pub is_response: bool,
    pub rcode: u8,
    /// First question name (lowercase, no trailing dot).
    pub name: String,
    pub qtype: u16,
    /// Answer data as text: addresses for A/AAAA, names for CNAME/PTR/NS/MX.
    pub answers: Vec<String>,
}

/// Parses a DNS message. Only standard queries and their responses are
/// meaningful; other opcodes parse the same way.
pub fn parse(message: &[u8]) -> Result<DnsMessage, DnsError> {
    let header = message.get(..12).ok_or(DnsError::Truncated)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let is_response = header[2] & 0x80 != 0;
    let rcode = header[3] & 0x0f;
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answer_count = u16::from_be_bytes([header[6], header[7]]);
    if questions == 0 {
        return Err(DnsError::NoQuestion);
    }
    let mut offset = 12;
    let name = read_name(message, &mut offset)?;
    let qtype = read_u16(message, offset)?;
    let _class = read_u16(message, offset + 2)?;
    offset += 4;
    for _ in 1..questions {
        skip_name(message, &mut offset)?;
        offset += 4;
    }
    let mut answers = Vec::new();
    for _ in 0..answer_count {
        skip_name(message, &mut offset)?;
        let rtype = read_u16(message, offset)?;
        let rdata_len = usize::from(read_u16(message, offset + 8)?);
        let rdata_start = offset + 10;
        let rdata = message
            .get(rdata_start..rdata_start + rdata_len)
            .ok_or(DnsError::Truncated)?;
        offset = rdata_start + rdata_len;
        if answers.len() >= MAX_ANSWERS {
            continue;
        }
        match (rtype, rdata.len()) {
            (1, 4) => {
                answers.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string())
            }
            (28, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(rdata);
                answers.push(Ipv6Addr::from(octets).to_string());
            }
            // CNAME, PTR, NS: a name; MX: preference then a name.
            (5 | 12 | 2, _) => answers.push(read_name(message, &mut rdata_start.clone())?),
            (15, _) => answers.push(read_name(message, &mut (rdata_start + 2))?),
            _ => {}
        }
    }
    Ok(DnsMessage {
        id,
        is_response,
        rcode,
        name,
        qtype,
        answers,
    })
}

/// Conventional name of a record type (`A`, `AAAA`, ...; `TYPE<n>` otherwise).
pub fn type_name(qtype: u16) -> String {
    let name = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        46 => "RRSIG",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        other => return format!("TYPE{other}"),
    };
    name.to_string()
}

/// Conventional name of a response code (`NOERROR`, `NXDOMAIN`, ...).
pub fn rcode_name(rcode: u8) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        other => return format!("RCODE{other}"),
    };
    name.to_string()
}

fn read_u16(message: &[u8], offset: usize) -> Result<u16, DnsError> {
    let bytes = message.get(offset..offset + 2).ok_or(DnsError::Truncated)?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Reads a possibly compressed name at `*offset` and moves `*offset` past it.
fn read_name(message: &[u8], offset: &mut usize) -> Result<String, DnsError> {
    let mut name = String::new();
    let mut position = *offset;
    let mut jumped = false;
    let mut wire_len = 0usize;
    loop {
        let len = *message.get(position).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                if !jumped {
                    *offset = position + 1;
                }
                return Ok(name);
            }
            0x00 => {
                let label = message
                    .get(position + 1..position + 1 + usize::from(len))
                    .ok_or(DnsError::Truncated)?;
                wire_len += label.len() + 1;
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::BadName);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                push_label(&mut name, label);
                position += 1 + label.len();
            }
            0xc0 => {
                let low = *message.get(position + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                // Pointers must go backwards: this bounds the walk and forbids loops.
                if target >= position {
                    return Err(DnsError::BadName);
                }
                if !jumped {
                    *offset = position + 2;
                    jumped = true;
                }
                position = target;
            }
            _ => return Err(DnsError::BadName),
        }
    }
}

/// Moves `*offset` past a name without building it.
fn skip_name(message: &[u8], offset: &mut usize) -> Result<(), DnsError> {
    loop {
        let len = *message.get(*offset).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                *offset += 1;
                return Ok(());
            }
            0x00 => *offset += 1 + usize::from(len),
            0xc0 => {
                *offset += 2;
                return Ok(());
            }
            _ => return Err(DnsError::BadName),
        }
    }
}

fn push_label(name: &mut String, label: &[u8]) {
    for &byte in label {
        let c = byte.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'*') {
            name.push(char::from(c));
        } else {
            let _ = write!(name, "\\{byte:03}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::network::frames;

    #[test]
    fn query_and_response_round_trip() {
        let query = frames::dns_query(0xbeef, "Pool.Mining.EXAMPLE.", frames::DNS_A);
        let parsed = parse(&query).expect("query");
        assert_eq!(parsed.id, 0xbeef);
        assert!(!parsed.is_response);
        assert_eq!(parsed.name, "pool.mining.example");
        assert_eq!(type_name(parsed.qtype), "A");
        assert!(parsed.answers.is_empty());

        let answers = ["192.0.2.1".parse().unwrap(), "2001:db8::5".parse().unwrap()];
        let response = frames::dns_response(&query, 0, &answers).expect("response");
        let parsed = parse(&response).expect("response");
        assert!(parsed.is_response);
        assert_eq!(rcode_name(parsed.rcode), "NOERROR");
        assert_eq!(parsed.answers, vec!["192.0.2.1", "2001:db8::5"]);
    }

    #[test]
    fn cname_answers_follow_compression_pointers() {
        let query = frames::dns_query(1, "www.example", frames::DNS_A);
        let mut response = frames::dns_response(&query, 0, &[]).expect("response");
        response[7] = 1; // one answer
        // Name pointer to the question, type CNAME, class IN, ttl, rdata: "cdn" + pointer to "example".
        response.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6]);
        response.extend_from_slice(&[3, b'c', b'd', b'n', 0xc0, 16]);
        let parsed = parse(&response).expect("cname");
        assert_eq!(parsed.answers, vec!["cdn.example"]);
    }

    #[test]
    fn nxdomain_and_type_names() {
        let query = frames::dns_query(2, "x.invalid", frames::DNS_AAAA);
        let response = frames::dns_response(&query, 3, &[]).expect("response");
        let parsed = parse(&response).expect("nxdomain");
        assert_eq!(rcode_name(parsed.rcode), "NXDOMAIN");
        assert_eq!(type_name(parsed.qtype), "AAAA");
        assert_eq!(type_name(999), "TYPE999");
        assert_eq!(rcode_name(9), "RCODE9");
    }

    #[test]
    fn odd_bytes_in_names_are_escaped() {
        let mut query = frames::dns_query(3, "ab", frames::DNS_A);
        query[13] = b'.';
        assert_eq!(parse(&query).expect("query").name, "\\046b");
    }

    #[test]
    fn malformed_messages_are_errors() {
        let query = frames::dns_query(4, "a.example", frames::DNS_A);
        for cut in 0..query.len() {
            assert!(parse(&query[..cut]).is_err(), "cut at {cut}");
        }
        let mut no_question = query.clone();
        no_question[5] = 0;
        assert_eq!(parse(&no_question), Err(DnsError::NoQuestion));

        // A pointer to itself: a loop.
        let mut looping = query.clone();
        looping.truncate(12);
        looping.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(parse(&looping), Err(DnsError::BadName));

        // Reserved label type 0x40.
        let mut reserved = query.clone();
        reserved[12] = 0x41;
        assert_eq!(parse(&reserved), Err(DnsError::BadName));

        // A name longer than 255 bytes.
        let mut long = query[..12].to_vec();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(parse(&long), Err(DnsError::BadName));

        // An answer whose rdata runs past the end.
        let mut response =
            frames::dns_response(&query, 0, &["192.0.2.9".parse().unwrap()]).expect("response");
        response.pop();
        assert_eq!(parse(&response), Err(DnsError::Truncated));
    }
}
