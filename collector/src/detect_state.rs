//! Keeps detection state across collector restarts: the correlation windows,
//! new-terms history and open alerts of the detector ([`shaobing_detect::Detector::snapshot`]) are
//! written to `<data dir>/detect-state.json` every [`SAVE_INTERVAL`] (atomically:
//! a temporary file renamed over the old one) and restored at start, so a brute
//! force in progress is not forgotten by a restart (at most the last interval of
//! evidence is lost after a crash).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shaobing_detect::Detector;

use crate::pipeline::Pipeline;

/// How often the state is written.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(30);

/// The state file in a data directory.
pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("detect-state.json")
}

/// Restores `detector` from `path` if the file exists; a missing file is a
/// first start, an unreadable or incompatible one is logged and ignored.
/// Returns whether state was restored.
pub fn restore(detector: &mut Detector, path: &Path) -> bool {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return false,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read detection state");
            return false;
        }
    };
    match detector.restore(&text) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "detection state restored");
            true
        }
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "detection state ignored");
            false
        }
    }
}

/// Writes the detector's state to `path` (temporary file, then rename).
pub fn save(detector: &std::sync::Mutex<Detector>, path: &Path) -> std::io::Result<()> {
    let json = {
        let detector = detector.lock().unwrap_or_else(|e| e.into_inner());
        detector.snapshot().map_err(std::io::Error::other)?
    };
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, path)
}

/// Saves the state every [`SAVE_INTERVAL`] until the task is dropped, and
/// refreshes `shaobing_correlation_windows_evicted_total` and
/// `shaobing_new_terms_evicted_total`.
pub async fn run(pipeline: Arc<Pipeline>, path: PathBuf) {
    let mut tick = tokio::time::interval(SAVE_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let pipeline = pipeline.clone();
        let target = path.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let (evicted, new_terms_evicted) = {
                let detector = pipeline.detector.lock().unwrap_or_else(|e| e.into_inner());
                (detector.evicted_windows(), detector.evicted_new_terms())
            };
            let metrics = &pipeline.metrics;
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            metrics.correlation_windows_evicted.store(evicted, relaxed);
            metrics.new_terms_evicted.store(new_terms_evicted, relaxed);
            save(&pipeline.detector, &target)
        })
        .await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(path = %path.display(), %error, "cannot save detection state")
            }
            Err(error) => tracing::warn!(%error, "detection state task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shaobing_detect::event_form::parse_event_yaml;
    use shaobing_detect::{DetectConfig, RuleSource};

    const RULES: &str = "title: SSH failure\nid: 00000000-0000-4000-8000-0000000000f1\nname: failure\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_fail}\n    condition: sel\nlevel: low\n---\ntitle: Brute force\nid: 00000000-0000-4000-8000-0000000000b1\nlevel: high\ncorrelation:\n    type: event_count\n    rules: [failure]\n    group-by: [SourceIp]\n    timespan: 60s\n    condition: {gte: 5}\n";

    fn detector() -> Detector {
        Detector::new(DetectConfig {
            sources: vec![RuleSource {
                origin: "rules.yml".into(),
                yaml: RULES.into(),
            }],
            ..DetectConfig::default()
        })
        .0
    }

    fn brute_force(detector: &mut Detector, from: i64, count: i64) -> bool {
        (from..from + count).any(|n| {
            let event = parse_event_yaml(&format!(
                "at: {n}\nlogin: {{action: ssh_fail, source_ip: 203.0.113.7}}"
            ))
            .expect("event");
            detector
                .process(&event)
                .iter()
                .any(|a| a.rule_title == "Brute force")
        })
    }

    #[test]
    fn a_restart_keeps_the_brute_force_in_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = state_path(dir.path());
        let mut fresh = detector();
        assert!(
            !restore(&mut fresh, &path),
            "no state file on a first start"
        );

        let running = std::sync::Mutex::new(detector());
        assert!(!brute_force(&mut running.lock().expect("lock"), 0, 3));
        save(&running, &path).expect("save");

        let mut restarted = detector();
        assert!(restore(&mut restarted, &path));
        assert!(
            brute_force(&mut restarted, 3, 2),
            "3 before + 2 after the restart"
        );

        std::fs::write(&path, "garbage").expect("write");
        assert!(!restore(&mut detector(), &path), "a bad file is ignored");
    }
}
