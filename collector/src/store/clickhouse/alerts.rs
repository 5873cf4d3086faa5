//! Alerts in ClickHouse: detection versions in `alerts` (`ReplacingMergeTree(version)`,
//! version = count) and operator triage in `alert_triage`, joined at read time.
//!
//! Triage lives in its own table so that detection never has to read-modify-write an alert:
//! a re-raised alert is a plain insert and cannot overwrite a status set meanwhile.
//!
//! The list and its filters are in `alert_page.rs`; the counts here are built on the same
//! filtered set ([`filtered_alerts`]): the newest version of each alert (`argMax ... GROUP
//! BY alert_id`, filters in `HAVING`), joined with its triage only when the query needs it.

use super::ClickHouseStore;
use super::alert_page::{filtered_alerts, filtered_alerts_for_counts};
use super::events::{group_counts, oldest_first};
use super::rows::{AlertReadRow, AlertRow, TriageRow};
use super::schema::Layout;
use super::sql::{Bound, Statement, StatementId};
use crate::store::StoreError;
use crate::store::event_row::{date_days, datetime_seconds};
use crate::store::records::{
    AlertGroup, AlertOverview, AlertQuery, AlertRecord, AlertStatus, GroupCount, MAX_TIME_BUCKETS,
    OverviewRow, TimeBucketCount, bucket_nanos, effective_limit,
};

/// Rows `upsert_alerts` and `write_batches` insert for `alerts`.
pub(super) fn alert_rows(alerts: &[AlertRecord]) -> Vec<AlertRow<'_>> {
    alerts
        .iter()
        .map(|a| AlertRow {
            alert_id: &a.alert_id,
            rule_id: &a.rule_id,
            rule_title: &a.rule_title,
            level: &a.level,
            kind: &a.kind,
            tags: &a.tags,
            mlps: &a.mlps,
            agent_id: &a.agent_id,
            hostname: &a.hostname,
            first_time_ns: a.first_time_unix_nano,
            last_time_ns: a.last_time_unix_nano,
            first_time: datetime_seconds(a.first_time_unix_nano),
            last_time: datetime_seconds(a.last_time_unix_nano),
            first_date: date_days(a.first_time_unix_nano),
            count: a.count,
            group_key: &a.group_key,
            event_ids: &a.event_ids,
            summary: &a.summary,
            version: a.count,
        })
        .collect()
}

/// Alerts per time bucket of their first event: the newest [`MAX_TIME_BUCKETS`] buckets.
pub(super) fn alert_counts_by_time(
    q: &AlertQuery,
    layout: &Layout,
    bucket_seconds: u32,
) -> Result<Statement, StoreError> {
    let bucket = bucket_nanos(bucket_seconds)?;
    let (source, binds) = filtered_alerts(q, layout, false);
    Ok(Statement::new(
        StatementId::AlertCountsByTime,
        format!(
            "SELECT intDiv(a_first_time_ns, {bucket}) * {bucket} AS bucket, count() FROM ({source})
 GROUP BY bucket ORDER BY bucket DESC LIMIT {MAX_TIME_BUCKETS}"
        ),
    )
    .bind(binds))
}

/// Alerts per rule, host, level or status, most frequent first.
pub(super) fn alert_counts_by_group(
    q: &AlertQuery,
    layout: &Layout,
    group: AlertGroup,
) -> Statement {
    let (key, label, triage) = match group {
        AlertGroup::Rule => ("a_rule_id", "any(a_rule_title)", false),
        AlertGroup::Host => ("a_hostname", "''", false),
        AlertGroup::Level => ("a_level", "''", false),
        AlertGroup::Status => ("if(t_status = '', 'open', t_status)", "''", true),
    };
    let (source, binds) = filtered_alerts(q, layout, triage);
    Statement::new(
        StatementId::AlertCountsByGroup,
        format!(
            "SELECT {key} AS key, {label} AS label, count() AS n FROM ({source})
 GROUP BY key ORDER BY n DESC, key LIMIT {} OFFSET {}",
            effective_limit(q.limit),
            q.offset
        ),
    )
    .bind(binds)
}

