//! The overview page: alert figures, the severity chart, top rules and hosts, agents
//! online/offline and the ingest rate.

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::chart;
use super::super::context::Op;
use super::super::html::{self, esc, url_encode};
use super::super::overview::{self, LEVELS};
use super::super::state::SharedState;
use super::respond;

/// Query of the overview.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct OverviewQuery {
    /// Window in hours (default 24).
    pub hours: Option<u32>,
}

/// `GET /overview`.
pub async fn page(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let hours = q.hours.unwrap_or(24);
    let result = overview::compute(&state, hours, shaobing_wire::now_unix_nano()).await;
    respond(&ctx, result.map(|o| {
        let lang = ctx.lang;
        let can_see_alerts = super::super::access::may_open(op.role(), "/alerts");
        let mut body = String::new();
        let _ = write!(
            body,
            r#"<form class="filters" method="get"><label>{}<select name="hours">{}</select></label><button type="submit">{}</button></form>"#,
            ctx.t("时间范围", "Window"),
            html::options(
                &[("1", lang.pick("1 小时", "1 hour")), ("24", lang.pick("24 小时", "24 hours")), ("168", lang.pick("7 天", "7 days")), ("720", lang.pick("30 天", "30 days"))],
                &o.hours.to_string()
            ),
            ctx.t("刷新", "Refresh"),
        );
        body.push_str(r#"<div class="cards">"#);
        let _ = write!(
            body,
            r#"<div class="card"><div class="figure" id="open-count" data-hours="{}">{}</div><div class="label">{}</div></div>"#,
            o.hours,
            o.open,
            ctx.t("未处理告警", "open alerts")
        );
        for level in LEVELS.iter().take(4) {
            let _ = write!(
                body,
                r#"<div class="card"><div class="figure">{}</div><div class="label">{} {}</div></div>"#,
                o.by_level.get(*level).copied().unwrap_or(0),
                html::level_badge(lang, level),
                ctx.t("告警", "alerts")
            );
        }
        let _ = write!(
            body,
            r#"<div class="card"><div class="figure"><span id="agents-online">{}</span> / <span class="muted" id="agents-offline">{}</span></div><div class="label">{}</div></div>"#,
            o.agents_online,
            o.agents_offline,
            ctx.t("在线 / 离线主机", "agents online / offline")
        );
        let _ = write!(
            body,
            r#"<div class="card"><div class="figure"><span id="ingest-rate">{:.1}</span></div><div class="label">{}</div>{}</div>"#,
            o.ingest_events_per_second,
            ctx.t("入库事件/秒", "events stored / s"),
            chart::sparkline(&o.ingest_recent)
        );
        body.push_str("</div>");
        let _ = write!(
            body,
            r#"<div class="panel"><h2>{}</h2>{}</div>"#,
            ctx.t("告警级别趋势", "Alerts by severity over time"),
            chart::severity_bars(&o.buckets, lang, ctx.tz_offset_minutes)
        );
        body.push_str(r#"<div class="grid">"#);
        let _ = write!(body, r#"<div class="panel"><h2>{}</h2><table id="top-rules"><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            ctx.t("告警最多的规则", "Top rules"), ctx.t("规则", "Rule"), ctx.t("告警数", "Alerts"));
        for r in &o.top_rules {
            let label = if can_see_alerts {
                format!(r#"<a href="/alerts?rule={}&amp;range=all">{}</a>"#, url_encode(&r.key), esc(&r.label))
            } else {
                esc(&r.label)
            };
            let _ = write!(body, "<tr><td>{label}</td><td>{}</td></tr>", r.count);
        }
        body.push_str("</tbody></table></div>");
        let _ = write!(body, r#"<div class="panel"><h2>{}</h2><table id="top-hosts"><thead><tr><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            ctx.t("告警最多的主机", "Top hosts"), ctx.t("主机", "Host"), ctx.t("告警数", "Alerts"));
        for h in &o.top_hosts {
            let label = if can_see_alerts {
                format!(r#"<a href="/alerts?host={}&amp;range=all">{}</a>"#, url_encode(&h.key), esc(&h.label))
            } else {
                esc(&h.label)
            };
            let _ = write!(body, "<tr><td>{label}</td><td>{}</td></tr>", h.count);
        }
        body.push_str("</tbody></table></div></div>");
        html::page(&ctx, "/overview", ctx.t("总览", "Overview"), &body).into_response()
    }))
}
