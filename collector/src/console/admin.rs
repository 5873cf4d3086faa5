//! Account operations shared by the pages and the API, each written to the audit log:
//! user management by the system administrator (create, change role, disable, unlock,
//! reset password, turn TOTP off) and self-service on one's own account (password,
//! TOTP, time zone, API tokens). Nobody can change their own role.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit;
use super::context::{Ctx, Operator};
use super::error::{ConsoleError, ConsoleResult};
use super::password::{check_policy, verify_password};
use super::roles::Role;
use super::state::ConsoleState;
use super::totp;

/// A new account.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub display_name: String,
    /// Role name.
    pub role: String,
}

/// A change to another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UserAction {
    /// Change the role (never one's own).
    SetRole,
    /// Disable login and end sessions.
    Disable,
    /// Allow login again.
    Enable,
    /// Clear a lockout.
    Unlock,
    /// Issue a new one-time password.
    ResetPassword,
    /// Turn the second factor off (lost phone).
    DisableTotp,
}

impl UserAction {
    fn audit_name(self) -> &'static str {
        match self {
            UserAction::SetRole => "user.role",
            UserAction::Disable => "user.disable",
            UserAction::Enable => "user.enable",
            UserAction::Unlock => "user.unlock",
            UserAction::ResetPassword => "user.password_reset",
            UserAction::DisableTotp => "user.totp_disable",
        }
    }
}

/// A change request (form or JSON).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct UserChange {
    /// What to do.
    pub action: UserAction,
    /// New role (for `set_role`).
    #[serde(default)]
    pub role: String,
}

fn parse_role(name: &str) -> ConsoleResult<Role> {
    Role::from_name(name.trim())
        .ok_or_else(|| ConsoleError::Invalid(format!("unknown role {name:?}")))
}

/// Creates an account; returns its one-time password (shown once).
pub async fn create_user(state: &ConsoleState, ctx: &Ctx, new: &NewUser) -> ConsoleResult<String> {
    let role = parse_role(&new.role)?;
    let username = new.username.trim();
    let password = state
        .db
        .create_user(
            username,
            new.display_name.trim(),
            role,
            &ctx.actor(),
            state.config.password_cost,
            shaobing_wire::now_unix_nano(),
        )
        .await?;
    audit::record(
        state,
        ctx,
        "user.create",
        username,
        json!({ "role": role.name() }),
    )
    .await?;
    Ok(password)
}

/// Changes another account; returns a new one-time password for `reset_password`.
pub async fn update_user(
    state: &ConsoleState,
    ctx: &Ctx,
    username: &str,
    change: &UserChange,
) -> ConsoleResult<Option<String>> {
    let actor = ctx.actor();
    let before = state
        .db
        .user(username)
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("user {username}")))?;
    if actor == username && change.action != UserAction::DisableTotp {
        return Err(ConsoleError::Invalid(
            ctx.t(
                "不能修改自己的角色或状态",
                "you cannot change your own role or status",
            )
            .to_owned(),
        ));
    }
    let mut detail = json!({ "role": before.role.name() });
    let mut password = None;
    match change.action {
        UserAction::SetRole => {
            let role = parse_role(&change.role)?;
            state.db.set_role(&actor, username, role).await?;
            state.db.end_sessions_of(username).await?;
            detail = json!({ "from_role": before.role.name(), "to_role": role.name() });
        }
        UserAction::Disable => state.db.set_disabled(&actor, username, true).await?,
        UserAction::Enable => state.db.set_disabled(&actor, username, false).await?,
        UserAction::Unlock => state.db.unlock(username).await?,
        UserAction::ResetPassword => {
            password = Some(
                state
                    .db
                    .reset_password(username, state.config.password_cost)
                    .await?,
            );
        }
        UserAction::DisableTotp => state.db.disable_totp(username).await?,
    }
    audit::record(state, ctx, change.action.audit_name(), username, detail).await?;
    Ok(password)
}

/// Own password change: the current password is checked, the new one must pass the policy.
pub async fn change_own_password(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
    current: &str,
    new: &str,
    repeat: &str,
) -> ConsoleResult<()> {
    if new != repeat {
        return Err(ConsoleError::Invalid(
            ctx.t("两次输入的新密码不一致", "the new passwords differ")
                .to_owned(),
        ));
    }
    check_policy(new, op.name(), ctx.lang).map_err(ConsoleError::Invalid)?;
    let (current, hash) = (current.to_owned(), op.user.password_hash.clone());
    let (candidate, hash_again) = (new.to_owned(), op.user.password_hash.clone());
    let current_ok = tokio::task::spawn_blocking(move || verify_password(&current, &hash)).await?;
    if !current_ok {
        audit::record(
            state,
            ctx,
            "account.password_change.failure",
            op.name(),
            json!({}),
        )
        .await?;
        return Err(ConsoleError::Invalid(
            ctx.t("当前密码不正确", "the current password is wrong")
                .to_owned(),
        ));
    }
    let reused =
        tokio::task::spawn_blocking(move || verify_password(&candidate, &hash_again)).await?;
    if reused {
        return Err(ConsoleError::Invalid(
            ctx.t(
                "新密码不能与当前密码相同",
                "the new password must differ from the current one",
            )
            .to_owned(),
        ));
    }
    state
        .db
        .change_password(op.name(), new, state.config.password_cost)
        .await?;
    audit::record(state, ctx, "account.password_change", op.name(), json!({})).await
}

