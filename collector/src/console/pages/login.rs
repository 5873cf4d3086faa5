//! Login, logout and the landing redirect. Failed logins count towards the lockout and
//! every attempt (success or failure, with the reason) is audited with its address.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::audit;
use super::super::context::{AuthVia, Ctx, Op};
use super::super::guard::{SESSION_COOKIE, append_cookie, cookie_header};
use super::super::html::{self, esc};
use super::super::state::SharedState;
use super::super::users::{LockoutPolicy, LoginFailure, LoginOutcome};
use super::see_other;

/// Query of the login page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    /// Set when a session timed out.
    pub expired: Option<String>,
}

/// The login form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// TOTP code (when enabled for the account).
    pub totp: String,
}

fn login_page(ctx: &Ctx, message: Option<(&str, &str)>, username: &str) -> Html<String> {
    let lang = ctx.lang;
    let notice = message
        .map(|(kind, text)| html::notice(kind, text))
        .unwrap_or_default();
    let switch = match lang {
        super::super::i18n::Lang::Zh => r#"<a href="/login?lang=en" id="lang-switch">English</a>"#,
        super::super::i18n::Lang::En => r#"<a href="/login?lang=zh" id="lang-switch">中文</a>"#,
    };
    Html(format!(
        r#"<!doctype html>
<html lang="{html_lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/console.css"><script src="/assets/console.js" defer></script></head>
<body data-lang="{code}"><div class="login">
<h1>{brand}</h1>
{notice}
<form method="post" action="/login" class="stack" id="login-form">
{csrf}
<label>{user_label}<input name="username" id="username" autocomplete="username" required value="{username}"></label>
<label>{password_label}<input name="password" id="password" type="password" autocomplete="current-password" required></label>
<label>{totp_label}<input name="totp" id="totp" inputmode="numeric" autocomplete="one-time-code" maxlength="6"></label>
<button type="submit" id="login-submit">{submit}</button>
</form>
<p class="muted">{switch}</p>
</div></body></html>"#,
        html_lang = lang.html_code(),
        code = lang.code(),
        title = lang.pick("登录 · 哨兵", "Log in · Shaobing"),
        brand = lang.pick("哨兵 · 主机安全监测", "Shaobing host security"),
        csrf = html::csrf_field(ctx),
        user_label = lang.pick("用户名", "User name"),
        password_label = lang.pick("密码", "Password"),
        totp_label = lang.pick(
            "动态口令（已启用双因素时填写）",
            "One-time code (if two-factor is on)"
        ),
        submit = lang.pick("登录", "Log in"),
        username = esc(username),
    ))
}

/// `GET /login`.
pub async fn form(ctx: Ctx, Query(query): Query<LoginQuery>) -> Response {
    let message = query.expired.is_some().then(|| {
        (
            "info",
            ctx.t(
                "会话已超时，请重新登录",
                "Your session timed out. Please log in again.",
            ),
        )
    });
    login_page(&ctx, message, "").into_response()
}

/// `POST /login`.
pub async fn submit(
    State(state): State<SharedState>,
    ctx: Ctx,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let now = shaobing_wire::now_unix_nano();
    let policy = LockoutPolicy {
        after: state.config.lockout_after,
        duration: state.config.lockout_for,
    };
    let username = form.username.trim().to_owned();
    let outcome = state
        .db
        .authenticate(
            &username,
            &form.password,
            &form.totp,
            policy,
            now,
            &state.dummy_hash,
        )
        .await;
    let refused = |ctx: &Ctx, reason: LoginFailure| {
        let text = match reason {
            LoginFailure::Locked => ctx.t(
                "登录失败次数过多，账号已临时锁定，请稍后再试或联系系统管理员",
                "Too many failed logins: the account is locked for a while. Try later or ask a system administrator.",
            ),
            _ => ctx.t("用户名、密码或动态口令错误", "Wrong user name, password or one-time code"),
        };
        (
            StatusCode::UNAUTHORIZED,
            login_page(ctx, Some(("error", text)), &username),
        )
            .into_response()
    };
    match outcome {
        Ok(LoginOutcome::Success(user)) => {
            let session = state
                .db
                .create_session(&user.username, &ctx.client_ip, now)
                .await;
            let (cookie, _) = match session {
                Ok(pair) => pair,
                Err(error) => return super::error_page(&ctx, &error),
            };
            if let Err(error) = audit::record_as(
                &state,
                &user.username,
                &ctx.client_ip,
                "login.success",
                &user.username,
                json!({ "totp": user.totp_enabled }),
            )
            .await
            {
                return super::error_page(&ctx, &error);
            }
            let target = if user.must_change_password {
                "/account?must_change=1"
            } else {
                user.role.landing_page()
            };
            let mut response = see_other(target);
            append_cookie(
                response.headers_mut(),
                &cookie_header(SESSION_COOKIE, &cookie, None, state.config.secure_cookies),
            );
            response
        }
        Ok(LoginOutcome::Failed { reason, locked_now }) => {
            let detail = json!({ "reason": reason.name() });
            let logged = audit::record_as(
                &state,
                &username,
                &ctx.client_ip,
                "login.failure",
                &username,
                detail,
            )
            .await;
            if locked_now {
                let _ = audit::record_as(&state, "system", &ctx.client_ip, "account.locked", &username, json!({ "after_failures": policy.after, "for_secs": policy.duration.as_secs() })).await;
            }
            if let Err(error) = logged {
                return super::error_page(&ctx, &error);
            }
            refused(
                &ctx,
                if locked_now {
                    LoginFailure::Locked
                } else {
                    reason
                },
            )
        }
        Err(error) => super::error_page(&ctx, &error),
    }
}

/// `POST /logout`.
pub async fn logout(State(state): State<SharedState>, Op(op, ctx): Op) -> Response {
    if let AuthVia::Session(session) = &op.via
        && let Err(error) = state.db.end_session(&session.id_digest).await
    {
        return super::error_page(&ctx, &error);
    }
    if let Err(error) = audit::record(&state, &ctx, "logout", op.name(), json!({})).await {
        return super::error_page(&ctx, &error);
    }
    let mut response = see_other("/login");
    append_cookie(
        response.headers_mut(),
        &cookie_header(SESSION_COOKIE, "", Some(0), state.config.secure_cookies),
    );
    response
}

/// `GET /`: the landing page of the operator's role.
pub async fn home(Op(op, _ctx): Op) -> Response {
    if op.user.must_change_password {
        return see_other("/account?must_change=1");
    }
    see_other(op.role().landing_page())
}
