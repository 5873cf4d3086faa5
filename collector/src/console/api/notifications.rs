//! `/api/v1/notifications` (安全管理员).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use super::super::context::Op;
use super::super::notify::NewChannel;
use super::super::pages::notifications::{add_channel, send_test};
use super::super::state::SharedState;
use super::ApiResult;

/// `GET /api/v1/notifications`.
pub async fn list(State(state): State<SharedState>, Op(_op, _ctx): Op) -> ApiResult {
    Ok(Json(json!({
        "channels": state.db.channels().await?,
        "deliveries": state.db.deliveries(100).await?,
    })))
}

/// `POST /api/v1/notifications`.
pub async fn create(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Json(new): Json<NewChannel>,
) -> ApiResult {
    let id = add_channel(&state, &ctx, &new).await?;
    Ok(Json(json!({ "id": id })))
}

/// `POST /api/v1/notifications/{id}/test`.
pub async fn test(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<i64>,
) -> ApiResult {
    let delivery = send_test(&state, &ctx, id).await?;
    Ok(Json(json!({ "delivery": delivery })))
}
