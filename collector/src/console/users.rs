//! Local operator accounts in `console.db`: creation (with a one-time password the
//! operator must change at first login), role changes, locking, password checks with
//! lockout after repeated failures, and the optional TOTP second factor.

use std::time::Duration;

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::db::ConsoleDb;
use super::error::{ConsoleError, ConsoleResult};
use super::password::{PasswordCost, hash_password, random_password, verify_password};
use super::roles::Role;
use super::totp;

/// One operator account (secrets included: never serialize this; see [`UserView`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// The account's single role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Set for one-time passwords: every page leads to the password change until done.
    pub must_change_password: bool,
    /// Base32 TOTP secret (pending until `totp_enabled`).
    pub totp_secret: String,
    /// Whether login asks for a TOTP code.
    pub totp_enabled: bool,
    /// Last TOTP step accepted (a code works once).
    pub totp_last_step: i64,
    /// Consecutive failed logins.
    pub failed_logins: u32,
    /// Locked until this time (unix nanos; 0 = not locked).
    pub locked_until_ns: i64,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Operator's time zone as minutes east of UTC; `None`: the browser's.
    pub tz_offset_minutes: Option<i32>,
    /// When the account was created.
    pub created_ns: i64,
    /// Who created it.
    pub created_by: String,
}

/// What the API and pages show about an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: Role,
    /// Must change the password at next login.
    pub must_change_password: bool,
    /// TOTP second factor enabled.
    pub totp_enabled: bool,
    /// Locked until (unix nanos; 0 = not locked).
    pub locked_until_ns: i64,
    /// Disabled.
    pub disabled: bool,
    /// Created at (unix nanos).
    pub created_ns: i64,
    /// Created by.
    pub created_by: String,
}

impl User {
    /// The public view.
    pub fn view(&self) -> UserView {
        UserView {
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            must_change_password: self.must_change_password,
            totp_enabled: self.totp_enabled,
            locked_until_ns: self.locked_until_ns,
            disabled: self.disabled,
            created_ns: self.created_ns,
            created_by: self.created_by.clone(),
        }
    }

    /// Locked at `now`.
    pub fn is_locked(&self, now_ns: i64) -> bool {
        self.locked_until_ns > now_ns
    }
}

/// Lockout policy: after `after` consecutive failures the account is locked for `for_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that lock the account.
    pub after: u32,
    /// How long it stays locked.
    pub duration: Duration,
}

/// Why a login was refused (the operator sees one generic message; the audit log the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// No such account.
    UnknownUser,
    /// Wrong password.
    BadPassword,
    /// TOTP enabled and the code was missing or wrong.
    BadTotp,
    /// The account is locked (too many failures).
    Locked,
    /// The account is disabled.
    Disabled,
}

impl LoginFailure {
    /// Stable name for the audit log.
    pub fn name(self) -> &'static str {
        match self {
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::BadPassword => "bad_password",
            LoginFailure::BadTotp => "bad_totp",
            LoginFailure::Locked => "locked",
            LoginFailure::Disabled => "disabled",
        }
    }
}

/// Result of [`ConsoleDb::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Credentials accepted.
    Success(Box<User>),
    /// Refused; `locked_now` when this failure locked the account.
    Failed {
        /// Why.
        reason: LoginFailure,
        /// This attempt triggered the lockout.
        locked_now: bool,
    },
}

const USER_COLUMNS: &str = "username, display_name, role, password_hash, must_change_password, \
     totp_secret, totp_enabled, totp_last_step, failed_logins, locked_until_ns, disabled, \
     tz_offset_minutes, created_ns, created_by";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(2)?;
    Ok(User {
        username: row.get(0)?,
        display_name: row.get(1)?,
        role: Role::from_name(&role).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(
                2,
                format!("role {role:?}"),
                rusqlite::types::Type::Text,
            )
        })?,
        password_hash: row.get(3)?,
        must_change_password: row.get(4)?,
        totp_secret: row.get(5)?,
        totp_enabled: row.get(6)?,
        totp_last_step: row.get(7)?,
        failed_logins: row.get(8)?,
        locked_until_ns: row.get(9)?,
        disabled: row.get(10)?,
        tz_offset_minutes: row.get(11)?,
        created_ns: row.get(12)?,
        created_by: row.get(13)?,
    })
}

