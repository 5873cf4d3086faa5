//! The operator's own account: password change (forced after a one-time password),
//! TOTP enrollment, time zone, language, API tokens.

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::super::admin;
use super::super::context::{Ctx, Op, Operator};
use super::super::error::ConsoleError;
use super::super::html::{self, esc, url_encode};
use super::super::i18n;
use super::super::password::MIN_PASSWORD_CHARS;
use super::super::state::SharedState;
use super::{done_notice, respond, see_other};

/// Query of the account page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountQuery {
    /// Set when the operator must change a one-time password.
    pub must_change: Option<String>,
    /// Message key.
    pub done: Option<String>,
}

async fn render(
    state: &SharedState,
    ctx: &Ctx,
    op: &Operator,
    message: &str,
) -> Result<Response, ConsoleError> {
    let lang = ctx.lang;
    let csrf = html::csrf_field(ctx);
    let mut body = message.to_owned();
    if op.user.must_change_password {
        body.push_str(&html::notice(
            "info",
            ctx.t(
                "首次登录或密码被重置：请先设置新密码。",
                "First login or password reset: set a new password to continue.",
            ),
        ));
    }
    let _ = write!(
        body,
        r#"<div class="grid"><div class="panel"><h2>{t_pw}</h2><form method="post" action="/account/password" class="stack" id="password-form">{csrf}
<label>{t_cur}<input type="password" name="current" id="current-password" autocomplete="current-password" required></label>
<label>{t_new}<input type="password" name="new" id="new-password" autocomplete="new-password" required minlength="{min}"></label>
<label>{t_rep}<input type="password" name="repeat" id="repeat-password" autocomplete="new-password" required minlength="{min}"></label>
<button type="submit" id="change-password">{t_save}</button></form><p class="muted">{t_policy}</p></div>"#,
        t_pw = lang.pick("修改密码", "Change password"),
        t_cur = lang.pick("当前密码", "Current password"),
        t_new = lang.pick("新密码", "New password"),
        t_rep = lang.pick("再次输入新密码", "Repeat new password"),
        min = MIN_PASSWORD_CHARS,
        t_save = lang.pick("保存", "Save"),
        t_policy = lang.pick("至少 10 位，含大写、小写、数字、符号中的三类，不含用户名。", "At least 10 characters from three of: upper case, lower case, digits, symbols; not containing the user name."),
    );
    if !op.user.must_change_password {
        let totp = if op.user.totp_enabled {
            format!(
                r#"<p>{}</p><form method="post" action="/account/totp/disable" class="stack">{csrf}<label>{}<input type="password" name="password" required></label><button type="submit" class="danger">{}</button></form>"#,
                lang.pick("双因素认证已启用。", "Two-factor authentication is on."),
                lang.pick("当前密码", "Current password"),
                lang.pick("关闭双因素认证", "Turn two-factor off"),
            )
        } else {
            format!(
                r#"<p>{}</p><form method="post" action="/account/totp/setup">{csrf}<button type="submit" id="totp-setup">{}</button></form>"#,
                lang.pick(
                    "使用身份验证器应用（基于时间的动态口令，RFC 6238）。",
                    "Use an authenticator app (time-based one-time codes, RFC 6238)."
                ),
                lang.pick("设置双因素认证", "Set up two-factor"),
            )
        };
        let _ = write!(
            body,
            r#"<div class="panel"><h2>{}</h2>{totp}</div>"#,
            lang.pick("双因素认证", "Two-factor authentication")
        );
        let current = op
            .user
            .tz_offset_minutes
            .map(|m| m.to_string())
            .unwrap_or_else(|| "browser".to_owned());
        let mut zones: Vec<(String, String)> = vec![(
            "browser".to_owned(),
            lang.pick("跟随浏览器", "Browser's").to_owned(),
        )];
        for m in (-12 * 60..=14 * 60).step_by(30) {
            zones.push((m.to_string(), i18n::offset_label(m)));
        }
        let zone_refs: Vec<(&str, &str)> = zones
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let _ = write!(
            body,
            r#"<div class="panel"><h2>{}</h2><form method="post" action="/account/preferences" class="stack">{csrf}<label>{}<select name="tz">{}</select></label><button type="submit">{}</button></form><p><a href="?lang=zh">中文</a> · <a href="?lang=en">English</a></p></div>"#,
            lang.pick("时区与语言", "Time zone and language"),
            lang.pick("时区", "Time zone"),
            html::options(&zone_refs, &current),
            lang.pick("保存", "Save"),
        );
        let tokens = state.db.api_tokens_of(op.name()).await?;
        let _ = write!(
            body,
            r#"<div class="panel"><h2>{}</h2><table id="tokens"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>"#,
            lang.pick("API 令牌", "API tokens"),
            lang.pick("名称", "Name"),
            lang.pick("创建时间", "Created"),
            lang.pick("最近使用", "Last used"),
        );
        for t in tokens.iter().filter(|t| !t.revoked) {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td><form method="post" action="/account/tokens/{}/revoke" class="inline">{csrf}<button type="submit" class="secondary">{}</button></form></td></tr>"#,
                esc(&t.name),
                esc(&ctx.time(t.created_ns)),
                if t.last_used_ns == 0 {
                    "-".to_owned()
                } else {
                    esc(&ctx.time(t.last_used_ns))
                },
                url_encode(&t.id),
                lang.pick("吊销", "Revoke"),
            );
        }
        let _ = write!(
            body,
            r#"</tbody></table><form method="post" action="/account/tokens" class="actions">{csrf}<label>{}<input name="name" required maxlength="64"></label><button type="submit">{}</button></form><p class="muted">{}</p></div>"#,
            lang.pick("令牌名称", "Token name"), lang.pick("创建令牌", "Create token"),
            lang.pick("令牌与本账号角色相同；调用 /api/v1/ 时使用 Authorization: Bearer <令牌>。接口文档：/api/v1/openapi.json", "A token acts with this account's role: call /api/v1/ with Authorization: Bearer <token>. API document: /api/v1/openapi.json"),
        );
    }
    body.push_str("</div>");
    Ok(html::page(ctx, "/account", ctx.t("我的账号", "My account"), &body).into_response())
}

