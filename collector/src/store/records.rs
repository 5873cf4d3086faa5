//! The records the store hands out and the queries it accepts, shared by both back-ends.
//!
//! Times are unix nanoseconds (`i64`) everywhere. Ranges are half-open: `since` inclusive,
//! `until` exclusive.

use serde::{Deserialize, Serialize};
use shaobing_detect::Alert;
use shaobing_wire::v1::Event;

/// Most rows any list query returns, whatever limit is asked for.
pub const MAX_QUERY_LIMIT: usize = 10_000;
/// Rows a list query returns when no limit is given.
pub const DEFAULT_QUERY_LIMIT: usize = 100;

/// Applies the default and the cap to a requested limit.
pub(crate) fn effective_limit(limit: Option<usize>) -> u64 {
    limit.unwrap_or(DEFAULT_QUERY_LIMIT).min(MAX_QUERY_LIMIT) as u64
}

/// Triage state of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// New, nobody looked at it yet.
    #[default]
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Done (handled or false positive; the note says which).
    Closed,
}

impl AlertStatus {
    /// Stable name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Closed => "closed",
        }
    }

    /// Inverse of [`Self::name`]; the empty string (no triage yet) is `Open`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "" | "open" => Some(AlertStatus::Open),
            "acknowledged" => Some(AlertStatus::Acknowledged),
            "closed" => Some(AlertStatus::Closed),
            _ => None,
        }
    }
}

/// One alert as stored: what detection produced plus its triage state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Stable id: the same alert raised again (bigger count) has the same id.
    pub alert_id: String,
    /// Sigma rule id.
    pub rule_id: String,
    /// Sigma rule title.
    pub rule_title: String,
    /// Sigma level: informational, low, medium, high, critical.
    pub level: String,
    /// What produced it (e.g. `detection`, `correlation`).
    pub kind: String,
    /// Sigma tags.
    pub tags: Vec<String>,
    /// 等保 clauses the rule maps to.
    pub mlps: Vec<String>,
    /// Agent the alert is about.
    pub agent_id: String,
    /// Host the alert is about.
    pub hostname: String,
    /// Time of the first matching event.
    pub first_time_unix_nano: i64,
    /// Time of the latest matching event.
    pub last_time_unix_nano: i64,
    /// Number of matching events so far.
    pub count: u64,
    /// Correlation group-by value(s), empty for single-event rules.
    pub group_key: String,
    /// Ids of (some of) the matching events.
    pub event_ids: Vec<String>,
    /// One-line human summary.
    pub summary: String,
    /// Triage status.
    pub status: AlertStatus,
    /// Who handles it (empty if nobody).
    pub assignee: String,
    /// Triage note.
    pub note: String,
}

impl AlertRecord {
    /// A fresh (open, untriaged) record for an alert from `detect`.
    pub fn from_alert(alert: &Alert) -> Self {
        AlertRecord {
            alert_id: alert.alert_id.clone(),
            rule_id: alert.rule_id.clone(),
            rule_title: alert.rule_title.clone(),
            level: alert.level.clone(),
            kind: alert.kind.clone(),
            tags: alert.tags.clone(),
            mlps: alert.mlps.clone(),
            agent_id: alert.agent_id.clone(),
            hostname: alert.hostname.clone(),
            first_time_unix_nano: alert.first_time_unix_nano,
            last_time_unix_nano: alert.last_time_unix_nano,
            count: alert.count,
            group_key: alert.group_key.clone(),
            event_ids: alert.event_ids.clone(),
            summary: alert.summary.clone(),
            status: AlertStatus::Open,
            assignee: String::new(),
            note: String::new(),
        }
    }
}

/// Filters for [`crate::store::Store::alerts`]; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Exactly this alert.
    pub alert_id: Option<String>,
    /// Alerts whose window ends at or after this time (`last_time >= since`).
    pub since: Option<i64>,
    /// Alerts whose window starts before this time (`first_time < until`).
    pub until: Option<i64>,
    /// Exact hostname.
    pub host: Option<String>,
    /// Exact agent id.
    pub agent_id: Option<String>,
    /// Exact Sigma rule id.
    pub rule_id: Option<String>,
    /// Any of these levels.
    pub levels: Vec<String>,
    /// Any of these triage states.
    pub statuses: Vec<AlertStatus>,
    /// Case-insensitive substring of the rule title, rule id, summary, hostname or group key.
    pub text: Option<String>,
    /// At most this many rows (default 100, capped at [`MAX_QUERY_LIMIT`]).
    pub limit: Option<usize>,
    /// Skip this many rows first (paging).
    pub offset: usize,
}

/// One `field = value` condition on an event column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFilter {
    /// Column name, e.g. `source_ip`, `user`, `dst_port`, `dns_answers` (see the schema).
    pub field: String,
    /// Value as text; numeric columns parse it, array columns match any element.
    pub value: String,
}

