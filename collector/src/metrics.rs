//! Collector counters: ingest volume, dedup hits, rejects by reason, store
//! latency. Rendered as Prometheus text by [`Metrics::render`] and served on
//! `GET /metrics` by [`serve`].

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
    pub store_flushes: AtomicU64,
    pub store_latency_us_total: AtomicU64,
    /// Rule sets reloaded and put in service.
    pub rule_reloads: AtomicU64,
    /// Reloads refused (a rule file broke or could not be read); the previous
    /// rule set kept running.
    pub rule_reload_failures: AtomicU64,
    /// Correlation windows dropped by the detector (expired or over its cap);
    /// refreshed with the detection state every 30 s.
    pub correlation_windows_evicted: AtomicU64,
    /// Retention runs started (at start, then hourly).
    pub retention_runs: AtomicU64,
    /// Retention runs that failed (store unreachable, ...); retried at the next run.
    pub retention_failures: AtomicU64,
    /// Partitions (days or months) dropped by retention.
    pub retention_partitions_dropped: AtomicU64,
    /// Rows removed by retention.
    pub retention_rows_removed: AtomicU64,
    /// New-terms combinations the detector dropped at its per-rule cap;
    /// refreshed with the detection state every 30 s.
    pub new_terms_evicted: AtomicU64,
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
            ("shaobing_store_flushes_total", &self.store_flushes),
            (
                "shaobing_store_latency_microseconds_total",
                &self.store_latency_us_total,
            ),
            ("shaobing_rule_reloads_total", &self.rule_reloads),
            (
                "shaobing_rule_reload_failures_total",
                &self.rule_reload_failures,
            ),
            (
                "shaobing_correlation_windows_evicted_total",
                &self.correlation_windows_evicted,
            ),
            ("shaobing_retention_runs_total", &self.retention_runs),
            (
                "shaobing_retention_failures_total",
                &self.retention_failures,
            ),
            (
                "shaobing_retention_partitions_dropped_total",
                &self.retention_partitions_dropped,
            ),
            (
                "shaobing_retention_rows_removed_total",
                &self.retention_rows_removed,
            ),
            ("shaobing_new_terms_evicted_total", &self.new_terms_evicted),
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

/// Serves `GET /metrics` (Prometheus text format) on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: std::sync::Arc<Metrics>) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_counters_and_rejects_by_reason() {
        let m = Metrics::default();
        m.events_stored.fetch_add(7, Ordering::Relaxed);
        m.inc_reject("tls_handshake");
        m.inc_reject("tls_handshake");
        let text = m.render();
        assert!(text.contains("shaobing_events_stored_total 7\n"));
        assert!(text.contains("shaobing_new_terms_evicted_total 0\n"));
        assert!(text.contains("shaobing_rejects_total{reason=\"tls_handshake\"} 2\n"));
        assert_eq!(m.rejects("tls_handshake"), 2);
    }
}
