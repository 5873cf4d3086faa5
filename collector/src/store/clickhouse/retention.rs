//! Retention in ClickHouse: dropping whole partitions older than the policy, which works on
//! every server version (a metadata operation; 18.16 has no `TTL`). Where the server has
//! `TTL`, the same limits are also set as table `TTL`s at open (see `schema.rs`), so merges
//! drop expired parts even if `apply_retention` is not run.

use super::ClickHouseStore;
use super::schema::Layout;
use super::sql::{Bound, Statement, StatementId};
use crate::store::StoreError;
use crate::store::retention::{RetentionReport, TableRetention, cutoff};

/// Partitions of `table` (its local table on a cluster) older than `first_kept`, with their
/// row counts. On a cluster `cluster()` reads one replica per shard, so counts are not doubled.
fn expired_partitions(layout: &Layout, database: &str, table: &str, first_kept: u32) -> Statement {
    let parts = match layout {
        Layout::Single => "system.parts".to_owned(),
        Layout::Cluster(name) => format!("cluster('{name}', system, parts)"),
    };
    Statement::new(
        StatementId::RetentionPartitions,
        format!(
            "SELECT partition_id, sum(rows) FROM {parts}
 WHERE database = ? AND table = ? AND active
 GROUP BY partition_id HAVING toUInt32(partition_id) < ? ORDER BY partition_id"
        ),
    )
    .bind([
        Bound::Text(database.to_owned()),
        Bound::Text(layout.local(table)),
        Bound::Unsigned(u64::from(first_kept)),
    ])
}

fn drop_partition(layout: &Layout, database: &str, table: &str, partition: &str) -> Statement {
    let target = match layout {
        Layout::Single => table.to_owned(),
        Layout::Cluster(_) => format!("{database}.{}", layout.local(table)),
    };
    Statement::new(
        StatementId::DropPartition,
        format!(
            "ALTER TABLE {target}{} DROP PARTITION ID ?",
            layout.on_cluster()
        ),
    )
    .bind([Bound::Text(partition.to_owned())])
}

impl ClickHouseStore {
    /// See [`crate::store::Store::apply_retention`].
    pub async fn apply_retention(&self, now_unix_nano: i64) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        for table in self.retention.tables() {
            let cut = cutoff(table.keep_days, table.granularity, now_unix_nano);
            let expired: Vec<(String, u64)> = self
                .fetch_all(&expired_partitions(
                    &self.layout,
                    &self.database,
                    table.table,
                    cut.partition_id,
                ))
                .await?;
            let mut done = TableRetention {
                table: table.table.to_owned(),
                keep_days: table.keep_days,
                removed_before_unix_nano: cut.unix_nano(),
                ..TableRetention::default()
            };
            for (partition, rows) in expired {
                tracing::info!(table = table.table, partition = %partition, rows, "retention: dropping partition");
                self.execute(&drop_partition(
                    &self.layout,
                    &self.database,
                    table.table,
                    &partition,
                ))
                .await?;
                done.removed_rows += rows;
                done.dropped_partitions.push(partition);
            }
            report.tables.push(done);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_retention_reads_every_shard_and_drops_on_every_node() {
        let cluster = Layout::Cluster("c".into());
        assert!(
            expired_partitions(&cluster, "db", "events", 20_240_501)
                .render()
                .contains("FROM cluster('c', system, parts)")
        );
        assert_eq!(
            drop_partition(&cluster, "db", "events", "20240430").render(),
            "ALTER TABLE db.events_local ON CLUSTER c DROP PARTITION ID '20240430'"
        );
        assert_eq!(
            drop_partition(&Layout::Single, "db", "alerts", "202404").render(),
            "ALTER TABLE alerts DROP PARTITION ID '202404'"
        );
    }
}
