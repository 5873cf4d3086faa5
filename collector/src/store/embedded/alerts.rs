//! Alerts in the embedded store: one row per alert (upserted in place) holding its triage
//! columns too, plus counts by time bucket and by rule, host, level or status.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params, params_from_iter};

use super::stats::{group_counts, time_buckets};
use super::{Conditions, EmbeddedStore, text};
use crate::store::StoreError;
use crate::store::event_row::SqliteColumn;
use crate::store::records::{
    AlertGroup, AlertOverview, AlertQuery, AlertRecord, AlertStatus, GroupCount, MAX_TIME_BUCKETS,
    TimeBucketCount, bucket_nanos, effective_limit,
};

const ALERT_COLUMNS: &str = "alert_id, rule_id, rule_title, level, kind, tags, mlps, agent_id, \
    hostname, first_time_ns, last_time_ns, count, group_key, event_ids, summary, status, \
    assignee, note";

fn alert_from_row(row: &rusqlite::Row<'_>) -> Result<AlertRecord, StoreError> {
    let status: String = row.get(15)?;
    Ok(AlertRecord {
        alert_id: row.get(0)?,
        rule_id: row.get(1)?,
        rule_title: row.get(2)?,
        level: row.get(3)?,
        kind: row.get(4)?,
        tags: Vec::<String>::from_sql_value(row.get_ref(5)?, "alerts.tags")?,
        mlps: Vec::<String>::from_sql_value(row.get_ref(6)?, "alerts.mlps")?,
        agent_id: row.get(7)?,
        hostname: row.get(8)?,
        first_time_unix_nano: row.get(9)?,
        last_time_unix_nano: row.get(10)?,
        count: u64::from_sql_value(row.get_ref(11)?, "alerts.count")?,
        group_key: row.get(12)?,
        event_ids: Vec::<String>::from_sql_value(row.get_ref(13)?, "alerts.event_ids")?,
        summary: row.get(14)?,
        status: AlertStatus::from_name(&status).ok_or_else(|| StoreError::Corrupt {
            column: "alerts.status",
            reason: format!("unknown status {status:?}"),
        })?,
        assignee: row.get(16)?,
        note: row.get(17)?,
    })
}

/// Inserts or updates alerts; the detection fields of the version with the highest
/// `(count, last_time)` win (all of them, `first_time` too, as in ClickHouse), triage
/// columns are left alone.
pub(super) fn upsert_alerts_in(
    conn: &Connection,
    alerts: &[AlertRecord],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO alerts (alert_id, rule_id, rule_title, level, kind, tags, mlps, agent_id,
            hostname, first_time_ns, last_time_ns, count, group_key, event_ids, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (alert_id) DO UPDATE SET
            rule_id = excluded.rule_id, rule_title = excluded.rule_title,
            level = excluded.level, kind = excluded.kind, tags = excluded.tags,
            mlps = excluded.mlps, agent_id = excluded.agent_id, hostname = excluded.hostname,
            first_time_ns = excluded.first_time_ns,
            last_time_ns = excluded.last_time_ns, count = excluded.count,
            group_key = excluded.group_key, event_ids = excluded.event_ids,
            summary = excluded.summary
         WHERE (excluded.count, excluded.last_time_ns) >= (alerts.count, alerts.last_time_ns)",
    )?;
    for alert in alerts {
        stmt.execute(params![
            alert.alert_id,
            alert.rule_id,
            alert.rule_title,
            alert.level,
            alert.kind,
            alert.tags.to_sql_value(),
            alert.mlps.to_sql_value(),
            alert.agent_id,
            alert.hostname,
            alert.first_time_unix_nano,
            alert.last_time_unix_nano,
            alert.count.to_sql_value(),
            alert.group_key,
            alert.event_ids.to_sql_value(),
            alert.summary,
        ])?;
    }
    Ok(())
}

