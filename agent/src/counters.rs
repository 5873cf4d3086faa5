//! Named monotonic counters (parse errors by source, drops, reconnects, ...).
//!
//! Cheap to bump from any task; a snapshot goes into every `AgentStatus` heartbeat
//! and into the agent's log at shutdown.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A set of named counters. Names are stable, dotted, lowercase: `login.malformed`.
#[derive(Debug, Default)]
pub struct Counters {
    inner: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Adds `n` to counter `name`.
    pub fn add(&self, name: &str, n: u64) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(name.to_string()).or_default() += n;
    }

    /// Adds one to counter `name`.
    pub fn inc(&self, name: &str) {
        self.add(name, 1);
    }

    /// Current value of `name` (0 if never bumped).
    pub fn get(&self, name: &str) -> u64 {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).copied().unwrap_or(0)
    }

    /// All counters, sorted by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_name() {
        let c = Counters::default();
        c.inc("login.malformed");
        c.add("login.malformed", 2);
        assert_eq!(c.get("login.malformed"), 3);
        assert_eq!(c.get("other"), 0);
        assert_eq!(c.snapshot().len(), 1);
    }
}
