//! Agents, baseline check results and the audit log in ClickHouse.

use super::ClickHouseStore;
use super::rows::{AgentRow, AuditRow, CheckRow};
use super::sql::{Bound, Conditions, Statement, StatementId};
use crate::store::StoreError;
use crate::store::event_row::{date_days, datetime_seconds};
use crate::store::records::{
    AgentRecord, AuditEntry, AuditQuery, CheckQuery, CheckRecord, effective_limit,
};

impl ClickHouseStore {
    /// See [`crate::store::Store::upsert_agent`].
    pub async fn upsert_agent(&self, agent: &AgentRecord) -> Result<(), StoreError> {
        let _serialized = self.agents_lock.lock().await;
        let (earliest, known): (i64, u64) = self
            .fetch_one(
                &Statement::new(
                    StatementId::AgentFirstSeen,
                    "SELECT min(first_seen_ns), count() FROM agents WHERE agent_id = ?",
                )
                .bind([Bound::Text(agent.agent_id.clone())]),
            )
            .await?;
        let first_seen_ns = if known > 0 {
            earliest.min(agent.first_seen_unix_nano)
        } else {
            agent.first_seen_unix_nano
        };
        let row = AgentRow {
            agent_id: agent.agent_id.clone(),
            hostname: agent.hostname.clone(),
            ips: agent.ips.clone(),
            os: agent.os.clone(),
            version: agent.version.clone(),
            first_seen_ns,
            last_seen_ns: agent.last_seen_unix_nano,
            status: agent.status.clone(),
            last_seen: datetime_seconds(agent.last_seen_unix_nano),
            row_version: u64::try_from(agent.last_seen_unix_nano).unwrap_or_default(),
        };
        self.insert_rows::<AgentRow>(StatementId::InsertAgents, "agents", &[row])
            .await
    }

    /// See [`crate::store::Store::agents`].
    pub async fn agents(&self) -> Result<Vec<AgentRecord>, StoreError> {
        let rows: Vec<AgentRow> = self
            .fetch_all(&Statement::new(
                StatementId::AgentsList,
                "SELECT agent_id, argMax(hostname, row_version) AS a_hostname,
                    argMax(ips, row_version), argMax(os, row_version),
                    argMax(version, row_version), min(first_seen_ns), max(last_seen_ns),
                    argMax(status, row_version), max(last_seen), max(row_version)
                 FROM agents GROUP BY agent_id ORDER BY a_hostname, agent_id",
            ))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AgentRecord {
                agent_id: r.agent_id,
                hostname: r.hostname,
                ips: r.ips,
                os: r.os,
                version: r.version,
                first_seen_unix_nano: r.first_seen_ns,
                last_seen_unix_nano: r.last_seen_ns,
                status: r.status,
            })
            .collect())
    }

    /// See [`crate::store::Store::check_results`].
    pub async fn check_results(&self, q: &CheckQuery) -> Result<Vec<CheckRecord>, StoreError> {
        let mut c = Conditions::default();
        if let Some(host) = &q.host {
            c.push("hostname = ?", [Bound::Text(host.clone())]);
        }
        if let Some(agent_id) = &q.agent_id {
            c.push("agent_id = ?", [Bound::Text(agent_id.clone())]);
        }
        if let Some(check_id) = &q.check_id {
            c.push("check_id = ?", [Bound::Text(check_id.clone())]);
        }
        if let Some(since) = q.since {
            c.push("time_ns >= ?", [Bound::Signed(since)]);
        }
        if let Some(until) = q.until {
            c.push("time_ns < ?", [Bound::Signed(until)]);
        }
        let limit = effective_limit(q.limit);
        let statement = if q.latest_only {
            Statement::new(StatementId::ChecksLatest, format!(
                "SELECT agent_id, argMax(seq, time_ns), argMax(hostname, time_ns) AS c_hostname, check_id,
                    argMax(title, time_ns), argMax(status, time_ns), argMax(observed, time_ns),
                    argMax(expected, time_ns), max(time_ns) AS c_time_ns, max(time), max(date),
                    argMax(event_id, time_ns)
                 FROM check_results {} GROUP BY agent_id, check_id
                 ORDER BY c_hostname, check_id, c_time_ns DESC LIMIT {limit}",
                c.sql("WHERE")
            ))
        } else {
            Statement::new(
                StatementId::ChecksList,
                format!(
                    "SELECT agent_id, seq, hostname, check_id, title, status, observed, expected,
                    time_ns, time, date, event_id
                 FROM check_results {} ORDER BY hostname, check_id, time_ns DESC LIMIT {limit}",
                    c.sql("WHERE")
                ),
            )
        };
        let rows: Vec<CheckRow> = self.fetch_all(&statement.bind(c.binds)).await?;
        Ok(rows
            .into_iter()
            .map(|r| CheckRecord {
                agent_id: r.agent_id,
                hostname: r.hostname,
                check_id: r.check_id,
                title: r.title,
                status: r.status,
                observed: r.observed,
                expected: r.expected,
                time_unix_nano: r.time_ns,
                event_id: r.event_id,
            })
            .collect())
    }

    /// See [`crate::store::Store::append_audit`].
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let row = AuditRow {
            time_ns: entry.time_unix_nano,
            time: datetime_seconds(entry.time_unix_nano),
            date: date_days(entry.time_unix_nano),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            detail: entry.detail.clone(),
        };
        self.insert_rows::<AuditRow>(StatementId::InsertAudit, "audit_log", &[row])
            .await
    }

    /// See [`crate::store::Store::audit_log`].
    pub async fn audit_log(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut c = Conditions::default();
        if let Some(since) = q.since {
            c.push("time_ns >= ?", [Bound::Signed(since)]);
        }
        if let Some(until) = q.until {
            c.push("time_ns < ?", [Bound::Signed(until)]);
        }
        if let Some(actor) = &q.actor {
            c.push("actor = ?", [Bound::Text(actor.clone())]);
        }
        if let Some(action) = &q.action {
            c.push("action = ?", [Bound::Text(action.clone())]);
        }
        let statement = Statement::new(
            StatementId::AuditList,
            format!(
                "SELECT time_ns, time, date, actor, action, target, detail FROM audit_log {}
             ORDER BY time_ns DESC LIMIT {}",
                c.sql("WHERE"),
                effective_limit(q.limit)
            ),
        );
        let rows: Vec<AuditRow> = self.fetch_all(&statement.bind(c.binds)).await?;
        Ok(rows
            .into_iter()
            .map(|r| AuditEntry {
                time_unix_nano: r.time_ns,
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail,
            })
            .collect())
    }
}
