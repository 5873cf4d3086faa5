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
use shaobing_wire::v1::Event;
use shaobing_wire::v1::event::Body;

use self::schema::migrate;
use super::event_row::{
    ColumnKind, EVENT_COLUMNS, EventRow, FilterValue, SqliteColumn, check_filter, check_records,
};
use super::records::{
    AgentRecord, AlertQuery, AlertRecord, AlertStatus, AuditEntry, AuditQuery, CheckQuery,
    CheckRecord, EventQuery, EventRecord, effective_limit,
};
use super::{StoreError, WriteOutcome};

mod schema;

/// SQLite-backed store (see the module docs).
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

/// `WHERE` conditions and their positional parameters, built together.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Conditions {
    fn push(&mut self, clause: impl Into<String>, params: impl IntoIterator<Item = SqlValue>) {
        self.clauses.push(clause.into());
        self.params.extend(params);
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn text(value: &str) -> SqlValue {
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

const ALERT_COLUMNS: &str = "alert_id, rule_id, rule_title, level, kind, tags, mlps, agent_id, \
    hostname, first_time_ns, last_time_ns, count, group_key, event_ids, summary, status, \
    assignee, note";

fn alert_from_row(row: &rusqlite::Row<'_>) -> Result<AlertRecord, StoreError> {
    let status: String = row.get(15)?;
    Ok(AlertRecord {
        alert_id: row.get(0)?,
        rule_id: row.get(1)?,
        rule_title: row.get(2)?,
        level: row.get(3)?,
        kind: row.get(4)?,
        tags: Vec::<String>::from_sql_value(row.get_ref(5)?, "alerts.tags")?,
        mlps: Vec::<String>::from_sql_value(row.get_ref(6)?, "alerts.mlps")?,
        agent_id: row.get(7)?,
        hostname: row.get(8)?,
        first_time_unix_nano: row.get(9)?,
        last_time_unix_nano: row.get(10)?,
        count: u64::from_sql_value(row.get_ref(11)?, "alerts.count")?,
        group_key: row.get(12)?,
        event_ids: Vec::<String>::from_sql_value(row.get_ref(13)?, "alerts.event_ids")?,
        summary: row.get(14)?,
        status: AlertStatus::from_name(&status).ok_or_else(|| StoreError::Corrupt {
            column: "alerts.status",
            reason: format!("unknown status {status:?}"),
        })?,
        assignee: row.get(16)?,
        note: row.get(17)?,
    })
}

/// Inserts or updates alerts; the detection fields of the version with the highest
/// `(count, last_time)` win, triage columns are left alone.
fn upsert_alerts_in(conn: &Connection, alerts: &[AlertRecord]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO alerts (alert_id, rule_id, rule_title, level, kind, tags, mlps, agent_id,
            hostname, first_time_ns, last_time_ns, count, group_key, event_ids, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (alert_id) DO UPDATE SET
            rule_id = excluded.rule_id, rule_title = excluded.rule_title,
            level = excluded.level, kind = excluded.kind, tags = excluded.tags,
            mlps = excluded.mlps, agent_id = excluded.agent_id, hostname = excluded.hostname,
            first_time_ns = min(alerts.first_time_ns, excluded.first_time_ns),
            last_time_ns = excluded.last_time_ns, count = excluded.count,
            group_key = excluded.group_key, event_ids = excluded.event_ids,
            summary = excluded.summary
         WHERE (excluded.count, excluded.last_time_ns) >= (alerts.count, alerts.last_time_ns)",
    )?;
    for alert in alerts {
        stmt.execute(params![
            alert.alert_id,
            alert.rule_id,
            alert.rule_title,
            alert.level,
            alert.kind,
            alert.tags.to_sql_value(),
            alert.mlps.to_sql_value(),
            alert.agent_id,
            alert.hostname,
            alert.first_time_unix_nano,
            alert.last_time_unix_nano,
            alert.count.to_sql_value(),
            alert.group_key,
            alert.event_ids.to_sql_value(),
            alert.summary,
        ])?;
    }
    Ok(())
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

fn event_conditions(q: &EventQuery) -> Result<Conditions, StoreError> {
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
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
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
        })
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
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

    /// See [`super::Store::write_batch`]: one transaction, so events, alerts and the seq
    /// bookkeeping are stored together or not at all.
    pub async fn write_batch(
        &self,
        agent_id: &str,
        seq: u64,
        events: &[Event],
        alerts: &[AlertRecord],
    ) -> Result<WriteOutcome, StoreError> {
        let agent_id = agent_id.to_owned();
        let rows: Vec<EventRow> = events
            .iter()
            .map(|e| EventRow::from_event(&agent_id, seq, e))
            .collect();
        let alerts = alerts.to_vec();
        let has_checks = events
            .iter()
            .any(|e| matches!(e.body, Some(Body::Check(_))));
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if last_seq_in(&tx, &agent_id)?.is_some_and(|last| seq <= last) {
                return Ok(WriteOutcome::Duplicate);
            }
            insert_event_rows(&tx, &rows)?;
            if has_checks {
                insert_check_results(&tx, &check_records(&rows))?;
            }
            upsert_alerts_in(&tx, &alerts)?;
            tx.execute(
                "INSERT INTO batches (agent_id, seq, event_count, alert_count, stored_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    agent_id,
                    seq.to_sql_value(),
                    rows.len() as i64,
                    alerts.len() as i64,
                    shaobing_wire::now_unix_nano()
                ],
            )?;
            tx.commit()?;
            Ok(WriteOutcome::Stored)
        })
        .await
    }

    /// See [`super::Store::last_seq`].
    pub async fn last_seq(&self, agent_id: &str) -> Result<Option<u64>, StoreError> {
        let agent_id = agent_id.to_owned();
        self.run(move |conn| last_seq_in(conn, &agent_id)).await
    }

    /// See [`super::Store::upsert_alerts`].
    pub async fn upsert_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        let alerts = alerts.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            upsert_alerts_in(&tx, &alerts)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// See [`super::Store::alerts`].
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let mut c = Conditions::default();
        if let Some(since) = q.since {
            c.push("last_time_ns >= ?", [SqlValue::Integer(since)]);
        }
        if let Some(until) = q.until {
            c.push("first_time_ns < ?", [SqlValue::Integer(until)]);
        }
        if let Some(host) = &q.host {
            c.push("hostname = ?", [text(host)]);
        }
        if let Some(agent_id) = &q.agent_id {
            c.push("agent_id = ?", [text(agent_id)]);
        }
        if let Some(rule_id) = &q.rule_id {
            c.push("rule_id = ?", [text(rule_id)]);
        }
        if !q.levels.is_empty() {
            let marks = vec!["?"; q.levels.len()].join(", ");
            c.push(
                format!("level IN ({marks})"),
                q.levels.iter().map(|l| text(l)),
            );
        }
        if !q.statuses.is_empty() {
            let marks = vec!["?"; q.statuses.len()].join(", ");
            c.push(
                format!("status IN ({marks})"),
                q.statuses.iter().map(|s| text(s.name())),
            );
        }
        if let Some(needle) = q.text.as_deref().filter(|t| !t.is_empty()) {
            let fields = ["rule_title", "rule_id", "summary", "hostname", "group_key"];
            let clause = fields
                .iter()
                .map(|f| format!("instr(lower({f}), lower(?)) > 0"))
                .collect::<Vec<_>>()
                .join(" OR ");
            c.push(format!("({clause})"), fields.map(|_| text(needle)));
        }
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts {} ORDER BY last_time_ns DESC, alert_id
             LIMIT {} OFFSET {}",
            c.where_sql(),
            effective_limit(q.limit),
            q.offset
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(c.params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(alert_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    /// See [`super::Store::set_alert_triage`].
    pub async fn set_alert_triage(
        &self,
        alert_id: &str,
        status: AlertStatus,
        assignee: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        let (alert_id, assignee, note) =
            (alert_id.to_owned(), assignee.to_owned(), note.to_owned());
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE alerts SET status = ?2, assignee = ?3, note = ?4, triage_updated_ns = ?5
                 WHERE alert_id = ?1",
                params![
                    alert_id,
                    status.name(),
                    assignee,
                    note,
                    shaobing_wire::now_unix_nano()
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::InvalidQuery(format!("no alert {alert_id:?}")));
            }
            Ok(())
        })
        .await
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

    /// See [`super::Store::apply_retention`].
    pub async fn apply_retention(&self, first_kept_day: u16) -> Result<(), StoreError> {
        let cutoff_ns = i64::from(first_kept_day) * 86_400 * 1_000_000_000;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let events = tx.execute("DELETE FROM events WHERE time_ns < ?1", params![cutoff_ns])?;
            let checks = tx.execute(
                "DELETE FROM check_results WHERE time_ns < ?1",
                params![cutoff_ns],
            )?;
            tx.commit()?;
            tracing::info!(events, checks, "retention: deleted expired rows");
            Ok(())
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
