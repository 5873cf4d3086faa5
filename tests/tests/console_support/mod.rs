//! Shared setup for the console tests: an in-process console over an embedded store
//! and a real rule set (a detection pipeline over rule files written into a temporary
//! directory, with the collector's rule state beside it), accounts with known
//! passwords for every role, and sample alerts and events.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shaobing_collector::console::{self, ConsoleConfig, ConsoleHandle, PasswordCost, Role};
use shaobing_collector::metrics::Metrics;
use shaobing_collector::pipeline::{Accepted, Pipeline};
use shaobing_collector::rule_admin::RuleAdmin;
use shaobing_collector::rules::RuleSet;
use shaobing_collector::rules_reload::RuleWatch;
use shaobing_collector::store::{AlertQuery, AlertRecord, Store};
use shaobing_detect::{Alert, Detector};
use shaobing_wire::v1::{Batch, Event, Host, LoginEvent, event::Body};

/// Password every test account gets.
pub const PASSWORD: &str = "Test-Passw0rd-1";
/// Rule id of the sample alerts: a correlation over [`FAIL_RULE_ID`].
pub const RULE_ID: &str = "6a1b1c2d-0000-4000-8000-00000000ssh1";
/// The detection rule the sample correlation counts (no alerts of its own).
pub const FAIL_RULE_ID: &str = "6a1b1c2d-0000-4000-8000-00000000fa11";
/// A detection rule whose tests file has a failing case (on purpose).
pub const ROOT_RULE_ID: &str = "6a1b1c2d-0000-4000-8000-0000000000r0";
/// A detection rule without a tests file.
pub const SUDO_RULE_ID: &str = "6a1b1c2d-0000-4000-8000-00000000sud0";

const FAIL_RULE: &str = r#"title: SSH 登录失败
id: 6a1b1c2d-0000-4000-8000-00000000fa11
name: ssh_fail_test
description: 一次 SSH 认证失败（暴力破解关联规则的组成部分）
logsource: {product: linux, service: auth}
detection:
    selection: {Action: ssh_fail}
    condition: selection
level: low
custom_attributes:
    shaobing.group_by: [SourceIp]
"#;
const FAIL_TESTS: &str = r#"match:
  - login: {action: ssh_fail, user: root, source_ip: 203.0.113.7}
no_match:
  - login: {action: ssh_accept, user: root, source_ip: 203.0.113.7}
"#;
const BRUTE_RULE: &str = r#"title: SSH 暴力破解
id: 6a1b1c2d-0000-4000-8000-00000000ssh1
description: 同一来源地址短时间内多次 SSH 登录失败
tags: [attack.t1110, attack.credential_access]
correlation:
    type: event_count
    rules: [ssh_fail_test]
    group-by: [SourceIp]
    timespan: 60s
    condition: {gte: 5}
level: high
"#;
const BRUTE_TESTS: &str = r#"sequences:
  - name: five failures within 60 seconds
    events:
      - {at: 0, repeat: 5, every: 5s, login: {action: ssh_fail, user: root, source_ip: 203.0.113.7}}
    alerts: 1
  - name: four failures are not enough
    events:
      - {at: 0, repeat: 4, every: 5s, login: {action: ssh_fail, user: root, source_ip: 203.0.113.7}}
    alerts: 0
"#;
const ROOT_RULE: &str = r#"title: root 通过 SSH 登录
id: 6a1b1c2d-0000-4000-8000-0000000000r0
logsource: {product: linux, service: auth}
detection:
    selection: {Action: ssh_accept, User: root}
    condition: selection
level: high
"#;
const ROOT_TESTS: &str = r#"match:
  - login: {action: ssh_accept, user: root, source_ip: 198.51.100.3}
no_match:
  - login: {action: ssh_accept, user: alice, source_ip: 198.51.100.3}
  # Wrong on purpose: root logging in does match; the console shows why it failed.
  - login: {action: ssh_accept, user: root, source_ip: 198.51.100.4}
"#;
const SUDO_RULE: &str = r#"title: sudo 认证失败
id: 6a1b1c2d-0000-4000-8000-00000000sud0
logsource: {product: linux, service: auth}
detection:
    selection: {Action: sudo, Outcome: failure}
    condition: selection
level: medium
"#;
const MLPS: &str = "rules:\n  6a1b1c2d-0000-4000-8000-00000000ssh1: [8.1.4.2]\n";

