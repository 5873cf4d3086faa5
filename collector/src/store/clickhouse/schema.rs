//! ClickHouse DDL and migrations (recorded in `schema_migrations`).
//!
//! Only the type and engine subset that both 18.16 (Debian 12) and current releases accept:
//! `String`, `UInt*`, `Int64`, `Float64`, `Date`, `DateTime`, `Array(...)`, `MergeTree` and
//! `ReplacingMergeTree` with `PARTITION BY` / `ORDER BY`. No `LowCardinality` (18.16 wants an
//! experimental flag), no `DateTime64`, `IPv4/IPv6` or `TTL` (not in 18.16). Why each table is
//! partitioned and ordered the way it is: `deploy/clickhouse/README.md`.
//!
//! Every statement is `CREATE ... IF NOT EXISTS`, so two collectors starting at once, or a
//! crash between a statement and its `schema_migrations` row, are harmless.

use crate::store::event_row::EVENT_COLUMNS;

/// One schema step: statements run in order, then the step is recorded.
pub(crate) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: fn() -> Vec<String>,
}

pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial tables",
    statements: initial_tables,
}];

/// Table recording applied migrations; created before anything else.
pub(crate) const SCHEMA_MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = MergeTree() ORDER BY version";

/// The `events` DDL, generated from the shared column list.
pub(crate) fn events_ddl() -> String {
    let columns: Vec<String> = EVENT_COLUMNS
        .iter()
        .map(|c| format!("    {} {}", c.name, c.clickhouse_type))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS events (\n{}\n) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(date)
ORDER BY (hostname, time_ns)
SETTINGS index_granularity = 8192",
        columns.join(",\n")
    )
}

fn initial_tables() -> Vec<String> {
    vec![
        events_ddl(),
        // Seq bookkeeping: state 0 = batch being written, 1 = stored (see clickhouse.rs).
        "CREATE TABLE IF NOT EXISTS batches (
    agent_id String,
    seq UInt64,
    state UInt8,
    event_count UInt32,
    alert_count UInt32,
    written_ns Int64,
    written_date Date
) ENGINE = ReplacingMergeTree(state)
PARTITION BY toYYYYMM(written_date)
ORDER BY (agent_id, seq)"
            .to_owned(),
        // Detection data of alerts; `version` = count (grows with every re-raise).
        "CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    rule_id String,
    rule_title String,
    level String,
    kind String,
    tags Array(String),
    mlps Array(String),
    agent_id String,
    hostname String,
    first_time_ns Int64,
    last_time_ns Int64,
    first_time DateTime,
    last_time DateTime,
    first_date Date,
    count UInt64,
    group_key String,
    event_ids Array(String),
    summary String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(first_date)
ORDER BY alert_id"
            .to_owned(),
        // Triage state, written by operators, never by detection.
        "CREATE TABLE IF NOT EXISTS alert_triage (
    alert_id String,
    status String,
    assignee String,
    note String,
    updated_ns UInt64,
    updated DateTime
) ENGINE = ReplacingMergeTree(updated_ns)
ORDER BY alert_id"
            .to_owned(),
        "CREATE TABLE IF NOT EXISTS agents (
    agent_id String,
    hostname String,
    ips Array(String),
    os String,
    version String,
    first_seen_ns Int64,
    last_seen_ns Int64,
    status String,
    last_seen DateTime,
    row_version UInt64
) ENGINE = ReplacingMergeTree(row_version)
ORDER BY agent_id"
            .to_owned(),
        "CREATE TABLE IF NOT EXISTS check_results (
    agent_id String,
    seq UInt64,
    hostname String,
    check_id String,
    title String,
    status String,
    observed String,
    expected String,
    time_ns Int64,
    time DateTime,
    date Date,
    event_id String
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(date)
ORDER BY (hostname, check_id, time_ns)"
            .to_owned(),
        "CREATE TABLE IF NOT EXISTS audit_log (
    time_ns Int64,
    time DateTime,
    date Date,
    actor String,
    action String,
    target String,
    detail String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(date)
ORDER BY time_ns"
            .to_owned(),
    ]
}

/// The whole schema as one SQL script (what `deploy/clickhouse/schema.sql` holds), for
/// operators who create the tables by hand, e.g. with `clickhouse-client --multiquery`.
pub fn schema_script() -> String {
    let mut script = String::from(
        "-- Shaobing ClickHouse schema (single node). Generated from\n\
         -- collector/src/store/clickhouse/schema.rs: edit that file, not this one, then run\n\
         -- SHAOBING_WRITE_SCHEMA=1 cargo test -p shaobing-collector --lib schema_script\n\
         -- The collector creates all of this itself on start; this file is for review and for\n\
         -- creating the tables by hand:\n\
         --   clickhouse-client --database shaobing --multiquery < schema.sql\n\n",
    );
    script.push_str(SCHEMA_MIGRATIONS_DDL);
    script.push_str(";\n");
    for migration in MIGRATIONS {
        script.push_str(&format!(
            "\n-- Migration {}: {}\n",
            migration.version, migration.name
        ));
        for statement in (migration.statements)() {
            script.push('\n');
            script.push_str(&statement);
            script.push_str(";\n");
        }
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_script_matches_deploy_clickhouse_schema_sql() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/clickhouse/schema.sql");
        let script = schema_script();
        if std::env::var_os("SHAOBING_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &script).expect("write deploy/clickhouse/schema.sql");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == script,
            "{} is out of date: run SHAOBING_WRITE_SCHEMA=1 cargo test -p shaobing-collector \
             --lib schema_script",
            path.display()
        );
    }

    #[test]
    fn every_statement_is_idempotent() {
        for migration in MIGRATIONS {
            for statement in (migration.statements)() {
                assert!(
                    statement.starts_with("CREATE TABLE IF NOT EXISTS"),
                    "migration {} has a non-idempotent statement: {statement}",
                    migration.version
                );
            }
        }
    }

    #[test]
    fn events_ddl_has_every_column_and_stays_in_the_common_subset() {
        let ddl = events_ddl();
        for column in EVENT_COLUMNS {
            assert!(ddl.contains(&format!("    {} {}", column.name, column.clickhouse_type)));
        }
        for newer_only in ["LowCardinality", "DateTime64", "IPv4", "IPv6", "TTL"] {
            assert!(
                !ddl.contains(newer_only),
                "{newer_only} is not in ClickHouse 18.16"
            );
        }
    }
}
