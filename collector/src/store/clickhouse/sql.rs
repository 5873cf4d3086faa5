//! Every statement the ClickHouse store sends is a [`Statement`]: SQL with `?` placeholders,
//! the values bound to them client-side (server-side `{name:Type}` parameters do not exist in
//! 18.16) and per-query settings, built by pure functions (no server needed) and named by a
//! [`StatementId`]. [`Statement::render`] gives the exact text sent to the server, so the
//! statements can be dumped, reviewed and replayed elsewhere: the compatibility test records
//! every statement a workload sends to 18.16 and replays it on ClickHouse 26.x (chdb).

use std::sync::Mutex;

use ::clickhouse::query::Query;
use ::clickhouse::sql::Bind;
use ::clickhouse::{Client, Row};
use serde::Serialize;

use crate::store::StoreError;

/// A value bound to one `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bound {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    TextList(Vec<String>),
    UnsignedList(Vec<u64>),
}

/// SQL conditions with `?` placeholders and the values to bind to them, in order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    pub(crate) clauses: Vec<String>,
    pub(crate) binds: Vec<Bound>,
}

impl Conditions {
    pub(crate) fn push(
        &mut self,
        clause: impl Into<String>,
        binds: impl IntoIterator<Item = Bound>,
    ) {
        self.clauses.push(clause.into());
        self.binds.extend(binds);
    }

    /// `KEYWORD a AND b ...`, or nothing when there is no condition.
    pub(crate) fn sql(&self, keyword: &str) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("{keyword} {}", self.clauses.join(" AND "))
        }
    }
}

/// What a statement does (how a replay treats it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementKind {
    /// Creates or changes tables.
    Ddl,
    /// Returns rows.
    Query,
    /// Changes data without returning rows (`ALTER ... DROP PARTITION`, small inserts).
    Command,
    /// Bulk `INSERT` (sent as RowBinary; rendered with `VALUES` for replays).
    Insert,
}

macro_rules! statement_ids {
    ($($id:ident => $name:literal, $kind:ident;)*) => {
        /// Names every statement the ClickHouse store can send.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StatementId {
            $(#[doc = $name] $id,)*
        }

        impl StatementId {
            /// Every statement id, so a test can check that a workload covered them all.
            pub const ALL: &'static [StatementId] = &[$(StatementId::$id,)*];

            /// Stable dotted name, e.g. `alerts.page`.
            pub fn name(self) -> &'static str {
                match self {
                    $(StatementId::$id => $name,)*
                }
            }

            /// What the statement does.
            pub fn kind(self) -> StatementKind {
                match self {
                    $(StatementId::$id => StatementKind::$kind,)*
                }
            }
        }
    };
}

statement_ids! {
    ServerProbe => "server.probe", Query;
    CreateDatabase => "database.create", Ddl;
    CreateMigrationsTable => "migrations.create", Ddl;
    MigrationsApplied => "migrations.applied", Query;
    MigrationStep => "migrations.step", Ddl;
    RecordMigration => "migrations.record", Command;
    TtlCurrent => "ttl.current", Query;
    TtlModify => "ttl.modify", Ddl;
    TtlOnlyDropParts => "ttl.only_drop_parts", Ddl;
    BatchState => "batches.state", Query;
    StoredEventIds => "batches.stored_event_ids", Query;
    StoredCheckIds => "batches.stored_check_ids", Query;
    LastSeq => "batches.last_seq", Query;
    InsertBatches => "insert.batches", Insert;
    InsertEvents => "insert.events", Insert;
    InsertChecks => "insert.check_results", Insert;
    InsertAlerts => "insert.alerts", Insert;
    InsertTriage => "insert.alert_triage", Insert;
    InsertAgents => "insert.agents", Insert;
    InsertAudit => "insert.audit_log", Insert;
    EventsPage => "events.page", Query;
    EventsCount => "events.count", Query;
    EventCountsByTime => "events.counts_by_time", Query;
    EventCountsByGroup => "events.counts_by_group", Query;
    EventSources => "events.sources", Query;
    AlertsPage => "alerts.page", Query;
    AlertCandidates => "alerts.candidates", Query;
    AlertsById => "alerts.by_id", Query;
    AlertCountsByTime => "alerts.counts_by_time", Query;
    AlertCountsByGroup => "alerts.counts_by_group", Query;
    AlertOverview => "alerts.overview", Query;
    AlertExists => "alerts.exists", Query;
    AgentFirstSeen => "agents.first_seen", Query;
    AgentsList => "agents.list", Query;
    ChecksList => "checks.list", Query;
    ChecksLatest => "checks.latest", Query;
    AuditList => "audit.list", Query;
    RetentionPartitions => "retention.partitions", Query;
    DropPartition => "retention.drop_partition", Command;
}

/// One statement: SQL with `?` placeholders, their values and per-query settings.
#[derive(Debug, Clone)]
pub struct Statement {
    id: StatementId,
    sql: String,
    binds: Vec<Bound>,
    settings: Vec<(&'static str, String)>,
}

impl Statement {
    /// A statement without placeholders or settings.
    pub(crate) fn new(id: StatementId, sql: impl Into<String>) -> Self {
        Statement {
            id,
            sql: sql.into(),
            binds: Vec::new(),
            settings: Vec::new(),
        }
    }

    /// Adds values for the next placeholders.
    pub(crate) fn bind(mut self, binds: impl IntoIterator<Item = Bound>) -> Self {
        self.binds.extend(binds);
        self
    }

    /// Adds a setting sent with this statement only.
    pub(crate) fn setting(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.settings.push((name, value.into()));
        self
    }

    /// The SQL with its placeholders and the values bound to them, to embed in another
    /// statement.
    pub(crate) fn into_parts(self) -> (String, Vec<Bound>) {
        (self.sql, self.binds)
    }

