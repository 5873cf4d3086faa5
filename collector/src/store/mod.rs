//! Storage: the only module of Shaobing that talks to a database.
//!
//! Two back-ends behind one [`Store`] (enum dispatch, no trait objects):
//! - [`EmbeddedStore`]: one SQLite file in the data directory, the default when no ClickHouse
//!   URL is configured (demo and small sites need nothing else);
//! - [`ClickHouseStore`]: ClickHouse over HTTP, Debian 12's 18.16 up to current releases, on
//!   one server or a cluster ([`ClickHouseOptions::cluster`]).
//!
//! Both pass the same test suite (`collector/tests/store_suite.rs`). What each table holds and
//! why it is laid out that way is documented in `deploy/clickhouse/README.md`.
//!
//! Delivery contract: [`Store::write_batches`] (and [`Store::write_batch`], one batch) returns
//! only once the batches are durable and is idempotent per `(agent_id, seq)`: the collector
//! acks the agents after it, and a batch that is sent again (lost ack, reconnect, collector
//! restart) is reported as [`WriteOutcome::Duplicate`] and stored nothing.
//!
//! Retention ([`RetentionPolicy`], [`Store::apply_retention`]) removes whole day or month
//! partitions; the query API serves the CLI, the console and the 等保 reports.

mod clickhouse;
mod config;
mod embedded;
mod event_row;
mod records;
mod retention;

use std::path::Path;

use shaobing_detect::Alert;
use shaobing_wire::v1::Event;

pub use self::clickhouse::compat::ServerCapabilities;
pub use self::clickhouse::schema::{
    Layout as ClickHouseLayout, schema_script as clickhouse_schema_script,
};
pub use self::clickhouse::sql::{RecordedStatement, Statement, StatementId, StatementKind};
pub use self::clickhouse::{
    ClickHouseOptions, ClickHouseStore, WireCompression,
    ttl_statements as clickhouse_ttl_statements,
};
pub use self::config::{ClickHouseTarget, StoreConfig};
pub use self::embedded::EmbeddedStore;
pub use self::records::{
    AgentRecord, AlertGroup, AlertOverview, AlertQuery, AlertRecord, AlertStatus, AuditEntry,
    AuditQuery, CheckQuery, CheckRecord, EventGroup, EventQuery, EventRecord, FieldFilter,
    GroupCount, LevelBucketCount, LevelStatusCount, MAX_QUERY_LIMIT, MAX_TIME_BUCKETS, SourceSpan,
    TimeBucketCount,
};
pub use self::retention::{
    DEFAULT_ALERT_RETENTION_DAYS, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_RETENTION_DAYS,
    RetentionPolicy, RetentionReport, SIX_MONTHS_DAYS, TableRetention,
};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite file could not be opened, read or written.
    #[error("embedded store (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The ClickHouse server refused a statement or could not be reached.
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] ::clickhouse::error::Error),
    /// The data directory of the embedded store could not be created.
    #[error("embedded store directory {path}: {source}")]
    Directory {
        /// The directory that could not be created.
        path: std::path::PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A database name that is not a plain identifier (`[A-Za-z_][A-Za-z0-9_]*`).
    #[error("invalid ClickHouse database name {0:?}: use letters, digits and '_' only")]
    InvalidDatabaseName(String),
    /// A query the store refuses (unknown field, value of the wrong type, ...).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A stored value that cannot be decoded (corrupt or written by an incompatible version).
    #[error("corrupt stored value in {column}: {reason}")]
    Corrupt {
        /// Column holding the value.
        column: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The ClickHouse server is older than anything the schema was written for.
    #[error("ClickHouse server version {0} is not supported (need 18.16 or newer)")]
    UnsupportedServer(String),
    /// A blocking database task panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The embedded connection's lock was poisoned by a panic in another task.
    #[error("embedded store lock poisoned by an earlier panic")]
    Poisoned,
}

/// Result of [`Store::write_batch`] (one per batch for [`Store::write_batches`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The batch is now durably stored.
    Stored,
    /// This `(agent_id, seq)` (or a later seq) was stored before: nothing was written.
    Duplicate,
}

/// One agent batch for [`Store::write_batches`]: its events and the alerts they raised.
#[derive(Debug, Clone, Copy)]
pub struct BatchWrite<'a> {
    /// Authenticated agent identity (stored for every event, whatever the payload claims).
    pub agent_id: &'a str,
    /// The agent's batch sequence number.
    pub seq: u64,
    /// The batch's events.
    pub events: &'a [Event],
    /// Alerts detection raised on them.
    pub alerts: &'a [Alert],
}

