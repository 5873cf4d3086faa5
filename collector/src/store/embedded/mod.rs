//! The embedded store: one SQLite file, no server.
//!
//! One connection behind a mutex; every call runs on tokio's blocking pool. The file is in
//! WAL mode with `synchronous = FULL`: in WAL mode `NORMAL` can lose the last commits on power
//! loss (without corruption), and a lost commit here is a batch the agent was already told is
//! stored and has deleted from its spool. `FULL` syncs the WAL on every commit, which is one
//! fsync per batch: cheap next to the batch itself.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use self::alerts::upsert_alerts_in;
use self::schema::migrate;
use super::event_row::{
    ColumnKind, EVENT_COLUMNS, EventRow, FilterValue, SqliteColumn, check_filter, check_records,
};
use super::records::{
    AgentRecord, AlertRecord, AuditEntry, AuditQuery, CheckQuery, CheckRecord, EventQuery,
    EventRecord, effective_limit,
};
use super::retention::RetentionPolicy;
use super::{PreparedBatch, StoreError, WriteOutcome};

mod alerts;
mod retention;
mod schema;
mod stats;

/// SQLite-backed store (see the module docs).
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    retention: RetentionPolicy,
}

/// A batch converted to rows, owned so it can move to the blocking pool.
struct OwnedBatch {
    agent_id: String,
    seq: u64,
    rows: Vec<EventRow>,
    alerts: Vec<AlertRecord>,
}

/// `WHERE` conditions and their positional parameters, built together.
#[derive(Default)]
pub(crate) struct Conditions {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Conditions {
    pub(crate) fn push(
        &mut self,
        clause: impl Into<String>,
        params: impl IntoIterator<Item = SqlValue>,
    ) {
        self.clauses.push(clause.into());
        self.params.extend(params);
    }

    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

pub(crate) fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

fn filter_value(value: FilterValue) -> SqlValue {
    match value {
        FilterValue::Text(s) => SqlValue::Text(s),
        FilterValue::Unsigned(u) => u.to_sql_value(),
        FilterValue::Signed(i) => SqlValue::Integer(i),
        FilterValue::Float(f) => SqlValue::Real(f),
    }
}

fn insert_event_rows(conn: &Connection, rows: &[EventRow]) -> Result<(), StoreError> {
    let names: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
    let placeholders = vec!["?"; names.len()].join(", ");
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO events ({}) VALUES ({placeholders})",
        names.join(", ")
    ))?;
    for row in rows {
        stmt.execute(params_from_iter(row.sqlite_values()))?;
    }
    Ok(())
}

