//! Shared state of the console's handlers: configuration, the store, metrics, the rule
//! catalogue, `console.db`, and the ingest-rate sampler behind the overview.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shaobing_detect::RuleInfo;

use super::ConsoleConfig;
use super::db::ConsoleDb;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::rule_admin::RuleAdmin;
use crate::store::Store;

/// Where the console reads the loaded rules from.
pub trait RuleCatalog: Send + Sync {
    /// Every loaded rule (detection, correlation, filter).
    fn rules(&self) -> Vec<RuleInfo>;

    /// Operator changes (enable/disable, tests, filters); `None` for a read-only
    /// catalogue.
    fn admin(&self) -> Option<&RuleAdmin> {
        None
    }
}

impl RuleCatalog for RuleAdmin {
    fn rules(&self) -> Vec<RuleInfo> {
        self.loaded()
    }

    fn admin(&self) -> Option<&RuleAdmin> {
        Some(self)
    }
}

impl RuleCatalog for Pipeline {
    fn rules(&self) -> Vec<RuleInfo> {
        self.detector
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .rules()
    }
}

/// A fixed list of rules (tests, or a snapshot taken at start).
#[derive(Debug, Clone, Default)]
pub struct RuleSnapshot(pub Vec<RuleInfo>);

impl RuleCatalog for RuleSnapshot {
    fn rules(&self) -> Vec<RuleInfo> {
        self.0.clone()
    }
}

/// Everything a handler can reach.
pub struct ConsoleState {
    /// Configuration the console was started with.
    pub config: ConsoleConfig,
    /// Events, alerts, agents, audit log.
    pub store: Store,
    /// Collector counters.
    pub metrics: Arc<Metrics>,
    /// Loaded rules.
    pub rules: Arc<dyn RuleCatalog>,
    /// Users, sessions, tokens, notification channels.
    pub db: ConsoleDb,
    /// argon2 hash of a random string: unknown user names cost as much as known ones.
    pub dummy_hash: String,
    /// Samples of `events_stored` for the ingest rate.
    pub ingest: IngestSampler,
}

/// Shared handle to [`ConsoleState`].
pub type SharedState = Arc<ConsoleState>;

/// Ring of `(when, events_stored)` samples; the rate is the slope over the ring.
#[derive(Debug, Default)]
pub struct IngestSampler {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

/// Samples kept (one per [`IngestSampler::INTERVAL`]: five minutes).
const MAX_SAMPLES: usize = 60;

impl IngestSampler {
    /// How often the console samples the counter.
    pub const INTERVAL: Duration = Duration::from_secs(5);

    /// Records the counter now.
    pub fn sample(&self, metrics: &Metrics) {
        let value = metrics.events_stored.load(Ordering::Relaxed);
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back((Instant::now(), value));
        while samples.len() > MAX_SAMPLES {
            samples.pop_front();
        }
    }

    /// Events per second over the sampled window (0 until two samples exist).
    pub fn events_per_second(&self) -> f64 {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        match (samples.front(), samples.back()) {
            (Some((t0, v0)), Some((t1, v1))) if t1 > t0 => {
                v1.saturating_sub(*v0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Per-interval rates for the sparkline, oldest first.
    pub fn recent_rates(&self) -> Vec<f64> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|((t0, v0), (t1, v1))| {
                let secs = t1.duration_since(*t0).as_secs_f64();
                if secs > 0.0 {
                    v1.saturating_sub(*v0) as f64 / secs
                } else {
                    0.0
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_rate_is_the_slope_of_the_counter() {
        let metrics = Metrics::default();
        let sampler = IngestSampler::default();
        assert_eq!(sampler.events_per_second(), 0.0);
        sampler.sample(&metrics);
        std::thread::sleep(Duration::from_millis(50));
        metrics.events_stored.fetch_add(100, Ordering::Relaxed);
        sampler.sample(&metrics);
        let rate = sampler.events_per_second();
        assert!(rate > 100.0 && rate < 2100.0, "{rate}");
        assert_eq!(sampler.recent_rates().len(), 1);
    }
}