/// Writes the test rule set into `dir`.
pub fn write_rules(dir: &Path) {
    let login = dir.join("login");
    std::fs::create_dir_all(&login).expect("rules dir");
    for (name, text) in [
        ("ssh_fail.yml", FAIL_RULE),
        ("ssh_fail.tests.yml", FAIL_TESTS),
        ("ssh_bruteforce.yml", BRUTE_RULE),
        ("ssh_bruteforce.tests.yml", BRUTE_TESTS),
        ("root_login.yml", ROOT_RULE),
        ("root_login.tests.yml", ROOT_TESTS),
        ("sudo_failure.yml", SUDO_RULE),
    ] {
        std::fs::write(login.join(name), text).expect("write rule");
    }
    std::fs::write(dir.join("mlps.yml"), MLPS).expect("write mlps");
}

/// A running console and what the test needs to reach it.
pub struct TestConsole {
    pub runtime: tokio::runtime::Runtime,
    pub handle: Option<ConsoleHandle>,
    pub store: Store,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// The detection pipeline whose rules the console manages.
    pub pipeline: Arc<Pipeline>,
    /// The collector's data directory (rules.local/, rules-state.json).
    pub data_dir: PathBuf,
}

impl TestConsole {
    /// Starts a console; `tune` adjusts the configuration (idle timeout, lockout...).
    pub fn start(tune: impl FnOnce(&mut ConsoleConfig)) -> TestConsole {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let store = runtime
            .block_on(Store::open_embedded(&dir.path().join("shaobing.db")))
            .expect("store");
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let mut config = ConsoleConfig::new(listen, dir.path().join("console"));
        config.password_cost = PasswordCost::for_tests();
        config.notify_interval = Duration::from_millis(300);
        tune(&mut config);
        let rules_dir = dir.path().join("rules");
        write_rules(&rules_dir);
        let data_dir = dir.path().join("collector");
        let rule_set = RuleSet::with_data_dir(vec![rules_dir], data_dir.clone());
        let (detector, report) = Detector::new(rule_set.read().expect("read rules"));
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        let metrics = Arc::new(Metrics::default());
        let pipeline = runtime
            .block_on(async { Arc::new(Pipeline::new(store.clone(), detector, metrics.clone())) });
        let watch = Arc::new(Mutex::new(RuleWatch::new(rule_set, &report)));
        let rules = Arc::new(RuleAdmin::new(pipeline.clone(), watch));
        let handle = runtime
            .block_on(console::start(config, store.clone(), metrics, rules))
            .expect("console starts");
        let url = handle.url();
        TestConsole {
            runtime,
            handle: Some(handle),
            store,
            url,
            dir,
            pipeline,
            data_dir,
        }
    }

    /// Sends events through the real pipeline (detection, batching writer, store) as
    /// one batch of `agent_id`; returns when the batch is stored.
    pub fn ingest(&self, agent_id: &str, events: Vec<Event>) {
        let batch = Batch {
            agent_id: agent_id.to_owned(),
            seq: next_seq(),
            events,
        };
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        self.runtime.block_on(async {
            match self.pipeline.accept(agent_id, batch).await.expect("accept") {
                Accepted::Writing(in_flight) => {
                    self.pipeline
                        .complete(agent_id, &peer, in_flight)
                        .await
                        .expect("stored");
                }
                Accepted::Ack(ack) => panic!("batch not written: {ack:?}"),
            }
        });
    }

    /// Stored alerts of `rule_id` whose group key is `group_key`.
    pub fn alerts_of(&self, rule_id: &str, group_key: &str) -> Vec<AlertRecord> {
        self.runtime
            .block_on(self.store.alerts(&AlertQuery {
                rule_id: Some(rule_id.to_owned()),
                ..AlertQuery::default()
            }))
            .expect("alerts")
            .into_iter()
            .filter(|a| a.group_key == group_key)
            .collect()
    }

    /// The running console.
    pub fn handle(&self) -> &ConsoleHandle {
        self.handle.as_ref().expect("console running")
    }

    /// Creates an account with [`PASSWORD`] (already changed, so no forced change).
    pub fn add_user(&self, username: &str, role: Role) {
        let db = &self.handle().state.db;
        self.runtime.block_on(async {
            db.create_user(
                username,
                username,
                role,
                "test",
                PasswordCost::for_tests(),
                1,
            )
            .await
            .expect("create user");
            db.change_password(username, PASSWORD, PasswordCost::for_tests())
                .await
                .expect("set password");
        });
    }

