//! Rules: every rule with its state (enabled, or disabled by whom and when), level,
//! kind, log source, ATT&CK tags and 等保 clauses; enable/disable; a rule's detail
//! page with "run its tests" and the result of each test case.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shaobing_detect::TestOutcome;

use super::super::context::{Ctx, Op};
use super::super::error::ConsoleError;
use super::super::html::{self, esc, url_encode};
use super::super::rule_ops::{self, RuleRow};
use super::super::state::SharedState;
use super::{done_notice, respond, see_other};

/// Query of the rules page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RulesQuery {
    /// Text filter over id, title, tags and clauses.
    pub q: String,
    /// Message key after a redirect.
    pub done: Option<String>,
}

fn state_cell(ctx: &Ctx, rule: &RuleRow) -> String {
    let lang = ctx.lang;
    match (&rule.disabled_by, rule.disabled_at_unix_nano) {
        (Some(by), Some(at)) => format!(
            r#"<span class="badge status-open rule-state">{}</span><div class="muted">{} · {}</div>"#,
            lang.pick("已停用", "Disabled"),
            esc(by),
            esc(&ctx.time(at)),
        ),
        _ => format!(
            r#"<span class="badge status-closed rule-state">{}</span>"#,
            lang.pick("启用", "Enabled")
        ),
    }
}

fn toggle_form(ctx: &Ctx, rule: &RuleRow) -> String {
    let (value, label, class) = if rule.enabled {
        ("false", ctx.t("停用", "Disable"), "danger")
    } else {
        ("true", ctx.t("启用", "Enable"), "secondary")
    };
    format!(
        r#"<form method="post" action="/rules/{id}/toggle" class="inline toggle-form">{csrf}<input type="hidden" name="enabled" value="{value}"><button type="submit" class="{class}" data-rule-id="{id_attr}">{label}</button></form>"#,
        id = url_encode(&rule.info.id),
        id_attr = esc(&rule.info.id),
        csrf = html::csrf_field(ctx),
    )
}

fn test_form(ctx: &Ctx, rule: &RuleRow) -> String {
    if !rule.has_tests {
        return String::new();
    }
    format!(
        r#"<form method="post" action="/rules/{}/test" class="inline test-form">{}<button type="submit" class="secondary">{}</button></form>"#,
        url_encode(&rule.info.id),
        html::csrf_field(ctx),
        ctx.t("运行测试", "Run tests"),
    )
}

