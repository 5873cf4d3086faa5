//! Suite cases about multi-batch writes and retention.

use shaobing_collector::store::{
    AlertQuery, AuditEntry, AuditQuery, BatchWrite, CheckQuery, EventQuery, RetentionPolicy,
    RetentionReport, WriteOutcome,
};
use shaobing_wire::v1::Event;

use super::builders::*;
use super::harness::{TestStore, open_with};

fn batch<'a>(agent_id: &'a str, seq: u64, events: &'a [Event]) -> BatchWrite<'a> {
    BatchWrite {
        agent_id,
        seq,
        events,
        alerts: &[],
    }
}

async fn count(t: &TestStore, q: EventQuery) -> u64 {
    t.store.count_events(&q).await.expect("count")
}

pub async fn write_batches_stores_many_agents_and_drops_duplicates(t: TestStore) {
    assert!(
        t.store
            .write_batches(&[])
            .await
            .expect("empty call")
            .is_empty()
    );
    let a1 = vec![
        ssh_fail("a1-0", "web-01", BASE_NS, "198.51.100.4"),
        ssh_fail("a1-1", "web-01", BASE_NS + SECOND, "198.51.100.4"),
    ];
    let mut check = every_kind("db-01").swap_remove(3);
    check.event_id = "b1-0".into();
    let b1 = vec![check];
    let a2 = vec![ssh_fail(
        "a2-0",
        "web-01",
        BASE_NS + 2 * SECOND,
        "198.51.100.4",
    )];
    let raised = detect_alert(&alert(
        "al-1",
        "web-01",
        "high",
        BASE_NS,
        BASE_NS + SECOND,
        2,
    ));
    let alerts = [raised];
    let first = [
        BatchWrite {
            alerts: &alerts,
            ..batch("agent-a", 1, &a1)
        },
        batch("agent-b", 1, &b1),
        batch("agent-a", 2, &a2),
        batch("agent-a", 2, &a2), // the same batch twice in one call
        batch("agent-b", 1, &b1),
        batch("agent-c", 5, &[]),
    ];
    let outcomes = t.store.write_batches(&first).await.expect("first call");
    use WriteOutcome::{Duplicate, Stored};
    assert_eq!(
        outcomes,
        [Stored, Stored, Stored, Duplicate, Duplicate, Stored]
    );
    assert_eq!(count(&t, query_all()).await, 4);
    for (agent, last) in [("agent-a", 2), ("agent-b", 1), ("agent-c", 5)] {
        assert_eq!(t.store.last_seq(agent).await.expect("last seq"), Some(last));
    }
    let checks = t
        .store
        .check_results(&CheckQuery::default())
        .await
        .expect("checks");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].agent_id, "agent-b");
    let stored_alerts = t
        .store
        .alerts(&AlertQuery::default())
        .await
        .expect("alerts");
    assert_eq!(stored_alerts.len(), 1);
    assert_eq!(stored_alerts[0].count, 2);

    // Across calls: a stored seq, a new one, an older one; a later call of one batch.
    let a3 = vec![ssh_fail(
        "a3-0",
        "web-01",
        BASE_NS + 3 * SECOND,
        "198.51.100.4",
    )];
    let second = [
        batch("agent-a", 2, &a2),
        batch("agent-a", 3, &a3),
        batch("agent-b", 0, &b1),
    ];
    let outcomes = t.store.write_batches(&second).await.expect("second call");
    assert_eq!(outcomes, [Duplicate, Stored, Duplicate]);
    assert_eq!(
        t.store
            .write_batch("agent-a", 3, &a3, &[])
            .await
            .expect("single write"),
        Duplicate
    );
    let mut got = ids(&t.store.events(&query_all()).await.expect("events"));
    got.sort();
    assert_eq!(got, ["a1-0", "a1-1", "a2-0", "a3-0", "b1-0"]);
    let by_agent = EventQuery {
        agent_id: Some("agent-b".into()),
        ..query_all()
    };
    assert_eq!(count(&t, by_agent).await, 1);
}

pub async fn write_batches_keeps_each_agents_order_in_one_call(t: TestStore) {
    let events: Vec<Vec<Event>> = (0..40)
        .map(|i| {
            vec![ssh_fail(
                &format!("e-{i}"),
                "web-01",
                BASE_NS + i * SECOND,
                "198.51.100.4",
            )]
        })
        .collect();
    let agents = ["agent-a", "agent-b", "agent-c", "agent-d"];
    // Batches of four agents interleaved; every agent's seqs rise; two go backwards.
    let mut batches: Vec<BatchWrite<'_>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| batch(agents[i % 4], (i / 4) as u64 + 1, e))
        .collect();
    batches.push(batch("agent-b", 3, &events[0]));
    batches.push(batch("agent-d", 10, &events[0]));
    let outcomes = t.store.write_batches(&batches).await.expect("write");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == WriteOutcome::Stored)
            .count(),
        40
    );
    assert_eq!(
        outcomes[40..],
        [WriteOutcome::Duplicate, WriteOutcome::Duplicate]
    );
    assert_eq!(count(&t, query_all()).await, 40);
    for agent in agents {
        assert_eq!(t.store.last_seq(agent).await.expect("last seq"), Some(10));
    }
}

