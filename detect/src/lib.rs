//! Sigma detection and correlation over Shaobing events. No I/O, no clock.
//!
//! The caller reads the rule files and passes their text in ([`DetectConfig`]);
//! time comes from the events themselves (`Event.time_unix_nano`), so detection is
//! testable and replayable.
//!
//! # Layout (in data-flow order)
//!
//! - [`fields`]: wire `Event` → flat Sigma fields + the logsources it belongs to
//!   (the documented mapping table).
//! - [`sigma_event`]: the rsigma `Event` view of it (keyword rules see only the log line).
//! - [`catalog`]: loads rules (rejecting broken ones individually), expands
//!   `|expand` list placeholders ([`placeholders`]), the 等保 clause map ([`mlps`]).
//! - [`route`]: detection rules grouped by logsource, one engine each.
//! - [`detector`]: [`Detector`] — evaluation, correlation windows, snapshots,
//!   hand-over of state to a reloaded rule set.
//! - [`new_terms`]: "new terms" rules (alert on value combinations not seen in a
//!   history window), their bounded history and its cold start.
//! - [`alert`]: [`Alert`] and suppression (one growing alert per attack window).
//! - [`event_form`] and [`rule_test`]: the YAML event form and the rule-test runner
//!   behind `shaobing-collector rules test`.
//!
//! # Example
//!
//! ```
//! use shaobing_detect::{DetectConfig, Detector, RuleSource};
//!
//! let rule = r#"
//! title: SSH password failure
//! id: 00000000-0000-4000-8000-000000000001
//! logsource: {product: linux, service: auth}
//! detection:
//!     selection: {Action: ssh_fail}
//!     condition: selection
//! level: low
//! "#;
//! let config = DetectConfig {
//!     sources: vec![RuleSource { origin: "example.yml".into(), yaml: rule.into() }],
//!     ..DetectConfig::default()
//! };
//! let (mut detector, report) = Detector::new(config);
//! assert_eq!(report.loaded, 1);
//!
//! let event = shaobing_detect::event_form::parse_event_yaml(
//!     "login: {action: ssh_fail, user: root, source_ip: 203.0.113.7}",
//! ).unwrap();
//! let alerts = detector.process(&event);
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].level, "low");
//! ```

pub mod alert;
pub mod catalog;
pub mod detector;
pub mod error;
pub mod event_form;
pub mod fields;
pub mod mlps;
pub mod new_terms;
pub mod placeholders;
pub mod route;
pub mod rule_test;
pub mod sigma_event;

use std::collections::{BTreeMap, BTreeSet};

pub use alert::{Alert, time_ordered_id};
pub use detector::{Detector, Routing};
pub use error::{DetectError, RuleError};
pub use rule_test::{CaseOutcome, TestOutcome, run_rule_tests};

/// Most event ids kept in one alert.
pub const MAX_EVENT_IDS: usize = 100;

/// Default suppression window: one alert per rule and group key per 10 minutes.
pub const DEFAULT_SUPPRESSION_WINDOW_SECS: u64 = 600;

/// The text of one rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// Where it came from (a file path, for error messages).
    pub origin: String,
    /// The file's YAML (one or more Sigma documents).
    pub yaml: String,
}

/// Everything the detector is built from. Build it with
/// `DetectConfig { sources, lists, mlps_yaml, ..DetectConfig::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectConfig {
    /// Every rule file's text.
    pub sources: Vec<RuleSource>,
    /// Placeholder name → values (`rules/lists/<name>.txt`), for `|expand` rules.
    pub lists: BTreeMap<String, Vec<String>>,
    /// Text of `rules/mlps.yml` (rule id → 等保 clauses).
    pub mlps_yaml: Option<String>,
    /// Suppression window in seconds (see [`alert`]).
    pub suppression_window_secs: u64,
    /// Ids of rules an operator disabled: their documents are skipped as if absent.
    /// A disabled correlation still keeps the detection rules it references from
    /// raising alerts of their own (disabling it must not turn its building blocks
    /// into alerting rules).
    pub disabled: BTreeSet<String>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            sources: Vec::new(),
            lists: BTreeMap::new(),
            mlps_yaml: None,
            suppression_window_secs: DEFAULT_SUPPRESSION_WINDOW_SECS,
            disabled: BTreeSet::new(),
        }
    }
}

/// Parses a list file (`rules/lists/<name>.txt`): one value per line; blank lines
/// and `#` comments are skipped.
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// What loading the rules did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    /// Rules loaded (all kinds).
    pub loaded: usize,
    /// Of which detection rules.
    pub detection_rules: usize,
    /// Of which correlation rules.
    pub correlation_rules: usize,
    /// Of which filter rules.
    pub filter_rules: usize,
    /// Rules (or clause-map entries) not loaded, with the reason.
    pub rejected: Vec<RuleError>,
    /// Problems in rules that were loaded anyway (e.g. an unknown `level`, which
    /// then counts as `informational`).
    pub warnings: Vec<RuleError>,
    /// Ids of rules found in the sources but skipped because they are in
    /// [`DetectConfig::disabled`].
    pub disabled: Vec<String>,
}

/// A loaded rule, as listed by [`Detector::rules`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleInfo {
    /// Rule id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Sigma level (empty for filters).
    pub level: String,
    /// Sigma status (empty when unset).
    pub status: String,
    /// `detection`, `correlation` or `filter`.
    pub kind: String,
    /// `product=linux service=auth`-style logsource (empty for correlations).
    pub logsource: String,
    /// 等保 clauses.
    pub mlps: Vec<String>,
    /// Sigma tags.
    pub tags: Vec<String>,
    /// The file it came from.
    pub origin: String,
    /// Description.
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_files_skip_comments_and_blanks() {
        let values = parse_list("# threat IPs\n192.0.2.1\n\n  198.51.100.7  # sample\n");
        assert_eq!(values, vec!["192.0.2.1", "198.51.100.7"]);
    }

    #[test]
    fn default_config_has_ten_minute_window() {
        assert_eq!(DetectConfig::default().suppression_window_secs, 600);
    }
}
