//! Comparing what is on disk with the baseline, and reporting the difference.
//!
//! One [`Differ`] serves both the realtime path (one file after its debounce) and
//! scans (a whole root at start, on rescan, after an overflow, or a new
//! subdirectory). Unchanged metadata (size, mode, owner, mtime, ctime, inode) means
//! unchanged content: the file is not read again. A scan marks every file it sees
//! with a fresh generation; the root's rows left with an older one are deletions.
//!
//! A rename onto a path the baseline knew replaced that file (`mv new.html
//! index.html`, `sed -i`, useradd's `passwd+`): it is reported as a modify (or
//! attrib) of the destination, `hash_before` being the replaced content and
//! `old_path` the staged name, however long the staged file lived. Only when the
//! content and attributes are the same is it a plain rename.
//!
//! Events are handed on before the baseline rows that describe them are committed
//! ([`Differ::checkpoint`]): a crash in between reports a change twice, never zero times.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use shaobing_wire::v1::FileOp;

use super::baseline::{BaselineError, BaselineStore, Entry, EntryKind, StoredFile};
use super::config::{FileConfig, HashAlgo};
use super::counter;
use super::event::{Change, Emitter, SOURCE_BASELINE};
use super::hash::{DigestRequest, FileDigest, HashError, digest_file};
use super::layout::{CompiledSet, Target};

/// Files examined between two checkpoints of a scan.
const CHECKPOINT_EVERY: usize = 1000;
/// Rows read at a time when reporting deletions.
const ROW_CHUNK: usize = 500;
/// Reads of a file that keeps changing before giving up on its hash.
const HASH_ATTEMPTS: usize = 3;

/// Whether a scan reports what it finds or only records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// First baseline of a root: record, report nothing.
    Silent,
    /// Report creates, modifies and deletes with this event source.
    Report(&'static str),
}

/// Hashing and sampling settings.
#[derive(Debug, Clone, Copy)]
pub struct DigestSettings {
    pub algo: HashAlgo,
    pub max_hash_bytes: u64,
    pub sample_bytes: usize,
    pub sample_max_file_bytes: u64,
}

impl DigestSettings {
    pub fn from_config(config: &FileConfig) -> Self {
        Self {
            algo: config.hash,
            max_hash_bytes: config.max_hash_bytes,
            sample_bytes: config.sample_bytes(),
            sample_max_file_bytes: config.content_sample_max_file_bytes,
        }
    }
}

/// What a scan saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanStats {
    pub files: u64,
    /// False when the scan was cut short (stopping): deletions were not judged.
    pub complete: bool,
}

/// The baseline, the event emitter, and the rules for comparing the two.
pub struct Differ {
    pub store: BaselineStore,
    pub emitter: Emitter,
    pub settings: DigestSettings,
    /// Generation stamped on rows touched outside scans.
    pub generation: i64,
    pub stop: Arc<AtomicBool>,
}

impl Differ {
    /// Sends queued events, then commits the baseline rows they describe.
    pub fn checkpoint(&mut self) -> Result<(), BaselineError> {
        self.emitter.flush();
        self.store.commit()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.emitter.is_closed()
    }

