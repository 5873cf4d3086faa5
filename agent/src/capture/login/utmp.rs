//! `wtmp` (logins, logouts, boots, shutdowns) and `btmp` (failed logins), read with
//! utmp-rs: fixed-size binary records appended by login, sshd and init.
//!
//! The follower keeps `{inode, offset}` like the text tail (key `wtmp:<path>` or
//! `btmp:<path>`), reads only whole records, finishes a rotated file through its open
//! descriptor before switching, and restarts at 0 when the file shrinks. A record
//! utmp-rs rejects (e.g. a non-UTF-8 user name in btmp) is counted as malformed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shaobing_wire::v1::{Event, Host, LoginAction, LoginEvent, Outcome};
use utmp_rs::{UtmpEntry, UtmpParser};

use super::counter;
use super::event::login_to_event;
use super::tail::FilePosition;
use crate::capture::{Capture, CaptureContext, Checkpoint};
use crate::counters::Counters;

/// Size of one native utmp record (glibc: 384 bytes; 400 on aarch64 and s390x).
#[cfg(any(target_arch = "aarch64", target_arch = "s390x"))]
pub const RECORD_SIZE: usize = 400;
/// Size of one native utmp record (glibc: 384 bytes; 400 on aarch64 and s390x).
#[cfg(not(any(target_arch = "aarch64", target_arch = "s390x")))]
pub const RECORD_SIZE: usize = 384;
/// Records read per step.
const RECORDS_PER_READ: usize = 512;
/// Most terminals remembered for naming the user of a logout.
const MAX_TRACKED_TTYS: usize = 4096;

/// Which file a follower reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtmpKind {
    Wtmp,
    Btmp,
}

impl UtmpKind {
    /// The event `source`, also the checkpoint key prefix.
    pub fn source(self) -> &'static str {
        match self {
            UtmpKind::Wtmp => "wtmp",
            UtmpKind::Btmp => "btmp",
        }
    }
}

/// What one follower reads.
#[derive(Debug, Clone)]
pub struct UtmpConfig {
    pub path: PathBuf,
    pub kind: UtmpKind,
    pub poll_interval: Duration,
    /// With no checkpoint, read the records already there.
    pub read_existing: bool,
}

/// Turns utmp records into login events, remembering who is on which terminal.
#[derive(Debug)]
pub struct RecordDecoder {
    kind: UtmpKind,
    users_by_tty: HashMap<String, String>,
}

impl RecordDecoder {
    pub fn new(kind: UtmpKind) -> Self {
        RecordDecoder {
            kind,
            users_by_tty: HashMap::new(),
        }
    }

    /// Decodes whole records in `bytes` (a trailing partial record is ignored).
    pub fn decode(&mut self, bytes: &[u8], host: &Host, counters: &Counters) -> Vec<Event> {
        let whole = bytes.len() - bytes.len() % RECORD_SIZE;
        let mut events = Vec::new();
        for entry in UtmpParser::from_reader(&bytes[..whole]) {
            match entry {
                Ok(entry) => match self.entry_event(&entry) {
                    Some((login, time, raw)) => {
                        counters.inc(counter::PARSED);
                        events.push(login_to_event(login, time, host, self.kind.source(), raw));
                    }
                    None => counters.inc(counter::IGNORED),
                },
                Err(error) => {
                    counters.inc(counter::MALFORMED);
                    tracing::debug!(source = self.kind.source(), %error, "malformed utmp record");
                }
            }
        }
        events
    }

    fn entry_event(&mut self, entry: &UtmpEntry) -> Option<(LoginEvent, i64, String)> {
        let nanos =
            |t: &time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos()).unwrap_or_default();
        let mut login = LoginEvent::default();
        let (time, raw) = match (self.kind, entry) {
            (
                UtmpKind::Btmp,
                UtmpEntry::UserProcess {
                    pid,
                    line,
                    user,
                    host,
                    time,
                    ..
                },
            )
            | (
                UtmpKind::Btmp,
                UtmpEntry::LoginProcess {
                    pid,
                    line,
                    user,
                    host,
                    time,
                },
            ) => {
                set(&mut login, LoginAction::Login, Outcome::Failure);
                fill(&mut login, *pid, line, user, host);
                (
                    nanos(time),
                    format!("btmp failed login user={user} line={line} host={host} pid={pid}"),
                )
            }
            (
                UtmpKind::Wtmp,
                UtmpEntry::UserProcess {
                    pid,
                    line,
                    user,
                    host,
                    time,
                    ..
                },
            ) => {
                set(&mut login, LoginAction::Login, Outcome::Success);
                fill(&mut login, *pid, line, user, host);
                if self.users_by_tty.len() >= MAX_TRACKED_TTYS {
                    self.users_by_tty.clear();
                }
                self.users_by_tty.insert(line.clone(), user.clone());
                (
                    nanos(time),
                    format!("wtmp login user={user} line={line} host={host} pid={pid}"),
                )
            }
            (UtmpKind::Wtmp, UtmpEntry::DeadProcess { pid, line, time }) => {
                set(&mut login, LoginAction::Logout, Outcome::Success);
                let user = self.users_by_tty.remove(line).unwrap_or_default();
                fill(&mut login, *pid, line, &user, "");
                (
                    nanos(time),
                    format!("wtmp logout user={user} line={line} pid={pid}"),
                )
            }
            (
                UtmpKind::Wtmp,
                UtmpEntry::BootTime {
                    kernel_version,
                    time,
                },
            ) => {
                set(&mut login, LoginAction::Reboot, Outcome::Success);
                self.users_by_tty.clear();
                (nanos(time), format!("wtmp boot kernel={kernel_version}"))
            }
            (
                UtmpKind::Wtmp,
                UtmpEntry::ShutdownTime {
                    kernel_version,
                    time,
                },
            ) => {
                set(&mut login, LoginAction::Reboot, Outcome::Unspecified);
                (
                    nanos(time),
                    format!("wtmp shutdown kernel={kernel_version}"),
                )
            }
            _ => return None,
        };
        Some((login, time, raw))
    }
}

