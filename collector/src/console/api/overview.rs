//! `/api/v1/overview`.

use axum::Json;
use axum::extract::{Query, State};
use serde_json::json;

use super::super::context::Op;
use super::super::overview;
use super::super::pages::overview::OverviewQuery;
use super::super::state::SharedState;
use super::ApiResult;

/// `GET /api/v1/overview?hours=24`.
pub async fn overview(
    State(state): State<SharedState>,
    Op(_op, _ctx): Op,
    Query(q): Query<OverviewQuery>,
) -> ApiResult {
    let o = overview::compute(
        &state,
        q.hours.unwrap_or(24),
        shaobing_wire::now_unix_nano(),
    )
    .await?;
    Ok(Json(json!(o)))
}
