//! Suite cases about the reporting queries: counts by time bucket, by rule/host/level/status
//! or event field, and the first/last event of each host and source.

use shaobing_collector::store::{
    AlertGroup, AlertQuery, AlertStatus, EventGroup, EventQuery, GroupCount, LevelBucketCount,
    LevelStatusCount, SourceSpan, Store, StoreError, TimeBucketCount,
};
use shaobing_wire::v1::Event;

use super::builders::*;
use super::harness::TestStore;

const HOUR: i64 = 3_600 * SECOND;

fn bucket(start: i64, count: u64) -> TimeBucketCount {
    TimeBucketCount {
        start_unix_nano: start,
        count,
    }
}

fn group(key: &str, label: &str, count: u64) -> GroupCount {
    GroupCount {
        key: key.to_owned(),
        label: label.to_owned(),
        count,
    }
}

fn from_source(mut e: Event, source: &str) -> Event {
    e.source = source.to_owned();
    e
}

/// web-01: three failed logins (two in the first hour, one in the second, two source IPs);
/// db-01: one in the third hour; web-02: one event of every kind in the first minute.
async fn write_fixture(t: &TestStore) {
    let web = vec![
        ssh_fail("w-0", "web-01", BASE_NS, "198.51.100.4"),
        ssh_fail("w-1", "web-01", BASE_NS + 10 * SECOND, "198.51.100.4"),
        ssh_fail(
            "w-2",
            "web-01",
            BASE_NS + HOUR + 100 * SECOND,
            "203.0.113.9",
        ),
    ];
    write(&t.store, "agent-web", 1, &web).await;
    let db = vec![ssh_fail(
        "d-0",
        "db-01",
        BASE_NS + 2 * HOUR + 5 * SECOND,
        "198.51.100.4",
    )];
    write(&t.store, "agent-db", 1, &db).await;
    write(&t.store, "agent-web2", 1, &every_kind("web-02")).await;
}

pub async fn event_counts_by_time_bucket_and_field(t: TestStore) {
    write_fixture(&t).await;
    let web = EventQuery {
        host: Some("web-01".into()),
        ..EventQuery::default()
    };
    assert_eq!(
        t.store.event_counts(&web, 3_600).await.expect("hourly"),
        [bucket(BASE_NS, 2), bucket(BASE_NS + HOUR, 1)]
    );
    let all = t
        .store
        .event_counts(&EventQuery::default(), 3_600)
        .await
        .expect("hourly");
    assert_eq!(
        all,
        [
            bucket(BASE_NS, 9),
            bucket(BASE_NS + HOUR, 1),
            bucket(BASE_NS + 2 * HOUR, 1)
        ]
    );
    // Bounds apply; a one-minute bucket splits the first hour.
    let since = EventQuery {
        since: Some(BASE_NS + 5 * SECOND),
        until: Some(BASE_NS + HOUR),
        ..EventQuery::default()
    };
    assert_eq!(
        t.store.event_counts(&since, 60).await.expect("minutes"),
        [bucket(BASE_NS, 4)]
    );
    assert!(matches!(
        t.store.event_counts(&web, 0).await,
        Err(StoreError::InvalidQuery(_))
    ));

    let by = |g: EventGroup, q: &EventQuery| {
        let store = t.store.clone();
        let q = q.clone();
        async move { store.event_counts_by(&q, &g).await.expect("grouped counts") }
    };
    let everything = EventQuery::default();
    assert_eq!(
        by(EventGroup::Host, &everything).await,
        [
            group("web-02", "", 7),
            group("web-01", "", 3),
            group("db-01", "", 1)
        ]
    );
    let logins = EventQuery {
        kind: Some("login".into()),
        ..EventQuery::default()
    };
    assert_eq!(
        by(EventGroup::Field("source_ip".into()), &logins).await,
        [
            group("198.51.100.4", "", 3),
            group("192.0.2.7", "", 1),
            group("203.0.113.9", "", 1)
        ]
    );
    assert_eq!(
        by(EventGroup::Field("source_port".into()), &logins).await,
        [group("50022", "", 4), group("40000", "", 1)]
    );
    let kinds = by(EventGroup::Kind, &everything).await;
    assert_eq!(kinds[0], group("login", "", 5));
    assert_eq!(kinds.len(), 7);
    let paged = EventQuery {
        limit: Some(1),
        offset: 1,
        ..EventQuery::default()
    };
    assert_eq!(by(EventGroup::Host, &paged).await, [group("web-01", "", 3)]);
    for bad in ["dns_answers", "cpu_percent", "no_such_field"] {
        assert!(matches!(
            t.store
                .event_counts_by(&everything, &EventGroup::Field(bad.into()))
                .await,
            Err(StoreError::InvalidQuery(_))
        ));
    }
}

