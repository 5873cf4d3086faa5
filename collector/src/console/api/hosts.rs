//! `/api/v1/hosts` and a host's events.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::super::alerts::parse_time;
use super::super::context::Op;
use super::super::state::SharedState;
use super::ApiResult;
use crate::store::{EventQuery, EventRecord};

/// `GET /api/v1/hosts`.
pub async fn list(State(state): State<SharedState>, Op(_op, _ctx): Op) -> ApiResult {
    let now = shaobing_wire::now_unix_nano();
    let offline_after = state.config.agent_offline_after.as_nanos() as i64;
    let agents: Vec<_> = state
        .store
        .agents()
        .await?
        .into_iter()
        .map(|a| {
            let online = now - a.last_seen_unix_nano < offline_after && a.status != "revoked";
            json!({ "agent": a, "online": online })
        })
        .collect();
    Ok(Json(json!({ "hosts": agents })))
}

/// Query of a host's events.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventsQuery {
    /// From (unix nanos or datetime-local).
    pub since: String,
    /// To.
    pub until: String,
    /// Event kind.
    pub kind: String,
    /// Rows (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// An event as JSON: header, raw line, and the Sigma fields it maps to.
pub fn event_json(record: &EventRecord) -> serde_json::Value {
    let mapped = shaobing_detect::fields::map_event(&record.event);
    json!({
        "event_id": record.event.event_id,
        "agent_id": record.agent_id,
        "seq": record.seq,
        "time_unix_nano": record.event.time_unix_nano,
        "kind": record.kind(),
        "source": record.event.source,
        "raw": record.event.raw,
        "fields": mapped.fields,
    })
}

/// `GET /api/v1/hosts/{agent_id}/events`.
pub async fn events(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(agent_id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult {
    let query = EventQuery {
        agent_id: Some(agent_id),
        kind: (!q.kind.is_empty()).then(|| q.kind.clone()),
        since: parse_time(&q.since, ctx.tz_offset_minutes)?,
        until: parse_time(&q.until, ctx.tz_offset_minutes)?,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
        ..EventQuery::default()
    };
    let events = state.store.events(&query).await?;
    Ok(Json(
        json!({ "events": events.iter().map(event_json).collect::<Vec<_>>() }),
    ))
}
