//! Loading: broken rules are rejected one by one with clear reasons, the rest load;
//! logsource routing; list placeholders; Sigma `generate` semantics.

use std::collections::BTreeMap;

use shaobing_detect::event_form::parse_event_yaml;
use shaobing_detect::{DetectConfig, Detector, LoadReport, RuleSource};

fn source(origin: &str, yaml: &str) -> RuleSource {
    RuleSource {
        origin: origin.to_string(),
        yaml: yaml.to_string(),
    }
}

fn load(sources: Vec<RuleSource>) -> (Detector, LoadReport) {
    Detector::new(DetectConfig {
        sources,
        ..DetectConfig::default()
    })
}

fn detection(id: &str, logsource: &str, selection: &str) -> String {
    format!(
        "title: rule {id}\nid: {id}\nlogsource: {logsource}\ndetection:\n    selection: {selection}\n    condition: selection\nlevel: medium\n"
    )
}

fn rule_ids_for(detector: &mut Detector, event_yaml: &str) -> Vec<String> {
    let event = parse_event_yaml(event_yaml).expect("event");
    detector
        .process(&event)
        .into_iter()
        .map(|alert| alert.rule_id)
        .collect()
}

#[test]
fn broken_rules_are_rejected_and_the_rest_load() {
    let good = detection(
        "good-1",
        "{product: linux, service: auth}",
        "{Action: ssh_fail}",
    );
    let (detector, report) = load(vec![
        source("good.yml", &good),
        source("not_yaml.yml", "title: [unclosed\n"),
        source(
            "no_detection.yml",
            "title: x\nid: bad-2\nlogsource: {product: linux}\n",
        ),
        source(
            "bad_condition.yml",
            "title: x\nid: bad-3\nlogsource: {product: linux}\ndetection:\n    sel: {A: b}\n    condition: sel and nope\n",
        ),
        source(
            "bad_modifier.yml",
            "title: x\nid: bad-4\nlogsource: {product: linux}\ndetection:\n    sel: {A|frobnicate: b}\n    condition: sel\n",
        ),
        source(
            "no_id.yml",
            &detection("", "{product: linux}", "{A: b}").replace("id: \n", ""),
        ),
        source("duplicate.yml", &good),
    ]);
    assert_eq!(report.loaded, 1, "{report:#?}");
    assert_eq!(detector.rules()[0].id, "good-1");
    let origins: Vec<&str> = report.rejected.iter().map(|e| e.origin.as_str()).collect();
    assert_eq!(
        origins,
        vec![
            "not_yaml.yml",
            "no_detection.yml",
            "bad_condition.yml",
            "bad_modifier.yml",
            "no_id.yml",
            "duplicate.yml"
        ],
        "{report:#?}"
    );
    let reason = |origin: &str| {
        report
            .rejected
            .iter()
            .find(|e| e.origin == origin)
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(
        reason("no_id.yml").contains("has no id"),
        "{}",
        reason("no_id.yml")
    );
    assert!(reason("duplicate.yml").contains("duplicate rule id (first defined in good.yml)"));
    assert!(
        reason("bad_modifier.yml")
            .to_lowercase()
            .contains("frobnicate"),
        "{}",
        reason("bad_modifier.yml")
    );
    assert!(
        reason("not_yaml.yml").contains("not_yaml.yml:"),
        "line number expected: {}",
        reason("not_yaml.yml")
    );
}

#[test]
fn unknown_level_is_a_warning_not_a_rejection() {
    let rule =
        detection("r1", "{product: linux}", "{A: b}").replace("level: medium", "level: severe");
    let (detector, report) = load(vec![source("r.yml", &rule)]);
    assert_eq!(report.loaded, 1);
    assert!(report.rejected.is_empty());
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert_eq!(detector.rules()[0].level, "informational");
}

#[test]
fn correlations_with_unknown_references_are_rejected() {
    let base = detection(
        "base",
        "{product: linux, service: auth}",
        "{Action: ssh_fail}",
    );
    let good = "title: c\nid: corr-ok\ncorrelation:\n    type: event_count\n    rules: [base]\n    group-by: [SourceIp]\n    timespan: 1m\n    condition: {gte: 2}\nlevel: high\n";
    let dangling = good
        .replace("corr-ok", "corr-bad")
        .replace("rules: [base]", "rules: [nothing]");
    let chained = good
        .replace("corr-ok", "corr-chained")
        .replace("rules: [base]", "rules: [corr-bad]");
    let (detector, report) = load(vec![
        source("base.yml", &base),
        source("good.yml", good),
        source("bad.yml", &dangling),
        source("chained.yml", &chained),
    ]);
    let ids: Vec<String> = detector.rules().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["base", "corr-ok"]);
    let reasons: Vec<String> = report.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("unknown rule 'nothing'"), "{reasons:?}");
    assert!(reasons[1].contains("corr-chained"), "{reasons:?}");
}

