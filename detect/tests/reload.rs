//! Hot reload: [`Detector::hand_over`] keeps the correlation windows of rules
//! whose definition is unchanged, and starts changed ones afresh.

use std::fs;
use std::path::Path;

use shaobing_detect::event_form::parse_event_yaml;
use shaobing_detect::{DetectConfig, Detector, Routing, RuleSource};
use shaobing_wire::v1::Event;

const BRUTE_FORCE_ID: &str = "4c0a6539-b9a5-4998-81aa-a02d75defd39";

fn rule(path: &str) -> RuleSource {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rules")
        .join(path);
    RuleSource {
        origin: path.to_string(),
        yaml: fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display())),
    }
}

fn config(extra: Vec<RuleSource>) -> DetectConfig {
    let mut sources = vec![
        rule("login/ssh_password_failure.yml"),
        rule("login/ssh_brute_force.yml"),
    ];
    sources.extend(extra);
    DetectConfig {
        sources,
        ..DetectConfig::default()
    }
}

fn load(config: DetectConfig) -> Detector {
    let (detector, report) = Detector::new(config);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    detector
}

fn failures(from: usize, times: &[i64]) -> Vec<Event> {
    times
        .iter()
        .enumerate()
        .map(|(n, at)| {
            parse_event_yaml(&format!(
                "at: {at}\nevent_id: e-{}\nlogin: {{action: ssh_fail, user: root, source_ip: 203.0.113.7, service: sshd}}",
                from + n
            ))
            .expect("event")
        })
        .collect()
}

fn brute_force_fired(detector: &mut Detector, events: &[Event]) -> bool {
    events.iter().any(|event| {
        detector
            .process(event)
            .iter()
            .any(|alert| alert.rule_id == BRUTE_FORCE_ID)
    })
}

#[test]
fn unchanged_correlations_keep_their_windows_across_a_reload() {
    let mut old = load(config(Vec::new()));
    old.set_routing(Routing::Naive);
    assert!(!brute_force_fired(&mut old, &failures(0, &[0, 1, 2])));

    // Another rule file is added; the brute-force files are untouched.
    let added = RuleSource {
        origin: "extra.yml".into(),
        yaml: "title: extra\nid: 11111111-0000-4000-8000-000000000001\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: su}\n    condition: sel\nlevel: low\n".into(),
    };
    let mut new = load(config(vec![added]));
    assert_eq!(
        old.hand_over(&mut new),
        1,
        "the brute-force correlation kept its windows"
    );
    assert_eq!(
        new.open_alerts(),
        old.open_alerts(),
        "open alerts carried over"
    );
    assert!(
        brute_force_fired(&mut new, &failures(3, &[3, 4])),
        "3 failures before the reload + 2 after"
    );
}

#[test]
fn a_changed_correlation_starts_afresh() {
    let mut old = load(config(Vec::new()));
    assert!(!brute_force_fired(&mut old, &failures(0, &[0, 1, 2])));

    let mut changed = config(Vec::new());
    changed.sources[1].yaml = changed.sources[1]
        .yaml
        .replace("level: high", "level: critical");
    assert_ne!(changed.sources[1].yaml, config(Vec::new()).sources[1].yaml);
    let mut new = load(changed);
    assert_eq!(old.hand_over(&mut new), 0);
    assert!(
        !brute_force_fired(&mut new, &failures(3, &[3, 4])),
        "the changed rule's window restarted: only 2 failures"
    );
    assert!(brute_force_fired(&mut new, &failures(5, &[5, 6, 7])));
}

#[test]
fn a_changed_building_block_restarts_its_correlations() {
    let mut old = load(config(Vec::new()));
    assert!(!brute_force_fired(&mut old, &failures(0, &[0, 1, 2])));
    let mut changed = config(Vec::new());
    changed.sources[0].yaml.push_str("\n# tuned\n");
    let mut new = load(changed);
    assert_eq!(old.hand_over(&mut new), 0);
    assert!(!brute_force_fired(&mut new, &failures(3, &[3, 4])));
}
