//! Alerts and their suppression.
//!
//! # One alert per attack window
//!
//! Matches are grouped by a *suppression key*: the rule id, the group key (the rule's
//! group-by fields and their values, e.g. `SourceIp=203.0.113.7`) and, for detection
//! rules, the agent. The first match of a key opens an alert; every further match
//! of the same key whose event time is within the suppression window of the alert's
//! first time (default 10 minutes, [`crate::DetectConfig::suppression_window_secs`])
//! updates that alert: `count` grows, `last_time_unix_nano` moves, new event ids are
//! added (up to [`crate::MAX_EVENT_IDS`]) and the summary is re-rendered. The alert
//! keeps its `alert_id`, and [`crate::Detector::process`] returns the updated alert
//! each time, so the caller can *upsert* by `alert_id`. A match after the window
//! opens a new alert with a new id.
//!
//! `alert_id` is the time of the event that opened the alert (16 hex digits) followed by a
//! hash of the suppression key and that time, so re-processing the same events gives the
//! same ids, and ids sort by opening time (stores ordered by id keep recent alerts
//! together: see [`time_ordered_id`]).
//! `first_time_unix_nano` is the earliest event covered: for a correlation, the
//! first event of the window that crossed the threshold (whole seconds).
//!
//! # Counts
//!
//! - Detection alerts: `count` = matching events.
//! - Correlation alerts: the first firing counts the events in the correlation
//!   window (e.g. the 5 failures that crossed the threshold); each later firing —
//!   one per further matching event while the condition holds — adds one.
//!
//! # Summary templates
//!
//! `shaobing.summary` may use `{count}`, `{value}` (the correlation's aggregated value
//! at the latest firing: events for `event_count`, distinct values for
//! `value_count`), `{timespan}` (e.g. `60s`), `{group_key}`, `{title}`, `{level}`,
//! `{hostname}`, `{agent_id}`, and any event field (`{SourceIp}`, `{User}`, ...),
//! looked up first in the group key, then in the latest event. Unknown names
//! render as `-`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::MAX_EVENT_IDS;
use crate::catalog::{RuleKind, RuleMeta};
use crate::sigma_event::SigmaEvent;

/// One alert, as stored and shown. Upsert by `alert_id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// Deterministic id: hash of rule id + scope + group key + the time of the
    /// event that opened the alert.
    pub alert_id: String,
    /// Id of the rule that raised it.
    pub rule_id: String,
    /// Title of that rule.
    pub rule_title: String,
    /// `informational`, `low`, `medium`, `high` or `critical`.
    pub level: String,
    /// `detection` or `correlation`.
    pub kind: String,
    /// Sigma tags (`attack.t1110`, ...).
    pub tags: Vec<String>,
    /// 等保 clauses from `rules/mlps.yml` (e.g. `8.1.4.1 b)`).
    pub mlps: Vec<String>,
    /// Agent of the event that opened the alert.
    pub agent_id: String,
    /// Host name of the event that opened the alert.
    pub hostname: String,
    /// Earliest event time in the alert.
    pub first_time_unix_nano: i64,
    /// Latest event time in the alert.
    pub last_time_unix_nano: i64,
    /// Events counted in the alert (see the module docs).
    pub count: u64,
    /// Group-by fields and values, e.g. `SourceIp=203.0.113.7`; empty when none.
    pub group_key: String,
    /// Ids of the events in the alert, oldest first, at most [`MAX_EVENT_IDS`].
    pub event_ids: Vec<String>,
    /// One human line.
    pub summary: String,
}

/// A rule match, ready to become or update an alert.
pub struct Hit<'a> {
    /// The rule.
    pub rule: &'a RuleMeta,
    /// Group-by pairs (field, value).
    pub group: Vec<(String, String)>,
    /// Event that caused the hit.
    pub event: &'a SigmaEvent<'a>,
    /// Event time in unix nanoseconds.
    pub time_unix_nano: i64,
    /// Earliest event the hit covers (a correlation's window starts before the
    /// event that completed it); at most `time_unix_nano`.
    pub first_time_unix_nano: i64,
    /// Events this hit contributes (1 for a detection; the window for a new
    /// correlation alert).
    pub count: u64,
    /// Event ids of a new alert (the triggering event, or a correlation's window);
    /// an update only adds the triggering event's id.
    pub event_ids: Vec<String>,
    /// Correlation aggregated value (0 for detections).
    pub value: f64,
}

/// Open alerts by suppression key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertBook {
    open: HashMap<String, OpenAlert>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenAlert {
    /// Event time that opened the alert (the suppression window starts here).
    opened_unix_nano: i64,
    alert: Alert,
}

