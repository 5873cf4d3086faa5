//! Retention is enforced by the running collector, not only by the store API: data older
//! than the command line's `--retention-*-days` is removed at start (and hourly), data
//! inside the window is untouched, and the runs are counted on `/metrics`. On ClickHouse
//! 18.16 (real server) and on the embedded store.

use std::path::Path;
use std::time::Duration;

use shaobing_collector::store::{
    AlertQuery, AuditEntry, AuditQuery, ClickHouseOptions, EventQuery, RetentionPolicy, Store,
};
use shaobing_detect::Alert;
use shaobing_tests::{Collector, clickhouse_query, clickhouse_url, unique_database, wait_for};
use shaobing_wire::v1::event::Body;
use shaobing_wire::v1::{Event, Host, LoginAction, LoginEvent, Outcome};

const DAY: i64 = 86_400 * 1_000_000_000;

fn now_ns() -> i64 {
    shaobing_wire::now_unix_nano()
}

fn login(id: &str, time: i64) -> Event {
    Event {
        event_id: id.to_owned(),
        time_unix_nano: time,
        host: Some(Host {
            hostname: "web-01".to_owned(),
            agent_id: "agent-retention".to_owned(),
            ips: vec!["10.0.0.5".to_owned()],
            os: "Debian GNU/Linux 12".to_owned(),
        }),
        source: "auth_log:/var/log/auth.log".to_owned(),
        raw: format!("sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2 ({id})"),
        body: Some(Body::Login(LoginEvent {
            action: LoginAction::SshFail as i32,
            outcome: Outcome::Failure as i32,
            user: "root".to_owned(),
            source_ip: "198.51.100.7".to_owned(),
            service: "sshd".to_owned(),
            ..LoginEvent::default()
        })),
    }
}

fn alert(id: &str, time: i64) -> Alert {
    Alert {
        alert_id: id.to_owned(),
        rule_id: "rule-retention".to_owned(),
        rule_title: "SSH brute force".to_owned(),
        level: "high".to_owned(),
        kind: "correlation".to_owned(),
        agent_id: "agent-retention".to_owned(),
        hostname: "web-01".to_owned(),
        first_time_unix_nano: time,
        last_time_unix_nano: time,
        count: 1,
        tags: Vec::new(),
        mlps: Vec::new(),
        group_key: String::new(),
        event_ids: Vec::new(),
        summary: format!("alert {id}"),
    }
}

/// Writes, with the collector stopped: events 30, 20 and 1 day(s) old plus one now; an
/// alert and an audit entry 400 days old and one each from now.
async fn seed(store: &Store) -> i64 {
    let now = now_ns();
    let events: Vec<Event> = [
        ("old-30d", 30),
        ("old-20d", 20),
        ("kept-1d", 1),
        ("kept-now", 0),
    ]
    .iter()
    .map(|(id, days)| login(id, now - days * DAY))
    .collect();
    for (seq, event) in events.iter().enumerate() {
        store
            .write_batch(
                "agent-retention",
                seq as u64 + 1,
                std::slice::from_ref(event),
                &[],
            )
            .await
            .expect("write events");
    }
    store
        .upsert_alerts(&[alert("alert-old", now - 400 * DAY), alert("alert-new", now)])
        .await
        .expect("write alerts");
    for (target, time) in [("old", now - 400 * DAY), ("new", now)] {
        store
            .append_audit(&AuditEntry {
                time_unix_nano: time,
                actor: "admin".to_owned(),
                action: "user.create".to_owned(),
                target: target.to_owned(),
                detail: "{}".to_owned(),
            })
            .await
            .expect("write audit");
    }
    now
}

async fn event_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .events(&EventQuery {
            limit: Some(100),
            ..EventQuery::default()
        })
        .await
        .expect("events")
        .into_iter()
        .map(|r| r.event.event_id)
        .collect();
    ids.sort();
    ids
}

async fn alert_ids(store: &Store) -> Vec<String> {
    let mut ids: Vec<String> = store
        .alerts(&AlertQuery {
            limit: Some(100),
            ..AlertQuery::default()
        })
        .await
        .expect("alerts")
        .into_iter()
        .map(|a| a.alert_id)
        .collect();
    ids.sort();
    ids
}

async fn audit_targets(store: &Store) -> Vec<String> {
    let mut targets: Vec<String> = store
        .audit_log(&AuditQuery {
            limit: Some(100),
            ..AuditQuery::default()
        })
        .await
        .expect("audit log")
        .into_iter()
        .map(|a| a.target)
        .collect();
    targets.sort();
    targets
}

const RETENTION_ARGS: [&str; 6] = [
    "--retention-events-days",
    "7",
    "--retention-alerts-days",
    "30",
    "--retention-audit-days",
    "30",
];

/// Starts the collector on `dir` with short retention, waits for its first run, and checks
/// what `store` (the same data, opened in this process) holds afterwards.
async fn collector_applies_retention(dir: &Path, database: Option<&str>, store: &Store) {
    assert_eq!(
        event_ids(store).await,
        ["kept-1d", "kept-now", "old-20d", "old-30d"],
        "seeded events"
    );
    assert_eq!(alert_ids(store).await, ["alert-new", "alert-old"]);
    assert_eq!(audit_targets(store).await, ["new", "old"]);

    let collector = Collector::serve_with_args(dir, database, &RETENTION_ARGS).expect("collector");
    let ran = wait_for(Duration::from_secs(30), || {
        let dropped = collector
            .counter("shaobing_retention_partitions_dropped_total")
            .ok()?;
        (dropped > 0).then_some(dropped)
    });
    let dropped = ran.unwrap_or_else(|| {
        panic!(
            "the collector's retention never dropped a partition:\n{}",
            collector.daemon.log_text()
        )
    });
    // Events: two day partitions; alerts and audit log: one month partition each (at least:
    // the embedded store reports the months rows were deleted from the same way).
    assert!(dropped >= 4, "partitions dropped: {dropped}");
    assert!(
        collector
            .counter("shaobing_retention_rows_removed_total")
            .expect("metrics")
            >= 4,
        "rows removed"
    );
    assert_eq!(
        collector
            .counter("shaobing_retention_failures_total")
            .expect("metrics"),
        0
    );
    assert!(
        collector
            .daemon
            .log_text()
            .contains("retention removed expired data"),
        "the run is logged"
    );

    assert_eq!(
        event_ids(store).await,
        ["kept-1d", "kept-now"],
        "events older than 7 days are gone, newer ones untouched"
    );
    assert_eq!(alert_ids(store).await, ["alert-new"]);
    assert_eq!(audit_targets(store).await, ["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_enforces_retention_on_clickhouse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = unique_database("retention");
    let store = Store::open_clickhouse_with(
        &clickhouse_url(),
        &ClickHouseOptions {
            retention: RetentionPolicy {
                events_days: 7,
                alerts_days: 30,
                audit_log_days: 30,
            },
            ..ClickHouseOptions::database(&database)
        },
    )
    .await
    .expect("open ClickHouse");
    seed(&store).await;
    Collector::init_ca(dir.path()).expect("ca init");
    collector_applies_retention(dir.path(), Some(&database), &store).await;
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {database}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_enforces_retention_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_embedded(&dir.path().join("shaobing.db"))
        .await
        .expect("open embedded store");
    seed(&store).await;
    Collector::init_ca(dir.path()).expect("ca init");
    collector_applies_retention(dir.path(), None, &store).await;
}
