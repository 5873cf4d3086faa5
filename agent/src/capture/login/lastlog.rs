//! `lastlog`: the last login of every account, as login programs record it.
//!
//! # The file
//!
//! glibc `struct lastlog`, one fixed-size record per UID at offset
//! `uid × RECORD_SIZE`: `ll_time` (seconds since the epoch; `int32_t` on x86-64,
//! 64-bit on aarch64 and s390x), `ll_line[32]` (the terminal, e.g. `pts/0`) and
//! `ll_host[256]` (the remote host or address). sshd (`record_login`, for
//! sessions with a terminal), `pam_lastlog` (`login`) and `lastlog -S` write it in
//! place; a UID that never logged in is a hole, so a host with high UIDs (LDAP,
//! `nobody` = 65534, container ranges) has a huge sparse file. Only the data
//! extents are read (`SEEK_DATA`/`SEEK_HOLE`), at most [`MAX_SCAN_BYTES`] per scan.
//!
//! # Semantics
//!
//! The file is polled (one `stat` per poll interval; it is read again only when
//! its inode, size or times changed). Every scan compares each account's record
//! with what the previous scan saw (a 64-bit FNV-1a fingerprint per UID) and emits
//! one [`LoginEvent`] (`action = login`, `outcome = success`, `source = lastlog`)
//! per record that changed: user (the name from the host's `passwd` file, else the
//! UID in decimal), terminal, source host/address, and the login time as the
//! event time. `raw` is the rendered record
//! (`lastlog login uid=1000 user=alice line=pts/0 host=192.0.2.7 time=2026-…Z`).
//!
//! - The first scan after install (no checkpoint) emits every account's current
//!   record as an **inventory** (`raw` starts with `lastlog inventory`), so
//!   operators see dormant accounts and their last logins; with
//!   `read_existing = false` it only records them.
//! - What was seen is the checkpoint (`lastlog:<path>`), committed with the events
//!   in the spool: a restart emits exactly the records that changed while the
//!   agent was stopped (lastlog keeps only the latest login of each account, so
//!   several logins of one account while stopped are one event; wtmp has them all).
//! - A record that became empty (`lastlog -C`, or the file replaced by an emptier
//!   one) raises no event: it is counted in `login.lastlog_cleared` and logged.
//! - Malformed records (negative time, text fields that are not UTF-8 or hold
//!   control characters, a trailing partial record) are counted in
//!   `login.malformed` once per scan that sees them changed; an unreadable file in
//!   `login.read_errors`; a scan cut at [`MAX_SCAN_BYTES`] or at
//!   [`MAX_TRACKED_ACCOUNTS`] in `login.lastlog_limited` (records beyond the limit
//!   are neither emitted nor remembered).
//!
//! Not read: `lastlog2` (the SQLite database of util-linux ≥ 2.40, Debian 13).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};
use serde::{Deserialize, Serialize};
use shaobing_wire::v1::{Event, Host, LoginAction, LoginEvent, Outcome};

use super::counter;
use super::event::login_to_event;
use super::tail::head_hash;
use crate::capture::{Capture, CaptureContext, Checkpoint};
use crate::counters::Counters;

/// The event `source`, also the checkpoint key prefix.
pub const SOURCE: &str = "lastlog";

/// Size of `ll_time` (glibc: `int32_t` where `__WORDSIZE_TIME64_COMPAT32`, e.g. x86-64).
#[cfg(not(any(target_arch = "aarch64", target_arch = "s390x")))]
pub const TIME_BYTES: usize = 4;
/// Size of `ll_time` (glibc: a 64-bit `time_t` on aarch64 and s390x).
#[cfg(any(target_arch = "aarch64", target_arch = "s390x"))]
pub const TIME_BYTES: usize = 8;
/// `ll_line`: the terminal.
pub const LINE_BYTES: usize = 32;
/// `ll_host`: the remote host.
pub const HOST_BYTES: usize = 256;
/// One record (292 bytes on x86-64, 296 on aarch64 and s390x).
pub const RECORD_SIZE: usize = TIME_BYTES + LINE_BYTES + HOST_BYTES;

/// Most data bytes one scan reads (about 230 000 records).
pub const MAX_SCAN_BYTES: u64 = 64 * 1024 * 1024;
/// Most accounts remembered (and reported) at once.
pub const MAX_TRACKED_ACCOUNTS: usize = 100_000;
/// Largest `passwd` file read for names.
const MAX_PASSWD_BYTES: u64 = 64 * 1024 * 1024;
/// Records read per `pread`.
const RECORDS_PER_READ: usize = 1024;