/// `WHERE` conditions of an alert query (embedded alerts hold their triage columns).
fn alert_conditions(q: &AlertQuery) -> Conditions {
    let mut c = Conditions::default();
    if let Some(alert_id) = &q.alert_id {
        c.push("alert_id = ?", [text(alert_id)]);
    }
    if let Some(since) = q.since {
        c.push("last_time_ns >= ?", [SqlValue::Integer(since)]);
    }
    if let Some(until) = q.until {
        c.push("first_time_ns < ?", [SqlValue::Integer(until)]);
    }
    if let Some(host) = &q.host {
        c.push("hostname = ?", [text(host)]);
    }
    if let Some(agent_id) = &q.agent_id {
        c.push("agent_id = ?", [text(agent_id)]);
    }
    if let Some(rule_id) = &q.rule_id {
        c.push("rule_id = ?", [text(rule_id)]);
    }
    if !q.levels.is_empty() {
        let marks = vec!["?"; q.levels.len()].join(", ");
        c.push(
            format!("level IN ({marks})"),
            q.levels.iter().map(|l| text(l)),
        );
    }
    if !q.statuses.is_empty() {
        let marks = vec!["?"; q.statuses.len()].join(", ");
        c.push(
            format!("status IN ({marks})"),
            q.statuses.iter().map(|s| text(s.name())),
        );
    }
    if let Some(needle) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let fields = ["rule_title", "rule_id", "summary", "hostname", "group_key"];
        let clause = fields
            .iter()
            .map(|f| format!("instr(lower({f}), lower(?)) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        c.push(format!("({clause})"), fields.map(|_| text(needle)));
    }
    c
}

impl EmbeddedStore {
    /// See [`super::Store::upsert_alerts`].
    pub async fn upsert_alerts(&self, alerts: &[AlertRecord]) -> Result<(), StoreError> {
        let alerts = alerts.to_vec();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            upsert_alerts_in(&tx, &alerts)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// See [`super::Store::alerts`].
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let c = alert_conditions(q);
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts {} ORDER BY last_time_ns DESC, alert_id
             LIMIT {} OFFSET {}",
            c.where_sql(),
            effective_limit(q.limit),
            q.offset
        );
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(c.params))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(alert_from_row(row)?);
            }
            Ok(out)
        })
        .await
    }

    /// See [`super::Store::set_alert_triage`].
    pub async fn set_alert_triage(
        &self,
        alert_id: &str,
        status: AlertStatus,
        assignee: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        let (alert_id, assignee, note) =
            (alert_id.to_owned(), assignee.to_owned(), note.to_owned());
        self.run(move |conn| {
            let changed = conn.execute(
                "UPDATE alerts SET status = ?2, assignee = ?3, note = ?4, triage_updated_ns = ?5
                 WHERE alert_id = ?1",
                params![
                    alert_id,
                    status.name(),
                    assignee,
                    note,
                    shaobing_wire::now_unix_nano()
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::InvalidQuery(format!("no alert {alert_id:?}")));
            }
            Ok(())
        })
        .await
    }

    /// See [`super::Store::alert_counts`].
    pub async fn alert_counts(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        let bucket = bucket_nanos(bucket_seconds)?;
        let c = alert_conditions(q);
        let sql = format!(
            "SELECT bucket, n FROM (SELECT (first_time_ns / {bucket}) * {bucket} AS bucket,
                count(*) AS n FROM alerts {} GROUP BY bucket ORDER BY bucket DESC
                LIMIT {MAX_TIME_BUCKETS}) ORDER BY bucket",
            c.where_sql()
        );
        self.run(move |conn| time_buckets(conn, &sql, c.params))
            .await
    }

    /// See [`super::Store::alert_overview`].
    pub async fn alert_overview(
        &self,
        q: &AlertQuery,
        bucket_seconds: u32,
    ) -> Result<AlertOverview, StoreError> {
        let bucket = bucket_nanos(bucket_seconds)?;
        let c = alert_conditions(q);
        let w = c.where_sql();
        let sql = format!(
            "SELECT 't', level, CAST((first_time_ns / {bucket}) * {bucket} AS TEXT), '', count(*)
                FROM alerts {w} GROUP BY 2, 3
             UNION ALL SELECT 's', level, status, '', count(*) FROM alerts {w} GROUP BY 2, 3
             UNION ALL SELECT 'r', rule_id, '', max(rule_title), count(*) FROM alerts {w} GROUP BY 2
             UNION ALL SELECT 'h', hostname, '', '', count(*) FROM alerts {w} GROUP BY 2"
        );
        let params: Vec<SqlValue> = (0..4).flat_map(|_| c.params.iter().cloned()).collect();
        let limit = effective_limit(q.limit);
        self.run(move |conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map(params_from_iter(params), |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)? as u64,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            AlertOverview::from_rows(rows, limit)
        })
        .await
    }

    /// See [`super::Store::alert_counts_by`].
    pub async fn alert_counts_by(
        &self,
        q: &AlertQuery,
        group: AlertGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        let (key, label) = match group {
            AlertGroup::Rule => ("rule_id", "max(rule_title)"),
            AlertGroup::Host => ("hostname", "''"),
            AlertGroup::Level => ("level", "''"),
            AlertGroup::Status => ("status", "''"),
        };
        let c = alert_conditions(q);
        let sql = format!(
            "SELECT {key} AS key, {label}, count(*) AS n FROM alerts {} GROUP BY key
             ORDER BY n DESC, key LIMIT {} OFFSET {}",
            c.where_sql(),
            effective_limit(q.limit),
            q.offset
        );
        self.run(move |conn| group_counts(conn, &sql, c.params))
            .await
    }
}
