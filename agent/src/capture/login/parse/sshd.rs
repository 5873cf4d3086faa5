//! OpenSSH server messages (`sshd`, `sshd-session`, and `sshd -E` files without a
//! header): accepted and failed authentications, invalid users, too many attempts,
//! reverse-DNS break-in warnings, and the disconnect family.
//!
//! User names are attacker-controlled and may contain spaces or a forged
//! `from IP port N`: peers are always taken from the LAST such tail sshd wrote.

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::MessageOutcome;
use super::login_event;
use super::text::{
    Peer, is_host_token, peer_then_tail, split_bare_peer, split_from_host, split_from_peer,
};

/// Suffixes sshd's privilege-separated children append.
const CHILD_MARKERS: [&str; 2] = [" [preauth]", " [net]"];

/// Lines that are known and deliberately make no event, each with the reason.
const IGNORED_PREFIXES: [(&str, &str); 7] = [
    (
        "Postponed ",
        "sshd postponed an authentication (the outcome follows)",
    ),
    ("Starting session: ", "repeats the PAM session-opened line"),
    (
        "input_userauth_request: invalid user ",
        "repeats the Invalid user line",
    ),
    (
        "PAM ",
        "sshd's summary of PAM failures already counted one by one",
    ),
    (
        "Disconnecting: Too many authentication failures",
        "repeats the maximum-attempts line",
    ),
    ("Server listening on ", "sshd started (no login)"),
    (
        "error: kex_exchange_identification: ",
        "a connection dropped before the SSH handshake; its peer is in the Connection closed line that follows",
    ),
];

/// Parses one sshd message.
pub(super) fn parse(message: &str) -> MessageOutcome {
    let message = CHILD_MARKERS
        .iter()
        .find_map(|marker| message.strip_suffix(marker))
        .unwrap_or(message);
    let event = if let Some(rest) = message.strip_prefix("Accepted ") {
        authentication(rest, LoginAction::SshAccept, Outcome::Success)
    } else if let Some(rest) = message.strip_prefix("Failed ") {
        authentication(rest, LoginAction::SshFail, Outcome::Failure)
    } else if let Some(rest) = message.strip_prefix("Invalid user ") {
        invalid_user(rest)
    } else if let Some(rest) =
        message.strip_prefix("error: maximum authentication attempts exceeded for ")
    {
        max_auth_exceeded(rest)
    } else if message.contains("POSSIBLE BREAK-IN ATTEMPT") {
        Some(break_in_attempt(message))
    } else if let Some(rest) = message.strip_prefix("User ") {
        not_allowed(rest)
    } else if let Some(rest) = message.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        root_refused(rest)
    } else {
        disconnect(message)
    };
    if let Some(event) = event {
        return MessageOutcome::Event(event);
    }
    match IGNORED_PREFIXES
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
    {
        Some((_, why)) => MessageOutcome::Ignored(why),
        None => MessageOutcome::Unrecognised,
    }
}

fn with_peer(mut event: LoginEvent, peer: Peer<'_>) -> LoginEvent {
    event.source_ip = peer.ip.to_string();
    event.source_port = peer.port;
    event
}

/// `METHOD for [invalid user ]USER from IP port P ssh2[: KEY FP]`
fn authentication(rest: &str, action: LoginAction, outcome: Outcome) -> Option<LoginEvent> {
    let (method, rest) = rest.split_once(" for ")?;
    if method.is_empty() || method.contains(' ') {
        return None;
    }
    let (user, peer, _) = split_from_peer(rest)?;
    let user = user.strip_prefix("invalid user ").unwrap_or(user);
    let mut event = login_event(action, outcome);
    event.user = user.to_string();
    event.auth_method = method.to_string();
    Some(with_peer(event, peer))
}

