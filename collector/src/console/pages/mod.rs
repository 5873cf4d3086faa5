//! Server-rendered HTML pages, one module per page. Handlers read through the shared
//! operations (`alerts`, `overview`, `admin`, `reports`, `notify`) and render with
//! [`super::html`]; access was already decided by the guard from the route table.

pub mod account;
pub mod alert_detail;
pub mod alerts;
pub mod audit_log;
pub mod hosts;
pub mod login;
pub mod notifications;
pub mod overview;
pub mod reports;
pub mod rule_filter;
pub mod rules;
pub mod users;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::context::Ctx;
use super::error::ConsoleError;
use super::html;

/// Renders an error as a page (bad input shows its message, internal errors do not).
pub fn error_page(ctx: &Ctx, error: &ConsoleError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::error!(%error, "console page failed");
    }
    let title = ctx.t("出错了", "Something went wrong");
    let body = html::notice("error", &error.public_message());
    (status, html::page(ctx, "", title, &body)).into_response()
}

/// Result of a page handler: the page, or an error rendered as a page.
pub fn respond(ctx: &Ctx, result: Result<Response, ConsoleError>) -> Response {
    result.unwrap_or_else(|error| error_page(ctx, &error))
}

/// 303 to `path` (after a successful form post).
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A status with a page.
pub fn with_status(status: StatusCode, page: axum::response::Html<String>) -> Response {
    (status, page).into_response()
}

/// Message for a `?done=` key shown after a redirect.
pub fn done_notice(ctx: &Ctx, key: Option<&str>) -> String {
    let text = match key {
        Some("saved") => ctx.t("已保存", "Saved"),
        Some("triaged") => ctx.t("告警已更新", "Alert updated"),
        Some("bulk") => ctx.t("所选告警已更新", "Selected alerts updated"),
        Some("password") => ctx.t("密码已修改", "Password changed"),
        Some("totp_on") => ctx.t("双因素认证已启用", "Two-factor authentication enabled"),
        Some("totp_off") => ctx.t("双因素认证已关闭", "Two-factor authentication disabled"),
        Some("revoked") => ctx.t("令牌已吊销", "Token revoked"),
        Some("sent") => ctx.t("测试消息已发送", "Test message sent"),
        Some("rule_enabled") => ctx.t("规则已启用，检测已生效", "Rule enabled; detection updated"),
        Some("rule_disabled") => {
            ctx.t("规则已停用，检测已生效", "Rule disabled; detection updated")
        }
        Some("filter_saved") => ctx.t("过滤规则已保存并生效", "Filter saved and in service"),
        _ => return String::new(),
    };
    html::notice("ok", text)
}
