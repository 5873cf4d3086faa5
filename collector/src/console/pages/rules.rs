//! Rules: every loaded rule with its level, kind, log source, ATT&CK tags and 等保 clauses.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::context::Op;
use super::super::html::{self, esc, url_encode};
use super::super::state::SharedState;

/// Query of the rules page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RulesQuery {
    /// Text filter over id, title, tags and clauses.
    pub q: String,
}

/// `GET /rules`.
pub async fn list(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(query): Query<RulesQuery>,
) -> Response {
    let lang = ctx.lang;
    let needle = query.q.trim().to_lowercase();
    let mut rules = state.rules.rules();
    rules.retain(|r| {
        needle.is_empty()
            || [&r.id, &r.title, &r.description, &r.logsource]
                .iter()
                .any(|f| f.to_lowercase().contains(&needle))
            || r.tags
                .iter()
                .chain(&r.mlps)
                .any(|t| t.to_lowercase().contains(&needle))
    });
    rules.sort_by(|a, b| a.title.cmp(&b.title));
    let mut body = format!(
        r#"<form class="filters" method="get"><label>{}<input name="q" value="{}"></label><button type="submit">{}</button></form><p class="muted">{} {}</p>"#,
        lang.pick("关键字", "Text"),
        esc(&query.q),
        lang.pick("查询", "Search"),
        lang.pick("已加载规则：", "Rules loaded:"),
        rules.len(),
    );
    let _ = write!(
        body,
        r#"<table id="rules-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>ATT&amp;CK</th><th>{}</th></tr></thead><tbody>"#,
        lang.pick("规则", "Rule"),
        lang.pick("级别", "Level"),
        lang.pick("类型", "Kind"),
        lang.pick("日志源", "Log source"),
        lang.pick("等保条款", "等保 clauses"),
    );
    for r in &rules {
        let attack: String = r
            .tags
            .iter()
            .filter(|t| t.starts_with("attack."))
            .map(|t| {
                format!(
                    r#"<span class="tag">{}</span>"#,
                    esc(t.trim_start_matches("attack."))
                )
            })
            .collect();
        let mlps: String = r
            .mlps
            .iter()
            .map(|c| format!(r#"<span class="tag mlps">{}</span>"#, esc(c)))
            .collect();
        let _ = write!(
            body,
            r#"<tr><td><a href="/alerts?rule={}&amp;range=all">{}</a><div class="muted">{} · {}</div></td><td>{}</td><td>{}</td><td>{}</td><td>{attack}</td><td>{mlps}</td></tr>"#,
            url_encode(&r.id),
            esc(&r.title),
            esc(&r.id),
            esc(&r.description),
            if r.level.is_empty() {
                String::new()
            } else {
                html::level_badge(lang, &r.level)
            },
            esc(&r.kind),
            esc(&r.logsource),
        );
    }
    body.push_str("</tbody></table>");
    html::page(&ctx, "/rules", lang.pick("规则", "Rules"), &body).into_response()
}
