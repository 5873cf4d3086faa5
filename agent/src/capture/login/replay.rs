//! Offline replay: `shaobing-agent replay --source auth|journald|wtmp|btmp|lastlog FILE...`
//! runs the live parsers over old files and writes one JSON object per event.
//! A lastlog file is replayed as an inventory (one event per account that logged
//! in), its UIDs named from `--passwd` (default `/etc/passwd`).
//! Useful to check what the agent would have seen, and to test rules on archives.
//! (Compressed rotations such as `.gz` must be decompressed first.) BSD syslog
//! stamps carry no year: a file's modification time stands for "now" when years
//! are inferred, so an archive gets its own years.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use shaobing_wire::v1::{Event, Host, LoginAction, Outcome, event::Body};

use super::LoginError;
use super::counter;
use super::event::LineHandler;
use super::journald::{entry_event, parse_entry};
use super::lastlog::{self, UserNames};
use super::parse::ParseContext;
use super::utmp::{RecordDecoder, UtmpKind};
use crate::counters::Counters;

/// Longest line replay reads; longer ones are skipped and counted.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Which kind of file is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaySource {
    /// Text auth logs (syslog, RFC 3339 or `sshd -E`).
    Auth,
    /// `journalctl -o json` output.
    Journald,
    Wtmp,
    Btmp,
    /// A glibc lastlog file (last login per account).
    Lastlog,
}

impl FromStr for ReplaySource {
    type Err = LoginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auth" | "auth_log" => Ok(ReplaySource::Auth),
            "journald" => Ok(ReplaySource::Journald),
            "wtmp" => Ok(ReplaySource::Wtmp),
            "btmp" => Ok(ReplaySource::Btmp),
            "lastlog" => Ok(ReplaySource::Lastlog),
            other => Err(LoginError::UnknownSource(other.to_string())),
        }
    }
}

impl ReplaySource {
    fn event_source(self) -> &'static str {
        match self {
            ReplaySource::Auth => "auth_log",
            ReplaySource::Journald => "journald",
            ReplaySource::Wtmp => "wtmp",
            ReplaySource::Btmp => "btmp",
            ReplaySource::Lastlog => lastlog::SOURCE,
        }
    }
}

/// Totals of one replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub files: usize,
    pub events: u64,
    pub ignored: u64,
    pub unrecognised: u64,
    pub malformed: u64,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replayed {} file(s): {} events, {} ignored, {} unrecognised, {} malformed",
            self.files, self.events, self.ignored, self.unrecognised, self.malformed
        )
    }
}

/// Replays `files` of kind `source`, writing one JSON line per event to `out`
/// (lastlog UIDs are named from `/etc/passwd`).
pub fn replay(
    source: ReplaySource,
    files: &[PathBuf],
    out: &mut dyn Write,
) -> Result<ReplaySummary, LoginError> {
    replay_with_passwd(source, files, Path::new("/etc/passwd"), out)
}

/// Like [`replay`], naming lastlog UIDs from `passwd` (e.g. the `/etc/passwd` of
/// the host the lastlog file came from).
pub fn replay_with_passwd(
    source: ReplaySource,
    files: &[PathBuf],
    passwd: &Path,
    out: &mut dyn Write,
) -> Result<ReplaySummary, LoginError> {
    let counters = Counters::default();
    let host = Host {
        hostname: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Host::default()
    };
    let handler = LineHandler {
        host: &host,
        source: source.event_source(),
        counters: &counters,
    };
    for path in files {
        let read_error = |source| LoginError::Read {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        match source {
            ReplaySource::Auth | ReplaySource::Journald => {
                let written = file.metadata().and_then(|meta| meta.modified()).ok();
                replay_lines(source, path, BufReader::new(file), written, &handler, out)?;
            }
            ReplaySource::Wtmp | ReplaySource::Btmp => {
                let kind = if source == ReplaySource::Wtmp {
                    UtmpKind::Wtmp
                } else {
                    UtmpKind::Btmp
                };
                let mut bytes = Vec::new();
                BufReader::new(file)
                    .read_to_end(&mut bytes)
                    .map_err(read_error)?;
                let mut decoder = RecordDecoder::new(kind);
                for event in decoder.decode(&bytes, &host, &counters) {
                    write_event(out, &event)?;
                }
            }
            ReplaySource::Lastlog => {
                replay_lastlog(path, &file, passwd, &host, &counters, out)?;
            }
        }
    }
    Ok(ReplaySummary {
        files: files.len(),
        events: counters.get(counter::PARSED),
        ignored: counters.get(counter::IGNORED),
        unrecognised: counters.get(counter::UNRECOGNISED),
        malformed: counters.get(counter::MALFORMED),
    })
}

/// Every record of a lastlog file as an inventory event, in time order.
fn replay_lastlog(
    path: &Path,
    file: &File,
    passwd: &Path,
    host: &Host,
    counters: &Counters,
    out: &mut dyn Write,
) -> Result<(), LoginError> {
    let mut users = UserNames::new(passwd.to_path_buf());
    users.refresh();
    let mut events = Vec::new();
    let stats =
        lastlog::scan(
            file,
            lastlog::MAX_SCAN_BYTES,
            |uid, bytes| match lastlog::decode_record(uid, bytes) {
                Ok(Some(record)) => {
                    counters.inc(counter::PARSED);
                    events.push(lastlog::record_event(&record, &users, true, host));
                }
                Ok(None) => {}
                Err(_) => counters.inc(counter::MALFORMED),
            },
        )
        .map_err(|source| LoginError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if stats.partial_tail > 0 {
        counters.inc(counter::MALFORMED);
    }
    if stats.limited {
        counters.inc(counter::LASTLOG_LIMITED);
    }
    events.sort_by_key(|event| event.time_unix_nano);
    for event in &events {
        write_event(out, event)?;
    }
    Ok(())
}

fn replay_lines(
    source: ReplaySource,
    path: &Path,
    mut reader: impl BufRead,
    written: Option<SystemTime>,
    handler: &LineHandler<'_>,
    out: &mut dyn Write,
) -> Result<(), LoginError> {
    let read_error = |source| LoginError::Read {
        path: path.to_path_buf(),
        source,
    };
    let now = shaobing_wire::now_unix_nano();
    // Syslog stamps carry no year: an archive's own modification time stands for
    // "now", so a 2005 file gets 2005 dates.
    let written = written
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(now);
    let utc_offset = super::LoginConfig::default().resolved_utc_offset();
    let parse_ctx = ParseContext::new(written, utc_offset);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(read_error)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") {
            reader.skip_until(b'\n').map_err(read_error)?;
            handler.oversize();
            continue;
        }
        let event = match source {
            ReplaySource::Journald => match parse_entry(&line) {
                Ok(entry) => entry_event(&entry, handler, now),
                Err(_) => {
                    handler.counters.inc(counter::MALFORMED);
                    None
                }
            },
            _ => handler.line(&line, &parse_ctx, now),
        };
        if let Some(event) = event {
            write_event(out, &event)?;
        }
    }
}