    /// Compares `path` (which exists, with `lstat` metadata `meta`, and is not a
    /// directory) with the baseline, records it, and reports the difference.
    #[allow(clippy::too_many_arguments)]
    pub fn examine(
        &mut self,
        set: &CompiledSet,
        target: &Target,
        path: &Path,
        meta: &Metadata,
        old_path: Option<&Path>,
        mode: ScanMode,
        generation: i64,
    ) -> Result<(), BaselineError> {
        let at_path = self.store.get(path)?;
        let at_old = match old_path {
            Some(old) if old != path => self.store.get(old)?,
            _ => None,
        };
        let mut entry = Entry::from_metadata(meta);
        if old_path.is_none()
            && let Some(known) = &at_path
            && known.entry.same_metadata(&entry)
        {
            self.store.mark_seen(path, generation)?;
            return Ok(());
        }
        let Some(digest) = self.read_content(set, path, &mut entry)? else {
            return Ok(()); // vanished while being read: its removal is handled as such
        };
        self.store.put(path, &target.path, &entry, generation)?;
        if let Some(old) = &at_old {
            self.store.remove(&old.path)?;
        }
        let ScanMode::Report(source) = mode else {
            self.emitter.count(counter::BASELINED);
            return Ok(());
        };
        let renamed_from = old_path.filter(|old| *old != path);
        let (op, before) = match (renamed_from, &at_old, &at_path) {
            // Renamed over a file the baseline knew (`mv new.html index.html`,
            // `sed -i`, useradd's `passwd+`): that file's content was replaced,
            // whether or not the staged file lived long enough to be recorded.
            (Some(_), _, Some(known)) => match (classify(&known.entry, &entry), &at_old) {
                (Some(op), _) => (op, Some(&known.entry)),
                // Same content and attributes: only the staged name went away.
                (None, Some(old)) => (FileOp::Rename, Some(&old.entry)),
                (None, None) => return Ok(()),
            },
            (Some(_), Some(old), None) => (FileOp::Rename, Some(&old.entry)),
            (Some(_), None, None) => (FileOp::Rename, None),
            (None, _, None) => (FileOp::Create, None),
            (None, _, Some(known)) => match classify(&known.entry, &entry) {
                Some(op) => (op, Some(&known.entry)),
                None => return Ok(()),
            },
        };
        let content_sample = match op {
            FileOp::Create | FileOp::Modify | FileOp::Rename => digest.sample,
            _ => None,
        };
        let raw = symlink_note(&entry);
        self.emitter.emit(Change {
            op,
            source,
            path,
            // Where the content came from, whenever it arrived by a rename.
            old_path: renamed_from,
            root: &target.path,
            entry: &entry,
            hash_before: before.map(|b| b.hash.as_str()).unwrap_or_default(),
            hash_after: &entry.hash,
            content_sample,
            raw,
        });
        Ok(())
    }

    /// Fills in the hash (or link target) of `entry`; `None` if the file vanished.
    fn read_content(
        &mut self,
        set: &CompiledSet,
        path: &Path,
        entry: &mut Entry,
    ) -> Result<Option<FileDigest>, BaselineError> {
        match entry.kind {
            EntryKind::Symlink => {
                return Ok(match std::fs::read_link(path) {
                    Ok(target) => {
                        entry.link_target = Some(target.as_os_str().as_bytes().to_vec());
                        Some(FileDigest::default())
                    }
                    Err(_) => {
                        self.emitter.count(counter::VANISHED);
                        None
                    }
                });
            }
            EntryKind::Other => {
                self.emitter.count(counter::NOT_REGULAR);
                return Ok(Some(FileDigest::default()));
            }
            EntryKind::Regular => {}
        }
        let hash = set.config.hash && entry.size <= self.settings.max_hash_bytes;
        if set.config.hash && !hash {
            self.emitter.count(counter::TOO_LARGE_TO_HASH);
        }
        let sample = set.config.content_sample
            && entry.size <= self.settings.sample_max_file_bytes
            && self.settings.sample_bytes > 0;
        if !hash && !sample {
            return Ok(Some(FileDigest::default()));
        }
        let request = DigestRequest {
            algo: hash.then_some(self.settings.algo),
            sample_bytes: if sample {
                self.settings.sample_bytes
            } else {
                0
            },
        };
        for _ in 0..HASH_ATTEMPTS {
            match digest_file(path, request) {
                Ok(digest) => {
                    // Record the metadata that goes with this content (the file may
                    // have changed between the caller's lstat and the read).
                    if let Some(meta) = &digest.meta {
                        *entry = Entry::from_metadata(meta);
                    }
                    entry.hash = digest.hash.clone().unwrap_or_default();
                    return Ok(Some(digest));
                }
                Err(HashError::Changed) => continue,
                Err(HashError::Vanished) => {
                    self.emitter.count(counter::VANISHED);
                    return Ok(None);
                }
                Err(HashError::NotRegular) => {
                    self.emitter.count(counter::NOT_REGULAR);
                    entry.kind = EntryKind::Other;
                    return Ok(Some(FileDigest::default()));
                }
                Err(HashError::Io(error)) => {
                    tracing::debug!(path = %path.display(), %error, "cannot read file");
                    self.emitter.count(counter::READ_ERRORS);
                    return Ok(Some(FileDigest::default()));
                }
            }
        }
        self.emitter.count(counter::CHANGED_DURING_HASH);
        Ok(Some(FileDigest::default()))
    }

