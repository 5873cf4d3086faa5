//! The rule-test runner (pure: the caller reads the files).
//!
//! Each rule file `rules/<theme>/<name>.yml` has a sibling `<name>.tests.yml`:
//!
//! ```yaml
//! rule_id: 5d3b...        # optional: the rule under test (default: every rule in the rule file)
//! match:                  # each event, alone, must match the rule
//!   - login: {action: ssh_fail, source_ip: 203.0.113.7}
//! no_match:               # each event, alone, must not
//!   - login: {action: ssh_accept, source_ip: 203.0.113.7}
//! sequences:              # timed events (see crate::event_form) and the alerts they must raise
//!   - name: six failures in 50s
//!     events:
//!       - {at: 0, repeat: 6, every: 10s, login: {action: ssh_fail, source_ip: 203.0.113.7}}
//!     alerts: 1           # distinct alerts (alert ids) raised by the rule under test
//!     count: 6            # optional: `count` of the last alert
//!     group_key: SourceIp=203.0.113.7   # optional: `group_key` of the last alert
//!     alerts_at: [40s]    # optional: exactly the events (by offset) that raised or updated an alert
//! ```
//!
//! "Match" means the rule matched (or, for a correlation, fired), even when it is a
//! building block that raises no alert of its own, or a new-terms rule whose
//! terms were already seen. The detector is reset before every case
//! ([`Detector::reset`]), so cases never share state.
//!
//! `alerts_at` expresses history: for a new-terms rule ([`crate::new_terms`]),
//! a sequence of logins over days lists the offsets of the ones that were new,
//! e.g. `[0, 9d]` when the first and a later never-seen source alert and the
//! repeats in between do not. Offsets count from the test start (`d` = days).

use serde::Deserialize;

use crate::event_form::{BASE_TIME_UNIX_NANO, EventForm};
use crate::{Alert, DetectConfig, Detector, RuleSource};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule_id: Option<String>,
    #[serde(default, rename = "match")]
    must_match: Vec<EventForm>,
    #[serde(default)]
    no_match: Vec<EventForm>,
    #[serde(default)]
    sequences: Vec<Sequence>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sequence {
    name: String,
    events: Vec<EventForm>,
    alerts: usize,
    count: Option<u64>,
    group_key: Option<String>,
    #[serde(default)]
    alerts_at: Option<Vec<crate::event_form::Offset>>,
}

/// Result of one test case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseOutcome {
    /// `match #1`, `no_match #2`, or the sequence's name.
    pub name: String,
    /// Whether the case passed.
    pub passed: bool,
    /// What was expected and seen, when it failed.
    pub detail: String,
}

/// Result of one test file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestOutcome {
    /// The test file.
    pub origin: String,
    /// Rules under test.
    pub rule_ids: Vec<String>,
    /// One entry per case.
    pub cases: Vec<CaseOutcome>,
    /// Set when the file or the rule could not be used at all.
    pub error: Option<String>,
}

impl TestOutcome {
    /// True when the file was usable, had at least one case, and every case passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && !self.cases.is_empty() && self.cases.iter().all(|c| c.passed)
    }

    /// Failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.cases.iter().filter(|c| !c.passed)
    }

    fn failed(origin: &str, error: String) -> Self {
        TestOutcome {
            origin: origin.to_string(),
            rule_ids: Vec::new(),
            cases: Vec::new(),
            error: Some(error),
        }
    }
}

/// Runs the tests in `tests` against the rules loaded from `rule_origin` (the
/// origin of one of `config.sources`). `config` should hold every rule the rule
/// under test depends on (a correlation needs its detection rules).
pub fn run_rule_tests(config: &DetectConfig, rule_origin: &str, tests: &RuleSource) -> TestOutcome {
    let file: TestFile = match serde_norway::from_str(&tests.yaml) {
        Ok(file) => file,
        Err(error) => return TestOutcome::failed(&tests.origin, error.to_string()),
    };
    let (mut detector, report) = Detector::new(config.clone());
    let mut rule_ids: Vec<String> = detector
        .rules()
        .into_iter()
        .filter(|rule| rule.origin == rule_origin)
        .map(|rule| rule.id)
        .collect();
    if let Some(wanted) = &file.rule_id {
        rule_ids.retain(|id| id == wanted);
    }
    if rule_ids.is_empty() {
        let reasons: Vec<String> = report
            .rejected
            .iter()
            .filter(|e| e.origin == rule_origin)
            .map(ToString::to_string)
            .collect();
        let error = if reasons.is_empty() {
            format!("no rule under test is loaded from {rule_origin}")
        } else {
            format!("the rule under test was rejected: {}", reasons.join("; "))
        };
        return TestOutcome::failed(&tests.origin, error);
    }

    let mut cases = Vec::new();
    for (index, form) in file.must_match.iter().enumerate() {
        let name = format!("match #{}", index + 1);
        cases.push(single_event_case(
            &mut detector,
            &rule_ids,
            form,
            name,
            true,
        ));
    }
    for (index, form) in file.no_match.iter().enumerate() {
        let name = format!("no_match #{}", index + 1);
        cases.push(single_event_case(
            &mut detector,
            &rule_ids,
            form,
            name,
            false,
        ));
    }
    for sequence in &file.sequences {
        cases.push(sequence_case(&mut detector, &rule_ids, sequence));
    }
    TestOutcome {
        origin: tests.origin.clone(),
        rule_ids,
        cases,
        error: None,
    }
}

