//! `/api/v1/rules`: the rules with their state, enable/disable, run a rule's tests.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;

use super::super::alerts;
use super::super::context::Op;
use super::super::rule_filter;
use super::super::rule_ops;
use super::super::state::SharedState;
use super::ApiResult;
use crate::rule_admin::Toggled;

/// `GET /api/v1/rules`.
pub async fn list(State(state): State<SharedState>, Op(_op, _ctx): Op) -> ApiResult {
    Ok(Json(json!({ "rules": rule_ops::list(&state).await? })))
}

async fn set(
    state: &SharedState,
    ctx: &super::super::context::Ctx,
    id: &str,
    enabled: bool,
) -> ApiResult {
    let toggled = rule_ops::set_enabled(state, ctx, id, enabled).await?;
    let rule = rule_ops::find(state, id).await?;
    Ok(Json(json!({
        "changed": toggled != Toggled::Unchanged,
        "loaded": match toggled { Toggled::Applied { loaded } => Some(loaded), Toggled::Unchanged => None },
        "rule": rule,
    })))
}

/// `POST /api/v1/rules/{rule_id}/enable`.
pub async fn enable(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(rule_id): Path<String>,
) -> ApiResult {
    set(&state, &ctx, &rule_id, true).await
}

/// `POST /api/v1/rules/{rule_id}/disable`.
pub async fn disable(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(rule_id): Path<String>,
) -> ApiResult {
    set(&state, &ctx, &rule_id, false).await
}

/// `POST /api/v1/rules/{rule_id}/test`.
pub async fn test(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(rule_id): Path<String>,
) -> ApiResult {
    let outcome = rule_ops::run_tests(&state, &ctx, &rule_id).await?;
    Ok(Json(
        json!({ "passed": outcome.passed(), "outcome": outcome }),
    ))
}

/// Body of `POST /api/v1/alerts/{id}/filter`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FilterBody {
    /// Field → values to exclude; omitted: the pre-selected candidates.
    pub selection: Option<BTreeMap<String, Vec<String>>>,
    /// Save it (otherwise only the preview is returned).
    pub save: bool,
    /// Id of a previewed filter to save under (a UUID); default: a new one.
    pub filter_id: Option<String>,
}

/// `POST /api/v1/alerts/{id}/filter`: candidates, YAML preview, and (with `save`)
/// the saved filter.
pub async fn alert_filter(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<String>,
    Json(body): Json<FilterBody>,
) -> ApiResult {
    let alert = alerts::find(&state, &id).await?;
    let events = alerts::matching_events(&state, &alert).await?;
    let candidates = rule_filter::candidates(&events);
    let selection: Vec<(String, String)> = match body.selection {
        Some(map) => map
            .into_iter()
            .flat_map(|(field, values)| values.into_iter().map(move |v| (field.clone(), v)))
            .collect(),
        None => rule_filter::default_selection(&candidates),
    };
    let spec = rule_filter::spec(&state, &ctx, &alert, body.filter_id, selection).await?;
    let yaml = rule_filter::render_yaml(&alert, &spec);
    let saved = if body.save {
        let saved = rule_filter::save(&state, &ctx, &alert, &spec).await?;
        Some(
            json!({ "id": saved.id, "path": saved.path.display().to_string(), "loaded": saved.loaded }),
        )
    } else {
        None
    };
    Ok(Json(json!({
        "filter_id": spec.id,
        "targets": spec.targets,
        "candidates": candidates,
        "yaml": yaml,
        "saved": saved,
    })))
}