    /// `path` no longer exists: reports it (and everything recorded under it, if
    /// it was a directory) as deleted and forgets it.
    pub fn vanished(&mut self, path: &Path, source: &'static str) -> Result<(), BaselineError> {
        if let Some(known) = self.store.get(path)? {
            self.report_deleted(&known, ScanMode::Report(source))?;
        }
        loop {
            let rows = self.store.under(path, None, ROW_CHUNK)?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                self.report_deleted(row, ScanMode::Report(source))?;
            }
        }
    }

    fn report_deleted(&mut self, row: &StoredFile, mode: ScanMode) -> Result<(), BaselineError> {
        self.store.remove(&row.path)?;
        if let ScanMode::Report(source) = mode {
            self.emitter.emit(Change {
                op: FileOp::Delete,
                source,
                path: &row.path,
                old_path: None,
                root: &row.root,
                entry: &row.entry,
                hash_before: &row.entry.hash,
                hash_after: "",
                content_sample: None,
                raw: String::new(),
            });
        }
        Ok(())
    }

    /// A directory was renamed from `from` to `to` (inside `target`): moves its
    /// rows and reports one rename for the directory.
    pub fn move_directory(
        &mut self,
        target: &Target,
        from: &Path,
        to: &Path,
        meta: &Metadata,
        source: &'static str,
    ) -> Result<(), BaselineError> {
        let mut moved = 0usize;
        loop {
            let rows = self.store.under(from, None, ROW_CHUNK)?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let Ok(rel) = row.path.strip_prefix(from) else {
                    continue;
                };
                self.store.remove(&row.path)?;
                self.store
                    .put(&to.join(rel), &target.path, &row.entry, self.generation)?;
                moved += 1;
            }
        }
        if moved > 0 {
            let entry = Entry::from_metadata(meta);
            self.emitter.emit(Change {
                op: FileOp::Rename,
                source,
                path: to,
                old_path: Some(from),
                root: &target.path,
                entry: &entry,
                hash_before: "",
                hash_after: "",
                content_sample: None,
                raw: format!("directory renamed with {moved} watched file(s)"),
            });
        }
        Ok(())
    }

    /// Walks `start` (the target itself or a directory inside it), compares every
    /// admitted file with the baseline, then reports the target's rows under
    /// `start` that the walk did not see.
    pub fn scan(
        &mut self,
        set: &CompiledSet,
        target: &Target,
        start: &Path,
        nested_targets: &[PathBuf],
        mode: ScanMode,
    ) -> Result<ScanStats, BaselineError> {
        let generation = self.store.next_generation()?;
        self.generation = generation;
        let mut stats = ScanStats::default();
        if !target.is_dir {
            match std::fs::symlink_metadata(&target.path) {
                Ok(meta) if !meta.is_dir() => {
                    stats.files += 1;
                    self.examine(set, target, &target.path, &meta, None, mode, generation)?;
                }
                _ => {}
            }
        } else {
            let max_depth = if set.config.recursive { usize::MAX } else { 1 };
            let walker = walkdir::WalkDir::new(start)
                .follow_links(false)
                .follow_root_links(true)
                .min_depth(1)
                .max_depth(max_depth)
                .into_iter()
                .filter_entry(|e| {
                    let inside = e.path().strip_prefix(&target.path).unwrap_or(e.path());
                    let nested = nested_targets.iter().any(|n| n == e.path());
                    let excluded_dir = e.file_type().is_dir() && set.excludes(inside);
                    !nested && !excluded_dir
                });
            for item in walker {
                if self.stopping() {
                    return Ok(stats);
                }
                let entry = match item {
                    Ok(entry) => entry,
                    Err(error) => {
                        tracing::debug!(%error, "walking a watched tree");
                        self.emitter.count(counter::WALK_ERRORS);
                        continue;
                    }
                };
                if entry.file_type().is_dir() {
                    continue;
                }
                let rel = entry
                    .path()
                    .strip_prefix(&target.path)
                    .unwrap_or(entry.path());
                if !set.admits_file(rel) {
                    continue;
                }
                let Ok(meta) = entry.metadata() else {
                    self.emitter.count(counter::VANISHED);
                    continue;
                };
                stats.files += 1;
                self.examine(set, target, entry.path(), &meta, None, mode, generation)?;
                if stats.files.is_multiple_of(CHECKPOINT_EVERY as u64) {
                    self.checkpoint()?;
                }
            }
        }
        self.report_unseen(target, start, generation, mode)?;
        self.checkpoint()?;
        stats.complete = true;
        Ok(stats)
    }

    fn report_unseen(
        &mut self,
        target: &Target,
        start: &Path,
        generation: i64,
        mode: ScanMode,
    ) -> Result<(), BaselineError> {
        loop {
            let rows = if start == target.path {
                self.store
                    .unseen_in_root(&target.path, generation, ROW_CHUNK)?
            } else {
                self.store
                    .unseen_under(&target.path, start, generation, ROW_CHUNK)?
            };
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                self.report_deleted(row, mode)?;
            }
        }
    }

    /// A whole root is gone (or no longer configured): reports its files as deleted
    /// (unless `mode` is silent) and forgets the root.
    pub fn drop_root(&mut self, root: &Path, mode: ScanMode) -> Result<(), BaselineError> {
        if let ScanMode::Report(_) = mode {
            let generation = self.store.next_generation()?;
            let target = Target {
                path: root.to_path_buf(),
                set: 0,
                is_dir: true,
            };
            self.report_unseen(&target, root, generation, mode)?;
        }
        self.store.remove_root(root)?;
        self.checkpoint()
    }

    /// Reports that realtime monitoring of `root` lost events or could not be set up.
    pub fn notice(&mut self, root: &Path, raw: String) {
        let entry = std::fs::metadata(root)
            .map(|m| Entry::from_metadata(&m))
            .unwrap_or(Entry {
                kind: EntryKind::Other,
                size: 0,
                mode: 0,
                uid: 0,
                gid: 0,
                mtime_ns: 0,
                ctime_ns: 0,
                ino: 0,
                hash: String::new(),
                link_target: None,
            });
        self.emitter.emit(Change {
            op: FileOp::Rescan,
            source: SOURCE_BASELINE,
            path: root,
            old_path: None,
            root,
            entry: &entry,
            hash_before: "",
            hash_after: "",
            content_sample: None,
            raw,
        });
    }
}