/// One account's last login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastlogRecord {
    pub uid: u32,
    /// Seconds since the epoch.
    pub time_secs: i64,
    /// Terminal (`pts/0`, `tty1`), possibly empty (`lastlog -S`).
    pub line: String,
    /// Remote host or address, empty for local logins.
    pub host: String,
}

/// Why a record is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRecord {
    #[error("uid {uid}: login time {time} is not after 1970")]
    BadTime { uid: u32, time: i64 },
    #[error("uid {uid}: {field} is not UTF-8 text without control characters")]
    BadText { uid: u32, field: &'static str },
    #[error("trailing partial record of {0} bytes")]
    PartialRecord(u64),
}

/// Decodes the record of `uid`: `Ok(None)` for an account that never logged in
/// (all zero bytes). `bytes` must be [`RECORD_SIZE`] long.
pub fn decode_record(uid: u32, bytes: &[u8]) -> Result<Option<LastlogRecord>, MalformedRecord> {
    if bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let time = read_time(&bytes[..TIME_BYTES]);
    if time <= 0 {
        return Err(MalformedRecord::BadTime { uid, time });
    }
    let text = |field: &'static str, raw: &[u8]| {
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        match std::str::from_utf8(&raw[..end]) {
            Ok(text) if !text.chars().any(char::is_control) => Ok(text.to_string()),
            _ => Err(MalformedRecord::BadText { uid, field }),
        }
    };
    Ok(Some(LastlogRecord {
        uid,
        time_secs: time,
        line: text("ll_line", &bytes[TIME_BYTES..TIME_BYTES + LINE_BYTES])?,
        host: text("ll_host", &bytes[TIME_BYTES + LINE_BYTES..RECORD_SIZE])?,
    }))
}

#[cfg(not(any(target_arch = "aarch64", target_arch = "s390x")))]
fn read_time(bytes: &[u8]) -> i64 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(bytes);
    i64::from(i32::from_ne_bytes(raw))
}

#[cfg(any(target_arch = "aarch64", target_arch = "s390x"))]
fn read_time(bytes: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(bytes);
    i64::from_ne_bytes(raw)
}

/// What one pass over the file found besides its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Bytes read (data extents only).
    pub bytes_read: u64,
    /// Bytes of a trailing partial record (0 when the size is a whole number of records).
    pub partial_tail: u64,
    /// The scan stopped at [`MAX_SCAN_BYTES`].
    pub limited: bool,
}

/// Calls `record(uid, bytes)` for every record of `file` that is not all zero,
/// in UID order, reading only the file's data extents and at most `max_bytes`.
pub fn scan(
    file: &File,
    max_bytes: u64,
    mut record: impl FnMut(u32, &[u8]),
) -> io::Result<ScanStats> {
    let len = file.metadata()?.len();
    let size = RECORD_SIZE as u64;
    let whole_len = len - len % size;
    let mut stats = ScanStats {
        partial_tail: len % size,
        ..ScanStats::default()
    };
    let mut buf = vec![0u8; RECORD_SIZE * RECORDS_PER_READ];
    let mut offset = 0u64;
    while offset < whole_len {
        let Some((data, hole)) = next_extent(file, offset, whole_len)? else {
            break;
        };
        // Records may straddle extent boundaries: read whole records around the extent.
        let mut at = data - data % size;
        let end = hole.div_ceil(size).saturating_mul(size).min(whole_len);
        while at < end {
            if stats.bytes_read >= max_bytes {
                stats.limited = true;
                return Ok(stats);
            }
            let budget = (max_bytes - stats.bytes_read).div_ceil(size) * size;
            let want = (end - at).min(buf.len() as u64).min(budget) as usize;
            file.read_exact_at(&mut buf[..want], at)?;
            stats.bytes_read += want as u64;
            for (index, chunk) in buf[..want].chunks_exact(RECORD_SIZE).enumerate() {
                if chunk.iter().any(|b| *b != 0) {
                    let uid = (at / size) + index as u64;
                    // Offsets beyond u32 UIDs are not records any login program writes.
                    if let Ok(uid) = u32::try_from(uid) {
                        record(uid, chunk);
                    }
                }
            }
            at += want as u64;
        }
        offset = end.max(offset + size);
    }
    Ok(stats)
}

