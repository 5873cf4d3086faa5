//! The audit log (审计管理员 only, read only): who did what, when, from where.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::alerts::parse_time;
use super::super::context::Op;
use super::super::error::ConsoleError;
use super::super::html::{self, esc};
use super::super::state::SharedState;
use super::respond;
use crate::store::AuditQuery;

/// Filters of the audit page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// Exact actor.
    pub actor: String,
    /// Exact action.
    pub action: String,
    /// From (datetime-local or unix nanos).
    pub since: String,
    /// To.
    pub until: String,
}

impl AuditFilter {
    /// The store query.
    pub fn to_query(&self, tz: i32, limit: usize) -> Result<AuditQuery, ConsoleError> {
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        Ok(AuditQuery {
            since: parse_time(&self.since, tz)?,
            until: parse_time(&self.until, tz)?,
            actor: non_empty(&self.actor),
            action: non_empty(&self.action),
            limit: Some(limit),
        })
    }
}

/// `GET /audit`.
pub async fn page(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let result = async {
        let query = filter.to_query(ctx.tz_offset_minutes, 500)?;
        Ok::<_, ConsoleError>(state.store.audit_log(&query).await?)
    }
    .await;
    respond(&ctx, result.map(|entries| {
        let lang = ctx.lang;
        let mut body = format!(
            r#"<form class="filters" method="get"><label>{}<input name="actor" value="{}"></label><label>{}<input name="action" value="{}"></label><label>{}<input type="datetime-local" name="since" value="{}"></label><label>{}<input type="datetime-local" name="until" value="{}"></label><button type="submit">{}</button></form>
<p class="muted">{}</p>"#,
            lang.pick("操作人", "Actor"), esc(&filter.actor), lang.pick("操作", "Action"), esc(&filter.action),
            lang.pick("开始", "From"), esc(&filter.since), lang.pick("结束", "To"), esc(&filter.until), lang.pick("查询", "Search"),
            lang.pick("审计日志只追加，控制台与接口均不能修改或删除。", "The audit log is append-only: neither the console nor the API can edit or delete it."),
        );
        let _ = write!(
            body,
            r#"<table id="audit-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            lang.pick("时间", "Time"), lang.pick("操作人", "Actor"), lang.pick("操作", "Action"), lang.pick("对象", "Target"), lang.pick("详情（含来源地址）", "Details (incl. source address)"),
        );
        for e in &entries {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td><code class="raw">{}</code></td></tr>"#,
                esc(&ctx.time(e.time_unix_nano)), esc(&e.actor), esc(&e.action), esc(&e.target), esc(&e.detail),
            );
        }
        if entries.is_empty() {
            let _ = write!(body, r#"<tr><td colspan="5" class="muted">{}</td></tr>"#, lang.pick("没有记录", "No entries"));
        }
        body.push_str("</tbody></table>");
        html::page(&ctx, "/audit", lang.pick("审计日志", "Audit log"), &body).into_response()
    }))
}
