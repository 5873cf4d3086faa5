//! The auth-log line parser: one line in, one [`ParseOutcome`] out. Pure: no I/O,
//! no clock (the caller passes "now" in [`ParseContext`]).
//!
//! A line is a header (BSD syslog `Nov 23 19:21:41 host prog[pid]: `, RFC 3339
//! `2026-11-23T19:21:41.123456+00:00 host prog[pid]: `, or nothing at all for
//! `sshd -E` files) followed by a program's message. The header is read here; the
//! message goes to the parser of its program ([`sshd`], [`pam`], [`su`], [`sudo`],
//! [`login_tty`], [`accounts`]). Journald entries skip the header and call
//! [`parse_message`] directly.

mod accounts;
mod login_tty;
mod pam;
mod sshd;
mod su;
mod sudo;
pub mod syslog_time;
mod text;

use shaobing_wire::v1::{LoginAction, LoginEvent, Outcome};

use self::syslog_time::{BSD_STAMP_LEN, Clock, month_from_abbrev};

/// Longest program tag (`sshd(pam_unix)[12345]`) looked for before the first `:`.
const MAX_TAG_LEN: usize = 96;

/// What the parser knows about the world: the present (for syslog stamps without
/// a year) and the host's UTC offset (BSD stamps are local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseContext {
    clock: Clock,
}

impl ParseContext {
    /// Context for lines read at `now_unix_nano` on a host `utc_offset_seconds` ahead of UTC.
    pub fn new(now_unix_nano: i64, utc_offset_seconds: i32) -> Self {
        ParseContext {
            clock: Clock::new(now_unix_nano.div_euclid(1_000_000_000), utc_offset_seconds),
        }
    }
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseOutcome {
    /// A login-relevant line, turned into an event body.
    Parsed(Box<ParsedLine>),
    /// A known line that deliberately makes no event (it repeats another line, or is
    /// a blank line); the reason says which.
    Ignored(&'static str),
    /// A well-formed line this parser has no rule for (most of syslog).
    Unrecognised,
    /// A line whose header is broken: it cannot be trusted to be what it looks like.
    Malformed(MalformedReason),
}

/// A parsed line: the event body, the line's own time when it has one, and the
/// header fields a caller may want.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    pub login: LoginEvent,
    /// Unix nanoseconds from the line's stamp; `None` for lines without one (`sshd -E`).
    pub time_unix_nano: Option<i64>,
    /// The host name in the syslog header (empty without a header).
    pub hostname: String,
}

/// Why a line was judged malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedReason {
    #[error("the syslog timestamp is broken")]
    BadTimestamp,
    #[error("no host name after the timestamp")]
    MissingHostname,
}

/// What a program's message parser made of the message.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    Event(LoginEvent),
    Ignored(&'static str),
    Unrecognised,
}

/// Parses one log line (without or with its trailing `\n` / `\r\n`). Invalid UTF-8
/// is read lossily: attacker-chosen user names must still produce events.
pub fn parse_line(line: &[u8], ctx: &ParseContext) -> ParseOutcome {
    let line = trim_line_end(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return ParseOutcome::Ignored("blank line");
    }
    let text = String::from_utf8_lossy(line);
    let header = match split_header(&text, &ctx.clock) {
        Ok(header) => header,
        Err(reason) => return ParseOutcome::Malformed(reason),
    };
    match parse_tagged_message(&header.tag, header.message) {
        MessageOutcome::Event(mut login) => {
            if login.pid == 0 {
                login.pid = header.tag.pid.unwrap_or(0);
            }
            ParseOutcome::Parsed(Box::new(ParsedLine {
                login,
                time_unix_nano: header.time_unix_nano,
                hostname: header.hostname.to_string(),
            }))
        }
        MessageOutcome::Ignored(why) => ParseOutcome::Ignored(why),
        MessageOutcome::Unrecognised => ParseOutcome::Unrecognised,
    }
}

/// Parses the message of program `program` (a syslog identifier such as `sshd`,
/// `sudo`, `su`, or `""` when unknown). The result has `service` set.
pub fn parse_message(program: &str, message: &str) -> MessageOutcome {
    let tag = Tag::from_program(program);
    parse_tagged_message(&tag, message)
}

/// Strips the line terminator (`\n`, `\r\n`, or a stray `\r`).
pub fn trim_line_end(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// The program part of a syslog header: `sshd(pam_unix)[19939]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tag<'a> {
    /// Base name of the program (`sshd`, `su`, `sudo`; empty when the line has no tag).
    program: &'a str,
    /// `pam_unix` in old-style `sshd(pam_unix)[pid]` tags.
    pam_module: Option<&'a str>,
    pid: Option<u32>,
}

