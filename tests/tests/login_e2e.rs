//! Issue #3 acceptance with real programs: a Debian `sshd` in a network
//! namespace is attacked with real `ssh`/`sshpass` from another namespace
//! (failed passwords, an invalid user, then a successful login that runs
//! `sudo`), and real `useradd`, `chpasswd`, a refused `sudo`, `usermod -aG sudo`
//! and `su` run on a private copy of the host's accounts (see `shaobing_tests::login_host`). All of
//! them log through a private `rsyslogd` into the file the real agent follows;
//! the agent ships to a real collector storing into ClickHouse. The successful
//! login has a terminal (`ssh -tt`), so sshd also records it in the private
//! host's `/var/log/lastlog`, which the agent watches too. Every action
//! must land as the right login event, and the brute-force,
//! success-after-brute-force (per address and per account), new-account,
//! sudo-group, sudo-refusal and new-source rules must alert, and no line the
//! programs wrote may be left unrecognised. The collector starts from a saved
//! detection state in which the new-source rule has watched logins for 30 days
//! (past its learning period).
//! Needs root, openssh-server, openssh-client, sshpass, rsyslog, sudo, iproute2.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use shaobing_detect::Detector;
use shaobing_detect::event_form::parse_event_yaml;
use shaobing_tests::login_host::{PrivateHost, SshNetwork, missing_packages};
use shaobing_tests::{Agent, Collector, clickhouse_query, repo_root, unique_database, wait_for};

const USER: &str = "sbbob";
const PASSWORD: &str = "Sb-e2e-pw-7";
const INVALID_USER: &str = "nosuchuser";
const SSH_PORT: u16 = 2222;
const FAILURES: usize = 6;

/// One expectation on the stored login events: a SQL condition and the number
/// of rows it must match.
struct Expect {
    what: &'static str,
    condition: String,
    count: u64,
}

fn expectations(attacker: &str) -> Vec<Expect> {
    let e = |what, condition: String, count| Expect {
        what,
        condition,
        count,
    };
    vec![
        e(
            "useradd: new user",
            format!(
                "login_action = 'user_add' AND login_outcome = 'success' AND target_user = '{USER}' AND service = 'useradd' AND pid > 0"
            ),
            1,
        ),
        e(
            "useradd: new group",
            format!("login_action = 'group_add' AND group_name = '{USER}' AND service = 'useradd'"),
            1,
        ),
        e(
            "chpasswd: password set",
            format!(
                "login_action = 'passwd_change' AND target_user = '{USER}' AND service = 'chpasswd'"
            ),
            1,
        ),
        e(
            "usermod -aG sudo",
            format!(
                "login_action = 'group_mod' AND target_user = '{USER}' AND group_name = 'sudo' AND service = 'usermod' AND position(raw, 'shadow') = 0"
            ),
            1,
        ),
        e(
            "sshd: failed passwords",
            format!(
                "login_action = 'ssh_fail' AND login_outcome = 'failure' AND user = '{USER}' AND source_ip = '{attacker}' AND source_port > 0 AND auth_method = 'password' AND service = 'sshd'"
            ),
            FAILURES as u64,
        ),
        e(
            "sshd: PAM authentication failures",
            format!(
                "login_action = 'auth_failure' AND login_outcome = 'failure' AND user = '{USER}' AND source_ip = '{attacker}' AND service = 'sshd'"
            ),
            FAILURES as u64,
        ),
        e(
            "sshd: invalid user",
            format!(
                "login_action = 'invalid_user' AND login_outcome = 'failure' AND user = '{INVALID_USER}' AND source_ip = '{attacker}' AND source_port > 0"
            ),
            1,
        ),
        e(
            "sshd: failed password for the invalid user",
            format!(
                "login_action = 'ssh_fail' AND user = '{INVALID_USER}' AND source_ip = '{attacker}' AND auth_method = 'password'"
            ),
            1,
        ),
        e(
            "sshd: accepted password",
            format!(
                "login_action = 'ssh_accept' AND login_outcome = 'success' AND user = '{USER}' AND source_ip = '{attacker}' AND source_port > 0 AND auth_method = 'password' AND service = 'sshd'"
            ),
            1,
        ),
        e(
            "sshd: PAM session opened and closed",
            format!(
                "login_action IN ('session_open', 'session_close') AND user = '{USER}' AND service = 'sshd'"
            ),
            2,
        ),
        e(
            "sudo over ssh",
            format!(
                "login_action = 'sudo' AND login_outcome = 'success' AND user = '{USER}' AND target_user = 'root' AND command = '/usr/bin/id' AND service = 'sudo'"
            ),
            1,
        ),
        e(
            "sudo refused: not in sudoers",
            format!(
                "login_action = 'sudo' AND login_outcome = 'failure' AND user = '{USER}' AND target_user = 'root' AND command = '/usr/bin/id' AND position(raw, 'NOT in sudoers') > 0"
            ),
            1,
        ),
        e(
            "lastlog: the successful SSH login (with a terminal)",
            format!(
                "login_action = 'login' AND login_outcome = 'success' AND source = 'lastlog' AND user = '{USER}' AND source_ip = '{attacker}' AND tty LIKE 'pts/%' AND service = 'sshd' AND position(raw, 'lastlog login uid=') = 1"
            ),
            1,
        ),
        e(
            "su root → user (for the refused sudo, then on its own)",
            format!(
                "login_action = 'su' AND login_outcome = 'success' AND user = 'root' AND target_user = '{USER}' AND service = 'su'"
            ),
            2,
        ),
    ]
}

