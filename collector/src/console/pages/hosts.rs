//! Hosts: every agent with its online state, and one host's event timeline.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::context::Op;
use super::super::html::{self, esc, url_encode};
use super::super::state::SharedState;
use super::alert_detail::event_block;
use super::respond;
use crate::store::EventQuery;

/// Events per timeline page.
const TIMELINE_PAGE: usize = 100;

/// `GET /hosts`.
pub async fn list(State(state): State<SharedState>, Op(_op, ctx): Op) -> Response {
    let result = state.store.agents().await.map_err(Into::into);
    respond(&ctx, result.map(|agents| {
        let lang = ctx.lang;
        let now = shaobing_wire::now_unix_nano();
        let offline_after = state.config.agent_offline_after.as_nanos() as i64;
        let mut body = format!(
            r#"<table id="hosts-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            lang.pick("主机名", "Hostname"), lang.pick("代理 ID", "Agent id"), "IP",
            lang.pick("系统", "OS"), lang.pick("版本", "Version"), lang.pick("状态", "State"), lang.pick("最近联系", "Last seen"),
        );
        for a in &agents {
            let online = now - a.last_seen_unix_nano < offline_after && a.status != "revoked";
            let state_label = match (a.status.as_str(), online) {
                ("revoked", _) => lang.pick("已吊销", "revoked"),
                (_, true) => lang.pick("在线", "online"),
                (_, false) => lang.pick("离线", "offline"),
            };
            let _ = write!(
                body,
                r#"<tr><td><a href="/hosts/{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class="badge {}">{}</span></td><td>{}</td></tr>"#,
                url_encode(&a.agent_id), esc(&a.hostname), esc(&a.agent_id), esc(&a.ips.join(", ")), esc(&a.os), esc(&a.version),
                if online { "status-closed" } else { "status-open" }, state_label, esc(&ctx.time(a.last_seen_unix_nano)),
            );
        }
        if agents.is_empty() {
            let _ = write!(body, r#"<tr><td colspan="7" class="muted">{}</td></tr>"#, lang.pick("还没有主机注册", "No agent has enrolled yet"));
        }
        body.push_str("</tbody></table>");
        html::page(&ctx, "/hosts", lang.pick("主机", "Hosts"), &body).into_response()
    }))
}

/// Query of a host timeline.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TimelineQuery {
    /// Only events before this time (unix nanos): the next page.
    pub before: Option<i64>,
}

/// `GET /hosts/{agent_id}`.
pub async fn detail(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(agent_id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Response {
    let query = EventQuery {
        agent_id: Some(agent_id.clone()),
        until: q.before,
        limit: Some(TIMELINE_PAGE),
        ..EventQuery::default()
    };
    let result = state.store.events(&query).await.map_err(Into::into);
    respond(&ctx, result.map(|events| {
        let lang = ctx.lang;
        let mut body = format!(
            r#"<p><a href="/hosts">← {}</a></p><table id="host-events"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            lang.pick("全部主机", "All hosts"), lang.pick("时间", "Time"), lang.pick("类型", "Kind"), lang.pick("来源", "Source"), lang.pick("原始日志 / 字段", "Raw line / fields"),
        );
        for e in &events {
            body.push_str(&event_block(&ctx, e, false));
        }
        body.push_str("</tbody></table>");
        if events.len() == TIMELINE_PAGE
            && let Some(oldest) = events.last()
        {
            let _ = write!(body, r#"<div class="pager"><a href="?before={}">{}</a></div>"#, oldest.event.time_unix_nano, lang.pick("更早的事件", "Older events"));
        }
        html::page(&ctx, "/hosts", &format!("{} · {}", lang.pick("主机", "Host"), agent_id), &body).into_response()
    }))
}
