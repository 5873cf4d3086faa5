//! Compatibility with current ClickHouse (26.x), in-process with chdb.
//!
//! 1. A workload that calls every store method runs against ClickHouse 18.16 (the test
//!    server at `SHAOBING_TEST_CLICKHOUSE_URL`) with statement recording on: every statement
//!    the store sent (DDL, inserts, queries, retention) is kept, exactly as sent.
//! 2. The test checks that the recording covers every statement the store can send
//!    (`StatementId::ALL`); the `TTL` statements 18.16 never gets are rendered for a current
//!    server and added.
//! 3. The recording is replayed on 18.16 in a fresh database to record each query's output.
//! 4. `tests/chdb/run_chdb.py` replays the same statements on chdb (ClickHouse 26.x) and
//!    compares every output; then runs the `TTL` statements and checks the tables' engines.
//!
//! chdb must be importable by `python3` (or `SHAOBING_PYTHON`): `pip install chdb-core==26.9.0`.
//! Without it this test fails, on purpose: CI installs it.

#[allow(dead_code)]
#[path = "store_suite/builders.rs"]
mod builders;
#[allow(dead_code)]
#[path = "store_suite/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::json;
use shaobing_collector::store::{
    AgentRecord, AlertGroup, AlertQuery, AlertStatus, AuditEntry, AuditQuery, BatchWrite,
    CheckQuery, ClickHouseOptions, EventGroup, EventQuery, FieldFilter, RecordedStatement,
    RetentionPolicy, ServerCapabilities, StatementId, StatementKind, Store,
    clickhouse_ttl_statements,
};
use shaobing_wire::v1::Event;

use builders::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb/run_chdb.py");
const PIP: &str = "pip install chdb-core==26.9.0";

