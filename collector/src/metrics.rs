//! Collector counters: ingest volume, dedup hits, rejects by reason, store
//! latency. Rendered as Prometheus text by [`Metrics::render`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub batches_stored: AtomicU64,
    pub events_stored: AtomicU64,
    pub alerts_raised: AtomicU64,
    pub dedup_hits: AtomicU64,
    pub store_errors: AtomicU64,
    pub store_latency_us_total: AtomicU64,
    rejects: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts one refusal under `reason` (tls_handshake, enroll_token, oversize, ...).
    pub fn inc_reject(&self, reason: &str) {
        let mut m = self.rejects.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason.to_string()).or_default() += 1;
    }

    pub fn rejects(&self, reason: &str) -> u64 {
        let m = self.rejects.lock().unwrap_or_else(|e| e.into_inner());
        m.get(reason).copied().unwrap_or(0)
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("shaobing_batches_stored_total", &self.batches_stored),
            ("shaobing_events_stored_total", &self.events_stored),
            ("shaobing_alerts_raised_total", &self.alerts_raised),
            ("shaobing_dedup_hits_total", &self.dedup_hits),
            ("shaobing_store_errors_total", &self.store_errors),
            (
                "shaobing_store_latency_microseconds_total",
                &self.store_latency_us_total,
            ),
        ];
        for (name, value) in counters {
            out.push_str(&format!(
                "# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# TYPE shaobing_rejects_total counter\n");
        let m = self.rejects.lock().unwrap_or_else(|e| e.into_inner());
        for (reason, n) in m.iter() {
            out.push_str(&format!(
                "shaobing_rejects_total{{reason=\"{reason}\"}} {n}\n"
            ));
        }
        out
    }
}