/// The next data extent `[data, hole)` at or after `offset`, or `None` at the end.
/// Where `SEEK_DATA` is unsupported the rest of the file is one extent.
fn next_extent(file: &File, offset: u64, len: u64) -> io::Result<Option<(u64, u64)>> {
    let as_off = |n: u64| i64::try_from(n).map_err(|_| io::Error::other("offset overflow"));
    let data = match lseek(file, as_off(offset)?, Whence::SeekData) {
        Ok(data) => data as u64,
        Err(Errno::ENXIO) => return Ok(None),
        Err(Errno::EINVAL) | Err(Errno::EOPNOTSUPP) => return Ok(Some((offset, len))),
        Err(errno) => return Err(errno.into()),
    };
    if data >= len {
        return Ok(None);
    }
    let hole = match lseek(file, as_off(data)?, Whence::SeekHole) {
        Ok(hole) => (hole as u64).min(len),
        Err(_) => len,
    };
    Ok(Some((data, hole.max(data + 1))))
}

/// UID → account name from a `passwd` file, re-read when the file changes.
#[derive(Debug)]
pub struct UserNames {
    path: PathBuf,
    stamp: Option<FileStamp>,
    names: HashMap<u32, String>,
}

impl UserNames {
    pub fn new(path: PathBuf) -> Self {
        UserNames {
            path,
            stamp: None,
            names: HashMap::new(),
        }
    }

    /// Re-reads the file if it changed; a missing or unreadable file leaves no names.
    pub fn refresh(&mut self) {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| FileStamp::of(&m));
        if stamp.is_some() && stamp == self.stamp {
            return;
        }
        self.stamp = stamp;
        self.names = match stamp {
            Some(stamp) if stamp.len <= MAX_PASSWD_BYTES => std::fs::read(&self.path)
                .map(|bytes| parse_passwd(&bytes))
                .unwrap_or_default(),
            _ => HashMap::new(),
        };
    }

    /// The account name of `uid`, else the UID in decimal.
    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

/// `name:password:uid:...` lines → UID → name (the first name of a UID wins;
/// malformed lines are skipped).
pub fn parse_passwd(bytes: &[u8]) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with('#') || name.chars().any(char::is_control) {
            continue;
        }
        if let Ok(uid) = uid.trim().parse::<u32>() {
            names.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    names
}

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        FileStamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        }
    }
}

/// What one watcher reads.
#[derive(Debug, Clone)]
pub struct LastlogConfig {
    pub path: PathBuf,
    /// `passwd` file naming the UIDs.
    pub passwd: PathBuf,
    pub poll_interval: Duration,
    /// With no checkpoint, emit the current records as an inventory.
    pub read_existing: bool,
}

/// The checkpoint: the fingerprint of every account's record, by UID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRecords {
    /// `[uid, FNV-1a of the record]`, in UID order.
    pub seen: Vec<(u32, u64)>,
}

/// Checkpoint key of the watcher of `path`.
pub fn checkpoint_key(path: &Path) -> String {
    format!("{SOURCE}:{}", path.display())
}

/// Watches a lastlog file until the capture channel closes.
pub async fn run(config: LastlogConfig, ctx: CaptureContext) {
    let key = checkpoint_key(&config.path);
    let saved = ctx.positions.get(&key).and_then(|text| {
        match serde_json::from_str::<SeenRecords>(text) {
            Ok(seen) => Some(seen),
            Err(error) => {
                tracing::warn!(%key, %error, "unreadable lastlog checkpoint: taking a new inventory");
                None
            }
        }
    });
    let poll_interval = config.poll_interval;
    let mut watcher = LastlogWatcher::new(config, saved);
    let mut last_error = None;
    loop {
        match watcher.step(&ctx.host, &ctx.counters) {
            Ok(Some(capture)) => {
                last_error = None;
                if ctx.tx.send(capture).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => {
                ctx.counters.inc(counter::READ_ERRORS);
                let text = error.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(path = %watcher.config.path.display(), error = %text, "lastlog read failed");
                    last_error = Some(text);
                }
            }
        }
        tokio::time::sleep(poll_interval).await;
    }
}

/// The state of one watched lastlog file. Synchronous; [`run`] drives it.
pub struct LastlogWatcher {
    config: LastlogConfig,
    key: String,
    /// Fingerprints seen by the last scan (or restored); `None` before the first
    /// scan of a first start.
    seen: Option<BTreeMap<u32, u64>>,
    /// The file as of the last scan (unchanged: no scan).
    stamp: Option<FileStamp>,
    users: UserNames,
}

