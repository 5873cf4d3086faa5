//! `/api/v1/audit` (read only; there is no route to change or delete entries).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::json;

use super::super::context::Op;
use super::super::pages::audit_log::AuditFilter;
use super::super::state::SharedState;
use super::ApiResult;
use crate::store::MAX_QUERY_LIMIT;

/// Extra query of the API.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Limit {
    /// Rows (default 100).
    pub limit: Option<usize>,
}

/// `GET /api/v1/audit`.
pub async fn list(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(filter): Query<AuditFilter>,
    Query(limit): Query<Limit>,
) -> ApiResult {
    let query = filter.to_query(
        ctx.tz_offset_minutes,
        limit.limit.unwrap_or(100).min(MAX_QUERY_LIMIT),
    )?;
    Ok(Json(
        json!({ "entries": state.store.audit_log(&query).await? }),
    ))
}
