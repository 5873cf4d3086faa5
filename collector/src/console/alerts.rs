//! Alert operations shared by the pages and the API: the list filter, finding one
//! alert, its matching events and host timeline, and triage (acknowledge, assign,
//! close as resolved or false positive, reopen) with an audit entry for each change.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use super::context::Ctx;
use super::error::{ConsoleError, ConsoleResult};
use super::i18n;
use super::roles::Role;
use super::state::ConsoleState;
use crate::store::{AlertQuery, AlertRecord, AlertStatus, EventQuery, EventRecord, FieldFilter};

/// Default rows per page.
pub const DEFAULT_PER_PAGE: usize = 50;
/// Most rows per page.
pub const MAX_PER_PAGE: usize = 200;
/// Matching events loaded for the detail view.
pub const DETAIL_EVENTS: usize = 20;
/// Host timeline shown around an alert: this much before its first and after its last event.
pub const TIMELINE_MARGIN_NS: i64 = 10 * 60 * 1_000_000_000;

/// List filters as they appear in the query string of `/alerts` and `/api/v1/alerts`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct AlertFilter {
    /// Preset window: `1h`, `24h`, `7d`, `30d`, `all` (default `7d`).
    pub range: String,
    /// Start (`datetime-local` in the operator's zone, or unix nanos); overrides `range`.
    pub since: String,
    /// End (same forms).
    pub until: String,
    /// Levels, comma separated.
    pub level: String,
    /// `open`, `acknowledged`, `closed` (comma separated).
    pub status: String,
    /// Exact rule id.
    pub rule: String,
    /// Exact hostname.
    pub host: String,
    /// Text search.
    pub q: String,
    /// Page number from 1.
    pub page: usize,
    /// Rows per page.
    pub per_page: usize,
}

impl AlertFilter {
    /// Page number (≥ 1).
    pub fn page(&self) -> usize {
        self.page.max(1)
    }

    /// Rows per page (default 50, at most 200).
    pub fn per_page(&self) -> usize {
        match self.per_page {
            0 => DEFAULT_PER_PAGE,
            n => n.min(MAX_PER_PAGE),
        }
    }

    /// The store query for this filter; asks for one row more than a page to know
    /// whether a next page exists.
    pub fn to_query(&self, tz_offset_minutes: i32, now_ns: i64) -> ConsoleResult<AlertQuery> {
        let since = parse_time(&self.since, tz_offset_minutes)?.or_else(|| {
            let hours: i64 = match self.range.as_str() {
                "1h" => 1,
                "24h" => 24,
                "30d" => 30 * 24,
                "all" => return None,
                _ => 7 * 24,
            };
            Some(now_ns - hours * 3600 * 1_000_000_000)
        });
        let statuses = split_list(&self.status)
            .map(|s| {
                AlertStatus::from_name(s)
                    .ok_or_else(|| ConsoleError::Invalid(format!("unknown status {s:?}")))
            })
            .collect::<ConsoleResult<Vec<_>>>()?;
        Ok(AlertQuery {
            since,
            until: parse_time(&self.until, tz_offset_minutes)?,
            host: non_empty(&self.host),
            rule_id: non_empty(&self.rule),
            levels: split_list(&self.level).map(str::to_owned).collect(),
            statuses,
            text: non_empty(&self.q),
            limit: Some(self.per_page() + 1),
            offset: (self.page() - 1) * self.per_page(),
            ..AlertQuery::default()
        })
    }

