//! The alerts list: filters (time, severity, status, rule, host, text), paging, bulk
//! acknowledge/close, and live rows for new alerts (`/alerts/fresh`, polled by the
//! page's script).

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::alerts::{self, AlertFilter, AlertHint, TriageAction, TriageRequest};
use super::super::context::{Ctx, Op};
use super::super::error::ConsoleError;
use super::super::html::{self, esc, url_encode};
use super::super::i18n::Lang;
use super::super::state::SharedState;
use super::{done_notice, respond, see_other};
use crate::store::{AlertQuery, AlertRecord};

/// Message key after a redirect (`?done=`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneQuery {
    /// Message key.
    pub done: Option<String>,
}

/// One table row of an alert.
pub fn alert_row(ctx: &Ctx, alert: &AlertRecord) -> String {
    let lang = ctx.lang;
    let hint = AlertHint::of(alert).query_string();
    format!(
        r#"<tr data-id="{id}" data-level="{level_raw}"><td><input type="checkbox" name="ids" value="{hinted}" form="bulk-form"></td><td>{last}</td><td>{level}</td><td><a class="alert-link" href="/alerts/{id_url}?{hint}">{title}</a><div class="muted">{summary}</div></td><td>{host}</td><td>{count}</td><td>{status}{reason}</td><td>{assignee}</td></tr>"#,
        id = esc(&alert.alert_id),
        id_url = url_encode(&alert.alert_id),
        level_raw = esc(&alert.level),
        hinted = esc(&alerts::hinted_id(alert)),
        last = esc(&ctx.time(alert.last_time_unix_nano)),
        level = html::level_badge(lang, &alert.level),
        hint = esc(&hint),
        title = esc(&alert.rule_title),
        summary = esc(&alert.summary),
        host = esc(&alert.hostname),
        count = alert.count,
        status = html::status_badge(lang, alert.status),
        reason = match alerts::closing_reason(&alert.note) {
            Some("false_positive") => format!(
                " <span class=\"muted\">{}</span>",
                lang.pick("误报", "false positive")
            ),
            Some(_) => format!(
                " <span class=\"muted\">{}</span>",
                lang.pick("已处置", "resolved")
            ),
            None => String::new(),
        },
        assignee = esc(&alert.assignee),
    )
}

fn filter_form(ctx: &Ctx, f: &AlertFilter) -> String {
    let lang = ctx.lang;
    let levels = [
        ("", lang.pick("全部级别", "all levels")),
        ("critical", lang.pick("严重", "critical")),
        ("high", lang.pick("高", "high")),
        ("high,critical", lang.pick("高及以上", "high and above")),
        ("medium", lang.pick("中", "medium")),
        ("low", lang.pick("低", "low")),
    ];
    let statuses = [
        ("", lang.pick("全部状态", "any status")),
        ("open", lang.pick("未处理", "open")),
        ("acknowledged", lang.pick("处理中", "acknowledged")),
        ("open,acknowledged", lang.pick("未关闭", "not closed")),
        ("closed", lang.pick("已关闭", "closed")),
    ];
    let ranges = [
        ("1h", lang.pick("1 小时", "1 hour")),
        ("24h", lang.pick("24 小时", "24 hours")),
        ("7d", lang.pick("7 天", "7 days")),
        ("30d", lang.pick("30 天", "30 days")),
        ("all", lang.pick("全部", "all")),
    ];
    let range = if f.range.is_empty() {
        "7d"
    } else {
        f.range.as_str()
    };
    format!(
        r#"<form class="filters" method="get" id="alert-filters">
<label>{t_range}<select name="range">{ranges}</select></label>
<label>{t_since}<input type="datetime-local" name="since" value="{since}"></label>
<label>{t_until}<input type="datetime-local" name="until" value="{until}"></label>
<label>{t_level}<select name="level">{levels}</select></label>
<label>{t_status}<select name="status">{statuses}</select></label>
<label>{t_rule}<input name="rule" value="{rule}" size="14"></label>
<label>{t_host}<input name="host" value="{host}" size="12"></label>
<label>{t_text}<input name="q" value="{q}" size="16"></label>
<button type="submit">{t_search}</button></form>"#,
        t_range = lang.pick("时间范围", "Window"),
        ranges = html::options(&ranges, range),
        t_since = lang.pick("开始", "From"),
        since = esc(&f.since),
        t_until = lang.pick("结束", "To"),
        until = esc(&f.until),
        t_level = lang.pick("级别", "Level"),
        levels = html::options(&levels, &f.level),
        t_status = lang.pick("状态", "Status"),
        statuses = html::options(&statuses, &f.status),
        t_rule = lang.pick("规则 ID", "Rule id"),
        rule = esc(&f.rule),
        t_host = lang.pick("主机", "Host"),
        host = esc(&f.host),
        t_text = lang.pick("关键字", "Text"),
        q = esc(&f.q),
        t_search = lang.pick("查询", "Search"),
    )
}

