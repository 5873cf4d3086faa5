//! Notification channels (安全管理员): add webhook / SMTP / 钉钉 / 企业微信 channels,
//! send a test message, enable/disable, and see recent delivery results.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::audit;
use super::super::context::{Ctx, Op};
use super::super::error::ConsoleError;
use super::super::html::{self, esc};
use super::super::notify::{self, NewChannel};
use super::super::state::SharedState;
use super::alerts::DoneQuery;
use super::{done_notice, respond, see_other};

async fn render(state: &SharedState, ctx: &Ctx, message: &str) -> Result<Response, ConsoleError> {
    let lang = ctx.lang;
    let channels = state.db.channels().await?;
    let deliveries = state.db.deliveries(50).await?;
    let csrf = html::csrf_field(ctx);
    let mut body = message.to_owned();
    let _ = write!(
        body,
        r#"<table id="channels"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>"#,
        lang.pick("名称", "Name"),
        lang.pick("类型", "Kind"),
        lang.pick("目标", "Target"),
        lang.pick("级别", "Level"),
        lang.pick("状态", "State"),
    );
    for c in &channels {
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><form method="post" action="/notifications/{id}/test" class="inline">{csrf}<button type="submit" class="secondary">{}</button></form> <form method="post" action="/notifications/{id}/toggle" class="inline">{csrf}<button type="submit" class="secondary">{}</button></form></td></tr>"#,
            esc(&c.name),
            kind_label(ctx, c.kind),
            esc(&c.target),
            html::level_badge(lang, &c.min_level),
            if c.enabled {
                lang.pick("启用", "enabled")
            } else {
                lang.pick("停用", "disabled")
            },
            lang.pick("发送测试", "Send test"),
            if c.enabled {
                lang.pick("停用", "Disable")
            } else {
                lang.pick("启用", "Enable")
            },
            id = c.id,
        );
    }
    body.push_str("</tbody></table>");
    let kinds = [
        ("webhook", kind_label(ctx, notify::ChannelKind::Webhook)),
        ("dingtalk", kind_label(ctx, notify::ChannelKind::Dingtalk)),
        ("wecom", kind_label(ctx, notify::ChannelKind::Wecom)),
        ("smtp", kind_label(ctx, notify::ChannelKind::Smtp)),
    ];
    let _ = write!(
        body,
        r#"<div class="panel"><h2>{}</h2><form method="post" action="/notifications" class="stack" id="new-channel">{csrf}
<label>{}<input name="name" required></label><label>{}<select name="kind">{}</select></label>
<label>{}<input name="target" required placeholder="https://oapi.dingtalk.com/robot/send?access_token=…  |  smtp.example.org:25"></label>
<label>{}<input name="secret" type="password" autocomplete="off"></label>
<label>{}<input name="smtp_from"></label><label>{}<input name="smtp_to"></label>
<label>{}<select name="min_level">{}</select></label><button type="submit">{}</button></form></div>"#,
        lang.pick("新增通知渠道", "Add a channel"),
        lang.pick("名称", "Name"),
        lang.pick("类型", "Kind"),
        html::options(&kinds, "webhook"),
        lang.pick(
            "地址（URL，或 SMTP 的 主机:端口）",
            "URL (or host:port for SMTP)"
        ),
        lang.pick(
            "密钥（钉钉加签 / Webhook 签名 / SMTP 用户:密码，可选）",
            "Secret (DingTalk signing / webhook HMAC / SMTP user:password, optional)"
        ),
        lang.pick("发件人（SMTP）", "Sender (SMTP)"),
        lang.pick(
            "收件人，逗号分隔（SMTP）",
            "Recipients, comma separated (SMTP)"
        ),
        lang.pick("通知级别", "Levels"),
        html::options(
            &[
                ("high", lang.pick("高及严重", "high and critical")),
                ("critical", lang.pick("仅严重", "critical only"))
            ],
            "high"
        ),
        lang.pick("保存", "Save"),
    );
    let _ = write!(
        body,
        r#"<div class="panel"><h2>{}</h2><table id="deliveries"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        lang.pick("最近投递记录", "Recent deliveries"),
        lang.pick("时间", "Time"),
        lang.pick("渠道", "Channel"),
        lang.pick("告警", "Alert"),
        lang.pick("结果", "Result"),
        lang.pick("详情", "Detail"),
    );
    for d in &deliveries {
        let name = channels
            .iter()
            .find(|c| c.id == d.channel_id)
            .map(|c| c.name.as_str())
            .unwrap_or("?");
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td><code class="raw">{}</code></td></tr>"#,
            esc(&ctx.time(d.time_ns)),
            esc(name),
            esc(&d.alert_id),
            if d.ok {
                format!(
                    r#"<span class="badge status-closed">{}</span>"#,
                    lang.pick("成功", "ok")
                )
            } else {
                format!(
                    r#"<span class="badge status-open">{}</span>"#,
                    lang.pick("失败", "failed")
                )
            },
            esc(&d.detail),
        );
    }
    body.push_str("</tbody></table></div>");
    Ok(html::page(
        ctx,
        "/notifications",
        lang.pick("通知", "Notifications"),
        &body,
    )
    .into_response())
}

