//! Retention: how long each kind of data is kept ([`RetentionPolicy`]), which tables each
//! setting covers, and the cutoffs both back-ends compute from it.
//!
//! Data is removed by whole partitions: ClickHouse drops day or month partitions (a metadata
//! operation on every server version); the embedded store deletes the rows those partitions
//! would hold, so both stores keep exactly the same data. A table partitioned by month keeps a
//! month until its last day is older than the setting, so a setting is always a minimum.

use serde::{Deserialize, Serialize};

use super::StoreError;

/// Default days of events kept (网络安全法 第二十一条: network logs kept at least six months).
pub const DEFAULT_RETENTION_DAYS: u32 = 186;
/// Default days of alerts kept (three years, leap day included).
pub const DEFAULT_ALERT_RETENTION_DAYS: u32 = 1096;
/// Default days of the operator audit log kept (three years, leap day included).
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 1096;
/// The longest six consecutive calendar months (July–December): the least an events
/// setting must keep to hold six months of logs whatever the date.
pub const SIX_MONTHS_DAYS: u32 = 184;

/// How long each kind of data is kept, in days (deserializes with defaults for missing
/// fields, e.g. from the collector's configuration file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Events, baseline check results and the per-batch dedup bookkeeping (default 186).
    pub events_days: u32,
    /// Alerts and their triage state (default 1096, three years).
    pub alerts_days: u32,
    /// The operator audit log (default 1096, three years).
    pub audit_log_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            events_days: DEFAULT_RETENTION_DAYS,
            alerts_days: DEFAULT_ALERT_RETENTION_DAYS,
            audit_log_days: DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

impl RetentionPolicy {
    /// Refuses a setting of zero days (it would delete today's data).
    pub fn validate(&self) -> Result<(), StoreError> {
        for (name, days) in [
            ("events_days", self.events_days),
            ("alerts_days", self.alerts_days),
            ("audit_log_days", self.audit_log_days),
        ] {
            if days == 0 {
                return Err(StoreError::InvalidQuery(format!(
                    "retention {name} must keep at least one day"
                )));
            }
        }
        Ok(())
    }

    /// Whether events are kept for at least six months whatever the date
    /// ([`SIX_MONTHS_DAYS`]), as 网络安全法 asks of network logs.
    pub fn meets_six_month_minimum(&self) -> bool {
        self.events_days >= SIX_MONTHS_DAYS
    }

    /// Every table retention applies to, with its setting and partition size.
    pub(crate) fn tables(&self) -> [RetainedTable; 5] {
        let t = |table, keep_days, granularity, time_column| RetainedTable {
            table,
            keep_days,
            granularity,
            time_column,
        };
        [
            t("events", self.events_days, Granularity::Day, "date"),
            t("check_results", self.events_days, Granularity::Day, "date"),
            t(
                "batches",
                self.events_days,
                Granularity::Month,
                "written_date",
            ),
            t("alerts", self.alerts_days, Granularity::Month, "first_date"),
            t("audit_log", self.audit_log_days, Granularity::Month, "date"),
        ]
    }
}

/// Partition size of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Granularity {
    /// `PARTITION BY toYYYYMMDD(...)`.
    Day,
    /// `PARTITION BY toYYYYMM(...)`.
    Month,
}

/// One table under retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetainedTable {
    /// Table name (the same in both back-ends).
    pub table: &'static str,
    /// Days kept.
    pub keep_days: u32,
    /// Partition size.
    pub granularity: Granularity,
    /// ClickHouse `Date` column the table is partitioned by (used by `TTL` too).
    pub time_column: &'static str,
}

/// Where retention cuts a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cutoff {
    /// First day (since 1970-01-01) of the oldest partition kept: everything before it goes.
    pub first_kept_partition_day: i64,
    /// Id of that partition (`YYYYMMDD` or `YYYYMM`): partitions with a smaller id go.
    pub partition_id: u32,
}