/// `SELECT count()` of login events in `db` matching `condition`.
fn count(db: &str, condition: &str) -> Option<u64> {
    clickhouse_query(&format!(
        "SELECT count() FROM {db}.events WHERE kind = 'login' AND {condition}"
    ))
    .ok()?
    .parse()
    .ok()
}

/// `ca init` for a collector in `dir`, plus the detection state of a collector
/// that has run our rules for 30 days: one successful login of another account
/// 30 days ago started the new-source rule's learning period, which is over.
fn collector_with_history(dir: &Path) {
    Collector::init_ca(dir).expect("ca init");
    let config = shaobing_collector::rules::read_rule_dirs(&[repo_root().join("rules")]).unwrap();
    let (mut detector, report) = Detector::new(config);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let month_ago = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    let event = parse_event_yaml(&format!(
        "time_unix_nano: {}\nlogin: {{action: ssh_accept, user: sbadmin, source_ip: 192.0.2.10, auth_method: publickey}}",
        month_ago.unix_timestamp_nanos()
    ))
    .unwrap();
    assert!(detector.process(&event).is_empty(), "learning, no alert");
    std::fs::write(
        shaobing_collector::detect_state::state_path(dir),
        detector.snapshot().unwrap(),
    )
    .unwrap();
}

/// Waits for `child` and returns whether it succeeded, with its output.
fn finish(child: Child) -> (bool, String) {
    match child.wait_with_output() {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(error) => (false, error.to_string()),
    }
}

