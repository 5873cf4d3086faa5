//! PAM module messages, whichever program logged them: `pam_unix(sshd:auth):
//! authentication failure; ... rhost=IP user=root`, sessions opened and closed,
//! password changes, and `pam_faillock` / `pam_tally` lockouts. Also the old
//! `sshd(pam_unix)[pid]: ...` style (e.g. the loghub Linux dataset).
//!
//! For `su`, `sudo` and `runuser` the session's account is the *target* and the
//! invoking user is the `user`; for every other service the account is the `user`.

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::MessageOutcome;
use super::login_event;
use super::text::{field, strip_uid_suffix};

/// Parses `pam_MODULE(SERVICE:TYPE): BODY`; `program` is the syslog tag, used when
/// the prefix names no service.
pub(super) fn parse_prefixed(program: &str, message: &str) -> MessageOutcome {
    let Some((prefix, body)) = message.split_once("): ") else {
        return MessageOutcome::Unrecognised;
    };
    let Some((module, inside)) = prefix.split_once('(') else {
        return MessageOutcome::Unrecognised;
    };
    let service = match inside.split_once(':') {
        Some((service, _facility)) if !service.is_empty() => service,
        _ => program,
    };
    parse_body(service, module, body)
}

/// Parses the body of a PAM message from `module` for PAM service `service`.
pub(super) fn parse_body(service: &str, module: &str, body: &str) -> MessageOutcome {
    let body = body.trim();
    let event = if let Some(rest) = body.strip_prefix("authentication failure;") {
        Some(authentication_failure(service, rest))
    } else if let Some(rest) = body.strip_prefix("session opened for user ") {
        session_opened(service, rest)
    } else if let Some(rest) = body.strip_prefix("session closed for user ") {
        Some(session_closed(service, rest))
    } else if let Some(rest) = body.strip_prefix("password changed for ") {
        Some(password_changed(rest))
    } else if let Some(rest) = body.strip_prefix("Consecutive login failures for user ") {
        lockout(rest.split(' ').next().unwrap_or_default())
    } else if module.starts_with("pam_tally") {
        tally_lockout(body)
    } else {
        None
    };
    match event {
        Some(mut event) => {
            event.service = service.to_string();
            MessageOutcome::Event(event)
        }
        None if body.starts_with("check pass; user unknown") => {
            MessageOutcome::Ignored("repeats the authentication failure that follows")
        }
        // Debian 12's defaults log these at every session where limits or the user
        // environment cannot be applied (containers, namespaces): no login meaning.
        None if module == "pam_limits" && body.starts_with("Could not set limit") => {
            MessageOutcome::Ignored("pam_limits could not apply a resource limit")
        }
        None if module == "pam_env"
            && body.starts_with("deprecated reading of user environment") =>
        {
            MessageOutcome::Ignored("pam_env configuration notice")
        }
        None if module == "pam_unix"
            && (body == "conversation failed"
                || body.starts_with("auth could not identify password for ")) =>
        {
            MessageOutcome::Ignored(
                "the PAM conversation ended without a password (the refusal is logged apart)",
            )
        }
        None => MessageOutcome::Unrecognised,
    }
}

/// Services where a session is opened *as* someone else by an invoking user.
fn is_switch_user(service: &str) -> bool {
    matches!(
        service,
        "su" | "su-l" | "sudo" | "sudo-i" | "runuser" | "runuser-l"
    )
}

/// `logname=L uid=U euid=E tty=T ruser=R rhost=H  user=X`
fn authentication_failure(service: &str, fields: &str) -> LoginEvent {
    let mut event = login_event(LoginAction::AuthFailure, Outcome::Failure);
    let account = field(fields, "user").unwrap_or_default();
    if is_switch_user(service) {
        let invoker = field(fields, "ruser")
            .filter(|r| !r.is_empty())
            .or_else(|| field(fields, "logname"))
            .unwrap_or_default();
        event.user = invoker.to_string();
        event.target_user = account.to_string();
    } else {
        event.user = account.to_string();
    }
    event.source_ip = field(fields, "rhost").unwrap_or_default().to_string();
    event.tty = field(fields, "tty").unwrap_or_default().to_string();
    event
}

/// `X[(uid=N)] by [Y](uid=N)` (`by LOGIN(uid=0)` from login, `by (uid=0)` from daemons).
fn session_opened(service: &str, rest: &str) -> Option<LoginEvent> {
    let (account, by) = match rest.rsplit_once(" by ") {
        Some((account, by)) => (account, strip_uid_suffix(by.trim())),
        None => (rest, ""),
    };
    let account = strip_uid_suffix(account.trim());
    if account.is_empty() {
        return None;
    }
    let mut event = login_event(LoginAction::SessionOpen, Outcome::Success);
    if is_switch_user(service) {
        event.user = by.to_string();
        event.target_user = account.to_string();
    } else {
        event.user = account.to_string();
    }
    Some(event)
}

/// `X`
fn session_closed(service: &str, rest: &str) -> LoginEvent {
    let account = strip_uid_suffix(rest.trim());
    let mut event = login_event(LoginAction::SessionClose, Outcome::Success);
    if is_switch_user(service) {
        event.target_user = account.to_string();
    } else {
        event.user = account.to_string();
    }
    event
}

/// `X` (pam_unix on `passwd` / `chpasswd`)
fn password_changed(rest: &str) -> LoginEvent {
    let mut event = login_event(LoginAction::PasswdChange, Outcome::Success);
    event.target_user = rest.trim().to_string();
    event
}

fn lockout(user: &str) -> Option<LoginEvent> {
    if user.is_empty() {
        return None;
    }
    let mut event = login_event(LoginAction::Lockout, Outcome::Failure);
    event.user = user.to_string();
    Some(event)
}

/// `user X (UID) tally N, deny M` — pam_tally/pam_tally2 refusing a locked account.
fn tally_lockout(body: &str) -> Option<LoginEvent> {
    let rest = body.strip_prefix("user ")?;
    if !rest.contains(" tally ") || !rest.contains(", deny ") {
        return None;
    }
    lockout(rest.split(' ').next()?)
}