fn single_event_case(
    detector: &mut Detector,
    rule_ids: &[String],
    form: &EventForm,
    name: String,
    expect_match: bool,
) -> CaseOutcome {
    let events = match form.expand(BASE_TIME_UNIX_NANO, 0) {
        Ok(events) => events,
        Err(error) => return case(name, false, error.to_string()),
    };
    detector.reset();
    let mut matched = false;
    for event in &events {
        let processed = detector.process_detailed(event);
        matched |= processed
            .matched_rule_ids
            .iter()
            .any(|id| rule_ids.contains(id));
    }
    let detail = match (expect_match, matched) {
        (true, false) => "expected the rule to match, it did not".to_string(),
        (false, true) => "expected no match, the rule matched".to_string(),
        _ => String::new(),
    };
    case(name, matched == expect_match, detail)
}

fn sequence_case(detector: &mut Detector, rule_ids: &[String], sequence: &Sequence) -> CaseOutcome {
    let mut events = Vec::new();
    for form in &sequence.events {
        match form.expand(BASE_TIME_UNIX_NANO, events.len()) {
            Ok(expanded) => events.extend(expanded),
            Err(error) => return case(sequence.name.clone(), false, error.to_string()),
        }
    }
    // Events are processed in time order, as a collector would see them.
    events.sort_by_key(|event| event.time_unix_nano);

    detector.reset();
    let mut seen: Vec<Alert> = Vec::new();
    let mut alerted_at: Vec<i64> = Vec::new();
    for event in &events {
        for alert in detector.process(event) {
            if !rule_ids.contains(&alert.rule_id) {
                continue;
            }
            if alerted_at.last() != Some(&event.time_unix_nano) {
                alerted_at.push(event.time_unix_nano);
            }
            match seen.iter_mut().find(|a| a.alert_id == alert.alert_id) {
                Some(existing) => *existing = alert,
                None => seen.push(alert),
            }
        }
    }

    let mut problems = Vec::new();
    if seen.len() != sequence.alerts {
        problems.push(format!(
            "expected {} alert(s), got {}",
            sequence.alerts,
            seen.len()
        ));
    }
    let last = seen.iter().max_by_key(|a| a.last_time_unix_nano);
    if let Some(count) = sequence.count {
        let got = last.map(|a| a.count);
        if got != Some(count) {
            problems.push(format!("expected count {count}, got {got:?}"));
        }
    }
    if let Some(offsets) = &sequence.alerts_at {
        let mut wanted = Vec::new();
        for offset in offsets {
            match offset.nanos() {
                Ok(nanos) => wanted.push(BASE_TIME_UNIX_NANO + nanos),
                Err(error) => return case(sequence.name.clone(), false, error.to_string()),
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        if wanted != alerted_at {
            let render = |times: &[i64]| {
                times
                    .iter()
                    .map(|t| format!("{}s", (t - BASE_TIME_UNIX_NANO) / 1_000_000_000))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            problems.push(format!(
                "expected alerts at [{}], got them at [{}]",
                render(&wanted),
                render(&alerted_at)
            ));
        }
    }
    if let Some(group_key) = &sequence.group_key {
        let got = last.map(|a| a.group_key.as_str());
        if got != Some(group_key.as_str()) {
            problems.push(format!("expected group key '{group_key}', got {got:?}"));
        }
    }
    case(
        sequence.name.clone(),
        problems.is_empty(),
        problems.join("; "),
    )
}

fn case(name: String, passed: bool, detail: String) -> CaseOutcome {
    CaseOutcome {
        name,
        passed,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILURE_RULE: &str = r#"
title: failure
id: 00000000-0000-4000-8000-000000000001
name: failure
logsource: {product: linux, service: auth}
detection:
    selection: {Action: ssh_fail}
    condition: selection
level: low
"#;

    const COUNT_RULE: &str = r#"
title: three failures
id: 00000000-0000-4000-8000-000000000002
correlation:
    type: event_count
    rules: [failure]
    group-by: [SourceIp]
    timespan: 60s
    condition: {gte: 3}
level: high
"#;

    fn config() -> DetectConfig {
        DetectConfig {
            sources: vec![
                RuleSource {
                    origin: "failure.yml".into(),
                    yaml: FAILURE_RULE.into(),
                },
                RuleSource {
                    origin: "count.yml".into(),
                    yaml: COUNT_RULE.into(),
                },
            ],
            ..DetectConfig::default()
        }
    }

    fn run(rule_origin: &str, tests: &str) -> TestOutcome {
        let tests = RuleSource {
            origin: "t.tests.yml".into(),
            yaml: tests.into(),
        };
        run_rule_tests(&config(), rule_origin, &tests)
    }

    #[test]
    fn correct_expectations_pass() {
        let outcome = run(
            "count.yml",
            "sequences:\n  - name: three\n    events:\n      - {repeat: 3, login: {action: ssh_fail, source_ip: 192.0.2.1}}\n    alerts: 1\n    count: 3\n    group_key: SourceIp=192.0.2.1\n",
        );
        assert!(outcome.passed(), "{outcome:?}");
        assert_eq!(
            outcome.rule_ids,
            vec!["00000000-0000-4000-8000-000000000002"]
        );
    }

    #[test]
    fn wrong_expectations_fail_with_details() {
        let outcome = run(
            "failure.yml",
            "match:\n  - login: {action: ssh_accept}\nno_match:\n  - login: {action: ssh_fail}\nsequences:\n  - name: wrong count\n    events:\n      - {repeat: 2, login: {action: ssh_fail, source_ip: 192.0.2.1}}\n    alerts: 2\n    count: 5\n",
        );
        assert!(!outcome.passed());
        // `failure` feeds a correlation without `generate`, so it raises no alert.
        let failed: Vec<&str> = outcome.failures().map(|c| c.name.as_str()).collect();
        assert_eq!(failed, vec!["match #1", "no_match #1", "wrong count"]);
        let detail = &outcome.cases[2].detail;
        assert!(
            detail.contains("expected 2 alert(s), got 0") && detail.contains("expected count 5"),
            "{detail}"
        );
    }

    #[test]
    fn alerts_at_lists_the_events_that_alerted() {
        let rule = "title: new source\nid: 00000000-0000-4000-8000-000000000003\nlogsource: {product: linux, service: auth}\ndetection:\n    selection: {Action: ssh_accept}\n    condition: selection\nlevel: medium\ncustom_attributes:\n    shaobing.new_terms.fields: [User, SourceIp]\n";
        let mut config = config();
        config.sources.push(RuleSource {
            origin: "new.yml".into(),
            yaml: rule.into(),
        });
        let events = "    events:\n      - {at: 0, login: {action: ssh_accept, user: a, source_ip: 192.0.2.1}}\n      - {at: 1d, login: {action: ssh_accept, user: a, source_ip: 192.0.2.1}}\n      - {at: 2d, login: {action: ssh_accept, user: a, source_ip: 192.0.2.2}}\n";
        let tests = |alerts_at: &str| RuleSource {
            origin: "new.tests.yml".into(),
            yaml: format!(
                "match:\n  - login: {{action: ssh_accept, user: a, source_ip: 192.0.2.1}}\nsequences:\n  - name: history\n{events}    alerts: 2\n    alerts_at: {alerts_at}\n"
            ),
        };
        let outcome = run_rule_tests(&config, "new.yml", &tests("[0, 2d]"));
        assert!(outcome.passed(), "{outcome:?}");
        let outcome = run_rule_tests(&config, "new.yml", &tests("[0, 1d]"));
        let detail = &outcome.cases[1].detail;
        assert!(
            detail.contains("expected alerts at [0s, 86400s], got them at [0s, 172800s]"),
            "{detail}"
        );
    }

    #[test]
    fn broken_test_file_and_unknown_rule_are_errors() {
        let outcome = run("failure.yml", "matches: []\n");
        assert!(
            outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains("unknown field")),
            "{outcome:?}"
        );
        let outcome = run("missing.yml", "match: []\n");
        assert!(
            outcome
                .error
                .as_deref()
                .is_some_and(|e| e.contains("no rule under test")),
            "{outcome:?}"
        );
    }

    #[test]
    fn empty_test_file_does_not_pass() {
        let outcome = run("failure.yml", "match: []\n");
        assert!(outcome.error.is_none());
        assert!(!outcome.passed(), "a file without cases proves nothing");
    }
}