    /// The filter as a query string without the page (for pager links).
    pub fn query_string_without_page(&self) -> String {
        let mut copy = self.clone();
        copy.page = 0;
        let pairs: Vec<(&str, String)> = [
            ("range", copy.range),
            ("since", copy.since),
            ("until", copy.until),
            ("level", copy.level),
            ("status", copy.status),
            ("rule", copy.rule),
            ("host", copy.host),
            ("q", copy.q),
            (
                "per_page",
                if copy.per_page == 0 {
                    String::new()
                } else {
                    copy.per_page.to_string()
                },
            ),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn non_empty(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Parses a time given as unix nanoseconds or a `datetime-local` value.
pub fn parse_time(text: &str, tz_offset_minutes: i32) -> ConsoleResult<Option<i64>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(Some(ns));
    }
    i18n::parse_local_datetime(text, tz_offset_minutes)
        .map(Some)
        .ok_or_else(|| ConsoleError::Invalid(format!("invalid time {text:?}")))
}

/// One page of alerts and whether another follows.
#[derive(Debug, Clone, Serialize)]
pub struct AlertPage {
    /// Rows of this page.
    pub alerts: Vec<AlertRecord>,
    /// Page number.
    pub page: usize,
    /// A next page exists.
    pub has_next: bool,
}

/// Runs a list filter.
pub async fn list(state: &ConsoleState, filter: &AlertFilter, tz: i32) -> ConsoleResult<AlertPage> {
    let query = filter.to_query(tz, shaobing_wire::now_unix_nano())?;
    let mut alerts = state.store.alerts(&query).await?;
    let has_next = alerts.len() > filter.per_page();
    alerts.truncate(filter.per_page());
    Ok(AlertPage {
        alerts,
        page: filter.page(),
        has_next,
    })
}

/// Where to look for an alert quickly: links carry its rule, host and first time.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct AlertHint {
    /// Rule id.
    pub rule: String,
    /// Hostname.
    pub host: String,
    /// First event time (unix nanos).
    pub ft: i64,
}

impl AlertHint {
    /// The hint for a known alert (appended to its links).
    pub fn of(alert: &AlertRecord) -> Self {
        AlertHint {
            rule: alert.rule_id.clone(),
            host: alert.hostname.clone(),
            ft: alert.first_time_unix_nano,
        }
    }

    /// `rule=…&host=…&ft=…`.
    pub fn query_string(&self) -> String {
        serde_urlencoded::to_string([
            ("rule", self.rule.clone()),
            ("host", self.host.clone()),
            ("ft", self.ft.to_string()),
        ])
        .unwrap_or_default()
    }
}

/// Finds one alert by id.
pub async fn find(state: &ConsoleState, alert_id: &str) -> ConsoleResult<AlertRecord> {
    let query = AlertQuery {
        alert_id: Some(alert_id.to_owned()),
        limit: Some(1),
        ..AlertQuery::default()
    };
    state
        .store
        .alerts(&query)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ConsoleError::NotFound(format!("alert {alert_id}")))
}

/// The alert's matching events (up to [`DETAIL_EVENTS`]), oldest first.
pub async fn matching_events(
    state: &ConsoleState,
    alert: &AlertRecord,
) -> ConsoleResult<Vec<EventRecord>> {
    let lookups = alert.event_ids.iter().take(DETAIL_EVENTS).map(|id| {
        let query = EventQuery {
            agent_id: non_empty(&alert.agent_id),
            since: Some(alert.first_time_unix_nano - TIMELINE_MARGIN_NS),
            until: Some(alert.last_time_unix_nano + TIMELINE_MARGIN_NS),
            fields: vec![FieldFilter::new("event_id", id.clone())],
            limit: Some(1),
            ..EventQuery::default()
        };
        let store = state.store.clone();
        async move { store.events(&query).await }
    });
    let mut events = Vec::new();
    for found in futures::future::join_all(lookups).await {
        events.extend(found?);
    }
    events.sort_by_key(|e| e.event.time_unix_nano);
    Ok(events)
}

/// Events of the alert's host around it, newest first.
pub async fn host_timeline(
    state: &ConsoleState,
    alert: &AlertRecord,
    limit: usize,
) -> ConsoleResult<Vec<EventRecord>> {
    if alert.agent_id.is_empty() && alert.hostname.is_empty() {
        return Ok(Vec::new());
    }
    let query = EventQuery {
        agent_id: non_empty(&alert.agent_id),
        host: if alert.agent_id.is_empty() {
            non_empty(&alert.hostname)
        } else {
            None
        },
        since: Some(alert.first_time_unix_nano - TIMELINE_MARGIN_NS),
        until: Some(alert.last_time_unix_nano + TIMELINE_MARGIN_NS),
        limit: Some(limit),
        ..EventQuery::default()
    };
    Ok(state.store.events(&query).await?)
}

