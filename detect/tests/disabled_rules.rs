//! Rules disabled by an operator (`DetectConfig::disabled`): skipped as if absent,
//! listed in the load report, and a disabled correlation does not turn its building
//! blocks into alerting rules.

use shaobing_detect::event_form::parse_event_yaml;
use shaobing_detect::{DetectConfig, Detector, RuleSource};

const FAILURE: &str = "title: SSH failure\nid: 00000000-0000-4000-8000-0000000000f1\nname: failure\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_fail}\n    condition: sel\nlevel: low\n";
const ROOT: &str = "title: Root login\nid: 00000000-0000-4000-8000-0000000000r1\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_accept, User: root}\n    condition: sel\nlevel: high\n";
const BRUTE_FORCE: &str = "title: Brute force\nid: 00000000-0000-4000-8000-0000000000b1\nlevel: high\ncorrelation:\n    type: event_count\n    rules: [failure]\n    group-by: [SourceIp]\n    timespan: 60s\n    condition: {gte: 3}\n";

fn load(disabled: &[&str]) -> (Detector, shaobing_detect::LoadReport) {
    Detector::new(DetectConfig {
        sources: vec![
            RuleSource {
                origin: "login.yml".into(),
                yaml: format!("{FAILURE}---\n{ROOT}"),
            },
            RuleSource {
                origin: "brute.yml".into(),
                yaml: BRUTE_FORCE.into(),
            },
        ],
        disabled: disabled.iter().map(|id| (*id).to_string()).collect(),
        ..DetectConfig::default()
    })
}

fn titles(detector: &mut Detector, events: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (n, body) in events.iter().enumerate() {
        let event = parse_event_yaml(&format!("at: {n}\nevent_id: e-{n}\n{body}")).expect("event");
        out.extend(detector.process(&event).into_iter().map(|a| a.rule_title));
    }
    out
}

#[test]
fn a_disabled_rule_in_a_multi_document_file_is_skipped_and_reported() {
    let root = "login: {action: ssh_accept, user: root, source_ip: 198.51.100.1}";
    let (mut enabled, report) = load(&[]);
    assert_eq!(report.loaded, 3, "{report:#?}");
    assert!(report.disabled.is_empty());
    assert_eq!(titles(&mut enabled, &[root]), vec!["Root login"]);

    let (mut detector, report) = load(&["00000000-0000-4000-8000-0000000000r1"]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.loaded, 2);
    assert_eq!(
        report.disabled,
        vec!["00000000-0000-4000-8000-0000000000r1"]
    );
    assert!(titles(&mut detector, &[root]).is_empty());
    assert!(
        detector.rules().iter().all(|r| r.title != "Root login"),
        "the disabled rule is not listed as loaded"
    );
}

#[test]
fn disabling_a_correlation_keeps_its_building_blocks_silent() {
    let failure = "login: {action: ssh_fail, source_ip: 203.0.113.7}";
    let (mut enabled, _) = load(&[]);
    assert_eq!(
        titles(&mut enabled, &[failure, failure, failure]),
        vec!["Brute force"]
    );
    let (mut detector, report) = load(&["00000000-0000-4000-8000-0000000000b1"]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.disabled.len(), 1);
    assert!(
        titles(&mut detector, &[failure, failure, failure, failure]).is_empty(),
        "no correlation alert and no alert from its generate-less building block"
    );
}

#[test]
fn disabling_a_referenced_detection_rejects_the_correlation_that_needs_it() {
    let (_, report) = load(&["00000000-0000-4000-8000-0000000000f1"]);
    assert_eq!(report.rejected.len(), 1, "{report:#?}");
    assert_eq!(report.rejected[0].origin, "brute.yml");
}
