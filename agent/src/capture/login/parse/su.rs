//! `su` messages in both implementations: util-linux (`(to root) alice on pts/0`,
//! `FAILED SU (to root) alice on pts/0`) and shadow (`Successful su for root by
//! alice`, `FAILED su for root by alice`, plus its `+`/`-` sulog lines, which repeat
//! those and are ignored).

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use super::MessageOutcome;
use super::login_event;

/// Parses one su message.
pub(super) fn parse(message: &str) -> MessageOutcome {
    let event = if let Some(rest) = message.strip_prefix("(to ") {
        util_linux(rest, Outcome::Success)
    } else if let Some(rest) = message.strip_prefix("FAILED SU (to ") {
        util_linux(rest, Outcome::Failure)
    } else if let Some(rest) = message.strip_prefix("Successful su for ") {
        shadow(rest, Outcome::Success)
    } else if let Some(rest) = message.strip_prefix("FAILED su for ") {
        shadow(rest, Outcome::Failure)
    } else {
        None
    };
    match event {
        Some(event) => MessageOutcome::Event(event),
        None if is_sulog_line(message) => {
            MessageOutcome::Ignored("repeats the su line shadow logs beside it")
        }
        None => MessageOutcome::Unrecognised,
    }
}

/// `TARGET) INVOKER on TTY`
fn util_linux(rest: &str, outcome: Outcome) -> Option<LoginEvent> {
    let (target, rest) = rest.split_once(") ")?;
    let (invoker, tty) = match rest.rsplit_once(" on ") {
        Some((invoker, tty)) => (invoker, tty),
        None => (rest, ""),
    };
    Some(su_event(invoker, target, tty, outcome))
}

/// `TARGET by INVOKER`
fn shadow(rest: &str, outcome: Outcome) -> Option<LoginEvent> {
    let (target, invoker) = rest.rsplit_once(" by ")?;
    Some(su_event(invoker, target, "", outcome))
}

fn su_event(invoker: &str, target: &str, tty: &str, outcome: Outcome) -> LoginEvent {
    let mut event = login_event(LoginAction::Su, outcome);
    event.user = invoker.trim().to_string();
    event.target_user = target.trim().to_string();
    event.tty = tty.trim().to_string();
    event
}

/// `+ /dev/pts/0 alice:root` or `- /dev/pts/0 alice:root`.
fn is_sulog_line(message: &str) -> bool {
    (message.starts_with("+ ") || message.starts_with("- ")) && message.contains(':')
}
