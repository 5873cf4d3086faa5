//! `sudo` messages: `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id`,
//! with an optional leading reason for refusals (`3 incorrect password attempts`,
//! `user NOT in sudoers`, `command not allowed`, `a password is required`).
//!
//! `COMMAND=` is always the last field and may itself contain ` ; `, so it takes
//! the rest of the line.

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::MessageOutcome;
use super::login_event;

/// Reasons sudo gives for refusing, all failures.
const REFUSALS: [&str; 6] = [
    "incorrect password attempt",
    "NOT in sudoers",
    "NOT allowed to run sudo",
    "NOT authorized on host",
    "command not allowed",
    "a password is required",
];

/// Parses one sudo message.
pub(super) fn parse(message: &str) -> MessageOutcome {
    match command_line(message.trim_start()) {
        Some(event) => MessageOutcome::Event(event),
        None => MessageOutcome::Unrecognised,
    }
}

fn command_line(message: &str) -> Option<LoginEvent> {
    let (user, rest) = message.split_once(" : ")?;
    if user.is_empty() || user.contains(' ') {
        return None;
    }
    let (fields, command) = match rest.find("COMMAND=") {
        Some(at) => (&rest[..at], Some(&rest[at + "COMMAND=".len()..])),
        None => (rest, None),
    };
    let mut event = login_event(LoginAction::Sudo, Outcome::Success);
    event.user = user.to_string();
    event.target_user = "root".to_string();
    let mut saw_field = command.is_some();
    for part in fields.split(" ; ").map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("TTY", tty)) => event.tty = tty.to_string(),
            Some(("USER", target)) => event.target_user = target.to_string(),
            Some((key, _)) if key.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {}
            _ => {
                event.outcome = if REFUSALS.iter().any(|r| part.contains(r)) {
                    Outcome::Failure
                } else {
                    Outcome::Unspecified
                } as i32;
                if part.contains("incorrect password attempt") {
                    event.auth_method = "password".to_string();
                }
                continue;
            }
        }
        saw_field = true;
    }
    if !saw_field {
        return None;
    }
    event.command = command.unwrap_or_default().trim_end().to_string();
    Some(event)
}
