//! Correlation and suppression with controlled time: the event timestamps are the
//! only clock.

use std::fs;
use std::path::Path;

use shaobing_detect::event_form::BASE_TIME_UNIX_NANO;
use shaobing_detect::{Alert, DetectConfig, Detector, RuleSource};
use shaobing_wire::v1::{Event, Host, LoginAction, LoginEvent, Outcome, event::Body};

const SECOND: i64 = 1_000_000_000;
const BRUTE_FORCE_ID: &str = "4c0a6539-b9a5-4998-81aa-a02d75defd39";
const FAILURE_ID: &str = "541b0034-14cb-4c2a-b72a-89273b5ed328";

fn rule(path: &str) -> RuleSource {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rules")
        .join(path);
    RuleSource {
        origin: path.to_string(),
        yaml: fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display())),
    }
}

fn detector() -> Detector {
    let config = DetectConfig {
        sources: vec![
            rule("login/ssh_password_failure.yml"),
            rule("login/ssh_brute_force.yml"),
        ],
        mlps_yaml: Some(
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/mlps.yml"))
                .expect("mlps.yml"),
        ),
        ..DetectConfig::default()
    };
    let (detector, report) = Detector::new(config);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    detector
}

fn failure(seq: usize, at_secs: i64, source_ip: &str) -> Event {
    Event {
        event_id: format!("e-{seq}"),
        time_unix_nano: BASE_TIME_UNIX_NANO + at_secs * SECOND,
        host: Some(Host {
            hostname: "web-1".to_string(),
            agent_id: "agent-1".to_string(),
            ..Host::default()
        }),
        source: "auth_log".to_string(),
        raw: format!("sshd[1]: Failed password for root from {source_ip} port 4000 ssh2"),
        body: Some(Body::Login(LoginEvent {
            action: LoginAction::SshFail as i32,
            outcome: Outcome::Failure as i32,
            user: "root".to_string(),
            source_ip: source_ip.to_string(),
            service: "sshd".to_string(),
            ..LoginEvent::default()
        })),
    }
}

