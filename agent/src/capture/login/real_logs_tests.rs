//! Replays logs recorded on Debian 12 (rsyslog RFC 3339 auth.log, an `sshd -E`
//! file and the btmp sshd wrote) while real tools ran: useradd, usermod -aG,
//! gpasswd, chpasswd, chage, groupmod/groupdel, su, sudo refusals, and ssh logins
//! (good password, bad password, unknown user, forged `from` in the user name).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::replay::{ReplaySource, replay};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/capture/login/testdata")
        .join(name)
}

fn replayed(source: ReplaySource, name: &str) -> (Vec<Value>, super::replay::ReplaySummary) {
    let mut out = Vec::new();
    let summary = replay(source, &[testdata(name)], &mut out).unwrap();
    let events = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    (events, summary)
}

fn by_action(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts
            .entry(e["login"]["action"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    counts
}

fn count_lines(name: &str, needle: &str) -> usize {
    std::fs::read_to_string(testdata(name))
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[test]
fn debian12_rsyslog_auth_log() {
    let name = "debian12_rsyslog_auth.log";
    let (events, summary) = replayed(ReplaySource::Auth, name);
    assert_eq!(summary.malformed, 0);
    let actions = by_action(&events);
    assert_eq!(
        actions["ssh_accept"],
        count_lines(name, "Accepted password")
    );
    assert_eq!(actions["ssh_fail"], count_lines(name, "Failed password"));
    assert_eq!(actions["invalid_user"], count_lines(name, ": Invalid user"));
    assert_eq!(
        actions["auth_failure"],
        count_lines(name, "authentication failure;")
    );
    assert_eq!(actions["session_open"], count_lines(name, "session opened"));
    assert_eq!(
        actions["group_mod"], 4,
        "usermod -aG, gpasswd -a/-d, groupmod -n"
    );
    assert_eq!(actions["user_add"], 1);
    assert_eq!(actions["sudo"], 2);
    for e in &events {
        let login = &e["login"];
        assert_ne!(login["service"], "", "{e}");
        assert!(e["time_unix_nano"].as_i64().unwrap() > 1_700_000_000_000_000_000);
        if login["user"]
            .as_str()
            .unwrap()
            .starts_with("root from 6.6.6.6")
        {
            assert_eq!(
                login["source_ip"], "127.0.0.1",
                "forged source must not win: {e}"
            );
        }
    }
    let sudo_refusal = events
        .iter()
        .find(|e| e["login"]["action"] == "sudo")
        .unwrap();
    assert_eq!(sudo_refusal["login"]["outcome"], "failure");
    assert_eq!(sudo_refusal["login"]["command"], "/usr/bin/id");
    let membership = events
        .iter()
        .find(|e| e["login"]["service"] == "usermod")
        .unwrap();
    assert_eq!(
        (
            membership["login"]["target_user"].as_str(),
            membership["login"]["group"].as_str()
        ),
        (Some("sbtest"), Some("sbdev"))
    );
}

#[test]
fn openssh_sshd_e_file_without_stamps() {
    let (events, summary) = replayed(ReplaySource::Auth, "openssh_sshd_E.log");
    assert_eq!(summary.events as usize, events.len());
    assert_eq!(events.len(), 11, "every line but `Server listening`");
    assert_eq!((summary.ignored, summary.unrecognised), (1, 0));
    let actions = by_action(&events);
    assert_eq!(
        (
            actions["ssh_accept"],
            actions["ssh_fail"],
            actions["invalid_user"]
        ),
        (1, 3, 2)
    );
    assert!(
        events
            .iter()
            .all(|e| !e["raw"].as_str().unwrap().ends_with('\r'))
    );
}

#[test]
fn debian12_btmp_written_by_sshd() {
    let (events, summary) = replayed(ReplaySource::Btmp, "debian12_btmp");
    assert_eq!(summary.malformed, 0);
    assert_eq!(events.len(), 10);
    assert!(
        events
            .iter()
            .all(|e| e["login"]["action"] == "login" && e["login"]["outcome"] == "failure")
    );
    assert!(
        events
            .iter()
            .any(|e| e["login"]["user"] == "nosuchuser" && e["login"]["source_ip"] == "127.0.0.1")
    );
}

#[test]
fn debian12_journalctl_json_output() {
    // `journalctl -o json SYSLOG_FACILITY=4 SYSLOG_FACILITY=10` from a real journald fed
    // through its syslog socket, one message with invalid UTF-8 (a byte array in JSON).
    let (events, summary) = replayed(ReplaySource::Journald, "debian12_journalctl.json");
    assert_eq!((summary.events, summary.malformed), (3, 0));
    let actions = by_action(&events);
    assert_eq!(
        (
            actions["sudo"],
            actions["ssh_fail"],
            actions["invalid_user"]
        ),
        (1, 1, 1)
    );
    let invalid = events
        .iter()
        .find(|e| e["login"]["action"] == "invalid_user")
        .unwrap();
    assert_eq!(invalid["login"]["user"], "\u{fffd}\u{fffd}");
    assert_eq!(invalid["login"]["source_ip"], "192.0.2.78");
    assert!(
        events
            .iter()
            .all(|e| e["source"] == "journald" && e["time_unix_nano"].as_i64().unwrap() > 0)
    );
}
