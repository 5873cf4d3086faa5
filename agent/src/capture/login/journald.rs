//! Follows journald through `journalctl -o json --follow` (no C dependency),
//! restricted to the auth facilities (4 `auth`, 10 `authpriv`), where sshd, PAM,
//! su, sudo, login and the shadow tools log.
//!
//! The checkpoint (key `journald`) is the `__CURSOR` of the last entry handed to the
//! spool; a restart runs `journalctl --after-cursor` from it. `journalctl` missing
//! ends the task with a log line; `journalctl` exiting is retried with back-off.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use shaobing_wire::v1::Event;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::counter;
use super::event::LineHandler;
use super::parse::parse_message;
use crate::capture::{Capture, CaptureContext, Checkpoint};

/// Checkpoint key and event `source`.
pub const SOURCE: &str = "journald";
/// Most entries per capture.
const MAX_ENTRIES_PER_CAPTURE: usize = 500;
/// Longest wait before restarting a failed journalctl.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How to run journalctl.
#[derive(Debug, Clone)]
pub struct JournaldConfig {
    pub journalctl: PathBuf,
    /// With no cursor yet, read the whole journal (else only new entries).
    pub read_existing: bool,
    /// Longest JSON entry accepted; longer ones are skipped and counted.
    pub max_line_bytes: usize,
}

/// The fields of one journal entry this source uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JournalEntry {
    pub cursor: String,
    /// `__REALTIME_TIMESTAMP` in unix nanoseconds (0 if absent).
    pub time_unix_nano: i64,
    pub identifier: String,
    pub pid: u32,
    pub message: String,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "__CURSOR", default)]
    cursor: Option<Value>,
    #[serde(rename = "__REALTIME_TIMESTAMP", default)]
    realtime: Option<Value>,
    #[serde(rename = "SYSLOG_IDENTIFIER", default)]
    identifier: Option<Value>,
    #[serde(rename = "_COMM", default)]
    comm: Option<Value>,
    #[serde(rename = "_PID", default)]
    pid: Option<Value>,
    #[serde(rename = "SYSLOG_PID", default)]
    syslog_pid: Option<Value>,
    #[serde(rename = "MESSAGE", default)]
    message: Option<Value>,
}

