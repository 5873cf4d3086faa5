//! Alerts in ClickHouse: detection versions in `alerts` (`ReplacingMergeTree(version)`,
//! version = count) and operator triage in `alert_triage`, joined at read time.
//!
//! Triage lives in its own table so that detection never has to read-modify-write an alert:
//! a re-raised alert is a plain insert and cannot overwrite a status set meanwhile.
//!
//! Every read starts from the same filtered set ([`filtered_alerts`]): the newest version of
//! each alert (`argMax ... GROUP BY alert_id`, filters in `HAVING`), joined with its triage
//! only when the query needs it; the page and the counts are built on top of it.

use super::ClickHouseStore;
use super::events::{group_counts, oldest_first};
use super::rows::{AlertReadRow, AlertRow, TriageRow};
use super::sql::{Bound, Conditions, Statement, StatementId};
use crate::store::StoreError;
use crate::store::event_row::{date_days, datetime_seconds};
use crate::store::records::{
    AlertGroup, AlertQuery, AlertRecord, AlertStatus, GroupCount, MAX_TIME_BUCKETS,
    TimeBucketCount, bucket_nanos, effective_limit,
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

/// `SELECT ... FROM (newest version of each alert matching q) [triage join] [WHERE status]`:
/// columns `alert_id`, `a_*` and (with triage) `t_status`, `t_assignee`, `t_note`.
fn filtered_alerts(q: &AlertQuery, with_triage: bool) -> (String, Vec<Bound>) {
    let mut having = Conditions::default();
    if let Some(since) = q.since {
        having.push("a_last_time_ns >= ?", [Bound::Signed(since)]);
    }
    if let Some(until) = q.until {
        having.push("a_first_time_ns < ?", [Bound::Signed(until)]);
    }
    if let Some(host) = &q.host {
        having.push("a_hostname = ?", [Bound::Text(host.clone())]);
    }
    if let Some(agent_id) = &q.agent_id {
        having.push("a_agent_id = ?", [Bound::Text(agent_id.clone())]);
    }
    if let Some(rule_id) = &q.rule_id {
        having.push("a_rule_id = ?", [Bound::Text(rule_id.clone())]);
    }
    if !q.levels.is_empty() {
        having.push("has(?, a_level)", [Bound::TextList(q.levels.clone())]);
    }
    if let Some(needle) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let fields = [
            "a_rule_title",
            "a_rule_id",
            "a_summary",
            "a_hostname",
            "a_group_key",
        ];
        let clause = fields
            .iter()
            .map(|f| format!("positionCaseInsensitiveUTF8({f}, ?) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        having.push(
            format!("({clause})"),
            fields.map(|_| Bound::Text(needle.to_owned())),
        );
    }
    let newest = format!(
        "SELECT alert_id,
        argMax(rule_id, version) AS a_rule_id,
        argMax(rule_title, version) AS a_rule_title,
        argMax(level, version) AS a_level,
        argMax(kind, version) AS a_kind,
        argMax(tags, version) AS a_tags,
        argMax(mlps, version) AS a_mlps,
        argMax(agent_id, version) AS a_agent_id,
        argMax(hostname, version) AS a_hostname,
        min(first_time_ns) AS a_first_time_ns,
        argMax(last_time_ns, version) AS a_last_time_ns,
        max(count) AS a_count,
        argMax(group_key, version) AS a_group_key,
        argMax(event_ids, version) AS a_event_ids,
        argMax(summary, version) AS a_summary
    FROM alerts GROUP BY alert_id {}",
        having.sql("HAVING")
    );
    let with_triage = with_triage || !q.statuses.is_empty();
    if !with_triage {
        return (format!("SELECT * FROM ({newest})"), having.binds);
    }
    let mut outer = Conditions::default();
    if !q.statuses.is_empty() {
        let names = q.statuses.iter().map(|s| s.name().to_owned()).collect();
        outer.push(
            "has(?, if(t_status = '', 'open', t_status))",
            [Bound::TextList(names)],
        );
    }
    let sql = format!(
        "SELECT * FROM ({newest}) AS a ANY LEFT JOIN (
    SELECT alert_id,
        argMax(status, updated_ns) AS t_status,
        argMax(assignee, updated_ns) AS t_assignee,
        argMax(note, updated_ns) AS t_note
    FROM alert_triage GROUP BY alert_id
 ) AS t USING alert_id {}",
        outer.sql("WHERE")
    );
    let binds = having.binds.into_iter().chain(outer.binds).collect();
    (sql, binds)
}

