//! The ClickHouse store (HTTP, RowBinary, `with_validation(false)` so 18.16 works), on one
//! server or on a cluster (replicated local tables behind `Distributed` tables).
//!
//! - `compat.rs`: what differs between server versions, detected at open;
//! - `schema.rs`: DDL, migrations and retention `TTL`s for both layouts;
//! - `sql.rs`: every statement is a named, pure, renderable [`Statement`];
//! - `write.rs`: exactly-once batch writes without transactions;
//! - `events.rs`, `alerts.rs`, `alert_page.rs`, `fleet.rs`: reads; `retention.rs`: dropping
//!   old partitions.
//!
//! Upserted tables (`alerts`, `alert_triage`, `agents`) are `ReplacingMergeTree` and are read
//! with `argMax(column, version) ... GROUP BY key`, never `FINAL` plus `WHERE`: on old servers
//! conditions can be moved to `PREWHERE` and evaluated before `FINAL` collapses the versions,
//! which filters on stale rows; `argMax` with `HAVING` is right on every version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ::clickhouse::{Client, Row, RowOwned, RowRead, RowWrite};
use serde::{Deserialize, Serialize};

use self::compat::ServerCapabilities;
use self::endpoint::{Endpoint, is_identifier};
use self::schema::{Layout, MIGRATIONS};
use self::sql::{Bound, RecordedStatement, Statement, StatementId, StatementLog};
use super::StoreError;
use super::retention::RetentionPolicy;

mod alert_page;
mod alerts;
pub(crate) mod compat;
mod endpoint;
mod events;
mod fleet;
mod retention;
mod rows;
pub(crate) mod schema;
pub(crate) mod sql;
mod write;

/// How to open a ClickHouse store (deserializes with defaults for missing fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseOptions {
    /// Database holding the tables (created if missing). Default `shaobing`.
    pub database: String,
    /// Cluster name from the servers' `remote_servers`: tables are created `ON CLUSTER` as
    /// replicated local tables plus `Distributed` tables, and inserts are synchronous.
    /// `None` (default): one server, plain `MergeTree` tables.
    pub cluster: Option<String>,
    /// Cluster only: replicas that must have an insert before it returns (`insert_quorum`).
    /// Set it to the replica count so an acked batch survives losing a node.
    pub insert_quorum: Option<u32>,
    /// How long data is kept (`TTL` where the server has it; see `Store::apply_retention`).
    pub retention: RetentionPolicy,
    /// Compression of the HTTP bodies exchanged with the server. `lz4` (default) for a
    /// server across a network; `none` when it is on the same host, where compressing only
    /// costs CPU on both sides (see `deploy/clickhouse/README.md`).
    pub compression: WireCompression,
    /// Keeps every statement sent, for compatibility tests ([`ClickHouseStore::recorded`]).
    /// Never in production: the log grows without bound.
    #[serde(skip)]
    pub record_statements: bool,
}

impl Default for ClickHouseOptions {
    fn default() -> Self {
        ClickHouseOptions {
            database: "shaobing".to_owned(),
            cluster: None,
            insert_quorum: None,
            retention: RetentionPolicy::default(),
            compression: WireCompression::default(),
            record_statements: false,
        }
    }
}

/// Compression of the HTTP bodies sent to and received from ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireCompression {
    /// LZ4 frames (ClickHouse's native compression).
    #[default]
    Lz4,
    /// Plain bodies.
    None,
}

impl ClickHouseOptions {
    /// Defaults with another database name.
    pub fn database(database: &str) -> Self {
        ClickHouseOptions {
            database: database.to_owned(),
            ..ClickHouseOptions::default()
        }
    }
}

