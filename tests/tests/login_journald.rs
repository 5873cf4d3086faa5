//! The journald login source with a real `systemd-journald` (see
//! `shaobing_tests::login_host::PrivateHost::start_journald`): the real agent,
//! inside the private host, follows `journalctl -o json` while real `useradd`,
//! `usermod -aG sudo`, `su` and a refused `sudo` log to it; it is killed -9 and
//! restarted while more is logged, and resumes from its cursor. ClickHouse must
//! hold each event once, with `source = 'journald'`, and the account rules alert.
//! Needs root, systemd (for systemd-journald and journalctl, not as PID 1), sudo.

use std::path::Path;
use std::time::Duration;

use shaobing_tests::login_host::PrivateHost;
use shaobing_tests::{Agent, Collector, Daemon, bin, clickhouse_query, unique_database, wait_for};

const USER: &str = "sbjrnl";

/// The agent inside the private host (so that its `journalctl` reads the private journal).
fn run_agent(host: &PrivateHost, agent: &Agent, log: &str) -> Daemon {
    let mut cmd = host.command(bin("shaobing-agent").unwrap().to_str().unwrap());
    cmd.arg("--config")
        .arg(&agent.config)
        .arg("run")
        .env("RUST_LOG", "info");
    Daemon::spawn(cmd, agent.dir.join(log)).unwrap()
}

fn count(db: &str, condition: &str) -> Option<u64> {
    clickhouse_query(&format!(
        "SELECT count() FROM {db}.events WHERE kind = 'login' AND source = 'journald' AND {condition}"
    ))
    .ok()?
    .parse()
    .ok()
}

#[test]
fn journald_source_follows_a_real_journal_across_a_kill() {
    assert!(
        Path::new("/lib/systemd/systemd-journald").exists(),
        "install the Debian package systemd (journald runs by hand, not as PID 1)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_login_jrnl");
    let collector = Collector::start(&dir.path().join("collector"), Some(&db)).unwrap();
    let agent = Agent::configure(&dir.path().join("agent"), collector.data_port).unwrap();
    // Journald only: no auth log file.
    let config = std::fs::read_to_string(&agent.config).unwrap();
    let auth_logs = format!("auth_logs = [\"{}\"]", agent.auth_log.display());
    assert!(config.contains(&auth_logs) && config.contains("journald = false"));
    std::fs::write(
        &agent.config,
        config
            .replace(&auth_logs, "auth_logs = []")
            .replace("journald = false", "journald = \"on\""),
    )
    .unwrap();
    let out = agent
        .enroll(&collector, &collector.token().unwrap())
        .unwrap();
    assert!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let host = PrivateHost::start_journald(&dir.path().join("host"))
        .expect("private host with systemd-journald (needs root, systemd)");
    // Logged before the agent first starts: read from the journal's start.
    host.sh(&format!("useradd -m -s /bin/sh {USER}")).unwrap();
    let mut daemon = run_agent(&host, &agent, "agent-1.log");
    let first = wait_for(Duration::from_secs(30), || {
        (count(
            &db,
            &format!("login_action = 'user_add' AND target_user = '{USER}'"),
        ) == Some(1))
        .then_some(())
    });
    assert!(
        first.is_some(),
        "user_add from the journal\nagent:\n{}",
        daemon.log_text()
    );
    host.sh(&format!("usermod -aG sudo {USER}")).unwrap();
    // Killed -9, then more is logged while it is down: resumed from the cursor.
    daemon.kill();
    let refused = host.sh(&format!(
        "su -s /bin/sh {USER} -c 'echo x | sudo -S -k /usr/bin/id'"
    ));
    assert!(
        refused.is_err(),
        "sudo without the right password is refused"
    );
    let daemon = run_agent(&host, &agent, "agent-2.log");

    let expected = [
        (
            format!("login_action = 'user_add' AND target_user = '{USER}'"),
            1,
        ),
        (
            format!(
                "login_action = 'group_mod' AND target_user = '{USER}' AND group_name = 'sudo'"
            ),
            1,
        ),
        (
            format!("login_action = 'su' AND user = 'root' AND target_user = '{USER}'"),
            1,
        ),
        (
            format!(
                "login_action = 'auth_failure' AND service = 'sudo' AND target_user = '{USER}'"
            ),
            1,
        ),
    ];
    let all = wait_for(Duration::from_secs(30), || {
        expected
            .iter()
            .all(|(condition, n)| count(&db, condition) == Some(*n))
            .then_some(())
    });
    assert!(
        all.is_some(),
        "journald events: {:?}\nstored:\n{}\nagent:\n{}",
        expected
            .iter()
            .map(|(c, n)| (c.as_str(), *n, count(&db, c)))
            .collect::<Vec<_>>(),
        clickhouse_query(&format!(
            "SELECT login_action, login_outcome, user, target_user, service, raw FROM {db}.events WHERE kind = 'login'"
        ))
        .unwrap_or_default(),
        daemon.log_text()
    );
    // Nothing read twice across the kill.
    let rows = clickhouse_query(&format!(
        "SELECT count(), uniqExact(raw, time_ns) FROM {db}.events WHERE kind = 'login'"
    ))
    .unwrap();
    let (total, unique) = rows.split_once('\t').unwrap();
    assert_eq!(total, unique, "no journal entry stored twice");
    eprintln!("journald: {total} login events stored once each across a kill -9");

    let alerted = wait_for(Duration::from_secs(20), || {
        let alerts = collector.alerts_json().ok()?;
        [
            "Local account created",
            "Account added to an administrators group",
        ]
        .iter()
        .all(|title| {
            alerts.iter().any(|a| {
                a["rule_title"] == *title && a["group_key"].as_str().unwrap_or("").contains(USER)
            })
        })
        .then_some(())
    });
    assert!(
        alerted.is_some(),
        "account alerts from journald events: {:?}",
        collector.alerts_json()
    );
    drop(daemon);
    drop(host);
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}
