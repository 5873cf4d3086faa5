//! Users and roles (系统管理员 only): list, create with a one-time password, change
//! role (never one's own), disable/enable, unlock, reset password, turn TOTP off.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use super::super::admin::{self, NewUser, UserAction, UserChange};
use super::super::context::{Ctx, Op};
use super::super::error::ConsoleError;
use super::super::html::{self, esc, url_encode};
use super::super::roles::Role;
use super::super::state::SharedState;
use super::{respond, see_other};

fn role_options(ctx: &Ctx, selected: &str) -> String {
    let choices: Vec<(&str, &str)> = Role::ALL
        .iter()
        .map(|r| (r.name(), r.label(ctx.lang)))
        .collect();
    html::options(&choices, selected)
}

async fn render(
    state: &SharedState,
    ctx: &Ctx,
    me: &str,
    message: &str,
) -> Result<Response, ConsoleError> {
    let lang = ctx.lang;
    let users = state.db.users().await?;
    let now = shaobing_wire::now_unix_nano();
    let mut body = message.to_owned();
    let _ = write!(
        body,
        r#"<table id="users-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
        lang.pick("用户名", "User"),
        lang.pick("角色", "Role"),
        lang.pick("状态", "State"),
        lang.pick("双因素", "2FA"),
        lang.pick("操作", "Actions"),
    );
    for u in &users {
        let mut states = Vec::new();
        if u.disabled {
            states.push(lang.pick("已停用", "disabled"));
        }
        if u.is_locked(now) {
            states.push(lang.pick("已锁定", "locked"));
        }
        if u.must_change_password {
            states.push(lang.pick("待改密", "must change password"));
        }
        if states.is_empty() {
            states.push(lang.pick("正常", "active"));
        }
        let action = format!("/users/{}", url_encode(&u.username));
        let csrf = html::csrf_field(ctx);
        let actions = if u.username == me {
            format!(
                r#"<span class="muted">{}</span>"#,
                lang.pick(
                    "（当前账号：不能修改自己的角色）",
                    "(you: cannot change your own role)"
                )
            )
        } else {
            let toggle = if u.disabled {
                ("enable", lang.pick("启用", "Enable"))
            } else {
                ("disable", lang.pick("停用", "Disable"))
            };
            format!(
                r#"<form method="post" action="{action}" class="actions">{csrf}<input type="hidden" name="action" value="set_role"><select name="role">{roles}</select><button type="submit" class="secondary">{t_role}</button></form>
<form method="post" action="{action}" class="inline">{csrf}<button type="submit" name="action" value="{tv}" class="secondary">{tl}</button> <button type="submit" name="action" value="unlock" class="secondary">{t_unlock}</button> <button type="submit" name="action" value="reset_password" class="secondary">{t_reset}</button> <button type="submit" name="action" value="disable_totp" class="secondary">{t_totp}</button></form>"#,
                roles = role_options(ctx, u.role.name()),
                t_role = lang.pick("修改角色", "Change role"),
                tv = toggle.0,
                tl = toggle.1,
                t_unlock = lang.pick("解锁", "Unlock"),
                t_reset = lang.pick("重置密码", "Reset password"),
                t_totp = lang.pick("关闭双因素", "Turn 2FA off"),
            )
        };
        let _ = write!(
            body,
            r#"<tr data-user="{}"><td>{}<div class="muted">{}</div></td><td>{}</td><td>{}</td><td>{}</td><td>{actions}</td></tr>"#,
            esc(&u.username),
            esc(&u.username),
            esc(&u.display_name),
            u.role.label(lang),
            states.join(", "),
            if u.totp_enabled {
                lang.pick("已启用", "on")
            } else {
                lang.pick("未启用", "off")
            },
        );
    }
    body.push_str("</tbody></table>");
    let _ = write!(
        body,
        r#"<div class="panel"><h2>{}</h2><form method="post" action="/users" class="stack" id="new-user">{}<label>{}<input name="username" required pattern="[A-Za-z0-9._-]{{1,32}}"></label><label>{}<input name="display_name"></label><label>{}<select name="role">{}</select></label><button type="submit">{}</button></form>
<p class="muted">{}</p></div>"#,
        lang.pick("新建用户", "New user"), html::csrf_field(ctx), lang.pick("用户名", "User name"), lang.pick("显示名", "Display name"),
        lang.pick("角色（每个账号一个）", "Role (one per account)"), role_options(ctx, "secadmin"), lang.pick("创建", "Create"),
        lang.pick("三员分立：系统管理员管理主机、用户与设置；安全管理员负责规则、告警处置与通知；审计管理员只读审计日志；合规专员查看并导出报表。", "Separation of duties: system administrators manage agents, users and settings; security administrators handle rules, alert triage and notifications; auditors only read the audit log; compliance officers read and export reports."),
    );
    Ok(html::page(
        ctx,
        "/users",
        lang.pick("用户与角色", "Users & roles"),
        &body,
    )
    .into_response())
}

fn one_time_password_notice(ctx: &Ctx, username: &str, password: &str) -> String {
    format!(
        r#"<div class="notice ok">{} <strong>{}</strong><div class="secret" id="one-time-password">{}</div>{}</div>"#,
        esc(ctx.t(
            "一次性密码（只显示这一次，首次登录须修改）：",
            "One-time password (shown only now; must be changed at first login):"
        )),
        esc(username),
        esc(password),
        ""
    )
}

/// `GET /users`.
pub async fn list(State(state): State<SharedState>, Op(op, ctx): Op) -> Response {
    let result = render(&state, &ctx, op.name(), "").await;
    respond(&ctx, result)
}

/// `POST /users`.
pub async fn create(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    axum::Form(new): axum::Form<NewUser>,
) -> Response {
    let result = async {
        let password = admin::create_user(&state, &ctx, &new).await?;
        render(
            &state,
            &ctx,
            op.name(),
            &one_time_password_notice(&ctx, new.username.trim(), &password),
        )
        .await
    }
    .await;
    respond(&ctx, result)
}

/// `POST /users/{username}`.
pub async fn update(
    State(state): State<SharedState>,
    Op(op, ctx): Op,
    Path(username): Path<String>,
    axum::Form(change): axum::Form<UserChange>,
) -> Response {
    let result = async {
        let password = admin::update_user(&state, &ctx, &username, &change).await?;
        match password {
            Some(password) => {
                render(
                    &state,
                    &ctx,
                    op.name(),
                    &one_time_password_notice(&ctx, &username, &password),
                )
                .await
            }
            None if change.action == UserAction::SetRole => Ok(see_other("/users")),
            None => Ok(see_other("/users")),
        }
    }
    .await;
    respond(&ctx, result)
}
