//! "Turn this false positive into a filter": the candidate field values of the
//! alert's matching events as checkboxes (host, user, addresses... pre-selected),
//! a YAML preview, and saving the filter (see [`super::super::rule_filter`]).

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::super::alerts;
use super::super::context::{Ctx, Op};
use super::super::error::ConsoleError;
use super::super::html::{self, esc, url_encode};
use super::super::rule_filter::{self, Candidate, FilterSpec};
use super::super::state::SharedState;
use super::{respond, see_other};
use crate::store::AlertRecord;

fn form(
    ctx: &Ctx,
    alert: &AlertRecord,
    candidates: &[Candidate],
    selected: &[(String, String)],
    filter_id: &str,
) -> String {
    let lang = ctx.lang;
    let mut rows = String::new();
    for (n, c) in candidates.iter().enumerate() {
        let checked = selected.iter().any(|(f, v)| *f == c.field && *v == c.value);
        let _ = write!(
            rows,
            r#"<tr><td><input type="checkbox" name="sel" id="sel-{n}" value="{value}" data-field="{field}"{checked}></td><td><label for="sel-{n}">{field}</label></td><td><code class="raw">{shown}</code></td></tr>"#,
            value = esc(&format!("{}={}", c.field, c.value)),
            field = esc(&c.field),
            shown = esc(&c.value),
            checked = if checked { " checked" } else { "" },
        );
    }
    format!(
        r#"<form method="post" action="/alerts/{id}/filter" id="filter-form">{csrf}<input type="hidden" name="filter_id" value="{filter_id}">
<p class="muted">{hint}</p><table id="filter-fields"><thead><tr><th></th><th>{t_field}</th><th>{t_value}</th></tr></thead><tbody>{rows}</tbody></table>
<div class="actions"><button type="submit" name="action" value="preview" class="secondary" id="filter-preview">{t_preview}</button><button type="submit" name="action" value="save" id="filter-save">{t_save}</button></div></form>"#,
        id = url_encode(&alert.alert_id),
        csrf = html::csrf_field(ctx),
        filter_id = esc(filter_id),
        hint = lang.pick(
            "勾选要排除的字段值：与所选值全部相同的事件将不再触发此规则（同一字段的多个值任一相同即可）。",
            "Tick the field values to exclude: events equal to all selected fields no longer trigger this rule (several values of one field are alternatives).",
        ),
        t_field = lang.pick("字段", "Field"),
        t_value = lang.pick("值", "Value"),
        t_preview = lang.pick("预览 YAML", "Preview YAML"),
        t_save = lang.pick("保存过滤规则", "Save filter"),
    )
}

async fn render(
    state: &SharedState,
    ctx: &Ctx,
    alert_id: &str,
    posted: Option<(Vec<(String, String)>, String)>,
) -> Result<Response, ConsoleError> {
    let alert = alerts::find(state, alert_id).await?;
    let events = alerts::matching_events(state, &alert).await?;
    let candidates = rule_filter::candidates(&events);
    let lang = ctx.lang;
    let (selected, filter_id, preview) = match posted {
        Some((selected, filter_id)) => {
            let spec =
                rule_filter::spec(state, ctx, &alert, Some(filter_id), selected.clone()).await?;
            let yaml = rule_filter::render_yaml(&alert, &spec);
            (selected, spec.id, Some(yaml))
        }
        None => (
            rule_filter::default_selection(&candidates),
            rule_filter::new_filter_id(),
            None,
        ),
    };
    let mut body = format!(
        r#"<div class="panel"><dl class="facts"><dt>{}</dt><dd><a href="/alerts/{}">{}</a> · {}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></div>"#,
        lang.pick("告警", "Alert"),
        url_encode(&alert.alert_id),
        esc(&alert.rule_title),
        esc(&alert.summary),
        lang.pick("主机", "Host"),
        esc(&alert.hostname),
        lang.pick("匹配事件", "Matching events"),
        events.len(),
    );
    if candidates.is_empty() {
        body.push_str(&html::notice(
            "info",
            lang.pick(
                "此告警没有可用的匹配事件字段，无法生成过滤规则。",
                "This alert has no matching event fields to build a filter from.",
            ),
        ));
    } else {
        body.push_str(&format!(
            r#"<div class="panel">{}</div>"#,
            form(ctx, &alert, &candidates, &selected, &filter_id)
        ));
    }
    if let Some(yaml) = preview {
        let _ = write!(
            body,
            r#"<div class="panel"><h2>{}</h2><pre id="filter-yaml">{}</pre></div>"#,
            lang.pick("过滤规则预览", "Filter preview"),
            esc(&yaml)
        );
    }
    let title = format!(
        "{} · {}",
        lang.pick("误报转过滤规则", "False positive → filter"),
        alert.rule_title
    );
    Ok(html::page(ctx, "/alerts", &title, &body).into_response())
}

/// `GET /alerts/{id}/filter`.
pub async fn page(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<String>,
) -> Response {
    let result = render(&state, &ctx, &id, None).await;
    respond(&ctx, result)
}

/// `POST /alerts/{id}/filter`: `action=preview` shows the YAML, `action=save` saves
/// it; the form sends repeated `sel=<Field>=<value>` and the `filter_id` of the preview.
pub async fn submit(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<String>,
    axum::Form(pairs): axum::Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let selected: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k == "sel")
        .filter_map(|(_, v)| v.split_once('=').map(|(f, v)| (f.to_owned(), v.to_owned())))
        .collect();
    let result = async {
        match field("action").as_str() {
            "preview" => render(&state, &ctx, &id, Some((selected, field("filter_id")))).await,
            "save" => {
                let alert = alerts::find(&state, &id).await?;
                let spec: FilterSpec =
                    rule_filter::spec(&state, &ctx, &alert, Some(field("filter_id")), selected)
                        .await?;
                let saved = rule_filter::save(&state, &ctx, &alert, &spec).await?;
                Ok(see_other(&format!(
                    "/rules/{}?done=filter_saved",
                    url_encode(&saved.id)
                )))
            }
            _ => Err(ConsoleError::Invalid("unknown action".to_owned())),
        }
    }
    .await;
    respond(&ctx, result)
}