/// Checks a user name: 1–32 characters of letters, digits, `.`, `_`, `-`.
pub fn validate_username(name: &str) -> ConsoleResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ConsoleError::Invalid(
            "user names are 1-32 characters: letters, digits, '.', '_', '-'".to_owned(),
        ))
    }
}

impl ConsoleDb {
    /// Number of accounts.
    pub async fn user_count(&self) -> ConsoleResult<u64> {
        self.call(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))
            .await
    }

    /// One account by name.
    pub async fn user(&self, username: &str) -> ConsoleResult<Option<User>> {
        let username = username.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                [username],
                user_from_row,
            )
            .optional()?)
        })
        .await
    }

    /// All accounts by name.
    pub async fn users(&self) -> ConsoleResult<Vec<User>> {
        self.call(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))?;
            let rows = stmt.query_map([], user_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Creates an account with a random one-time password (returned; shown once) that
    /// must be changed at first login.
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
        created_by: &str,
        cost: PasswordCost,
        now_ns: i64,
    ) -> ConsoleResult<String> {
        validate_username(username)?;
        let password = random_password();
        let hash = hash_password(&password, cost)?;
        let (username, display_name, created_by) = (
            username.to_owned(),
            display_name.to_owned(),
            created_by.to_owned(),
        );
        self.call(move |c| {
            let inserted = c.execute(
                "INSERT OR IGNORE INTO users (username, display_name, role, password_hash,
                    must_change_password, created_ns, created_by)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
                params![
                    username,
                    display_name,
                    role.name(),
                    hash,
                    now_ns,
                    created_by
                ],
            )?;
            if inserted == 0 {
                return Err(ConsoleError::Invalid(format!(
                    "user {username:?} already exists"
                )));
            }
            Ok(())
        })
        .await?;
        Ok(password)
    }

    /// Changes another account's role. An operator can never change its own role.
    pub async fn set_role(&self, actor: &str, username: &str, role: Role) -> ConsoleResult<()> {
        if actor == username {
            return Err(ConsoleError::Invalid(
                "operators cannot change their own role".to_owned(),
            ));
        }
        self.update_user(username, "role = ?2", role.name().to_owned())
            .await
    }

    /// Disables or enables another account; its sessions end when disabled.
    pub async fn set_disabled(
        &self,
        actor: &str,
        username: &str,
        disabled: bool,
    ) -> ConsoleResult<()> {
        if actor == username {
            return Err(ConsoleError::Invalid(
                "operators cannot disable their own account".to_owned(),
            ));
        }
        self.update_user(username, "disabled = ?2", i64::from(disabled))
            .await?;
        if disabled {
            self.end_sessions_of(username).await?;
        }
        Ok(())
    }

    /// Clears a lockout.
    pub async fn unlock(&self, username: &str) -> ConsoleResult<()> {
        self.update_user(username, "locked_until_ns = 0, failed_logins = ?2", 0i64)
            .await
    }

    /// Replaces the password with a random one-time password (returned), ends sessions.
    pub async fn reset_password(
        &self,
        username: &str,
        cost: PasswordCost,
    ) -> ConsoleResult<String> {
        let password = random_password();
        let hash = hash_password(&password, cost)?;
        self.update_user(
            username,
            "password_hash = ?2, must_change_password = 1",
            hash,
        )
        .await?;
        self.end_sessions_of(username).await?;
        Ok(password)
    }

    /// Sets a new password chosen by the operator (policy checked by the caller).
    pub async fn change_password(
        &self,
        username: &str,
        new_password: &str,
        cost: PasswordCost,
    ) -> ConsoleResult<()> {
        let hash = hash_password(new_password, cost)?;
        self.update_user(
            username,
            "password_hash = ?2, must_change_password = 0",
            hash,
        )
        .await
    }

    /// Stores a pending TOTP secret (enabled only once a code is confirmed).
    pub async fn set_totp_secret(&self, username: &str, secret: &str) -> ConsoleResult<()> {
        self.update_user(
            username,
            "totp_secret = ?2, totp_enabled = 0",
            secret.to_owned(),
        )
        .await
    }

    /// Enables TOTP if `code` matches the pending secret at `unix_secs`.
    pub async fn enable_totp(
        &self,
        username: &str,
        code: &str,
        unix_secs: i64,
    ) -> ConsoleResult<bool> {
        let user = self
            .user(username)
            .await?
            .ok_or_else(|| ConsoleError::NotFound(username.to_owned()))?;
        if user.totp_secret.is_empty() {
            return Ok(false);
        }
        let Some(step) = totp::verify(&user.totp_secret, code, unix_secs, user.totp_last_step)
        else {
            return Ok(false);
        };
        self.update_user(username, "totp_enabled = 1, totp_last_step = ?2", step)
            .await?;
        Ok(true)
    }

    /// Turns TOTP off and forgets the secret.
    pub async fn disable_totp(&self, username: &str) -> ConsoleResult<()> {
        self.update_user(
            username,
            "totp_enabled = 0, totp_secret = ?2",
            String::new(),
        )
        .await
    }

    /// Sets the operator's time zone (minutes east of UTC; `None` = the browser's).
    pub async fn set_tz_offset(&self, username: &str, minutes: Option<i32>) -> ConsoleResult<()> {
        self.update_user(username, "tz_offset_minutes = ?2", minutes)
            .await
    }

    async fn update_user<V>(&self, username: &str, set: &'static str, value: V) -> ConsoleResult<()>
    where
        V: rusqlite::ToSql + Send + 'static,
    {
        let username = username.to_owned();
        self.call(move |c| {
            let changed = c.execute(
                &format!("UPDATE users SET {set} WHERE username = ?1"),
                params![username, value],
            )?;
            if changed == 0 {
                return Err(ConsoleError::NotFound(format!("user {username}")));
            }
            Ok(())
        })
        .await
    }

    /// Checks a login attempt, counting failures and locking the account per `policy`.
    /// `totp_code` is required when the account has TOTP enabled.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        totp_code: &str,
        policy: LockoutPolicy,
        now_ns: i64,
        dummy_hash: &str,
    ) -> ConsoleResult<LoginOutcome> {
        let Some(user) = self.user(username).await? else {
            // Same work as a real check, so timing does not reveal which names exist.
            let (password, dummy) = (password.to_owned(), dummy_hash.to_owned());
            tokio::task::spawn_blocking(move || verify_password(&password, &dummy)).await?;
            return Ok(LoginOutcome::Failed {
                reason: LoginFailure::UnknownUser,
                locked_now: false,
            });
        };
        if user.disabled {
            return Ok(failed(LoginFailure::Disabled));
        }
        if user.is_locked(now_ns) {
            return Ok(failed(LoginFailure::Locked));
        }
        let (candidate, hash) = (password.to_owned(), user.password_hash.clone());
        let password_ok =
            tokio::task::spawn_blocking(move || verify_password(&candidate, &hash)).await?;
        let totp_step = if password_ok && user.totp_enabled {
            totp::verify(
                &user.totp_secret,
                totp_code,
                now_ns / 1_000_000_000,
                user.totp_last_step,
            )
        } else {
            None
        };
        let reason = if !password_ok {
            Some(LoginFailure::BadPassword)
        } else if user.totp_enabled && totp_step.is_none() {
            Some(LoginFailure::BadTotp)
        } else {
            None
        };
        let name = user.username.clone();
        match reason {
            Some(reason) => {
                let after = policy.after.max(1);
                let lock_until = now_ns.saturating_add(policy.duration.as_nanos() as i64);
                let locked_now = self
                    .call(move |c| {
                        let failures: u32 = c.query_row(
                            "UPDATE users SET failed_logins = failed_logins + 1 WHERE username = ?1
                             RETURNING failed_logins",
                            [&name],
                            |r| r.get(0),
                        )?;
                        if failures >= after {
                            c.execute(
                                "UPDATE users SET failed_logins = 0, locked_until_ns = ?2 WHERE username = ?1",
                                params![name, lock_until],
                            )?;
                            return Ok(true);
                        }
                        Ok(false)
                    })
                    .await?;
                Ok(LoginOutcome::Failed { reason, locked_now })
            }
            None => {
                let step = totp_step.unwrap_or(user.totp_last_step);
                self.call(move |c| {
                    c.execute(
                        "UPDATE users SET failed_logins = 0, locked_until_ns = 0, totp_last_step = ?2
                         WHERE username = ?1",
                        params![name, step],
                    )?;
                    Ok(())
                })
                .await?;
                Ok(LoginOutcome::Success(Box::new(user)))
            }
        }
    }
}