#[test]
fn rules_only_see_events_of_their_logsource() {
    let auth = detection(
        "auth-rule",
        "{product: linux, service: auth}",
        "{User: root}",
    );
    let sudo = detection(
        "sudo-rule",
        "{product: linux, service: sudo}",
        "{User: root}",
    );
    let process = detection(
        "process-rule",
        "{product: linux, category: process_creation}",
        "{Image|endswith: /nc}",
    );
    let windows = detection(
        "windows-rule",
        "{product: windows, category: process_creation}",
        "{Image|endswith: /nc}",
    );
    let anything = detection("any-rule", "{product: linux}", "{User: root}");
    let (mut detector, report) = load(vec![
        source("a.yml", &auth),
        source("s.yml", &sudo),
        source("p.yml", &process),
        source("w.yml", &windows),
        source("x.yml", &anything),
    ]);
    assert!(report.rejected.is_empty(), "{report:?}");

    let mut ssh = rule_ids_for(
        &mut detector,
        "login: {action: ssh_accept, user: root, service: sshd}",
    );
    ssh.sort();
    assert_eq!(ssh, vec!["any-rule", "auth-rule"]);

    let mut sudo_event = rule_ids_for(
        &mut detector,
        "login: {action: sudo, user: root, service: sudo}",
    );
    sudo_event.sort();
    assert_eq!(sudo_event, vec!["any-rule", "auth-rule", "sudo-rule"]);

    // A file written by /usr/bin/nc carries Image, but it is not a process creation.
    let file = rule_ids_for(
        &mut detector,
        "file: {op: create, path: /tmp/x, exe: /usr/bin/nc, owner: root}",
    );
    assert_eq!(file, vec!["any-rule"]);

    let exec = rule_ids_for(&mut detector, "process: {exe: /usr/bin/nc, user: root}");
    let mut exec = exec;
    exec.sort();
    assert_eq!(exec, vec!["any-rule", "process-rule"]);
}

#[test]
fn expand_placeholders_come_from_lists() {
    let rule = detection(
        "ti-rule",
        "{product: linux, category: network_connection}",
        "{DestinationIp|expand: '%threat_ips%'}",
    );
    let mut lists = BTreeMap::new();
    lists.insert(
        "threat_ips".to_string(),
        vec!["192.0.2.66".to_string(), "198.51.100.66".to_string()],
    );
    let (mut detector, report) = Detector::new(DetectConfig {
        sources: vec![source("ti.yml", &rule)],
        lists,
        ..DetectConfig::default()
    });
    assert!(report.rejected.is_empty(), "{report:?}");
    let hit = rule_ids_for(
        &mut detector,
        "network: {action: connect, direction: outbound, dst_ip: 198.51.100.66, dst_port: 443}",
    );
    assert_eq!(hit, vec!["ti-rule"]);
    let miss = rule_ids_for(
        &mut detector,
        "network: {action: connect, direction: outbound, dst_ip: 198.51.100.67, dst_port: 443}",
    );
    assert!(miss.is_empty());

    // Subdomain wildcards work in expanded values.
    let domains = detection(
        "domain-rule",
        "{product: linux, category: dns_query}",
        "{QueryName|expand: ['%bad_domains%', '*.%bad_domains%']}",
    );
    let mut lists = BTreeMap::new();
    lists.insert("bad_domains".to_string(), vec!["c2.example".to_string()]);
    lists.insert("threat_ips".to_string(), Vec::new());
    let (mut detector, report) = Detector::new(DetectConfig {
        sources: vec![source("d.yml", &domains), source("ti.yml", &rule)],
        lists,
        ..DetectConfig::default()
    });
    assert!(report.rejected.is_empty(), "{report:?}");
    for (name, expected) in [
        ("a.b.c2.example", true),
        ("c2.example", true),
        ("xc2.example", false),
    ] {
        let event = format!("network: {{action: dns_query, dns_query: {name}}}");
        assert_eq!(
            !rule_ids_for(&mut detector, &event).is_empty(),
            expected,
            "{name}"
        );
    }
    // An empty list loads and matches nothing.
    let miss = rule_ids_for(
        &mut detector,
        "network: {action: connect, direction: outbound, dst_ip: ''}",
    );
    assert!(miss.is_empty());

    // Without the list the rule is rejected, naming the missing list file.
    let (_, report) = load(vec![source("ti.yml", &rule)]);
    assert_eq!(report.loaded, 0);
    assert!(
        report.rejected[0]
            .reason
            .contains("rules/lists/threat_ips.txt"),
        "{report:?}"
    );
}

