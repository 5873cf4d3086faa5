//! The baseline: the last known state of every watched file, in SQLite (not in
//! RAM, so 200,000 files cost disk, not memory).
//!
//! Tables:
//! - `files(path, root, kind, size, mode, uid, gid, mtime_ns, ctime_ns, ino, hash,
//!   link_target, seen)`: paths are stored as raw bytes (BLOB), so non-UTF-8 names
//!   round-trip exactly. `seen` is the scan generation that last saw the file: after
//!   a scan of a root, its rows with an older `seen` are files that are gone.
//! - `roots(root, pattern)`: every watched root and the watch-set path it came from,
//!   so a restart can tell "root vanished" from "root no longer configured".
//! - `patterns(pattern)`: the watch-set paths of the previous run, so a root that
//!   appeared while the agent was down is reported, while a newly configured one is
//!   baselined silently.
//! - `meta(key, value)`: schema version, hash algorithm, scan generation.
//!
//! Writes are grouped in a transaction that the caller commits ([`BaselineStore::commit`])
//! only after the events describing them were handed on.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

const SCHEMA_VERSION: &str = "1";

/// Errors of the baseline database.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("baseline database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("baseline database {path} has schema version {found}, expected {SCHEMA_VERSION}")]
    Schema { path: PathBuf, found: String },
}

/// What kind of filesystem object a baseline entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    Symlink,
    /// FIFO, socket, device: recorded, never opened.
    Other,
}

impl EntryKind {
    fn code(self) -> i64 {
        match self {
            EntryKind::Regular => 0,
            EntryKind::Symlink => 1,
            EntryKind::Other => 2,
        }
    }

    fn from_code(code: i64) -> Self {
        match code {
            0 => EntryKind::Regular,
            1 => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }
}

/// The recorded state of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub size: u64,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    /// Lowercase hex digest, empty when the file is not hashed.
    pub hash: String,
    /// Target of a symlink.
    pub link_target: Option<Vec<u8>>,
}

impl Entry {
    /// The state described by `lstat` metadata (hash and link target to be filled in).
    pub fn from_metadata(meta: &std::fs::Metadata) -> Self {
        let file_type = meta.file_type();
        let kind = if file_type.is_file() {
            EntryKind::Regular
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        Self {
            kind,
            size: meta.size(),
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            ino: meta.ino(),
            hash: String::new(),
            link_target: None,
        }
    }

    /// Same metadata: when true the content is taken as unchanged without reading it
    /// (ctime cannot be set back by user space, so a content change always moves it).
    pub fn same_metadata(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.size == other.size
            && self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.ino == other.ino
    }
}

/// A baseline row: a path, the root that owns it, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub path: PathBuf,
    pub root: PathBuf,
    pub entry: Entry,
}

/// The SQLite baseline.
pub struct BaselineStore {
    conn: Connection,
    in_transaction: bool,
}

fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

fn bytes_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// Byte range `[low, high)` holding every path strictly under `dir`.
fn subtree_range(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut low = path_bytes(dir).to_vec();
    if low.last() != Some(&b'/') {
        low.push(b'/');
    }
    let mut high = low.clone();
    if let Some(last) = high.last_mut() {
        *last = b'/' + 1;
    }
    (low, high)
}

const FILE_COLUMNS: &str =
    "path, root, kind, size, mode, uid, gid, mtime_ns, ctime_ns, ino, hash, link_target";

fn read_stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFile> {
    Ok(StoredFile {
        path: bytes_path(row.get(0)?),
        root: bytes_path(row.get(1)?),
        entry: Entry {
            kind: EntryKind::from_code(row.get(2)?),
            size: row.get::<_, i64>(3)? as u64,
            mode: row.get::<_, i64>(4)? as u32,
            uid: row.get::<_, i64>(5)? as u32,
            gid: row.get::<_, i64>(6)? as u32,
            mtime_ns: row.get(7)?,
            ctime_ns: row.get(8)?,
            ino: row.get::<_, i64>(9)? as u64,
            hash: row.get(10)?,
            link_target: row.get(11)?,
        },
    })
}

impl BaselineStore {
    /// Opens (creating if needed) the database. When the stored hash algorithm is
    /// not `algo`, every row is dropped (hashes are not comparable) and `true` is
    /// returned with the store: the next start re-baselines silently.
    pub fn open(path: &Path, algo: &str) -> Result<(Self, bool), BaselineError> {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let open_error = |source| BaselineError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA cache_size = -4096;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS files (
                 path BLOB PRIMARY KEY, root BLOB NOT NULL, kind INTEGER NOT NULL,
                 size INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL,
                 gid INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
                 ino INTEGER NOT NULL, hash TEXT NOT NULL, link_target BLOB,
                 seen INTEGER NOT NULL) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS files_root_seen ON files (root, seen);
             CREATE TABLE IF NOT EXISTS roots (root BLOB PRIMARY KEY, pattern BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS patterns (pattern BLOB PRIMARY KEY);",
        )
        .map_err(open_error)?;
        let mut store = Self {
            conn,
            in_transaction: false,
        };
        match store.meta("schema")? {
            None => store.set_meta("schema", SCHEMA_VERSION)?,
            Some(found) if found == SCHEMA_VERSION => {}
            Some(found) => {
                return Err(BaselineError::Schema {
                    path: path.to_path_buf(),
                    found,
                });
            }
        }
        let reset = match store.meta("hash_algo")? {
            Some(stored) if stored == algo => false,
            stored => {
                if stored.is_some() {
                    store.conn.execute_batch(
                        "DELETE FROM files; DELETE FROM roots; DELETE FROM patterns;",
                    )?;
                }
                store.set_meta("hash_algo", algo)?;
                stored.is_some()
            }
        };
        Ok((store, reset))
    }