impl LastlogWatcher {
    pub fn new(config: LastlogConfig, saved: Option<SeenRecords>) -> Self {
        LastlogWatcher {
            key: checkpoint_key(&config.path),
            users: UserNames::new(config.passwd.clone()),
            seen: saved.map(|s| s.seen.into_iter().collect()),
            stamp: None,
            config,
        }
    }

    /// Scans the file if it changed; returns the events of the records that
    /// changed and the new checkpoint, or `None` when nothing changed.
    pub fn step(&mut self, host: &Host, counters: &Counters) -> io::Result<Option<Capture>> {
        let meta = match std::fs::metadata(&self.config.path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let stamp = FileStamp::of(&meta);
        if self.stamp == Some(stamp) {
            return Ok(None);
        }
        let file = File::open(&self.config.path)?;
        let mut current: BTreeMap<u32, u64> = BTreeMap::new();
        let mut changed: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut over_cap = false;
        let previous = self.seen.as_ref();
        let stats = scan(&file, MAX_SCAN_BYTES, |uid, bytes| {
            if current.len() >= MAX_TRACKED_ACCOUNTS {
                over_cap = true;
                return;
            }
            let fingerprint = head_hash(bytes);
            current.insert(uid, fingerprint);
            if previous.and_then(|p| p.get(&uid)) != Some(&fingerprint) {
                changed.push((uid, bytes.to_vec()));
            }
        })?;
        self.stamp = Some(stamp);
        if stats.limited || over_cap {
            counters.inc(counter::LASTLOG_LIMITED);
            tracing::warn!(path = %self.config.path.display(), "lastlog scan cut at its size limit");
        }
        if stats.partial_tail > 0 {
            counters.inc(counter::MALFORMED);
            tracing::debug!(error = %MalformedRecord::PartialRecord(stats.partial_tail), "lastlog");
        }
        let inventory = self.seen.is_none();
        // Only a complete scan tells that a record was emptied.
        if let Some(previous) = &self.seen
            && !stats.limited
            && !over_cap
        {
            for uid in previous.keys().filter(|uid| !current.contains_key(uid)) {
                counters.inc(counter::LASTLOG_CLEARED);
                tracing::warn!(uid = *uid, path = %self.config.path.display(), "lastlog record cleared");
            }
        }
        let emit = !inventory || self.config.read_existing;
        self.users.refresh();
        let mut events = Vec::new();
        for (uid, bytes) in &changed {
            match decode_record(*uid, bytes) {
                Ok(Some(record)) if emit => {
                    counters.inc(counter::PARSED);
                    events.push(record_event(&record, &self.users, inventory, host));
                }
                Ok(_) => {}
                Err(error) => {
                    counters.inc(counter::MALFORMED);
                    tracing::debug!(%error, "malformed lastlog record");
                }
            }
        }
        events.sort_by_key(|event| event.time_unix_nano);
        if self.seen.as_ref() == Some(&current) {
            return Ok(None);
        }
        let checkpoint = Checkpoint {
            source: self.key.clone(),
            position: serde_json::to_string(&SeenRecords {
                seen: current.iter().map(|(uid, fp)| (*uid, *fp)).collect(),
            })
            .map_err(io::Error::other)?,
        };
        self.seen = Some(current);
        Ok(Some(Capture {
            events,
            checkpoint: Some(checkpoint),
        }))
    }
}

/// The login event of a record.
pub fn record_event(
    record: &LastlogRecord,
    users: &UserNames,
    inventory: bool,
    host: &Host,
) -> Event {
    let user = users.name(record.uid);
    let login = LoginEvent {
        action: LoginAction::Login as i32,
        outcome: Outcome::Success as i32,
        user: user.clone(),
        source_ip: record.host.clone(),
        service: super::utmp::service_of_line(&record.line, &record.host).to_string(),
        tty: record.line.clone(),
        ..LoginEvent::default()
    };
    let time = time::OffsetDateTime::from_unix_timestamp(record.time_secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| record.time_secs.to_string());
    let raw = format!(
        "lastlog {} uid={} user={user} line={} host={} time={time}",
        if inventory { "inventory" } else { "login" },
        record.uid,
        record.line,
        record.host
    );
    login_to_event(
        login,
        record.time_secs.saturating_mul(1_000_000_000),
        host,
        SOURCE,
        raw,
    )
}

#[cfg(test)]
#[path = "lastlog_tests.rs"]
mod tests;