/// A batch as the back-ends take it (alerts converted to records).
#[derive(Debug)]
pub(crate) struct PreparedBatch<'a> {
    pub(crate) agent_id: &'a str,
    pub(crate) seq: u64,
    pub(crate) events: &'a [Event],
    pub(crate) alerts: Vec<AlertRecord>,
}

/// The storage back-end in use.
#[derive(Debug, Clone)]
pub enum Store {
    /// SQLite file, no server.
    Embedded(EmbeddedStore),
    /// ClickHouse server.
    ClickHouse(ClickHouseStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Embedded($store) => $call,
            Store::ClickHouse($store) => $call,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the SQLite store at `path` and applies pending migrations,
    /// with the default [`RetentionPolicy`].
    pub async fn open_embedded(path: &Path) -> Result<Store, StoreError> {
        Self::open_embedded_with(path, RetentionPolicy::default()).await
    }

    /// [`Store::open_embedded`] with a retention policy.
    pub async fn open_embedded_with(
        path: &Path,
        retention: RetentionPolicy,
    ) -> Result<Store, StoreError> {
        Ok(Store::Embedded(EmbeddedStore::open(path, retention).await?))
    }

    /// Connects to ClickHouse at `url` (single server, default retention), creates `database`
    /// and its tables (migrations are recorded in `schema_migrations`) and detects the server
    /// version.
    pub async fn open_clickhouse(url: &str, database: &str) -> Result<Store, StoreError> {
        Self::open_clickhouse_with(url, &ClickHouseOptions::database(database)).await
    }

    /// Connects to ClickHouse at `url` with `options` (database, cluster, retention): detects
    /// what the server supports, creates the database and tables, applies migrations and sets
    /// retention `TTL`s where the server has them.
    pub async fn open_clickhouse_with(
        url: &str,
        options: &ClickHouseOptions,
    ) -> Result<Store, StoreError> {
        Ok(Store::ClickHouse(
            ClickHouseStore::open(url, options).await?,
        ))
    }

    /// The ClickHouse store, if that is the back-end in use.
    pub fn as_clickhouse(&self) -> Option<&ClickHouseStore> {
        match self {
            Store::ClickHouse(store) => Some(store),
            Store::Embedded(_) => None,
        }
    }

    /// The retention policy this store enforces (for the console and the 等保 report).
    pub fn retention(&self) -> &RetentionPolicy {
        dispatch!(self, s => s.retention())
    }

    /// `"embedded"` or `"clickhouse"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Embedded(_) => "embedded",
            Store::ClickHouse(_) => "clickhouse",
        }
    }

    /// Durably stores one agent batch: its events and the alerts they raised.
    ///
    /// Returns only after the data is durable (the collector acks the agent after this).
    /// Idempotent per `(agent_id, seq)`: if `seq` is not above the last stored seq of this
    /// agent, nothing is stored and [`WriteOutcome::Duplicate`] is returned. `agent_id` is the
    /// authenticated identity and is stored for every event, whatever the payload claims.
    pub async fn write_batch(
        &self,
        agent_id: &str,
        seq: u64,
        events: &[Event],
        alerts: &[Alert],
    ) -> Result<WriteOutcome, StoreError> {
        let outcomes = self
            .write_batches(&[BatchWrite {
                agent_id,
                seq,
                events,
                alerts,
            }])
            .await?;
        outcomes
            .first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt {
                column: "batches",
                reason: "no outcome for the batch written".to_owned(),
            })
    }

    /// Durably stores many batches (of one or many agents) at once: one outcome per batch, in
    /// order. Same guarantees as [`Store::write_batch`] for each batch, decided in order as if
    /// they were written one by one (a repeated `(agent_id, seq)` in the same call, or a seq
    /// not above one stored earlier in the call, is a [`WriteOutcome::Duplicate`]). ClickHouse
    /// sends at most five `INSERT`s per call whatever the number of batches (one per table
    /// plus the two bookkeeping marks); the embedded store writes them in one transaction.
    /// On error nothing is acked: every batch of the call must be sent again (those that
    /// did land are then reported as duplicates, or completed where a write was cut short).
    pub async fn write_batches(
        &self,
        batches: &[BatchWrite<'_>],
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        let prepared: Vec<PreparedBatch<'_>> = batches
            .iter()
            .map(|b| PreparedBatch {
                agent_id: b.agent_id,
                seq: b.seq,
                events: b.events,
                alerts: b.alerts.iter().map(AlertRecord::from_alert).collect(),
            })
            .collect();
        dispatch!(self, s => s.write_batches(&prepared).await)
    }

    /// Highest seq stored for `agent_id`, `None` if nothing was ever stored for it.
    pub async fn last_seq(&self, agent_id: &str) -> Result<Option<u64>, StoreError> {
        dispatch!(self, s => s.last_seq(agent_id).await)
    }

    /// Inserts or updates alerts by `alert_id`: the version with the highest `count`
    /// (then the latest `last_time`) wins, all its detection fields (`first_time` too).
    /// Triage state is never touched by this.
    pub async fn upsert_alerts(&self, alerts: &[Alert]) -> Result<(), StoreError> {
        let alerts: Vec<AlertRecord> = alerts.iter().map(AlertRecord::from_alert).collect();
        dispatch!(self, s => s.upsert_alerts(&alerts).await)
    }

    /// Alerts matching `q`, newest (`last_time`) first, then by id. Filters apply to each
    /// alert's newest version and latest triage.
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        dispatch!(self, s => s.alerts(q).await)
    }

    /// Sets the triage state of one alert (status, assignee, note).
    pub async fn set_alert_triage(
        &self,
        alert_id: &str,
        status: AlertStatus,
        assignee: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_alert_triage(alert_id, status, assignee, note).await)
    }

    /// Events matching `q`, newest first.
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        dispatch!(self, s => s.events(q).await)
    }

    /// Number of events matching `q` (its `limit`/`offset` are ignored).
    pub async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        dispatch!(self, s => s.count_events(q).await)
    }

    /// Events matching `q` per time bucket of `bucket_seconds` (aligned on the unix epoch, UTC),
    /// oldest first; empty buckets are left out and at most [`MAX_TIME_BUCKETS`] (the newest)
    /// are returned. `q.limit`/`q.offset` are ignored.
    pub async fn event_counts(
        &self,
        q: &EventQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        dispatch!(self, s => s.event_counts(q, bucket_seconds).await)
    }

    /// Events matching `q` per host, kind, source or any text/integer field, most frequent
    /// first (ties by key); `q.limit`/`q.offset` page the groups.
    pub async fn event_counts_by(
        &self,
        q: &EventQuery,
        group: &EventGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        dispatch!(self, s => s.event_counts_by(q, group).await)
    }

    /// For each host and capture source with events matching `q`: the earliest and latest
    /// event time and the count, ordered by host then source (`q.limit`/`q.offset` page them).
    /// The 等保 report uses it to show since when each host's logs are kept.
    pub async fn event_sources(&self, q: &EventQuery) -> Result<Vec<SourceSpan>, StoreError> {
        dispatch!(self, s => s.event_sources(q).await)
    }

    /// Alerts matching `q` per time bucket of their first event (`bucket_seconds`, aligned on
    /// the unix epoch), oldest first, at most [`MAX_TIME_BUCKETS`] (the newest).
    pub async fn alert_counts(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        dispatch!(self, s => s.alert_counts(q, bucket_seconds).await)
    }

    /// Alerts matching `q` per rule (label = rule title), host, level or triage status, most
    /// frequent first (ties by key); `q.limit`/`q.offset` page the groups.
    pub async fn alert_counts_by(
        &self,
        q: &AlertQuery,
        group: AlertGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        dispatch!(self, s => s.alert_counts_by(q, group).await)
    }

    /// The overview's counts of the alerts matching `q` in one pass: per level and time
    /// bucket of the first event (`bucket_seconds`, aligned on the unix epoch), per level
    /// and triage status, and the top rules and hosts (`q.limit`, default 100).
    pub async fn alert_overview(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<AlertOverview, StoreError> {
        dispatch!(self, s => s.alert_overview(q, bucket_seconds).await)
    }

    /// Inserts or updates an agent: the record with the latest `last_seen` wins, `first_seen`
    /// keeps the earliest value ever stored.
    pub async fn upsert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        dispatch!(self, s => s.upsert_agent(agent).await)
    }

    /// All known agents, ordered by hostname then id.
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        dispatch!(self, s => s.agents().await)
    }

    /// Baseline check results (written by [`Store::write_batch`] from `check` events).
    pub async fn check_results(&self, q: &CheckQuery) -> Result<Vec<CheckRecord>, StoreError> {
        dispatch!(self, s => s.check_results(q).await)
    }

    /// Enforces [`Store::retention`] at `now`: removes the whole partitions (UTC days for
    /// events and check results, months for alerts, the audit log and the batch bookkeeping)
    /// that end before each table's setting, counting today as the first day kept. Nothing
    /// newer is touched. ClickHouse drops the partitions (every version); the embedded store
    /// deletes the same rows. Run it daily; the report says what went (for the audit log).
    pub async fn apply_retention(&self, now_unix_nano: i64) -> Result<RetentionReport, StoreError> {
        dispatch!(self, s => s.apply_retention(now_unix_nano).await)
    }

    /// Appends one operator action to the append-only audit log.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        dispatch!(self, s => s.append_audit(entry).await)
    }

    /// Audit log entries matching `q`, newest first.
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        dispatch!(self, s => s.audit_log(q).await)
    }
}
