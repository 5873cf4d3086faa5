//! Turns parser results into wire [`Event`]s and counts every line by outcome.
//! Shared by the file tail, journald, and replay so all of them count alike.

use shaobing_wire::limits::MAX_RAW_BYTES;
use shaobing_wire::v1::{Event, Host, LoginEvent, event::Body};

use super::counter;
use super::parse::{MessageOutcome, ParseContext, ParseOutcome, parse_line};
use crate::counters::Counters;

/// Marker appended to a `raw` cut at [`MAX_RAW_BYTES`].
const TRUNCATION_MARKER: &str = "…[truncated]";

/// `raw` text for an event: lossy UTF-8, without the line terminator, at most
/// [`MAX_RAW_BYTES`] bytes (cut on a character boundary and marked).
pub fn raw_text(line: &[u8]) -> String {
    let line = super::parse::trim_line_end(line);
    let slice = &line[..line.len().min(MAX_RAW_BYTES)];
    let mut text = String::from_utf8_lossy(slice).into_owned();
    if line.len() > MAX_RAW_BYTES || text.len() > MAX_RAW_BYTES {
        let mut cut = MAX_RAW_BYTES - TRUNCATION_MARKER.len();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(TRUNCATION_MARKER);
    }
    text
}

/// A login event with the common header filled (`event_id` is left to the spool).
pub fn login_to_event(
    login: LoginEvent,
    time_unix_nano: i64,
    host: &Host,
    source: &str,
    raw: String,
) -> Event {
    Event {
        event_id: String::new(),
        time_unix_nano,
        host: Some(host.clone()),
        source: source.to_string(),
        raw,
        body: Some(Body::Login(login)),
    }
}

/// Where lines come from and where their counts go.
pub struct LineHandler<'a> {
    pub host: &'a Host,
    /// `auth_log`, `journald`, ...
    pub source: &'static str,
    pub counters: &'a Counters,
}

impl LineHandler<'_> {
    /// Parses one log line; returns its event, if it makes one. `read_time` stands in
    /// for lines without a stamp.
    pub fn line(&self, line: &[u8], parse_ctx: &ParseContext, read_time: i64) -> Option<Event> {
        match parse_line(line, parse_ctx) {
            ParseOutcome::Parsed(parsed) => {
                self.counters.inc(counter::PARSED);
                let time = parsed.time_unix_nano.unwrap_or(read_time);
                Some(login_to_event(
                    parsed.login,
                    time,
                    self.host,
                    self.source,
                    raw_text(line),
                ))
            }
            ParseOutcome::Ignored(_) => {
                self.counters.inc(counter::IGNORED);
                None
            }
            ParseOutcome::Unrecognised => {
                self.counters.inc(counter::UNRECOGNISED);
                None
            }
            ParseOutcome::Malformed(reason) => {
                self.counters.inc(counter::MALFORMED);
                tracing::debug!(source = self.source, %reason, "malformed login line");
                None
            }
        }
    }

    /// Counts a message already parsed by [`super::parse::parse_message`] (journald).
    pub fn message(&self, outcome: MessageOutcome, time: i64, raw: String) -> Option<Event> {
        match outcome {
            MessageOutcome::Event(login) => {
                self.counters.inc(counter::PARSED);
                Some(login_to_event(login, time, self.host, self.source, raw))
            }
            MessageOutcome::Ignored(_) => {
                self.counters.inc(counter::IGNORED);
                None
            }
            MessageOutcome::Unrecognised => {
                self.counters.inc(counter::UNRECOGNISED);
                None
            }
        }
    }

    /// Counts a line skipped for being longer than the limit.
    pub fn oversize(&self) {
        self.counters.inc(counter::OVERSIZE);
        self.counters.inc(counter::MALFORMED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_bounded_lossy_and_marked() {
        assert_eq!(raw_text(b"abc\r\n"), "abc");
        assert_eq!(raw_text(b"a\xffb"), "a\u{fffd}b");
        let long = "é".repeat(MAX_RAW_BYTES);
        let raw = raw_text(long.as_bytes());
        assert!(raw.len() <= MAX_RAW_BYTES);
        assert!(raw.ends_with(TRUNCATION_MARKER));
        // Invalid bytes expand to three-byte replacement characters: still bounded.
        let raw = raw_text(&vec![0xff; MAX_RAW_BYTES]);
        assert!(raw.len() <= MAX_RAW_BYTES);
    }

    #[test]
    fn lines_are_counted_by_outcome() {
        let counters = Counters::default();
        let host = Host {
            hostname: "h".into(),
            ..Host::default()
        };
        let handler = LineHandler {
            host: &host,
            source: "auth_log",
            counters: &counters,
        };
        let ctx = ParseContext::new(1_767_607_200_000_000_000, 0);
        let event = handler
            .line(
                b"Accepted password for root from 10.0.0.1 port 22 ssh2\n",
                &ctx,
                42,
            )
            .unwrap();
        assert_eq!(event.time_unix_nano, 42);
        assert_eq!(event.source, "auth_log");
        assert_eq!(
            event.raw,
            "Accepted password for root from 10.0.0.1 port 22 ssh2"
        );
        assert!(event.event_id.is_empty());
        assert!(
            handler
                .line(b"Jan  5 09:00:00 h kernel: hello", &ctx, 0)
                .is_none()
        );
        assert!(
            handler
                .line(b"Jan 55 09:00:00 h sshd[1]: x", &ctx, 0)
                .is_none()
        );
        assert!(handler.line(b"", &ctx, 0).is_none());
        handler.oversize();
        assert_eq!(counters.get(counter::PARSED), 1);
        assert_eq!(counters.get(counter::UNRECOGNISED), 1);
        assert_eq!(counters.get(counter::MALFORMED), 2);
        assert_eq!(counters.get(counter::IGNORED), 1);
        assert_eq!(counters.get(counter::OVERSIZE), 1);
    }
}