fn bulk_form(ctx: &Ctx, lang: Lang) -> String {
    format!(
        r#"<form method="post" action="/alerts/bulk" id="bulk-form" class="actions">{csrf}
<label>{t_note}<input name="note" id="bulk-note" size="30"></label>
<button type="submit" name="action" value="acknowledge" class="secondary" id="bulk-ack">{t_ack}</button>
<button type="submit" name="action" value="resolve" class="secondary" id="bulk-resolve">{t_resolve}</button>
<button type="submit" name="action" value="false_positive" class="secondary" id="bulk-fp">{t_fp}</button>
<span id="live-status"></span></form>"#,
        csrf = html::csrf_field(ctx),
        t_note = lang.pick("批量处理说明", "Note for selected"),
        t_ack = lang.pick("批量确认", "Acknowledge selected"),
        t_resolve = lang.pick("批量关闭（已处置）", "Close selected (resolved)"),
        t_fp = lang.pick("批量关闭（误报）", "Close selected (false positive)"),
    )
}

/// `GET /alerts`.
pub async fn list(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(filter): Query<AlertFilter>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let lang = ctx.lang;
    let result = alerts::list(&state, &filter, ctx.tz_offset_minutes).await;
    respond(&ctx, result.map(|page| {
        let mut body = done_notice(&ctx, query.done.as_deref());
        body.push_str(&filter_form(&ctx, &filter));
        body.push_str(&bulk_form(&ctx, lang));
        let base = filter.query_string_without_page();
        let latest = page.alerts.iter().map(|a| a.last_time_unix_nano).max().unwrap_or_else(shaobing_wire::now_unix_nano);
        let fresh_url = if filter.page() == 1 { format!("/alerts/fresh?{base}") } else { String::new() };
        let _ = write!(
            body,
            r#"<table id="alerts-table" data-fresh-url="{}" data-latest="{latest}"><thead><tr><th><input type="checkbox" id="select-all" aria-label="all"></th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            esc(&fresh_url),
            lang.pick("最近时间", "Last seen"),
            lang.pick("级别", "Level"),
            lang.pick("规则 / 摘要", "Rule / summary"),
            lang.pick("主机", "Host"),
            lang.pick("次数", "Count"),
            lang.pick("状态", "Status"),
            lang.pick("处理人", "Assignee"),
        );
        for alert in &page.alerts {
            body.push_str(&alert_row(&ctx, alert));
        }
        if page.alerts.is_empty() {
            let _ = write!(body, r#"<tr id="no-alerts"><td colspan="8" class="muted">{}</td></tr>"#, lang.pick("没有符合条件的告警", "No alerts match"));
        }
        body.push_str("</tbody></table>");
        body.push_str(&html::pager(lang, &base, page.page, page.has_next));
        html::page(&ctx, "/alerts", lang.pick("告警", "Alerts"), &body).into_response()
    }))
}

/// Query of `/alerts/fresh` besides the filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FreshQuery {
    /// Only alerts whose last event is after this (unix nanos).
    pub after: i64,
}

/// `GET /alerts/fresh`: rows of alerts newer than `after` as HTML for the live table.
pub async fn fresh(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(filter): Query<AlertFilter>,
    Query(q): Query<FreshQuery>,
) -> Response {
    let now = shaobing_wire::now_unix_nano();
    let result = async {
        let base = filter.to_query(ctx.tz_offset_minutes, now)?;
        let query = AlertQuery {
            since: Some(
                q.after
                    .saturating_add(1)
                    .max(base.since.unwrap_or(i64::MIN)),
            ),
            limit: Some(alerts::MAX_PER_PAGE),
            offset: 0,
            ..base
        };
        let rows = state.store.alerts(&query).await?;
        let latest = rows
            .iter()
            .map(|a| a.last_time_unix_nano)
            .max()
            .unwrap_or(q.after);
        let html: String = rows.iter().map(|a| alert_row(&ctx, a)).collect();
        Ok::<_, ConsoleError>(
            axum::Json(serde_json::json!({ "count": rows.len(), "latest": latest, "html": html }))
                .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /alerts/bulk`: the form sends repeated `ids`, an `action` and a `note`.
pub async fn bulk(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let ids: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| v.clone())
        .collect();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let result = async {
        let action = TriageAction::from_name(&field("action"))
            .ok_or_else(|| ConsoleError::Invalid("unknown action".to_owned()))?;
        let request = TriageRequest {
            action,
            assignee: String::new(),
            note: field("note"),
        };
        alerts::bulk(&state, &ctx, &ids, &request).await?;
        Ok(see_other("/alerts?done=bulk"))
    }
    .await;
    respond(&ctx, result)
}
