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

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`):
/// on a shared machine, wall time also counts the time other processes held the
/// core, CPU time does not.
fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Best of three runs: (events per CPU-second, events per wall-second, alert updates).
fn rate(routing: Routing, events: &[shaobing_wire::v1::Event]) -> (f64, f64, usize) {
    let (mut best_cpu, mut best_wall) = (0.0f64, 0.0f64);
    let mut alerts = 0;
    for _ in 0..3 {
        let (mut detector, _) = workload::detector(routing);
        let cpu_start = thread_cpu_nanos();
        let started = Instant::now();
        let mut raised = 0usize;
        for event in events {
            raised += detector.process(event).len();
        }
        let wall = started.elapsed().as_secs_f64();
        let cpu = match (cpu_start, thread_cpu_nanos()) {
            (Some(start), Some(end)) if end > start => (end - start) as f64 / 1e9,
            _ => wall,
        };
        best_cpu = best_cpu.max(events.len() as f64 / cpu);
        best_wall = best_wall.max(events.len() as f64 / wall);
        alerts = raised;
    }
    (best_cpu, best_wall, alerts)
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

    let (routed, routed_wall, routed_alerts) = rate(Routing::Routed, &events);
    println!(
        "routed: {routed:>10.0} events/s per core (CPU time; {routed_wall:.0}/s wall clock; {routed_alerts} alert updates)"
    );
    let burst = workload::burst(events.len() / 4);
    let (burst_rate, burst_wall, burst_alerts) = rate(Routing::Routed, &burst);
    println!(
        "routed, one SSH brute force ({} failures from one address): {burst_rate:.0} events/s per core (CPU time; {burst_wall:.0}/s wall clock; {burst_alerts} alert updates)",
        burst.len()
    );
    if std::env::var("SHAOBING_BENCH_ONLY").is_ok_and(|only| only == "routed") {
        return;
    }
    let (naive, naive_wall, naive_alerts) = rate(Routing::Naive, &events);
    println!(
        "naive : {naive:>10.0} events/s per core (CPU time; {naive_wall:.0}/s wall clock; {naive_alerts} alert updates)"
    );
    println!("routed / naive: {:.1}x", routed / naive);
    assert_eq!(
        routed_alerts, naive_alerts,
        "routing must not change the alerts"
    );
}
