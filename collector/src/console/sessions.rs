//! Browser sessions and API tokens in `console.db`.
//!
//! Only SHA-256 digests of session ids and API tokens are stored, so a copy of the
//! database does not let anyone log in. A session ends after `idle_timeout` without a
//! request, after [`MAX_SESSION_AGE`] in any case, on logout, and when its account is
//! disabled or its password reset.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::db::ConsoleDb;
use super::error::{ConsoleError, ConsoleResult};
use super::password::{random_token, token_digest};

/// Longest a session lives, however active.
pub const MAX_SESSION_AGE: Duration = Duration::from_secs(12 * 3600);
/// Prefix of API tokens (helps secret scanners and operators recognise them).
pub const API_TOKEN_PREFIX: &str = "sbt_";

/// A live browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Digest of the cookie value (the key in the table).
    pub id_digest: String,
    /// Account.
    pub username: String,
    /// CSRF token every state change must carry.
    pub csrf_token: String,
    /// Login time.
    pub created_ns: i64,
    /// Last request.
    pub last_seen_ns: i64,
    /// Address the login came from.
    pub client_ip: String,
}

/// Result of looking a session cookie up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionLookup {
    /// Valid; its last-seen time was moved to now.
    Active(Session),
    /// It existed but timed out (now deleted).
    Expired,
    /// Unknown id.
    Missing,
}

/// An API token as listed (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Public id.
    pub id: String,
    /// Owner: the token acts with this account's role.
    pub username: String,
    /// Operator's label for it.
    pub name: String,
    /// Created at (unix nanos).
    pub created_ns: i64,
    /// Last used (unix nanos; 0 = never).
    pub last_used_ns: i64,
    /// Revoked tokens are refused.
    pub revoked: bool,
}

