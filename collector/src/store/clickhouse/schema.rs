//! ClickHouse DDL, migrations (recorded in `schema_migrations`) and retention `TTL`s, for a
//! single node or a cluster ([`Layout`]).
//!
//! Only the type and engine subset that both 18.16 (Debian 12) and current releases accept:
//! `String`, `UInt*`, `Int64`, `Float64`, `Date`, `DateTime`, `Array(...)`, `MergeTree` and
//! `ReplacingMergeTree` (and their `Replicated*` forms) with `PARTITION BY` / `ORDER BY`. No
//! `LowCardinality` (18.16 wants an experimental flag), no `DateTime64` or `IPv4/IPv6`, and no
//! `TTL` in `CREATE` (18.16 has none: it is added by `ALTER` where the server has it, see
//! `compat.rs`). Why each table is partitioned and ordered the way it is:
//! `deploy/clickhouse/README.md`; the cluster layout: `deploy/clickhouse/cluster/README.md`.
//!
//! Every statement is `CREATE ... IF NOT EXISTS`, so two collectors starting at once, or a
//! crash between a statement and its `schema_migrations` row, are harmless.
//!
//! On a cluster each table `T` is a `Replicated*MergeTree` table `T_local` on every node plus
//! a `Distributed` table `T` over them (sharded by host or agent), so the store's queries and
//! inserts use the same names in both layouts. `schema_migrations` is one replicated table
//! shared by every node of the cluster.

use std::collections::HashMap;

use super::compat::ServerCapabilities;
use super::sql::{Bound, Statement, StatementId};
use crate::store::event_row::EVENT_COLUMNS;
use crate::store::retention::{RetainedTable, RetentionPolicy};

/// Where the tables live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Layout {
    /// One server: plain `MergeTree` tables.
    #[default]
    Single,
    /// A cluster named in the servers' `remote_servers`: replicated local tables and
    /// `Distributed` tables, DDL run `ON CLUSTER`.
    Cluster(String),
}

impl Layout {
    /// The table holding the data of `table` on each node (`T` or `T_local`).
    pub(crate) fn local(&self, table: &str) -> String {
        match self {
            Layout::Single => table.to_owned(),
            Layout::Cluster(_) => format!("{table}_local"),
        }
    }

    /// ` ON CLUSTER name` or nothing.
    pub(crate) fn on_cluster(&self) -> String {
        match self {
            Layout::Single => String::new(),
            Layout::Cluster(name) => format!(" ON CLUSTER {name}"),
        }
    }

    /// Table name as written in DDL: plain on one node, database-qualified on a cluster
    /// (distributed DDL runs on other nodes, whose current database is not ours).
    fn ddl_name(&self, database: &str, table: &str) -> String {
        match self {
            Layout::Single => table.to_owned(),
            Layout::Cluster(_) => format!("{database}.{table}"),
        }
    }
}

/// One schema step: statements run in order, then the step is recorded.
pub(crate) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: fn(&Layout, &str) -> Vec<String>,
}

pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial tables",
    statements: initial_tables,
}];

#[derive(Clone, Copy)]
enum Engine {
    MergeTree,
    Replacing(&'static str),
}

/// One table: its columns, engine, partitioning, key and (on a cluster) sharding key.
struct TableDef {
    name: &'static str,
    columns: String,
    engine: Engine,
    tail: &'static str,
    sharding_key: &'static str,
}

/// `CREATE TABLE` statements of one table for `layout`.
fn create_table(def: &TableDef, layout: &Layout, database: &str) -> Vec<String> {
    let local = layout.ddl_name(database, &layout.local(def.name));
    let on_cluster = layout.on_cluster();
    let engine = match (layout, def.engine) {
        (Layout::Single, Engine::MergeTree) => "MergeTree()".to_owned(),
        (Layout::Single, Engine::Replacing(version)) => format!("ReplacingMergeTree({version})"),
        (Layout::Cluster(_), engine) => {
            let path = format!(
                "'/clickhouse/tables/{{shard}}/{database}/{}', '{{replica}}'",
                def.name
            );
            match engine {
                Engine::MergeTree => format!("ReplicatedMergeTree({path})"),
                Engine::Replacing(version) => {
                    format!("ReplicatedReplacingMergeTree({path}, {version})")
                }
            }
        }
    };
    let mut statements = vec![format!(
        "CREATE TABLE IF NOT EXISTS {local}{on_cluster} (\n{}\n) ENGINE = {engine}\n{}",
        def.columns, def.tail
    )];
    if let Layout::Cluster(cluster) = layout {
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {}{on_cluster} AS {local}\n\
             ENGINE = Distributed({cluster}, {database}, {}, {})",
            layout.ddl_name(database, def.name),
            layout.local(def.name),
            def.sharding_key
        ));
    }
    statements
}