impl FieldFilter {
    /// `field = value`.
    pub fn new(field: impl Into<String>, value: impl Into<String>) -> Self {
        FieldFilter {
            field: field.into(),
            value: value.into(),
        }
    }
}

/// Filters for [`crate::store::Store::events`] and `count_events`; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Exact hostname.
    pub host: Option<String>,
    /// Exact agent id.
    pub agent_id: Option<String>,
    /// Event kind: login, file, network, check, status, process.
    pub kind: Option<String>,
    /// Events at or after this time.
    pub since: Option<i64>,
    /// Events before this time.
    pub until: Option<i64>,
    /// All of these must hold.
    pub fields: Vec<FieldFilter>,
    /// At most this many rows (default 100, capped at [`MAX_QUERY_LIMIT`]).
    pub limit: Option<usize>,
    /// Skip this many rows first (paging).
    pub offset: usize,
}

/// One stored event: the event as the agent sent it, with the authenticated agent id
/// (also written into `event.host.agent_id`) and the batch it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Authenticated agent identity.
    pub agent_id: String,
    /// Batch seq the event arrived in.
    pub seq: u64,
    /// The event.
    pub event: Event,
}

impl EventRecord {
    /// Event kind name (`login`, `file`, ...).
    pub fn kind(&self) -> &'static str {
        shaobing_wire::names::body_kind(self.event.body.as_ref())
    }
}

/// One enrolled agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Agent identity (from its certificate).
    pub agent_id: String,
    /// Hostname it reported.
    pub hostname: String,
    /// IP addresses it reported.
    pub ips: Vec<String>,
    /// Operating system.
    pub os: String,
    /// Agent version.
    pub version: String,
    /// First contact.
    pub first_seen_unix_nano: i64,
    /// Latest contact.
    pub last_seen_unix_nano: i64,
    /// Free-form status set by the collector, e.g. `online`, `offline`, `revoked`.
    pub status: String,
}

/// One baseline check result, from a `check` event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Agent that ran the check.
    pub agent_id: String,
    /// Its hostname.
    pub hostname: String,
    /// Baseline check id.
    pub check_id: String,
    /// Check title.
    pub title: String,
    /// pass, fail or error.
    pub status: String,
    /// What the agent observed.
    pub observed: String,
    /// What the baseline expects.
    pub expected: String,
    /// When the check ran.
    pub time_unix_nano: i64,
    /// The event that carried it.
    pub event_id: String,
}

/// Filters for [`crate::store::Store::check_results`]; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct CheckQuery {
    /// Exact hostname.
    pub host: Option<String>,
    /// Exact agent id.
    pub agent_id: Option<String>,
    /// Exact check id.
    pub check_id: Option<String>,
    /// Results at or after this time.
    pub since: Option<i64>,
    /// Results before this time.
    pub until: Option<i64>,
    /// Only the latest result per (agent, check) within the time range.
    pub latest_only: bool,
    /// At most this many rows (default 100, capped at [`MAX_QUERY_LIMIT`]).
    pub limit: Option<usize>,
}

/// One operator action (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub time_unix_nano: i64,
    /// Who did it (operator name, `cli`, `system`).
    pub actor: String,
    /// What was done, e.g. `token.create`, `alert.close`.
    pub action: String,
    /// What it was done to (alert id, agent id, ...).
    pub target: String,
    /// Free-form details (JSON is fine).
    pub detail: String,
}

/// Filters for [`crate::store::Store::audit_log`]; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Entries at or after this time.
    pub since: Option<i64>,
    /// Entries before this time.
    pub until: Option<i64>,
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// At most this many rows (default 100, capped at [`MAX_QUERY_LIMIT`]).
    pub limit: Option<usize>,
}

/// What [`crate::store::Store::alert_counts_by`] groups alerts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertGroup {
    /// Sigma rule id (the label is the rule title).
    Rule,
    /// Hostname.
    Host,
    /// Sigma level.
    Level,
    /// Triage status (`open`, `acknowledged`, `closed`).
    Status,
}

/// What [`crate::store::Store::event_counts_by`] groups events by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventGroup {
    /// Hostname.
    Host,
    /// Event kind (`login`, `file`, ...).
    Kind,
    /// Capture source.
    Source,
    /// Any text or integer column of `events`, e.g. `source_ip`, `user`, `dst_port`.
    Field(String),
}

/// Number of alerts or events in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeBucketCount {
    /// Start of the bucket (unix nanoseconds, a multiple of the bucket size).
    pub start_unix_nano: i64,
    /// Alerts or events in `[start, start + bucket)`.
    pub count: u64,
}

/// Number of alerts or events with one value of the grouping key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GroupCount {
    /// The value (rule id, hostname, level, ...; integers as decimal text).
    pub key: String,
    /// Human label of the key where there is one (the rule title), else empty.
    pub label: String,
    /// Alerts or events with that value.
    pub count: u64,
}