fn python() -> String {
    std::env::var("SHAOBING_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Fails the test with the install command when chdb cannot be imported.
fn require_chdb() {
    let output = Command::new(python()).arg(SCRIPT).arg("--check").output();
    match output {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "chdb (ClickHouse 26.x in-process) is not importable by {}: {}\ninstall it with: {PIP}",
            python(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "cannot run {} for the chdb test: {e}; install Python 3 and {PIP}",
            python()
        ),
    }
}

/// Calls every store method, with every filter, grouping and write path.
async fn workload(store: &Store, url: &str, database: &str) {
    let web = every_kind("web-01");
    let db: Vec<Event> = (0..3)
        .map(|i| {
            ssh_fail(
                &format!("d-{i}"),
                "db-01",
                BASE_NS + i * 90 * SECOND,
                "198.51.100.4",
            )
        })
        .collect();
    let raised = [detect_alert(&alert(
        "al-1",
        "web-01",
        "high",
        BASE_NS,
        BASE_NS + SECOND,
        2,
    ))];
    let batches = [
        BatchWrite {
            agent_id: "agent-a",
            seq: 1,
            events: &web,
            alerts: &raised,
        },
        BatchWrite {
            agent_id: "agent-b",
            seq: 1,
            events: &db,
            alerts: &[],
        },
        BatchWrite {
            agent_id: "agent-b",
            seq: 1,
            events: &db,
            alerts: &[],
        },
    ];
    store.write_batches(&batches).await.expect("write batches");
    store
        .write_batch("agent-a", 1, &web, &[])
        .await
        .expect("duplicate write");
    // An interrupted write of agent-c's batch 3 (marker and one of two events), resumed.
    let client = clickhouse::Client::default()
        .with_url(url)
        .with_database(database);
    for sql in [
        "INSERT INTO batches (agent_id, seq, state, event_count, alert_count, written_ns, \
         written_date) VALUES ('agent-c', 3, 0, 2, 0, 0, today())"
            .to_owned(),
        format!(
            "INSERT INTO events (event_id, agent_id, seq, time_ns, date, hostname, kind) \
             VALUES ('c-0', 'agent-c', 3, {BASE_NS}, toDate({}), 'app-01', 'login')",
            BASE_NS / DAY
        ),
    ] {
        client
            .query(&sql)
            .execute()
            .await
            .expect("simulate a crash");
    }
    let resumed: Vec<Event> = (0..2)
        .map(|i| {
            ssh_fail(
                &format!("c-{i}"),
                "app-01",
                BASE_NS + i * SECOND,
                "192.0.2.9",
            )
        })
        .collect();
    store
        .write_batch("agent-c", 3, &resumed, &[])
        .await
        .expect("resume");
    store.last_seq("agent-a").await.expect("last seq");

    let later = alert(
        "al-2",
        "db-01",
        "low",
        BASE_NS + 3_600 * SECOND,
        BASE_NS + 7_200 * SECOND,
        4,
    );
    store
        .upsert_alerts(&[detect_alert(&later)])
        .await
        .expect("upsert");
    store
        .set_alert_triage("al-2", AlertStatus::Acknowledged, "李雷", "looking")
        .await
        .expect("triage");
    let filtered = AlertQuery {
        alert_id: None,
        since: Some(BASE_NS),
        until: Some(BASE_NS + DAY),
        host: Some("db-01".into()),
        agent_id: Some("agent-db-01".into()),
        rule_id: Some("rule-low".into()),
        levels: vec!["low".into(), "high".into()],
        statuses: vec![AlertStatus::Acknowledged],
        text: Some("ssh".into()),
        limit: Some(10),
        offset: 0,
    };
    // Every path of the alerts list: candidates then states by id, a text search through
    // time windows, status filters naming triaged alerts to keep or to leave out, one alert
    // by id, and a page too deep for candidates (one aggregate over all alerts).
    let extra = [
        AlertQuery {
            text: Some("SSH".into()),
            statuses: vec![AlertStatus::Open],
            ..AlertQuery::default()
        },
        AlertQuery {
            alert_id: Some("al-2".into()),
            ..AlertQuery::default()
        },
        AlertQuery {
            limit: Some(10_000),
            ..AlertQuery::default()
        },
    ];
    for q in &extra {
        store.alerts(q).await.expect("alerts");
    }
    for q in [AlertQuery::default(), filtered] {
        store.alerts(&q).await.expect("alerts");
        store.alert_counts(&q, 3_600).await.expect("alert counts");
        store
            .alert_overview(&q, 3_600)
            .await
            .expect("alert overview");
        for g in [
            AlertGroup::Rule,
            AlertGroup::Host,
            AlertGroup::Level,
            AlertGroup::Status,
        ] {
            store.alert_counts_by(&q, g).await.expect("alert groups");
        }
    }

    let narrow = EventQuery {
        host: Some("web-01".into()),
        agent_id: Some("agent-a".into()),
        kind: Some("network".into()),
        since: Some(BASE_NS),
        until: Some(BASE_NS + DAY),
        fields: vec![
            FieldFilter::new("dst_port", "53"),
            FieldFilter::new("dns_answers", "203.0.113.10"),
        ],
        limit: Some(5),
        offset: 0,
    };
    for q in [query_all(), narrow] {
        store.events(&q).await.expect("events");
        store.count_events(&q).await.expect("count");
        store.event_counts(&q, 60).await.expect("event counts");
        store.event_sources(&q).await.expect("sources");
        for g in [
            EventGroup::Host,
            EventGroup::Kind,
            EventGroup::Source,
            EventGroup::Field("source_ip".into()),
            EventGroup::Field("dst_port".into()),
        ] {
            store.event_counts_by(&q, &g).await.expect("event groups");
        }
    }

    for (i, seen) in [BASE_NS, BASE_NS + 60 * SECOND].into_iter().enumerate() {
        let agent = AgentRecord {
            agent_id: "agent-a".into(),
            hostname: "web-01".into(),
            ips: vec!["10.0.0.5".into()],
            os: "Debian GNU/Linux 12".into(),
            version: format!("0.1.{i}"),
            first_seen_unix_nano: seen,
            last_seen_unix_nano: seen,
            status: "online".into(),
        };
        store.upsert_agent(&agent).await.expect("agent");
    }
    store.agents().await.expect("agents");
    for latest_only in [false, true] {
        let q = CheckQuery {
            host: Some("web-01".into()),
            agent_id: Some("agent-a".into()),
            check_id: Some("password.max_days".into()),
            since: Some(BASE_NS),
            until: Some(BASE_NS + DAY),
            latest_only,
            limit: Some(10),
        };
        store.check_results(&q).await.expect("checks");
        store
            .check_results(&CheckQuery {
                latest_only,
                ..CheckQuery::default()
            })
            .await
            .expect("checks");
    }
    for (i, action) in ["token.create", "alert.ack"].into_iter().enumerate() {
        let entry = AuditEntry {
            time_unix_nano: BASE_NS + i as i64 * SECOND,
            actor: "admin".into(),
            action: action.into(),
            target: format!("t-{i}"),
            detail: "{\"note\":\"审计\"}".into(),
        };
        store.append_audit(&entry).await.expect("audit");
    }
    store
        .audit_log(&AuditQuery::default())
        .await
        .expect("audit log");
    store
        .audit_log(&AuditQuery {
            since: Some(BASE_NS),
            until: Some(BASE_NS + DAY),
            actor: Some("admin".into()),
            action: Some("alert.ack".into()),
            limit: Some(3),
        })
        .await
        .expect("audit log");
    // Far enough ahead that every partition written above has expired.
    let report = store
        .apply_retention(BASE_NS + 2_000 * DAY)
        .await
        .expect("retention");
    assert!(
        report.removed_rows() > 0,
        "retention dropped nothing: {report:?}"
    );
}

/// Statements whose output legitimately differs between server versions.
fn compared(name: &str) -> bool {
    ![
        StatementId::ServerProbe.name(),
        StatementId::TtlCurrent.name(),
    ]
    .contains(&name)
}

/// Replays the recording on 18.16 in a fresh `database`, returning each query's TSV output.
async fn outputs_on_18_16(
    url: &str,
    database: &str,
    log: &[RecordedStatement],
) -> Vec<Option<String>> {
    harness::drop_clickhouse_database(url, database).await;
    let server = clickhouse::Client::default().with_url(url);
    server
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .expect("fresh database");
    let client = server.with_database(database);
    let mut outputs = Vec::with_capacity(log.len());
    for (i, st) in log.iter().enumerate() {
        let mut query = client.query_raw(&st.sql);
        for (name, value) in &st.settings {
            query = query.with_setting(name, value.as_str());
        }
        if st.kind == StatementKind::Query {
            let bytes = query
                .fetch_bytes("TabSeparated")
                .expect("query")
                .collect()
                .await
                .unwrap_or_else(|e| panic!("replay #{i} {} on 18.16: {e}\n{}", st.name, st.sql));
            let text = String::from_utf8_lossy(&bytes).into_owned();
            outputs.push(compared(st.name).then_some(text));
        } else {
            query
                .execute()
                .await
                .unwrap_or_else(|e| panic!("replay #{i} {} on 18.16: {e}\n{}", st.name, st.sql));
            outputs.push(None);
        }
    }
    outputs
}

async fn scenario(url: String, database: String) {
    let options = ClickHouseOptions {
        record_statements: true,
        ..ClickHouseOptions::database(&database)
    };
    let store = Store::open_clickhouse_with(&url, &options)
        .await
        .unwrap_or_else(|e| panic!("the chdb test records statements on ClickHouse at {url}: {e}"));
    workload(&store, &url, &database).await;
    let Some(recording) = store.as_clickhouse() else {
        panic!("a ClickHouse store was opened");
    };
    let log = recording.recorded();
    let policy = RetentionPolicy::default();
    let modern = clickhouse_ttl_statements(&ServerCapabilities::current("26"), &policy, &database);

    let mut seen: BTreeSet<&str> = log.iter().map(|s| s.name).collect();
    seen.extend(modern.iter().map(|s| s.id().name()));
    let missing: Vec<&str> = StatementId::ALL
        .iter()
        .map(|id| id.name())
        .filter(|name| !seen.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "the workload never sent {missing:?}: extend it"
    );

    let outputs = outputs_on_18_16(&url, &database, &log).await;
    let statements: Vec<_> = log
        .iter()
        .zip(outputs)
        .map(|(st, expected)| {
            json!({"name": st.name, "kind": st.kind, "sql": st.sql,
                   "settings": st.settings, "expected": expected})
        })
        .collect();
    let modern: Vec<_> = modern
        .iter()
        .map(|st| {
            json!({"name": st.id().name(), "kind": st.id().kind(), "sql": st.render(),
                   "settings": st.settings()})
        })
        .collect();
    let engines: BTreeMap<&str, Vec<&str>> = [
        ("events", "TTL date + toIntervalDay(186)"),
        ("check_results", "TTL date + toIntervalDay(186)"),
        ("batches", "TTL written_date + toIntervalDay(186)"),
        ("alerts", "TTL first_date + toIntervalDay(1096)"),
        ("audit_log", "TTL date + toIntervalDay(1096)"),
    ]
    .into_iter()
    .map(|(table, ttl)| (table, vec![ttl, "ttl_only_drop_parts = 1"]))
    .collect();
    let manifest = json!({
        "database": database,
        "statements": statements,
        "modern": modern,
        "probe_expected": "1\t1\t1\t1",
        "engine_must_contain": engines,
    });
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).expect("write the manifest");
    if let Ok(copy) = std::env::var("SHAOBING_CHDB_MANIFEST") {
        std::fs::write(copy, manifest.to_string()).expect("copy the manifest");
    }

    let out = Command::new(python())
        .arg(SCRIPT)
        .arg(&path)
        .output()
        .expect("run the chdb replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "ClickHouse 26.x (chdb) disagrees with 18.16 or refused a statement:\n{stderr}"
    );
    assert!(
        stdout.contains("every output matched"),
        "unexpected replay output: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_runs_the_same_on_clickhouse_26() {
    require_chdb();
    let url = harness::clickhouse_url();
    let database = harness::unique_database_name();
    let outcome = tokio::spawn(scenario(url.clone(), database.clone())).await;
    harness::drop_clickhouse_database(&url, &database).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
