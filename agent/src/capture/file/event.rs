//! Turning a detected change into a wire `Event` and handing events to the spool
//! channel in [`Capture`] batches.
//!
//! Process attribution (`pid`, `exe`, `cmdline`) stays empty: inotify does not say
//! who made a change, and fanotify/audit are not available by default. Nothing is
//! guessed. Paths that are not UTF-8 are lossily encoded and counted
//! (`file.non_utf8_paths`); the baseline keeps their exact bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use shaobing_wire::v1::{Event, FileEvent, FileOp, event::Body};

use super::baseline::Entry;
use super::counter;
use crate::capture::{Capture, CaptureContext};

/// `source` of realtime events.
pub const SOURCE_INOTIFY: &str = "inotify";
/// `source` of events found by comparing with the baseline (restart, rescan).
pub const SOURCE_BASELINE: &str = "file_baseline";

/// Events per [`Capture`] handed to the spool writer.
const EVENTS_PER_CAPTURE: usize = 500;

/// One change to report.
pub struct Change<'a> {
    pub op: FileOp,
    pub source: &'static str,
    pub path: &'a Path,
    pub old_path: Option<&'a Path>,
    pub root: &'a Path,
    /// The file's state: current for create/modify/rename/attrib, last known for delete.
    pub entry: &'a Entry,
    pub hash_before: &'a str,
    pub hash_after: &'a str,
    pub content_sample: Option<String>,
    /// Human-readable note (symlink target, why a rescan happened).
    pub raw: String,
}

/// Builds events and sends them in batches; remembers when the channel closed.
pub struct Emitter {
    ctx: CaptureContext,
    batch: Vec<Event>,
    users: UserNames,
    closed: bool,
}

impl Emitter {
    pub fn new(ctx: CaptureContext) -> Self {
        Self {
            ctx,
            batch: Vec::new(),
            users: UserNames::new(PathBuf::from("/etc/passwd")),
            closed: false,
        }
    }

    /// Whether the spool side is gone (the agent is stopping).
    pub fn is_closed(&self) -> bool {
        self.closed || self.ctx.tx.is_closed()
    }

    /// Queues the event for `change`, sending a batch when it is full.
    pub fn emit(&mut self, change: Change<'_>) {
        let event = self.build(change);
        self.batch.push(event);
        if self.batch.len() >= EVENTS_PER_CAPTURE {
            self.flush();
        }
    }

    /// Sends what is queued (blocking while the spool writer catches up).
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.batch);
        let count = events.len() as u64;
        let capture = Capture {
            events,
            checkpoint: None,
        };
        match self.ctx.tx.blocking_send(capture) {
            Ok(()) => self.ctx.counters.add(counter::EVENTS, count),
            Err(_) => {
                self.closed = true;
                self.ctx.counters.add(counter::EVENTS_UNSENT, count);
            }
        }
    }

    /// Bumps counter `name`.
    pub fn count(&self, name: &str) {
        self.ctx.counters.inc(name);
    }

    /// Adds `n` to counter `name`.
    pub fn count_n(&self, name: &str, n: u64) {
        if n > 0 {
            self.ctx.counters.add(name, n);
        }
    }

    /// Text of a path, counting the lossy ones.
    pub fn path_text(&self, path: &Path) -> String {
        match path.to_str() {
            Some(text) => text.to_string(),
            None => {
                self.count(counter::NON_UTF8_PATHS);
                path.to_string_lossy().into_owned()
            }
        }
    }

    fn build(&mut self, change: Change<'_>) -> Event {
        let entry = change.entry;
        let file = FileEvent {
            op: change.op as i32,
            path: self.path_text(change.path),
            old_path: change
                .old_path
                .map(|p| self.path_text(p))
                .unwrap_or_default(),
            size: entry.size,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            owner: self.users.name(entry.uid),
            mtime_unix_nano: entry.mtime_ns,
            hash_before: change.hash_before.to_string(),
            hash_after: change.hash_after.to_string(),
            watched_root: self.path_text(change.root),
            pid: 0,
            exe: String::new(),
            cmdline: String::new(),
            content_sample: change.content_sample.unwrap_or_default(),
        };
        Event {
            event_id: String::new(),
            time_unix_nano: shaobing_wire::now_unix_nano(),
            host: Some(self.ctx.host.clone()),
            source: change.source.to_string(),
            raw: change.raw,
            body: Some(Body::File(file)),
        }
    }
}

/// uid → user name from `/etc/passwd`, re-read when the file changes.
struct UserNames {
    passwd: PathBuf,
    names: HashMap<u32, String>,
    loaded_mtime: Option<SystemTime>,
    checked_at: Option<Instant>,
}

const PASSWD_RECHECK: Duration = Duration::from_secs(5);

impl UserNames {
    fn new(passwd: PathBuf) -> Self {
        Self {
            passwd,
            names: HashMap::new(),
            loaded_mtime: None,
            checked_at: None,
        }
    }

    /// The user name of `uid`, or empty when unknown.
    fn name(&mut self, uid: u32) -> String {
        self.refresh();
        self.names.get(&uid).cloned().unwrap_or_default()
    }

    fn refresh(&mut self) {
        if self
            .checked_at
            .is_some_and(|at| at.elapsed() < PASSWD_RECHECK)
        {
            return;
        }
        self.checked_at = Some(Instant::now());
        let mtime = std::fs::metadata(&self.passwd)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_some() && mtime == self.loaded_mtime {
            return;
        }
        self.loaded_mtime = mtime;
        if let Ok(text) = std::fs::read_to_string(&self.passwd) {
            self.names = parse_passwd(&text);
        }
    }
}

fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            (!name.is_empty()).then(|| (uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_map_uids_to_names() {
        let names = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\n# c\nbad\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n:x:5:5::/:\n",
        );
        assert_eq!(names.get(&0).map(String::as_str), Some("root"));
        assert_eq!(names.get(&33).map(String::as_str), Some("www-data"));
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn user_names_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "alice:x:1000:1000::/home/alice:/bin/sh\n").unwrap();
        let mut users = UserNames::new(passwd);
        assert_eq!(users.name(1000), "alice");
        assert_eq!(users.name(4242), "");
    }
}
