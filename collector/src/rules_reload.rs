//! Hot reload of the rule directories while `serve` runs: on `SIGHUP`, when a poll
//! of the directories sees a file added, removed or changed (the collector's own
//! `rules.local/` and `rules-state.json` included, see [`crate::rules::RuleSet`]),
//! and at once when the console changes the rule set ([`crate::rule_admin`]).
//!
//! A reload reads every directory again and builds a new detector beside the
//! running one. It is **refused** — the running rule set stays in service, every
//! reason is logged (file, line, rule, why) and
//! `shaobing_rule_reload_failures_total` counts it — when a file cannot be read
//! or when the new set rejects a rule that the running set did not already
//! reject (a rule that was broken at start-up does not block later reloads).
//! Otherwise the new detector takes over under the detector lock, so no event is
//! evaluated by neither set, and the state moves with it
//! ([`shaobing_detect::Detector::hand_over`]): correlation windows of unchanged
//! rules and open alerts survive; `shaobing_rule_reloads_total` counts it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use shaobing_detect::{Detector, LoadReport};

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::rules::RuleSet;

/// How often the directories are polled for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What one reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new rule set is in service.
    Applied {
        /// Rules loaded.
        loaded: usize,
        /// Correlations that kept their windows.
        kept_windows: usize,
    },
    /// The running rule set stays; why the new one was refused.
    Refused(Vec<String>),
}

/// Reload state: the rule set, the rejections the running set already has, and
/// the last seen state of the files.
pub struct RuleWatch {
    rules: RuleSet,
    known_rejections: BTreeSet<String>,
    stamp: Vec<(PathBuf, u64, u128)>,
}

/// A [`RuleWatch`] shared by the polling task and the console.
pub type SharedWatch = Arc<Mutex<RuleWatch>>;

impl RuleWatch {
    /// Starts watching `rules`, whose current rules loaded with `report`.
    pub fn new(rules: RuleSet, report: &LoadReport) -> Self {
        let stamp = stamp(&rules);
        RuleWatch {
            rules,
            known_rejections: report.rejected.iter().map(ToString::to_string).collect(),
            stamp,
        }
    }

    /// The watched rule set.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Takes the files as they are now as seen (after a change was undone).
    pub fn resync(&mut self) {
        self.stamp = stamp(&self.rules);
    }

    /// Whether a rule or list file under the directories was added, removed or
    /// changed (size or modification time) since the last call or reload.
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.rules);
        if now == self.stamp {
            return false;
        }
        self.stamp = now;
        true
    }

    /// Reads the directories and puts the new rule set in service unless it
    /// must be refused (see the module docs).
    pub fn reload(&mut self, detector: &Mutex<Detector>, metrics: &Metrics) -> ReloadOutcome {
        self.stamp = stamp(&self.rules);
        let config = match self.rules.read() {
            Ok(config) => config,
            Err(error) => return refuse(metrics, vec![error.to_string()]),
        };
        let (mut next, report) = Detector::new(config);
        let new_rejections: Vec<String> = report
            .rejected
            .iter()
            .map(ToString::to_string)
            .filter(|text| !self.known_rejections.contains(text))
            .collect();
        if !new_rejections.is_empty() {
            return refuse(metrics, new_rejections);
        }
        let kept_windows = {
            let mut running = detector.lock().unwrap_or_else(|e| e.into_inner());
            let kept = running.hand_over(&mut next);
            *running = next;
            kept
        };
        self.known_rejections = report.rejected.iter().map(ToString::to_string).collect();
        metrics
            .rule_reloads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            loaded = report.loaded,
            rejected = report.rejected.len(),
            kept_windows,
            "rules reloaded"
        );
        ReloadOutcome::Applied {
            loaded: report.loaded,
            kept_windows,
        }
    }
}

fn refuse(metrics: &Metrics, reasons: Vec<String>) -> ReloadOutcome {
    metrics
        .rule_reload_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for reason in &reasons {
        tracing::error!(%reason, "rule reload refused; the previous rules keep running");
    }
    ReloadOutcome::Refused(reasons)
}

/// Path, size and modification time (ns) of every rule, test, clause-map and
/// list file (`*.yml`, `*.yaml`, `*.txt`) under the rule set's directories and
/// of its state file, sorted.
fn stamp(rules: &RuleSet) -> Vec<(PathBuf, u64, u128)> {
    let mut out = Vec::new();
    for dir in rules.dirs.iter().cloned().chain(rules.local_dir()) {
        stamp_dir(&dir, &mut out);
    }
    if let Some(path) = rules.state_path()
        && let Ok(meta) = std::fs::metadata(&path)
    {
        out.push((path, meta.len(), modified_nanos(&meta)));
    }
    out.sort();
    out
}

fn modified_nanos(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

fn stamp_dir(dir: &Path, out: &mut Vec<(PathBuf, u64, u128)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let relevant = name.ends_with(".yml") || name.ends_with(".yaml") || name.ends_with(".txt");
        if meta.is_dir() {
            stamp_dir(&path, out);
        } else if relevant {
            let modified = modified_nanos(&meta);
            out.push((path, meta.len(), modified));
        }
    }
}

