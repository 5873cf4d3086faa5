//! `/api/v1/alerts`: list with filters and paging, detail with matching events,
//! triage of one or many alerts.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::super::alerts::{self, AlertFilter, AlertHint, TriageRequest};
use super::super::context::Op;
use super::super::state::SharedState;
use super::ApiResult;
use super::hosts::event_json;

/// `GET /api/v1/alerts`.
pub async fn list(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(filter): Query<AlertFilter>,
) -> ApiResult {
    let page = alerts::list(&state, &filter, ctx.tz_offset_minutes).await?;
    Ok(Json(json!(page)))
}

/// `GET /api/v1/alerts/{id}`.
pub async fn detail(
    State(state): State<SharedState>,
    Op(_op, _ctx): Op,
    Path(id): Path<String>,
) -> ApiResult {
    let alert = alerts::find(&state, &id).await?;
    let events = alerts::matching_events(&state, &alert).await?;
    let rule = state
        .rules
        .rules()
        .into_iter()
        .find(|r| r.id == alert.rule_id);
    Ok(Json(json!({
        "alert": alert,
        "closing_reason": alerts::closing_reason(&alert.note),
        "rule": rule,
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
    })))
}

/// Body of a triage call.
#[derive(Debug, Deserialize)]
pub struct TriageBody {
    /// The action.
    #[serde(flatten)]
    pub request: TriageRequest,
    /// Lookup hint of earlier versions: accepted, no longer needed (alerts are found by id).
    #[serde(default)]
    pub hint: AlertHint,
}

/// `POST /api/v1/alerts/{id}/triage`.
pub async fn triage(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<String>,
    Json(body): Json<TriageBody>,
) -> ApiResult {
    let alert = alerts::find(&state, &id).await?;
    let updated = alerts::triage(&state, &ctx, &alert, &body.request).await?;
    Ok(Json(json!({ "alert": updated })))
}

/// Body of a bulk triage call.
#[derive(Debug, Deserialize)]
pub struct BulkBody {
    /// Alert ids (optionally `id|rule|host|first_time` for a fast lookup).
    pub ids: Vec<String>,
    /// The action (acknowledge, resolve, false_positive, reopen).
    #[serde(flatten)]
    pub request: TriageRequest,
}

/// `POST /api/v1/alerts/bulk`.
pub async fn bulk(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Json(body): Json<BulkBody>,
) -> ApiResult {
    let changed = alerts::bulk(&state, &ctx, &body.ids, &body.request).await?;
    Ok(Json(json!({ "changed": changed })))
}