/// `GET /account`.
pub async fn page(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    Query(q): Query<AccountQuery>,
) -> Response {
    let result = render(&state, &ctx, &op, &done_notice(&ctx, q.done.as_deref())).await;
    respond(&ctx, result)
}

fn form_error(
    state: &SharedState,
    ctx: &Ctx,
    op: &Operator,
    error: ConsoleError,
) -> impl std::future::Future<Output = Response> {
    let (state, ctx, op) = (state.clone(), ctx.clone(), op.clone());
    async move {
        match error {
            ConsoleError::Invalid(message) => {
                let page = render(&state, &ctx, &op, &html::notice("error", &message)).await;
                let mut response = respond(&ctx, page);
                *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
                response
            }
            other => super::error_page(&ctx, &other),
        }
    }
}

/// Password form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    /// Current password.
    pub current: String,
    /// New password.
    pub new: String,
    /// Repeated.
    pub repeat: String,
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    match admin::change_own_password(&state, &ctx, &op, &form.current, &form.new, &form.repeat)
        .await
    {
        Ok(()) => see_other(&format!(
            "{}?done=password",
            if op.user.must_change_password {
                op.role().landing_page()
            } else {
                "/account"
            }
        )),
        Err(error) => form_error(&state, &ctx, &op, error).await,
    }
}

/// `POST /account/totp/setup`: shows the secret and asks for a first code.
pub async fn totp_setup(State(state): State<SharedState>, Op(op, ctx): Op) -> Response {
    let result = async {
        let (secret, uri) = admin::totp_setup(&state, &ctx, &op).await?;
        let lang = ctx.lang;
        let body = format!(
            r#"<div class="panel"><p>{}</p><div class="secret" id="totp-secret">{}</div><p class="muted">{}</p><div class="secret" id="totp-uri">{}</div>
<form method="post" action="/account/totp/enable" class="stack" id="totp-enable">{}<label>{}<input name="code" id="totp-code" inputmode="numeric" maxlength="6" required></label><button type="submit">{}</button></form></div>"#,
            lang.pick("在身份验证器应用中添加以下密钥：", "Add this key to your authenticator app:"),
            esc(&secret),
            lang.pick("或使用链接：", "or this link:"),
            esc(&uri),
            html::csrf_field(&ctx),
            lang.pick("应用显示的 6 位动态口令", "The 6-digit code the app shows"),
            lang.pick("启用", "Enable"),
        );
        Ok(html::page(&ctx, "/account", ctx.t("设置双因素认证", "Set up two-factor"), &body).into_response())
    }
    .await;
    respond(&ctx, result)
}

/// Code form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    /// TOTP code.
    pub code: String,
}

/// `POST /account/totp/enable`.
pub async fn totp_enable(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    axum::Form(form): axum::Form<CodeForm>,
) -> Response {
    match admin::totp_enable(&state, &ctx, &op, &form.code).await {
        Ok(()) => see_other("/account?done=totp_on"),
        Err(error) => form_error(&state, &ctx, &op, error).await,
    }
}

/// Password confirmation form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfirmForm {
    /// Current password.
    pub password: String,
}

/// `POST /account/totp/disable`.
pub async fn totp_disable(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    axum::Form(form): axum::Form<ConfirmForm>,
) -> Response {
    match admin::totp_disable(&state, &ctx, &op, &form.password).await {
        Ok(()) => see_other("/account?done=totp_off"),
        Err(error) => form_error(&state, &ctx, &op, error).await,
    }
}

/// Preferences form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PreferencesForm {
    /// `browser` or minutes east of UTC.
    pub tz: String,
}

/// `POST /account/preferences`.
pub async fn preferences(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    axum::Form(form): axum::Form<PreferencesForm>,
) -> Response {
    match admin::set_time_zone(&state, &ctx, &op, &form.tz).await {
        Ok(()) => see_other("/account?done=saved"),
        Err(error) => form_error(&state, &ctx, &op, error).await,
    }
}

/// Token form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    /// Token name.
    pub name: String,
}

/// `POST /account/tokens`: shows the new secret once.
pub async fn token_create(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    axum::Form(form): axum::Form<TokenForm>,
) -> Response {
    match admin::create_token(&state, &ctx, &op, &form.name).await {
        Ok((secret, _id)) => {
            let message = format!(
                r#"<div class="notice ok">{}<div class="secret" id="new-token">{}</div></div>"#,
                esc(ctx.t("新令牌（只显示这一次）：", "New token (shown only now):")),
                esc(&secret)
            );
            respond(&ctx, render(&state, &ctx, &op, &message).await)
        }
        Err(error) => form_error(&state, &ctx, &op, error).await,
    }
}

/// `POST /account/tokens/{id}/revoke`.
pub async fn token_revoke(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    Path(id): Path<String>,
) -> Response {
    match admin::revoke_token(&state, &ctx, &op, &id).await {
        Ok(()) => see_other("/account?done=revoked"),
        Err(error) => form_error(&state, &ctx, &op, error).await,
    }
}
