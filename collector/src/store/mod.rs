//! Storage: the only module of Shaobing that talks to a database.
//!
//! Two back-ends behind one [`Store`] (enum dispatch, no trait objects):
//! - [`EmbeddedStore`]: one SQLite file in the data directory, the default when no ClickHouse
//!   URL is configured (demo and small sites need nothing else);
//! - [`ClickHouseStore`]: ClickHouse over HTTP, Debian 12's 18.16 up to current releases.
//!
//! Both pass the same test suite (`collector/tests/store_suite.rs`). What each table holds and
//! why it is laid out that way is documented in `deploy/clickhouse/README.md`.
//!
//! Delivery contract: [`Store::write_batch`] returns only once the batch is durable and is
//! idempotent per `(agent_id, seq)`: the collector acks the agent after it, and a batch that is
//! sent again (lost ack, reconnect, collector restart) is reported as
//! [`WriteOutcome::Duplicate`] and stored nothing.

mod clickhouse;
mod embedded;
mod event_row;
mod records;

use std::path::Path;

use shaobing_detect::Alert;
use shaobing_wire::v1::Event;

pub use self::clickhouse::ClickHouseStore;
pub use self::clickhouse::schema::schema_script as clickhouse_schema_script;
pub use self::embedded::EmbeddedStore;
pub use self::records::{
    AgentRecord, AlertQuery, AlertRecord, AlertStatus, AuditEntry, AuditQuery, CheckQuery,
    CheckRecord, EventQuery, EventRecord, FieldFilter, MAX_QUERY_LIMIT,
};

/// Days of events kept by default (网络安全法: network logs kept at least six months).
pub const DEFAULT_RETENTION_DAYS: u16 = 186;

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

/// Result of [`Store::write_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The batch is now durably stored.
    Stored,
    /// This `(agent_id, seq)` (or a later seq) was stored before: nothing was written.
    Duplicate,
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
    /// Opens (creating if needed) the SQLite store at `path` and applies pending migrations.
    pub async fn open_embedded(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::Embedded(EmbeddedStore::open(path).await?))
    }

    /// Connects to ClickHouse at `url`, creates `database` and its tables (migrations are
    /// recorded in `schema_migrations`) and detects the server version.
    pub async fn open_clickhouse(url: &str, database: &str) -> Result<Store, StoreError> {
        Ok(Store::ClickHouse(
            ClickHouseStore::open(url, database).await?,
        ))
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
        let alerts: Vec<AlertRecord> = alerts.iter().map(AlertRecord::from_alert).collect();
        dispatch!(self, s => s.write_batch(agent_id, seq, events, &alerts).await)
    }

    /// Highest seq stored for `agent_id`, `None` if nothing was ever stored for it.
    pub async fn last_seq(&self, agent_id: &str) -> Result<Option<u64>, StoreError> {
        dispatch!(self, s => s.last_seq(agent_id).await)
    }

    /// Inserts or updates alerts by `alert_id`: the version with the highest `count`
    /// (then the latest `last_time`) wins. Triage state is never touched by this.
    pub async fn upsert_alerts(&self, alerts: &[Alert]) -> Result<(), StoreError> {
        let alerts: Vec<AlertRecord> = alerts.iter().map(AlertRecord::from_alert).collect();
        dispatch!(self, s => s.upsert_alerts(&alerts).await)
    }

    /// Alerts matching `q`, newest (`last_time`) first.
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

    /// Deletes events and check results of UTC days older than `keep_days` before `now`
    /// (ClickHouse: drops whole day partitions). Alerts, agents, the seq bookkeeping and the
    /// audit log are kept. The law asks for at least six months of logs: the collector's
    /// default is [`DEFAULT_RETENTION_DAYS`].
    pub async fn apply_retention(
        &self,
        keep_days: u16,
        now_unix_nano: i64,
    ) -> Result<(), StoreError> {
        if keep_days == 0 {
            return Err(StoreError::InvalidQuery(
                "retention must keep at least one day".to_owned(),
            ));
        }
        let first_kept_day = event_row::date_days(now_unix_nano).saturating_sub(keep_days - 1);
        dispatch!(self, s => s.apply_retention(first_kept_day).await)
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
