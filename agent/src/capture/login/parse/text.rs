//! Small scanning helpers shared by the per-program parsers: the `from IP port N`
//! tail sshd appends, `key=value` lists PAM writes, and `'quoted'` names shadow
//! utilities write. Every helper is total: odd input gives `None`, never a panic.

/// A network peer as sshd prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer<'a> {
    pub ip: &'a str,
    pub port: u32,
}

/// Splits `"<head> from <ip> port <port><tail>"` at the LAST ` from ` whose
/// remainder is a well-formed peer. The last one is the one sshd wrote: a user
/// name is attacker-controlled and may itself contain `from 6.6.6.6 port 22`.
pub fn split_from_peer(s: &str) -> Option<(&str, Peer<'_>, &str)> {
    let at = s.rfind(" from ")?;
    let (peer, tail) = peer_then_tail(&s[at + 6..])?;
    Some((&s[..at], peer, tail))
}

/// Like [`split_from_peer`] but the port is optional (`Invalid user x from 1.2.3.4`
/// in older OpenSSH); a missing port is 0.
pub fn split_from_host(s: &str) -> Option<(&str, Peer<'_>, &str)> {
    if let Some(found) = split_from_peer(s) {
        return Some(found);
    }
    let at = s.rfind(" from ")?;
    let rest = &s[at + 6..];
    let end = rest.find(' ').unwrap_or(rest.len());
    let ip = &rest[..end];
    if !is_host_token(ip) {
        return None;
    }
    Some((&s[..at], Peer { ip, port: 0 }, &rest[end..]))
}

/// Splits `"<head> <ip> port <port><tail>"` (no `from`: sshd's `Connection closed by
/// authenticating user root 1.2.3.4 port 22`), taking the LAST ` port `.
pub fn split_bare_peer(s: &str) -> Option<(&str, Peer<'_>, &str)> {
    let port_at = s.rfind(" port ")?;
    let before = &s[..port_at];
    let ip_at = before.rfind(' ').map_or(0, |i| i + 1);
    let (peer, tail) = peer_then_tail(&s[ip_at..])?;
    let head = s[..ip_at].trim_end();
    Some((head, peer, tail))
}

/// Parses `"<ip> port <port>"` at the start of `s`; the port must end at the end of
/// the string, a space, or a `:`. Returns the peer and what follows the port.
pub fn peer_then_tail(s: &str) -> Option<(Peer<'_>, &str)> {
    let (ip, rest) = s.split_once(" port ")?;
    if !is_host_token(ip) {
        return None;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let tail = &rest[digits..];
    if !(tail.is_empty() || tail.starts_with(' ') || tail.starts_with(':')) {
        return None;
    }
    let port = rest[..digits].parse().ok().filter(|p: &u32| *p <= 65_535)?;
    Some((Peer { ip, port }, tail))
}

/// An IP address or host name as sshd and PAM print it: non-empty, no spaces,
/// only characters that can appear in an address or a DNS name.
pub fn is_host_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'_' | b'%'))
}

/// Value of `key=` in a whitespace-separated `key=value` list (`logname= uid=0 ... user=root`).
/// Returns `None` when the key is absent and `Some("")` when it is present but empty.
pub fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split_ascii_whitespace().find_map(|token| {
        let (k, v) = token.split_once('=')?;
        (k == key).then_some(v)
    })
}

/// The text between the first pair of single quotes after `prefix` at the start
/// of `s`, and what follows the closing quote: `quoted_after("add 'bob' to", "add ")`.
pub fn quoted_after<'a>(s: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = s.strip_prefix(prefix)?.strip_prefix('\'')?;
    let end = rest.find('\'')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Value of `name=` in a comma-separated list (`name=bob, UID=1001, GID=1001`).
pub fn comma_field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    s.split(',').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == key).then_some(v)
    })
}

/// `name` without a trailing `(uid=N)` decoration: `root(uid=0)` → `root`.
pub fn strip_uid_suffix(s: &str) -> &str {
    match s.find('(') {
        Some(i) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_from_wins_against_forged_user_names() {
        let (head, peer, tail) =
            split_from_peer("for root from 6.6.6.6 port 22 from 10.0.0.9 port 50022 ssh2").unwrap();
        assert_eq!(head, "for root from 6.6.6.6 port 22");
        assert_eq!(
            peer,
            Peer {
                ip: "10.0.0.9",
                port: 50022
            }
        );
        assert_eq!(tail, " ssh2");
    }

    #[test]
    fn peer_requires_a_real_port() {
        assert!(peer_then_tail("1.2.3.4 port x").is_none());
        assert!(peer_then_tail("1.2.3.4 port 123456").is_none());
        assert!(peer_then_tail("1.2.3.4 port 70000").is_none());
        assert!(peer_then_tail("1.2.3.4 port 22x").is_none());
        assert!(peer_then_tail("1.2 3.4 port 22").is_none());
        assert_eq!(peer_then_tail("::1 port 22:11: bye").unwrap().1, ":11: bye");
    }

    #[test]
    fn optional_port_and_bare_peer() {
        let (head, peer, _) = split_from_host("Invalid user bob from 1.2.3.4").unwrap();
        assert_eq!(
            (head, peer.ip, peer.port),
            ("Invalid user bob", "1.2.3.4", 0)
        );
        let (head, peer, tail) =
            split_bare_peer("by authenticating user root 1.2.3.4 port 22 [preauth]").unwrap();
        assert_eq!(
            (head, peer.ip, peer.port, tail),
            ("by authenticating user root", "1.2.3.4", 22, " [preauth]")
        );
        assert!(split_bare_peer("port 22").is_none());
    }

    #[test]
    fn fields_and_quotes() {
        let pam = "logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root";
        assert_eq!(field(pam, "user"), Some("root"));
        assert_eq!(field(pam, "ruser"), Some(""));
        assert_eq!(field(pam, "nope"), None);
        assert_eq!(
            quoted_after("add 'bob' to group 'sudo'", "add "),
            Some(("bob", " to group 'sudo'"))
        );
        assert_eq!(quoted_after("add 'bob", "add "), None);
        assert_eq!(
            comma_field("name=bob, UID=1001, home=/home/bob", "UID"),
            Some("1001")
        );
        assert_eq!(strip_uid_suffix("root(uid=0)"), "root");
    }
}
