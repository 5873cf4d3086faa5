//! Revoked agents. `shaobing-collector agent revoke ID` adds the agent id to
//! `revoked.json`; the data port checks every new connection against it (the
//! file is re-read when it changes), so a revoked agent is refused at its next
//! connect, and its open stream is closed at its next batch.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{PkiError, write};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revocation {
    pub agent_id: String,
    pub revoked_unix: i64,
    pub reason: String,
}

/// The revocation list file with an in-memory copy refreshed on change.
#[derive(Debug)]
pub struct RevocationList {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<Revocation>)>,
}

impl RevocationList {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    fn load(&self) -> Result<Vec<Revocation>, PkiError> {
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

    /// Whether `agent_id` is revoked. A list that cannot be read counts as
    /// "revoked" for nobody but is logged loudly.
    pub fn is_revoked(&self, agent_id: &str) -> bool {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.0 != mtime || mtime.is_none() {
            match self.load() {
                Ok(list) => *cache = (mtime, list),
                Err(e) => tracing::error!(error = %e, "revocation list unreadable"),
            }
        }
        cache.1.iter().any(|r| r.agent_id == agent_id)
    }

    /// Adds `agent_id` (idempotent). Returns false if it was already revoked.
    pub fn revoke(&self, agent_id: &str, now_unix: i64, reason: &str) -> Result<bool, PkiError> {
        let mut list = self.load()?;
        if list.iter().any(|r| r.agent_id == agent_id) {
            return Ok(false);
        }
        list.push(Revocation {
            agent_id: agent_id.to_string(),
            revoked_unix: now_unix,
            reason: reason.to_string(),
        });
        let json = serde_json::to_vec_pretty(&list).unwrap_or_default();
        write(&self.path, &json, false)?;
        Ok(true)
    }

    pub fn list(&self) -> Result<Vec<Revocation>, PkiError> {
        self.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_is_persistent_and_seen_by_other_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.json");
        let server_view = RevocationList::new(&path);
        assert!(!server_view.is_revoked("a1"));
        let cli_view = RevocationList::new(&path);
        assert!(cli_view.revoke("a1", 100, "stolen laptop").unwrap());
        assert!(!cli_view.revoke("a1", 101, "again").unwrap());
        assert!(server_view.is_revoked("a1"));
        assert!(!server_view.is_revoked("a2"));
        assert_eq!(cli_view.list().unwrap().len(), 1);
    }
}
