//! The benchmark workload: our rules plus every loadable SigmaHQ Linux rule, over
//! the committed mixed-event corpus (`tests/corpus/mixed.jsonl`: logins, sudo,
//! file changes, connections, DNS, processes, heartbeats and a few attacks),
//! repeated with shifted times so that windows keep moving forward.

#![allow(dead_code)]

#[path = "../../tests/support/mod.rs"]
mod support;

use shaobing_detect::event_form::parse_event_line;
use shaobing_detect::{Detector, LoadReport, Routing};
use shaobing_wire::v1::Event;

/// One hour: the corpus's span; each repetition starts an hour later.
const HOUR_NANOS: i64 = 3600 * 1_000_000_000;

/// A detector with our rules and SigmaHQ's, routed as asked.
pub fn detector(routing: Routing) -> (Detector, LoadReport) {
    let (mut detector, report) = Detector::new(support::our_and_sigmahq_config());
    detector.set_routing(routing);
    (detector, report)
}

/// The corpus events, in event-time order.
pub fn corpus() -> Vec<Event> {
    let path = support::corpus_dir().join("mixed.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(n, line)| parse_event_line(line, n + 1).expect("corpus line"))
        .collect()
}

/// At least `count` events: the corpus repeated, an hour later each time, with
/// fresh event ids.
pub fn stream(count: usize) -> Vec<Event> {
    let corpus = corpus();
    let mut events = Vec::with_capacity(count + corpus.len());
    let mut round = 0i64;
    while events.len() < count {
        for event in &corpus {
            let mut event = event.clone();
            event.time_unix_nano += round * HOUR_NANOS;
            event.event_id = format!("{}-r{round}", event.event_id);
            events.push(event);
        }
        round += 1;
    }
    events
}

/// A brute force under way: `count` SSH failures from one address against one
/// host, 100 a second (every one feeds four correlations of our rules).
pub fn burst(count: usize) -> Vec<Event> {
    let template = corpus()
        .into_iter()
        .find(|event| {
            event
                .raw
                .contains("Failed password for root from 203.0.113.7")
        })
        .expect("the corpus has the brute force");
    (0..count)
        .map(|n| {
            let mut event = template.clone();
            event.time_unix_nano += n as i64 * 10_000_000;
            event.event_id = format!("burst-{n}");
            event
        })
        .collect()
}
