//! Every Sigma correlation type with a controlled clock (event times are the only
//! clock): `event_count`, `value_count`, `temporal`, `temporal_ordered`,
//! `value_sum`, `value_avg`, `value_median`, `value_percentile`; window edges
//! (a window of N seconds includes events exactly N seconds apart), group-by with
//! several fields, aliases, and a restart (snapshot/restore) in the middle of a
//! window for each type.

use shaobing_detect::event_form::parse_event_yaml;
use shaobing_detect::{Alert, DetectConfig, Detector, RuleSource};
use shaobing_wire::v1::Event;

const CORRELATION_ID: &str = "c0000000-0000-4000-8000-000000000001";

/// Detection rules the correlations below build on.
const BASE_RULES: &str = r#"
title: SSH failure (test)
id: d0000000-0000-4000-8000-000000000001
name: ssh_fail_t
logsource: {product: linux, service: auth}
detection:
    selection: {Action: ssh_fail}
    condition: selection
level: low
---
title: SSH success (test)
id: d0000000-0000-4000-8000-000000000002
name: ssh_ok_t
logsource: {product: linux, service: auth}
detection:
    selection: {Action: ssh_accept}
    condition: selection
level: low
---
title: Connection (test)
id: d0000000-0000-4000-8000-000000000003
name: conn_t
logsource: {product: linux, category: network_connection}
detection:
    selection: {Action: connect}
    condition: selection
level: low
"#;

/// A detector with the base rules and one correlation (`body` is the YAML under
/// `correlation:`).
fn detector(body: &str) -> Detector {
    let correlation = format!(
        "title: Correlation under test\nid: {CORRELATION_ID}\nlevel: high\ncorrelation:\n{body}"
    );
    let (detector, report) = Detector::new(DetectConfig {
        sources: vec![
            RuleSource {
                origin: "base.yml".into(),
                yaml: BASE_RULES.into(),
            },
            RuleSource {
                origin: "correlation.yml".into(),
                yaml: correlation,
            },
        ],
        ..DetectConfig::default()
    });
    assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
    assert_eq!(report.correlation_rules, 1);
    detector
}

/// One event at `at` seconds; `body` is the event form's body and host keys.
fn event(n: usize, at: i64, body: &str) -> Event {
    parse_event_yaml(&format!("at: {at}\nevent_id: e-{n}\n{body}")).expect("event form")
}

fn fail(n: usize, at: i64, user: &str, ip: &str, agent: &str) -> Event {
    event(
        n,
        at,
        &format!(
            "agent_id: {agent}\nlogin: {{action: ssh_fail, user: {user}, source_ip: {ip}, service: sshd}}"
        ),
    )
}

fn accept(n: usize, at: i64, user: &str, ip: &str, agent: &str) -> Event {
    event(
        n,
        at,
        &format!(
            "agent_id: {agent}\nlogin: {{action: ssh_accept, user: {user}, source_ip: {ip}, service: sshd}}"
        ),
    )
}

fn connect(n: usize, at: i64, dst: &str, bytes: u64, agent: &str) -> Event {
    event(
        n,
        at,
        &format!(
            "agent_id: {agent}\nnetwork: {{action: connect, direction: outbound, dst_ip: {dst}, dst_port: 443, bytes: {bytes}}}"
        ),
    )
}

/// Feeds the events; returns the latest state of each correlation alert.
fn run(detector: &mut Detector, events: &[Event]) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = Vec::new();
    for event in events {
        for alert in detector.process(event) {
            if alert.rule_id != CORRELATION_ID {
                continue;
            }
            match alerts.iter_mut().find(|a| a.alert_id == alert.alert_id) {
                Some(existing) => *existing = alert,
                None => alerts.push(alert),
            }
        }
    }
    alerts
}

fn group_keys(alerts: &[Alert]) -> Vec<String> {
    alerts.iter().map(|a| a.group_key.clone()).collect()
}

/// Restart in the middle of a window: `before` goes to one detector, its state
/// is snapshotted and restored into a new one, which gets `after`. Returns the
/// alerts of the resumed run and of a fresh detector given only `after`.
fn across_restart(body: &str, before: &[Event], after: &[Event]) -> (Vec<Alert>, Vec<Alert>) {
    let mut first = detector(body);
    assert!(
        run(&mut first, before).is_empty(),
        "fired before the restart"
    );
    let snapshot = first.snapshot().expect("snapshot");
    drop(first);
    let mut resumed = detector(body);
    resumed.restore(&snapshot).expect("restore");
    let resumed_alerts = run(&mut resumed, after);
    let fresh_alerts = run(&mut detector(body), after);
    (resumed_alerts, fresh_alerts)
}

