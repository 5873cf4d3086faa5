//! Suite cases about alerts, triage, agents, baseline check results and the audit log.

use shaobing_collector::store::{
    AgentRecord, AlertQuery, AlertRecord, AlertStatus, AuditEntry, AuditQuery, CheckQuery,
    StoreError,
};
use shaobing_wire::v1::{CheckResult, CheckStatus, event::Body};

use super::builders::*;
use super::harness::TestStore;

pub async fn alert_upsert_keeps_one_row_with_the_newest_count(t: TestStore) {
    upsert(
        &t.store,
        &[alert(
            "al-1",
            "web-01",
            "high",
            BASE_NS,
            BASE_NS + SECOND,
            1,
        )],
    )
    .await;
    upsert(
        &t.store,
        &[alert(
            "al-1",
            "web-01",
            "high",
            BASE_NS,
            BASE_NS + 9 * SECOND,
            5,
        )],
    )
    .await;
    // A stale version arriving late must not win.
    upsert(
        &t.store,
        &[alert(
            "al-1",
            "web-01",
            "high",
            BASE_NS,
            BASE_NS + 3 * SECOND,
            3,
        )],
    )
    .await;
    upsert(
        &t.store,
        &[alert("al-2", "db-01", "low", BASE_NS, BASE_NS, 1)],
    )
    .await;

    let got = t
        .store
        .alerts(&AlertQuery {
            host: Some("web-01".to_owned()),
            ..AlertQuery::default()
        })
        .await
        .expect("alerts");
    assert_eq!(got.len(), 1);
    let want = alert("al-1", "web-01", "high", BASE_NS, BASE_NS + 9 * SECOND, 5);
    assert_eq!(got[0], want);
    assert_eq!(
        t.store
            .alerts(&AlertQuery::default())
            .await
            .expect("alerts")
            .len(),
        2
    );
}

pub async fn alert_filters_select_by_host_level_time_rule_and_text(t: TestStore) {
    upsert(
        &t.store,
        &[
            alert("al-1", "web-01", "high", BASE_NS, BASE_NS + 10 * SECOND, 4),
            alert("al-2", "web-01", "low", BASE_NS + DAY, BASE_NS + DAY, 1),
            alert(
                "al-3",
                "db-01",
                "critical",
                BASE_NS + 2 * DAY,
                BASE_NS + 2 * DAY,
                1,
            ),
            alert(
                "al-4",
                "db-01",
                "high",
                BASE_NS - 3 * DAY,
                BASE_NS - 3 * DAY,
                2,
            ),
        ],
    )
    .await;
    let ids_of = |alerts: Vec<AlertRecord>| -> Vec<String> {
        alerts.into_iter().map(|a| a.alert_id).collect()
    };
    let run = |q: AlertQuery| {
        let store = t.store.clone();
        async move { ids_of(store.alerts(&q).await.expect("alerts")) }
    };

    // Newest (last_time) first.
    assert_eq!(
        run(AlertQuery::default()).await,
        ["al-3", "al-2", "al-1", "al-4"]
    );
    let host = AlertQuery {
        host: Some("web-01".into()),
        ..AlertQuery::default()
    };
    assert_eq!(run(host).await, ["al-2", "al-1"]);
    let levels = AlertQuery {
        levels: vec!["high".into(), "critical".into()],
        ..AlertQuery::default()
    };
    assert_eq!(run(levels).await, ["al-3", "al-1", "al-4"]);
    let since = AlertQuery {
        since: Some(BASE_NS + 5 * SECOND),
        ..AlertQuery::default()
    };
    assert_eq!(run(since).await, ["al-3", "al-2", "al-1"]);
    let window = AlertQuery {
        since: Some(BASE_NS),
        until: Some(BASE_NS + DAY),
        ..AlertQuery::default()
    };
    assert_eq!(run(window).await, ["al-1"]);
    let rule = AlertQuery {
        rule_id: Some("rule-low".into()),
        ..AlertQuery::default()
    };
    assert_eq!(run(rule).await, ["al-2"]);
    let text = AlertQuery {
        text: Some("BRUTE force (CRIT".into()),
        ..AlertQuery::default()
    };
    assert_eq!(run(text).await, ["al-3"]);
    let page = AlertQuery {
        limit: Some(2),
        offset: 1,
        ..AlertQuery::default()
    };
    assert_eq!(run(page).await, ["al-2", "al-1"]);
    let combined = AlertQuery {
        host: Some("db-01".into()),
        levels: vec!["high".into()],
        since: Some(BASE_NS - 4 * DAY),
        ..AlertQuery::default()
    };
    assert_eq!(run(combined).await, ["al-4"]);
}

