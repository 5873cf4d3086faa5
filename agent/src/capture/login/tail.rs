//! Follows one auth log file: reads appended lines every poll interval, survives
//! both kinds of rotation, and resumes from the spool's checkpoint.
//!
//! - Checkpoint (`auth_log:<path>` → `{"inode":I,"offset":O}`) is the position after
//!   the last complete line handed to the spool; a partial last line waits.
//! - Rename + create (logrotate's default): at end of file, a different inode at the
//!   path means the file was rotated. The old file is read to its end through the
//!   open descriptor (one extra poll of grace for late writers), then the new file
//!   is read from its start. Rotated names (`.1`, `.gz`) are never opened, except
//!   that a resume whose inode now sits at `<path>.1` finishes that file first.
//! - Copy + truncate: a file shorter than what was read restarts at offset 0. If the
//!   agent had not read the file to its end before the truncation, the unread lines
//!   now live only in the copy: when `<path>.1` starts with the same bytes as the file
//!   we were reading (its first [`HEAD_BYTES`]) and is longer than our position, the
//!   copy is read from our position to its end first.
//! - Lines longer than `max_line_bytes` are skipped whole and counted (never buffered).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shaobing_wire::v1::Event;

use super::counter;
use super::event::LineHandler;
use super::parse::ParseContext;
use crate::capture::{Capture, CaptureContext, Checkpoint};

/// Bytes read per system call.
const READ_CHUNK: usize = 256 * 1024;
/// Chunks read in one step before yielding to other tasks (bounds a step's work).
const MAX_CHUNKS_PER_STEP: usize = 16;
/// Leading bytes of a file kept to recognise its copy after a copytruncate rotation.
pub const HEAD_BYTES: usize = 256;
/// `source` of the events.
pub const SOURCE: &str = "auth_log";

/// What one tailer follows.
#[derive(Debug, Clone)]
pub struct TailConfig {
    pub path: PathBuf,
    pub poll_interval: Duration,
    /// With no checkpoint, read the file from its start (else from its end).
    pub read_existing: bool,
    pub max_line_bytes: usize,
    pub utc_offset_seconds: i32,
}

/// A resume position in a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    pub inode: u64,
    pub offset: u64,
    /// How many leading bytes of the file `head_hash` covers (0: unknown). With it a
    /// restart recognises a file truncated (and perhaps regrown) while the agent was
    /// stopped, and its copytruncate copy.
    #[serde(default)]
    pub head_len: u64,
    /// FNV-1a of the file's first `head_len` bytes.
    #[serde(default)]
    pub head_hash: u64,
}