    /// One account per role: sys, sec, aud, comp.
    pub fn add_role_users(&self) {
        self.add_user("sys", Role::Sysadmin);
        self.add_user("sec", Role::Secadmin);
        self.add_user("aud", Role::Auditor);
        self.add_user("comp", Role::Compliance);
    }

    /// Stores an alert (and its matching events).
    pub fn insert_alert(&self, alert: &Alert) {
        let events = sample_events(alert);
        self.runtime.block_on(async {
            self.store
                .write_batch(
                    &alert.agent_id,
                    next_seq(),
                    &events,
                    std::slice::from_ref(alert),
                )
                .await
                .expect("write batch");
        });
    }

    /// Audit actions recorded so far (newest first).
    pub fn audit_actions(&self) -> Vec<(String, String, String)> {
        self.runtime
            .block_on(
                self.store
                    .audit_log(&shaobing_collector::store::AuditQuery {
                        limit: Some(1000),
                        ..Default::default()
                    }),
            )
            .expect("audit log")
            .into_iter()
            .map(|e| (e.actor, e.action, e.detail))
            .collect()
    }
}

impl Drop for TestConsole {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

fn next_seq() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// `count` sshd failures from `ip` on `host`, one second apart, ending now.
pub fn failures(host: &str, ip: &str, user: &str, count: i64) -> Vec<Event> {
    let now = shaobing_wire::now_unix_nano();
    (0..count)
        .map(|i| Event {
            event_id: format!("{host}-{ip}-{user}-{}-{i}", next_seq()),
            time_unix_nano: now - (count - i) * 1_000_000_000,
            host: Some(Host {
                hostname: host.to_owned(),
                agent_id: format!("agent-{host}"),
                ..Default::default()
            }),
            source: "auth_log".to_owned(),
            raw: format!("sshd[4242]: Failed password for {user} from {ip} port 5{i}022 ssh2"),
            body: Some(Body::Login(LoginEvent {
                action: shaobing_wire::v1::LoginAction::SshFail as i32,
                user: user.to_owned(),
                source_ip: ip.to_owned(),
                ..Default::default()
            })),
        })
        .collect()
}

/// An alert raised `seconds_ago` seconds ago by `ip` on `host`.
pub fn sample_alert(id: &str, host: &str, ip: &str, level: &str, seconds_ago: i64) -> Alert {
    let now = shaobing_wire::now_unix_nano();
    let t = now - seconds_ago * 1_000_000_000;
    Alert {
        alert_id: id.to_owned(),
        rule_id: RULE_ID.to_owned(),
        rule_title: "SSH 暴力破解".to_owned(),
        level: level.to_owned(),
        kind: "correlation".to_owned(),
        tags: vec!["attack.t1110".to_owned()],
        mlps: vec!["8.1.4.2".to_owned()],
        agent_id: format!("agent-{host}"),
        hostname: host.to_owned(),
        first_time_unix_nano: t - 5_000_000_000,
        last_time_unix_nano: t,
        count: 6,
        group_key: format!("SourceIp={ip}"),
        event_ids: (0..3).map(|i| format!("{id}-ev{i}")).collect(),
        summary: format!("{ip} 在 60 秒内 SSH 登录失败 6 次"),
    }
}

/// The events an alert points at: sshd failures with raw lines.
pub fn sample_events(alert: &Alert) -> Vec<Event> {
    let ip = alert.group_key.trim_start_matches("SourceIp=");
    alert
        .event_ids
        .iter()
        .enumerate()
        .map(|(i, id)| Event {
            event_id: id.clone(),
            time_unix_nano: alert.first_time_unix_nano + i as i64 * 1_000_000_000,
            host: Some(Host {
                hostname: alert.hostname.clone(),
                agent_id: alert.agent_id.clone(),
                ..Default::default()
            }),
            source: "auth_log".to_owned(),
            raw: format!("sshd[4242]: Failed password for root from {ip} port 5{i}022 ssh2"),
            body: Some(Body::Login(LoginEvent {
                action: shaobing_wire::v1::LoginAction::SshFail as i32,
                user: "root".to_owned(),
                source_ip: ip.to_owned(),
                ..Default::default()
            })),
        })
        .collect()
}
