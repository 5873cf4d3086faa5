//! One store test suite, run against both back-ends: every case below runs once on the
//! embedded SQLite store (in a temporary directory) and once on ClickHouse at
//! `SHAOBING_TEST_CLICKHOUSE_URL` (default `http://127.0.0.1:8123`), each in a fresh database
//! that is dropped afterwards. An unreachable ClickHouse fails the ClickHouse cases: CI always
//! runs a server, so a skip would hide a broken store.

#[path = "store_suite/builders.rs"]
mod builders;
#[path = "store_suite/event_cases.rs"]
mod event_cases;
#[path = "store_suite/harness.rs"]
mod harness;
#[path = "store_suite/record_cases.rs"]
mod record_cases;

use shaobing_collector::store::WriteOutcome;
use shaobing_wire::v1::Event;

use builders::*;
use event_cases::*;
use harness::{Backend, Location, TestStore, run};
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
    count_events_applies_every_filter,
    agents_upsert_and_list,
    odd_bytes_and_huge_raw_lines_are_kept_exactly,
    bad_queries_are_refused,
    check_results_are_kept_with_latest_per_check,
    audit_log_appends_and_lists_newest_first,
    events_are_listed_newest_first_with_paging,
    retention_drops_whole_days_and_keeps_the_rest,
);

// ---------------------------------------------------------------------------------------------
// ClickHouse only: a batch whose write was interrupted after some events landed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_resumes_an_interrupted_batch_without_duplicates() {
    run(Backend::ClickHouse, |t: TestStore| async move {
        let Location::ClickHouse { url, database } = &t.location else {
            panic!("ClickHouse location expected");
        };
        let client = clickhouse::Client::default()
            .with_url(url)
            .with_database(database);
        // What a collector that died mid-batch leaves: the "being written" marker and two of
        // the three events.
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
        let restarted = t.reopen().await;
        assert_eq!(restarted.last_seq("agent-a").await.expect("last seq"), None);
        let batch: Vec<Event> = (0..3)
            .map(|i| {
                ssh_fail(
                    &format!("7-{i}"),
                    "web-01",
                    BASE_NS + i * SECOND,
                    "198.51.100.4",
                )
            })
            .collect();
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