/// What an operator does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageAction {
    /// Someone is on it.
    Acknowledge,
    /// Hand it to a security administrator (status becomes acknowledged).
    Assign,
    /// Closed: handled.
    Resolve,
    /// Closed: not a real attack.
    FalsePositive,
    /// Back to open.
    Reopen,
}

impl TriageAction {
    /// Parses the form/API name.
    pub fn from_name(name: &str) -> Option<TriageAction> {
        serde_json::from_value(json!(name)).ok()
    }

    /// Audit action name.
    pub fn audit_name(self) -> &'static str {
        match self {
            TriageAction::Acknowledge => "alert.acknowledge",
            TriageAction::Assign => "alert.assign",
            TriageAction::Resolve => "alert.close.resolved",
            TriageAction::FalsePositive => "alert.close.false_positive",
            TriageAction::Reopen => "alert.reopen",
        }
    }

    fn status(self) -> AlertStatus {
        match self {
            TriageAction::Acknowledge | TriageAction::Assign => AlertStatus::Acknowledged,
            TriageAction::Resolve | TriageAction::FalsePositive => AlertStatus::Closed,
            TriageAction::Reopen => AlertStatus::Open,
        }
    }
}

/// A triage request (form or JSON).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct TriageRequest {
    /// What to do.
    pub action: TriageAction,
    /// New assignee (for `assign`; others keep the current one, `acknowledge` takes it
    /// for the caller when nobody has it).
    #[serde(default)]
    pub assignee: String,
    /// Note (required when closing).
    #[serde(default)]
    pub note: String,
}

/// Why an alert was closed, kept as a prefix of the stored note.
pub fn closing_reason(note: &str) -> Option<&'static str> {
    if note.starts_with("[false_positive]") {
        Some("false_positive")
    } else if note.starts_with("[resolved]") {
        Some("resolved")
    } else {
        None
    }
}

/// The note without its closing-reason prefix.
pub fn note_text(note: &str) -> &str {
    note.strip_prefix("[false_positive]")
        .or_else(|| note.strip_prefix("[resolved]"))
        .map(str::trim_start)
        .unwrap_or(note)
}

/// Applies a triage action and writes the audit entry. Returns the updated record.
pub async fn triage(
    state: &ConsoleState,
    ctx: &Ctx,
    alert: &AlertRecord,
    request: &TriageRequest,
) -> ConsoleResult<AlertRecord> {
    let actor = ctx.actor();
    let note = request.note.trim();
    if note.chars().count() > 2000 {
        return Err(ConsoleError::Invalid(
            "notes are at most 2000 characters".to_owned(),
        ));
    }
    let assignee = match request.action {
        TriageAction::Assign => {
            let name = request.assignee.trim();
            match state.db.user(name).await? {
                Some(user) if user.role == Role::Secadmin && !user.disabled => name.to_owned(),
                _ => {
                    return Err(ConsoleError::Invalid(format!(
                        "{name:?} is not an active security administrator"
                    )));
                }
            }
        }
        TriageAction::Acknowledge if alert.assignee.is_empty() => actor.clone(),
        _ => alert.assignee.clone(),
    };
    let stored_note = match request.action {
        TriageAction::Resolve | TriageAction::FalsePositive if note.is_empty() => {
            return Err(ConsoleError::Invalid(
                ctx.t(
                    "关闭告警时请填写说明",
                    "a note is required to close an alert",
                )
                .to_owned(),
            ));
        }
        TriageAction::Resolve => format!("[resolved] {note}"),
        TriageAction::FalsePositive => format!("[false_positive] {note}"),
        _ if note.is_empty() => alert.note.clone(),
        _ => note.to_owned(),
    };
    let status = request.action.status();
    state
        .store
        .set_alert_triage(&alert.alert_id, status, &assignee, &stored_note)
        .await?;
    audit::record(
        state,
        ctx,
        request.action.audit_name(),
        &alert.alert_id,
        json!({
            "rule_id": alert.rule_id,
            "host": alert.hostname,
            "from_status": alert.status.name(),
            "to_status": status.name(),
            "assignee": assignee,
            "note": note,
        }),
    )
    .await?;
    let mut updated = alert.clone();
    updated.status = status;
    updated.assignee = assignee;
    updated.note = stored_note;
    Ok(updated)
}

