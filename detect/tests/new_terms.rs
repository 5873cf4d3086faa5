//! New-terms rules through the public [`Detector`] API: alerts only for unseen
//! combinations, learning, snapshot/restore across detectors (a collector
//! restart), hand-over on reload, rejected attributes; and a chained
//! correlation kept silent by `shaobing.building_block`.

use shaobing_detect::event_form::parse_event_yaml;
use shaobing_detect::{Alert, DetectConfig, Detector, RuleSource};

const DAY: i64 = 86_400;

fn rule(id: &str, attributes: &str) -> String {
    format!(
        "title: new source {id}\nid: {id}\nlogsource: {{product: linux, service: auth}}\ndetection:\n    selection: {{Action: ssh_accept}}\n    condition: selection\nlevel: medium\ncustom_attributes:\n{attributes}"
    )
}

const PAIR: &str = "    shaobing.new_terms.fields: [User, SourceIp]\n    shaobing.new_terms.history: 30d\n    shaobing.new_terms.learning: 7d\n";

fn detector(yaml: &str) -> Detector {
    let (detector, report) = Detector::new(DetectConfig {
        sources: vec![RuleSource {
            origin: "r.yml".into(),
            yaml: yaml.into(),
        }],
        ..DetectConfig::default()
    });
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    detector
}

fn login(detector: &mut Detector, user: &str, ip: &str, day: i64) -> Vec<Alert> {
    let event = parse_event_yaml(&format!(
        "at: {}\nlogin: {{action: ssh_accept, user: {user}, source_ip: {ip}}}",
        day * DAY
    ))
    .unwrap();
    detector.process(&event)
}

#[test]
fn alerts_only_for_unseen_pairs_after_learning() {
    let mut d = detector(&rule("nt", PAIR));
    assert!(
        login(&mut d, "alice", "192.0.2.1", 0).is_empty(),
        "learning"
    );
    assert!(login(&mut d, "alice", "192.0.2.1", 8).is_empty(), "seen");
    let alerts = login(&mut d, "alice", "203.0.113.9", 8);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].group_key, "User=alice, SourceIp=203.0.113.9");
    assert_eq!(alerts[0].kind, "detection");
    assert!(login(&mut d, "alice", "203.0.113.9", 9).is_empty());
    assert_eq!(d.new_terms_kept(), 2);
    assert_eq!(d.evicted_new_terms(), 0);
}

#[test]
fn history_and_learning_start_survive_a_restart() {
    let mut first = detector(&rule("nt", PAIR));
    login(&mut first, "alice", "192.0.2.1", 0);
    let snapshot = first.snapshot().unwrap();
    // A collector restarted 8 days later: the learning period (started at day 0)
    // is over and alice's usual source is still known.
    let mut second = detector(&rule("nt", PAIR));
    second.restore(&snapshot).unwrap();
    assert!(login(&mut second, "alice", "192.0.2.1", 8).is_empty());
    assert_eq!(login(&mut second, "alice", "198.51.100.3", 8).len(), 1);
    // Without the snapshot it would still be learning.
    let mut fresh = detector(&rule("nt", PAIR));
    assert!(login(&mut fresh, "alice", "198.51.100.3", 8).is_empty());
    // Snapshots from before new terms existed still load.
    let mut legacy: serde_json::Value = serde_json::from_str(&snapshot).unwrap();
    legacy.as_object_mut().unwrap().remove("new_terms");
    fresh.restore(&legacy.to_string()).unwrap();
}

#[test]
fn reload_keeps_history_unless_the_fields_change() {
    let mut old = detector(&rule("nt", PAIR));
    login(&mut old, "alice", "192.0.2.1", 0);
    // Same fields, another summary: history kept.
    let mut same = detector(&rule(
        "nt",
        &format!("{PAIR}    shaobing.summary: 'new {{User}}'\n"),
    ));
    old.hand_over(&mut same);
    assert!(login(&mut same, "alice", "192.0.2.1", 8).is_empty());
    assert_eq!(login(&mut same, "bob", "192.0.2.1", 8).len(), 1);
    // Other fields: a new history (and a new learning period).
    let mut other = detector(&rule(
        "nt",
        "    shaobing.new_terms.fields: [SourceIp]\n    shaobing.new_terms.learning: 1d\n",
    ));
    old.hand_over(&mut other);
    assert!(
        login(&mut other, "carol", "203.0.113.1", 8).is_empty(),
        "learning again"
    );
    assert_eq!(login(&mut other, "carol", "203.0.113.2", 10).len(), 1);
}

