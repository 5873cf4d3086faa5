//! Enforces the store's retention policy while the collector serves: runs
//! [`Store::apply_retention`] once at start and then every [`RetentionSchedule::every`]
//! (default hourly: partitions are whole days or months, so an hour late is harmless), logs
//! what each run removed, and counts runs, dropped partitions, removed rows and failures in
//! [`Metrics`]. A failed run (ClickHouse down, disk full) is logged and retried at the next
//! tick; it never stops the collector.
//!
//! The policy itself ([`crate::store::RetentionPolicy`]: events 186 days, alerts and the
//! audit log three years by default) comes from the command line through
//! [`crate::store::StoreConfig`] and is shown in the console's compliance page.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::metrics::Metrics;
use crate::store::{RetentionReport, Store, StoreError};

/// When retention runs.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSchedule {
    /// Time between two runs (the first is at start).
    pub every: Duration,
}

impl Default for RetentionSchedule {
    fn default() -> Self {
        RetentionSchedule {
            every: Duration::from_secs(3600),
        }
    }
}

/// Runs retention on `store` forever on `schedule` (spawn it; dropping the task stops it).
pub async fn run(store: Store, metrics: Arc<Metrics>, schedule: RetentionSchedule) {
    let mut tick = tokio::time::interval(schedule.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Errors are counted and logged inside; the next tick retries.
        let _ = run_once(&store, &metrics).await;
    }
}

/// One retention run now: applies the policy, logs and counts the outcome.
pub async fn run_once(store: &Store, metrics: &Metrics) -> Result<RetentionReport, StoreError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    metrics.retention_runs.fetch_add(1, Ordering::Relaxed);
    match store.apply_retention(now).await {
        Ok(report) => {
            let partitions: usize = report
                .tables
                .iter()
                .map(|t| t.dropped_partitions.len())
                .sum();
            metrics
                .retention_partitions_dropped
                .fetch_add(partitions as u64, Ordering::Relaxed);
            metrics
                .retention_rows_removed
                .fetch_add(report.removed_rows(), Ordering::Relaxed);
            for table in report.tables.iter().filter(|t| t.removed_rows > 0) {
                tracing::info!(
                    table = %table.table,
                    keep_days = table.keep_days,
                    partitions = ?table.dropped_partitions,
                    rows = table.removed_rows,
                    "retention removed expired data"
                );
            }
            Ok(report)
        }
        Err(error) => {
            metrics.retention_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "retention run failed; retrying at the next run");
            Err(error)
        }
    }
}