    /// Which statement this is.
    pub fn id(&self) -> StatementId {
        self.id
    }

    /// Settings sent with it (`name`, `value`).
    pub fn settings(&self) -> &[(&'static str, String)] {
        &self.settings
    }

    /// The SQL exactly as sent: values escaped and inlined the way the client does it.
    pub fn render(&self) -> String {
        self.query(&Client::default()).sql_display().to_string()
    }

    /// The statement as a query of `client`, values bound and settings applied.
    pub(crate) fn query(&self, client: &Client) -> Query {
        let mut query = client.query(&self.sql);
        for b in &self.binds {
            query = match b {
                Bound::Text(s) => query.bind(s.as_str()),
                Bound::Unsigned(u) => query.bind(*u),
                Bound::Signed(i) => query.bind(*i),
                Bound::Float(f) => query.bind(*f),
                Bound::TextList(list) => query.bind(list.as_slice()),
                Bound::UnsignedList(list) => query.bind(list.as_slice()),
            };
        }
        for (name, value) in &self.settings {
            query = query.with_setting(*name, value.as_str());
        }
        query
    }
}

/// A statement as it was sent, kept by a store opened with statement recording on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedStatement {
    /// [`StatementId::name`].
    pub name: &'static str,
    /// What it does.
    pub kind: StatementKind,
    /// The SQL as sent (inserts: the same rows as an `INSERT ... VALUES` statement).
    pub sql: String,
    /// Per-query settings.
    pub settings: Vec<(String, String)>,
}

/// Statements sent so far, in order (only when recording is switched on).
#[derive(Debug, Default)]
pub(crate) struct StatementLog(Mutex<Vec<RecordedStatement>>);

impl StatementLog {
    pub(crate) fn push(&self, id: StatementId, sql: String, settings: &[(&'static str, String)]) {
        let entry = RecordedStatement {
            name: id.name(),
            kind: id.kind(),
            sql,
            settings: settings
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect(),
        };
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(entry);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedStatement> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// `INSERT INTO table (columns) VALUES (...), ...` holding the rows a RowBinary insert sends
/// (for recording and replays; values escaped as the client escapes bound values).
pub(crate) fn insert_values_sql<R>(table: &str, rows: &[R]) -> Result<String, StoreError>
where
    R: Row + Serialize,
{
    let columns = R::COLUMN_NAMES;
    let mut sql = format!("INSERT INTO {table} ({}) VALUES", columns.join(", "));
    for (i, row) in rows.iter().enumerate() {
        let value = serde_json::to_value(row)
            .map_err(|e| StoreError::InvalidQuery(format!("row of {table}: {e}")))?;
        sql.push_str(if i == 0 { " (" } else { ", (" });
        for (j, column) in columns.iter().enumerate() {
            if j > 0 {
                sql.push_str(", ");
            }
            let field = value.get(*column).ok_or_else(|| {
                StoreError::InvalidQuery(format!("row of {table} has no field {column}"))
            })?;
            field
                .write(&mut sql)
                .map_err(|e| StoreError::InvalidQuery(format!("{table}.{column}: {e}")))?;
        }
        sql.push(')');
    }
    Ok(sql)
}

/// `(a = ? AND b >= ?) OR ...`: one parenthesized group per item.
pub(crate) fn any_of<T>(
    items: &[T],
    group: &str,
    binds: impl Fn(&T) -> [Bound; 2],
) -> (String, Vec<Bound>) {
    let sql = vec![format!("({group})"); items.len()].join(" OR ");
    let bound = items.iter().flat_map(binds).collect();
    (sql, bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Row, Serialize)]
    struct Sample<'a> {
        name: &'a str,
        n: u64,
        tags: &'a [String],
        x: f64,
    }

    #[test]
    fn statements_render_with_escaped_values_and_settings() {
        let st = Statement::new(StatementId::EventsCount, "SELECT ? , ? , ?, ?")
            .bind([
                Bound::Text("it's \\ here".into()),
                Bound::Signed(-3),
                Bound::TextList(vec!["a".into(), "b'".into()]),
                Bound::UnsignedList(vec![1, 2]),
            ])
            .setting("max_threads", "2");
        assert_eq!(
            st.render(),
            r"SELECT 'it\'s \\ here' , -3 , ['a','b\''], [1,2]"
        );
        assert_eq!(st.settings(), [("max_threads", "2".to_owned())]);
        assert_eq!(st.id().kind(), StatementKind::Query);
    }

    #[test]
    fn rows_render_as_values_in_column_order() {
        let tags = vec!["x".to_owned()];
        let rows = [
            Sample {
                name: "o'k",
                n: u64::MAX,
                tags: &tags,
                x: 12.5,
            },
            Sample {
                name: "",
                n: 0,
                tags: &[],
                x: -0.25,
            },
        ];
        assert_eq!(
            insert_values_sql("t", &rows).expect("renders"),
            "INSERT INTO t (name, n, tags, x) VALUES ('o\\'k', 18446744073709551615, ['x'], 12.5), \
             ('', 0, [], -0.25)"
        );
    }

    #[test]
    fn statement_names_are_unique() {
        let mut names: Vec<&str> = StatementId::ALL.iter().map(|id| id.name()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn any_of_repeats_the_group() {
        let (sql, binds) = any_of(&[("a", 1u64), ("b", 2)], "agent_id = ? AND seq >= ?", |x| {
            [Bound::Text(x.0.into()), Bound::Unsigned(x.1)]
        });
        assert_eq!(
            sql,
            "(agent_id = ? AND seq >= ?) OR (agent_id = ? AND seq >= ?)"
        );
        assert_eq!(binds.len(), 4);
    }
}