#[test]
fn rsigma_engine_attributes_in_rules_are_ignored() {
    // `rsigma.suppress` would silence every correlation engine-wide; Shaobing owns that.
    let base = detection(
        "base",
        "{product: linux, service: auth}",
        "{Action: ssh_fail}",
    ) + "custom_attributes:\n    rsigma.suppress: 1h\n";
    let corr = "title: c\nid: corr\ncorrelation:\n    type: event_count\n    rules: [base]\n    group-by: [SourceIp]\n    timespan: 1h\n    condition: {gte: 1}\nlevel: high\n";
    let (mut detector, report) = load(vec![source("b.yml", &base), source("c.yml", corr)]);
    assert!(report.rejected.is_empty(), "{report:?}");
    let mut counts = Vec::new();
    for second in 0..3 {
        let event = format!("at: {second}\nlogin: {{action: ssh_fail, source_ip: 192.0.2.1}}");
        for alert in detector.process(&parse_event_yaml(&event).expect("event")) {
            if alert.rule_id == "corr" {
                counts.push(alert.count);
            }
        }
    }
    assert_eq!(
        counts,
        vec![1, 2, 3],
        "the correlation must keep firing (growing count)"
    );
}

#[test]
fn building_blocks_raise_alerts_only_with_generate() {
    let base = detection(
        "base",
        "{product: linux, service: auth}",
        "{Action: ssh_fail}",
    );
    let corr = "title: c\nid: corr\ncorrelation:\n    type: event_count\n    rules: [base]\n    group-by: [SourceIp]\n    timespan: 1m\n    condition: {gte: 5}\nlevel: high\n";
    let event = "login: {action: ssh_fail, source_ip: 192.0.2.1}";

    let (mut hidden, _) = load(vec![source("b.yml", &base), source("c.yml", corr)]);
    assert!(rule_ids_for(&mut hidden, event).is_empty());

    let generating = format!("{corr}generate: true\n");
    let (mut shown, _) = load(vec![source("b.yml", &base), source("c.yml", &generating)]);
    assert_eq!(rule_ids_for(&mut shown, event), vec!["base"]);
}

#[test]
fn mlps_clauses_and_rule_listing() {
    let rule = detection(
        "r1",
        "{product: linux, service: auth}",
        "{Action: ssh_fail}",
    );
    let (detector, report) = Detector::new(DetectConfig {
        sources: vec![source("login/r1.yml", &rule)],
        mlps_yaml: Some("rules:\n  r1: [8.1.4.1 b)]\n  r2: [not a clause]\n".to_string()),
        ..DetectConfig::default()
    });
    assert_eq!(
        report.rejected.len(),
        1,
        "the bad clause is reported: {report:?}"
    );
    assert_eq!(
        report.warnings.len(),
        1,
        "r2 names no loaded rule: {report:?}"
    );
    assert_eq!(report.warnings[0].rule_id.as_deref(), Some("r2"));
    let info = &detector.rules()[0];
    assert_eq!(info.mlps, vec!["8.1.4.1 b)"]);
    assert_eq!(info.logsource, "product=linux service=auth");
    assert_eq!(info.kind, "detection");
    assert_eq!(info.origin, "login/r1.yml");
}

#[test]
fn sigma_filters_tune_rules_in_both_routing_modes() {
    let rule = detection(
        "00000000-0000-4000-8000-00000000aa01",
        "{product: linux, service: auth}",
        "{Action: ssh_fail}",
    );
    let filter = "title: Jump host is expected to fail\nid: 00000000-0000-4000-8000-00000000ff01\nlogsource: {product: linux, service: auth}\nfilter:\n    rules:\n        - 00000000-0000-4000-8000-00000000aa01\n    selection:\n        SourceIp: 10.0.0.1\n    condition: not selection\n";
    for routing in [
        shaobing_detect::Routing::Routed,
        shaobing_detect::Routing::Naive,
    ] {
        let (mut detector, report) = load(vec![
            source("rule.yml", &rule),
            source("filter.yml", filter),
        ]);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.filter_rules, 1);
        detector.set_routing(routing);
        assert!(
            rule_ids_for(
                &mut detector,
                "login: {action: ssh_fail, source_ip: 10.0.0.1}"
            )
            .is_empty(),
            "{routing:?}: the filtered address raises nothing"
        );
        assert_eq!(
            rule_ids_for(
                &mut detector,
                "login: {action: ssh_fail, source_ip: 203.0.113.7}"
            ),
            vec!["00000000-0000-4000-8000-00000000aa01"],
            "{routing:?}"
        );
    }
}