/// Three alerts on two hosts (a-1 raised twice, a-2 closed): the data both count tests read.
async fn seed_counted_alerts(store: &Store) {
    upsert(
        store,
        &[
            alert("a-1", "web-01", "high", BASE_NS, BASE_NS + SECOND, 2),
            alert(
                "a-2",
                "web-01",
                "high",
                BASE_NS + 2 * HOUR,
                BASE_NS + 2 * HOUR,
                1,
            ),
            alert(
                "a-3",
                "db-01",
                "low",
                BASE_NS + 30 * 60 * SECOND,
                BASE_NS + HOUR,
                5,
            ),
        ],
    )
    .await;
    // A later version of a-1 is still one alert.
    upsert(
        store,
        &[alert(
            "a-1",
            "web-01",
            "high",
            BASE_NS,
            BASE_NS + 9 * SECOND,
            7,
        )],
    )
    .await;
    store
        .set_alert_triage("a-2", AlertStatus::Closed, "li.lei", "benign")
        .await
        .expect("triage");
}

pub async fn alert_counts_by_time_rule_host_level_and_status(t: TestStore) {
    seed_counted_alerts(&t.store).await;

    let all = AlertQuery::default();
    assert_eq!(
        t.store.alert_counts(&all, 3_600).await.expect("hourly"),
        [bucket(BASE_NS, 2), bucket(BASE_NS + 2 * HOUR, 1)]
    );
    let by = |g: AlertGroup, q: AlertQuery| {
        let store = t.store.clone();
        async move { store.alert_counts_by(&q, g).await.expect("grouped counts") }
    };
    assert_eq!(
        by(AlertGroup::Rule, all.clone()).await,
        [
            group("rule-high", "SSH brute force (high)", 2),
            group("rule-low", "SSH brute force (low)", 1)
        ]
    );
    assert_eq!(
        by(AlertGroup::Host, all.clone()).await,
        [group("web-01", "", 2), group("db-01", "", 1)]
    );
    assert_eq!(
        by(AlertGroup::Level, all.clone()).await,
        [group("high", "", 2), group("low", "", 1)]
    );
    assert_eq!(
        by(AlertGroup::Status, all.clone()).await,
        [group("open", "", 2), group("closed", "", 1)]
    );
    let open_last_day = AlertQuery {
        statuses: vec![AlertStatus::Open],
        since: Some(BASE_NS + 5 * SECOND),
        ..AlertQuery::default()
    };
    assert_eq!(
        by(AlertGroup::Rule, open_last_day.clone()).await,
        [
            group("rule-high", "SSH brute force (high)", 1),
            group("rule-low", "SSH brute force (low)", 1)
        ]
    );
    assert_eq!(
        t.store
            .alert_counts(&open_last_day, 86_400)
            .await
            .expect("daily"),
        [bucket(BASE_NS, 2)]
    );
    let top_one = AlertQuery {
        limit: Some(1),
        ..AlertQuery::default()
    };
    assert_eq!(
        by(AlertGroup::Host, top_one).await,
        [group("web-01", "", 2)]
    );
}

fn level_bucket(level: &str, start: i64, count: u64) -> LevelBucketCount {
    LevelBucketCount {
        level: level.to_owned(),
        start_unix_nano: start,
        count,
    }
}

fn level_status(level: &str, status: &str, count: u64) -> LevelStatusCount {
    LevelStatusCount {
        level: level.to_owned(),
        status: status.to_owned(),
        count,
    }
}

