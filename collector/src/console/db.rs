//! The console's own state in `<data_dir>/console.db` (SQLite): users, sessions, API
//! tokens, notification channels and their delivery log. Alerts, events, agents and the
//! audit log stay in the [`crate::store::Store`]; every state-changing action is also
//! written to the store's append-only audit log by the handlers (see `audit`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::error::{ConsoleError, ConsoleResult};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    totp_secret TEXT NOT NULL DEFAULT '',
    totp_enabled INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until_ns INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    tz_offset_minutes INTEGER,
    created_ns INTEGER NOT NULL,
    created_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sessions (
    id_digest TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    client_ip TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (username);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL UNIQUE,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS notify_channels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    secret TEXT NOT NULL DEFAULT '',
    smtp_from TEXT NOT NULL DEFAULT '',
    smtp_to TEXT NOT NULL DEFAULT '',
    min_level TEXT NOT NULL DEFAULT 'high',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL,
    alert_id TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_alert ON notify_deliveries (channel_id, alert_id);
CREATE TABLE IF NOT EXISTS console_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Handle on `console.db`; cheap to clone. Every call runs on the blocking pool.
#[derive(Debug, Clone)]
pub struct ConsoleDb {
    conn: Arc<Mutex<Connection>>,
}

impl ConsoleDb {
    /// Opens (creating if needed) the database at `path` and applies the schema.
    pub fn open(path: &Path) -> ConsoleResult<ConsoleDb> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ConsoleError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        restrict_permissions(path);
        Ok(ConsoleDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> ConsoleResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> ConsoleResult<R> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| ConsoleError::Poisoned)?;
            f(&mut guard)
        })
        .await?
    }

    /// Reads a value of the `console_state` key-value table.
    pub async fn state(&self, key: &'static str) -> ConsoleResult<Option<String>> {
        self.call(move |c| {
            let mut stmt = c.prepare_cached("SELECT value FROM console_state WHERE key = ?1")?;
            let mut rows = stmt.query([key])?;
            Ok(match rows.next()? {
                Some(row) => Some(row.get(0)?),
                None => None,
            })
        })
        .await
    }

    /// Writes a value of the `console_state` key-value table.
    pub async fn set_state(&self, key: &'static str, value: String) -> ConsoleResult<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO console_state (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )?;
            Ok(())
        })
        .await
    }
}

/// The file holds password hashes and TOTP secrets: owner-only access.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(error) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), %error, "cannot restrict console.db permissions");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.db");
        let db = ConsoleDb::open(&path).unwrap();
        assert_eq!(db.state("watermark").await.unwrap(), None);
        db.set_state("watermark", "42".into()).await.unwrap();
        db.set_state("watermark", "43".into()).await.unwrap();
        drop(db);
        let db = ConsoleDb::open(&path).unwrap();
        assert_eq!(db.state("watermark").await.unwrap().as_deref(), Some("43"));
    }
}