/// ClickHouse-backed store (see the module docs).
#[derive(Clone)]
pub struct ClickHouseStore {
    /// Boxed behind an `Arc`: the client is large and `Store` is passed around by value.
    client: Arc<Client>,
    database: String,
    layout: Layout,
    capabilities: ServerCapabilities,
    retention: RetentionPolicy,
    /// Serializes writes per agent inside this process (one stream per agent is the norm;
    /// this covers an old stream still finishing when the agent reconnects).
    agent_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Serializes the read-modify-write of `agents.first_seen`.
    agents_lock: Arc<tokio::sync::Mutex<()>>,
    log: Option<Arc<StatementLog>>,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("database", &self.database)
            .field("layout", &self.layout)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl ClickHouseStore {
    /// Connects, detects the server's capabilities, creates the database and tables, applies
    /// migrations and sets retention `TTL`s where the server has them.
    pub async fn open(url: &str, options: &ClickHouseOptions) -> Result<Self, StoreError> {
        let database = options.database.as_str();
        if !is_identifier(database) {
            return Err(StoreError::InvalidDatabaseName(database.to_owned()));
        }
        options.retention.validate()?;
        let layout = match &options.cluster {
            Some(name) if !is_identifier(name) => {
                return Err(StoreError::InvalidQuery(format!(
                    "invalid ClickHouse cluster name {name:?}: use letters, digits and '_' only"
                )));
            }
            Some(name) => Layout::Cluster(name.clone()),
            None => Layout::Single,
        };
        let endpoint = Endpoint::parse(url);
        let mut server = Client::default()
            .with_url(&endpoint.url)
            .with_validation(false)
            .with_compression(match options.compression {
                WireCompression::Lz4 => clickhouse::Compression::Lz4,
                WireCompression::None => clickhouse::Compression::None,
            });
        if let Some(user) = &endpoint.user {
            server = server.with_user(user);
        }
        if let Some(password) = &endpoint.password {
            server = server.with_password(password);
        }
        let log = options
            .record_statements
            .then(|| Arc::new(StatementLog::default()));
        let probe = compat::probe();
        if let Some(log) = &log {
            log.push(probe.id(), probe.render(), probe.settings());
        }
        let capabilities = ServerCapabilities::from_probe(
            probe.query(&server).fetch_one::<compat::ProbeRow>().await?,
        )?;
        if let Layout::Cluster(_) = layout {
            // The dedup protocol reads its own writes: inserts return once the shards have them.
            server = server.with_setting(capabilities.sync_insert_setting(), "1");
            if let Some(quorum) = options.insert_quorum {
                server = server.with_setting("insert_quorum", quorum.to_string());
            }
        }
        let mut store = ClickHouseStore {
            client: Arc::new(server),
            database: database.to_owned(),
            layout,
            capabilities,
            retention: options.retention,
            agent_locks: Arc::default(),
            agents_lock: Arc::default(),
            log,
        };
        store
            .execute(&schema::create_database(&store.layout, database))
            .await?;
        store.client = Arc::new(store.client.as_ref().clone().with_database(database));
        store.migrate().await?;
        store.set_ttl().await?;
        tracing::info!(
            database,
            server_version = %store.capabilities.version,
            layout = ?store.layout,
            ttl = store.capabilities.ttl,
            "ClickHouse store opened"
        );
        Ok(store)
    }

    /// The server's `version()`, e.g. `18.16.1` or `24.8.4.13`.
    pub fn server_version(&self) -> &str {
        &self.capabilities.version
    }

    /// What the server supports, as detected at open.
    pub fn capabilities(&self) -> &ServerCapabilities {
        &self.capabilities
    }

    /// The database holding the tables.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The cluster the tables are spread over, `None` on a single server.
    pub fn cluster(&self) -> Option<&str> {
        match &self.layout {
            Layout::Single => None,
            Layout::Cluster(name) => Some(name),
        }
    }

    /// The retention policy this store enforces.
    pub fn retention(&self) -> &RetentionPolicy {
        &self.retention
    }

    /// Every statement sent so far, in order, when opened with
    /// [`ClickHouseOptions::record_statements`] (else empty).
    pub fn recorded(&self) -> Vec<RecordedStatement> {
        self.log.as_ref().map(|l| l.snapshot()).unwrap_or_default()
    }

    fn record(&self, statement: &Statement) {
        if let Some(log) = &self.log {
            log.push(statement.id(), statement.render(), statement.settings());
        }
    }

    /// Runs a statement that returns nothing.
    async fn execute(&self, statement: &Statement) -> Result<(), StoreError> {
        self.record(statement);
        let started = std::time::Instant::now();
        statement.query(&self.client).execute().await?;
        trace_timing(statement.id(), started, 0);
        Ok(())
    }

    /// Runs a query and reads all its rows.
    async fn fetch_all<T: RowOwned + RowRead>(
        &self,
        statement: &Statement,
    ) -> Result<Vec<T>, StoreError> {
        self.record(statement);
        let started = std::time::Instant::now();
        let rows: Vec<T> = statement.query(&self.client).fetch_all().await?;
        trace_timing(statement.id(), started, rows.len());
        Ok(rows)
    }

    /// Runs a query that returns exactly one row.
    async fn fetch_one<T: RowOwned + RowRead>(
        &self,
        statement: &Statement,
    ) -> Result<T, StoreError> {
        self.record(statement);
        let started = std::time::Instant::now();
        let row = statement.query(&self.client).fetch_one().await?;
        trace_timing(statement.id(), started, 1);
        Ok(row)
    }

    /// One RowBinary `INSERT` of `rows` into `table` (nothing when there are no rows).
    async fn insert_rows<T>(
        &self,
        id: StatementId,
        table: &str,
        rows: &[T::Value<'_>],
    ) -> Result<(), StoreError>
    where
        T: Row + RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(log) = &self.log {
            log.push(id, sql::insert_values_sql(table, rows)?, &[]);
        }
        let started = std::time::Instant::now();
        let mut insert = self.client.insert::<T>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        trace_timing(id, started, rows.len());
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.execute(&schema::create_migrations_table(
            &self.layout,
            &self.database,
        ))
        .await?;
        let applied: Vec<u32> = self
            .fetch_all(&Statement::new(
                StatementId::MigrationsApplied,
                "SELECT DISTINCT version FROM schema_migrations ORDER BY version",
            ))
            .await?;
        for migration in MIGRATIONS {
            if applied.contains(&migration.version) {
                continue;
            }
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "ClickHouse store: applying migration"
            );
            for statement in (migration.statements)(&self.layout, &self.database) {
                self.execute(&Statement::new(StatementId::MigrationStep, statement))
                    .await?;
            }
            self.execute(
                &Statement::new(
                    StatementId::RecordMigration,
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())",
                )
                .bind([
                    Bound::Unsigned(u64::from(migration.version)),
                    Bound::Text(migration.name.to_owned()),
                ]),
            )
            .await?;
        }
        Ok(())
    }

    /// Brings the tables' `TTL` to the retention policy (servers with `TTL` only).
    async fn set_ttl(&self) -> Result<(), StoreError> {
        if !self.capabilities.ttl {
            return Ok(());
        }
        let current: Vec<(String, String)> = self
            .fetch_all(&schema::current_ttl(
                &self.layout,
                &self.database,
                &self.retention,
            ))
            .await?;
        let current: HashMap<String, String> = current.into_iter().collect();
        for statement in schema::ttl_statements(
            &self.capabilities,
            &self.layout,
            &self.database,
            &self.retention,
            &current,
        ) {
            tracing::info!(statement = %statement.render(), "ClickHouse store: setting retention TTL");
            self.execute(&statement).await?;
        }
        Ok(())
    }

    fn agent_lock(&self, agent_id: &str) -> Result<Arc<tokio::sync::Mutex<()>>, StoreError> {
        let mut locks = self.agent_locks.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(Arc::clone(locks.entry(agent_id.to_owned()).or_default()))
    }
}

/// Logs how long a statement took (at `trace` level: `RUST_LOG=shaobing_collector::store=trace`).
fn trace_timing(id: StatementId, started: std::time::Instant, rows: usize) {
    tracing::trace!(
        statement = id.name(),
        rows,
        elapsed_ms = started.elapsed().as_secs_f64() * 1_000.0,
        "ClickHouse statement"
    );
}

/// What a first start on a server with `capabilities` sends to set retention `TTL`s on a
/// single node: the query reading the tables' current `TTL`, then the `ALTER`s (none on
/// servers without `TTL`, e.g. 18.16). For review and for the compatibility test, which runs
/// them on current ClickHouse.
pub fn ttl_statements(
    capabilities: &ServerCapabilities,
    retention: &RetentionPolicy,
    database: &str,
) -> Vec<Statement> {
    let mut statements = vec![schema::current_ttl(&Layout::Single, database, retention)];
    statements.extend(schema::ttl_statements(
        capabilities,
        &Layout::Single,
        database,
        retention,
        &HashMap::new(),
    ));
    statements
}
