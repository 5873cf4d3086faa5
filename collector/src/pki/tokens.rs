//! One-time enrollment tokens. Only a SHA-256 of each token is kept on disk, with
//! its expiry and whether it was used; a token buys exactly one certificate.

use std::path::PathBuf;
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{PkiError, write};

/// Why a token was refused. The messages are shown to the enrolling operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("unknown enrollment token (未知的注册令牌)")]
    Unknown,
    #[error("enrollment token already used (注册令牌已被使用)")]
    AlreadyUsed,
    #[error("enrollment token expired (注册令牌已过期)")]
    Expired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    sha256: String,
    created_unix: i64,
    expires_unix: i64,
    used_unix: Option<i64>,
    used_by: Option<String>,
}

/// The token file, with a lock so concurrent enrollments cannot share a token.
#[derive(Debug)]
pub struct TokenStore {
    path: PathBuf,
    lock: Mutex<()>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

impl TokenStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn load(&self) -> Result<Vec<TokenRecord>, PkiError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| PkiError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(PkiError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn save(&self, records: &[TokenRecord]) -> Result<(), PkiError> {
        let json = serde_json::to_vec_pretty(records).unwrap_or_default();
        write(&self.path, &json, true)
    }

    /// Issues a new token valid for `ttl_secs` from `now_unix`. Returns the token text.
    pub fn create(&self, now_unix: i64, ttl_secs: i64) -> Result<String, PkiError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = [0u8; 24];
        rand::rng().fill(&mut bytes);
        let token = format!("sbt_{}", hex::encode(bytes));
        let mut records = self.load()?;
        records.push(TokenRecord {
            sha256: hash(&token),
            created_unix: now_unix,
            expires_unix: now_unix + ttl_secs,
            used_unix: None,
            used_by: None,
        });
        self.save(&records)?;
        Ok(token)
    }

    /// Marks `token` used by `agent_id` if it is valid; refuses it otherwise.
    pub fn consume(
        &self,
        token: &str,
        now_unix: i64,
        agent_hint: &str,
    ) -> Result<Result<(), TokenError>, PkiError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = self.load()?;
        let h = hash(token);
        let Some(rec) = records.iter_mut().find(|r| r.sha256 == h) else {
            return Ok(Err(TokenError::Unknown));
        };
        if rec.used_unix.is_some() {
            return Ok(Err(TokenError::AlreadyUsed));
        }
        if now_unix > rec.expires_unix {
            return Ok(Err(TokenError::Expired));
        }
        rec.used_unix = Some(now_unix);
        rec.used_by = Some(agent_hint.to_string());
        self.save(&records)?;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_one_time_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("tokens.json"));
        let t = store.create(1000, 60).unwrap();
        assert_eq!(
            store.consume("sbt_nope", 1001, "h").unwrap(),
            Err(TokenError::Unknown)
        );
        assert_eq!(store.consume(&t, 1001, "h").unwrap(), Ok(()));
        assert_eq!(
            store.consume(&t, 1002, "h").unwrap(),
            Err(TokenError::AlreadyUsed)
        );
        let t2 = store.create(1000, 60).unwrap();
        assert_eq!(
            store.consume(&t2, 2000, "h").unwrap(),
            Err(TokenError::Expired)
        );
        let raw = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert!(!raw.contains(&t), "tokens are stored hashed");
    }
}