fn kind_label(ctx: &Ctx, kind: notify::ChannelKind) -> &'static str {
    match kind {
        notify::ChannelKind::Webhook => ctx.t("通用 Webhook", "Generic webhook"),
        notify::ChannelKind::Smtp => ctx.t("电子邮件（SMTP）", "E-mail (SMTP)"),
        notify::ChannelKind::Dingtalk => ctx.t("钉钉机器人", "DingTalk robot"),
        notify::ChannelKind::Wecom => ctx.t("企业微信机器人", "WeCom robot"),
    }
}

/// `GET /notifications`.
pub async fn page(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(q): Query<DoneQuery>,
) -> Response {
    let result = render(&state, &ctx, &done_notice(&ctx, q.done.as_deref())).await;
    respond(&ctx, result)
}

/// Adds a channel and audits it (shared with the API). Returns the id.
pub async fn add_channel(
    state: &SharedState,
    ctx: &Ctx,
    new: &NewChannel,
) -> Result<i64, ConsoleError> {
    let id = state
        .db
        .add_channel(new, shaobing_wire::now_unix_nano())
        .await?;
    audit::record(state, ctx, "notification.create", &id.to_string(), json!({ "name": new.name, "kind": new.kind, "target": new.target, "min_level": new.min_level })).await?;
    Ok(id)
}

/// Sends a test message over a channel and audits it (shared with the API).
pub async fn send_test(
    state: &SharedState,
    ctx: &Ctx,
    id: i64,
) -> Result<notify::Delivery, ConsoleError> {
    let channel = state.db.channel(id).await?;
    let delivery =
        notify::deliver_and_record(&state.db, &channel, &notify::test_alert(), "test").await?;
    audit::record(
        state,
        ctx,
        "notification.test",
        &id.to_string(),
        json!({ "ok": delivery.ok, "detail": delivery.detail }),
    )
    .await?;
    Ok(delivery)
}

/// `POST /notifications`.
pub async fn create(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    axum::Form(new): axum::Form<NewChannel>,
) -> Response {
    match add_channel(&state, &ctx, &new).await {
        Ok(_) => see_other("/notifications?done=saved"),
        Err(ConsoleError::Invalid(message)) => respond(
            &ctx,
            render(&state, &ctx, &html::notice("error", &message)).await,
        ),
        Err(error) => super::error_page(&ctx, &error),
    }
}

/// `POST /notifications/{id}/test`.
pub async fn test(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<i64>,
) -> Response {
    match send_test(&state, &ctx, id).await {
        Ok(d) if d.ok => see_other("/notifications?done=sent"),
        Ok(d) => respond(
            &ctx,
            render(&state, &ctx, &html::notice("error", &d.detail)).await,
        ),
        Err(error) => super::error_page(&ctx, &error),
    }
}

/// `POST /notifications/{id}/toggle`.
pub async fn toggle(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let channel = state.db.channel(id).await?;
        state.db.set_channel_enabled(id, !channel.enabled).await?;
        audit::record(
            &state,
            &ctx,
            if channel.enabled {
                "notification.disable"
            } else {
                "notification.enable"
            },
            &id.to_string(),
            json!({ "name": channel.name }),
        )
        .await?;
        Ok(see_other("/notifications?done=saved"))
    }
    .await;
    respond(&ctx, result)
}
