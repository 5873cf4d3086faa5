//! The agent's TOML configuration (`--config`, default
//! `/etc/shaobing/agent.toml`). Every field has a default; an empty file is valid.
//!
//! ```toml
//! collectors = ["https://collector.example:7443"]   # data port(s), tried in order
//! data_dir = "/var/lib/shaobing-agent"                # identity, spool, positions
//! spool_max_bytes = 1073741824                         # 1 GiB; oldest batches dropped beyond
//! batch_max_events = 500
//! batch_max_delay_ms = 200
//! heartbeat_secs = 30
//! [login]
//! auth_logs = ["/var/log/auth.log", "/var/log/secure"]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::capture::login::LoginConfig;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Collector data-port URLs (`https://host:7443`), tried in order (failover).
    pub collectors: Vec<String>,
    /// Name the collector's certificate must carry (see `wire::tls`).
    pub server_name: String,
    /// Identity (certificate, key, CA), spool and source positions live here.
    pub data_dir: PathBuf,
    /// Spool bound in bytes; when exceeded the oldest batches are dropped and counted.
    pub spool_max_bytes: u64,
    /// A batch closes at this many events ...
    pub batch_max_events: usize,
    /// ... or this long after its first event, whichever comes first.
    pub batch_max_delay_ms: u64,
    /// Interval of `AgentStatus` heartbeats.
    pub heartbeat_secs: u64,
    /// Most batches sent but not yet acknowledged.
    pub max_in_flight: usize,
    /// Renew the client certificate when it expires within this many days.
    pub renew_before_days: u64,
    pub login: LoginConfig,
    pub network: crate::capture::network::NetworkConfig,
    pub file: crate::capture::file::FileConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            collectors: vec!["https://127.0.0.1:7443".into()],
            server_name: shaobing_wire::tls::COLLECTOR_SERVER_NAME.into(),
            data_dir: PathBuf::from("/var/lib/shaobing-agent"),
            spool_max_bytes: 1 << 30,
            batch_max_events: 500,
            batch_max_delay_ms: 200,
            heartbeat_secs: 30,
            max_in_flight: 16,
            renew_before_days: 30,
            login: LoginConfig::default(),
            network: crate::capture::network::NetworkConfig::default(),
            file: crate::capture::file::FileConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl AgentConfig {
    /// Reads `path`; a missing file at the default path means all defaults.
    pub fn load(path: &Path, must_exist: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                Ok(Self::default())
            }
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.data_dir.join("agent.crt")
    }
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join("agent.key")
    }
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("ca.crt")
    }
    pub fn identity_path(&self) -> PathBuf {
        self.data_dir.join("identity.json")
    }
    pub fn spool_path(&self) -> PathBuf {
        self.data_dir.join("spool.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults_and_unknown_keys_are_refused() {
        let c: AgentConfig = toml::from_str("").unwrap();
        assert_eq!(c.batch_max_events, 500);
        assert!(toml::from_str::<AgentConfig>("colectors = []").is_err());
        let c: AgentConfig = toml::from_str("heartbeat_secs = 5").unwrap();
        assert_eq!(c.heartbeat_secs, 5);
    }
}
