//! One alert: what fired and why (rule, description, summary, group, count), the
//! matching events with their raw lines and Sigma fields, the host timeline around it,
//! ATT&CK and 等保 tags, and the triage actions (acknowledge, assign, close as
//! resolved or false positive with a note, reopen).

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::alerts::{self, AlertHint, TriageAction, TriageRequest};
use super::super::context::{Ctx, Op};
use super::super::error::ConsoleError;
use super::super::html::{self, esc, url_encode};
use super::super::roles::Role;
use super::super::state::SharedState;
use super::{done_notice, respond, see_other};
use crate::store::{AlertRecord, AlertStatus, EventRecord};

/// Query of the detail page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DetailQuery {
    /// Message key after a redirect.
    pub done: Option<String>,
}

/// Events shown in the host timeline.
const TIMELINE_EVENTS: usize = 50;

/// Renders one event: time, kind, source, raw line, Sigma fields.
pub fn event_block(ctx: &Ctx, record: &EventRecord, highlight: bool) -> String {
    let event = &record.event;
    let mapped = shaobing_detect::fields::map_event(event);
    let fields: Vec<String> = mapped
        .fields
        .keys()
        .filter(|k| !matches!(k.as_str(), "Raw" | "EventId" | "event_id" | "AgentId"))
        .filter_map(|k| {
            mapped
                .text(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={v}"))
        })
        .collect();
    format!(
        r#"<tr class="{class}" data-event-id="{id}"><td>{time}</td><td>{kind}</td><td>{source}</td><td>{raw}<div class="muted">{fields}</div></td></tr>"#,
        class = if highlight { "match" } else { "" },
        id = esc(&event.event_id),
        time = esc(&ctx.time(event.time_unix_nano)),
        kind = esc(record.kind()),
        source = esc(&event.source),
        raw = if event.raw.is_empty() {
            String::new()
        } else {
            format!(r#"<code class="raw">{}</code>"#, esc(&event.raw))
        },
        fields = esc(&fields.join("  ")),
    )
}

fn tags(alert: &AlertRecord) -> (String, String) {
    let attack: String = alert
        .tags
        .iter()
        .filter(|t| t.starts_with("attack."))
        .map(|t| {
            let name = t.trim_start_matches("attack.");
            let shown = if name.starts_with('t')
                && name[1..].chars().next().is_some_and(|c| c.is_ascii_digit())
            {
                name.to_ascii_uppercase()
            } else {
                name.replace('_', " ")
            };
            format!(r#"<span class="tag">{}</span>"#, esc(&shown))
        })
        .collect();
    let mlps: String = alert
        .mlps
        .iter()
        .map(|c| format!(r#"<span class="tag mlps">{}</span>"#, esc(c)))
        .collect();
    (attack, mlps)
}

fn triage_forms(ctx: &Ctx, alert: &AlertRecord, secadmins: &[String]) -> String {
    let lang = ctx.lang;
    let hidden = format!(
        r#"{}<input type="hidden" name="rule" value="{}"><input type="hidden" name="host" value="{}"><input type="hidden" name="ft" value="{}">"#,
        html::csrf_field(ctx),
        esc(&alert.rule_id),
        esc(&alert.hostname),
        alert.first_time_unix_nano
    );
    let action = format!("/alerts/{}/triage", url_encode(&alert.alert_id));
    let assignees: Vec<(&str, &str)> = secadmins.iter().map(|s| (s.as_str(), s.as_str())).collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<div class="panel"><h2>{t_triage}</h2>
<form method="post" action="{action}" class="actions" id="ack-form">{hidden}<button type="submit" name="action" value="acknowledge" id="ack">{t_ack}</button></form>
<form method="post" action="{action}" class="actions" id="assign-form">{hidden}<label>{t_assignee}<select name="assignee" id="assignee">{assignees}</select></label><button type="submit" name="action" value="assign" class="secondary" id="assign">{t_assign}</button></form>
<form method="post" action="{action}" class="stack" id="close-form">{hidden}<label>{t_note}<textarea name="note" id="close-note" required></textarea></label>
<div class="actions"><button type="submit" name="action" value="resolve" id="close-resolved">{t_resolved}</button><button type="submit" name="action" value="false_positive" class="danger" id="close-fp">{t_fp}</button></div></form>"#,
        t_triage = lang.pick("处置", "Triage"),
        t_ack = lang.pick("确认（我来处理）", "Acknowledge (I take it)"),
        t_assignee = lang.pick("指派给", "Assign to"),
        assignees = html::options(&assignees, &alert.assignee),
        t_assign = lang.pick("指派", "Assign"),
        t_note = lang.pick("处置说明", "Note"),
        t_resolved = lang.pick("关闭：已处置", "Close: resolved"),
        t_fp = lang.pick("关闭：误报", "Close: false positive"),
    );
    let _ = write!(
        out,
        r#"<div class="actions"><a href="/alerts/{}/filter" id="to-filter">{}</a></div>"#,
        url_encode(&alert.alert_id),
        lang.pick("误报转为过滤规则…", "Turn into a filter…"),
    );
    if alert.status == AlertStatus::Closed {
        let _ = write!(
            out,
            r#"<form method="post" action="{action}" class="actions" id="reopen-form">{hidden}<button type="submit" name="action" value="reopen" class="secondary" id="reopen">{}</button></form>"#,
            lang.pick("重新打开", "Reopen")
        );
    }
    out.push_str("</div>");
    out
}

/// `GET /alerts/{id}`.
pub async fn page(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let result = async {
        let alert = alerts::find(&state, &id).await?;
        let (events, timeline, users) = tokio::join!(
            alerts::matching_events(&state, &alert),
            alerts::host_timeline(&state, &alert, TIMELINE_EVENTS),
            state.db.users(),
        );
        let (events, timeline, users) = (events?, timeline?, users?);
        let secadmins: Vec<String> = users
            .into_iter()
            .filter(|u| u.role == Role::Secadmin && !u.disabled)
            .map(|u| u.username)
            .collect();
        let rule = state.rules.rules().into_iter().find(|r| r.id == alert.rule_id);
        let lang = ctx.lang;
        let (attack, mlps) = tags(&alert);
        let mut body = done_notice(&ctx, q.done.as_deref());
        let _ = write!(
            body,
            r#"<div class="grid"><div class="panel"><h2>{t_what}</h2><dl class="facts" id="alert-facts">
<dt>{t_rule}</dt><dd>{title} <span class="muted">{rule_id}</span></dd>
<dt>{t_level}</dt><dd>{level}</dd>
<dt>{t_status}</dt><dd id="alert-status">{status}</dd>
<dt>{t_assignee}</dt><dd>{assignee}</dd>
<dt>{t_note}</dt><dd id="alert-note">{note}</dd>
<dt>{t_host}</dt><dd>{host} <span class="muted">{agent}</span></dd>
<dt>{t_window}</dt><dd>{first} — {last}</dd>
<dt>{t_count}</dt><dd>{count}</dd>
<dt>{t_group}</dt><dd>{group}</dd>
<dt>{t_summary}</dt><dd>{summary}</dd>
<dt>ATT&amp;CK</dt><dd>{attack}</dd>
<dt>{t_mlps}</dt><dd>{mlps}</dd>
</dl></div>"#,
            t_what = lang.pick("告警内容", "What fired"),
            t_rule = lang.pick("规则", "Rule"),
            title = esc(&alert.rule_title),
            rule_id = esc(&alert.rule_id),
            t_level = lang.pick("级别", "Level"),
            level = html::level_badge(lang, &alert.level),
            t_status = lang.pick("状态", "Status"),
            status = html::status_badge(lang, alert.status),
            t_assignee = lang.pick("处理人", "Assignee"),
            assignee = esc(&alert.assignee),
            t_note = lang.pick("处置说明", "Note"),
            note = match alerts::closing_reason(&alert.note) {
                Some(reason) => format!(
                    "<strong>{}</strong> {}",
                    if reason == "false_positive" { lang.pick("误报：", "False positive:") } else { lang.pick("已处置：", "Resolved:") },
                    esc(alerts::note_text(&alert.note))
                ),
                None => esc(&alert.note),
            },
            t_host = lang.pick("主机", "Host"),
            host = esc(&alert.hostname),
            agent = esc(&alert.agent_id),
            t_window = lang.pick("时间窗口", "Window"),
            first = esc(&ctx.time(alert.first_time_unix_nano)),
            last = esc(&ctx.time(alert.last_time_unix_nano)),
            t_count = lang.pick("匹配次数", "Matches"),
            count = alert.count,
            t_group = lang.pick("分组", "Group"),
            group = esc(&alert.group_key),
            t_summary = lang.pick("摘要", "Summary"),
            summary = esc(&alert.summary),
            t_mlps = lang.pick("等保条款", "等保 (MLPS) clauses"),
        );
        let _ = write!(
            body,
            r#"<div class="panel"><h2>{}</h2><dl class="facts"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></div></div>"#,
            lang.pick("为什么触发", "Why it fired"),
            lang.pick("规则说明", "Description"),
            esc(rule.as_ref().map(|r| r.description.as_str()).unwrap_or("-")),
            lang.pick("日志源", "Log source"),
            esc(rule.as_ref().map(|r| r.logsource.as_str()).unwrap_or("-")),
            lang.pick("类型", "Kind"),
            esc(&alert.kind),
            lang.pick("规则文件", "Rule file"),
            esc(rule.as_ref().map(|r| r.origin.as_str()).unwrap_or("-")),
        );
        body.push_str(&triage_forms(&ctx, &alert, &secadmins));
        let header = format!(
            "<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>",
            lang.pick("时间", "Time"),
            lang.pick("类型", "Kind"),
            lang.pick("来源", "Source"),
            lang.pick("原始日志 / 字段", "Raw line / fields")
        );
        let _ = write!(body, r#"<div class="panel"><h2>{} ({})</h2><table id="matching-events">{header}<tbody>"#, lang.pick("匹配事件", "Matching events"), events.len());
        for e in &events {
            body.push_str(&event_block(&ctx, e, true));
        }
        body.push_str("</tbody></table></div>");
        let matched: std::collections::HashSet<&str> = alert.event_ids.iter().map(String::as_str).collect();
        let _ = write!(body, r#"<div class="panel"><h2>{}</h2><table id="host-timeline">{header}<tbody>"#, lang.pick("主机时间线（前后 10 分钟）", "Host timeline (±10 min)"));
        for e in &timeline {
            body.push_str(&event_block(&ctx, e, matched.contains(e.event.event_id.as_str())));
        }
        body.push_str("</tbody></table></div>");
        Ok(html::page(&ctx, "/alerts", &format!("{} · {}", lang.pick("告警", "Alert"), alert.rule_title), &body).into_response())
    }
    .await;
    respond(&ctx, result)
}

/// The triage form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TriageForm {
    /// Action name.
    pub action: String,
    /// Assignee.
    pub assignee: String,
    /// Note.
    pub note: String,
    /// Hint: rule id.
    pub rule: String,
    /// Hint: hostname.
    pub host: String,
    /// Hint: first time.
    pub ft: i64,
}

/// `POST /alerts/{id}/triage`.
pub async fn triage(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<TriageForm>,
) -> Response {
    let result = async {
        let action = TriageAction::from_name(&form.action)
            .ok_or_else(|| ConsoleError::Invalid("unknown action".to_owned()))?;
        let alert = alerts::find(&state, &id).await?;
        let request = TriageRequest {
            action,
            assignee: form.assignee.clone(),
            note: form.note.clone(),
        };
        let updated = alerts::triage(&state, &ctx, &alert, &request).await?;
        Ok(see_other(&format!(
            "/alerts/{}?{}&done=triaged",
            url_encode(&updated.alert_id),
            AlertHint::of(&updated).query_string()
        )))
    }
    .await;
    respond(&ctx, result)
}