/// One page of alerts, newest (`last_time`) first.
pub(super) fn alerts_page(q: &AlertQuery) -> Statement {
    let (source, binds) = filtered_alerts(q, true);
    Statement::new(
        StatementId::AlertsPage,
        format!(
            "SELECT alert_id, a_rule_id, a_rule_title, a_level, a_kind, a_tags, a_mlps,
    a_agent_id, a_hostname, a_first_time_ns, a_last_time_ns, a_count, a_group_key,
    a_event_ids, a_summary, t_status, t_assignee, t_note
 FROM ({source})
 ORDER BY a_last_time_ns DESC, alert_id LIMIT {} OFFSET {}",
            effective_limit(q.limit),
            q.offset
        ),
    )
    .bind(binds)
}

/// Alerts per time bucket of their first event: the newest [`MAX_TIME_BUCKETS`] buckets.
pub(super) fn alert_counts_by_time(
    q: &AlertQuery,
    bucket_seconds: u32,
) -> Result<Statement, StoreError> {
    let bucket = bucket_nanos(bucket_seconds)?;
    let (source, binds) = filtered_alerts(q, false);
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
pub(super) fn alert_counts_by_group(q: &AlertQuery, group: AlertGroup) -> Statement {
    let (key, label, triage) = match group {
        AlertGroup::Rule => ("a_rule_id", "any(a_rule_title)", false),
        AlertGroup::Host => ("a_hostname", "''", false),
        AlertGroup::Level => ("a_level", "''", false),
        AlertGroup::Status => ("if(t_status = '', 'open', t_status)", "''", true),
    };
    let (source, binds) = filtered_alerts(q, triage);
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

fn alert_exists(alert_id: &str) -> Statement {
    Statement::new(
        StatementId::AlertExists,
        "SELECT count() FROM alerts WHERE alert_id = ?",
    )
    .bind([Bound::Text(alert_id.to_owned())])
}

fn alert_record(r: AlertReadRow) -> Result<AlertRecord, StoreError> {
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

    /// See [`crate::store::Store::alerts`].
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let rows: Vec<AlertReadRow> = self.fetch_all(&alerts_page(q)).await?;
        rows.into_iter().map(alert_record).collect()
    }

    /// See [`crate::store::Store::alert_counts`].
    pub async fn alert_counts(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        let rows = self
            .fetch_all(&alert_counts_by_time(q, bucket_seconds)?)
            .await?;
        Ok(oldest_first(rows))
    }

    /// See [`crate::store::Store::alert_counts_by`].
    pub async fn alert_counts_by(
        &self,
        q: &AlertQuery,
        group: AlertGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        let rows = self.fetch_all(&alert_counts_by_group(q, group)).await?;
        Ok(group_counts(rows))
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
        assert!(
            !alert_counts_by_group(&plain, AlertGroup::Rule)
                .render()
                .contains("JOIN")
        );
        assert!(
            alert_counts_by_group(&plain, AlertGroup::Status)
                .render()
                .contains("JOIN")
        );
        assert!(alerts_page(&plain).render().contains("ANY LEFT JOIN"));
        let open = AlertQuery {
            statuses: vec![AlertStatus::Open],
            ..AlertQuery::default()
        };
        let counts = alert_counts_by_time(&open, 3600)
            .expect("valid bucket")
            .render();
        assert!(counts.contains("has(['open'], if(t_status = '', 'open', t_status))"));
        assert!(counts.contains("intDiv(a_first_time_ns, 3600000000000) * 3600000000000"));
    }
}
