//! `/api/v1/reports/mlps` (合规专员).

use axum::Json;
use axum::extract::{Query, State};
use serde_json::json;

use super::super::context::Op;
use super::super::pages::reports::ReportQuery;
use super::super::reports;
use super::super::state::SharedState;
use super::ApiResult;

/// `GET /api/v1/reports/mlps?days=30`.
pub async fn summary(
    State(state): State<SharedState>,
    Op(_op, _ctx): Op,
    Query(q): Query<ReportQuery>,
) -> ApiResult {
    let summary =
        reports::summarise(&state, q.days.unwrap_or(30), shaobing_wire::now_unix_nano()).await?;
    Ok(Json(json!(summary)))
}