fn columns(list: &[(&str, &str)]) -> String {
    list.iter()
        .map(|(name, ty)| format!("    {name} {ty}"))
        .collect::<Vec<_>>()
        .join(",\n")
}

fn table_defs() -> Vec<TableDef> {
    let events_columns: Vec<(&str, &str)> = EVENT_COLUMNS
        .iter()
        .map(|c| (c.name, c.clickhouse_type))
        .collect();
    vec![
        TableDef {
            name: "events",
            columns: columns(&events_columns),
            engine: Engine::MergeTree,
            tail: "PARTITION BY toYYYYMMDD(date)\nORDER BY (hostname, time_ns)\n\
                   SETTINGS index_granularity = 8192",
            sharding_key: "cityHash64(hostname)",
        },
        // Seq bookkeeping: state 0 = batch being written, 1 = stored (see write.rs).
        TableDef {
            name: "batches",
            columns: columns(&[
                ("agent_id", "String"),
                ("seq", "UInt64"),
                ("state", "UInt8"),
                ("event_count", "UInt32"),
                ("alert_count", "UInt32"),
                ("written_ns", "Int64"),
                ("written_date", "Date"),
            ]),
            engine: Engine::Replacing("state"),
            tail: "PARTITION BY toYYYYMM(written_date)\nORDER BY (agent_id, seq)",
            sharding_key: "cityHash64(agent_id)",
        },
        // Detection data of alerts; `version` = count (grows with every re-raise).
        TableDef {
            name: "alerts",
            columns: columns(&[
                ("alert_id", "String"),
                ("rule_id", "String"),
                ("rule_title", "String"),
                ("level", "String"),
                ("kind", "String"),
                ("tags", "Array(String)"),
                ("mlps", "Array(String)"),
                ("agent_id", "String"),
                ("hostname", "String"),
                ("first_time_ns", "Int64"),
                ("last_time_ns", "Int64"),
                ("first_time", "DateTime"),
                ("last_time", "DateTime"),
                ("first_date", "Date"),
                ("count", "UInt64"),
                ("group_key", "String"),
                ("event_ids", "Array(String)"),
                ("summary", "String"),
                ("version", "UInt64"),
            ]),
            engine: Engine::Replacing("version"),
            tail: "PARTITION BY toYYYYMM(first_date)\nORDER BY alert_id",
            sharding_key: "cityHash64(alert_id)",
        },
        // Triage state, written by operators, never by detection.
        TableDef {
            name: "alert_triage",
            columns: columns(&[
                ("alert_id", "String"),
                ("status", "String"),
                ("assignee", "String"),
                ("note", "String"),
                ("updated_ns", "UInt64"),
                ("updated", "DateTime"),
            ]),
            engine: Engine::Replacing("updated_ns"),
            tail: "ORDER BY alert_id",
            sharding_key: "cityHash64(alert_id)",
        },
        TableDef {
            name: "agents",
            columns: columns(&[
                ("agent_id", "String"),
                ("hostname", "String"),
                ("ips", "Array(String)"),
                ("os", "String"),
                ("version", "String"),
                ("first_seen_ns", "Int64"),
                ("last_seen_ns", "Int64"),
                ("status", "String"),
                ("last_seen", "DateTime"),
                ("row_version", "UInt64"),
            ]),
            engine: Engine::Replacing("row_version"),
            tail: "ORDER BY agent_id",
            sharding_key: "cityHash64(agent_id)",
        },
        TableDef {
            name: "check_results",
            columns: columns(&[
                ("agent_id", "String"),
                ("seq", "UInt64"),
                ("hostname", "String"),
                ("check_id", "String"),
                ("title", "String"),
                ("status", "String"),
                ("observed", "String"),
                ("expected", "String"),
                ("time_ns", "Int64"),
                ("time", "DateTime"),
                ("date", "Date"),
                ("event_id", "String"),
            ]),
            engine: Engine::MergeTree,
            tail: "PARTITION BY toYYYYMMDD(date)\nORDER BY (hostname, check_id, time_ns)",
            sharding_key: "cityHash64(hostname)",
        },
        TableDef {
            name: "audit_log",
            columns: columns(&[
                ("time_ns", "Int64"),
                ("time", "DateTime"),
                ("date", "Date"),
                ("actor", "String"),
                ("action", "String"),
                ("target", "String"),
                ("detail", "String"),
            ]),
            engine: Engine::MergeTree,
            tail: "PARTITION BY toYYYYMM(date)\nORDER BY time_ns",
            sharding_key: "rand()",
        },
    ]
}

