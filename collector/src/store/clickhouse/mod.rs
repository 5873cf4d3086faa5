//! The ClickHouse store (HTTP, RowBinary, `with_validation(false)` so 18.16 works).
//!
//! ClickHouse has no transactions, so exactly-once per `(agent_id, seq)` is built from a
//! `batches` bookkeeping table (persisted, so it survives collector restarts):
//! 1. the batch's state is read: a stored row with `seq >=` this one means duplicate;
//! 2. a `state = 0` ("being written") row is inserted before any data;
//! 3. events, check results and alerts are inserted;
//! 4. a `state = 1` ("stored") row is inserted; only then is the batch acked.
//!
//! If a write dies between 2 and 4 (collector crash, timeout, server restart) the agent sends
//! the batch again and step 1 finds the `state = 0` row: the events of that `(agent_id, seq)`
//! already present (searched only in the day partitions the batch covers) are skipped and
//! only the missing ones are inserted. Alerts are upserts, so inserting them again is harmless.
//!
//! Upserted tables (`alerts`, `alert_triage`, `agents`) are `ReplacingMergeTree` and are read
//! with `argMax(column, version) ... GROUP BY key`, never `FINAL` plus `WHERE`: on old servers
//! conditions can be moved to `PREWHERE` and evaluated before `FINAL` collapses the versions,
//! which filters on stale rows; `argMax` with `HAVING` is right on every version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ::clickhouse::{Client, Row};
use shaobing_wire::v1::Event;

use self::rows::{BATCH_STORED, BATCH_WRITING, BatchRow, CheckRow};
use self::schema::{MIGRATIONS, SCHEMA_MIGRATIONS_DDL};
use self::sql::{bind_all, event_conditions};
use super::event_row::{EVENT_COLUMNS, EventRow, check_records, date_days, datetime_seconds};
use super::records::{AlertRecord, EventQuery, EventRecord, effective_limit};
use super::{StoreError, WriteOutcome};

mod alerts;
mod fleet;
mod rows;
pub(crate) mod schema;
mod sql;

/// ClickHouse-backed store (see the module docs).
#[derive(Clone)]
pub struct ClickHouseStore {
    /// Boxed behind an `Arc`: the client is large and `Store` is passed around by value.
    client: Arc<Client>,
    database: String,
    server_version: String,
    /// Serializes writes per agent inside this process (one stream per agent is the norm;
    /// this covers an old stream still finishing when the agent reconnects).
    agent_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// Serializes the read-modify-write of `agents.first_seen`.
    agents_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("database", &self.database)
            .field("server_version", &self.server_version)
            .finish_non_exhaustive()
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A ClickHouse URL split into the address and the credentials it may carry
/// (`http://user:password@host:8123`; `%XX` escapes in them are decoded).
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    url: String,
    user: Option<String>,
    password: Option<String>,
}

impl Endpoint {
    fn parse(url: &str) -> Endpoint {
        let plain = Endpoint {
            url: url.to_owned(),
            user: None,
            password: None,
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return plain;
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return plain;
        };
        let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(percent_decode(password))),
            None => (userinfo, None),
        };
        Endpoint {
            url: format!("{scheme}://{host}"),
            user: Some(percent_decode(user)).filter(|u| !u.is_empty()),
            password,
        }
    }
}

