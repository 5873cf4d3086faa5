//! Suite cases about events and batches: round trips, filters, dedup by seq, odd input.

use shaobing_collector::store::{AlertQuery, EventQuery, FieldFilter, StoreError, WriteOutcome};
use shaobing_wire::v1::{Event, event::Body};

use super::builders::*;
use super::harness::{TestStore, open_at};

pub async fn events_of_every_kind_read_back_unchanged(t: TestStore) {
    let sent = every_kind("web-01");
    assert_eq!(
        write(&t.store, "agent-a", 1, &sent).await,
        WriteOutcome::Stored
    );

    let mut stored = t.store.events(&query_all()).await.expect("events");
    assert_eq!(stored.len(), sent.len());
    stored.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
    for (got, want) in stored.iter().zip(&sent) {
        assert_eq!(got.agent_id, "agent-a");
        assert_eq!(got.seq, 1);
        assert_eq!(got.event, as_stored(want.clone(), "agent-a"));
    }
    let kinds: Vec<&str> = stored.iter().map(|r| r.kind()).collect();
    assert_eq!(
        kinds,
        [
            "login", "file", "network", "check", "status", "process", "none"
        ]
    );
}

pub async fn event_field_filters_match_typed_columns(t: TestStore) {
    write(&t.store, "agent-a", 1, &every_kind("web-01")).await;
    let by = |field: &str, value: &str| EventQuery {
        fields: vec![FieldFilter::new(field, value)],
        ..query_all()
    };
    let cases = [
        (by("source_ip", "192.0.2.7"), vec!["1-0"]),
        (by("login_action", "sudo"), vec!["1-0"]),
        (by("dst_port", "53"), vec!["1-2"]),
        (by("bytes", "5000000000"), vec!["1-2"]),
        (by("dns_answers", "203.0.113.10"), vec!["1-2"]),
        (by("counter_values", "2"), vec!["1-4"]),
        (by("file_path", "/etc/passwd"), vec!["1-1"]),
        (by("check_status", "fail"), vec!["1-3"]),
        (by("cpu_percent", "1.25"), vec!["1-4"]),
        // Shared columns find the field in every kind that has it.
        (by("exe", "/usr/bin/curl"), vec!["1-2"]),
        (by("pid", "31337"), vec!["1-5"]),
        (by("user", "nobody"), vec!["1-5"]),
        (by("source_ip", "198.51.100.1"), vec![]),
    ];
    for (query, want) in cases {
        let got = ids(&t.store.events(&query).await.expect("events"));
        assert_eq!(got, want, "filter {:?}", query.fields);
    }
    let two = EventQuery {
        fields: vec![
            FieldFilter::new("kind", "network"),
            FieldFilter::new("transport", "udp"),
        ],
        ..query_all()
    };
    assert_eq!(ids(&t.store.events(&two).await.expect("events")), ["1-2"]);
}

pub async fn same_seq_twice_is_stored_once(t: TestStore) {
    let batch = vec![
        ssh_fail("3-0", "web-01", BASE_NS, "198.51.100.4"),
        ssh_fail("3-1", "web-01", BASE_NS + SECOND, "198.51.100.4"),
    ];
    let raised = detect_alert(&alert(
        "al-1",
        "web-01",
        "high",
        BASE_NS,
        BASE_NS + SECOND,
        2,
    ));
    let first = t
        .store
        .write_batch("agent-a", 3, &batch, std::slice::from_ref(&raised))
        .await
        .expect("first write");
    assert_eq!(first, WriteOutcome::Stored);
    let again = t
        .store
        .write_batch("agent-a", 3, &batch, std::slice::from_ref(&raised))
        .await
        .expect("second write");
    assert_eq!(again, WriteOutcome::Duplicate);
    // An older seq is a duplicate too.
    assert_eq!(
        write(&t.store, "agent-a", 2, &batch).await,
        WriteOutcome::Duplicate
    );
    assert_eq!(t.store.count_events(&query_all()).await.expect("count"), 2);
    let alerts = t
        .store
        .alerts(&AlertQuery::default())
        .await
        .expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].count, 2);
    // The same seq from another agent is a different batch.
    assert_eq!(
        write(&t.store, "agent-b", 3, &batch).await,
        WriteOutcome::Stored
    );
    assert_eq!(t.store.count_events(&query_all()).await.expect("count"), 4);
}

