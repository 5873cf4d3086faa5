//! The on-disk spool between capture and ship: a SQLite file (WAL,
//! `synchronous=FULL`) holding closed batches until the collector acks them,
//! plus every source's resume position.
//!
//! Guarantees:
//! - a batch and the source checkpoints it covers commit in one transaction, so
//!   after `kill -9` or power loss a source resumes exactly after the last event
//!   that reached the spool;
//! - `seq` strictly increases for the life of the spool (kept in `meta`, never
//!   reused even when the spool is empty);
//! - the spool is bounded: past `max_bytes` the oldest batches are deleted and
//!   their events counted in `dropped_events` (reported in heartbeats).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use shaobing_wire::v1::{Batch, Event};

use crate::capture::Checkpoint;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("spool task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Spool figures for heartbeats and the CLI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub batches: u64,
    pub bytes: u64,
    pub dropped_events: u64,
    pub dropped_batches: u64,
}

/// A batch read back for shipping: its seq and the encoded `Batch`.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    pub seq: u64,
    pub events: u64,
    pub payload: Vec<u8>,
}

#[derive(Clone)]
pub struct Spool {
    conn: Arc<Mutex<Connection>>,
    max_bytes: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    created_ns INTEGER NOT NULL,
    events INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (source TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .unwrap_or(0) as u64)
}

fn set_meta(conn: &Connection, key: &str, value: u64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value as i64],
    )?;
    Ok(())
}

