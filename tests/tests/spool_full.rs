//! Spool full: while the collector is down, an agent with a small spool cap
//! drops its oldest batches and counts them; when the collector returns, the
//! drop count arrives with the next heartbeat and raises an alert, and stored +
//! dropped accounts for every line written (nothing silently lost).

use std::time::Duration;

use shaobing_tests::{Agent, Collector, free_port, ssh_failures, wait_for};

const LINES: usize = 2_000;

#[test]
fn full_spool_drops_oldest_counts_them_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("c");
    let enrolling = Collector::start(&cdir, None).unwrap();
    let data_port = free_port();
    let mut agent = Agent::configure_with(
        &dir.path().join("a"),
        data_port,
        "spool_max_bytes = 40000\nbatch_max_events = 50\nheartbeat_secs = 2",
    )
    .unwrap();
    let out = agent
        .enroll(&enrolling, &enrolling.token().unwrap())
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enroll_port = enrolling.enroll_port;
    drop(enrolling); // the collector is down from here on

    agent.run().unwrap();
    let lines = ssh_failures("192.0.2.77", LINES);
    agent.append(&lines).unwrap();
    std::thread::sleep(Duration::from_secs(4));

    let collector = Collector::serve_on(&cdir, None, "127.0.0.1", data_port, enroll_port).unwrap();
    let alert = wait_for(Duration::from_secs(60), || {
        collector
            .alerts_json()
            .ok()?
            .into_iter()
            .find(|a| a["rule_id"] == "6d2b9f4e-8a1c-4e7b-b3d5-2c9f0a7e4d11")
    });
    let alert = alert.unwrap_or_else(|| {
        panic!(
            "drop alert expected\ncollector:\n{}\nagent:\n{}",
            collector.daemon.log_text(),
            agent.log_text()
        )
    });
    assert_eq!(alert["level"], "high");

    // Every line is either stored or counted as dropped.
    let dropped = wait_for(Duration::from_secs(20), || {
        let out = collector
            .cli(&["events", "--kind", "status", "--limit", "1000"])
            .ok()?;
        let max = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|e| e["body"]["Status"]["dropped_total"].as_u64())
            .max()?;
        let stored = collector
            .count_events(&["--kind", "login", "--limit", "10000"])
            .ok()?;
        (stored as usize + max as usize >= LINES).then_some((stored, max))
    });
    let (stored, dropped) = dropped.expect("stored + dropped reaches the lines written");
    eprintln!("written {LINES}, stored {stored}, dropped (reported) {dropped}");
    assert!(dropped > 0, "the small spool must have dropped something");
    assert!(stored > 0, "the newest batches survive");
    // Dropped heartbeats are counted too (at most a few while the collector was down).
    assert!(
        stored as usize + dropped as usize <= LINES + 5,
        "no double counting: stored {stored} + dropped {dropped}"
    );
}