/// What changed between two states of the same path, if anything worth reporting.
fn classify(before: &Entry, after: &Entry) -> Option<FileOp> {
    let content_changed = before.kind != after.kind
        || before.link_target != after.link_target
        || if !before.hash.is_empty() && !after.hash.is_empty() {
            before.hash != after.hash
        } else {
            before.size != after.size
                || before.mtime_ns != after.mtime_ns
                || before.hash.is_empty() != after.hash.is_empty()
        };
    if content_changed {
        Some(FileOp::Modify)
    } else if before.mode != after.mode || before.uid != after.uid || before.gid != after.gid {
        Some(FileOp::Attrib)
    } else {
        None
    }
}

fn symlink_note(entry: &Entry) -> String {
    match &entry.link_target {
        Some(target) => format!("symlink to {}", String::from_utf8_lossy(target)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: &str, size: u64, mode: u32) -> Entry {
        Entry {
            kind: EntryKind::Regular,
            size,
            mode,
            uid: 0,
            gid: 0,
            mtime_ns: 1,
            ctime_ns: 1,
            ino: 1,
            hash: hash.into(),
            link_target: None,
        }
    }

    #[test]
    fn content_beats_attributes_and_touch_alone_is_not_reported() {
        let a = entry("aa", 1, 0o100644);
        assert_eq!(
            classify(&a, &entry("bb", 1, 0o100644)),
            Some(FileOp::Modify)
        );
        assert_eq!(
            classify(&a, &entry("aa", 1, 0o100600)),
            Some(FileOp::Attrib)
        );
        let touched = Entry {
            mtime_ns: 99,
            ..a.clone()
        };
        assert_eq!(classify(&a, &touched), None);
        let unhashed = entry("", 1, 0o100644);
        let grown = entry("", 2, 0o100644);
        assert_eq!(classify(&unhashed, &grown), Some(FileOp::Modify));
        let relinked = Entry {
            kind: EntryKind::Symlink,
            link_target: Some(b"/tmp/evil.so".to_vec()),
            ..unhashed.clone()
        };
        assert_eq!(classify(&unhashed, &relinked), Some(FileOp::Modify));
    }
}
