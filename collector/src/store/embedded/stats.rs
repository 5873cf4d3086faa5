//! Event counts in the embedded store: per time bucket, per value of a column, and the
//! first/last event of each host and source.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::{EmbeddedStore, event_conditions};
use crate::store::StoreError;
use crate::store::records::{
    EventGroup, EventQuery, GroupCount, MAX_TIME_BUCKETS, SourceSpan, TimeBucketCount,
    bucket_nanos, effective_limit, event_group_column,
};

/// Runs a `(bucket, count)` query.
pub(super) fn time_buckets(
    conn: &Connection,
    sql: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<TimeBucketCount>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok(TimeBucketCount {
            start_unix_nano: row.get(0)?,
            count: row.get::<_, i64>(1)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Runs a `(key, label, count)` query.
pub(super) fn group_counts(
    conn: &Connection,
    sql: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<GroupCount>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params_from_iter(params), |row| {
        Ok(GroupCount {
            key: row.get(0)?,
            label: row.get(1)?,
            count: row.get::<_, i64>(2)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl EmbeddedStore {
    /// See [`crate::store::Store::event_counts`].
    pub async fn event_counts(
        &self,
        q: &EventQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        let bucket = bucket_nanos(bucket_seconds)?;
        let c = event_conditions(q)?;
        let sql = format!(
            "SELECT bucket, n FROM (SELECT (time_ns / {bucket}) * {bucket} AS bucket,
                count(*) AS n FROM events {} GROUP BY bucket ORDER BY bucket DESC
                LIMIT {MAX_TIME_BUCKETS}) ORDER BY bucket",
            c.where_sql()
        );
        self.run(move |conn| time_buckets(conn, &sql, c.params))
            .await
    }

    /// See [`crate::store::Store::event_counts_by`].
    pub async fn event_counts_by(
        &self,
        q: &EventQuery,
        group: &EventGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        let column = event_group_column(group)?;
        let c = event_conditions(q)?;
        let sql = format!(
            "SELECT CAST({column} AS TEXT) AS key, '', count(*) AS n FROM events {}
             GROUP BY key ORDER BY n DESC, key LIMIT {} OFFSET {}",
            c.where_sql(),
            effective_limit(q.limit),
            q.offset
        );
        self.run(move |conn| group_counts(conn, &sql, c.params))
            .await
    }

    /// See [`crate::store::Store::event_sources`].
    pub async fn event_sources(&self, q: &EventQuery) -> Result<Vec<SourceSpan>, StoreError> {
        let c = event_conditions(q)?;
        let sql = format!(
            "SELECT hostname, source, min(time_ns), max(time_ns), count(*) FROM events {}
             GROUP BY hostname, source ORDER BY hostname, source LIMIT {} OFFSET {}",
            c.where_sql(),
            effective_limit(q.limit),
            q.offset
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(c.params), |row| {
                Ok(SourceSpan {
                    hostname: row.get(0)?,
                    source: row.get(1)?,
                    first_unix_nano: row.get(2)?,
                    last_unix_nano: row.get(3)?,
                    count: row.get::<_, i64>(4)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
