//! `/api/v1/users` (系统管理员).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;

use super::super::admin::{self, NewUser, UserChange};
use super::super::context::Op;
use super::super::state::SharedState;
use super::ApiResult;

/// `GET /api/v1/users`.
pub async fn list(State(state): State<SharedState>, Op(_op, _ctx): Op) -> ApiResult {
    let users: Vec<_> = state.db.users().await?.iter().map(|u| u.view()).collect();
    Ok(Json(json!({ "users": users })))
}

/// `POST /api/v1/users`: returns the one-time password once.
pub async fn create(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Json(new): Json<NewUser>,
) -> ApiResult {
    let password = admin::create_user(&state, &ctx, &new).await?;
    Ok(Json(
        json!({ "username": new.username.trim(), "one_time_password": password }),
    ))
}

/// `POST /api/v1/users/{username}`.
pub async fn update(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(username): Path<String>,
    Json(change): Json<UserChange>,
) -> ApiResult {
    let password = admin::update_user(&state, &ctx, &username, &change).await?;
    Ok(Json(
        json!({ "username": username, "one_time_password": password }),
    ))
}
