//! Retention in the embedded store: deletes the rows of the day or month partitions the
//! ClickHouse store would drop (same cutoffs, see `store/retention.rs`), in one transaction.

use rusqlite::params;

use super::EmbeddedStore;
use super::schema::AUDIT_LOG_NO_DELETE;
use crate::store::StoreError;
use crate::store::retention::{Granularity, RetentionReport, TableRetention, cutoff};

/// The unix-nanosecond column the partitions of `table` are cut on here.
fn time_column(table: &str) -> &'static str {
    match table {
        "alerts" => "first_time_ns",
        "batches" => "stored_ns",
        _ => "time_ns",
    }
}

impl EmbeddedStore {
    /// See [`crate::store::Store::apply_retention`].
    pub async fn apply_retention(&self, now_unix_nano: i64) -> Result<RetentionReport, StoreError> {
        let tables = self.retention.tables();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let mut report = RetentionReport::default();
            for table in tables {
                let cut = cutoff(table.keep_days, table.granularity, now_unix_nano);
                let column = time_column(table.table);
                let format = match table.granularity {
                    Granularity::Day => "%Y%m%d",
                    Granularity::Month => "%Y%m",
                };
                let mut done = TableRetention {
                    table: table.table.to_owned(),
                    keep_days: table.keep_days,
                    removed_before_unix_nano: cut.unix_nano(),
                    ..TableRetention::default()
                };
                {
                    let mut partitions = tx.prepare(&format!(
                        "SELECT strftime('{format}', {column} / 1000000000, 'unixepoch') AS p,
                            count(*) FROM {} WHERE {column} < ?1 GROUP BY p ORDER BY p",
                        table.table
                    ))?;
                    let rows = partitions.query_map(params![cut.unix_nano()], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                    })?;
                    for row in rows {
                        let (partition, count) = row?;
                        done.dropped_partitions.push(partition);
                        done.removed_rows += count as u64;
                    }
                }
                if done.removed_rows == 0 {
                    report.tables.push(done);
                    continue;
                }
                let audit = table.table == "audit_log";
                if audit {
                    tx.execute_batch("DROP TRIGGER audit_log_no_delete")?;
                }
                tx.execute(
                    &format!("DELETE FROM {} WHERE {column} < ?1", table.table),
                    params![cut.unix_nano()],
                )?;
                if audit {
                    tx.execute_batch(AUDIT_LOG_NO_DELETE)?;
                }
                tracing::info!(
                    table = table.table,
                    rows = done.removed_rows,
                    partitions = ?done.dropped_partitions,
                    "retention: deleted expired partitions"
                );
                report.tables.push(done);
            }
            tx.commit()?;
            Ok(report)
        })
        .await
    }
}