/// Decodes `%XX` escapes; anything malformed is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `major.minor...` of `SELECT version()`.
fn major_version(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// Counts of each value, so repeated ids are matched one for one.
fn multiset(ids: Vec<String>) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Keeps the items whose id is not (or not as often) in `already`.
fn without_already_stored<T>(
    items: Vec<T>,
    mut already: HashMap<String, usize>,
    id: impl Fn(&T) -> &str,
) -> Vec<T> {
    items
        .into_iter()
        .filter(|item| match already.get_mut(id(item)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

impl ClickHouseStore {
    /// Connects, checks the server version, creates the database and applies migrations.
    pub async fn open(url: &str, database: &str) -> Result<Self, StoreError> {
        if !is_identifier(database) {
            return Err(StoreError::InvalidDatabaseName(database.to_owned()));
        }
        let endpoint = Endpoint::parse(url);
        let mut server = Client::default()
            .with_url(&endpoint.url)
            .with_validation(false);
        if let Some(user) = &endpoint.user {
            server = server.with_user(user);
        }
        if let Some(password) = &endpoint.password {
            server = server.with_password(password);
        }
        let server_version: String = server.query("SELECT version()").fetch_one().await?;
        if major_version(&server_version).is_none_or(|major| major < 18) {
            return Err(StoreError::UnsupportedServer(server_version));
        }
        server
            .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
            .execute()
            .await?;
        let client = server.with_database(database);
        let store = ClickHouseStore {
            client: Arc::new(client),
            database: database.to_owned(),
            server_version,
            agent_locks: Arc::default(),
            agents_lock: Arc::default(),
        };
        store.migrate().await?;
        tracing::info!(
            database,
            server_version = %store.server_version,
            "ClickHouse store opened"
        );
        Ok(store)
    }

    /// The server's `version()`, e.g. `18.16.1` or `24.8.4.13`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The database holding the tables.
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.client.query(SCHEMA_MIGRATIONS_DDL).execute().await?;
        let applied: Vec<u32> = self
            .client
            .query("SELECT DISTINCT version FROM schema_migrations")
            .fetch_all()
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
            for statement in (migration.statements)() {
                self.client.query(&statement).execute().await?;
            }
            self.client
                .query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
                .bind(migration.version)
                .bind(migration.name)
                .execute()
                .await?;
        }
        Ok(())
    }

    fn agent_lock(&self, agent_id: &str) -> Result<Arc<tokio::sync::Mutex<()>>, StoreError> {
        let mut locks = self.agent_locks.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(Arc::clone(locks.entry(agent_id.to_owned()).or_default()))
    }

    async fn insert_rows<T>(&self, table: &str, rows: &[T::Value<'_>]) -> Result<(), StoreError>
    where
        T: Row + ::clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<T>(table).await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    async fn mark_batch(
        &self,
        agent_id: &str,
        seq: u64,
        state: u8,
        event_count: usize,
        alert_count: usize,
    ) -> Result<(), StoreError> {
        let now = shaobing_wire::now_unix_nano();
        let row = BatchRow {
            agent_id,
            seq,
            state,
            event_count: u32::try_from(event_count).unwrap_or(u32::MAX),
            alert_count: u32::try_from(alert_count).unwrap_or(u32::MAX),
            written_ns: now,
            written_date: date_days(now),
        };
        self.insert_rows::<BatchRow<'_>>("batches", &[row]).await
    }

    /// Ids already stored for `(agent_id, seq)` in `table`, searched in the day partitions
    /// the batch's events fall in.
    async fn stored_ids(
        &self,
        table: &str,
        agent_id: &str,
        seq: u64,
        rows: &[EventRow],
    ) -> Result<HashMap<String, usize>, StoreError> {
        let (Some(first), Some(last)) = (
            rows.iter().map(|r| r.date).min(),
            rows.iter().map(|r| r.date).max(),
        ) else {
            return Ok(HashMap::new());
        };
        let ids: Vec<String> = self
            .client
            .query(&format!(
                "SELECT event_id FROM {table} WHERE date >= toDate(?) AND date <= toDate(?) \
                 AND agent_id = ? AND seq = ?"
            ))
            .bind(u64::from(first))
            .bind(u64::from(last))
            .bind(agent_id)
            .bind(seq)
            .fetch_all()
            .await?;
        Ok(multiset(ids))
    }

    /// See [`crate::store::Store::write_batch`] and the module docs for the protocol.
    pub async fn write_batch(
        &self,
        agent_id: &str,
        seq: u64,
        events: &[Event],
        alerts: &[AlertRecord],
    ) -> Result<WriteOutcome, StoreError> {
        let lock = self.agent_lock(agent_id)?;
        let _serialized = lock.lock().await;

        let (last_stored, stored_batches, interrupted): (u64, u64, u64) = self
            .client
            .query(
                "SELECT maxIf(seq, state = 1), countIf(state = 1), countIf(seq = ? AND state = 0) \
                 FROM batches WHERE agent_id = ?",
            )
            .bind(seq)
            .bind(agent_id)
            .fetch_one()
            .await?;
        if stored_batches > 0 && seq <= last_stored {
            return Ok(WriteOutcome::Duplicate);
        }

        let rows: Vec<EventRow> = events
            .iter()
            .map(|e| EventRow::from_event(agent_id, seq, e))
            .collect();
        let checks: Vec<CheckRow> = check_records(&rows)
            .into_iter()
            .map(|c| CheckRow {
                time: datetime_seconds(c.time_unix_nano),
                date: date_days(c.time_unix_nano),
                agent_id: c.agent_id,
                seq,
                hostname: c.hostname,
                check_id: c.check_id,
                title: c.title,
                status: c.status,
                observed: c.observed,
                expected: c.expected,
                time_ns: c.time_unix_nano,
                event_id: c.event_id,
            })
            .collect();
        let (new_rows, new_checks) = if interrupted > 0 {
            tracing::warn!(
                agent_id,
                seq,
                "resuming a batch whose earlier write was interrupted"
            );
            let stored_events = self.stored_ids("events", agent_id, seq, &rows).await?;
            let stored_checks = self
                .stored_ids("check_results", agent_id, seq, &rows)
                .await?;
            (
                without_already_stored(rows, stored_events, |r| &r.event_id),
                without_already_stored(checks, stored_checks, |c| &c.event_id),
            )
        } else {
            self.mark_batch(agent_id, seq, BATCH_WRITING, events.len(), alerts.len())
                .await?;
            (rows, checks)
        };
        self.insert_rows::<EventRow>("events", &new_rows).await?;
        self.insert_rows::<CheckRow>("check_results", &new_checks)
            .await?;
        self.upsert_alerts(alerts).await?;
        self.mark_batch(agent_id, seq, BATCH_STORED, events.len(), alerts.len())
            .await?;
        Ok(WriteOutcome::Stored)
    }

    /// See [`crate::store::Store::last_seq`].
    pub async fn last_seq(&self, agent_id: &str) -> Result<Option<u64>, StoreError> {
        let (last, stored): (u64, u64) = self
            .client
            .query("SELECT max(seq), count() FROM batches WHERE agent_id = ? AND state = 1")
            .bind(agent_id)
            .fetch_one()
            .await?;
        Ok((stored > 0).then_some(last))
    }

    /// See [`crate::store::Store::events`].
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let c = event_conditions(q)?;
        let names: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
        let sql = format!(
            "SELECT {} FROM events {} ORDER BY time_ns DESC, event_id DESC LIMIT {} OFFSET {}",
            names.join(", "),
            c.sql("WHERE"),
            effective_limit(q.limit),
            q.offset
        );
        let rows: Vec<EventRow> = bind_all(self.client.query(&sql), &c.binds)
            .fetch_all()
            .await?;
        Ok(rows.into_iter().map(EventRow::into_record).collect())
    }

    /// See [`crate::store::Store::count_events`].
    pub async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        let c = event_conditions(q)?;
        let sql = format!("SELECT count() FROM events {}", c.sql("WHERE"));
        Ok(bind_all(self.client.query(&sql), &c.binds)
            .fetch_one()
            .await?)
    }

    /// See [`crate::store::Store::apply_retention`]: drops whole day partitions of `events` and
    /// `check_results` (works on every ClickHouse version, unlike `TTL`).
    pub async fn apply_retention(&self, first_kept_day: u16) -> Result<(), StoreError> {
        for table in ["events", "check_results"] {
            let expired: Vec<String> = self
                .client
                .query(
                    "SELECT DISTINCT partition_id FROM system.parts \
                     WHERE database = ? AND table = ? AND active \
                     AND toUInt32(partition_id) < toYYYYMMDD(toDate(?))",
                )
                .bind(self.database.as_str())
                .bind(table)
                .bind(u64::from(first_kept_day))
                .fetch_all()
                .await?;
            for partition in expired {
                tracing::info!(table, partition = %partition, "retention: dropping partition");
                self.client
                    .query(&format!("ALTER TABLE {table} DROP PARTITION ID ?"))
                    .bind(partition.as_str())
                    .execute()
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_the_url() {
        assert_eq!(
            Endpoint::parse("http://shaobing:p%40ss:w@ch.local:8123/"),
            Endpoint {
                url: "http://ch.local:8123/".into(),
                user: Some("shaobing".into()),
                password: Some("p@ss:w".into()),
            }
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8123"),
            Endpoint {
                url: "http://127.0.0.1:8123".into(),
                user: None,
                password: None,
            }
        );
        assert_eq!(
            Endpoint::parse("https://ro@h/x@y").user.as_deref(),
            Some("ro")
        );
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn database_names_must_be_identifiers() {
        assert!(is_identifier("shaobing"));
        assert!(is_identifier("_t1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a;DROP"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn server_versions_parse() {
        assert_eq!(major_version("18.16.1"), Some(18));
        assert_eq!(major_version("24.8.4.13"), Some(24));
        assert_eq!(major_version("garbage"), None);
    }

    #[test]
    fn already_stored_ids_are_skipped_one_for_one() {
        let items = vec!["a", "b", "b", "c"];
        let stored = multiset(vec!["b".to_owned(), "c".to_owned()]);
        assert_eq!(without_already_stored(items, stored, |s| s), vec!["a", "b"]);
    }
}