/// One event as a JSON object with the stable enum names of `wire::names`.
pub fn event_json(event: &Event) -> serde_json::Value {
    let mut value = json!({
        "time_unix_nano": event.time_unix_nano,
        "source": event.source,
        "hostname": event.host.as_ref().map(|h| h.hostname.as_str()).unwrap_or_default(),
        "raw": event.raw,
    });
    if let Some(Body::Login(login)) = &event.body {
        value["login"] = json!({
            "action": LoginAction::try_from(login.action).map(LoginAction::name).unwrap_or_default(),
            "outcome": Outcome::try_from(login.outcome).map(Outcome::name).unwrap_or_default(),
            "user": login.user,
            "target_user": login.target_user,
            "source_ip": login.source_ip,
            "source_port": login.source_port,
            "auth_method": login.auth_method,
            "service": login.service,
            "tty": login.tty,
            "command": login.command,
            "pid": login.pid,
            "group": login.group,
        });
    }
    value
}

fn write_event(out: &mut dyn Write, event: &Event) -> Result<(), LoginError> {
    serde_json::to_writer(&mut *out, &event_json(event))?;
    out.write_all(b"\n").map_err(LoginError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_auth_lines_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log");
        let mut text = String::from(
            "Jan  5 09:00:00 web sshd[7]: Accepted publickey for ops from 10.1.2.3 port 5022 ssh2\n",
        );
        text.push_str("Jan  5 09:00:01 web kernel: noise\nJan 77 00:00:00 web sshd[1]: x\n");
        text.push_str(&"y".repeat(MAX_LINE_BYTES * 2));
        text.push_str("\nFailed password for invalid user a b from 10.9.9.9 port 1 ssh2\n");
        std::fs::write(&path, text).unwrap();
        let mut out = Vec::new();
        let summary = replay(ReplaySource::Auth, &[path], &mut out).unwrap();
        assert_eq!(
            summary,
            ReplaySummary {
                files: 1,
                events: 2,
                ignored: 0,
                unrecognised: 1,
                malformed: 2
            }
        );
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["login"]["action"], "ssh_accept");
        assert_eq!(lines[0]["login"]["auth_method"], "publickey");
        assert_eq!(lines[0]["source"], "auth_log");
        assert_eq!(lines[1]["login"]["user"], "a b");
        assert_eq!(lines[1]["login"]["source_ip"], "10.9.9.9");
        assert!(summary.to_string().contains("2 events"));
    }

    #[test]
    fn replays_a_real_lastlog_as_an_inventory() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/capture/login/testdata");
        let mut out = Vec::new();
        let summary = replay_with_passwd(
            "lastlog".parse().unwrap(),
            &[testdata.join("debian12_lastlog")],
            &testdata.join("debian12_passwd"),
            &mut out,
        )
        .unwrap();
        assert_eq!((summary.events, summary.malformed), (3, 0), "{summary}");
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let mut users: Vec<&str> = lines
            .iter()
            .map(|l| l["login"]["user"].as_str().unwrap())
            .collect();
        users.sort_unstable();
        assert_eq!(users, vec!["bin", "daemon", "root"]);
        assert!(lines.iter().all(|l| {
            l["source"] == "lastlog"
                && l["login"]["action"] == "login"
                && l["raw"]
                    .as_str()
                    .unwrap()
                    .starts_with("lastlog inventory uid=")
        }));
        // Garbage: every record malformed, nothing printed.
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("lastlog");
        std::fs::write(&garbage, vec![0xffu8; lastlog::RECORD_SIZE * 3 + 7]).unwrap();
        let mut out = Vec::new();
        let summary = replay_with_passwd(
            ReplaySource::Lastlog,
            &[garbage],
            Path::new("/nonexistent"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            (summary.events, summary.malformed),
            (0, 4),
            "3 records + a partial tail"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn unknown_source_and_missing_file_are_errors() {
        assert!(matches!(
            "ftp".parse::<ReplaySource>(),
            Err(LoginError::UnknownSource(_))
        ));
        assert_eq!("btmp".parse::<ReplaySource>().unwrap(), ReplaySource::Btmp);
        let missing = replay(
            ReplaySource::Auth,
            &[PathBuf::from("/nonexistent/x")],
            &mut Vec::new(),
        );
        assert!(matches!(missing, Err(LoginError::Read { .. })));
    }
}