#[test]
fn real_sshd_accounts_su_and_sudo_land_in_clickhouse_and_alert() {
    let missing = missing_packages();
    assert!(
        missing.is_empty(),
        "install the Debian packages {missing:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_login");
    collector_with_history(&dir.path().join("collector"));
    let collector = Collector::serve(&dir.path().join("collector"), Some(&db)).unwrap();
    let mut agent = Agent::configure(&dir.path().join("agent"), collector.data_port).unwrap();
    // Also watch the private host's lastlog, naming UIDs from its passwd.
    let host_dir = dir.path().join("host");
    let config_text = std::fs::read_to_string(&agent.config).unwrap().replace(
        "lastlog = \"\"",
        &format!(
            "lastlog = \"{}\"\npasswd = \"{}\"",
            PrivateHost::lastlog_path(&host_dir).display(),
            PrivateHost::passwd_path(&host_dir).display()
        ),
    );
    std::fs::write(&agent.config, config_text).unwrap();
    let out = agent
        .enroll(&collector, &collector.token().unwrap())
        .unwrap();
    assert!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.run().unwrap();

    let mut host = PrivateHost::start(&host_dir, &agent.auth_log)
        .expect("private host (needs root, util-linux, rsyslog)");
    let net = SshNetwork::create("l").expect("network namespaces (needs root, iproute2)");
    host.sshd(&net.server, &net.server_ip, SSH_PORT)
        .expect("sshd (openssh-server)");
    let attacker = net.attacker_ip.clone();

    // Accounts: a new user with a password; sudo refuses it (not in sudoers) until
    // it is added to the sudo group.
    host.sh(&format!(
        "useradd -m -s /bin/bash {USER} && echo '{USER}:{PASSWORD}' | chpasswd"
    ))
    .unwrap();
    let refused = host.sh(&format!(
        "su -s /bin/sh {USER} -c \"echo '{PASSWORD}' | sudo -S -k /usr/bin/id\""
    ));
    assert!(
        refused.is_err(),
        "sudo before the group grant must be refused"
    );
    host.sh(&format!("usermod -aG sudo {USER}")).unwrap();
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .contains(&format!("\n{USER}:")),
        "the real host's accounts are untouched"
    );

    // Brute force: wrong passwords, all at once (each one costs sshd's 2 s PAM delay).
    let attempts: Vec<Child> = (0..FAILURES)
        .map(|_| {
            net.ssh(USER, "wrong-password", SSH_PORT, "true")
                .spawn()
                .unwrap()
        })
        .collect();
    for attempt in attempts {
        let (ok, text) = finish(attempt);
        assert!(!ok, "a wrong password must be refused: {text}");
    }
    let (ok, text) = finish(
        net.ssh(INVALID_USER, "whatever", SSH_PORT, "true")
            .spawn()
            .unwrap(),
    );
    assert!(!ok, "an unknown user must be refused: {text}");
    // The right password: in (with a terminal, so sshd writes lastlog), and
    // escalate with sudo.
    let (ok, text) = finish(
        net.ssh_tty(
            USER,
            PASSWORD,
            SSH_PORT,
            &format!("echo '{PASSWORD}' | sudo -S -k /usr/bin/id"),
        )
        .spawn()
        .unwrap(),
    );
    assert!(
        ok && text.contains("uid=0(root)"),
        "login and sudo must work: {text}\nsshd: {}\nauth log:\n{}",
        host.sshd_log(),
        std::fs::read_to_string(&agent.auth_log).unwrap_or_default()
    );
    // su from root to the new user.
    let out = host.sh(&format!("su -s /bin/sh {USER} -c id")).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(USER));

    // Every action is stored as the right login event.
    let expected = expectations(&attacker);
    let all_there = wait_for(Duration::from_secs(30), || {
        expected
            .iter()
            .all(|e| count(&db, &e.condition) == Some(e.count))
            .then_some(())
    });
    if all_there.is_none() {
        let report: Vec<String> = expected
            .iter()
            .map(|e| {
                format!(
                    "{}: expected {}, stored {:?}",
                    e.what,
                    e.count,
                    count(&db, &e.condition)
                )
            })
            .collect();
        panic!(
            "login events in ClickHouse:\n{}\nstored:\n{}\nauth log:\n{}\nagent:\n{}",
            report.join("\n"),
            clickhouse_query(&format!(
                "SELECT login_action, login_outcome, user, target_user, source_ip, source_port, auth_method, service, group_name, command FROM {db}.events WHERE kind = 'login' ORDER BY time_ns"
            ))
            .unwrap_or_default(),
            std::fs::read_to_string(&agent.auth_log).unwrap_or_default(),
            agent.log_text()
        );
    }
    eprintln!(
        "stored login events by action: {}",
        clickhouse_query(&format!(
            "SELECT arrayStringConcat(groupArray(concat(a, '=', toString(c))), ' ') FROM (SELECT login_action AS a, count() AS c FROM {db}.events WHERE kind = 'login' GROUP BY a ORDER BY a)"
        ))
        .unwrap_or_default()
    );
    // The operator's view agrees: `shaobing-collector events --kind login --field ...`.
    let source = format!("source_ip={attacker}");
    let cli = |action: &str| {
        collector
            .count_events(&["--kind", "login", "--field", action, "--field", &source])
            .unwrap()
    };
    assert_eq!(
        (
            cli("login_action=ssh_fail"),
            cli("login_action=invalid_user"),
            cli("login_action=ssh_accept")
        ),
        (FAILURES as u64 + 1, 1, 1),
        "events --count by action from the attacker"
    );
    // Stamps come from the log lines (rsyslog's RFC 3339), close to now.
    let skew = clickhouse_query(&format!(
        "SELECT max(abs(toInt64(time) - toInt64(now()))) FROM {db}.events WHERE kind = 'login'"
    ))
    .unwrap();
    assert!(
        skew.parse::<i64>().unwrap() < 600,
        "event times within 10 minutes of now: {skew}"
    );
    // Nothing stored twice.
    let ids = clickhouse_query(&format!(
        "SELECT count() = uniqExact(event_id) FROM {db}.events WHERE kind = 'login'"
    ))
    .unwrap();
    assert_eq!(ids, "1", "event ids are unique");

    // Every line these programs wrote was parsed or deliberately ignored: the only
    // unrecognised lines are the private host's own readiness markers (`sbtest:`).
    let markers = std::fs::read_to_string(&agent.auth_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" sbtest: "))
        .count() as u64;
    let unrecognised = format!(
        "SELECT max(counter_values[indexOf(counter_names, 'login.unrecognised')]) FROM {db}.events WHERE kind = 'status'"
    );
    let classified = wait_for(Duration::from_secs(15), || {
        (clickhouse_query(&unrecognised).ok()?.parse::<u64>().ok()? == markers).then_some(())
    });
    assert!(
        classified.is_some(),
        "login.unrecognised = {:?}, expected {markers} (the readiness markers); auth log:\n{}",
        clickhouse_query(&unrecognised),
        std::fs::read_to_string(&agent.auth_log).unwrap_or_default()
    );

    // The four rules of the acceptance alert, the sudo refusal, the per-account
    // variant of success-after-failures, and the new source (the attacker's
    // address was never seen for this account).
    let rules: [(&str, &str); 7] = [
        ("SSH brute force", attacker.as_str()),
        ("SSH login success after brute force", attacker.as_str()),
        ("SSH login success after failures on the same account", USER),
        (
            "SSH login from a source not seen for the user in 30 days",
            attacker.as_str(),
        ),
        ("Local account created", USER),
        ("Account added to an administrators group", USER),
        ("Sudo failure or user not in sudoers", USER),
    ];
    let alerted = wait_for(Duration::from_secs(30), || {
        let alerts = collector.alerts_json().ok()?;
        rules
            .iter()
            .all(|(title, key)| {
                alerts.iter().any(|a| {
                    a["rule_title"] == *title && a["group_key"].as_str().unwrap_or("").contains(key)
                })
            })
            .then_some(alerts)
    });
    let alerts = alerted.unwrap_or_else(|| {
        panic!(
            "expected alerts {rules:?}, got:\n{:#?}",
            collector.alerts_json().unwrap_or_default()
        )
    });
    let brute = alerts
        .iter()
        .find(|a| a["rule_title"] == "SSH brute force")
        .unwrap();
    assert!(
        brute["count"].as_u64().unwrap_or(0) >= 5,
        "brute force counts the failures: {brute}"
    );
    let takeover = alerts
        .iter()
        .find(|a| a["rule_title"] == "SSH login success after brute force")
        .unwrap();
    assert_eq!(takeover["level"], "critical");
    let count_titled = |title: &str| alerts.iter().filter(|a| a["rule_title"] == title).count();
    assert_eq!(
        (
            count_titled("SSH login success after failures on the same account"),
            count_titled("SSH failures for one account"),
            count_titled("SSH login from a source not seen for the user in 30 days"),
        ),
        (1, 0, 1),
        "one alert each; the per-account failure count is a silent building block"
    );
    let new_source = alerts
        .iter()
        .find(|a| a["rule_title"] == "SSH login from a source not seen for the user in 30 days")
        .unwrap();
    assert_eq!(
        new_source["group_key"],
        format!("User={USER}, SourceIp={attacker}"),
        "{new_source}"
    );
    eprintln!(
        "alerts: {:?}",
        alerts
            .iter()
            .map(|a| format!("{} [{}]", a["rule_title"], a["group_key"]))
            .collect::<Vec<_>>()
    );

    drop(net);
    drop(host);
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}
