//! Golden test: our rules over the committed mixed-event corpus
//! (`tests/corpus/mixed.jsonl`, ~5 000 login/file/network/process/status events
//! of six hosts with attacks woven in) give exactly the alerts in
//! `tests/corpus/mixed.expected.json`, and the same alerts however the events are
//! cut into batches, on a second run, and across a snapshot/restore mid-stream.
//! With SigmaHQ's Linux rules added, routed evaluation gives exactly the alerts of
//! evaluating every rule on every event.
//!
//! To regenerate both files deliberately (after changing a rule or the generator):
//! `SHAOBING_GOLDEN_UPDATE=1 cargo test -p shaobing-detect --test golden`, then
//! review the diff of `mixed.expected.json` before committing it.

mod support;

use std::collections::BTreeMap;
use std::fs;

use shaobing_detect::event_form::{event_json, parse_event_line};
use shaobing_detect::{Alert, Detector};
use shaobing_wire::v1::Event;

use support::mixed_corpus;

const UPDATE_ENV: &str = "SHAOBING_GOLDEN_UPDATE";

fn detector() -> Detector {
    let (detector, report) = Detector::new(support::our_config());
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    detector
}

/// Runs `events` in batches of `chunk`, keeping each alert's state at the end of
/// the batch that last touched it (as the collector's pipeline stores them).
fn run_chunked(detector: &mut Detector, events: &[Event], chunk: usize) -> Vec<Alert> {
    let mut stored: BTreeMap<String, Alert> = BTreeMap::new();
    for batch in events.chunks(chunk) {
        let mut latest: BTreeMap<String, Alert> = BTreeMap::new();
        for event in batch {
            for alert in detector.process(event) {
                latest.insert(alert.alert_id.clone(), alert);
            }
        }
        stored.extend(latest);
    }
    sorted(stored.into_values().collect())
}

fn sorted(mut alerts: Vec<Alert>) -> Vec<Alert> {
    alerts.sort_by(|a, b| {
        (
            a.first_time_unix_nano,
            &a.rule_id,
            &a.agent_id,
            &a.group_key,
        )
            .cmp(&(
                b.first_time_unix_nano,
                &b.rule_id,
                &b.agent_id,
                &b.group_key,
            ))
    });
    alerts
}

fn corpus_text(events: &[Event]) -> String {
    let mut text = String::new();
    for event in events {
        text.push_str(&event_json(event).to_string());
        text.push('\n');
    }
    text
}

fn read_corpus(text: &str) -> Vec<Event> {
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            parse_event_line(line, n + 1).unwrap_or_else(|e| panic!("line {}: {e}", n + 1))
        })
        .collect()
}

/// One line per alert, for readable failure messages.
fn outline(alerts: &[Alert]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} [{}] {} count={}",
                a.rule_title, a.agent_id, a.group_key, a.first_time_unix_nano, a.count
            )
        })
        .collect()
}

#[test]
fn mixed_corpus_gives_exactly_the_expected_alerts() {
    let dir = support::corpus_dir();
    let corpus_path = dir.join("mixed.jsonl");
    let expected_path = dir.join("mixed.expected.json");
    let generated = mixed_corpus::generate();
    assert!(generated.len() > 3000, "{} events", generated.len());

    if std::env::var_os(UPDATE_ENV).is_some() {
        fs::create_dir_all(&dir).expect("create tests/corpus");
        fs::write(&corpus_path, corpus_text(&generated)).expect("write corpus");
        let alerts = run_chunked(&mut detector(), &generated, 256);
        let json = serde_json::to_string_pretty(&alerts).expect("alerts json") + "\n";
        fs::write(&expected_path, json).expect("write expected alerts");
        eprintln!(
            "{UPDATE_ENV}: wrote {} events and {} alerts",
            generated.len(),
            alerts.len()
        );
    }

    let committed = fs::read_to_string(&corpus_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set {UPDATE_ENV}=1 to create it)",
            corpus_path.display()
        )
    });
    assert!(
        committed == corpus_text(&generated),
        "the generator no longer produces the committed corpus; regenerate with {UPDATE_ENV}=1"
    );
    let events = read_corpus(&committed);
    assert_eq!(events, generated, "JSON lines read back as the same events");

    let expected: Vec<Alert> = serde_json::from_str(
        &fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
    )
    .expect("expected alerts JSON");
    assert!(expected.len() >= 15, "{} expected alerts", expected.len());

    let actual = run_chunked(&mut detector(), &events, 256);
    assert_eq!(
        outline(&actual),
        outline(&expected),
        "alert set differs from {}",
        expected_path.display()
    );
    assert_eq!(actual, expected);

    // Stable: a second run, and other batch cuts, give the same alerts.
    for chunk in [1, 7, 1000, events.len()] {
        assert_eq!(
            run_chunked(&mut detector(), &events, chunk),
            expected,
            "batches of {chunk}"
        );
    }
}

#[test]
fn mixed_corpus_survives_a_restart_in_the_middle() {
    let events = mixed_corpus::generate();
    let whole = run_chunked(&mut detector(), &events, 100);

    // Stop after the brute force started (its first failures are at 600 s), keep
    // the state, and continue in a new detector.
    let cut = events
        .iter()
        .position(|e| e.time_unix_nano >= mixed_corpus::CORPUS_START_UNIX_NANO + 620_000_000_000)
        .expect("events after 620 s");
    let mut first = detector();
    let mut stored: BTreeMap<String, Alert> = run_chunked(&mut first, &events[..cut], 100)
        .into_iter()
        .map(|a| (a.alert_id.clone(), a))
        .collect();
    let snapshot = first.snapshot().expect("snapshot");
    drop(first);

    let mut second = detector();
    second.restore(&snapshot).expect("restore");
    for alert in run_chunked(&mut second, &events[cut..], 100) {
        stored.insert(alert.alert_id.clone(), alert);
    }
    let resumed = sorted(stored.into_values().collect());
    assert_eq!(outline(&resumed), outline(&whole));
    assert_eq!(resumed, whole);
}

#[test]
fn routing_gives_the_same_alerts_as_evaluating_every_rule() {
    // Our rules and all of SigmaHQ's Linux rules: routing by logsource must only
    // skip rules that cannot match.
    let events = mixed_corpus::generate();
    let run = |routing: shaobing_detect::Routing| {
        let (mut detector, report) = Detector::new(support::our_and_sigmahq_config());
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert!(report.loaded > 280, "{} rules", report.loaded);
        detector.set_routing(routing);
        run_chunked(&mut detector, &events, 500)
    };
    let routed = run(shaobing_detect::Routing::Routed);
    let naive = run(shaobing_detect::Routing::Naive);
    assert!(routed.len() >= 85, "{} alerts", routed.len());
    assert_eq!(outline(&routed), outline(&naive));
    assert_eq!(routed, naive);
}
