//! `/api/v1/rules`.

use axum::Json;
use axum::extract::State;
use serde_json::json;

use super::super::context::Op;
use super::super::state::SharedState;
use super::ApiResult;

/// `GET /api/v1/rules`.
pub async fn list(State(state): State<SharedState>, Op(_op, _ctx): Op) -> ApiResult {
    Ok(Json(json!({ "rules": state.rules.rules() })))
}