impl FilePosition {
    /// The checkpoint text (`{"inode":I,"offset":O[,"head_len":L,"head_hash":H]}`).
    pub fn encode(&self) -> String {
        if self.head_len == 0 {
            return format!("{{\"inode\":{},\"offset\":{}}}", self.inode, self.offset);
        }
        format!(
            "{{\"inode\":{},\"offset\":{},\"head_len\":{},\"head_hash\":{}}}",
            self.inode, self.offset, self.head_len, self.head_hash
        )
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of a file's first bytes.
pub fn head_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Checkpoint key of the tailer of `path`.
pub fn checkpoint_key(path: &Path) -> String {
    format!("{SOURCE}:{}", path.display())
}

/// Follows `config.path` until the capture channel closes.
pub async fn run(config: TailConfig, ctx: CaptureContext) {
    let key = checkpoint_key(&config.path);
    let saved =
        ctx.positions
            .get(&key)
            .and_then(|text| match serde_json::from_str::<FilePosition>(text) {
                Ok(position) => Some(position),
                Err(error) => {
                    tracing::warn!(%key, %error, "unreadable checkpoint: starting afresh");
                    None
                }
            });
    let poll_interval = config.poll_interval;
    let mut tail = FileTail::new(config, saved);
    let handler = LineHandler {
        host: &ctx.host,
        source: SOURCE,
        counters: &ctx.counters,
    };
    loop {
        match tail.step(&handler) {
            Step::Data(capture) => {
                if ctx.tx.send(capture).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
            Step::More => tokio::task::yield_now().await,
            Step::Idle => tokio::time::sleep(poll_interval).await,
        }
    }
}

/// What one [`FileTail::step`] produced.
#[derive(Debug)]
pub enum Step {
    /// Events and/or a new checkpoint for the spool.
    Data(Capture),
    /// Work was done but nothing is ready yet (a long line); step again soon.
    More,
    /// Nothing new: wait a poll interval.
    Idle,
}

struct OpenFile {
    file: File,
    inode: u64,
    /// Position after the last complete line handed on (the checkpoint).
    offset: u64,
    /// Bytes of the file consumed so far (`offset` + the pending partial line).
    read_pos: u64,
    /// The file's first bytes (up to HEAD_BYTES), read when it was opened (even
    /// if not yet consumed) and completed as it is read: a file truncated before
    /// we read it is noticed too.
    head: Vec<u8>,
    /// This is the copy of a copytruncated file, read to its end before the live file.
    finishing_copy: bool,
}

/// The state of one followed file. Synchronous; [`run`] drives it.
pub struct FileTail {
    config: TailConfig,
    key: String,
    current: Option<OpenFile>,
    /// Where to resume on the first open.
    saved: Option<FilePosition>,
    /// With no checkpoint, whether to start at the end of a file present at start.
    start_at_end: bool,
    /// The partial line read so far (bounded by `max_line_bytes`).
    pending: Vec<u8>,
    /// Inside an oversize line: drop bytes until its newline.
    discarding: bool,
    /// A new file appeared at the path; the old one gets one more read to its end.
    rotation_seen: bool,
    buf: Vec<u8>,
    last_error: Option<String>,
}

impl FileTail {
    pub fn new(config: TailConfig, saved: Option<FilePosition>) -> Self {
        let key = checkpoint_key(&config.path);
        let start_at_end = !config.read_existing;
        FileTail {
            config,
            key,
            current: None,
            saved,
            start_at_end,
            pending: Vec::new(),
            discarding: false,
            rotation_seen: false,
            buf: vec![0; READ_CHUNK],
            last_error: None,
        }
    }

    /// The current checkpoint, if a file is open.
    pub fn position(&self) -> Option<FilePosition> {
        self.current.as_ref().map(|f| FilePosition {
            inode: f.inode,
            offset: f.offset,
            head_len: f.head.len() as u64,
            head_hash: head_hash(&f.head),
        })
    }

    /// Reads what is new and returns it.
    pub fn step(&mut self, handler: &LineHandler<'_>) -> Step {
        match self.try_step(handler) {
            Ok(step) => {
                self.last_error = None;
                step
            }
            Err(error) => {
                handler.counters.inc(counter::READ_ERRORS);
                let text = error.to_string();
                if self.last_error.as_deref() != Some(&text) {
                    tracing::warn!(path = %self.config.path.display(), error = %text, "auth log read failed");
                    self.last_error = Some(text);
                }
                self.current = None;
                self.pending.clear();
                self.discarding = false;
                Step::Idle
            }
        }
    }

    fn try_step(&mut self, handler: &LineHandler<'_>) -> io::Result<Step> {
        if self.current.is_none() && !self.open_initial(handler)? {
            return Ok(Step::Idle);
        }
        if self.rewritten_in_place()? {
            return self.truncated(handler);
        }
        let read_time = shaobing_wire::now_unix_nano();
        let parse_ctx = ParseContext::new(read_time, self.config.utc_offset_seconds);
        let mut events = Vec::new();
        let mut lines_done = false;
        for _ in 0..MAX_CHUNKS_PER_STEP {
            let Some(open) = self.current.as_mut() else {
                return Ok(Step::Idle);
            };
            let n = open.file.read(&mut self.buf)?;
            if n == 0 {
                if lines_done {
                    return Ok(Step::Data(self.capture(events)));
                }
                return self.at_end_of_file(handler, &parse_ctx, read_time);
            }
            self.rotation_seen = false;
            lines_done |= self.consume(n, handler, &parse_ctx, read_time, &mut events);
            if lines_done && events.len() >= shaobing_wire::limits::MAX_EVENTS_PER_BATCH / 2 {
                break;
            }
        }
        Ok(if lines_done {
            Step::Data(self.capture(events))
        } else {
            Step::More
        })
    }

    /// Splits the `n` bytes just read into lines; returns whether a line ended.
    fn consume(
        &mut self,
        n: usize,
        handler: &LineHandler<'_>,
        parse_ctx: &ParseContext,
        read_time: i64,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(open) = self.current.as_mut() else {
            return false;
        };
        let chunk_start = open.read_pos;
        open.read_pos += n as u64;
        let data = &self.buf[..n];
        // Keep `head` = the file's first bytes, up to HEAD_BYTES.
        let known = open.head.len();
        if let Ok(start) = usize::try_from(chunk_start)
            && known < HEAD_BYTES
            && start <= known
            && known < start + n
        {
            let end = n.min(HEAD_BYTES - start);
            open.head.extend_from_slice(&data[known - start..end]);
        }
        let max = self.config.max_line_bytes;
        let mut line_start = 0;
        let mut ended = false;
        for newline in memchr::memchr_iter(b'\n', data) {
            let piece = &data[line_start..=newline];
            if self.discarding {
                self.discarding = false;
                handler.oversize();
            } else if self.pending.len() + piece.len() > max + 2 {
                self.pending.clear();
                handler.oversize();
            } else if self.pending.is_empty() {
                events.extend(handler.line(piece, parse_ctx, read_time));
            } else {
                self.pending.extend_from_slice(piece);
                events.extend(handler.line(&self.pending, parse_ctx, read_time));
                self.pending.clear();
            }
            line_start = newline + 1;
            open.offset = chunk_start + line_start as u64;
            ended = true;
        }
        let rest = &data[line_start..];
        if !self.discarding && !rest.is_empty() {
            if self.pending.len() + rest.len() > max {
                self.pending.clear();
                self.discarding = true;
            } else {
                self.pending.extend_from_slice(rest);
            }
        }
        ended
    }

    fn capture(&self, events: Vec<Event>) -> Capture {
        let checkpoint = self.position().map(|position| Checkpoint {
            source: self.key.clone(),
            position: position.encode(),
        });
        Capture { events, checkpoint }
    }

    /// Opens the file the first time (or after an error), honouring the saved position.
    fn open_initial(&mut self, handler: &LineHandler<'_>) -> io::Result<bool> {
        let path = self.config.path.clone();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                // A file that appears later is new: read it all.
                self.start_at_end = false;
                return Ok(false);
            }
            Err(error) => return Err(error),
        };
        let meta = file.metadata()?;
        let mut finishing_copy = false;
        let (file, inode, offset) = match self.saved.take() {
            Some(saved) if saved.inode == meta.ino() => {
                let same_start = saved.head_len == 0
                    || head_hash(&read_head(&file, saved.head_len)?) == saved.head_hash;
                if saved.offset <= meta.len() && same_start {
                    (file, saved.inode, saved.offset)
                } else {
                    // Truncated (copytruncate) while the agent was stopped.
                    handler.counters.inc(counter::TRUNCATIONS);
                    match self.copy_of(&saved)? {
                        Some((copy, copy_inode)) => {
                            tracing::info!(path = %path.display(), "truncated while the agent was stopped: finishing its copy first");
                            finishing_copy = true;
                            (copy, copy_inode, saved.offset)
                        }
                        None => (file, saved.inode, 0),
                    }
                }
            }
            Some(saved) => match self.find_rotated(saved.inode)? {
                Some(old) => {
                    tracing::info!(path = %path.display(), "finishing the file rotated while the agent was stopped");
                    (old, saved.inode, saved.offset)
                }
                None => {
                    tracing::warn!(path = %path.display(), "file rotated while the agent was stopped; its unread end is lost");
                    (file, meta.ino(), 0)
                }
            },
            None if self.start_at_end => (file, meta.ino(), meta.len()),
            None => (file, meta.ino(), 0),
        };
        self.start_at_end = false;
        self.open_at(file, inode, offset)?;
        if let Some(open) = self.current.as_mut() {
            open.finishing_copy = finishing_copy;
        }
        Ok(true)
    }

    /// `<path>.1` if it is the file with `inode` (plain rename rotation).
    fn find_rotated(&self, inode: u64) -> io::Result<Option<File>> {
        let mut rotated = self.config.path.clone().into_os_string();
        rotated.push(".1");
        match File::open(&rotated) {
            Ok(file) if file.metadata()?.ino() == inode => Ok(Some(file)),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// After a truncation: `<path>.1` with its inode if it is the copy of the file
    /// being read.
    fn find_copy(&self) -> io::Result<Option<(File, u64)>> {
        match (self.current.as_ref(), self.position()) {
            (Some(open), Some(position)) if !open.finishing_copy => self.copy_of(&position),
            _ => Ok(None),
        }
    }

    /// `<path>.1` with its inode if it is a copy of the file at `position` (another
    /// inode starting with the same bytes) holding bytes past `position.offset`.
    fn copy_of(&self, position: &FilePosition) -> io::Result<Option<(File, u64)>> {
        if position.head_len == 0 {
            return Ok(None);
        }
        let mut rotated = self.config.path.clone().into_os_string();
        rotated.push(".1");
        let copy = match File::open(&rotated) {
            Ok(copy) => copy,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let meta = copy.metadata()?;
        if meta.ino() == position.inode || meta.len() <= position.offset {
            return Ok(None);
        }
        let head = read_head(&copy, position.head_len)?;
        let same = head.len() as u64 == position.head_len && head_hash(&head) == position.head_hash;
        Ok(same.then_some((copy, meta.ino())))
    }

    fn open_at(&mut self, mut file: File, inode: u64, offset: u64) -> io::Result<()> {
        let head = read_head(&file, HEAD_BYTES as u64)?;
        file.seek(SeekFrom::Start(offset))?;
        self.current = Some(OpenFile {
            file,
            inode,
            offset,
            read_pos: offset,
            head,
            finishing_copy: false,
        });
        self.pending.clear();
        self.discarding = false;
        self.rotation_seen = false;
        Ok(())
    }

    /// At the end of the open file: look for rotation or truncation.
    fn at_end_of_file(
        &mut self,
        handler: &LineHandler<'_>,
        parse_ctx: &ParseContext,
        read_time: i64,
    ) -> io::Result<Step> {
        let Some(open) = self.current.as_ref() else {
            return Ok(Step::Idle);
        };
        let meta = match std::fs::metadata(&self.config.path) {
            Ok(meta) => meta,
            // Renamed away and not yet re-created: keep the old file open.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Step::Idle),
            Err(error) => return Err(error),
        };
        if meta.ino() != open.inode {
            // A copy is complete: no writer appends to it, so no grace poll.
            if !open.finishing_copy {
                if !self.rotation_seen {
                    self.rotation_seen = true;
                    return Ok(Step::Idle);
                }
                handler.counters.inc(counter::ROTATIONS);
            }
            let mut events = Vec::new();
            if !self.discarding && !self.pending.is_empty() {
                let last = std::mem::take(&mut self.pending);
                events.extend(handler.line(&last, parse_ctx, read_time));
            }
            match File::open(&self.config.path) {
                Ok(file) => {
                    let inode = file.metadata()?.ino();
                    self.open_at(file, inode, 0)?;
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Step::Idle),
                Err(error) => return Err(error),
            }
            return Ok(Step::Data(self.capture(events)));
        }
        if meta.len() < open.read_pos {
            return self.truncated(handler);
        }
        Ok(Step::Idle)
    }

    /// Whether the open file no longer starts with the bytes it started with: it was
    /// truncated and written again (more than we had read) since the last step.
    fn rewritten_in_place(&self) -> io::Result<bool> {
        match self.current.as_ref() {
            Some(open) if !open.head.is_empty() => {
                Ok(read_head(&open.file, open.head.len() as u64)? != open.head)
            }
            _ => Ok(false),
        }
    }

    /// The open file was truncated (copytruncate): finish its copy if it holds unread
    /// lines, else go on from the start of the file.
    fn truncated(&mut self, handler: &LineHandler<'_>) -> io::Result<Step> {
        handler.counters.inc(counter::TRUNCATIONS);
        if let Some((copy, inode)) = self.find_copy()? {
            let offset = self.position().map_or(0, |position| position.offset);
            tracing::info!(path = %self.config.path.display(), offset, "truncated before it was read to its end: finishing its copy first");
            self.open_at(copy, inode, offset)?;
            if let Some(open) = self.current.as_mut() {
                open.finishing_copy = true;
            }
            return Ok(Step::Data(self.capture(Vec::new())));
        }
        let file = File::open(&self.config.path)?;
        let inode = file.metadata()?.ino();
        self.open_at(file, inode, 0)?;
        Ok(Step::Data(self.capture(Vec::new())))
    }
}

/// The first `min(HEAD_BYTES, upto)` bytes of `file` (fewer if it is shorter).
fn read_head(file: &File, upto: u64) -> io::Result<Vec<u8>> {
    let want = usize::try_from(upto).map_or(HEAD_BYTES, |upto| upto.min(HEAD_BYTES));
    let mut head = vec![0; want];
    let mut filled = 0;
    while filled < want {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    head.truncate(filled);
    Ok(head)
}

#[cfg(test)]
#[path = "tail_tests.rs"]
mod tests;