fn failed(reason: LoginFailure) -> LoginOutcome {
    LoginOutcome::Failed {
        reason,
        locked_now: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        after: 3,
        duration: Duration::from_secs(60),
    };

    async fn db_with_user() -> (tempfile::TempDir, ConsoleDb, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let db = ConsoleDb::open(&dir.path().join("console.db")).unwrap();
        let password = db
            .create_user(
                "alice",
                "Alice",
                Role::Secadmin,
                "test",
                PasswordCost::for_tests(),
                1,
            )
            .await
            .unwrap();
        let dummy = hash_password("dummy", PasswordCost::for_tests()).unwrap();
        (dir, db, password, dummy)
    }

    #[tokio::test]
    async fn lockout_after_repeated_failures_refuses_even_the_right_password() {
        let (_dir, db, password, dummy) = db_with_user().await;
        let now = 1_000_000_000_000;
        for attempt in 1..=3 {
            let outcome = db
                .authenticate("alice", "wrong", "", POLICY, now, &dummy)
                .await
                .unwrap();
            assert_eq!(
                outcome,
                LoginOutcome::Failed {
                    reason: LoginFailure::BadPassword,
                    locked_now: attempt == 3
                }
            );
        }
        let locked = db
            .authenticate("alice", &password, "", POLICY, now + 1, &dummy)
            .await
            .unwrap();
        assert_eq!(
            locked,
            LoginOutcome::Failed {
                reason: LoginFailure::Locked,
                locked_now: false
            }
        );
        let later = now + 61_000_000_000;
        let ok = db
            .authenticate("alice", &password, "", POLICY, later, &dummy)
            .await
            .unwrap();
        assert!(matches!(ok, LoginOutcome::Success(u) if u.must_change_password));
    }

    #[tokio::test]
    async fn totp_is_required_once_enabled_and_codes_are_single_use() {
        let (_dir, db, password, dummy) = db_with_user().await;
        let secret = totp::new_secret();
        db.set_totp_secret("alice", &secret).await.unwrap();
        let t0 = 1_700_000_000i64;
        let code = totp::current_code(&secret, t0).unwrap();
        let wrong: String = code
            .chars()
            .map(|c| {
                if c == '9' {
                    '0'
                } else {
                    ((c as u8) + 1) as char
                }
            })
            .collect();
        assert!(!db.enable_totp("alice", &wrong, t0).await.unwrap());
        assert!(db.enable_totp("alice", &code, t0).await.unwrap());
        let t1 = t0 + 60;
        let now = t1 * 1_000_000_000;
        let without = db
            .authenticate("alice", &password, "", POLICY, now, &dummy)
            .await
            .unwrap();
        assert_eq!(
            without,
            LoginOutcome::Failed {
                reason: LoginFailure::BadTotp,
                locked_now: false
            }
        );
        let code = totp::current_code(&secret, t1).unwrap();
        let with = db
            .authenticate("alice", &password, &code, POLICY, now, &dummy)
            .await
            .unwrap();
        assert!(matches!(with, LoginOutcome::Success(_)));
        let replay = db
            .authenticate("alice", &password, &code, POLICY, now, &dummy)
            .await
            .unwrap();
        assert_eq!(
            replay,
            LoginOutcome::Failed {
                reason: LoginFailure::BadTotp,
                locked_now: false
            }
        );
    }

    #[tokio::test]
    async fn nobody_changes_their_own_role_and_names_are_checked() {
        let (_dir, db, _password, _dummy) = db_with_user().await;
        assert!(db.set_role("alice", "alice", Role::Sysadmin).await.is_err());
        db.set_role("admin", "alice", Role::Auditor).await.unwrap();
        assert_eq!(db.user("alice").await.unwrap().unwrap().role, Role::Auditor);
        assert!(validate_username("bob smith").is_err());
        assert!(
            db.create_user(
                "alice",
                "",
                Role::Auditor,
                "t",
                PasswordCost::for_tests(),
                2
            )
            .await
            .is_err()
        );
    }
}
