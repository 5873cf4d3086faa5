//! Console and remote-shell logins: `login` from shadow and util-linux
//! (`ROOT LOGIN ON tty2`, `LOGIN ON tty1 BY alice FROM host`, `FAILED LOGIN (1) on
//! '/dev/tty1' FOR 'alice', Authentication failure`, `TOO MANY LOGIN TRIES (5) ...`)
//! and the Kerberos `klogind` refusals.

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::MessageOutcome;
use super::login_event;
use super::text::is_host_token;

/// Parses one login/getty/klogind message.
pub(super) fn parse(message: &str) -> MessageOutcome {
    let event = if let Some(rest) = message.strip_prefix("ROOT LOGIN") {
        Some(success("root", rest))
    } else if let Some(rest) = message.strip_prefix("LOGIN ON ") {
        by_user(rest)
    } else if let Some(rest) = message.strip_prefix("FAILED LOGIN ") {
        failed(rest, LoginAction::Login)
    } else if let Some(rest) = message.strip_prefix("TOO MANY LOGIN TRIES ") {
        failed(rest, LoginAction::MaxAuthExceeded)
    } else if let Some(rest) = message.strip_prefix("Authentication failed from ") {
        Some(kerberos_failure(rest))
    } else if message.starts_with("Kerberos authentication failed") {
        let mut event = login_event(LoginAction::AuthFailure, Outcome::Failure);
        event.auth_method = "kerberos".to_string();
        Some(event)
    } else {
        None
    };
    match event {
        Some(event) => MessageOutcome::Event(event),
        None => MessageOutcome::Unrecognised,
    }
}

fn unquote(s: &str) -> &str {
    s.trim().trim_matches('\'').trim_end_matches(',')
}

/// Puts the `FROM`/`on` place in `tty` when it names a terminal, else in `source_ip`.
fn set_place(event: &mut LoginEvent, place: &str) {
    let place = unquote(place);
    if place.starts_with("/dev/")
        || place.starts_with("tty")
        || place.starts_with("pts")
        || place.starts_with(':')
    {
        event.tty = place.trim_start_matches("/dev/").to_string();
    } else if is_host_token(place) {
        event.source_ip = place.to_string();
    }
}

/// `[ ]ON tty2[ FROM host]` or `  on '/dev/tty1'`
fn success(user: &str, rest: &str) -> LoginEvent {
    let mut event = login_event(LoginAction::Login, Outcome::Success);
    event.user = user.to_string();
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix("ON ")
        .or_else(|| rest.strip_prefix("on "))
        .unwrap_or(rest);
    let (tty, from) = match rest.split_once(" FROM ") {
        Some((tty, from)) => (tty, Some(from)),
        None => (rest, None),
    };
    set_place(&mut event, tty);
    if let Some(from) = from {
        set_place(&mut event, from);
    }
    event
}

/// `tty1 BY alice[ FROM host]`
fn by_user(rest: &str) -> Option<LoginEvent> {
    let (tty, rest) = rest.split_once(" BY ")?;
    let (user, from) = match rest.split_once(" FROM ") {
        Some((user, from)) => (user, Some(from)),
        None => (rest, None),
    };
    let mut event = success(unquote(user), tty);
    if let Some(from) = from {
        set_place(&mut event, from);
    }
    Some(event)
}

/// `(1) on '/dev/tty1' FOR 'alice', Authentication failure` (shadow) or
/// `1 FROM tty1 FOR alice, Authentication failure` (util-linux).
fn failed(rest: &str, action: LoginAction) -> Option<LoginEvent> {
    let (place, rest) = rest.split_once(" FOR ")?;
    let user = rest.split(", ").next().unwrap_or(rest);
    let mut event = login_event(action, Outcome::Failure);
    event.user = unquote(user).to_string();
    let place = place
        .split_once(" on ")
        .or_else(|| place.split_once(" FROM "))
        .map(|(_, p)| p);
    if let Some(place) = place {
        set_place(&mut event, place);
    }
    Some(event)
}

/// `IP (HOST): reason`
fn kerberos_failure(rest: &str) -> LoginEvent {
    let mut event = login_event(LoginAction::AuthFailure, Outcome::Failure);
    event.auth_method = "kerberos".to_string();
    if let Some(ip) = rest.split([' ', ':']).next().filter(|ip| is_host_token(ip)) {
        event.source_ip = ip.to_string();
    }
    event
}