pub async fn alert_triage_survives_later_upserts(t: TestStore) {
    upsert(
        &t.store,
        &[alert("al-1", "web-01", "high", BASE_NS, BASE_NS, 1)],
    )
    .await;
    upsert(
        &t.store,
        &[alert("al-2", "web-01", "high", BASE_NS, BASE_NS, 1)],
    )
    .await;
    t.store
        .set_alert_triage("al-1", AlertStatus::Closed, "zhang.wei", "误报：运维扫描")
        .await
        .expect("triage");
    // Detection raises al-1 again: count grows, triage stays.
    upsert(
        &t.store,
        &[alert(
            "al-1",
            "web-01",
            "high",
            BASE_NS,
            BASE_NS + SECOND,
            2,
        )],
    )
    .await;

    let closed = t
        .store
        .alerts(&AlertQuery {
            statuses: vec![AlertStatus::Closed],
            ..AlertQuery::default()
        })
        .await
        .expect("alerts");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].alert_id, "al-1");
    assert_eq!(closed[0].count, 2);
    assert_eq!(closed[0].assignee, "zhang.wei");
    assert_eq!(closed[0].note, "误报：运维扫描");
    let open = t
        .store
        .alerts(&AlertQuery {
            statuses: vec![AlertStatus::Open, AlertStatus::Acknowledged],
            ..AlertQuery::default()
        })
        .await
        .expect("alerts");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].alert_id, "al-2");
    assert_eq!(open[0].status, AlertStatus::Open);

    let unknown = t
        .store
        .set_alert_triage("no-such-alert", AlertStatus::Closed, "", "")
        .await;
    assert!(
        matches!(unknown, Err(StoreError::InvalidQuery(_))),
        "{unknown:?}"
    );
}

pub async fn agents_upsert_and_list(t: TestStore) {
    let first = AgentRecord {
        agent_id: "agent-b".into(),
        hostname: "web-01".into(),
        ips: vec!["10.0.0.5".into()],
        os: "Debian GNU/Linux 12".into(),
        version: "0.1.0".into(),
        first_seen_unix_nano: BASE_NS,
        last_seen_unix_nano: BASE_NS,
        status: "online".into(),
    };
    t.store.upsert_agent(&first).await.expect("upsert");
    let later = AgentRecord {
        ips: vec!["10.0.0.5".into(), "10.0.1.5".into()],
        version: "0.2.0".into(),
        first_seen_unix_nano: BASE_NS + DAY,
        last_seen_unix_nano: BASE_NS + DAY,
        status: "offline".into(),
        ..first.clone()
    };
    t.store.upsert_agent(&later).await.expect("upsert");
    let other = AgentRecord {
        agent_id: "agent-a".into(),
        hostname: "db-01".into(),
        ..first.clone()
    };
    t.store.upsert_agent(&other).await.expect("upsert");

    let agents = t.store.agents().await.expect("agents");
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[0], other);
    let want = AgentRecord {
        first_seen_unix_nano: BASE_NS,
        ..later
    };
    assert_eq!(agents[1], want);
}

pub async fn check_results_are_kept_with_latest_per_check(t: TestStore) {
    let check = |id: &str, time: i64, status: CheckStatus, observed: &str| {
        event(
            id,
            "web-01",
            time,
            Body::Check(CheckResult {
                check_id: "password.max_days".into(),
                title: "口令有效期".into(),
                status: status as i32,
                observed: observed.into(),
                expected: "<= 90".into(),
            }),
        )
    };
    write(
        &t.store,
        "agent-a",
        1,
        &[check("1-0", BASE_NS, CheckStatus::Fail, "99999")],
    )
    .await;
    let batch = [
        check("2-0", BASE_NS + DAY, CheckStatus::Pass, "90"),
        ssh_fail("2-1", "web-01", BASE_NS + DAY, "198.51.100.4"),
    ];
    write(&t.store, "agent-a", 2, &batch).await;

    let all = t
        .store
        .check_results(&CheckQuery {
            host: Some("web-01".into()),
            ..CheckQuery::default()
        })
        .await
        .expect("checks");
    let observed: Vec<&str> = all.iter().map(|c| c.observed.as_str()).collect();
    assert_eq!(observed, ["90", "99999"]);
    let latest = t
        .store
        .check_results(&CheckQuery {
            latest_only: true,
            ..CheckQuery::default()
        })
        .await
        .expect("checks");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].status, "pass");
    assert_eq!(latest[0].event_id, "2-0");
    assert_eq!(latest[0].agent_id, "agent-a");
    let at_start = t
        .store
        .check_results(&CheckQuery {
            latest_only: true,
            until: Some(BASE_NS + SECOND),
            ..CheckQuery::default()
        })
        .await
        .expect("checks");
    assert_eq!(at_start.len(), 1);
    assert_eq!(at_start[0].status, "fail");
}

pub async fn audit_log_appends_and_lists_newest_first(t: TestStore) {
    for (i, action) in ["token.create", "alert.close", "token.create"]
        .iter()
        .enumerate()
    {
        let entry = AuditEntry {
            time_unix_nano: BASE_NS + i as i64 * SECOND,
            actor: "admin".into(),
            action: (*action).into(),
            target: format!("target-{i}"),
            detail: "{\"why\":\"测试\"}".into(),
        };
        t.store.append_audit(&entry).await.expect("append");
    }
    let all = t
        .store
        .audit_log(&AuditQuery::default())
        .await
        .expect("audit");
    let targets: Vec<&str> = all.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["target-2", "target-1", "target-0"]);
    assert_eq!(all[0].detail, "{\"why\":\"测试\"}");
    let tokens = t
        .store
        .audit_log(&AuditQuery {
            action: Some("token.create".into()),
            since: Some(BASE_NS + SECOND),
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].target, "target-2");
}