impl Spool {
    /// Opens (or creates) the spool file.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            max_bytes,
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let conn = self.conn.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await??)
    }

    /// Last committed position of every source.
    pub fn positions(&self) -> Result<HashMap<String, String>, SpoolError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare("SELECT source, position FROM positions")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Closes a batch: assigns the next seq and event ids `"<seq>-<i>"`, stores it
    /// with `checkpoints` in one transaction, then enforces the size bound.
    /// Returns the seq.
    pub async fn append(
        &self,
        agent_id: String,
        mut events: Vec<Event>,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<u64, SpoolError> {
        let max_bytes = self.max_bytes;
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let seq = meta(&tx, "next_seq")?.max(1);
            for (i, e) in events.iter_mut().enumerate() {
                e.event_id = format!("{seq}-{i}");
            }
            let n = events.len() as u64;
            let payload = Batch {
                agent_id,
                seq,
                events,
            }
            .encode_to_vec();
            tx.execute(
                "INSERT INTO batches (seq, created_ns, events, bytes, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![seq as i64, shaobing_wire::now_unix_nano(), n as i64, payload.len() as i64, payload],
            )?;
            for cp in &checkpoints {
                tx.execute(
                    "INSERT INTO positions (source, position) VALUES (?1, ?2)
                     ON CONFLICT(source) DO UPDATE SET position = excluded.position",
                    params![cp.source, cp.position],
                )?;
            }
            set_meta(&tx, "next_seq", seq + 1)?;
            enforce_bound(&tx, max_bytes)?;
            tx.commit()?;
            Ok(seq)
        })
        .await
    }

    /// Stores checkpoints alone (a source read only lines that produced no event).
    pub async fn commit_positions(&self, checkpoints: Vec<Checkpoint>) -> Result<(), SpoolError> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            for cp in &checkpoints {
                tx.execute(
                    "INSERT INTO positions (source, position) VALUES (?1, ?2)
                     ON CONFLICT(source) DO UPDATE SET position = excluded.position",
                    params![cp.source, cp.position],
                )?;
            }
            tx.commit()
        })
        .await
    }

    /// Up to `limit` batches with `seq > after`, oldest first.
    pub async fn pending_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<PendingBatch>, SpoolError> {
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, events, payload FROM batches WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after as i64, limit as i64], |r| {
                Ok(PendingBatch {
                    seq: r.get::<_, i64>(0)? as u64,
                    events: r.get::<_, i64>(1)? as u64,
                    payload: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Removes an acknowledged batch.
    pub async fn ack(&self, seq: u64) -> Result<(), SpoolError> {
        self.with(move |conn| {
            conn.execute("DELETE FROM batches WHERE seq = ?1", [seq as i64])?;
            Ok(())
        })
        .await
    }

    /// Removes a batch the collector rejected, counting its events as dropped.
    pub async fn reject(&self, seq: u64) -> Result<(), SpoolError> {
        self.with(move |conn| {
            let tx = conn.transaction()?;
            let n: Option<i64> = tx
                .query_row(
                    "SELECT events FROM batches WHERE seq = ?1",
                    [seq as i64],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(n) = n {
                tx.execute("DELETE FROM batches WHERE seq = ?1", [seq as i64])?;
                let dropped = meta(&tx, "dropped_events")? + n as u64;
                set_meta(&tx, "dropped_events", dropped)?;
            }
            tx.commit()
        })
        .await
    }

    pub async fn stats(&self) -> Result<SpoolStats, SpoolError> {
        self.with(|conn| {
            let (batches, bytes): (i64, i64) = conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM batches",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(SpoolStats {
                batches: batches as u64,
                bytes: bytes as u64,
                dropped_events: meta(conn, "dropped_events")?,
                dropped_batches: meta(conn, "dropped_batches")?,
            })
        })
        .await
    }
}

/// Deletes the oldest batches while the spool holds more than `max_bytes`
/// (always keeping the newest batch), counting what was dropped.
fn enforce_bound(conn: &Connection, max_bytes: u64) -> rusqlite::Result<()> {
    let total: i64 = conn.query_row("SELECT COALESCE(SUM(bytes), 0) FROM batches", [], |r| {
        r.get(0)
    })?;
    let mut excess = total - max_bytes as i64;
    if excess <= 0 {
        return Ok(());
    }
    let mut stmt = conn.prepare("SELECT seq, events, bytes FROM batches ORDER BY seq")?;
    let rows: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let (mut events, mut batches) = (0u64, 0u64);
    for (seq, n, bytes) in rows.iter().take(rows.len().saturating_sub(1)) {
        if excess <= 0 {
            break;
        }
        conn.execute("DELETE FROM batches WHERE seq = ?1", [seq])?;
        excess -= bytes;
        events += *n as u64;
        batches += 1;
    }
    if batches > 0 {
        tracing::warn!(batches, events, "spool full: oldest batches dropped");
        set_meta(
            conn,
            "dropped_events",
            meta(conn, "dropped_events")? + events,
        )?;
        set_meta(
            conn,
            "dropped_batches",
            meta(conn, "dropped_batches")? + batches,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(raw: &str) -> Event {
        Event {
            raw: raw.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn seq_survives_reopen_and_checkpoints_commit_with_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.db");
        let spool = Spool::open(&path, 1 << 20).unwrap();
        let cp = Checkpoint {
            source: "auth_log:/x".into(),
            position: "{\"offset\":10}".into(),
        };
        let s1 = spool
            .append("a".into(), vec![event("l1")], vec![cp])
            .await
            .unwrap();
        spool.ack(s1).await.unwrap();
        drop(spool);

        let spool = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(spool.positions().unwrap()["auth_log:/x"], "{\"offset\":10}");
        let s2 = spool
            .append("a".into(), vec![event("l2"), event("l3")], vec![])
            .await
            .unwrap();
        assert!(s2 > s1, "seq never reused after all batches were acked");
        let pending = spool.pending_after(0, 10).await.unwrap();
        assert_eq!(pending.len(), 1);
        let batch = Batch::decode(&pending[0].payload[..]).unwrap();
        assert_eq!(batch.events[1].event_id, format!("{s2}-1"));
    }

    #[tokio::test]
    async fn full_spool_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("s.db"), 2_000).unwrap();
        let big = "x".repeat(600);
        for _ in 0..10 {
            spool
                .append("a".into(), vec![event(&big), event(&big)], vec![])
                .await
                .unwrap();
        }
        let stats = spool.stats().await.unwrap();
        assert!(stats.bytes <= 2_000 + 1_300, "bounded: {stats:?}");
        assert!(stats.dropped_events >= 12, "{stats:?}");
        assert_eq!(stats.dropped_events, 2 * stats.dropped_batches);
        let pending = spool.pending_after(0, 100).await.unwrap();
        assert_eq!(pending.last().unwrap().seq, 10, "newest kept");
        assert_eq!(pending.len() as u64 + stats.dropped_batches, 10);
    }
}