/// Alerts of one level first seen in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LevelBucketCount {
    /// Sigma level.
    pub level: String,
    /// Start of the bucket (unix nanoseconds, a multiple of the bucket size).
    pub start_unix_nano: i64,
    /// Alerts.
    pub count: u64,
}

/// Alerts of one level in one triage status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LevelStatusCount {
    /// Sigma level.
    pub level: String,
    /// Triage status name (`open`, `acknowledged`, `closed`).
    pub status: String,
    /// Alerts.
    pub count: u64,
}

/// Every count of the console's overview, from one pass over the alerts matching a query
/// ([`crate::store::Store::alert_overview`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertOverview {
    /// Per level and time bucket of the first event, ordered by bucket then level.
    pub by_level_time: Vec<LevelBucketCount>,
    /// Per level and triage status, ordered by level then status.
    pub by_level_status: Vec<LevelStatusCount>,
    /// Most frequent rules (label = rule title), ties by key; at most the query's limit.
    pub top_rules: Vec<GroupCount>,
    /// Hosts with most alerts, ties by key; at most the query's limit.
    pub top_hosts: Vec<GroupCount>,
}

/// One row of the overview query of both back-ends: `(part, key, sub, label, count)`, part
/// `t` = level × bucket (sub = bucket start), `s` = level × status, `r` = rule (label =
/// title), `h` = host.
pub(crate) type OverviewRow = (String, String, String, String, u64);

impl AlertOverview {
    /// Folds the rows of the overview query; see [`OverviewRow`].
    pub(crate) fn from_rows(
        rows: impl IntoIterator<Item = OverviewRow>,
        limit: u64,
    ) -> Result<AlertOverview, crate::store::StoreError> {
        let mut overview = AlertOverview::default();
        for (part, key, sub, label, count) in rows {
            match part.as_str() {
                "t" => overview.by_level_time.push(LevelBucketCount {
                    level: key,
                    start_unix_nano: sub.parse().map_err(|_| {
                        crate::store::StoreError::Corrupt {
                            column: "alerts.first_time_ns",
                            reason: format!("bucket {sub:?} is not a number"),
                        }
                    })?,
                    count,
                }),
                "s" => overview.by_level_status.push(LevelStatusCount {
                    level: key,
                    status: sub,
                    count,
                }),
                "r" => overview.top_rules.push(GroupCount { key, label, count }),
                _ => overview.top_hosts.push(GroupCount {
                    key,
                    label: String::new(),
                    count,
                }),
            }
        }
        Ok(overview.finish(limit))
    }

    /// Orders the parts and cuts the top lists to `limit`.
    fn finish(mut self, limit: u64) -> AlertOverview {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.by_level_time
            .sort_by(|a, b| (a.start_unix_nano, &a.level).cmp(&(b.start_unix_nano, &b.level)));
        self.by_level_status
            .sort_by(|a, b| (&a.level, &a.status).cmp(&(&b.level, &b.status)));
        for top in [&mut self.top_rules, &mut self.top_hosts] {
            top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
            top.truncate(limit);
        }
        self
    }
}

/// The events of one capture source on one host: when they start and end, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SourceSpan {
    /// Hostname.
    pub hostname: String,
    /// Capture source (e.g. `auth.log`, `journald`, `fim`).
    pub source: String,
    /// Time of the earliest event.
    pub first_unix_nano: i64,
    /// Time of the latest event.
    pub last_unix_nano: i64,
    /// Number of events.
    pub count: u64,
}

/// Most time buckets a count query returns (the newest are kept).
pub const MAX_TIME_BUCKETS: usize = MAX_QUERY_LIMIT;

/// Nanoseconds in a bucket of `seconds`, refusing zero.
pub(crate) fn bucket_nanos(seconds: u32) -> Result<i64, crate::store::StoreError> {
    if seconds == 0 {
        return Err(crate::store::StoreError::InvalidQuery(
            "a time bucket must be at least one second".to_owned(),
        ));
    }
    Ok(i64::from(seconds) * 1_000_000_000)
}

/// The `events` column an [`EventGroup`] groups by (checked: it must exist and hold text or
/// integers; arrays and floats cannot be grouped).
pub(crate) fn event_group_column(
    group: &EventGroup,
) -> Result<&'static str, crate::store::StoreError> {
    use crate::store::event_row::{ColumnKind, event_column};
    match group {
        EventGroup::Host => Ok("hostname"),
        EventGroup::Kind => Ok("kind"),
        EventGroup::Source => Ok("source"),
        EventGroup::Field(name) => {
            let column = event_column(name).ok_or_else(|| {
                crate::store::StoreError::InvalidQuery(format!("unknown event field {name:?}"))
            })?;
            match column.kind {
                ColumnKind::Text | ColumnKind::Unsigned | ColumnKind::Signed => Ok(column.name),
                _ => Err(crate::store::StoreError::InvalidQuery(format!(
                    "events cannot be grouped by {name}: only text and integer fields"
                ))),
            }
        }
    }
}