impl ConsoleDb {
    /// Starts a session; returns the cookie value (secret) and the session.
    pub async fn create_session(
        &self,
        username: &str,
        client_ip: &str,
        now_ns: i64,
    ) -> ConsoleResult<(String, Session)> {
        let cookie = random_token(32);
        let session = Session {
            id_digest: token_digest(&cookie),
            username: username.to_owned(),
            csrf_token: random_token(32),
            created_ns: now_ns,
            last_seen_ns: now_ns,
            client_ip: client_ip.to_owned(),
        };
        let row = session.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO sessions (id_digest, username, csrf_token, created_ns, last_seen_ns, client_ip)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.id_digest, row.username, row.csrf_token, row.created_ns, row.last_seen_ns, row.client_ip],
            )?;
            Ok(())
        })
        .await?;
        Ok((cookie, session))
    }

    /// Looks up the session of a cookie value, enforcing the idle timeout and the
    /// maximum age, and records activity.
    pub async fn resume_session(
        &self,
        cookie: &str,
        idle_timeout: Duration,
        now_ns: i64,
    ) -> ConsoleResult<SessionLookup> {
        let digest = token_digest(cookie);
        let idle = idle_timeout.as_nanos() as i64;
        let max_age = MAX_SESSION_AGE.as_nanos() as i64;
        self.call(move |c| {
            let found = c
                .query_row(
                    "SELECT id_digest, username, csrf_token, created_ns, last_seen_ns, client_ip
                     FROM sessions WHERE id_digest = ?1",
                    [&digest],
                    |r| {
                        Ok(Session {
                            id_digest: r.get(0)?,
                            username: r.get(1)?,
                            csrf_token: r.get(2)?,
                            created_ns: r.get(3)?,
                            last_seen_ns: r.get(4)?,
                            client_ip: r.get(5)?,
                        })
                    },
                )
                .optional()?;
            let Some(mut session) = found else {
                return Ok(SessionLookup::Missing);
            };
            let idle_for = now_ns.saturating_sub(session.last_seen_ns);
            let age = now_ns.saturating_sub(session.created_ns);
            if idle_for > idle || age > max_age {
                c.execute("DELETE FROM sessions WHERE id_digest = ?1", [&digest])?;
                return Ok(SessionLookup::Expired);
            }
            c.execute(
                "UPDATE sessions SET last_seen_ns = ?2 WHERE id_digest = ?1",
                params![digest, now_ns],
            )?;
            session.last_seen_ns = now_ns;
            Ok(SessionLookup::Active(session))
        })
        .await
    }

    /// Ends one session.
    pub async fn end_session(&self, id_digest: &str) -> ConsoleResult<()> {
        let digest = id_digest.to_owned();
        self.call(move |c| {
            c.execute("DELETE FROM sessions WHERE id_digest = ?1", [digest])?;
            Ok(())
        })
        .await
    }

    /// Ends every session of an account.
    pub async fn end_sessions_of(&self, username: &str) -> ConsoleResult<()> {
        let username = username.to_owned();
        self.call(move |c| {
            c.execute("DELETE FROM sessions WHERE username = ?1", [username])?;
            Ok(())
        })
        .await
    }

    /// Creates an API token for `username`; returns the secret (shown once) and its id.
    pub async fn create_api_token(
        &self,
        username: &str,
        name: &str,
        now_ns: i64,
    ) -> ConsoleResult<(String, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ConsoleError::Invalid(
                "token names are 1-64 characters".to_owned(),
            ));
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", random_token(32));
        let id = random_token(8);
        let (digest, username, name, row_id) = (
            token_digest(&secret),
            username.to_owned(),
            name.to_owned(),
            id.clone(),
        );
        self.call(move |c| {
            c.execute(
                "INSERT INTO api_tokens (id, token_digest, username, name, created_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row_id, digest, username, name, now_ns],
            )?;
            Ok(())
        })
        .await?;
        Ok((secret, id))
    }

    /// The account a bearer token acts for, if the token is valid (records its use).
    pub async fn resolve_api_token(
        &self,
        secret: &str,
        now_ns: i64,
    ) -> ConsoleResult<Option<ApiToken>> {
        if !secret.starts_with(API_TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token_digest(secret);
        self.call(move |c| {
            let token = c
                .query_row(
                    "SELECT id, username, name, created_ns, last_used_ns, revoked FROM api_tokens
                     WHERE token_digest = ?1 AND revoked = 0",
                    [&digest],
                    token_from_row,
                )
                .optional()?;
            if token.is_some() {
                c.execute(
                    "UPDATE api_tokens SET last_used_ns = ?2 WHERE token_digest = ?1",
                    params![digest, now_ns],
                )?;
            }
            Ok(token)
        })
        .await
    }

    /// Tokens of one account, newest first.
    pub async fn api_tokens_of(&self, username: &str) -> ConsoleResult<Vec<ApiToken>> {
        let username = username.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, username, name, created_ns, last_used_ns, revoked FROM api_tokens
                 WHERE username = ?1 ORDER BY created_ns DESC",
            )?;
            let rows = stmt.query_map([username], token_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Revokes one of `username`'s tokens.
    pub async fn revoke_api_token(&self, username: &str, id: &str) -> ConsoleResult<()> {
        let (username, id) = (username.to_owned(), id.to_owned());
        self.call(move |c| {
            let changed = c.execute(
                "UPDATE api_tokens SET revoked = 1 WHERE id = ?1 AND username = ?2",
                params![id, username],
            )?;
            if changed == 0 {
                return Err(ConsoleError::NotFound(format!("token {id}")));
            }
            Ok(())
        })
        .await
    }
}

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        username: r.get(1)?,
        name: r.get(2)?,
        created_ns: r.get(3)?,
        last_used_ns: r.get(4)?,
        revoked: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_sessions_expire_and_active_ones_slide() {
        let dir = tempfile::tempdir().unwrap();
        let db = ConsoleDb::open(&dir.path().join("console.db")).unwrap();
        let idle = Duration::from_secs(10);
        let s = 1_000_000_000i64;
        let (cookie, _) = db.create_session("alice", "127.0.0.1", 0).await.unwrap();
        assert!(matches!(
            db.resume_session(&cookie, idle, 9 * s).await.unwrap(),
            SessionLookup::Active(_)
        ));
        assert!(matches!(
            db.resume_session(&cookie, idle, 18 * s).await.unwrap(),
            SessionLookup::Active(_)
        ));
        assert_eq!(
            db.resume_session(&cookie, idle, 29 * s).await.unwrap(),
            SessionLookup::Expired
        );
        assert_eq!(
            db.resume_session(&cookie, idle, 29 * s).await.unwrap(),
            SessionLookup::Missing
        );
        assert_eq!(
            db.resume_session("forged", idle, 0).await.unwrap(),
            SessionLookup::Missing
        );
    }

    #[tokio::test]
    async fn api_tokens_resolve_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let db = ConsoleDb::open(&dir.path().join("console.db")).unwrap();
        let (secret, id) = db.create_api_token("bob", "siem", 5).await.unwrap();
        assert!(secret.starts_with(API_TOKEN_PREFIX));
        let token = db.resolve_api_token(&secret, 6).await.unwrap().unwrap();
        assert_eq!(token.username, "bob");
        assert!(db.revoke_api_token("mallory", &id).await.is_err());
        db.revoke_api_token("bob", &id).await.unwrap();
        assert_eq!(db.resolve_api_token(&secret, 7).await.unwrap(), None);
        assert_eq!(db.api_tokens_of("bob").await.unwrap()[0].last_used_ns, 6);
    }
}
