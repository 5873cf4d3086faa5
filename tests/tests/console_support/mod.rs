//! Shared setup for the console tests: an in-process console over an embedded store,
//! accounts with known passwords for every role, and sample alerts and events.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shaobing_collector::console::{
    self, ConsoleConfig, ConsoleHandle, PasswordCost, Role, RuleSnapshot,
};
use shaobing_collector::metrics::Metrics;
use shaobing_collector::store::Store;
use shaobing_detect::{Alert, RuleInfo};
use shaobing_wire::v1::{Event, Host, LoginEvent, event::Body};

/// Password every test account gets.
pub const PASSWORD: &str = "Test-Passw0rd-1";
/// Rule id of the sample alerts.
pub const RULE_ID: &str = "6a1b1c2d-0000-4000-8000-00000000ssh1";

/// A running console and what the test needs to reach it.
pub struct TestConsole {
    pub runtime: tokio::runtime::Runtime,
    pub handle: Option<ConsoleHandle>,
    pub store: Store,
    pub url: String,
    pub dir: tempfile::TempDir,
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
        let rules = Arc::new(RuleSnapshot(vec![sample_rule()]));
        let handle = runtime
            .block_on(console::start(
                config,
                store.clone(),
                Arc::new(Metrics::default()),
                rules,
            ))
            .expect("console starts");
        let url = handle.url();
        TestConsole {
            runtime,
            handle: Some(handle),
            store,
            url,
            dir,
        }
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

/// The rule behind the sample alerts.
pub fn sample_rule() -> RuleInfo {
    RuleInfo {
        id: RULE_ID.to_owned(),
        title: "SSH 暴力破解".to_owned(),
        level: "high".to_owned(),
        status: "stable".to_owned(),
        kind: "correlation".to_owned(),
        logsource: String::new(),
        mlps: vec!["8.1.4.2".to_owned()],
        tags: vec![
            "attack.t1110".to_owned(),
            "attack.credential_access".to_owned(),
        ],
        origin: "rules/login/ssh_bruteforce.yml".to_owned(),
        description: "同一来源地址短时间内多次 SSH 登录失败".to_owned(),
    }
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