/// Processes events; returns the latest state of every brute-force alert.
fn brute_force_alerts(detector: &mut Detector, events: &[Event]) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = Vec::new();
    for event in events {
        for alert in detector.process(event) {
            if alert.rule_id != BRUTE_FORCE_ID {
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

fn failures_at(times: &[i64], source_ip: &str) -> Vec<Event> {
    times
        .iter()
        .enumerate()
        .map(|(seq, at)| failure(seq, *at, source_ip))
        .collect()
}

#[test]
fn five_failures_in_a_minute_raise_one_alert() {
    let mut detector = detector();
    let alerts = brute_force_alerts(
        &mut detector,
        &failures_at(&[0, 10, 20, 30, 40], "203.0.113.7"),
    );
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert.kind, "correlation");
    assert_eq!(alert.level, "high");
    assert_eq!(alert.group_key, "SourceIp=203.0.113.7");
    assert_eq!(alert.count, 5);
    assert_eq!(alert.event_ids, vec!["e-0", "e-1", "e-2", "e-3", "e-4"]);
    assert_eq!(
        alert.first_time_unix_nano, BASE_TIME_UNIX_NANO,
        "the first failure in the window"
    );
    assert_eq!(alert.last_time_unix_nano, BASE_TIME_UNIX_NANO + 40 * SECOND);
    assert_eq!(alert.agent_id, "agent-1");
    assert_eq!(alert.hostname, "web-1");
    assert!(alert.tags.contains(&"attack.t1110.001".to_string()));
    assert!(
        alert.mlps.contains(&"8.1.4.1 b)".to_string()),
        "{:?}",
        alert.mlps
    );
    assert_eq!(
        alert.summary,
        "SSH brute force: 5 failures from 203.0.113.7, at least 5 within 60s"
    );
}

#[test]
fn four_failures_raise_nothing() {
    let mut detector = detector();
    let alerts = brute_force_alerts(&mut detector, &failures_at(&[0, 1, 2, 3], "203.0.113.7"));
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn failures_spread_over_more_than_a_minute_raise_nothing() {
    let mut detector = detector();
    let alerts = brute_force_alerts(
        &mut detector,
        &failures_at(&[0, 20, 40, 60, 80, 100], "203.0.113.7"),
    );
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn window_edge_is_inclusive_at_sixty_seconds() {
    let mut detector = detector();
    let at_edge = brute_force_alerts(
        &mut detector,
        &failures_at(&[0, 15, 30, 45, 60], "203.0.113.7"),
    );
    assert_eq!(
        at_edge.len(),
        1,
        "first and fifth failure exactly 60s apart"
    );

    let mut detector = self::detector();
    let past_edge = brute_force_alerts(
        &mut detector,
        &failures_at(&[0, 15, 30, 45, 61], "203.0.113.7"),
    );
    assert!(
        past_edge.is_empty(),
        "61s apart must not fire: {past_edge:?}"
    );
}

#[test]
fn running_attack_is_one_alert_with_growing_count() {
    let mut detector = detector();
    let times: Vec<i64> = (0..30).map(|n| n * 2).collect();
    let alerts = brute_force_alerts(&mut detector, &failures_at(&times, "203.0.113.7"));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].count, 30);
    assert_eq!(
        alerts[0].last_time_unix_nano,
        BASE_TIME_UNIX_NANO + 58 * SECOND
    );
    assert!(
        alerts[0]
            .summary
            .starts_with("SSH brute force: 30 failures")
    );
}

#[test]
fn each_update_is_returned_under_the_same_id() {
    let mut detector = detector();
    let events = failures_at(&[0, 1, 2, 3, 4, 5, 6], "203.0.113.7");
    let mut ids = Vec::new();
    let mut counts = Vec::new();
    for event in &events {
        for alert in detector.process(event) {
            if alert.rule_id == BRUTE_FORCE_ID {
                ids.push(alert.alert_id);
                counts.push(alert.count);
            }
        }
    }
    assert_eq!(counts, vec![5, 6, 7]);
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

#[test]
fn attack_after_the_suppression_window_is_a_new_alert() {
    let mut detector = detector();
    let mut events = failures_at(&[0, 1, 2, 3, 4], "203.0.113.7");
    events.extend(failures_at(&[700, 701, 702, 703, 704], "203.0.113.7"));
    let alerts = brute_force_alerts(&mut detector, &events);
    assert_eq!(alerts.len(), 2);
    assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
}

#[test]
fn reprocessing_the_same_events_gives_the_same_alert_ids() {
    let events = failures_at(&[0, 5, 10, 15, 20, 25], "203.0.113.7");
    let first = brute_force_alerts(&mut detector(), &events);
    let second = brute_force_alerts(&mut detector(), &events);
    assert_eq!(first, second);
    assert_eq!(first.len(), 1);
}

#[test]
fn failures_also_raise_a_low_alert_per_address() {
    let mut detector = detector();
    let mut low = Vec::new();
    for event in failures_at(&[0, 1, 2], "203.0.113.7") {
        low.extend(
            detector
                .process(&event)
                .into_iter()
                .filter(|a| a.rule_id == FAILURE_ID),
        );
    }
    assert_eq!(low.len(), 3, "one update per failure");
    assert!(low.iter().all(|a| a.alert_id == low[0].alert_id));
    assert_eq!(low[2].count, 3);
    assert_eq!(low[2].level, "low");
    assert_eq!(low[2].group_key, "SourceIp=203.0.113.7");
}

#[test]
fn snapshot_and_restore_continue_the_window() {
    let mut before = detector();
    brute_force_alerts(&mut before, &failures_at(&[0, 1, 2], "203.0.113.7"));
    let snapshot = before.snapshot().expect("snapshot");

    let mut after = detector();
    after.restore(&snapshot).expect("restore");
    let events: Vec<Event> = [3, 4]
        .iter()
        .enumerate()
        .map(|(n, at)| failure(10 + n, *at, "203.0.113.7"))
        .collect();
    let alerts = brute_force_alerts(&mut after, &events);
    assert_eq!(
        alerts.len(),
        1,
        "3 failures before the restart + 2 after = 5"
    );

    let mut fresh = detector();
    assert!(brute_force_alerts(&mut fresh, &events).is_empty());
}

#[test]
fn restore_rejects_garbage_and_other_versions() {
    let mut detector = detector();
    assert!(detector.restore("not json").is_err());
    let error = detector
        .restore(r#"{"version":99,"correlation":{"windows":{},"last_alert":{},"event_buffers":{},"event_ref_buffers":{}},"alerts":{"open":{}},"watermark_unix_nano":0}"#)
        .expect_err("version 99");
    assert!(error.to_string().contains("version 99"), "{error}");
}

#[test]
fn reset_forgets_windows_and_open_alerts() {
    let mut detector = detector();
    assert_eq!(
        brute_force_alerts(&mut detector, &failures_at(&[0, 1, 2, 3, 4], "203.0.113.7")).len(),
        1
    );
    assert!(detector.open_alerts() > 0);
    detector.reset();
    assert_eq!(detector.open_alerts(), 0);
    let after: Vec<Event> = [5, 6]
        .iter()
        .enumerate()
        .map(|(n, at)| failure(20 + n, *at, "203.0.113.7"))
        .collect();
    assert!(
        brute_force_alerts(&mut detector, &after).is_empty(),
        "the 5 earlier failures are forgotten"
    );
}

#[test]
fn a_late_backlog_keeps_its_windows_while_newer_events_arrive() {
    let mut detector = detector();
    // A host that was offline ships failures from 30 minutes ago, interleaved with
    // a busy host's current events (enough to trigger several eviction sweeps).
    let mut alerts = Vec::new();
    for n in 0..5 {
        let late = failure(n, n as i64, "203.0.113.7");
        alerts.extend(brute_force_alerts(&mut detector, &[late]));
        let current: Vec<Event> = (0..1500)
            .map(|k| {
                failure(
                    10_000 + n * 1500 + k,
                    1800 + k as i64 / 100,
                    &format!("198.51.100.{}", k % 200),
                )
            })
            .collect();
        brute_force_alerts(&mut detector, &current);
    }
    assert!(
        alerts.iter().any(|a| a.group_key == "SourceIp=203.0.113.7"),
        "the backlog's 5 failures within 5 seconds still make a brute force"
    );
}

#[test]
fn eviction_drops_state_well_behind_the_latest_event() {
    let mut detector = detector();
    brute_force_alerts(&mut detector, &failures_at(&[0, 1, 2], "203.0.113.7"));
    // Two hours later (beyond the one-hour grace) the old window is gone.
    assert_eq!(detector.correlation_windows(), 1);
    brute_force_alerts(&mut detector, &[failure(50, 7200, "198.51.100.1")]);
    assert_eq!(detector.evicted_windows(), 0);
    detector.evict_expired();
    assert_eq!(
        detector.evicted_windows(),
        1,
        "the window of 203.0.113.7 expired"
    );
    assert_eq!(detector.correlation_windows(), 1);
    assert_eq!(
        detector.open_alerts(),
        1,
        "only the alert of 198.51.100.1 is still open"
    );
    let later: Vec<Event> = [7201, 7202]
        .iter()
        .enumerate()
        .map(|(n, at)| failure(60 + n, *at, "203.0.113.7"))
        .collect();
    assert!(
        brute_force_alerts(&mut detector, &later).is_empty(),
        "the failures two hours ago no longer count"
    );
}