fn set(login: &mut LoginEvent, action: LoginAction, outcome: Outcome) {
    login.action = action as i32;
    login.outcome = outcome as i32;
}

fn fill(login: &mut LoginEvent, pid: i32, line: &str, user: &str, host: &str) {
    login.pid = u32::try_from(pid).unwrap_or_default();
    login.tty = line.to_string();
    login.user = user.to_string();
    login.source_ip = host.to_string();
    login.service = service_of_line(line, host).to_string();
}

/// The login service a terminal name suggests: `sshd` for `ssh:*` and for remote
/// `pts/*`, `login` for `tty*`, else empty (unknown).
pub fn service_of_line(line: &str, host: &str) -> &'static str {
    if line.starts_with("ssh") || (!host.is_empty() && line.starts_with("pts")) {
        "sshd"
    } else if line.starts_with("tty") {
        "login"
    } else {
        ""
    }
}

/// Checkpoint key of the follower of `path`.
pub fn checkpoint_key(kind: UtmpKind, path: &Path) -> String {
    format!("{}:{}", kind.source(), path.display())
}

/// Follows a wtmp or btmp file until the capture channel closes.
pub async fn run(config: UtmpConfig, ctx: CaptureContext) {
    let key = checkpoint_key(config.kind, &config.path);
    let saved = ctx
        .positions
        .get(&key)
        .and_then(|text| serde_json::from_str::<FilePosition>(text).ok());
    let mut follower = UtmpFollower::new(config.clone(), saved);
    let mut last_error = None;
    loop {
        match follower.step(&ctx.host, &ctx.counters) {
            Ok(Some(capture)) => {
                last_error = None;
                if ctx.tx.send(capture).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            Ok(None) => tokio::time::sleep(config.poll_interval).await,
            Err(error) => {
                ctx.counters.inc(counter::READ_ERRORS);
                let text = error.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(path = %config.path.display(), error = %text, "utmp read failed");
                    last_error = Some(text);
                }
                follower.reset();
                tokio::time::sleep(config.poll_interval).await;
            }
        }
    }
}

/// The state of one followed utmp file. Synchronous; [`run`] drives it.
pub struct UtmpFollower {
    config: UtmpConfig,
    key: String,
    decoder: RecordDecoder,
    file: Option<(File, FilePosition)>,
    saved: Option<FilePosition>,
    start_at_end: bool,
}

impl UtmpFollower {
    pub fn new(config: UtmpConfig, saved: Option<FilePosition>) -> Self {
        UtmpFollower {
            key: checkpoint_key(config.kind, &config.path),
            decoder: RecordDecoder::new(config.kind),
            start_at_end: !config.read_existing,
            config,
            file: None,
            saved,
        }
    }

    fn reset(&mut self) {
        self.file = None;
    }

    /// Reads new whole records; `None` when there is nothing new.
    pub fn step(&mut self, host: &Host, counters: &Counters) -> io::Result<Option<Capture>> {
        if self.file.is_none() && !self.open_initial()? {
            return Ok(None);
        }
        let Some((file, position)) = self.file.as_mut() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; RECORD_SIZE * RECORDS_PER_READ];
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        let whole = filled - filled % RECORD_SIZE;
        if whole > 0 {
            // Put back a trailing partial record: it is read again once complete.
            file.seek(SeekFrom::Start(position.offset + whole as u64))?;
            position.offset += whole as u64;
            let events = self.decoder.decode(&buf[..whole], host, counters);
            let checkpoint = Checkpoint {
                source: self.key.clone(),
                position: position.encode(),
            };
            return Ok(Some(Capture {
                events,
                checkpoint: Some(checkpoint),
            }));
        }
        file.seek(SeekFrom::Start(position.offset))?;
        let meta = match std::fs::metadata(&self.config.path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if meta.ino() != position.inode || meta.len() < position.offset {
            if meta.ino() != position.inode {
                counters.inc(counter::ROTATIONS);
            } else {
                counters.inc(counter::TRUNCATIONS);
            }
            let file = File::open(&self.config.path)?;
            let position = FilePosition {
                inode: file.metadata()?.ino(),
                offset: 0,
                ..FilePosition::default()
            };
            self.file = Some((file, position));
            let checkpoint = Checkpoint {
                source: self.key.clone(),
                position: position.encode(),
            };
            return Ok(Some(Capture {
                events: Vec::new(),
                checkpoint: Some(checkpoint),
            }));
        }
        Ok(None)
    }

    fn open_initial(&mut self) -> io::Result<bool> {
        let mut file = match File::open(&self.config.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.start_at_end = false;
                return Ok(false);
            }
            Err(error) => return Err(error),
        };
        let meta = file.metadata()?;
        let whole_len = meta.len() - meta.len() % RECORD_SIZE as u64;
        let offset = match self.saved.take() {
            Some(saved) if saved.inode == meta.ino() && saved.offset <= meta.len() => {
                saved.offset - saved.offset % RECORD_SIZE as u64
            }
            Some(_) => 0,
            None if self.start_at_end => whole_len,
            None => 0,
        };
        self.start_at_end = false;
        file.seek(SeekFrom::Start(offset))?;
        self.file = Some((
            file,
            FilePosition {
                inode: meta.ino(),
                offset,
                ..FilePosition::default()
            },
        ));
        Ok(true)
    }
}

#[cfg(test)]
#[path = "utmp_tests.rs"]
mod tests;