/// "Now" is late on 2024-05-04. Events keep 2 days (May 3 and 4); alerts and the audit log
/// keep 40 days (back to March 26), so their month partitions from March on stay.
pub async fn retention_drops_old_partitions_and_nothing_newer(t: TestStore) {
    let policy = RetentionPolicy {
        events_days: 2,
        alerts_days: 40,
        audit_log_days: 40,
    };
    assert_eq!(*t.store.retention(), RetentionPolicy::default());
    let store = open_with(&t.location, policy).await;
    assert_eq!(*store.retention(), policy);

    for n in 0..4 {
        let e = ssh_fail(
            &format!("{n}-0"),
            "web-01",
            BASE_NS + n * DAY,
            "198.51.100.4",
        );
        write(&store, "agent-a", n as u64 + 1, &[e]).await;
    }
    let checks: Vec<Event> = (0..2)
        .map(|n| {
            let mut e = every_kind("web-01").swap_remove(3);
            e.event_id = format!("c-{n}");
            e.time_unix_nano = BASE_NS + n * 3 * DAY;
            e
        })
        .collect();
    write(&store, "agent-a", 10, &checks).await;
    // 2024-01-15, 2024-02-29, 2024-03-01, 2024-05-01.
    let alert_days = [
        ("al-jan", -107),
        ("al-feb", -62),
        ("al-mar", -61),
        ("al-may", 0),
    ];
    let raised: Vec<_> = alert_days
        .iter()
        .map(|(id, day)| {
            let first = BASE_NS + day * DAY;
            detect_alert(&alert(id, "web-01", "high", first, first + SECOND, 1))
        })
        .collect();
    store.upsert_alerts(&raised).await.expect("upsert");
    for (day, target) in [(-81, "feb"), (-52, "mar"), (1, "may")] {
        let entry = AuditEntry {
            time_unix_nano: BASE_NS + day * DAY,
            actor: "admin".into(),
            action: "alert.close".into(),
            target: target.into(),
            detail: String::new(),
        };
        store.append_audit(&entry).await.expect("audit");
    }

    let now = BASE_NS + 3 * DAY + 20 * 3_600 * SECOND;
    let report = store.apply_retention(now).await.expect("retention");
    let removed = |table: &str| {
        let t = report
            .tables
            .iter()
            .find(|t| t.table == table)
            .unwrap_or_else(|| panic!("no report for {table}"));
        (t.dropped_partitions.clone(), t.removed_rows)
    };
    assert_eq!(
        removed("events"),
        (vec!["20240501".to_owned(), "20240502".to_owned()], 3)
    );
    assert_eq!(removed("check_results"), (vec!["20240501".to_owned()], 1));
    assert_eq!(
        removed("alerts"),
        (vec!["202401".to_owned(), "202402".to_owned()], 2)
    );
    assert_eq!(removed("audit_log"), (vec!["202402".to_owned()], 1));
    assert_eq!(removed("batches"), (vec![], 0));
    assert_eq!(report.removed_rows(), 7);
    let events_cut = report.tables.iter().find(|t| t.table == "events");
    assert_eq!(
        events_cut.map(|t| (t.keep_days, t.removed_before_unix_nano)),
        Some((2, BASE_NS + 2 * DAY))
    );

    let mut kept = ids(&store.events(&query_all()).await.expect("events"));
    kept.sort();
    assert_eq!(kept, ["2-0", "3-0", "c-1"]);
    let checks = store
        .check_results(&CheckQuery::default())
        .await
        .expect("checks");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].event_id, "c-1");
    let mut alerts: Vec<String> = store
        .alerts(&AlertQuery::default())
        .await
        .expect("alerts")
        .into_iter()
        .map(|a| a.alert_id)
        .collect();
    alerts.sort();
    assert_eq!(alerts, ["al-mar", "al-may"]);
    let audit: Vec<String> = store
        .audit_log(&AuditQuery::default())
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.target)
        .collect();
    assert_eq!(audit, ["may", "mar"]);
    // The seq bookkeeping was written today: nothing of it is old enough to go.
    assert_eq!(store.last_seq("agent-a").await.expect("last seq"), Some(10));
    // Running it again removes nothing more.
    let again = store.apply_retention(now).await.expect("retention again");
    assert_eq!(again.removed_rows(), 0);
    assert_ne!(again, RetentionReport::default());
    // The audit log stays append-only outside retention.
    store
        .append_audit(&AuditEntry {
            time_unix_nano: now,
            actor: "system".into(),
            action: "retention.apply".into(),
            target: "all".into(),
            detail: format!("{} rows", report.removed_rows()),
        })
        .await
        .expect("audit after retention");
}
