//! Prints detection throughput in events/s on one core: our rules + every
//! loadable SigmaHQ Linux rule over the mixed-event corpus, naive (every rule on
//! every event) vs routed, and their ratio.
//!
//! `cargo bench -p shaobing-detect --bench detection_rate` (release build).
//! `SHAOBING_BENCH_EVENTS` sets the number of events per run (default 200 000);
//! `SHAOBING_BENCH_ONLY=routed` skips the naive run (for profiling).

#![allow(clippy::print_stdout)]

mod workload;

use std::time::Instant;

use shaobing_detect::Routing;

/// Best of three runs, in events/s (one thread: one core).
fn rate(routing: Routing, events: &[shaobing_wire::v1::Event]) -> (f64, usize) {
    let mut best = 0.0f64;
    let mut alerts = 0;
    for _ in 0..3 {
        let (mut detector, _) = workload::detector(routing);
        let started = Instant::now();
        let mut raised = 0usize;
        for event in events {
            raised += detector.process(event).len();
        }
        let secs = started.elapsed().as_secs_f64();
        best = best.max(events.len() as f64 / secs);
        alerts = raised;
    }
    (best, alerts)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let count: usize = std::env::var("SHAOBING_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let (detector, report) = workload::detector(Routing::Routed);
    println!(
        "rules: {} loaded ({} detection, {} correlation, {} filter), {} rejected",
        report.loaded,
        report.detection_rules,
        report.correlation_rules,
        report.filter_rules,
        report.rejected.len()
    );
    drop(detector);
    let events = workload::stream(count);
    println!("events: {} (mixed corpus, repeated)", events.len());

    let (routed, routed_alerts) = rate(Routing::Routed, &events);
    println!("routed: {routed:>10.0} events/s per core ({routed_alerts} alert updates)");
    if std::env::var("SHAOBING_BENCH_ONLY").is_ok_and(|only| only == "routed") {
        return;
    }
    let (naive, naive_alerts) = rate(Routing::Naive, &events);
    println!("naive : {naive:>10.0} events/s per core ({naive_alerts} alert updates)");
    println!("routed / naive: {:.1}x", routed / naive);
    assert_eq!(
        routed_alerts, naive_alerts,
        "routing must not change the alerts"
    );
}
