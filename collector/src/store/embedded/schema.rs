//! SQLite schema of the embedded store and its migrations (recorded in `schema_migrations`).
//!
//! Each migration runs in the same transaction as its `schema_migrations` row, so a crash
//! leaves the schema either before or after a migration, never half-way.

use rusqlite::{Connection, params};

use crate::store::StoreError;
use crate::store::event_row::{ColumnKind, EVENT_COLUMNS};

/// One schema step, applied once, in version order.
struct Migration {
    version: u32,
    name: &'static str,
    sql: fn() -> String,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial tables",
    sql: initial_tables,
}];

fn sqlite_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text | ColumnKind::TextArray | ColumnKind::UnsignedArray => "TEXT",
        ColumnKind::Unsigned | ColumnKind::Signed => "INTEGER",
        ColumnKind::Float => "REAL",
    }
}

fn initial_tables() -> String {
    let event_columns: Vec<String> = EVENT_COLUMNS
        .iter()
        .map(|c| format!("    {} {} NOT NULL", c.name, sqlite_type(c.kind)))
        .collect();
    format!(
        "CREATE TABLE events (\n{}\n);
CREATE INDEX events_by_host_time ON events (hostname, time_ns);
CREATE INDEX events_by_time ON events (time_ns);
CREATE INDEX events_by_kind_time ON events (kind, time_ns);
CREATE INDEX events_by_agent_seq ON events (agent_id, seq);
CREATE INDEX events_by_source_ip ON events (source_ip) WHERE source_ip <> '';
CREATE INDEX events_by_user ON events (user) WHERE user <> '';

CREATE TABLE batches (
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    alert_count INTEGER NOT NULL,
    stored_ns INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;

CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY NOT NULL,
    rule_id TEXT NOT NULL,
    rule_title TEXT NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    tags TEXT NOT NULL,
    mlps TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    first_time_ns INTEGER NOT NULL,
    last_time_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    group_key TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    summary TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    assignee TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    triage_updated_ns INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_by_last_time ON alerts (last_time_ns);
CREATE INDEX alerts_by_host_time ON alerts (hostname, last_time_ns);

CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY NOT NULL,
    hostname TEXT NOT NULL,
    ips TEXT NOT NULL,
    os TEXT NOT NULL,
    version TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    status TEXT NOT NULL
);

CREATE TABLE check_results (
    agent_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    check_id TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    observed TEXT NOT NULL,
    expected TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    event_id TEXT NOT NULL
);
CREATE INDEX check_results_by_host_check_time ON check_results (hostname, check_id, time_ns);
CREATE INDEX check_results_by_agent_check_time ON check_results (agent_id, check_id, time_ns);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_by_time ON audit_log (time_ns);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
{AUDIT_LOG_NO_DELETE}
",
        event_columns.join(",\n")
    )
}

/// The trigger that keeps the audit log append-only: only retention (in the same transaction
/// that drops and recreates it) deletes from it.
pub(crate) const AUDIT_LOG_NO_DELETE: &str =
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;";

/// Creates `schema_migrations` and applies every migration not recorded there yet.
pub(crate) fn migrate(conn: &mut Connection, now_ns: i64) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            applied_ns INTEGER NOT NULL
        )",
    )?;
    for migration in MIGRATIONS {
        let tx = conn.transaction()?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            params![migration.version],
            |row| row.get(0),
        )?;
        if !applied {
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "embedded store: applying migration"
            );
            tx.execute_batch(&(migration.sql)())?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?1, ?2, ?3)",
                params![migration.version, migration.name, now_ns],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_recorded() -> Result<(), StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrate(&mut conn, 1)?;
        migrate(&mut conn, 2)?;
        let recorded: Vec<(u32, i64)> = conn
            .prepare("SELECT version, applied_ns FROM schema_migrations ORDER BY version")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        assert_eq!(recorded, vec![(1, 1)]);
        Ok(())
    }
}
