//! Changes to the running rule set made by operators (through the console): enable
//! and disable rules, run a rule's tests, and save false-positive filters into the
//! collector's own `rules.local/filters/`.
//!
//! Every change is written where the loader reads it ([`crate::rules::RuleSet`]:
//! `rules-state.json`, `rules.local/`), so it survives restarts, and is then put in
//! service at once through the same reload as `SIGHUP` ([`crate::rules_reload`]),
//! under the watch's lock. A change the reload refuses (e.g. disabling a detection
//! rule that an enabled correlation needs) is undone on disk and reported with the
//! loader's reasons; the running rules stay as they were.
//!
//! All methods block (file I/O, building a detector): call them off the async
//! runtime (`spawn_blocking`).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};

use serde::Deserialize;
use shaobing_detect::{DetectConfig, Detector, RuleInfo, RuleSource, TestOutcome};

use crate::pipeline::Pipeline;
use crate::rules::{DisabledRule, RuleSet, RulesError, RulesState, test_rule_file};
use crate::rules_reload::{ReloadOutcome, RuleWatch, SharedWatch};

/// Sub-directory of `rules.local/` for false-positive filters.
pub const FILTER_DIR: &str = "filters";

/// Why a rule change was not made.
#[derive(Debug, thiserror::Error)]
pub enum RuleAdminError {
    /// The collector has no data directory for rule state.
    #[error("this rule set is read-only (no data directory)")]
    ReadOnly,
    /// No loaded or disabled rule has this id.
    #[error("no rule with id {0}")]
    NotFound(String),
    /// The rule file has no `<name>.tests.yml` beside it.
    #[error("{0} has no tests file beside it")]
    NoTests(String),
    /// The loader refused the changed rule set; nothing changed.
    #[error("the changed rule set was refused: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The submitted rule text is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing rule files.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// Writing a filter file.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// What enabling or disabling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toggled {
    /// The rule was already in the asked state.
    Unchanged,
    /// Saved and in service; the rule set now has this many rules loaded.
    Applied {
        /// Rules loaded after the change.
        loaded: usize,
    },
}

/// A filter saved by [`RuleAdmin::save_filter`].
#[derive(Debug, Clone)]
pub struct SavedFilter {
    /// The filter's rule id.
    pub id: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Rules loaded after the reload.
    pub loaded: usize,
}

/// Operator changes to the rules a [`Pipeline`] runs.
pub struct RuleAdmin {
    pipeline: Arc<Pipeline>,
    watch: SharedWatch,
}

impl RuleAdmin {
    /// Over the pipeline's detector and the watch that reloads it.
    pub fn new(pipeline: Arc<Pipeline>, watch: SharedWatch) -> RuleAdmin {
        RuleAdmin { pipeline, watch }
    }

    fn watch(&self) -> MutexGuard<'_, RuleWatch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The rule set (directories and data directory).
    pub fn rule_set(&self) -> RuleSet {
        self.watch().rules().clone()
    }

    /// Every rule in service.
    pub fn loaded(&self) -> Vec<RuleInfo> {
        self.pipeline
            .detector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .rules()
    }

    /// The disabled rules and who disabled them.
    pub fn state(&self) -> Result<RulesState, RuleAdminError> {
        Ok(self.rule_set().state()?)
    }

    /// Enables or disables `rule_id` for `actor`, saves it and reloads.
    pub fn set_enabled(
        &self,
        rule_id: &str,
        enabled: bool,
        actor: &str,
        now_unix_nano: i64,
    ) -> Result<Toggled, RuleAdminError> {
        let mut watch = self.watch();
        let path = watch.rules().state_path().ok_or(RuleAdminError::ReadOnly)?;
        let before = watch.rules().state()?;
        let mut after = before.clone();
        if enabled {
            if after.disabled.remove(rule_id).is_none() {
                return Ok(Toggled::Unchanged);
            }
        } else {
            if after.disabled.contains_key(rule_id) {
                return Ok(Toggled::Unchanged);
            }
            let rule = self
                .loaded()
                .into_iter()
                .find(|r| r.id == rule_id)
                .ok_or_else(|| RuleAdminError::NotFound(rule_id.to_owned()))?;
            after.disabled.insert(
                rule.id,
                DisabledRule {
                    title: rule.title,
                    level: rule.level,
                    kind: rule.kind,
                    logsource: rule.logsource,
                    origin: rule.origin,
                    by: actor.to_owned(),
                    at_unix_nano: now_unix_nano,
                },
            );
        }
        after.save(&path)?;
        match watch.reload(&self.pipeline.detector, &self.pipeline.metrics) {
            ReloadOutcome::Applied { loaded, .. } => Ok(Toggled::Applied { loaded }),
            ReloadOutcome::Refused(reasons) => {
                before.save(&path)?;
                watch.resync();
                Err(RuleAdminError::Refused(reasons))
            }
        }
    }

    /// Runs the tests beside the file of `rule_id` (loaded or disabled), with every
    /// rule of the set loaded, disabled ones included.
    pub fn run_tests(&self, rule_id: &str) -> Result<TestOutcome, RuleAdminError> {
        let rules = self.rule_set();
        let origin = match self.loaded().into_iter().find(|r| r.id == rule_id) {
            Some(rule) => rule.origin,
            None => rules
                .state()?
                .disabled
                .remove(rule_id)
                .map(|d| d.origin)
                .ok_or_else(|| RuleAdminError::NotFound(rule_id.to_owned()))?,
        };
        let config = rules.read_all()?;
        test_rule_file(&config, &origin)?.ok_or(RuleAdminError::NoTests(origin))
    }