fn tag_spans(rule: &RuleRow) -> (String, String) {
    let attack = rule
        .info
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
    let mlps = rule
        .info
        .mlps
        .iter()
        .map(|c| format!(r#"<span class="tag mlps">{}</span>"#, esc(c)))
        .collect();
    (attack, mlps)
}

/// `GET /rules`.
pub async fn list(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(query): Query<RulesQuery>,
) -> Response {
    let result = async {
        let lang = ctx.lang;
        let needle = query.q.trim().to_lowercase();
        let mut rules = rule_ops::list(&state).await?;
        rules.retain(|r| {
            let r = &r.info;
            needle.is_empty()
                || [&r.id, &r.title, &r.description, &r.logsource]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
                || r.tags
                    .iter()
                    .chain(&r.mlps)
                    .any(|t| t.to_lowercase().contains(&needle))
        });
        let disabled = rules.iter().filter(|r| !r.enabled).count();
        let mut body = done_notice(&ctx, query.done.as_deref());
        let _ = write!(
            body,
            r#"<form class="filters" method="get"><label>{}<input name="q" value="{}"></label><button type="submit">{}</button></form><p class="muted">{} {} · {} {}</p>"#,
            lang.pick("关键字", "Text"),
            esc(&query.q),
            lang.pick("查询", "Search"),
            lang.pick("启用规则：", "Rules enabled:"),
            rules.len() - disabled,
            lang.pick("已停用：", "Disabled:"),
            disabled,
        );
        let _ = write!(
            body,
            r#"<table id="rules-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>ATT&amp;CK</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            lang.pick("规则", "Rule"),
            lang.pick("状态", "State"),
            lang.pick("级别", "Level"),
            lang.pick("类型", "Kind"),
            lang.pick("日志源", "Log source"),
            lang.pick("等保条款", "等保 clauses"),
            lang.pick("操作", "Actions"),
        );
        for r in &rules {
            let (attack, mlps) = tag_spans(r);
            let local = if r.local {
                format!(r#" <span class="tag">{}</span>"#, lang.pick("本地", "local"))
            } else {
                String::new()
            };
            let _ = write!(
                body,
                r#"<tr data-rule-id="{id_attr}"><td><a href="/rules/{id}">{title}</a>{local}<div class="muted">{id_attr} · {description}</div></td><td>{state}</td><td>{level}</td><td>{kind}</td><td>{logsource}</td><td>{attack}</td><td>{mlps}</td><td><div class="actions">{toggle}{test}<a href="/alerts?rule={id}&amp;range=all">{alerts}</a></div></td></tr>"#,
                id = url_encode(&r.info.id),
                id_attr = esc(&r.info.id),
                title = esc(&r.info.title),
                description = esc(&r.info.description),
                state = state_cell(&ctx, r),
                level = if r.info.level.is_empty() {
                    String::new()
                } else {
                    html::level_badge(lang, &r.info.level)
                },
                kind = esc(&r.info.kind),
                logsource = esc(&r.info.logsource),
                toggle = toggle_form(&ctx, r),
                test = test_form(&ctx, r),
                alerts = lang.pick("告警", "Alerts"),
            );
        }
        body.push_str("</tbody></table>");
        Ok(html::page(&ctx, "/rules", lang.pick("规则", "Rules"), &body).into_response())
    }
    .await;
    respond(&ctx, result)
}

/// Renders test results: one row per case, with the reason of a failure.
pub fn test_results(ctx: &Ctx, outcome: &TestOutcome) -> String {
    let lang = ctx.lang;
    let verdict = if outcome.passed() {
        html::notice("ok", lang.pick("全部测试通过", "All tests passed"))
    } else {
        html::notice("error", lang.pick("测试未通过", "Tests failed"))
    };
    let mut out = format!(
        r#"<div class="panel" id="test-results"><h2>{}</h2>{verdict}<p class="muted">{}</p>"#,
        lang.pick("测试结果", "Test results"),
        esc(&outcome.origin),
    );
    if let Some(error) = &outcome.error {
        let _ = write!(out, "<pre>{}</pre>", esc(error));
    }
    let _ = write!(
        out,
        r#"<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        lang.pick("用例", "Case"),
        lang.pick("结果", "Result"),
        lang.pick("原因", "Reason"),
    );
    for case in &outcome.cases {
        let _ = write!(
            out,
            r#"<tr class="test-case {class}"><td>{name}</td><td>{result}</td><td>{detail}</td></tr>"#,
            class = if case.passed { "pass" } else { "fail" },
            name = esc(&case.name),
            result = if case.passed {
                format!(
                    r#"<span class="badge status-closed">{}</span>"#,
                    lang.pick("通过", "pass")
                )
            } else {
                format!(
                    r#"<span class="badge status-open">{}</span>"#,
                    lang.pick("失败", "fail")
                )
            },
            detail = esc(&case.detail),
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

async fn detail_page(
    state: &SharedState,
    ctx: &Ctx,
    rule_id: &str,
    done: Option<&str>,
    tests: Option<&TestOutcome>,
) -> Result<Response, ConsoleError> {
    let rule = rule_ops::find(state, rule_id).await?;
    let lang = ctx.lang;
    let (attack, mlps) = tag_spans(&rule);
    let mut body = done_notice(ctx, done);
    let _ = write!(
        body,
        r#"<div class="panel"><dl class="facts" id="rule-facts">
<dt>{t_id}</dt><dd>{id}</dd><dt>{t_state}</dt><dd>{state}</dd><dt>{t_level}</dt><dd>{level}</dd>
<dt>{t_kind}</dt><dd>{kind}</dd><dt>{t_logsource}</dt><dd>{logsource}</dd><dt>{t_desc}</dt><dd>{desc}</dd>
<dt>ATT&amp;CK</dt><dd>{attack}</dd><dt>{t_mlps}</dt><dd>{mlps}</dd><dt>{t_file}</dt><dd>{file}</dd></dl>
<div class="actions">{toggle}{test}<a href="/alerts?rule={id_url}&amp;range=all">{t_alerts}</a></div></div>"#,
        t_id = lang.pick("规则 ID", "Rule id"),
        id = esc(&rule.info.id),
        id_url = url_encode(&rule.info.id),
        t_state = lang.pick("状态", "State"),
        state = state_cell(ctx, &rule),
        t_level = lang.pick("级别", "Level"),
        level = if rule.info.level.is_empty() {
            "-".to_owned()
        } else {
            html::level_badge(lang, &rule.info.level)
        },
        t_kind = lang.pick("类型", "Kind"),
        kind = esc(&rule.info.kind),
        t_logsource = lang.pick("日志源", "Log source"),
        logsource = esc(&rule.info.logsource),
        t_desc = lang.pick("说明", "Description"),
        desc = esc(&rule.info.description),
        t_mlps = lang.pick("等保条款", "等保 clauses"),
        t_file = lang.pick("规则文件", "Rule file"),
        file = esc(&rule.info.origin),
        toggle = toggle_form(ctx, &rule),
        test = if rule.has_tests {
            test_form(ctx, &rule)
        } else {
            format!(
                r#"<span class="muted">{}</span>"#,
                lang.pick("无测试文件", "No tests file")
            )
        },
        t_alerts = lang.pick("查看告警", "Its alerts"),
    );
    if let Some(outcome) = tests {
        body.push_str(&test_results(ctx, outcome));
    }
    let title = format!("{} · {}", lang.pick("规则", "Rule"), rule.info.title);
    Ok(html::page(ctx, "/rules", &title, &body).into_response())
}

/// Query of the rule detail page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DetailQuery {
    /// Message key after a redirect.
    pub done: Option<String>,
}

/// `GET /rules/{rule_id}`.
pub async fn detail(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(rule_id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let result = detail_page(&state, &ctx, &rule_id, q.done.as_deref(), None).await;
    respond(&ctx, result)
}

/// The enable/disable form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ToggleForm {
    /// `true` to enable, `false` to disable.
    pub enabled: String,
}

/// `POST /rules/{rule_id}/toggle`.
pub async fn toggle(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(rule_id): Path<String>,
    axum::Form(form): axum::Form<ToggleForm>,
) -> Response {
    let result = async {
        let enabled = match form.enabled.as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ConsoleError::Invalid(
                    "enabled must be true or false".to_owned(),
                ));
            }
        };
        rule_ops::set_enabled(&state, &ctx, &rule_id, enabled).await?;
        let done = if enabled {
            "rule_enabled"
        } else {
            "rule_disabled"
        };
        Ok(see_other(&format!("/rules?done={done}")))
    }
    .await;
    respond(&ctx, result)
}

/// `POST /rules/{rule_id}/test`: runs the tests and shows the detail page with them.
pub async fn test(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(rule_id): Path<String>,
) -> Response {
    let result = async {
        let outcome = rule_ops::run_tests(&state, &ctx, &rule_id).await?;
        detail_page(&state, &ctx, &rule_id, None, Some(&outcome)).await
    }
    .await;
    respond(&ctx, result)
}