#[test]
fn without_learning_the_first_sight_alerts() {
    let mut d = detector(&rule("nt", "    shaobing.new_terms.fields: SourceIp\n"));
    assert_eq!(login(&mut d, "alice", "192.0.2.1", 0).len(), 1);
    assert!(login(&mut d, "bob", "192.0.2.1", 1).is_empty());
    // A login without a source address neither alerts nor counts.
    let event = parse_event_yaml("at: 100\nlogin: {action: ssh_accept, user: alice}").unwrap();
    assert!(d.process(&event).is_empty());
    assert_eq!(d.new_terms_kept(), 1);
}

#[test]
fn malformed_attributes_reject_the_rule_with_a_reason() {
    let cases = [
        (rule("a", "    shaobing.new_terms.fields: 5\n"), "list of field names"),
        (
            rule("b", "    shaobing.new_terms.fields: [User]\n    shaobing.new_terms.history: forever\n"),
            "duration",
        ),
        (rule("c", "    shaobing.new_terms.learning: 7d\n"), "needs shaobing.new_terms.fields"),
        (
            "title: c\nid: corr\ncorrelation:\n    type: event_count\n    rules: [nt]\n    group-by: [User]\n    timespan: 1m\n    condition: {gte: 2}\nlevel: high\ncustom_attributes:\n    shaobing.new_terms.fields: [User]\n".to_string(),
            "detection rules only",
        ),
    ];
    for (yaml, wanted) in cases {
        let yaml = format!("{}\n---\n{yaml}", rule("nt", PAIR));
        let (_, report) = Detector::new(DetectConfig {
            sources: vec![RuleSource {
                origin: "bad.yml".into(),
                yaml,
            }],
            ..DetectConfig::default()
        });
        assert_eq!(report.rejected.len(), 1, "{wanted}: {report:?}");
        assert!(
            report.rejected[0].reason.contains(wanted),
            "{wanted}: {:?}",
            report.rejected[0]
        );
    }
}

#[test]
fn a_chained_correlation_is_silent_as_a_building_block() {
    let base = "title: fail\nid: fail\nname: fail\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_fail}\n    condition: sel\nlevel: low\n";
    let inner = "title: many failures\nid: many\nname: many\ncorrelation:\n    type: event_count\n    rules: [fail]\n    group-by: [User]\n    timespan: 10m\n    condition: {gte: 3}\nlevel: informational\n";
    let success = "title: ok\nid: ok\nname: ok\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_accept}\n    condition: sel\nlevel: low\n";
    let outer = "title: success after failures\nid: outer\ncorrelation:\n    type: temporal_ordered\n    rules: [many, ok]\n    group-by: [User]\n    timespan: 10m\nlevel: high\n";
    let run = |inner: &str, outer: &str| {
        let mut d = detector(&format!("{base}---\n{inner}---\n{success}---\n{outer}"));
        let mut titles = Vec::new();
        for n in 0..4 {
            let event = parse_event_yaml(&format!(
                "at: {n}\nlogin: {{action: ssh_fail, user: u, source_ip: 192.0.2.{n}}}"
            ))
            .unwrap();
            titles.extend(d.process(&event).into_iter().map(|a| a.rule_title));
        }
        let event =
            parse_event_yaml("at: 10\nlogin: {action: ssh_accept, user: u, source_ip: 192.0.2.9}")
                .unwrap();
        titles.extend(d.process(&event).into_iter().map(|a| a.rule_title));
        titles.sort();
        titles.dedup();
        titles
    };
    // A correlation alerts on its own even when another chains on it ...
    assert_eq!(
        run(inner, outer),
        vec!["many failures", "success after failures"]
    );
    // ... unless it is a building block; the chain still works.
    let silent = format!("{inner}custom_attributes:\n    shaobing.building_block: true\n");
    assert_eq!(run(&silent, outer), vec!["success after failures"]);
    // A malformed flag rejects the rule.
    let (_, report) = Detector::new(DetectConfig {
        sources: vec![RuleSource {
            origin: "bad.yml".into(),
            yaml: format!(
                "{base}---\n{inner}custom_attributes:\n    shaobing.building_block: maybe\n"
            ),
        }],
        ..DetectConfig::default()
    });
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(report.rejected[0].reason.contains("true or false"));
}