fn insert_check_results(conn: &Connection, checks: &[CheckRecord]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO check_results (agent_id, hostname, check_id, title, status, observed,
            expected, time_ns, event_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for c in checks {
        stmt.execute(params![
            c.agent_id,
            c.hostname,
            c.check_id,
            c.title,
            c.status,
            c.observed,
            c.expected,
            c.time_unix_nano,
            c.event_id
        ])?;
    }
    Ok(())
}

fn last_seq_in(conn: &Connection, agent_id: &str) -> Result<Option<u64>, StoreError> {
    let last: Option<i64> = conn
        .query_row(
            "SELECT max(seq) FROM batches WHERE agent_id = ?1",
            params![agent_id],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    Ok(last.map(|s| s as u64))
}

pub(crate) fn event_conditions(q: &EventQuery) -> Result<Conditions, StoreError> {
    let mut c = Conditions::default();
    if let Some(host) = &q.host {
        c.push("hostname = ?", [text(host)]);
    }
    if let Some(agent_id) = &q.agent_id {
        c.push("agent_id = ?", [text(agent_id)]);
    }
    if let Some(kind) = &q.kind {
        c.push("kind = ?", [text(kind)]);
    }
    if let Some(since) = q.since {
        c.push("time_ns >= ?", [SqlValue::Integer(since)]);
    }
    if let Some(until) = q.until {
        c.push("time_ns < ?", [SqlValue::Integer(until)]);
    }
    for filter in &q.fields {
        let (column, value) = check_filter(filter)?;
        let clause = match column.kind {
            ColumnKind::TextArray | ColumnKind::UnsignedArray => format!(
                "EXISTS (SELECT 1 FROM json_each(events.{}) WHERE json_each.value = ?)",
                column.name
            ),
            _ => format!("{} = ?", column.name),
        };
        c.push(clause, [filter_value(value)]);
    }
    Ok(c)
}

impl EmbeddedStore {
    /// Opens (creating if needed) the SQLite file at `path` and migrates it.
    pub async fn open(path: &Path, retention: RetentionPolicy) -> Result<Self, StoreError> {
        retention.validate()?;
        let path = path.to_path_buf();
        let opened_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(dir) = opened_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            let mut conn = Connection::open(&opened_path)?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            migrate(&mut conn, shaobing_wire::now_unix_nano())?;
            Ok(conn)
        })
        .await??;
        tracing::info!(path = %path.display(), "embedded store opened");
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
            retention,
        })
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The retention policy this store enforces.
    pub fn retention(&self) -> &RetentionPolicy {
        &self.retention
    }

    /// Runs `work` with the connection on the blocking pool.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
            work(&mut guard)
        })
        .await?
    }

    /// See [`super::Store::write_batches`]: one transaction for all batches, so events,
    /// alerts and the seq bookkeeping are stored together or not at all (one fsync).
    pub(crate) async fn write_batches(
        &self,
        batches: &[PreparedBatch<'_>],
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let owned: Vec<OwnedBatch> = batches
            .iter()
            .map(|b| OwnedBatch {
                agent_id: b.agent_id.to_owned(),
                seq: b.seq,
                rows: b
                    .events
                    .iter()
                    .map(|e| EventRow::from_event(b.agent_id, b.seq, e))
                    .collect(),
                alerts: b.alerts.clone(),
            })
            .collect();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let mut outcomes = Vec::with_capacity(owned.len());
            for b in &owned {
                if last_seq_in(&tx, &b.agent_id)?.is_some_and(|last| b.seq <= last) {
                    outcomes.push(WriteOutcome::Duplicate);
                    continue;
                }
                insert_event_rows(&tx, &b.rows)?;
                if b.rows.iter().any(|r| r.kind == "check") {
                    insert_check_results(&tx, &check_records(&b.rows))?;
                }
                upsert_alerts_in(&tx, &b.alerts)?;
                tx.execute(
                    "INSERT INTO batches (agent_id, seq, event_count, alert_count, stored_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        b.agent_id,
                        b.seq.to_sql_value(),
                        b.rows.len() as i64,
                        b.alerts.len() as i64,
                        shaobing_wire::now_unix_nano()
                    ],
                )?;
                outcomes.push(WriteOutcome::Stored);
            }
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    /// See [`super::Store::last_seq`].
    pub async fn last_seq(&self, agent_id: &str) -> Result<Option<u64>, StoreError> {
        let agent_id = agent_id.to_owned();
        self.run(move |conn| last_seq_in(conn, &agent_id)).await
    }

    /// See [`super::Store::events`].
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let c = event_conditions(q)?;
        let names: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
        let sql = format!(
            "SELECT {} FROM events {} ORDER BY time_ns DESC, rowid DESC LIMIT {} OFFSET {}",
            names.join(", "),
            c.where_sql(),
            effective_limit(q.limit),
            q.offset
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(c.params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(EventRow::from_sqlite_row(row)?.into_record());
            }
            Ok(out)
        })
        .await
    }

    /// See [`super::Store::count_events`].
    pub async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        let c = event_conditions(q)?;
        let sql = format!("SELECT count(*) FROM events {}", c.where_sql());
        self.run(move |conn| {
            let n: i64 = conn.query_row(&sql, params_from_iter(c.params), |row| row.get(0))?;
            Ok(n as u64)
        })
        .await
    }

    /// See [`super::Store::upsert_agent`].
    pub async fn upsert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        let agent = agent.clone();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO agents (agent_id, hostname, ips, os, version, first_seen_ns,
                    last_seen_ns, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (agent_id) DO UPDATE SET
                    first_seen_ns = min(agents.first_seen_ns, excluded.first_seen_ns),
                    hostname = iif(excluded.last_seen_ns >= agents.last_seen_ns,
                        excluded.hostname, agents.hostname),
                    ips = iif(excluded.last_seen_ns >= agents.last_seen_ns,
                        excluded.ips, agents.ips),
                    os = iif(excluded.last_seen_ns >= agents.last_seen_ns,
                        excluded.os, agents.os),
                    version = iif(excluded.last_seen_ns >= agents.last_seen_ns,
                        excluded.version, agents.version),
                    status = iif(excluded.last_seen_ns >= agents.last_seen_ns,
                        excluded.status, agents.status),
                    last_seen_ns = max(agents.last_seen_ns, excluded.last_seen_ns)",
                params![
                    agent.agent_id,
                    agent.hostname,
                    agent.ips.to_sql_value(),
                    agent.os,
                    agent.version,
                    agent.first_seen_unix_nano,
                    agent.last_seen_unix_nano,
                    agent.status
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// See [`super::Store::agents`].
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare(
                "SELECT agent_id, hostname, ips, os, version, first_seen_ns, last_seen_ns, status
                 FROM agents ORDER BY hostname, agent_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(AgentRecord {
                    agent_id: row.get(0)?,
                    hostname: row.get(1)?,
                    ips: Vec::<String>::from_sql_value(row.get_ref(2)?, "agents.ips")?,
                    os: row.get(3)?,
                    version: row.get(4)?,
                    first_seen_unix_nano: row.get(5)?,
                    last_seen_unix_nano: row.get(6)?,
                    status: row.get(7)?,
                });
            }
            Ok(out)
        })
        .await
    }

    /// See [`super::Store::check_results`].
    pub async fn check_results(&self, q: &CheckQuery) -> Result<Vec<CheckRecord>, StoreError> {
        let mut c = Conditions::default();
        if let Some(host) = &q.host {
            c.push("hostname = ?", [text(host)]);
        }
        if let Some(agent_id) = &q.agent_id {
            c.push("agent_id = ?", [text(agent_id)]);
        }
        if let Some(check_id) = &q.check_id {
            c.push("check_id = ?", [text(check_id)]);
        }
        if let Some(since) = q.since {
            c.push("time_ns >= ?", [SqlValue::Integer(since)]);
        }
        if let Some(until) = q.until {
            c.push("time_ns < ?", [SqlValue::Integer(until)]);
        }
        let columns =
            "agent_id, hostname, check_id, title, status, observed, expected, time_ns, event_id";
        let filtered = if q.latest_only {
            format!(
                "SELECT {columns} FROM (SELECT {columns}, row_number() OVER (
                    PARTITION BY agent_id, check_id ORDER BY time_ns DESC, rowid DESC) AS rank
                 FROM check_results {}) WHERE rank = 1",
                c.where_sql()
            )
        } else {
            format!("SELECT {columns} FROM check_results {}", c.where_sql())
        };
        let sql = format!(
            "{filtered} ORDER BY hostname, check_id, time_ns DESC LIMIT {}",
            effective_limit(q.limit)
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(c.params), |row| {
                Ok(CheckRecord {
                    agent_id: row.get(0)?,
                    hostname: row.get(1)?,
                    check_id: row.get(2)?,
                    title: row.get(3)?,
                    status: row.get(4)?,
                    observed: row.get(5)?,
                    expected: row.get(6)?,
                    time_unix_nano: row.get(7)?,
                    event_id: row.get(8)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// See [`super::Store::append_audit`].
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO audit_log (time_ns, actor, action, target, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.time_unix_nano, e.actor, e.action, e.target, e.detail],
            )?;
            Ok(())
        })
        .await
    }

    /// See [`super::Store::audit_log`].
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut c = Conditions::default();
        if let Some(since) = q.since {
            c.push("time_ns >= ?", [SqlValue::Integer(since)]);
        }
        if let Some(until) = q.until {
            c.push("time_ns < ?", [SqlValue::Integer(until)]);
        }
        if let Some(actor) = &q.actor {
            c.push("actor = ?", [text(actor)]);
        }
        if let Some(action) = &q.action {
            c.push("action = ?", [text(action)]);
        }
        let sql = format!(
            "SELECT time_ns, actor, action, target, detail FROM audit_log {}
             ORDER BY time_ns DESC, id DESC LIMIT {}",
            c.where_sql(),
            effective_limit(q.limit)
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(c.params), |row| {
                Ok(AuditEntry {
                    time_unix_nano: row.get(0)?,
                    actor: row.get(1)?,
                    action: row.get(2)?,
                    target: row.get(3)?,
                    detail: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