/// Starts TOTP enrollment: a new pending secret (returned with its otpauth URI).
pub async fn totp_setup(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
) -> ConsoleResult<(String, String)> {
    let secret = totp::new_secret();
    state.db.set_totp_secret(op.name(), &secret).await?;
    audit::record(state, ctx, "account.totp_setup", op.name(), json!({})).await?;
    let uri = totp::provisioning_uri(&secret, op.name());
    Ok((secret, uri))
}

/// Confirms TOTP enrollment with a code.
pub async fn totp_enable(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
    code: &str,
) -> ConsoleResult<()> {
    let now = shaobing_wire::now_unix_nano() / 1_000_000_000;
    if !state.db.enable_totp(op.name(), code, now).await? {
        return Err(ConsoleError::Invalid(
            ctx.t("动态口令不正确", "wrong one-time code").to_owned(),
        ));
    }
    audit::record(state, ctx, "account.totp_enable", op.name(), json!({})).await
}

/// Turns one's own TOTP off (requires the current password).
pub async fn totp_disable(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
    password: &str,
) -> ConsoleResult<()> {
    let (password, hash) = (password.to_owned(), op.user.password_hash.clone());
    if !tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await? {
        return Err(ConsoleError::Invalid(
            ctx.t("当前密码不正确", "the current password is wrong")
                .to_owned(),
        ));
    }
    state.db.disable_totp(op.name()).await?;
    audit::record(state, ctx, "account.totp_disable", op.name(), json!({})).await
}

/// Sets one's time zone: `browser` or an offset like `+08:00` / `480`.
pub async fn set_time_zone(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
    value: &str,
) -> ConsoleResult<()> {
    let minutes = parse_offset(value)?;
    state.db.set_tz_offset(op.name(), minutes).await?;
    audit::record(
        state,
        ctx,
        "account.preferences",
        op.name(),
        json!({ "tz_offset_minutes": minutes }),
    )
    .await
}

/// Parses `browser`, `+08:00`, `-05:30` or minutes.
pub fn parse_offset(value: &str) -> ConsoleResult<Option<i32>> {
    let value = value.trim();
    if value.is_empty() || value == "browser" {
        return Ok(None);
    }
    let invalid = || ConsoleError::Invalid(format!("invalid time zone offset {value:?}"));
    let minutes = if let Ok(m) = value.parse::<i32>() {
        m
    } else {
        let (sign, rest) = match value.as_bytes().first() {
            Some(b'+') => (1, &value[1..]),
            Some(b'-') => (-1, &value[1..]),
            _ => return Err(invalid()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(invalid)?;
        let h: i32 = h.parse().map_err(|_| invalid())?;
        let m: i32 = m.parse().map_err(|_| invalid())?;
        sign * (h * 60 + m)
    };
    if minutes.abs() > 14 * 60 {
        return Err(invalid());
    }
    Ok(Some(minutes))
}

/// Creates an API token for oneself; returns the secret (shown once).
pub async fn create_token(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
    name: &str,
) -> ConsoleResult<(String, String)> {
    let (secret, id) = state
        .db
        .create_api_token(op.name(), name, shaobing_wire::now_unix_nano())
        .await?;
    audit::record(
        state,
        ctx,
        "token.create",
        &id,
        json!({ "name": name.trim() }),
    )
    .await?;
    Ok((secret, id))
}

/// Revokes one of one's own API tokens.
pub async fn revoke_token(
    state: &ConsoleState,
    ctx: &Ctx,
    op: &Operator,
    id: &str,
) -> ConsoleResult<()> {
    state.db.revoke_api_token(op.name(), id).await?;
    audit::record(state, ctx, "token.revoke", id, json!({})).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_in_every_form() {
        assert_eq!(parse_offset("browser").unwrap(), None);
        assert_eq!(parse_offset("+08:00").unwrap(), Some(480));
        assert_eq!(parse_offset("-05:30").unwrap(), Some(-330));
        assert_eq!(parse_offset("60").unwrap(), Some(60));
        assert!(parse_offset("+25:00").is_err());
        assert!(parse_offset("Asia/Shanghai").is_err());
    }
}