/// Runs until the pipeline is dropped: reloads on `SIGHUP` and when the
/// directories change. The loading itself runs on a blocking thread.
pub async fn watch(pipeline: Arc<Pipeline>, rule_watch: SharedWatch) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<bool>();
        let forced = tokio::select! {
            got = signalled => got,
            _ = poll.tick() => false,
        };
        let pipeline = pipeline.clone();
        let rule_watch = rule_watch.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut rule_watch = rule_watch.lock().unwrap_or_else(|e| e.into_inner());
            (forced || rule_watch.changed())
                .then(|| rule_watch.reload(&pipeline.detector, &pipeline.metrics))
        })
        .await;
        if let Err(error) = outcome {
            tracing::error!(%error, "rule reload task failed; rule watching stops");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shaobing_detect::event_form::parse_event_yaml;

    const FAILURE: &str = "title: SSH failure\nid: 00000000-0000-4000-8000-0000000000f1\nname: failure\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_fail}\n    condition: sel\nlevel: low\n";
    const BRUTE_FORCE: &str = "title: Brute force\nid: 00000000-0000-4000-8000-0000000000b1\nlevel: high\ncorrelation:\n    type: event_count\n    rules: [failure]\n    group-by: [SourceIp]\n    timespan: 60s\n    condition: {gte: 5}\n";

    fn failures(from: i64, count: i64) -> Vec<shaobing_wire::v1::Event> {
        (from..from + count)
            .map(|n| {
                parse_event_yaml(&format!(
                    "at: {n}\nevent_id: e-{n}\nlogin: {{action: ssh_fail, source_ip: 203.0.113.7}}"
                ))
                .expect("event")
            })
            .collect()
    }

    fn fired(detector: &Mutex<Detector>, events: &[shaobing_wire::v1::Event]) -> bool {
        let mut detector = detector.lock().expect("lock");
        events.iter().any(|event| {
            detector
                .process(event)
                .iter()
                .any(|alert| alert.rule_title == "Brute force")
        })
    }

    #[test]
    fn broken_file_is_refused_and_the_running_rules_keep_their_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("failure.yml"), FAILURE).expect("write");
        std::fs::write(dir.path().join("brute.yml"), BRUTE_FORCE).expect("write");
        let rules = RuleSet::dirs_only(vec![dir.path().to_path_buf()]);
        let (detector, report) = Detector::new(rules.read().expect("read"));
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let detector = Mutex::new(detector);
        let metrics = Metrics::default();
        let mut watch = RuleWatch::new(rules, &report);
        assert!(!watch.changed());
        assert!(!fired(&detector, &failures(0, 3)));

        // A broken file: refused, counted, the old rules keep running.
        std::fs::write(dir.path().join("broken.yml"), "title: [unclosed\n").expect("write");
        assert!(watch.changed());
        let outcome = watch.reload(&detector, &metrics);
        let ReloadOutcome::Refused(reasons) = outcome else {
            panic!("expected a refusal, got {outcome:?}");
        };
        assert!(reasons[0].contains("broken.yml"), "{reasons:?}");
        assert_eq!(
            metrics
                .rule_reload_failures
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(
            metrics
                .render()
                .contains("shaobing_rule_reload_failures_total 1")
        );

        // Fixed, plus a new rule: applied, and the brute force in progress
        // (3 failures so far) completes with 2 more.
        std::fs::write(
            dir.path().join("broken.yml"),
            FAILURE
                .replace("0000000000f1", "0000000000f2")
                .replace("name: failure", "name: other"),
        )
        .expect("write");
        let outcome = watch.reload(&detector, &metrics);
        assert_eq!(
            outcome,
            ReloadOutcome::Applied {
                loaded: 3,
                kept_windows: 1
            }
        );
        assert_eq!(
            metrics
                .rule_reloads
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(detector.lock().expect("lock").rules().len(), 3);
        assert!(
            fired(&detector, &failures(3, 2)),
            "3 + 2 failures across the reload"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_running_collector_picks_up_a_changed_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("failure.yml"), FAILURE).expect("write");
        let rules = RuleSet::dirs_only(vec![dir.path().to_path_buf()]);
        let (detector, report) = Detector::new(rules.read().expect("read"));
        let data = tempfile::tempdir().expect("tempdir");
        let store = crate::store::Store::open_embedded(&data.path().join("store.db"))
            .await
            .expect("store");
        let metrics = Arc::new(Metrics::default());
        let pipeline = Arc::new(Pipeline::new(store, detector, metrics.clone()));
        let task = tokio::spawn(watch(
            pipeline.clone(),
            Arc::new(Mutex::new(RuleWatch::new(rules, &report))),
        ));

        std::fs::write(dir.path().join("brute.yml"), BRUTE_FORCE).expect("write");
        // Wait (bounded) for the poll to notice; the assertion is on the outcome.
        for _ in 0..100 {
            if metrics
                .rule_reloads
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        task.abort();
        assert_eq!(
            metrics
                .rule_reloads
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let rules = pipeline.detector.lock().expect("lock").rules();
        assert!(
            rules.iter().any(|rule| rule.title == "Brute force"),
            "{rules:?}"
        );
    }
}
