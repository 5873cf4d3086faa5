//! What differs between the ClickHouse versions the store supports (Debian 12's 18.16 up to
//! current releases), detected once when the store opens.
//!
//! One probe query reads `version()` and asks the server's own `system.settings` /
//! `system.merge_tree_settings` whether the features that differ exist, which is more reliable
//! than version arithmetic (backports, vendor builds). What the store does with the answers:
//!
//! | feature | servers | used for | without it |
//! |---|---|---|---|
//! | table `TTL` (`merge_with_ttl_timeout` exists) | 19.6+ | retention also enforced by merges | partitions dropped by `apply_retention` only |
//! | `ttl_only_drop_parts` | 19.x+ | TTL drops whole parts, never rewrites them | — |
//! | `materialize_ttl_after_modify` | 20.x+ | set to 0: changing the TTL does not rewrite old parts | — |
//! | `distributed_foreground_insert` | 23.x+ | synchronous inserts into `Distributed` (cluster) | `insert_distributed_sync` (same meaning) |
//!
//! Everything else is in the subset all of them share (see `schema.rs`).

use super::sql::{Statement, StatementId};
use crate::store::StoreError;

/// Features of the connected server that the store adapts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCapabilities {
    /// `SELECT version()`, e.g. `18.16.1` or `26.9.2.1`.
    pub version: String,
    /// Table-level `TTL` expressions.
    pub ttl: bool,
    /// The `ttl_only_drop_parts` MergeTree setting.
    pub ttl_only_drop_parts: bool,
    /// The `materialize_ttl_after_modify` query setting.
    pub materialize_ttl_after_modify: bool,
    /// `distributed_foreground_insert` (else the older name `insert_distributed_sync`).
    pub distributed_foreground_insert: bool,
}

impl ServerCapabilities {
    /// What Debian 12's 18.16 has: none of the optional features.
    pub fn legacy(version: &str) -> Self {
        ServerCapabilities {
            version: version.to_owned(),
            ttl: false,
            ttl_only_drop_parts: false,
            materialize_ttl_after_modify: false,
            distributed_foreground_insert: false,
        }
    }

    /// What current releases (24.x … 26.x) have: all of them.
    pub fn current(version: &str) -> Self {
        ServerCapabilities {
            version: version.to_owned(),
            ttl: true,
            ttl_only_drop_parts: true,
            materialize_ttl_after_modify: true,
            distributed_foreground_insert: true,
        }
    }

    /// The setting that makes an insert into a `Distributed` table return only once every
    /// shard has the rows.
    pub fn sync_insert_setting(&self) -> &'static str {
        if self.distributed_foreground_insert {
            "distributed_foreground_insert"
        } else {
            "insert_distributed_sync"
        }
    }

    /// Builds the capabilities from the probe's answer, refusing servers older than 18.
    pub(crate) fn from_probe(row: ProbeRow) -> Result<Self, StoreError> {
        let (version, ttl, only_drop, materialize, foreground) = row;
        if major_version(&version).is_none_or(|major| major < 18) {
            return Err(StoreError::UnsupportedServer(version));
        }
        Ok(ServerCapabilities {
            version,
            ttl: ttl > 0,
            ttl_only_drop_parts: only_drop > 0,
            materialize_ttl_after_modify: materialize > 0,
            distributed_foreground_insert: foreground > 0,
        })
    }
}

/// The probe's row: version and how many settings of each name exist.
pub(crate) type ProbeRow = (String, u64, u64, u64, u64);

/// The probe query (one round trip, works on every version).
pub(crate) fn probe() -> Statement {
    Statement::new(
        StatementId::ServerProbe,
        "SELECT version(),
    (SELECT count() FROM system.merge_tree_settings WHERE name = 'merge_with_ttl_timeout'),
    (SELECT count() FROM system.merge_tree_settings WHERE name = 'ttl_only_drop_parts'),
    (SELECT count() FROM system.settings WHERE name = 'materialize_ttl_after_modify'),
    (SELECT count() FROM system.settings WHERE name = 'distributed_foreground_insert')",
    )
}

/// Parses `major.minor...` of `SELECT version()`.
pub(crate) fn major_version(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_parse() {
        assert_eq!(major_version("18.16.1"), Some(18));
        assert_eq!(major_version("24.8.4.13"), Some(24));
        assert_eq!(major_version("garbage"), None);
    }

    #[test]
    fn probe_answers_map_to_capabilities() {
        let old = ServerCapabilities::from_probe(("18.16.1".into(), 0, 0, 0, 0)).expect("18.16");
        assert_eq!(old, ServerCapabilities::legacy("18.16.1"));
        assert_eq!(old.sync_insert_setting(), "insert_distributed_sync");
        let new = ServerCapabilities::from_probe(("26.9.2.1".into(), 1, 1, 1, 1)).expect("26.9");
        assert_eq!(new, ServerCapabilities::current("26.9.2.1"));
        assert_eq!(new.sync_insert_setting(), "distributed_foreground_insert");
        assert!(matches!(
            ServerCapabilities::from_probe(("1.1.54".into(), 0, 0, 0, 0)),
            Err(StoreError::UnsupportedServer(_))
        ));
    }
}