/// The overview's single query gives what the separate counts give.
pub async fn alert_overview_counts_every_part_in_one_query(t: TestStore) {
    seed_counted_alerts(&t.store).await;

    let all = t
        .store
        .alert_overview(&AlertQuery::default(), 3_600)
        .await
        .expect("overview");
    assert_eq!(
        all.by_level_time,
        [
            level_bucket("high", BASE_NS, 1),
            level_bucket("low", BASE_NS, 1),
            level_bucket("high", BASE_NS + 2 * HOUR, 1),
        ]
    );
    assert_eq!(
        all.by_level_status,
        [
            level_status("high", "closed", 1),
            level_status("high", "open", 1),
            level_status("low", "open", 1),
        ]
    );
    assert_eq!(
        all.top_rules,
        [
            group("rule-high", "SSH brute force (high)", 2),
            group("rule-low", "SSH brute force (low)", 1)
        ]
    );
    assert_eq!(
        all.top_hosts,
        [group("web-01", "", 2), group("db-01", "", 1)]
    );

    let open_recent = AlertQuery {
        statuses: vec![AlertStatus::Open],
        since: Some(BASE_NS + 5 * SECOND),
        ..AlertQuery::default()
    };
    let open = t
        .store
        .alert_overview(&open_recent, 86_400)
        .await
        .expect("overview");
    assert_eq!(
        open.by_level_time,
        [
            level_bucket("high", BASE_NS, 1),
            level_bucket("low", BASE_NS, 1)
        ]
    );
    assert_eq!(
        open.by_level_status,
        [
            level_status("high", "open", 1),
            level_status("low", "open", 1)
        ]
    );

    let top_one = t
        .store
        .alert_overview(
            &AlertQuery {
                limit: Some(1),
                ..AlertQuery::default()
            },
            3_600,
        )
        .await
        .expect("overview");
    assert_eq!(
        top_one.top_rules,
        [group("rule-high", "SSH brute force (high)", 2)]
    );
    assert_eq!(top_one.top_hosts, [group("web-01", "", 2)]);
    assert!(matches!(
        t.store.alert_overview(&AlertQuery::default(), 0).await,
        Err(StoreError::InvalidQuery(_))
    ));
}

pub async fn event_sources_give_first_and_last_per_host_and_source(t: TestStore) {
    let events = vec![
        from_source(
            ssh_fail("s-0", "web-01", BASE_NS + 5 * SECOND, "192.0.2.1"),
            "auth.log",
        ),
        from_source(
            ssh_fail("s-1", "web-01", BASE_NS + DAY, "192.0.2.1"),
            "auth.log",
        ),
        from_source(
            ssh_fail("s-2", "web-01", BASE_NS + 3 * SECOND, "192.0.2.1"),
            "journald",
        ),
        from_source(
            ssh_fail("s-3", "db-01", BASE_NS + 2 * DAY, "192.0.2.1"),
            "auth.log",
        ),
    ];
    write(&t.store, "agent-a", 1, &events).await;
    let span = |hostname: &str, source: &str, first: i64, last: i64, count: u64| SourceSpan {
        hostname: hostname.to_owned(),
        source: source.to_owned(),
        first_unix_nano: first,
        last_unix_nano: last,
        count,
    };
    assert_eq!(
        t.store
            .event_sources(&EventQuery::default())
            .await
            .expect("sources"),
        [
            span("db-01", "auth.log", BASE_NS + 2 * DAY, BASE_NS + 2 * DAY, 1),
            span("web-01", "auth.log", BASE_NS + 5 * SECOND, BASE_NS + DAY, 2),
            span(
                "web-01",
                "journald",
                BASE_NS + 3 * SECOND,
                BASE_NS + 3 * SECOND,
                1
            ),
        ]
    );
    let web_recent = EventQuery {
        host: Some("web-01".into()),
        since: Some(BASE_NS + 4 * SECOND),
        ..EventQuery::default()
    };
    assert_eq!(
        t.store.event_sources(&web_recent).await.expect("sources"),
        [span(
            "web-01",
            "auth.log",
            BASE_NS + 5 * SECOND,
            BASE_NS + DAY,
            2
        )]
    );
}