/// journalctl prints a field as a string, as an array of bytes (binary or invalid
/// UTF-8), or as an array of those (a field repeated); take the first, lossily.
fn field_text(value: &Option<Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|b| b as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some(Value::Array(items)) => field_text(&items.first().cloned()),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Parses one line of `journalctl -o json`.
pub fn parse_entry(line: &[u8]) -> Result<JournalEntry, serde_json::Error> {
    let raw: RawEntry = serde_json::from_slice(line)?;
    let identifier = match field_text(&raw.identifier) {
        id if id.is_empty() => field_text(&raw.comm),
        id => id,
    };
    let pid = match field_text(&raw.syslog_pid).parse() {
        Ok(pid) => pid,
        Err(_) => field_text(&raw.pid).parse().unwrap_or(0),
    };
    let micros: i64 = field_text(&raw.realtime).parse().unwrap_or(0);
    Ok(JournalEntry {
        cursor: field_text(&raw.cursor),
        time_unix_nano: micros.saturating_mul(1000),
        identifier,
        pid,
        message: field_text(&raw.message),
    })
}

/// The event of one journal entry, if it makes one. `raw` is the syslog-style
/// `ident[pid]: message` so keyword rules see what they would in auth.log.
pub fn entry_event(
    entry: &JournalEntry,
    handler: &LineHandler<'_>,
    read_time: i64,
) -> Option<Event> {
    let outcome = parse_message(&entry.identifier, entry.message.trim());
    let raw = if entry.pid > 0 {
        format!("{}[{}]: {}", entry.identifier, entry.pid, entry.message)
    } else {
        format!("{}: {}", entry.identifier, entry.message)
    };
    let raw = super::event::raw_text(raw.as_bytes());
    let time = if entry.time_unix_nano > 0 {
        entry.time_unix_nano
    } else {
        read_time
    };
    let mut event = handler.message(outcome, time, raw)?;
    if let Some(shaobing_wire::v1::event::Body::Login(login)) = event.body.as_mut()
        && login.pid == 0
    {
        login.pid = entry.pid;
    }
    Some(event)
}

/// The journalctl arguments for a start after `cursor`.
pub fn journalctl_args(cursor: Option<&str>, read_existing: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "-o",
        "json",
        "--follow",
        "--no-pager",
        "SYSLOG_FACILITY=4",
        "SYSLOG_FACILITY=10",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    match cursor {
        Some(cursor) => args.push(format!("--after-cursor={cursor}")),
        None if read_existing => args.push("--lines=all".to_string()),
        None => args.push("--lines=0".to_string()),
    }
    args
}

/// Follows the journal until the capture channel closes.
pub async fn run(config: JournaldConfig, ctx: CaptureContext) {
    let mut cursor = ctx.positions.get(SOURCE).cloned();
    let mut backoff = Duration::from_secs(1);
    loop {
        let args = journalctl_args(cursor.as_deref(), config.read_existing);
        let child = Command::new(&config.journalctl)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(journalctl = %config.journalctl.display(), "journalctl not found: journald source off");
                return;
            }
            Err(error) => {
                ctx.counters.inc(counter::READ_ERRORS);
                tracing::warn!(%error, "cannot start journalctl");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let Some(stdout) = child.stdout.take() else {
            return;
        };
        let mut reader = BufReader::new(stdout);
        match follow(&mut reader, &config, &ctx, &mut cursor, &mut backoff).await {
            Ok(()) => {}
            Err(FollowEnd::ChannelClosed) => return,
            Err(FollowEnd::Io(error)) => {
                ctx.counters.inc(counter::READ_ERRORS);
                tracing::warn!(%error, "reading journalctl output failed");
            }
        }
        let _ = child.kill().await;
        tracing::info!(retry_in = ?backoff, "journalctl ended; restarting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum FollowEnd {
    ChannelClosed,
    Io(std::io::Error),
}

/// Reads entries until journalctl's output ends, sending a capture whenever the
/// pipe has no more buffered data (or [`MAX_ENTRIES_PER_CAPTURE`] are waiting).
async fn follow<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    config: &JournaldConfig,
    ctx: &CaptureContext,
    cursor: &mut Option<String>,
    backoff: &mut Duration,
) -> Result<(), FollowEnd> {
    let handler = LineHandler {
        host: &ctx.host,
        source: SOURCE,
        counters: &ctx.counters,
    };
    let mut line = Vec::new();
    let mut events = Vec::new();
    let mut pending_entries = 0;
    loop {
        line.clear();
        let complete = read_bounded_line(reader, &mut line, config.max_line_bytes)
            .await
            .map_err(FollowEnd::Io)?;
        match complete {
            LineRead::End => return Ok(()),
            LineRead::Oversize => handler.oversize(),
            LineRead::Line => match parse_entry(&line) {
                Ok(entry) => {
                    *backoff = Duration::from_secs(1);
                    events.extend(entry_event(
                        &entry,
                        &handler,
                        shaobing_wire::now_unix_nano(),
                    ));
                    if !entry.cursor.is_empty() {
                        *cursor = Some(entry.cursor);
                    }
                    pending_entries += 1;
                }
                Err(_) => ctx.counters.inc(counter::MALFORMED),
            },
        }
        if pending_entries > 0
            && (reader.buffer().is_empty() || pending_entries >= MAX_ENTRIES_PER_CAPTURE)
        {
            let checkpoint = cursor.as_ref().map(|c| Checkpoint {
                source: SOURCE.to_string(),
                position: c.clone(),
            });
            let capture = Capture {
                events: std::mem::take(&mut events),
                checkpoint,
            };
            pending_entries = 0;
            ctx.tx
                .send(capture)
                .await
                .map_err(|_| FollowEnd::ChannelClosed)?;
        }
    }
}

/// What [`read_bounded_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    Line,
    /// A line over the limit, skipped to its end.
    Oversize,
    End,
}

/// Reads one `\n`-terminated line into `line` without ever holding more than
/// `max` bytes of it; a longer line is consumed and reported as [`LineRead::Oversize`].
pub async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    let mut oversize = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if oversize {
                LineRead::Oversize
            } else if line.is_empty() {
                LineRead::End
            } else {
                LineRead::Line
            });
        }
        let (used, done) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if !oversize {
            if line.len() + used > max {
                oversize = true;
                line.clear();
            } else {
                line.extend_from_slice(&available[..used]);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if oversize {
                LineRead::Oversize
            } else {
                LineRead::Line
            });
        }
    }
}

#[cfg(test)]
#[path = "journald_tests.rs"]
mod tests;