fn initial_tables(layout: &Layout, database: &str) -> Vec<String> {
    table_defs()
        .iter()
        .flat_map(|def| create_table(def, layout, database))
        .collect()
}

/// `CREATE DATABASE`, run before anything else.
pub(crate) fn create_database(layout: &Layout, database: &str) -> Statement {
    Statement::new(
        StatementId::CreateDatabase,
        format!(
            "CREATE DATABASE IF NOT EXISTS {database}{}",
            layout.on_cluster()
        ),
    )
}

/// The table recording applied migrations; created right after the database. On a cluster
/// it is one replicated table shared by all nodes (no `{shard}` in its path).
pub(crate) fn create_migrations_table(layout: &Layout, database: &str) -> Statement {
    let engine = match layout {
        Layout::Single => "MergeTree()".to_owned(),
        Layout::Cluster(_) => format!(
            "ReplicatedMergeTree('/clickhouse/tables/all/{database}/schema_migrations', '{{replica}}')"
        ),
    };
    Statement::new(
        StatementId::CreateMigrationsTable,
        format!(
            "CREATE TABLE IF NOT EXISTS {}{} (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = {engine} ORDER BY version",
            layout.ddl_name(database, "schema_migrations"),
            layout.on_cluster()
        ),
    )
}

/// The `TTL` expression retention sets on `table` where the server has `TTL`.
pub(crate) fn ttl_expression(table: &RetainedTable) -> String {
    format!("{} + toIntervalDay({})", table.time_column, table.keep_days)
}

/// Reads the current engine clause (with its `TTL` and settings) of the retained tables.
pub(crate) fn current_ttl(layout: &Layout, database: &str, policy: &RetentionPolicy) -> Statement {
    let names = policy
        .tables()
        .iter()
        .map(|t| layout.local(t.table))
        .collect();
    Statement::new(
        StatementId::TtlCurrent,
        "SELECT name, engine_full FROM system.tables WHERE database = ? AND has(?, name)",
    )
    .bind([Bound::Text(database.to_owned()), Bound::TextList(names)])
}

/// The `ALTER`s that bring each retained table's `TTL` to `policy`, given the current
/// `engine_full` of each local table (empty map: all of them). Nothing on servers without
/// `TTL`: there retention is only `apply_retention` dropping partitions.
pub(crate) fn ttl_statements(
    caps: &ServerCapabilities,
    layout: &Layout,
    database: &str,
    policy: &RetentionPolicy,
    current: &HashMap<String, String>,
) -> Vec<Statement> {
    if !caps.ttl {
        return Vec::new();
    }
    let mut statements = Vec::new();
    for table in policy.tables() {
        let local = layout.local(table.table);
        let engine = current.get(&local).map(String::as_str).unwrap_or_default();
        let target = format!(
            "{}{}",
            layout.ddl_name(database, &local),
            layout.on_cluster()
        );
        let expression = ttl_expression(&table);
        if !engine.contains(&format!("TTL {expression}")) {
            let mut modify = Statement::new(
                StatementId::TtlModify,
                format!("ALTER TABLE {target} MODIFY TTL {expression}"),
            );
            if caps.materialize_ttl_after_modify {
                // Old parts are handled by dropping partitions; do not rewrite them.
                modify = modify.setting("materialize_ttl_after_modify", "0");
            }
            statements.push(modify);
        }
        if caps.ttl_only_drop_parts && !engine.contains("ttl_only_drop_parts = 1") {
            statements.push(Statement::new(
                StatementId::TtlOnlyDropParts,
                format!("ALTER TABLE {target} MODIFY SETTING ttl_only_drop_parts = 1"),
            ));
        }
    }
    statements
}