    /// The detection rules a filter must name to silence alerts of `rule_id`: the
    /// rule itself, or for a correlation the detection rules it counts (through
    /// nested correlations). Filters act on detection rules only.
    pub fn filter_targets(&self, rule_id: &str) -> Result<Vec<String>, RuleAdminError> {
        Ok(filter_targets(&self.rule_set().read_all()?, rule_id))
    }

    /// Checks `yaml` (one Sigma filter document), writes it to
    /// `rules.local/filters/<stem>.yml` and reloads. Refused filters are removed.
    pub fn save_filter(&self, stem: &str, yaml: &str) -> Result<SavedFilter, RuleAdminError> {
        let id = check_filter(yaml)?;
        if stem.is_empty()
            || !stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(RuleAdminError::Invalid(format!("bad file name {stem:?}")));
        }
        let mut watch = self.watch();
        let local = watch.rules().local_dir().ok_or(RuleAdminError::ReadOnly)?;
        let dir = local.join(FILTER_DIR);
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| RuleAdminError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(format!("{stem}.yml"));
        {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io(&path))?;
            file.write_all(yaml.as_bytes()).map_err(io(&path))?;
        }
        match watch.reload(&self.pipeline.detector, &self.pipeline.metrics) {
            ReloadOutcome::Applied { loaded, .. } => Ok(SavedFilter { id, path, loaded }),
            ReloadOutcome::Refused(reasons) => {
                std::fs::remove_file(&path).map_err(io(&path))?;
                watch.resync();
                Err(RuleAdminError::Refused(reasons))
            }
        }
    }
}

/// Loads `yaml` alone: it must be exactly one filter, without errors. Returns its id.
pub fn check_filter(yaml: &str) -> Result<String, RuleAdminError> {
    let (detector, report) = Detector::new(DetectConfig {
        sources: vec![RuleSource {
            origin: "filter".to_owned(),
            yaml: yaml.to_owned(),
        }],
        ..DetectConfig::default()
    });
    if let Some(error) = report.rejected.first() {
        return Err(RuleAdminError::Invalid(error.to_string()));
    }
    match detector.rules().as_slice() {
        [rule] if rule.kind == "filter" => Ok(rule.id.clone()),
        _ => Err(RuleAdminError::Invalid(
            "the text must be exactly one Sigma filter".to_owned(),
        )),
    }
}

/// The parts of a rule document [`filter_targets`] reads.
#[derive(Deserialize)]
struct Doc {
    id: Option<String>,
    name: Option<String>,
    correlation: Option<CorrelationPart>,
}

#[derive(Deserialize)]
struct CorrelationPart {
    #[serde(default)]
    rules: Vec<String>,
}

/// See [`RuleAdmin::filter_targets`].
pub fn filter_targets(config: &DetectConfig, rule_id: &str) -> Vec<String> {
    let mut by_name: HashMap<String, String> = HashMap::new();
    let mut references: HashMap<String, Vec<String>> = HashMap::new();
    for source in &config.sources {
        for document in serde_norway::Deserializer::from_str(&source.yaml) {
            let Ok(doc) = Doc::deserialize(document) else {
                continue;
            };
            let Some(id) = doc.id else { continue };
            if let Some(name) = doc.name {
                by_name.insert(name, id.clone());
            }
            if let Some(correlation) = doc.correlation {
                references.insert(id, correlation.rules);
            }
        }
    }
    let mut targets = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![rule_id.to_owned()];
    while let Some(reference) = stack.pop() {
        let id = by_name.get(&reference).cloned().unwrap_or(reference);
        if !seen.insert(id.clone()) {
            continue;
        }
        match references.get(&id) {
            Some(children) => stack.extend(children.iter().cloned()),
            None => {
                targets.insert(id);
            }
        }
    }
    targets.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILURE: &str = "title: SSH failure\nid: f1\nname: failure\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_fail}\n    condition: sel\nlevel: low\n";
    const BRUTE: &str = "title: Brute force\nid: b1\nname: brute\nlevel: high\ncorrelation:\n    type: event_count\n    rules: [failure]\n    group-by: [SourceIp]\n    timespan: 60s\n    condition: {gte: 5}\n";
    const AFTER: &str = "title: Success after brute force\nid: s1\nlevel: critical\ncorrelation:\n    type: temporal_ordered\n    rules: [brute, 00000000-accept]\n    group-by: [SourceIp]\n    timespan: 5m\n";

    #[test]
    fn a_correlation_is_filtered_through_the_detections_it_counts() {
        let config = DetectConfig {
            sources: vec![
                RuleSource {
                    origin: "a.yml".into(),
                    yaml: format!("{FAILURE}---\n{BRUTE}"),
                },
                RuleSource {
                    origin: "b.yml".into(),
                    yaml: AFTER.into(),
                },
            ],
            ..DetectConfig::default()
        };
        assert_eq!(filter_targets(&config, "f1"), vec!["f1"]);
        assert_eq!(filter_targets(&config, "b1"), vec!["f1"]);
        assert_eq!(filter_targets(&config, "s1"), vec!["00000000-accept", "f1"]);
    }

    #[test]
    fn only_a_single_clean_filter_is_accepted() {
        let filter = "title: x\nid: ff1\nfilter:\n    rules: [f1]\n    selection: {SourceIp: 10.0.0.1}\n    condition: not selection\n";
        assert_eq!(check_filter(filter).expect("valid"), "ff1");
        assert!(matches!(
            check_filter(FAILURE),
            Err(RuleAdminError::Invalid(_))
        ));
        assert!(matches!(
            check_filter("title: [unclosed\n"),
            Err(RuleAdminError::Invalid(_))
        ));
    }
}