impl<'a> Tag<'a> {
    fn from_program(program: &'a str) -> Self {
        let program = program.rsplit('/').next().unwrap_or(program);
        match program.split_once('(') {
            Some((base, module)) => Tag {
                program: base,
                pam_module: module.strip_suffix(')').filter(|m| m.starts_with("pam_")),
                pid: None,
            },
            None => Tag {
                program,
                pam_module: None,
                pid: None,
            },
        }
    }
}

#[derive(Debug)]
struct Header<'a> {
    time_unix_nano: Option<i64>,
    hostname: &'a str,
    tag: Tag<'a>,
    message: &'a str,
}

fn split_header<'a>(text: &'a str, clock: &Clock) -> Result<Header<'a>, MalformedReason> {
    let bytes = text.as_bytes();
    let (time, rest) =
        if bytes.len() >= 4 && bytes[3] == b' ' && month_from_abbrev(&bytes[..3]).is_some() {
            let time =
                syslog_time::parse_bsd(bytes, clock).map_err(|_| MalformedReason::BadTimestamp)?;
            (time, &text[BSD_STAMP_LEN..])
        } else if bytes.len() >= 5 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-'
        {
            let (time, used) =
                syslog_time::parse_rfc3339(bytes).map_err(|_| MalformedReason::BadTimestamp)?;
            (time, &text[used..])
        } else {
            return Ok(Header {
                time_unix_nano: None,
                hostname: "",
                tag: Tag::default(),
                message: text.trim(),
            });
        };
    if !rest.starts_with(' ') {
        return Err(MalformedReason::BadTimestamp);
    }
    let rest = rest.trim_start_matches(' ');
    let host_end = rest.find(' ').unwrap_or(rest.len());
    let hostname = &rest[..host_end];
    if hostname.is_empty() {
        return Err(MalformedReason::MissingHostname);
    }
    let rest = rest[host_end..].trim_start_matches(' ');
    // Old util-linux login wrote its ident as `-- root[pid]:`.
    let rest = rest.strip_prefix("-- ").unwrap_or(rest);
    let (tag, message) = split_tag(rest);
    Ok(Header {
        time_unix_nano: Some(time),
        hostname,
        tag,
        message: message.trim(),
    })
}

/// Splits `prog[pid]: message`; a line without a well-formed tag is all message.
fn split_tag(rest: &str) -> (Tag<'_>, &str) {
    let window = &rest.as_bytes()[..rest.len().min(MAX_TAG_LEN)];
    let Some(colon) = window.iter().position(|&b| b == b':' || b == b' ') else {
        return (Tag::default(), rest);
    };
    if window[colon] != b':' || colon == 0 {
        return (Tag::default(), rest);
    }
    let tag_text = &rest[..colon];
    let message = &rest[colon + 1..];
    let (program, pid) = match tag_text.strip_suffix(']').and_then(|t| t.rsplit_once('[')) {
        Some((program, pid)) => (program, pid.parse().ok()),
        None => (tag_text, None),
    };
    let mut tag = Tag::from_program(program);
    tag.pid = pid;
    (tag, message)
}

fn parse_tagged_message(tag: &Tag<'_>, message: &str) -> MessageOutcome {
    let outcome = if let Some(module) = tag.pam_module {
        pam::parse_body(tag.program, module, message)
    } else if message.starts_with("pam_") {
        pam::parse_prefixed(tag.program, message)
    } else {
        match tag.program {
            "sshd" | "sshd-session" | "sshd-auth" => sshd::parse(message),
            "su" => su::parse(message),
            "sudo" => sudo::parse(message),
            "login" | "agetty" | "getty" | "mingetty" | "klogind" | "root" => {
                login_tty::parse(message)
            }
            "useradd" | "userdel" | "usermod" | "groupadd" | "groupdel" | "groupmod"
            | "gpasswd" | "passwd" | "chpasswd" | "chage" | "chfn" | "chsh" => {
                accounts::parse(tag.program, message)
            }
            // `sshd -E` files have no header at all: only sshd writes such lines.
            "" => match sshd::parse(message) {
                MessageOutcome::Unrecognised => login_tty::parse(message),
                other => return with_service(other, "sshd"),
            },
            _ => MessageOutcome::Unrecognised,
        }
    };
    let service = match tag.program {
        "" | "root" => "login",
        "sshd-session" | "sshd-auth" => "sshd",
        other => other,
    };
    with_service(outcome, service)
}

fn with_service(outcome: MessageOutcome, service: &str) -> MessageOutcome {
    match outcome {
        MessageOutcome::Event(mut login) => {
            if login.service.is_empty() {
                login.service = service.to_string();
            }
            MessageOutcome::Event(login)
        }
        other => other,
    }
}

/// A login event with only `action` and `outcome` set.
fn login_event(action: LoginAction, outcome: Outcome) -> LoginEvent {
    LoginEvent {
        action: action as i32,
        outcome: outcome as i32,
        ..LoginEvent::default()
    }
}

#[cfg(test)]
mod loghub_tests;
#[cfg(test)]
mod tests;
