//! The `[network]` section of the agent configuration.
//!
//! ```toml
//! [network]
//! enabled = true
//! interfaces = []            # empty: every interface that is up and not loopback
//! max_flows = 65536          # flow-table cap, split across interfaces (LRU; evictions counted)
//! flow_idle_secs = 120       # a flow silent this long is summarised and forgotten
//! listener_poll_secs = 10    # /proc/net snapshot interval for listening sockets
//! bpf = true                 # in-kernel filter: IP only, headers only except DNS
//! max_events_per_sec = 5000  # per interface; beyond it events are dropped and counted
//! socket_buffer_bytes = 4194304
//! process_lookup = true      # attach pid/exe/user to connections and listeners
//! ```

use serde::{Deserialize, Serialize};

/// Network capture settings. Every field has a default; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Whether packet capture and listener polling run at all.
    pub enabled: bool,
    /// Interfaces to capture on; empty means every interface that is up and not
    /// loopback, as found at start.
    pub interfaces: Vec<String>,
    /// Most flows tracked, split evenly across the captured interfaces. At the cap
    /// the least recently seen flow is evicted (its summary emitted) and counted.
    pub max_flows: usize,
    /// Seconds without a packet after which a flow is summarised and dropped.
    pub flow_idle_secs: u64,
    /// Seconds between snapshots of listening sockets (`/proc/net/{tcp,udp}{,6}`).
    pub listener_poll_secs: u64,
    /// Attach the in-kernel classic BPF filter (IPv4/IPv6 only; headers only, whole
    /// packets for UDP port 53).
    pub bpf: bool,
    /// Most events one interface may emit per second (0 = no limit). Events beyond
    /// it are dropped and counted in `network.events_rate_limited`.
    pub max_events_per_sec: u64,
    /// Requested socket receive buffer (`SO_RCVBUF`); the kernel caps it at
    /// `net.core.rmem_max`.
    pub socket_buffer_bytes: usize,
    /// Map sockets to processes through `/proc/*/fd` (other users' processes need
    /// `CAP_DAC_READ_SEARCH` and `CAP_SYS_PTRACE`; the socket owner's user is
    /// known without them).
    pub process_lookup: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interfaces: Vec::new(),
            max_flows: 65_536,
            flow_idle_secs: 120,
            listener_poll_secs: 10,
            bpf: true,
            max_events_per_sec: 5_000,
            socket_buffer_bytes: 4 << 20,
            process_lookup: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_all_defaults_and_typos_are_refused() {
        let config: NetworkConfig = toml::from_str("").expect("empty config");
        assert_eq!(config, NetworkConfig::default());
        assert!(config.interfaces.is_empty());
        let config: NetworkConfig =
            toml::from_str("interfaces = [\"eth0\"]\nmax_flows = 10").expect("valid config");
        assert_eq!(config.interfaces, vec!["eth0"]);
        assert_eq!(config.max_flows, 10);
        assert!(toml::from_str::<NetworkConfig>("max_flow = 10").is_err());
    }
}