pub async fn dedup_survives_a_restart(t: TestStore) {
    let batch = vec![ssh_fail("5-0", "web-01", BASE_NS, "198.51.100.4")];
    assert_eq!(
        write(&t.store, "agent-a", 5, &batch).await,
        WriteOutcome::Stored
    );
    let TestStore { store, location } = t;
    drop(store);

    let restarted = open_at(&location).await;
    assert_eq!(
        restarted.last_seq("agent-a").await.expect("last seq"),
        Some(5)
    );
    assert_eq!(
        write(&restarted, "agent-a", 5, &batch).await,
        WriteOutcome::Duplicate
    );
    let next = vec![ssh_fail("6-0", "web-01", BASE_NS + SECOND, "198.51.100.4")];
    assert_eq!(
        write(&restarted, "agent-a", 6, &next).await,
        WriteOutcome::Stored
    );
    assert_eq!(
        restarted.count_events(&query_all()).await.expect("count"),
        2
    );
}

pub async fn last_seq_tracks_each_agent(t: TestStore) {
    assert_eq!(t.store.last_seq("agent-a").await.expect("last seq"), None);
    write(&t.store, "agent-a", 1, &[]).await;
    write(&t.store, "agent-a", 10, &every_kind("web-01")).await;
    write(&t.store, "agent-b", 4, &[]).await;
    assert_eq!(
        t.store.last_seq("agent-a").await.expect("last seq"),
        Some(10)
    );
    assert_eq!(
        t.store.last_seq("agent-b").await.expect("last seq"),
        Some(4)
    );
    assert_eq!(t.store.last_seq("agent-c").await.expect("last seq"), None);
}

pub async fn count_events_applies_every_filter(t: TestStore) {
    let mut batch = Vec::new();
    for i in 0..10 {
        let ip = if i % 2 == 0 {
            "198.51.100.4"
        } else {
            "198.51.100.5"
        };
        batch.push(ssh_fail(
            &format!("1-{i}"),
            "web-01",
            BASE_NS + i * SECOND,
            ip,
        ));
    }
    write(&t.store, "agent-a", 1, &batch).await;
    write(&t.store, "agent-b", 1, &every_kind("db-01")).await;
    // A second day, to cross a partition.
    let later = vec![ssh_fail("2-0", "web-01", BASE_NS + DAY, "198.51.100.4")];
    write(&t.store, "agent-a", 2, &later).await;

    let count = |q: EventQuery| {
        let store = t.store.clone();
        async move { store.count_events(&q).await.expect("count") }
    };
    assert_eq!(count(EventQuery::default()).await, 18);
    let host = EventQuery {
        host: Some("web-01".into()),
        ..EventQuery::default()
    };
    assert_eq!(count(host).await, 11);
    let agent = EventQuery {
        agent_id: Some("agent-b".into()),
        ..EventQuery::default()
    };
    assert_eq!(count(agent).await, 7);
    let kind = EventQuery {
        kind: Some("login".into()),
        ..EventQuery::default()
    };
    assert_eq!(count(kind).await, 12);
    let window = EventQuery {
        since: Some(BASE_NS + 2 * SECOND),
        until: Some(BASE_NS + 5 * SECOND),
        ..EventQuery::default()
    };
    // web-01 at +2, +3, +4 s and db-01 at +2, +3, +4 s.
    assert_eq!(count(window).await, 6);
    let attacker = EventQuery {
        host: Some("web-01".into()),
        fields: vec![FieldFilter::new("source_ip", "198.51.100.4")],
        ..EventQuery::default()
    };
    assert_eq!(count(attacker).await, 6);
    let next_day = EventQuery {
        since: Some(BASE_NS + DAY),
        ..EventQuery::default()
    };
    assert_eq!(count(next_day).await, 1);
    // limit/offset do not change a count.
    let limited = EventQuery {
        limit: Some(1),
        offset: 5,
        ..EventQuery::default()
    };
    assert_eq!(count(limited).await, 18);
}