impl AlertBook {
    /// Records a hit; returns the new or updated alert.
    pub fn record(&mut self, hit: Hit<'_>, window_nanos: i64) -> Alert {
        let group_key = render_group_key(&hit.group);
        let scope = match hit.rule.kind {
            RuleKind::Detection => hit.event.text("AgentId").unwrap_or_default(),
            RuleKind::Correlation | RuleKind::Filter => String::new(),
        };
        let key = format!("{}\u{1f}{scope}\u{1f}{group_key}", hit.rule.id);
        let time = hit.time_unix_nano;

        if let Some(open) = self.open.get_mut(&key)
            && time.abs_diff(open.opened_unix_nano) < window_nanos.unsigned_abs()
        {
            let alert = &mut open.alert;
            alert.first_time_unix_nano = alert
                .first_time_unix_nano
                .min(hit.first_time_unix_nano.min(time));
            alert.last_time_unix_nano = alert.last_time_unix_nano.max(time);
            alert.count += match hit.rule.kind {
                RuleKind::Correlation => 1,
                RuleKind::Detection | RuleKind::Filter => hit.count,
            };
            // Only the triggering event is new: the rest of a correlation's window
            // is already in the alert (re-checking all of it is quadratic).
            if let Some(id) = hit.event.text("EventId")
                && alert.event_ids.len() < MAX_EVENT_IDS
                && !alert.event_ids.contains(&id)
            {
                alert.event_ids.push(id);
            }
            alert.summary = render_summary(hit.rule, &hit.group, hit.event, alert, hit.value);
            return alert.clone();
        }

        let mut event_ids = hit.event_ids;
        event_ids.truncate(MAX_EVENT_IDS);
        let mut alert = Alert {
            alert_id: alert_id(&key, time),
            rule_id: hit.rule.id.clone(),
            rule_title: hit.rule.title.clone(),
            level: hit.rule.level.clone(),
            kind: hit.rule.kind.name().to_string(),
            tags: hit.rule.tags.clone(),
            mlps: hit.rule.mlps.clone(),
            agent_id: hit.event.text("AgentId").unwrap_or_default(),
            hostname: hit.event.text("Hostname").unwrap_or_default(),
            first_time_unix_nano: hit.first_time_unix_nano.min(time),
            last_time_unix_nano: time,
            count: hit.count.max(1),
            group_key,
            event_ids,
            summary: String::new(),
        };
        alert.summary = render_summary(hit.rule, &hit.group, hit.event, &alert, hit.value);
        self.open.insert(
            key,
            OpenAlert {
                opened_unix_nano: time,
                alert: alert.clone(),
            },
        );
        alert
    }

    /// Forgets alerts whose window closed well before `now_unix_nano` (an event
    /// time), keeping one extra window of grace for late events.
    pub fn evict(&mut self, now_unix_nano: i64, window_nanos: i64) {
        self.open.retain(|_, open| {
            now_unix_nano.saturating_sub(open.opened_unix_nano) < window_nanos.saturating_mul(2)
        });
    }

    /// Number of open alerts.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no alert is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// `Field=value, Field=value`.
fn render_group_key(group: &[(String, String)]) -> String {
    group
        .iter()
        .map(|(field, value)| format!("{field}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn alert_id(suppression_key: &str, first_time_unix_nano: i64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(suppression_key.as_bytes());
    hasher.update([0]);
    hasher.update(first_time_unix_nano.to_be_bytes());
    time_ordered_id(first_time_unix_nano, &hasher.finalize())
}

/// A 32-hex-digit id: the time (unix nanoseconds, 16 digits, big-endian; times before 1970
/// count as 0) then the first 8 bytes of `digest`. Ids of alerts opened close in time sort
/// next to each other, so a store ordered by id keeps recent alerts together.
pub fn time_ordered_id(time_unix_nano: i64, digest: &[u8]) -> String {
    let time = u64::try_from(time_unix_nano).unwrap_or(0);
    let tail = digest.get(..8).unwrap_or(digest);
    format!("{time:016x}{}", hex::encode(tail))
}

fn render_summary(
    rule: &RuleMeta,
    group: &[(String, String)],
    event: &SigmaEvent<'_>,
    alert: &Alert,
    value: f64,
) -> String {
    let template = rule
        .summary
        .clone()
        .unwrap_or_else(|| default_template(rule, alert));
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = &after[..close];
        out.push_str(&placeholder_value(name, rule, group, event, alert, value));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn default_template(rule: &RuleMeta, alert: &Alert) -> String {
    match (rule.kind, alert.group_key.is_empty()) {
        (RuleKind::Correlation, false) => {
            "{title}: {count} events for {group_key} within {timespan}".to_string()
        }
        (RuleKind::Correlation, true) => "{title}: {count} events within {timespan}".to_string(),
        (_, false) => "{title} on {hostname} ({group_key})".to_string(),
        (_, true) => "{title} on {hostname}".to_string(),
    }
}

fn placeholder_value(
    name: &str,
    rule: &RuleMeta,
    group: &[(String, String)],
    event: &SigmaEvent<'_>,
    alert: &Alert,
    value: f64,
) -> String {
    match name {
        "count" => alert.count.to_string(),
        "value" => format_number(value),
        "timespan" => format!("{}s", rule.timespan_secs),
        "group_key" => alert.group_key.clone(),
        "title" => rule.title.clone(),
        "level" => rule.level.clone(),
        "hostname" => or_dash(alert.hostname.clone()),
        "agent_id" => or_dash(alert.agent_id.clone()),
        field => group
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value.clone())
            .or_else(|| event.text(field))
            .unwrap_or_else(|| "-".to_string()),
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_start_with_the_opening_time_and_sort_by_it() {
        let early = alert_id(
            "rule\u{1f}\u{1f}SourceIp=192.0.2.1",
            1_700_000_000_000_000_000,
        );
        let late = alert_id(
            "rule\u{1f}\u{1f}SourceIp=192.0.2.1",
            1_700_000_000_000_000_001,
        );
        let other = alert_id(
            "rule\u{1f}\u{1f}SourceIp=192.0.2.2",
            1_700_000_000_000_000_000,
        );
        for id in [&early, &late, &other] {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert!(early.starts_with("17979cfe362a0000"), "{early}");
        assert!(early < late);
        assert_ne!(early, other);
        assert_eq!(&early[..16], &other[..16]);
        assert_eq!(
            time_ordered_id(-5, &[0xab; 8]),
            format!("{:016x}{}", 0, "ab".repeat(8))
        );
    }
}