/// Every count of the overview in one pass over the newest versions: each alert is
/// fanned out (`ARRAY JOIN`) into its level × bucket, level × status, rule and host keys.
pub(super) fn alert_overview(
    q: &AlertQuery,
    layout: &Layout,
    bucket_seconds: u32,
) -> Result<Statement, StoreError> {
    let bucket = bucket_nanos(bucket_seconds)?;
    let (source, binds) = filtered_alerts_for_counts(q, layout, true);
    Ok(Statement::new(
        StatementId::AlertOverview,
        format!(
            "SELECT tupleElement(g, 1) AS part, tupleElement(g, 2) AS key, tupleElement(g, 3) AS sub,
    any(a_rule_title) AS label, count() AS n
 FROM (SELECT a_level, a_first_time_ns, a_rule_id, a_rule_title, a_hostname,
        if(t_status = '', 'open', t_status) AS st FROM ({source}))
 ARRAY JOIN [('t', a_level, toString(intDiv(a_first_time_ns, {bucket}) * {bucket})),
    ('s', a_level, st), ('r', a_rule_id, ''), ('h', a_hostname, '')] AS g
 GROUP BY part, key, sub
 ORDER BY part, key, sub"
        ),
    )
    .bind(binds))
}

fn alert_exists(alert_id: &str) -> Statement {
    Statement::new(
        StatementId::AlertExists,
        "SELECT count() FROM alerts WHERE alert_id = ?",
    )
    .bind([Bound::Text(alert_id.to_owned())])
}

pub(super) fn alert_record(r: AlertReadRow) -> Result<AlertRecord, StoreError> {
    let status = AlertStatus::from_name(&r.status).ok_or_else(|| StoreError::Corrupt {
        column: "alert_triage.status",
        reason: format!("unknown status {:?}", r.status),
    })?;
    Ok(AlertRecord {
        alert_id: r.alert_id,
        rule_id: r.rule_id,
        rule_title: r.rule_title,
        level: r.level,
        kind: r.kind,
        tags: r.tags,
        mlps: r.mlps,
        agent_id: r.agent_id,
        hostname: r.hostname,
        first_time_unix_nano: r.first_time_ns,
        last_time_unix_nano: r.last_time_ns,
        count: r.count,
        group_key: r.group_key,
        event_ids: r.event_ids,
        summary: r.summary,
        status,
        assignee: r.assignee,
        note: r.note,
    })
}

impl ClickHouseStore {
    /// See [`crate::store::Store::upsert_alerts`]: appends a version; reads keep the highest.
    pub async fn upsert_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        self.insert_rows::<AlertRow<'_>>(StatementId::InsertAlerts, "alerts", &alert_rows(alerts))
            .await
    }

    /// See [`crate::store::Store::alert_counts`].
    pub async fn alert_counts(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        let rows = self
            .fetch_all(&alert_counts_by_time(q, &self.layout, bucket_seconds)?)
            .await?;
        Ok(oldest_first(rows))
    }

    /// See [`crate::store::Store::alert_counts_by`].
    pub async fn alert_counts_by(
        &self,
        q: &AlertQuery,
        group: AlertGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        let rows = self
            .fetch_all(&alert_counts_by_group(q, &self.layout, group))
            .await?;
        Ok(group_counts(rows))
    }

    /// See [`crate::store::Store::alert_overview`].
    pub async fn alert_overview(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<AlertOverview, StoreError> {
        let rows: Vec<OverviewRow> = self
            .fetch_all(&alert_overview(q, &self.layout, bucket_seconds)?)
            .await?;
        AlertOverview::from_rows(rows, effective_limit(q.limit))
    }

    /// See [`crate::store::Store::set_alert_triage`].
    pub async fn set_alert_triage(
        &self,
        alert_id: &str,
        status: AlertStatus,
        assignee: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        let known: u64 = self.fetch_one(&alert_exists(alert_id)).await?;
        if known == 0 {
            return Err(StoreError::InvalidQuery(format!("no alert {alert_id:?}")));
        }
        let now = shaobing_wire::now_unix_nano();
        let row = TriageRow {
            alert_id,
            status: status.name(),
            assignee,
            note,
            updated_ns: u64::try_from(now).unwrap_or_default(),
            updated: datetime_seconds(now),
        };
        self.insert_rows::<TriageRow<'_>>(StatementId::InsertTriage, "alert_triage", &[row])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triage_is_joined_only_when_needed() {
        let plain = AlertQuery::default();
        let single = Layout::Single;
        assert!(
            !alert_counts_by_group(&plain, &single, AlertGroup::Rule)
                .render()
                .contains("JOIN")
        );
        assert!(
            alert_counts_by_group(&plain, &single, AlertGroup::Status)
                .render()
                .contains("JOIN")
        );
        let open = AlertQuery {
            statuses: vec![AlertStatus::Open],
            ..AlertQuery::default()
        };
        let counts = alert_counts_by_time(&open, &single, 3600)
            .expect("valid bucket")
            .render();
        assert!(counts.contains("has(['open'], if(t_status = '', 'open', t_status))"));
        assert!(counts.contains("intDiv(a_first_time_ns, 3600000000000) * 3600000000000"));
    }
}
