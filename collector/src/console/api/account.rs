//! `/api/v1/me` and the caller's own API tokens.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::super::admin;
use super::super::context::Op;
use super::super::state::SharedState;
use super::ApiResult;

/// `GET /api/v1/me`.
pub async fn me(Op(op, ctx): Op) -> ApiResult {
    Ok(Json(json!({
        "user": op.user.view(),
        "lang": ctx.lang,
        "tz_offset_minutes": ctx.tz_offset_minutes,
        "csrf_token": op.csrf_token(),
    })))
}

/// `GET /api/v1/tokens`.
pub async fn tokens(State(state): State<SharedState>, Op(op, _ctx): Op) -> ApiResult {
    Ok(Json(
        json!({ "tokens": state.db.api_tokens_of(op.name()).await? }),
    ))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize)]
pub struct NewToken {
    /// Label.
    pub name: String,
}

/// `POST /api/v1/tokens`.
pub async fn token_create(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    Json(body): Json<NewToken>,
) -> ApiResult {
    let (secret, id) = admin::create_token(&state, &ctx, &op, &body.name).await?;
    Ok(Json(json!({ "id": id, "token": secret })))
}

/// `POST /api/v1/tokens/{id}/revoke`.
pub async fn token_revoke(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    Path(id): Path<String>,
) -> ApiResult {
    admin::revoke_token(&state, &ctx, &op, &id).await?;
    Ok(Json(json!({ "revoked": id })))
}