    fn meta(&self, key: &str) -> Result<Option<String>, BaselineError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), BaselineError> {
        self.begin()?;
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn begin(&mut self) -> Result<(), BaselineError> {
        if !self.in_transaction {
            self.conn.execute_batch("BEGIN")?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Makes every write so far durable.
    pub fn commit(&mut self) -> Result<(), BaselineError> {
        if self.in_transaction {
            self.conn.execute_batch("COMMIT")?;
            self.in_transaction = false;
        }
        Ok(())
    }

    /// Starts a new scan generation and returns it.
    pub fn next_generation(&mut self) -> Result<i64, BaselineError> {
        let current: i64 = self
            .meta("generation")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let next = current + 1;
        self.set_meta("generation", &next.to_string())?;
        Ok(next)
    }

    /// The row of `path`, if any.
    pub fn get(&self, path: &Path) -> Result<Option<StoredFile>, BaselineError> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE path = ?1");
        let mut statement = self.conn.prepare_cached(&sql)?;
        Ok(statement
            .query_row([path_bytes(path)], read_stored)
            .optional()?)
    }

    /// Inserts or replaces the row of `path`.
    pub fn put(
        &mut self,
        path: &Path,
        root: &Path,
        entry: &Entry,
        seen: i64,
    ) -> Result<(), BaselineError> {
        self.begin()?;
        let mut statement = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO files
             (path, root, kind, size, mode, uid, gid, mtime_ns, ctime_ns, ino, hash, link_target, seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        statement.execute(params![
            path_bytes(path),
            path_bytes(root),
            entry.kind.code(),
            entry.size as i64,
            i64::from(entry.mode),
            i64::from(entry.uid),
            i64::from(entry.gid),
            entry.mtime_ns,
            entry.ctime_ns,
            entry.ino as i64,
            entry.hash,
            entry.link_target,
            seen,
        ])?;
        Ok(())
    }

    /// Records that a scan of generation `seen` found `path` unchanged.
    pub fn mark_seen(&mut self, path: &Path, seen: i64) -> Result<(), BaselineError> {
        self.begin()?;
        let mut statement = self
            .conn
            .prepare_cached("UPDATE files SET seen = ?2 WHERE path = ?1")?;
        statement.execute(params![path_bytes(path), seen])?;
        Ok(())
    }

    /// Deletes the row of `path`.
    pub fn remove(&mut self, path: &Path) -> Result<(), BaselineError> {
        self.begin()?;
        let mut statement = self
            .conn
            .prepare_cached("DELETE FROM files WHERE path = ?1")?;
        statement.execute([path_bytes(path)])?;
        Ok(())
    }

    /// Up to `limit` rows of `root` not seen by generation `generation` (files gone).
    pub fn unseen_in_root(
        &self,
        root: &Path,
        generation: i64,
        limit: usize,
    ) -> Result<Vec<StoredFile>, BaselineError> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE root = ?1 AND seen < ?2 ORDER BY path LIMIT ?3"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![path_bytes(root), generation, limit as i64],
            read_stored,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` rows of `root` strictly under directory `dir` not seen by `generation`.
    pub fn unseen_under(
        &self,
        root: &Path,
        dir: &Path,
        generation: i64,
        limit: usize,
    ) -> Result<Vec<StoredFile>, BaselineError> {
        let (low, high) = subtree_range(dir);
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files
             WHERE path >= ?1 AND path < ?2 AND root = ?3 AND seen < ?4
             ORDER BY path LIMIT ?5"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(
            params![low, high, path_bytes(root), generation, limit as i64],
            read_stored,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` rows strictly under directory `dir`, after path `after`.
    pub fn under(
        &self,
        dir: &Path,
        after: Option<&Path>,
        limit: usize,
    ) -> Result<Vec<StoredFile>, BaselineError> {
        let (low, high) = subtree_range(dir);
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE path >= ?1 AND path < ?2 AND path > ?3
             ORDER BY path LIMIT ?4"
        );
        let after = after.map(path_bytes).unwrap_or(&[]).to_vec();
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params![low, high, after, limit as i64], read_stored)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of rows (for logs and tests).
    pub fn file_count(&self) -> Result<u64, BaselineError> {
        let count: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM files", [], |r| r.get(0))?;
        Ok(count as u64)
    }

    /// Every recorded root and the watch-set path it came from.
    pub fn roots(&self) -> Result<Vec<(PathBuf, PathBuf)>, BaselineError> {
        let mut statement = self.conn.prepare("SELECT root, pattern FROM roots")?;
        let rows =
            statement.query_map([], |r| Ok((bytes_path(r.get(0)?), bytes_path(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a root as baselined.
    pub fn add_root(&mut self, root: &Path, pattern: &Path) -> Result<(), BaselineError> {
        self.begin()?;
        self.conn.execute(
            "INSERT OR REPLACE INTO roots (root, pattern) VALUES (?1, ?2)",
            [path_bytes(root), path_bytes(pattern)],
        )?;
        Ok(())
    }

    /// Forgets a root and all its rows.
    pub fn remove_root(&mut self, root: &Path) -> Result<(), BaselineError> {
        self.begin()?;
        self.conn
            .execute("DELETE FROM files WHERE root = ?1", [path_bytes(root)])?;
        self.conn
            .execute("DELETE FROM roots WHERE root = ?1", [path_bytes(root)])?;
        Ok(())
    }

    /// The watch-set paths of the previous run.
    pub fn patterns(&self) -> Result<Vec<PathBuf>, BaselineError> {
        let mut statement = self.conn.prepare("SELECT pattern FROM patterns")?;
        let rows = statement.query_map([], |r| Ok(bytes_path(r.get(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the recorded watch-set paths.
    pub fn set_patterns(&mut self, patterns: &[PathBuf]) -> Result<(), BaselineError> {
        self.begin()?;
        self.conn.execute("DELETE FROM patterns", [])?;
        for pattern in patterns {
            self.conn.execute(
                "INSERT OR IGNORE INTO patterns (pattern) VALUES (?1)",
                [path_bytes(pattern)],
            )?;
        }
        Ok(())
    }
}

impl Drop for BaselineStore {
    fn drop(&mut self) {
        if let Err(error) = self.commit() {
            tracing::warn!(%error, "committing the file baseline at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn entry(size: u64) -> Entry {
        Entry {
            kind: EntryKind::Regular,
            size,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            mtime_ns: 1,
            ctime_ns: 2,
            ino: 3,
            hash: "ab".into(),
            link_target: None,
        }
    }

    #[test]
    fn rows_round_trip_including_non_utf8_paths() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let (mut store, reset) = BaselineStore::open(&db, "sha256").unwrap();
        assert!(!reset);
        let odd = Path::new("/w").join(OsStr::from_bytes(b"bad\xff.php"));
        store.put(&odd, Path::new("/w"), &entry(5), 1).unwrap();
        store.commit().unwrap();
        let got = store.get(&odd).unwrap().unwrap();
        assert_eq!(got.path, odd);
        assert_eq!(got.entry, entry(5));
        assert_eq!(store.get(Path::new("/w/other")).unwrap(), None);
    }

    #[test]
    fn unseen_rows_and_subtree_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = BaselineStore::open(&dir.path().join("b.db"), "sha256").unwrap();
        let root = Path::new("/w");
        for p in ["/w/a/1", "/w/a/2", "/w/a.txt", "/w/ab/3", "/w/b"] {
            store.put(Path::new(p), root, &entry(1), 1).unwrap();
        }
        store.mark_seen(Path::new("/w/b"), 2).unwrap();
        let unseen: Vec<PathBuf> = store
            .unseen_in_root(root, 2, 10)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(unseen.len(), 4);
        let under_a: Vec<PathBuf> = store
            .under(Path::new("/w/a"), None, 10)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            under_a,
            vec![PathBuf::from("/w/a/1"), PathBuf::from("/w/a/2")]
        );
        let after = store
            .under(Path::new("/w/a"), Some(Path::new("/w/a/1")), 10)
            .unwrap();
        assert_eq!(after.len(), 1);
        assert_eq!(
            store
                .unseen_under(root, Path::new("/w"), 2, 10)
                .unwrap()
                .len(),
            4
        );
        assert!(
            store
                .unseen_under(Path::new("/x"), Path::new("/w"), 2, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.under(Path::new("/"), None, 10).unwrap().len(), 5);
    }

    #[test]
    fn changing_the_hash_algorithm_drops_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        {
            let (mut store, _) = BaselineStore::open(&db, "sha256").unwrap();
            store
                .put(Path::new("/w/x"), Path::new("/w"), &entry(1), 1)
                .unwrap();
            store.add_root(Path::new("/w"), Path::new("/w")).unwrap();
            assert_eq!(store.next_generation().unwrap(), 1);
            assert_eq!(store.next_generation().unwrap(), 2);
        }
        let (store, reset) = BaselineStore::open(&db, "sha256").unwrap();
        assert!(!reset);
        assert_eq!(store.file_count().unwrap(), 1);
        drop(store);
        let (mut store, reset) = BaselineStore::open(&db, "sm3").unwrap();
        assert!(reset);
        assert_eq!(store.file_count().unwrap(), 0);
        assert!(store.roots().unwrap().is_empty());
        assert_eq!(
            store.next_generation().unwrap(),
            3,
            "generations keep rising"
        );
    }
}
