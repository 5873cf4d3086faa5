//! Alerts in ClickHouse: detection versions in `alerts` (`ReplacingMergeTree(version)`,
//! version = count) and operator triage in `alert_triage`, joined at read time.
//!
//! Triage lives in its own table so that detection never has to read-modify-write an alert:
//! a re-raised alert is a plain insert and cannot overwrite a status set meanwhile.

use super::ClickHouseStore;
use super::rows::{AlertReadRow, AlertRow, TriageRow};
use super::sql::{Bound, Conditions, bind_all};
use crate::store::StoreError;
use crate::store::event_row::{date_days, datetime_seconds};
use crate::store::records::{AlertQuery, AlertRecord, AlertStatus, effective_limit};

impl ClickHouseStore {
    /// See [`crate::store::Store::upsert_alerts`]: appends a version; reads keep the highest.
    pub async fn upsert_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        let rows: Vec<AlertRow<'_>> = alerts
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
            .collect();
        self.insert_rows::<AlertRow<'_>>("alerts", &rows).await
    }

    /// See [`crate::store::Store::alerts`].
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        // Filters on the newest version (HAVING), then triage (outer WHERE).
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
        let mut outer = Conditions::default();
        if !q.statuses.is_empty() {
            let names = q.statuses.iter().map(|s| s.name().to_owned()).collect();
            outer.push(
                "has(?, if(t_status = '', 'open', t_status))",
                [Bound::TextList(names)],
            );
        }
        let sql = format!(
            "SELECT alert_id, a_rule_id, a_rule_title, a_level, a_kind, a_tags, a_mlps,
                a_agent_id, a_hostname, a_first_time_ns, a_last_time_ns, a_count, a_group_key,
                a_event_ids, a_summary, t_status, t_assignee, t_note
             FROM (
                SELECT alert_id,
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
                FROM alerts GROUP BY alert_id {}
             ) AS a ANY LEFT JOIN (
                SELECT alert_id,
                    argMax(status, updated_ns) AS t_status,
                    argMax(assignee, updated_ns) AS t_assignee,
                    argMax(note, updated_ns) AS t_note
                FROM alert_triage GROUP BY alert_id
             ) AS t USING alert_id
             {}
             ORDER BY a_last_time_ns DESC, alert_id LIMIT {} OFFSET {}",
            having.sql("HAVING"),
            outer.sql("WHERE"),
            effective_limit(q.limit),
            q.offset
        );
        let binds: Vec<Bound> = having.binds.into_iter().chain(outer.binds).collect();
        let rows: Vec<AlertReadRow> = bind_all(self.client.query(&sql), &binds)
            .fetch_all()
            .await?;
        rows.into_iter()
            .map(|r| {
                let status =
                    AlertStatus::from_name(&r.status).ok_or_else(|| StoreError::Corrupt {
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
            })
            .collect()
    }

    /// See [`crate::store::Store::set_alert_triage`].
    pub async fn set_alert_triage(
        &self,
        alert_id: &str,
        status: AlertStatus,
        assignee: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        let known: u64 = self
            .client
            .query("SELECT count() FROM alerts WHERE alert_id = ?")
            .bind(alert_id)
            .fetch_one()
            .await?;
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
        self.insert_rows::<TriageRow<'_>>("alert_triage", &[row])
            .await
    }
}
