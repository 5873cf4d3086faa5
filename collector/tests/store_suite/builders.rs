//! Events and alerts the store suite writes.

use shaobing_collector::store::{
    AlertRecord, AlertStatus, EventQuery, EventRecord, Store, WriteOutcome,
};
use shaobing_wire::v1::{
    AgentStatus, CheckResult, CheckStatus, Direction, Event, FileEvent, FileOp, Host, LoginAction,
    LoginEvent, NetAction, NetworkEvent, Outcome, ProcessEvent, event::Body,
};

/// 2024-05-01T00:00:00Z in unix nanoseconds: all test times are offsets from it.
pub const BASE_NS: i64 = 1_714_521_600_000_000_000;
pub const SECOND: i64 = 1_000_000_000;
pub const DAY: i64 = 86_400 * SECOND;

pub fn host(name: &str) -> Option<Host> {
    Some(Host {
        hostname: name.to_owned(),
        agent_id: String::new(),
        ips: vec!["10.0.0.5".to_owned(), "fe80::1".to_owned()],
        os: "Debian GNU/Linux 12".to_owned(),
    })
}

pub fn event(id: &str, hostname: &str, time: i64, body: Body) -> Event {
    Event {
        event_id: id.to_owned(),
        time_unix_nano: time,
        host: host(hostname),
        source: "test".to_owned(),
        raw: format!("raw line of {id}"),
        body: Some(body),
    }
}

pub fn ssh_fail(id: &str, hostname: &str, time: i64, source_ip: &str) -> Event {
    event(
        id,
        hostname,
        time,
        Body::Login(LoginEvent {
            action: LoginAction::SshFail as i32,
            outcome: Outcome::Failure as i32,
            user: "root".to_owned(),
            source_ip: source_ip.to_owned(),
            source_port: 50_022,
            auth_method: "password".to_owned(),
            service: "sshd".to_owned(),
            pid: 4242,
            ..LoginEvent::default()
        }),
    )
}

/// One event of every kind, every field set to a non-default value.
pub fn every_kind(hostname: &str) -> Vec<Event> {
    vec![
        event(
            "1-0",
            hostname,
            BASE_NS + SECOND,
            Body::Login(LoginEvent {
                action: LoginAction::Sudo as i32,
                outcome: Outcome::Success as i32,
                user: "alice".to_owned(),
                target_user: "root".to_owned(),
                source_ip: "192.0.2.7".to_owned(),
                source_port: 40_000,
                auth_method: "password".to_owned(),
                service: "sudo".to_owned(),
                tty: "pts/0".to_owned(),
                command: "/usr/bin/id -u".to_owned(),
                pid: 1234,
                group: "sudo".to_owned(),
            }),
        ),
        event(
            "1-1",
            hostname,
            BASE_NS + 2 * SECOND,
            Body::File(FileEvent {
                op: FileOp::Rename as i32,
                path: "/etc/passwd".to_owned(),
                old_path: "/etc/passwd+".to_owned(),
                size: 2_345,
                mode: 0o100_644,
                uid: 0,
                gid: 42,
                owner: "root".to_owned(),
                mtime_unix_nano: BASE_NS - DAY,
                hash_before: "aa".repeat(32),
                hash_after: "bb".repeat(32),
                watched_root: "/etc".to_owned(),
                pid: 999,
                exe: "/usr/sbin/useradd".to_owned(),
                cmdline: "useradd mallory".to_owned(),
                content_sample: "root:x:0:0:root:/root:/bin/bash\n".to_owned(),
            }),
        ),
        event(
            "1-2",
            hostname,
            BASE_NS + 3 * SECOND,
            Body::Network(NetworkEvent {
                action: NetAction::DnsQuery as i32,
                transport: "udp".to_owned(),
                src_ip: "10.0.0.5".to_owned(),
                src_port: 53_535,
                dst_ip: "10.0.0.1".to_owned(),
                dst_port: 53,
                direction: Direction::Outbound as i32,
                bytes: 5_000_000_000,
                packets: 3,
                duration_ms: 12,
                dns_query: "evil.example".to_owned(),
                dns_type: "A".to_owned(),
                dns_answers: vec!["203.0.113.9".to_owned(), "203.0.113.10".to_owned()],
                dns_rcode: "NOERROR".to_owned(),
                pid: 777,
                exe: "/usr/bin/curl".to_owned(),
                user: "www-data".to_owned(),
            }),
        ),
        event(
            "1-3",
            hostname,
            BASE_NS + 4 * SECOND,
            Body::Check(CheckResult {
                check_id: "password.max_days".to_owned(),
                title: "口令有效期 ≤ 90 天".to_owned(),
                status: CheckStatus::Fail as i32,
                observed: "99999".to_owned(),
                expected: "<= 90".to_owned(),
            }),
        ),
        event(
            "1-4",
            hostname,
            BASE_NS + 5 * SECOND,
            Body::Status(AgentStatus {
                version: "0.1.0".to_owned(),
                spool_depth: 12,
                spool_bytes: 4096,
                dropped_total: 3,
                cpu_percent: 1.25,
                rss_bytes: 30_000_000,
                os: "Debian GNU/Linux 12".to_owned(),
                counters: [
                    ("parse_errors.auth_log".to_owned(), 2),
                    ("drops".to_owned(), 1),
                ]
                .into_iter()
                .collect(),
            }),
        ),
        event(
            "1-5",
            hostname,
            BASE_NS + 6 * SECOND,
            Body::Process(ProcessEvent {
                pid: 31_337,
                ppid: 1,
                exe: "/tmp/x".to_owned(),
                cmdline: "/tmp/x --connect 203.0.113.9".to_owned(),
                user: "nobody".to_owned(),
                uid: 65_534,
                cwd: "/tmp".to_owned(),
                parent_exe: "/usr/sbin/cron".to_owned(),
            }),
        ),
        Event {
            event_id: "1-6".to_owned(),
            time_unix_nano: BASE_NS + 7 * SECOND,
            host: host(hostname),
            source: "auth_log".to_owned(),
            raw: "an unparsed line".to_owned(),
            body: None,
        },
    ]
}

