//! One store test suite, run against both back-ends: every case below runs once on the
//! embedded SQLite store (in a temporary directory) and once on ClickHouse at
//! `SHAOBING_TEST_CLICKHOUSE_URL` (default `http://127.0.0.1:8123`), each in a fresh database
//! that is dropped afterwards. An unreachable ClickHouse fails the ClickHouse cases: CI always
//! runs a server, so a skip would hide a broken store.

#[path = "store_suite/batch_cases.rs"]
mod batch_cases;
#[path = "store_suite/builders.rs"]
mod builders;
#[path = "store_suite/event_cases.rs"]
mod event_cases;
#[path = "store_suite/harness.rs"]
mod harness;
#[path = "store_suite/page_cases.rs"]
mod page_cases;
#[path = "store_suite/query_cases.rs"]
mod query_cases;
#[path = "store_suite/record_cases.rs"]
mod record_cases;

use shaobing_collector::store::{
    BatchWrite, ClickHouseOptions, StatementKind, Store, WriteOutcome,
};
use shaobing_wire::v1::Event;

use batch_cases::*;
use builders::*;
use event_cases::*;
use harness::{Backend, Location, TestStore, run};
use page_cases::*;
use query_cases::*;
use record_cases::*;

macro_rules! store_suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::Embedded, super::$case).await;
                }
            )*
        }
        mod clickhouse_server {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::run(super::Backend::ClickHouse, super::$case).await;
                }
            )*
        }
    };
}

store_suite!(
    events_of_every_kind_read_back_unchanged,
    event_field_filters_match_typed_columns,
    same_seq_twice_is_stored_once,
    dedup_survives_a_restart,
    last_seq_tracks_each_agent,
    alert_upsert_keeps_one_row_with_the_newest_count,
    alert_filters_select_by_host_level_time_rule_and_text,
    alert_triage_survives_later_upserts,
    alert_pages_follow_the_newest_version_and_latest_triage,
    one_alert_is_found_by_id_with_its_latest_state,
    count_events_applies_every_filter,
    agents_upsert_and_list,
    odd_bytes_and_huge_raw_lines_are_kept_exactly,
    bad_queries_are_refused,
    check_results_are_kept_with_latest_per_check,
    audit_log_appends_and_lists_newest_first,
    events_are_listed_newest_first_with_paging,
    write_batches_stores_many_agents_and_drops_duplicates,
    write_batches_keeps_each_agents_order_in_one_call,
    retention_drops_old_partitions_and_nothing_newer,
    event_counts_by_time_bucket_and_field,
    alert_counts_by_time_rule_host_level_and_status,
    alert_overview_counts_every_part_in_one_query,
    event_sources_give_first_and_last_per_host_and_source,
);

// ---------------------------------------------------------------------------------------------
// ClickHouse only: a batch whose write was interrupted after some events landed, and the
// number of statements a multi-batch write sends.

fn clickhouse_location(t: &TestStore) -> (String, String) {
    let Location::ClickHouse { url, database } = &t.location else {
        panic!("ClickHouse location expected");
    };
    (url.clone(), database.clone())
}

/// What a collector that died mid-batch leaves: the "being written" marker of agent-a's
/// batch 7 and two of its three events (`7-0`, `7-1`).
async fn simulate_interrupted_batch(t: &TestStore) {
    let (url, database) = clickhouse_location(t);
    let client = clickhouse::Client::default()
        .with_url(url)
        .with_database(database);
    let day = BASE_NS / DAY;
    for sql in [
        "INSERT INTO batches (agent_id, seq, state, event_count, alert_count, written_ns, \
             written_date) VALUES ('agent-a', 7, 0, 3, 0, 0, today())"
            .to_owned(),
        format!(
            "INSERT INTO events (event_id, agent_id, seq, time_ns, date, hostname, kind) \
                 VALUES ('7-0', 'agent-a', 7, {}, toDate({day}), 'web-01', 'login'), \
                 ('7-1', 'agent-a', 7, {}, toDate({day}), 'web-01', 'login')",
            BASE_NS,
            BASE_NS + SECOND
        ),
    ] {
        client
            .query(&sql)
            .execute()
            .await
            .expect("simulate a crash");
    }
}