pub async fn odd_bytes_and_huge_raw_lines_are_kept_exactly(t: TestStore) {
    // What the agent makes of invalid UTF-8 (lossy), plus NUL, control and quote characters
    // and multi-byte text.
    let odd = format!(
        "{} NUL:\0 tab:\t cr:\r esc:\x1b[31m quote:' \" backslash:\\ 哨兵 🛡 end",
        String::from_utf8_lossy(&[0xff, 0xfe, b'x', 0xc3])
    );
    let mut odd_event = ssh_fail("1-0", "web-01", BASE_NS, "198.51.100.4");
    odd_event.raw = odd.clone();
    let mut huge_event = ssh_fail("1-1", "web-01", BASE_NS + SECOND, "198.51.100.4");
    huge_event.raw = "A".repeat(1024 * 1024 - 2) + "é";
    let mut odd_user = ssh_fail("1-2", "web-01", BASE_NS + 2 * SECOND, "198.51.100.4");
    if let Some(Body::Login(login)) = odd_user.body.as_mut() {
        login.user = "'; DROP TABLE events; --".to_owned();
    }
    let sent = vec![odd_event, huge_event, odd_user];
    assert_eq!(
        write(&t.store, "agent-a", 1, &sent).await,
        WriteOutcome::Stored
    );

    let mut stored = t.store.events(&query_all()).await.expect("events");
    stored.sort_by(|a, b| a.event.event_id.cmp(&b.event.event_id));
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].event.raw, odd);
    assert!(stored[0].event.raw.contains('\u{FFFD}'));
    assert_eq!(stored[1].event.raw.len(), 1024 * 1024);
    assert_eq!(stored[1].event, as_stored(sent[1].clone(), "agent-a"));
    let injected = EventQuery {
        fields: vec![FieldFilter::new("user", "'; DROP TABLE events; --")],
        ..query_all()
    };
    assert_eq!(
        ids(&t.store.events(&injected).await.expect("events")),
        ["1-2"]
    );
    assert_eq!(t.store.count_events(&query_all()).await.expect("count"), 3);
}

pub async fn bad_queries_are_refused(t: TestStore) {
    let unknown = EventQuery {
        fields: vec![FieldFilter::new("source_ip; DROP TABLE events", "x")],
        ..EventQuery::default()
    };
    assert!(matches!(
        t.store.events(&unknown).await,
        Err(StoreError::InvalidQuery(_))
    ));
    let not_a_number = EventQuery {
        fields: vec![FieldFilter::new("dst_port", "ssh")],
        ..EventQuery::default()
    };
    assert!(matches!(
        t.store.count_events(&not_a_number).await,
        Err(StoreError::InvalidQuery(_))
    ));
}

pub async fn events_are_listed_newest_first_with_paging(t: TestStore) {
    let batch: Vec<Event> = (0..5)
        .map(|i| {
            ssh_fail(
                &format!("1-{i}"),
                "web-01",
                BASE_NS + i * SECOND,
                "198.51.100.4",
            )
        })
        .collect();
    write(&t.store, "agent-a", 1, &batch).await;
    let page = EventQuery {
        limit: Some(2),
        offset: 1,
        ..EventQuery::default()
    };
    assert_eq!(
        ids(&t.store.events(&page).await.expect("events")),
        ["1-3", "1-2"]
    );
    let host_window = EventQuery {
        host: Some("web-01".into()),
        since: Some(BASE_NS + SECOND),
        until: Some(BASE_NS + 3 * SECOND),
        ..EventQuery::default()
    };
    assert_eq!(
        ids(&t.store.events(&host_window).await.expect("events")),
        ["1-2", "1-1"]
    );
    let other_host = EventQuery {
        host: Some("db-01".into()),
        ..EventQuery::default()
    };
    assert!(
        t.store
            .events(&other_host)
            .await
            .expect("events")
            .is_empty()
    );
}
