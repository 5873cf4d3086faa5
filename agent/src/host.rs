//! Facts about this host stamped on every event: hostname, addresses, OS, and
//! the agent's own resource use for heartbeats.

use shaobing_wire::v1::Host;

pub fn hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// `PRETTY_NAME` from /etc/os-release.
pub fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// Non-loopback IPv4 addresses from /proc/net/fib_trie (no extra dependency);
/// empty when unavailable.
pub fn addresses() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string("/proc/net/fib_trie") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.windows(2) {
        if pair[1].contains("/32 host LOCAL") {
            let ip = pair[0].trim().trim_start_matches("|-- ").to_string();
            if !ip.starts_with("127.") && !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

pub fn host(agent_id: &str) -> Host {
    Host {
        hostname: hostname(),
        agent_id: agent_id.to_string(),
        ips: addresses(),
        os: os_name(),
    }
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// CPU time (user + system) of this process in clock ticks.
pub fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}
