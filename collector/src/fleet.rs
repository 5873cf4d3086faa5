//! Fleet health: notices agents that stopped sending heartbeats. Every
//! `check_every`, agents whose last contact is older than `offline_after` are
//! marked `offline` in the store and an alert is raised (one per outage: the
//! alert id is derived from the agent and its last contact). An agent that
//! comes back is marked `online` again by the pipeline on its next heartbeat.

use std::time::Duration;

use sha2::{Digest, Sha256};
use shaobing_detect::Alert;

use crate::store::{AgentRecord, Store, StoreError};

/// Stable id of the synthetic "agent offline" rule.
pub const AGENT_OFFLINE_RULE_ID: &str = "a9e1c7d2-5f0b-4c55-9d61-6a0f1e7b3c10";

/// How the watcher decides an agent is offline.
#[derive(Debug, Clone, Copy)]
pub struct FleetWatch {
    pub offline_after: Duration,
    pub check_every: Duration,
}

impl Default for FleetWatch {
    fn default() -> Self {
        Self {
            offline_after: Duration::from_secs(300),
            check_every: Duration::from_secs(30),
        }
    }
}

/// The alert for an agent silent since its `last_seen`.
pub fn offline_alert(agent: &AgentRecord, now_unix_nano: i64) -> Alert {
    let id = Sha256::digest(format!(
        "{AGENT_OFFLINE_RULE_ID}|{}|{}",
        agent.agent_id, agent.last_seen_unix_nano
    ));
    let silent_min = (now_unix_nano - agent.last_seen_unix_nano) / 60_000_000_000;
    Alert {
        alert_id: shaobing_detect::time_ordered_id(agent.last_seen_unix_nano, &id),
        rule_id: AGENT_OFFLINE_RULE_ID.to_string(),
        rule_title: "Agent offline (代理离线)".to_string(),
        level: "medium".to_string(),
        kind: "fleet".to_string(),
        tags: vec!["attack.t1562.001".to_string()],
        mlps: vec!["8.1.5.4 c)".to_string(), "8.1.5.4 d)".to_string()],
        agent_id: agent.agent_id.clone(),
        hostname: agent.hostname.clone(),
        first_time_unix_nano: agent.last_seen_unix_nano,
        last_time_unix_nano: now_unix_nano,
        count: 1,
        group_key: format!("AgentId={}", agent.agent_id),
        event_ids: Vec::new(),
        summary: format!(
            "agent {} ({}) silent for {silent_min} min / 代理 {} 已 {silent_min} 分钟无心跳",
            agent.hostname, agent.agent_id, agent.hostname
        ),
    }
}

/// One pass: marks silent agents offline and raises their alerts. Returns how many.
pub async fn check_once(
    store: &Store,
    watch: &FleetWatch,
    now_unix_nano: i64,
) -> Result<usize, StoreError> {
    let limit = watch.offline_after.as_nanos() as i64;
    let mut raised = 0;
    for mut agent in store.agents().await? {
        if agent.status == "offline" || agent.status == "revoked" {
            continue;
        }
        if now_unix_nano - agent.last_seen_unix_nano <= limit {
            continue;
        }
        store
            .upsert_alerts(&[offline_alert(&agent, now_unix_nano)])
            .await?;
        agent.status = "offline".into();
        store.upsert_agent(&agent).await?;
        tracing::warn!(agent_id = %agent.agent_id, hostname = %agent.hostname, "agent offline");
        raised += 1;
    }
    Ok(raised)
}

/// Runs [`check_once`] forever.
pub async fn run(store: Store, watch: FleetWatch) {
    loop {
        tokio::time::sleep(watch.check_every).await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        if let Err(e) = check_once(&store, &watch, now).await {
            tracing::warn!(error = %e, "fleet check failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn silent_agent_goes_offline_once_with_one_alert() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_embedded(&dir.path().join("s.db"))
            .await
            .unwrap();
        let min = 60_000_000_000i64;
        let agent = AgentRecord {
            agent_id: "a1".into(),
            hostname: "web-1".into(),
            first_seen_unix_nano: 0,
            last_seen_unix_nano: 10 * min,
            status: "online".into(),
            ..Default::default()
        };
        store.upsert_agent(&agent).await.unwrap();
        let watch = FleetWatch::default();
        assert_eq!(
            check_once(&store, &watch, 12 * min).await.unwrap(),
            0,
            "4 min: still online"
        );
        assert_eq!(check_once(&store, &watch, 20 * min).await.unwrap(), 1);
        assert_eq!(
            check_once(&store, &watch, 30 * min).await.unwrap(),
            0,
            "one alert per outage"
        );
        let alerts = store.alerts(&Default::default()).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].rule_id, AGENT_OFFLINE_RULE_ID);
        assert_eq!(store.agents().await.unwrap()[0].status, "offline");
    }
}