/// What the store returns for an event: the authenticated agent id in its host.
pub fn as_stored(mut event: Event, agent_id: &str) -> Event {
    let mut host = event.host.take().unwrap_or_default();
    host.agent_id = agent_id.to_owned();
    event.host = Some(host);
    event
}

pub fn alert(
    id: &str,
    hostname: &str,
    level: &str,
    first: i64,
    last: i64,
    count: u64,
) -> AlertRecord {
    AlertRecord {
        alert_id: id.to_owned(),
        rule_id: format!("rule-{level}"),
        rule_title: format!("SSH brute force ({level})"),
        level: level.to_owned(),
        kind: "correlation".to_owned(),
        tags: vec![
            "attack.credential_access".to_owned(),
            "attack.t1110".to_owned(),
        ],
        mlps: vec!["8.1.4.2".to_owned()],
        agent_id: format!("agent-{hostname}"),
        hostname: hostname.to_owned(),
        first_time_unix_nano: first,
        last_time_unix_nano: last,
        count,
        group_key: "source_ip=198.51.100.4".to_owned(),
        event_ids: (0..count).map(|i| format!("7-{i}")).collect(),
        summary: format!("{count} failed SSH logins from 198.51.100.4 on {hostname}"),
        status: AlertStatus::Open,
        assignee: String::new(),
        note: String::new(),
    }
}

/// The `shaobing_detect::Alert` that detection would emit for `r`.
pub fn detect_alert(r: &AlertRecord) -> shaobing_detect::Alert {
    shaobing_detect::Alert {
        alert_id: r.alert_id.clone(),
        rule_id: r.rule_id.clone(),
        rule_title: r.rule_title.clone(),
        level: r.level.clone(),
        kind: r.kind.clone(),
        tags: r.tags.clone(),
        mlps: r.mlps.clone(),
        agent_id: r.agent_id.clone(),
        hostname: r.hostname.clone(),
        first_time_unix_nano: r.first_time_unix_nano,
        last_time_unix_nano: r.last_time_unix_nano,
        count: r.count,
        group_key: r.group_key.clone(),
        event_ids: r.event_ids.clone(),
        summary: r.summary.clone(),
    }
}

pub async fn upsert(store: &Store, records: &[AlertRecord]) {
    let alerts: Vec<_> = records.iter().map(detect_alert).collect();
    store.upsert_alerts(&alerts).await.expect("upsert alerts");
}

pub async fn write(store: &Store, agent: &str, seq: u64, events: &[Event]) -> WriteOutcome {
    store
        .write_batch(agent, seq, events, &[])
        .await
        .expect("write batch")
}

pub fn ids(events: &[EventRecord]) -> Vec<String> {
    events.iter().map(|e| e.event.event_id.clone()).collect()
}

pub fn query_all() -> EventQuery {
    EventQuery {
        limit: Some(1_000),
        ..EventQuery::default()
    }
}