// ---------------------------------------------------------------- event_count

const EVENT_COUNT: &str = "    type: event_count\n    rules: [ssh_fail_t]\n    group-by: [User, AgentId]\n    timespan: 60s\n    condition: {gte: 3}\n";

#[test]
fn event_count_groups_by_several_fields() {
    let mut detector = detector(EVENT_COUNT);
    let events = [
        fail(0, 0, "root", "203.0.113.1", "agent-1"),
        fail(1, 1, "root", "203.0.113.2", "agent-2"),
        fail(2, 2, "admin", "203.0.113.3", "agent-1"),
        fail(3, 3, "root", "203.0.113.4", "agent-1"),
        fail(4, 4, "root", "203.0.113.5", "agent-2"),
    ];
    assert!(
        run(&mut detector, &events).is_empty(),
        "no (User, AgentId) pair has 3 failures yet"
    );
    let alerts = run(
        &mut detector,
        &[fail(5, 5, "root", "203.0.113.6", "agent-1")],
    );
    assert_eq!(group_keys(&alerts), vec!["User=root, AgentId=agent-1"]);
    assert_eq!(alerts[0].count, 3);
    assert_eq!(alerts[0].event_ids, vec!["e-0", "e-3", "e-5"]);
}

#[test]
fn event_count_window_edge() {
    let times = |last: i64| {
        [0, 30, last]
            .iter()
            .enumerate()
            .map(|(n, at)| fail(n, *at, "root", "203.0.113.1", "agent-1"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(&mut detector(EVENT_COUNT), &times(60)).len(),
        1,
        "60 s apart: inside"
    );
    assert!(
        run(&mut detector(EVENT_COUNT), &times(61)).is_empty(),
        "61 s apart: outside"
    );
}

#[test]
fn event_count_survives_a_restart_mid_window() {
    let before = [
        fail(0, 0, "root", "203.0.113.1", "agent-1"),
        fail(1, 10, "root", "203.0.113.1", "agent-1"),
    ];
    let after = [fail(2, 20, "root", "203.0.113.1", "agent-1")];
    let (resumed, fresh) = across_restart(EVENT_COUNT, &before, &after);
    assert_eq!(resumed.len(), 1, "2 failures before + 1 after the restart");
    assert_eq!(resumed[0].count, 3);
    assert!(
        fresh.is_empty(),
        "without the snapshot only 1 failure is seen"
    );
}

// ---------------------------------------------------------------- value_count

const VALUE_COUNT: &str = "    type: value_count\n    rules: [ssh_fail_t]\n    group-by: [SourceIp, AgentId]\n    timespan: 60s\n    condition: {field: User, gte: 3}\n";

#[test]
fn value_count_counts_distinct_values_per_group() {
    let mut detector = detector(VALUE_COUNT);
    let same_user: Vec<Event> = (0..5)
        .map(|n| fail(n, n as i64, "root", "198.51.100.9", "agent-1"))
        .collect();
    assert!(
        run(&mut detector, &same_user).is_empty(),
        "one user five times is one distinct value"
    );
    let other_agent = [
        fail(10, 6, "alice", "198.51.100.9", "agent-2"),
        fail(11, 7, "bob", "198.51.100.9", "agent-2"),
    ];
    assert!(
        run(&mut detector, &other_agent).is_empty(),
        "another agent is another group"
    );
    let alerts = run(
        &mut detector,
        &[
            fail(12, 8, "alice", "198.51.100.9", "agent-1"),
            fail(13, 9, "bob", "198.51.100.9", "agent-1"),
        ],
    );
    assert_eq!(
        group_keys(&alerts),
        vec!["SourceIp=198.51.100.9, AgentId=agent-1"]
    );
    assert!(
        alerts[0].summary.contains("Correlation under test"),
        "{}",
        alerts[0].summary
    );
}

#[test]
fn value_count_window_edge() {
    let users = |last: i64| {
        [(0, "a"), (30, "b"), (last, "c")]
            .iter()
            .enumerate()
            .map(|(n, (at, user))| fail(n, *at, user, "198.51.100.9", "agent-1"))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&mut detector(VALUE_COUNT), &users(60)).len(), 1);
    assert!(run(&mut detector(VALUE_COUNT), &users(61)).is_empty());
}

#[test]
fn value_count_survives_a_restart_mid_window() {
    let before = [
        fail(0, 0, "a", "198.51.100.9", "agent-1"),
        fail(1, 5, "b", "198.51.100.9", "agent-1"),
    ];
    let after = [fail(2, 10, "c", "198.51.100.9", "agent-1")];
    let (resumed, fresh) = across_restart(VALUE_COUNT, &before, &after);
    assert_eq!(resumed.len(), 1);
    assert!(fresh.is_empty());
}

// ---------------------------------------------------------------- temporal

const TEMPORAL: &str = "    type: temporal\n    rules: [ssh_fail_t, conn_t]\n    group-by: [AgentId]\n    timespan: 30s\n";

#[test]
fn temporal_fires_in_either_order_within_the_window() {
    let fail_then_connect = [
        fail(0, 0, "root", "203.0.113.1", "agent-1"),
        connect(1, 20, "198.51.100.1", 10, "agent-1"),
    ];
    let alerts = run(&mut detector(TEMPORAL), &fail_then_connect);
    assert_eq!(group_keys(&alerts), vec!["AgentId=agent-1"]);

    let connect_then_fail = [
        connect(0, 0, "198.51.100.1", 10, "agent-1"),
        fail(1, 20, "root", "203.0.113.1", "agent-1"),
    ];
    assert_eq!(run(&mut detector(TEMPORAL), &connect_then_fail).len(), 1);

    let two_agents = [
        fail(0, 0, "root", "203.0.113.1", "agent-1"),
        connect(1, 5, "198.51.100.1", 10, "agent-2"),
    ];
    assert!(run(&mut detector(TEMPORAL), &two_agents).is_empty());

    let only_failures = [
        fail(0, 0, "root", "203.0.113.1", "agent-1"),
        fail(1, 5, "root", "203.0.113.1", "agent-1"),
    ];
    assert!(run(&mut detector(TEMPORAL), &only_failures).is_empty());
}

#[test]
fn temporal_window_edge() {
    let pair = |gap: i64| {
        [
            fail(0, 0, "root", "203.0.113.1", "agent-1"),
            connect(1, gap, "198.51.100.1", 10, "agent-1"),
        ]
    };
    assert_eq!(run(&mut detector(TEMPORAL), &pair(30)).len(), 1);
    assert!(run(&mut detector(TEMPORAL), &pair(31)).is_empty());
}

#[test]
fn temporal_survives_a_restart_mid_window() {
    let before = [fail(0, 0, "root", "203.0.113.1", "agent-1")];
    let after = [connect(1, 10, "198.51.100.1", 10, "agent-1")];
    let (resumed, fresh) = across_restart(TEMPORAL, &before, &after);
    assert_eq!(resumed.len(), 1);
    assert!(fresh.is_empty());
}

// ---------------------------------------------------------------- temporal_ordered

const TEMPORAL_ORDERED: &str = "    type: temporal_ordered\n    rules: [ssh_fail_t, ssh_ok_t]\n    group-by: [SourceIp]\n    timespan: 60s\n";

#[test]
fn temporal_ordered_needs_the_order() {
    let in_order = [
        fail(0, 0, "root", "203.0.113.7", "agent-1"),
        accept(1, 10, "root", "203.0.113.7", "agent-1"),
    ];
    let alerts = run(&mut detector(TEMPORAL_ORDERED), &in_order);
    assert_eq!(group_keys(&alerts), vec!["SourceIp=203.0.113.7"]);

    let reversed = [
        accept(0, 0, "root", "203.0.113.7", "agent-1"),
        fail(1, 10, "root", "203.0.113.7", "agent-1"),
    ];
    assert!(run(&mut detector(TEMPORAL_ORDERED), &reversed).is_empty());

    let other_address = [
        fail(0, 0, "root", "203.0.113.7", "agent-1"),
        accept(1, 10, "root", "203.0.113.8", "agent-1"),
    ];
    assert!(run(&mut detector(TEMPORAL_ORDERED), &other_address).is_empty());
}

#[test]
fn temporal_ordered_window_edge() {
    let pair = |gap: i64| {
        [
            fail(0, 0, "root", "203.0.113.7", "agent-1"),
            accept(1, gap, "root", "203.0.113.7", "agent-1"),
        ]
    };
    assert_eq!(run(&mut detector(TEMPORAL_ORDERED), &pair(60)).len(), 1);
    assert!(run(&mut detector(TEMPORAL_ORDERED), &pair(61)).is_empty());
}

#[test]
fn temporal_ordered_survives_a_restart_mid_window() {
    let before = [fail(0, 0, "root", "203.0.113.7", "agent-1")];
    let after = [accept(1, 30, "root", "203.0.113.7", "agent-1")];
    let (resumed, fresh) = across_restart(TEMPORAL_ORDERED, &before, &after);
    assert_eq!(resumed.len(), 1);
    assert!(fresh.is_empty());
}

// ---------------------------------------------------------------- aliases

const ALIASED: &str = "    type: temporal_ordered\n    rules: [ssh_ok_t, conn_t]\n    aliases:\n        ip:\n            ssh_ok_t: SourceIp\n            conn_t: DestinationIp\n    group-by: [ip]\n    timespan: 60s\n";

#[test]
fn aliases_join_differently_named_fields() {
    // A login from an address, then a connection back to the same address.
    let same = [
        accept(0, 0, "ops", "198.51.100.5", "agent-1"),
        connect(1, 10, "198.51.100.5", 10, "agent-1"),
    ];
    let alerts = run(&mut detector(ALIASED), &same);
    assert_eq!(group_keys(&alerts), vec!["ip=198.51.100.5"]);

    let different = [
        accept(0, 0, "ops", "198.51.100.5", "agent-1"),
        connect(1, 10, "198.51.100.6", 10, "agent-1"),
    ];
    assert!(run(&mut detector(ALIASED), &different).is_empty());
}

// ---------------------------------------------------------------- value_sum / avg / median / percentile

const VALUE_SUM: &str = "    type: value_sum\n    rules: [conn_t]\n    group-by: [AgentId]\n    timespan: 60s\n    condition: {field: Bytes, gte: 1000}\n";
const VALUE_AVG: &str = "    type: value_avg\n    rules: [conn_t]\n    group-by: [AgentId]\n    timespan: 60s\n    condition: {field: Bytes, gte: 500}\n";
const VALUE_MEDIAN: &str = "    type: value_median\n    rules: [conn_t]\n    group-by: [AgentId]\n    timespan: 60s\n    condition: {field: Bytes, gte: 500}\n";
const VALUE_PERCENTILE: &str = "    type: value_percentile\n    rules: [conn_t]\n    group-by: [AgentId]\n    timespan: 60s\n    condition: {field: Bytes, percentile: 90, gte: 900}\n";

fn transfers(sizes: &[(i64, u64)]) -> Vec<Event> {
    sizes
        .iter()
        .enumerate()
        .map(|(n, (at, bytes))| connect(n, *at, "198.51.100.1", *bytes, "agent-1"))
        .collect()
}

#[test]
fn value_sum_adds_the_field_over_the_window() {
    assert!(run(&mut detector(VALUE_SUM), &transfers(&[(0, 400), (10, 500)])).is_empty());
    assert_eq!(
        run(
            &mut detector(VALUE_SUM),
            &transfers(&[(0, 400), (10, 500), (60, 100)])
        )
        .len(),
        1,
        "900 + 100 within 60 s (edge included)"
    );
    assert!(
        run(
            &mut detector(VALUE_SUM),
            &transfers(&[(0, 400), (10, 500), (61, 100)])
        )
        .is_empty(),
        "the first transfer left the window"
    );
}

#[test]
fn value_sum_survives_a_restart_mid_window() {
    let before = transfers(&[(0, 600)]);
    let after = vec![connect(1, 20, "198.51.100.1", 600, "agent-1")];
    let (resumed, fresh) = across_restart(VALUE_SUM, &before, &after);
    assert_eq!(resumed.len(), 1);
    assert!(fresh.is_empty());
}

#[test]
fn value_avg_median_and_percentile() {
    let small = transfers(&[(0, 100), (1, 200), (2, 300)]);
    let large = transfers(&[(0, 100), (1, 900), (2, 1000)]);
    for body in [VALUE_AVG, VALUE_MEDIAN, VALUE_PERCENTILE] {
        assert!(run(&mut detector(body), &small).is_empty(), "{body}");
        assert_eq!(run(&mut detector(body), &large).len(), 1, "{body}");
    }
}

#[test]
fn value_avg_survives_a_restart_mid_window() {
    let before = transfers(&[(0, 100)]);
    let after = vec![connect(1, 10, "198.51.100.1", 1500, "agent-1")];
    let (resumed, fresh) = across_restart(VALUE_AVG, &before, &after);
    assert_eq!(resumed.len(), 1, "average of 100 and 1500 is 800");
    // A fresh detector sees only 1500 (≥ 500) and fires too: the window shows
    // whether the transfer before the restart was kept.
    assert_eq!(resumed[0].event_ids, vec!["e-0", "e-1"]);
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].event_ids, vec!["e-1"]);
}
