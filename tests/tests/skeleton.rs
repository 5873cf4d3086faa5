//! Walking-skeleton acceptance, with real processes: a real collector, a real
//! agent over mutual TLS, a real log file, and a real ClickHouse server (or the
//! embedded store). Each test owns its directories, ports and database.

use std::time::Duration;

use shaobing_tests::{Agent, Collector, clickhouse_query, ssh_failures, unique_database, wait_for};

const ATTACKER: &str = "198.51.100.23";

/// Starts a collector (ClickHouse when `db` is given) and an enrolled, running agent.
fn start_pair(dir: &std::path::Path, db: Option<&str>) -> (Collector, Agent) {
    let collector = Collector::start(&dir.join("collector"), db).expect("collector starts");
    let mut agent =
        Agent::configure(&dir.join("agent"), collector.data_port).expect("agent config");
    let token = collector.token().expect("token");
    let out = agent.enroll(&collector, &token).expect("enroll runs");
    assert!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.run().expect("agent starts");
    (collector, agent)
}

fn attack_lines() -> Vec<String> {
    let mut lines = ssh_failures(ATTACKER, 3);
    // A malformed line in the middle: counted and skipped, the agent keeps going.
    // (a broken timestamp: the header cannot be trusted, so not even the sshd text is used).
    lines.push(format!(
        "2026-19-45T25:61:00Z web-01 sshd[1]: Failed password for root from {ATTACKER} port 1 ssh2\u{1}\u{7f}"
    ));
    lines.extend(ssh_failures(ATTACKER, 3));
    lines
}

#[test]
fn brute_force_lands_in_clickhouse_with_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_e2e");
    let (collector, agent) = start_pair(dir.path(), Some(&db));
    agent.append(&attack_lines()).unwrap();

    let logins = format!(
        "SELECT count() FROM {db}.events WHERE kind = 'login' AND source_ip = '{ATTACKER}' AND login_action = 'ssh_fail'"
    );
    let alerts = format!(
        "SELECT count() FROM (SELECT alert_id FROM {db}.alerts WHERE kind = 'correlation' AND position(group_key, '{ATTACKER}') > 0 GROUP BY alert_id)"
    );
    let landed = wait_for(Duration::from_secs(10), || {
        let n = clickhouse_query(&logins).ok()?;
        let a = clickhouse_query(&alerts).ok()?;
        (n == "6" && a == "1").then_some(())
    });
    assert!(
        landed.is_some(),
        "within 10 s ClickHouse must hold 6 login events and 1 brute-force alert; got events={:?} alerts={:?}\ncollector log:\n{}\nagent log:\n{}",
        clickhouse_query(&logins),
        clickhouse_query(&alerts),
        collector.daemon.log_text(),
        agent.log_text()
    );

    // The malformed line was counted by the agent and reported in a heartbeat.
    let malformed = format!(
        "SELECT max(counter_values[indexOf(counter_names, 'login.malformed')]) FROM {db}.events WHERE kind = 'status'"
    );
    let counted = wait_for(Duration::from_secs(10), || {
        let v = clickhouse_query(&malformed).ok()?;
        (v.parse::<u64>().ok()? >= 1).then_some(())
    });
    assert!(
        counted.is_some(),
        "heartbeat reports login.malformed >= 1: {:?}",
        clickhouse_query(&malformed)
    );

    // The alert is visible through the CLI too, naming the attacker.
    let cli_alerts = collector.alerts_json().unwrap();
    let brute: Vec<_> = cli_alerts
        .iter()
        .filter(|a| {
            a["kind"] == "correlation" && a["group_key"].as_str().unwrap_or("").contains(ATTACKER)
        })
        .collect();
    assert_eq!(brute.len(), 1, "one brute-force alert: {cli_alerts:?}");
    assert!(brute[0]["count"].as_u64().unwrap_or(0) >= 5);
    assert!(
        !brute[0]["mlps"].as_array().unwrap().is_empty(),
        "等保 clauses attached"
    );

    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}

#[test]
fn brute_force_lands_in_embedded_store_with_one_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, agent) = start_pair(dir.path(), None);
    agent.append(&attack_lines()).unwrap();

    let found = wait_for(Duration::from_secs(10), || {
        let alerts = collector.alerts_json().ok()?;
        let brute: Vec<_> = alerts
            .iter()
            .filter(|a| {
                a["kind"] == "correlation"
                    && a["group_key"].as_str().unwrap_or("").contains(ATTACKER)
            })
            .cloned()
            .collect();
        let failures = alerts
            .iter()
            .filter(|a| {
                a["kind"] == "detection" && a["summary"].as_str().unwrap_or("").contains(ATTACKER)
            })
            .count();
        (brute.len() == 1 && failures >= 1).then_some(brute)
    });
    let brute = found.unwrap_or_else(|| {
        panic!(
            "brute-force alert expected in the embedded store\ncollector:\n{}\nagent:\n{}",
            collector.daemon.log_text(),
            agent.log_text()
        )
    });
    assert!(brute[0]["count"].as_u64().unwrap_or(0) >= 5);
    assert_eq!(brute[0]["level"], "high");
}