/// Bulk triage: acknowledge or close many alerts with one note. Returns how many changed.
pub async fn bulk(
    state: &ConsoleState,
    ctx: &Ctx,
    ids: &[String],
    request: &TriageRequest,
) -> ConsoleResult<usize> {
    if ids.is_empty() {
        return Err(ConsoleError::Invalid(
            ctx.t("请先选择告警", "select alerts first").to_owned(),
        ));
    }
    if ids.len() > MAX_PER_PAGE {
        return Err(ConsoleError::Invalid(format!(
            "at most {MAX_PER_PAGE} alerts at once"
        )));
    }
    if request.action == TriageAction::Assign {
        return Err(ConsoleError::Invalid(
            "assign alerts one at a time".to_owned(),
        ));
    }
    let mut changed = 0;
    for id in ids {
        let (id, _) = split_hinted_id(id);
        let alert = find(state, &id).await?;
        triage(state, ctx, &alert, request).await?;
        changed += 1;
    }
    Ok(changed)
}

/// Bulk forms send `id|rule|host|first_time` so each alert is found without a scan.
pub fn split_hinted_id(value: &str) -> (String, AlertHint) {
    let mut parts = value.splitn(4, '|');
    let id = parts.next().unwrap_or_default().to_owned();
    let rule = parts.next().unwrap_or_default().to_owned();
    let host = parts.next().unwrap_or_default().to_owned();
    let ft = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    (id, AlertHint { rule, host, ft })
}

/// The value [`split_hinted_id`] reads.
pub fn hinted_id(alert: &AlertRecord) -> String {
    format!(
        "{}|{}|{}|{}",
        alert.alert_id, alert.rule_id, alert.hostname, alert.first_time_unix_nano
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_builds_the_store_query() {
        let filter = AlertFilter {
            range: "24h".into(),
            level: "high, critical".into(),
            status: "open".into(),
            q: " ssh ".into(),
            page: 3,
            per_page: 20,
            ..AlertFilter::default()
        };
        let now = 100 * 3600 * 1_000_000_000;
        let q = filter.to_query(480, now).unwrap();
        assert_eq!(q.since, Some(now - 24 * 3600 * 1_000_000_000));
        assert_eq!(q.levels, vec!["high", "critical"]);
        assert_eq!(q.statuses, vec![AlertStatus::Open]);
        assert_eq!(q.text.as_deref(), Some("ssh"));
        assert_eq!((q.limit, q.offset), (Some(21), 40));
        let bad = AlertFilter {
            status: "gone".into(),
            ..AlertFilter::default()
        };
        assert!(bad.to_query(0, now).is_err());
        assert!(
            filter
                .query_string_without_page()
                .contains("level=high%2C+critical")
        );
    }

    #[test]
    fn closing_reason_round_trips_through_the_note() {
        assert_eq!(
            closing_reason("[false_positive] scanner test"),
            Some("false_positive")
        );
        assert_eq!(note_text("[false_positive] scanner test"), "scanner test");
        assert_eq!(closing_reason("looking"), None);
        assert_eq!(
            TriageAction::from_name("false_positive"),
            Some(TriageAction::FalsePositive)
        );
        assert_eq!(TriageAction::from_name("delete"), None);
        let (id, hint) = split_hinted_id("abc|rule-1|web-1|42");
        assert_eq!(
            (id.as_str(), hint.rule.as_str(), hint.host.as_str(), hint.ft),
            ("abc", "rule-1", "web-1", 42)
        );
    }
}