impl Cutoff {
    /// Unix nanoseconds at which kept data starts.
    pub(crate) fn unix_nano(self) -> i64 {
        self.first_kept_partition_day
            .saturating_mul(86_400)
            .saturating_mul(1_000_000_000)
    }
}

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// The cutoff of a table that keeps `keep_days` days (today included) at `now_unix_nano`.
pub(crate) fn cutoff(keep_days: u32, granularity: Granularity, now_unix_nano: i64) -> Cutoff {
    let today = now_unix_nano.div_euclid(NANOS_PER_DAY);
    let first_kept_day = today - i64::from(keep_days.max(1)) + 1;
    let (year, month, day) = civil_from_days(first_kept_day);
    match granularity {
        Granularity::Day => Cutoff {
            first_kept_partition_day: first_kept_day,
            partition_id: partition_number(year, month, Some(day)),
        },
        Granularity::Month => Cutoff {
            first_kept_partition_day: first_kept_day - i64::from(day) + 1,
            partition_id: partition_number(year, month, None),
        },
    }
}

/// `YYYYMMDD` or `YYYYMM` as ClickHouse names the partition (0 before year 0).
fn partition_number(year: i64, month: u32, day: Option<u32>) -> u32 {
    let year = u32::try_from(year.clamp(0, 9999)).unwrap_or(0);
    match day {
        Some(day) => year * 10_000 + month * 100 + day,
        None => year * 100 + month,
    }
}

/// Gregorian (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What [`crate::store::Store::apply_retention`] removed, table by table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetentionReport {
    /// One entry per table under retention.
    pub tables: Vec<TableRetention>,
}

impl RetentionReport {
    /// Rows removed from all tables together.
    pub fn removed_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.removed_rows).sum()
    }
}

/// What retention removed from one table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableRetention {
    /// Table name.
    pub table: String,
    /// Days the policy keeps.
    pub keep_days: u32,
    /// Data before this time (unix nanoseconds, a partition boundary) was removed.
    pub removed_before_unix_nano: i64,
    /// Partitions dropped (ClickHouse partition ids, e.g. `20240501` or `202405`; for the
    /// embedded store, the same ids of the days or months rows were deleted from).
    pub dropped_partitions: Vec<String>,
    /// Rows removed.
    pub removed_rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01 as days since 1970-01-01.
    const MAY_1_2024: i64 = 19_844;

    #[test]
    fn civil_dates_are_right_across_leap_years() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(MAY_1_2024), (2024, 5, 1));
        assert_eq!(civil_from_days(MAY_1_2024 - 62), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn cutoffs_keep_whole_partitions_and_today() {
        let now = (MAY_1_2024 + 3) * NANOS_PER_DAY + 5; // 2024-05-04, just after midnight
        let day = cutoff(2, Granularity::Day, now);
        assert_eq!(day.partition_id, 20_240_503);
        assert_eq!(day.first_kept_partition_day, MAY_1_2024 + 2);
        assert_eq!(day.unix_nano(), (MAY_1_2024 + 2) * NANOS_PER_DAY);
        // Keeping 10 days from May 4 starts on April 25: the April partition stays whole.
        let month = cutoff(10, Granularity::Month, now);
        assert_eq!(month.partition_id, 202_404);
        assert_eq!(month.first_kept_partition_day, MAY_1_2024 - 30);
        assert_eq!(cutoff(1, Granularity::Day, now).partition_id, 20_240_504);
    }

    #[test]
    fn policy_defaults_and_validation() {
        let policy = RetentionPolicy::default();
        assert_eq!(
            (
                policy.events_days,
                policy.alerts_days,
                policy.audit_log_days
            ),
            (186, 1096, 1096)
        );
        assert!(policy.meets_six_month_minimum());
        assert!(policy.validate().is_ok());
        let short = RetentionPolicy {
            events_days: 30,
            ..policy
        };
        assert!(!short.meets_six_month_minimum());
        let zero = RetentionPolicy {
            audit_log_days: 0,
            ..policy
        };
        assert!(matches!(zero.validate(), Err(StoreError::InvalidQuery(_))));
        let parsed: RetentionPolicy =
            serde_json::from_str(r#"{"events_days": 200}"#).expect("partial policy parses");
        assert_eq!(
            parsed,
            RetentionPolicy {
                events_days: 200,
                ..policy
            }
        );
        assert!(serde_json::from_str::<RetentionPolicy>(r#"{"event_days": 1}"#).is_err());
    }
}