fn batch_of_three() -> Vec<Event> {
    (0..3)
        .map(|i| {
            ssh_fail(
                &format!("7-{i}"),
                "web-01",
                BASE_NS + i * SECOND,
                "198.51.100.4",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_resumes_an_interrupted_batch_without_duplicates() {
    run(Backend::ClickHouse, |t: TestStore| async move {
        simulate_interrupted_batch(&t).await;
        let restarted = t.reopen().await;
        assert_eq!(restarted.last_seq("agent-a").await.expect("last seq"), None);
        let batch = batch_of_three();
        assert_eq!(
            write(&restarted, "agent-a", 7, &batch).await,
            WriteOutcome::Stored
        );
        let mut got = ids(&restarted.events(&query_all()).await.expect("events"));
        got.sort();
        assert_eq!(got, ["7-0", "7-1", "7-2"]);
        assert_eq!(
            restarted.last_seq("agent-a").await.expect("last seq"),
            Some(7)
        );
        assert_eq!(
            write(&restarted, "agent-a", 7, &batch).await,
            WriteOutcome::Duplicate
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_resumes_an_interrupted_batch_inside_a_multi_batch_call() {
    run(Backend::ClickHouse, |t: TestStore| async move {
        simulate_interrupted_batch(&t).await;
        let restarted = t.reopen().await;
        let seven = batch_of_three();
        let other = vec![ssh_fail("1-0", "db-01", BASE_NS, "198.51.100.4")];
        let batches = [
            BatchWrite {
                agent_id: "agent-b",
                seq: 1,
                events: &other,
                alerts: &[],
            },
            BatchWrite {
                agent_id: "agent-a",
                seq: 7,
                events: &seven,
                alerts: &[],
            },
            BatchWrite {
                agent_id: "agent-a",
                seq: 8,
                events: &[],
                alerts: &[],
            },
        ];
        let outcomes = restarted.write_batches(&batches).await.expect("write");
        assert_eq!(outcomes, [WriteOutcome::Stored; 3]);
        let mut got = ids(&restarted.events(&query_all()).await.expect("events"));
        got.sort();
        assert_eq!(got, ["1-0", "7-0", "7-1", "7-2"]);
        assert_eq!(
            restarted.last_seq("agent-a").await.expect("last seq"),
            Some(8)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_write_batches_sends_at_most_five_inserts_per_call() {
    run(Backend::ClickHouse, |t: TestStore| async move {
        let (url, database) = clickhouse_location(&t);
        let options = ClickHouseOptions {
            record_statements: true,
            ..ClickHouseOptions::database(&database)
        };
        let store = Store::open_clickhouse_with(&url, &options)
            .await
            .expect("open with recording");
        let Some(recording) = store.as_clickhouse() else {
            panic!("a ClickHouse store was opened");
        };
        let agents: Vec<String> = (0..12).map(|i| format!("agent-{i:02}")).collect();
        let mut check = every_kind("web-01").swap_remove(3);
        check.event_id = "c-0".into();
        let events: Vec<Vec<Event>> = (0..60)
            .map(|i| {
                vec![
                    ssh_fail(
                        &format!("{i}-0"),
                        "web-01",
                        BASE_NS + i * SECOND,
                        "192.0.2.1",
                    ),
                    check.clone(),
                ]
            })
            .collect();
        let raised = [detect_alert(&alert(
            "al-1", "web-01", "high", BASE_NS, BASE_NS, 1,
        ))];
        let batches: Vec<BatchWrite<'_>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| BatchWrite {
                agent_id: &agents[i % agents.len()],
                seq: (i / agents.len()) as u64 + 1,
                events: e,
                alerts: &raised,
            })
            .collect();
        let before = recording.recorded().len();
        let outcomes = store.write_batches(&batches).await.expect("write");
        assert!(outcomes.iter().all(|o| *o == WriteOutcome::Stored));
        let sent = &recording.recorded()[before..];
        let inserts: Vec<&str> = sent
            .iter()
            .filter(|s| s.kind == StatementKind::Insert)
            .map(|s| s.name)
            .collect();
        assert_eq!(
            inserts,
            [
                "insert.batches",
                "insert.events",
                "insert.check_results",
                "insert.alerts",
                "insert.batches"
            ]
        );
        assert_eq!(
            sent.len(),
            6,
            "one state query plus five inserts: {sent:#?}"
        );
        assert_eq!(store.count_events(&query_all()).await.expect("count"), 120);
        // Sent again: one state query, nothing inserted.
        let before = recording.recorded().len();
        let again = store.write_batches(&batches).await.expect("write again");
        assert!(again.iter().all(|o| *o == WriteOutcome::Duplicate));
        assert_eq!(recording.recorded().len() - before, 1);
    })
    .await;
}