/// `USER from IP[ port P]`
fn invalid_user(rest: &str) -> Option<LoginEvent> {
    let (user, peer, _) = split_from_host(rest)?;
    let mut event = login_event(LoginAction::InvalidUser, Outcome::Failure);
    event.user = user.to_string();
    Some(with_peer(event, peer))
}

/// `[invalid user ]USER from IP port P ssh2`
fn max_auth_exceeded(rest: &str) -> Option<LoginEvent> {
    let (user, peer, _) = split_from_peer(rest)?;
    let mut event = login_event(LoginAction::MaxAuthExceeded, Outcome::Failure);
    event.user = user
        .strip_prefix("invalid user ")
        .unwrap_or(user)
        .to_string();
    Some(with_peer(event, peer))
}

/// `reverse mapping checking getaddrinfo for HOST [IP] failed - POSSIBLE BREAK-IN ATTEMPT!`
/// or `Address IP maps to HOST, but this does not map back to the address - ...`.
fn break_in_attempt(message: &str) -> LoginEvent {
    let mut event = login_event(LoginAction::BreakInAttempt, Outcome::Failure);
    let bracketed = message
        .rfind('[')
        .and_then(|open| message[open + 1..].split_once(']').map(|(ip, _)| ip));
    let address = message
        .strip_prefix("Address ")
        .and_then(|rest| rest.split(' ').next());
    if let Some(ip) = bracketed.or(address).filter(|ip| is_host_token(ip)) {
        event.source_ip = ip.to_string();
    }
    event
}

/// `USER from IP not allowed because not listed in AllowUsers`
fn not_allowed(rest: &str) -> Option<LoginEvent> {
    let (head, _) = rest.rsplit_once(" not allowed because ")?;
    let (user, peer, _) = split_from_host(head)?;
    let mut event = login_event(LoginAction::SshFail, Outcome::Failure);
    event.user = user.to_string();
    Some(with_peer(event, peer))
}

/// `ROOT LOGIN REFUSED FROM IP[ port P]`
fn root_refused(rest: &str) -> Option<LoginEvent> {
    let mut event = login_event(LoginAction::SshFail, Outcome::Failure);
    event.user = "root".to_string();
    match peer_then_tail(rest) {
        Some((peer, _)) => Some(with_peer(event, peer)),
        None => {
            let ip = rest.split(' ').next().filter(|ip| is_host_token(ip))?;
            event.source_ip = ip.to_string();
            Some(event)
        }
    }
}

/// The disconnect family: `Connection closed by [authenticating user|invalid user]
/// [USER ]IP port P`, `Disconnected from ...`, `Received disconnect from IP port P:11: ...`,
/// `Did not receive identification string from IP`, `Unable to negotiate with IP port P: ...`.
fn disconnect(message: &str) -> Option<LoginEvent> {
    const WITH_USER: [&str; 4] = [
        "Connection closed by ",
        "Connection reset by ",
        "Disconnected from ",
        "Disconnecting ",
    ];
    const PEER_ONLY: [&str; 4] = [
        "Received disconnect from ",
        "Did not receive identification string from ",
        "Unable to negotiate with ",
        "Timeout before authentication for ",
    ];
    let mut event = login_event(LoginAction::SshDisconnect, Outcome::Unspecified);
    if let Some(rest) = WITH_USER
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
    {
        let (head, peer, _) = split_bare_peer(rest)?;
        let user = ["authenticating user ", "invalid user ", "user "]
            .iter()
            .find_map(|qualifier| head.strip_prefix(qualifier));
        match user {
            Some(user) => event.user = user.to_string(),
            None if head.is_empty() => {}
            None => return None,
        }
        return Some(with_peer(event, peer));
    }
    let rest = PEER_ONLY
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))?;
    if let Some((peer, _)) = peer_then_tail(rest) {
        return Some(with_peer(event, peer));
    }
    let ip = rest.split([' ', ',']).next()?.trim_end_matches(':');
    if !is_host_token(ip) {
        return None;
    }
    event.source_ip = ip.to_string();
    Some(event)
}