/// The whole schema of `layout` as one SQL script, for operators who create the tables by
/// hand, e.g. with `clickhouse-client --multiquery` (`deploy/clickhouse/schema.sql` and
/// `deploy/clickhouse/cluster/schema.sql` hold it for database `shaobing`).
pub fn schema_script(layout: &Layout, database: &str) -> String {
    let regenerate = "SHAOBING_WRITE_SCHEMA=1 cargo test -p shaobing-collector --lib schema_script";
    let mut script = format!(
        "-- Shaobing ClickHouse schema ({}). Generated from\n\
         -- collector/src/store/clickhouse/schema.rs: edit that file, not this one, then run\n\
         -- {regenerate}\n\
         -- The collector creates all of this itself on start; this file is for review and for\n\
         -- creating the tables by hand:\n",
        match layout {
            Layout::Single => "single node".to_owned(),
            Layout::Cluster(name) => format!("cluster {name}"),
        }
    );
    match layout {
        Layout::Single => script.push_str(&format!(
            "--   clickhouse-client --query \"CREATE DATABASE IF NOT EXISTS {database}\"\n\
             --   clickhouse-client --database {database} --multiquery < schema.sql\n"
        )),
        Layout::Cluster(_) => script
            .push_str("--   clickhouse-client --multiquery < schema.sql   (on any one node)\n"),
    }
    script.push('\n');
    if let Layout::Cluster(_) = layout {
        script.push_str(&create_database(layout, database).render());
        script.push_str(";\n\n");
    }
    script.push_str(&create_migrations_table(layout, database).render());
    script.push_str(";\n");
    for migration in MIGRATIONS {
        script.push_str(&format!(
            "\n-- Migration {}: {}\n",
            migration.version, migration.name
        ));
        for statement in (migration.statements)(layout, database) {
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

    fn check_file(relative: &str, script: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        if std::env::var_os("SHAOBING_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, script).expect("write the schema script");
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
    fn schema_script_matches_deploy_clickhouse_schema_sql() {
        check_file(
            "../deploy/clickhouse/schema.sql",
            &schema_script(&Layout::Single, "shaobing"),
        );
        check_file(
            "../deploy/clickhouse/cluster/schema.sql",
            &schema_script(&Layout::Cluster("shaobing".into()), "shaobing"),
        );
    }

    #[test]
    fn every_statement_is_idempotent() {
        for layout in [Layout::Single, Layout::Cluster("c".into())] {
            for migration in MIGRATIONS {
                for statement in (migration.statements)(&layout, "db") {
                    assert!(
                        statement.starts_with("CREATE TABLE IF NOT EXISTS"),
                        "migration {} has a non-idempotent statement: {statement}",
                        migration.version
                    );
                }
            }
        }
    }

    #[test]
    fn ddl_stays_in_the_common_subset() {
        for layout in [Layout::Single, Layout::Cluster("c".into())] {
            let ddl = initial_tables(&layout, "db").join("\n");
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

    #[test]
    fn cluster_tables_are_replicated_and_distributed() {
        let ddl = initial_tables(&Layout::Cluster("shaobing".into()), "db");
        assert_eq!(ddl.len(), 14);
        assert!(
            ddl[0].starts_with("CREATE TABLE IF NOT EXISTS db.events_local ON CLUSTER shaobing")
        );
        assert!(ddl[0].contains(
            "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/events', '{replica}')"
        ));
        assert!(ddl[1].contains("db.events ON CLUSTER shaobing AS db.events_local"));
        assert!(ddl[1].contains("Distributed(shaobing, db, events_local, cityHash64(hostname))"));
        assert!(ddl[2].contains(
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/batches', '{replica}', state)"
        ));
    }

    #[test]
    fn ttl_is_set_only_where_missing_and_supported() {
        let policy = RetentionPolicy::default();
        let old = ServerCapabilities::legacy("18.16.1");
        assert!(ttl_statements(&old, &Layout::Single, "db", &policy, &HashMap::new()).is_empty());
        let new = ServerCapabilities::current("26.9");
        let all = ttl_statements(&new, &Layout::Single, "db", &policy, &HashMap::new());
        assert_eq!(all.len(), 10);
        assert_eq!(
            all[0].render(),
            "ALTER TABLE events MODIFY TTL date + toIntervalDay(186)"
        );
        assert_eq!(
            all[0].settings(),
            [("materialize_ttl_after_modify", "0".to_owned())]
        );
        let done: HashMap<String, String> = policy
            .tables()
            .iter()
            .map(|t| {
                (
                    t.table.to_owned(),
                    format!(
                        "MergeTree ORDER BY x TTL {} SETTINGS ttl_only_drop_parts = 1",
                        ttl_expression(t)
                    ),
                )
            })
            .collect();
        assert!(ttl_statements(&new, &Layout::Single, "db", &policy, &done).is_empty());
        let cluster = ttl_statements(&new, &Layout::Cluster("c".into()), "db", &policy, &done);
        assert_eq!(
            cluster[0].render(),
            "ALTER TABLE db.events_local ON CLUSTER c MODIFY TTL date + toIntervalDay(186)"
        );
    }
}
