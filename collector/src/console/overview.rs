//! Figures behind the overview page and `/api/v1/overview`: alerts by severity over
//! time, top rules, top hosts, agents online/offline, and the ingest rate.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::ConsoleResult;
use super::state::ConsoleState;
use crate::store::{AlertQuery, AlertStatus, GroupCount};

/// Levels in display order (most severe first).
pub const LEVELS: [&str; 5] = ["critical", "high", "medium", "low", "informational"];

/// Alerts raised in one time bucket, by level.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Bucket {
    /// Bucket start (unix nanos).
    pub start_ns: i64,
    /// Level → alerts first seen in the bucket.
    pub counts: BTreeMap<String, u64>,
}

/// A name with a count (top lists).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ranked {
    /// Key (rule id or hostname).
    pub key: String,
    /// Label (rule title or hostname).
    pub label: String,
    /// Alerts.
    pub count: u64,
}

/// Everything the overview shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Window in hours.
    pub hours: u32,
    /// Equal buckets across the window, oldest first.
    pub buckets: Vec<Bucket>,
    /// Alerts in the window by level.
    pub by_level: BTreeMap<String, u64>,
    /// Alerts still open in the window.
    pub open: u64,
    /// Most frequent rules.
    pub top_rules: Vec<Ranked>,
    /// Hosts with most alerts.
    pub top_hosts: Vec<Ranked>,
    /// Agents heard from recently.
    pub agents_online: usize,
    /// Agents not heard from recently.
    pub agents_offline: usize,
    /// Stored events per second (last minutes).
    pub ingest_events_per_second: f64,
    /// Recent per-interval ingest rates, oldest first.
    pub ingest_recent: Vec<f64>,
}

/// Number of bars in the chart.
pub const BUCKETS: i64 = 24;

/// Computes the overview over the last `hours` hours (aggregated in the store).
pub async fn compute(state: &ConsoleState, hours: u32, now_ns: i64) -> ConsoleResult<Overview> {
    let hours = hours.clamp(1, 24 * 30);
    let span = i64::from(hours) * 3600 * 1_000_000_000;
    let bucket_seconds = (i64::from(hours) * 3600 / BUCKETS) as u32;
    let bucket_ns = i64::from(bucket_seconds) * 1_000_000_000;
    // Align the window on bucket boundaries, as the store aligns buckets on the epoch.
    let first_bucket = (now_ns - span).div_euclid(bucket_ns) * bucket_ns + bucket_ns;
    let window = AlertQuery {
        since: Some(first_bucket),
        // Top lists: ten rules; hosts without a name are dropped below, so one spare.
        limit: Some(11),
        ..AlertQuery::default()
    };
    // One store query for every alert count (it was eight), beside the agents.
    let (counts, agents) = tokio::join!(
        state.store.alert_overview(&window, bucket_seconds),
        state.store.agents(),
    );
    let counts = counts?;
    let mut buckets: Vec<Bucket> = (0..BUCKETS)
        .map(|i| Bucket {
            start_ns: first_bucket + i * bucket_ns,
            counts: BTreeMap::new(),
        })
        .collect();
    for c in &counts.by_level_time {
        let index = (c.start_unix_nano - first_bucket).div_euclid(bucket_ns);
        if let Some(bucket) = usize::try_from(index).ok().and_then(|i| buckets.get_mut(i)) {
            *bucket.counts.entry(c.level.clone()).or_default() += c.count;
        }
    }
    let mut by_level: BTreeMap<String, u64> = BTreeMap::new();
    let mut open = 0;
    for c in &counts.by_level_status {
        *by_level.entry(c.level.clone()).or_default() += c.count;
        if c.status == AlertStatus::Open.name() || c.status.is_empty() {
            open += c.count;
        }
    }
    let ranked = |groups: Vec<GroupCount>| -> Vec<Ranked> {
        groups
            .into_iter()
            .map(|g| Ranked {
                label: if g.label.is_empty() {
                    g.key.clone()
                } else {
                    g.label
                },
                key: g.key,
                count: g.count,
            })
            .collect()
    };
    let offline_after = state.config.agent_offline_after.as_nanos() as i64;
    let agents = agents?;
    let agents_online = agents
        .iter()
        .filter(|a| now_ns - a.last_seen_unix_nano < offline_after && a.status != "revoked")
        .count();
    Ok(Overview {
        hours,
        buckets,
        by_level,
        open,
        top_rules: ranked(counts.top_rules).into_iter().take(10).collect(),
        top_hosts: ranked(counts.top_hosts)
            .into_iter()
            .filter(|r| !r.key.is_empty())
            .take(10)
            .collect(),
        agents_online,
        agents_offline: agents.len() - agents_online,
        ingest_events_per_second: state.ingest.events_per_second(),
        ingest_recent: state.ingest.recent_rates(),
    })
}
