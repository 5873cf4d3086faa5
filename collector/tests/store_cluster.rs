//! The cluster layout for real: ZooKeeper and two ClickHouse 18.16 servers on loopback
//! (`deploy/clickhouse/cluster/local-cluster.sh`: cluster `shaobing`, one shard, two
//! replicas), each collector store writing through `Distributed` tables into
//! `ReplicatedMergeTree` tables created `ON CLUSTER`.
//!
//! Needs `clickhouse-server` and Debian's `zookeeper` package; fails (on purpose, CI installs
//! them) when they are missing. Everything runs in a temporary directory and is stopped
//! afterwards, whether the test passes or not.

#[allow(dead_code)]
#[path = "store_suite/builders.rs"]
mod builders;

use std::path::{Path, PathBuf};
use std::process::Command;

use shaobing_collector::store::{
    AlertGroup, AlertQuery, AlertStatus, BatchWrite, ClickHouseOptions, RetentionPolicy, Store,
    WriteOutcome,
};
use shaobing_wire::v1::Event;

use builders::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/clickhouse/cluster/local-cluster.sh"
);

/// Whether the 32 ports the script uses from `base` are free on loopback.
fn ports_free(base: u32) -> bool {
    (base..base + 32).all(|port| {
        u16::try_from(port)
            .ok()
            .is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
    })
}

/// The running cluster; stopped when dropped.
struct LocalCluster {
    dir: tempfile::TempDir,
    port_base: u32,
    urls: Vec<String>,
}

impl LocalCluster {
    fn start() -> LocalCluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        // Spread concurrent runs over different ports, below the kernel's
        // ephemeral range (32768+), and skip blocks something already holds.
        let first = std::process::id() % 300;
        let port_base = (0..300)
            .map(|i| 20_000 + ((first + i) % 300) * 40)
            .find(|base| ports_free(*base))
            .expect("a free block of 32 loopback ports in 20000-32000");
        let out = Command::new("bash")
            .arg(SCRIPT)
            .arg("start")
            .arg(dir.path())
            .env("SHAOBING_CLUSTER_PORT_BASE", port_base.to_string())
            .output()
            .expect("run local-cluster.sh");
        let mut cluster = LocalCluster {
            dir,
            port_base,
            urls: Vec::new(),
        };
        assert!(
            out.status.success(),
            "could not start the local ClickHouse cluster (needs clickhouse-server and \
             `apt-get install zookeeper`): {}\nlogs: {}",
            String::from_utf8_lossy(&out.stderr),
            logs(cluster.dir.path())
        );
        cluster.urls = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(cluster.urls.len(), 2, "two node URLs expected");
        cluster
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let stopped = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(self.dir.path())
            .env("SHAOBING_CLUSTER_PORT_BASE", self.port_base.to_string())
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            eprintln!(
                "local-cluster.sh stop failed in {}",
                self.dir.path().display()
            );
        }
    }
}

/// The server error logs, for a failure message.
fn logs(dir: &Path) -> String {
    ["node1", "node2"]
        .iter()
        .map(|node| {
            let path: PathBuf = dir.join(node).join("log").join("server.err.log");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            format!(
                "{}:\n{}",
                path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn local_count(url: &str, sql: &str) -> u64 {
    clickhouse::Client::default()
        .with_url(url)
        .with_validation(false)
        .query(sql)
        .fetch_one()
        .await
        .unwrap_or_else(|e| panic!("{sql} on {url}: {e}"))
}

async fn open(
    cluster: &LocalCluster,
    url: &str,
    database: &str,
    retention: RetentionPolicy,
) -> Store {
    let options = ClickHouseOptions {
        cluster: Some("shaobing".into()),
        insert_quorum: Some(2),
        retention,
        ..ClickHouseOptions::database(database)
    };
    Store::open_clickhouse_with(url, &options)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "open the cluster store at {url}: {e}\nlogs: {}",
                logs(cluster.dir.path())
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_share_a_replicated_cluster() {
    let cluster = LocalCluster::start();
    let (one, two) = (&cluster.urls[0], &cluster.urls[1]);
    let database = "shaobing_cluster";
    let policy = RetentionPolicy {
        events_days: 2,
        ..RetentionPolicy::default()
    };
    let first = open(&cluster, one, database, policy).await;
    // A second collector on the other node: the schema exists, its migration is recorded.
    let second = open(&cluster, two, database, policy).await;
    assert_eq!(
        first.as_clickhouse().and_then(|s| s.cluster()),
        Some("shaobing")
    );
    let migrations = local_count(
        two,
        &format!("SELECT count() FROM {database}.schema_migrations"),
    )
    .await;
    assert_eq!(
        migrations, 1,
        "migration applied once for the whole cluster"
    );

    let days: Vec<Vec<Event>> = (0..4)
        .map(|n| {
            vec![ssh_fail(
                &format!("{n}-0"),
                "web-01",
                BASE_NS + n * DAY,
                "198.51.100.4",
            )]
        })
        .collect();
    let raised = [detect_alert(&alert(
        "al-1", "web-01", "high", BASE_NS, BASE_NS, 1,
    ))];
    let batches: Vec<BatchWrite<'_>> = days
        .iter()
        .enumerate()
        .map(|(i, events)| BatchWrite {
            agent_id: if i % 2 == 0 { "agent-a" } else { "agent-b" },
            seq: i as u64 + 1,
            events,
            alerts: &raised,
        })
        .collect();
    let outcomes = first
        .write_batches(&batches)
        .await
        .expect("write on node 1");
    assert_eq!(outcomes, [WriteOutcome::Stored; 4]);
    // The other collector sees the data and the dedup state at once.
    assert_eq!(second.count_events(&query_all()).await.expect("count"), 4);
    let listed = second.events(&query_all()).await.expect("events page");
    assert_eq!(ids(&listed), ["3-0", "2-0", "1-0", "0-0"]);
    assert_eq!(second.last_seq("agent-b").await.expect("last seq"), Some(4));
    let again = second
        .write_batches(&batches)
        .await
        .expect("resend on node 2");
    assert_eq!(again, [WriteOutcome::Duplicate; 4]);
    let alerts = second.alerts(&AlertQuery::default()).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    // Status filters read the triage table inside the alerts query (`GLOBAL IN` on a cluster).
    let id = alerts[0].alert_id.clone();
    second
        .set_alert_triage(&id, AlertStatus::Closed, "li.lei", "误报")
        .await
        .expect("triage");
    let with_status = |statuses: Vec<AlertStatus>| AlertQuery {
        statuses,
        since: Some(0),
        ..AlertQuery::default()
    };
    let closed = first
        .alerts(&with_status(vec![AlertStatus::Closed]))
        .await
        .expect("closed alerts");
    assert_eq!(
        closed
            .iter()
            .map(|a| a.alert_id.as_str())
            .collect::<Vec<_>>(),
        [id.as_str()]
    );
    let open = first
        .alerts(&with_status(vec![AlertStatus::Open]))
        .await
        .expect("open alerts");
    assert!(open.is_empty(), "{open:?}");
    let by_status = first
        .alert_counts_by(&with_status(vec![AlertStatus::Closed]), AlertGroup::Status)
        .await
        .expect("counts");
    assert_eq!(
        by_status
            .iter()
            .map(|g| (g.key.as_str(), g.count))
            .collect::<Vec<_>>(),
        [("closed", 1)]
    );
    // Both replicas hold every row (insert_quorum = 2).
    for url in [one, two] {
        let local = local_count(url, &format!("SELECT count() FROM {database}.events_local")).await;
        assert_eq!(local, 4, "replica at {url}");
    }

    // Retention drops the old day partitions on every replica.
    let now = BASE_NS + 3 * DAY + 3_600 * SECOND;
    let report = first.apply_retention(now).await.expect("retention");
    let events = report.tables.iter().find(|t| t.table == "events");
    assert_eq!(
        events.map(|t| (t.dropped_partitions.clone(), t.removed_rows)),
        Some((vec!["20240501".to_owned(), "20240502".to_owned()], 2))
    );
    for url in [one, two] {
        let mut kept: Vec<String> = clickhouse::Client::default()
            .with_url(url.as_str())
            .with_validation(false)
            .query(&format!("SELECT event_id FROM {database}.events_local"))
            .fetch_all()
            .await
            .expect("local events");
        kept.sort();
        assert_eq!(kept, ["2-0", "3-0"], "replica at {url}");
    }

    // The collector binary's switch: `--clickhouse-cluster` creates the cluster layout
    // (replicated local tables on every node, Distributed `events`) for a new database.
    let cli_database = "shaobing_cluster_cli";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shaobing-collector"))
        .args(["agents", "--clickhouse-url", one.as_str()])
        .args(["--clickhouse-database", cli_database])
        .args(["--clickhouse-cluster", "shaobing"])
        .args(["--clickhouse-insert-quorum", "2"])
        .output()
        .expect("run shaobing-collector");
    assert!(
        out.status.success(),
        "agents over the cluster: {}\nlogs: {}",
        String::from_utf8_lossy(&out.stderr),
        logs(cluster.dir.path())
    );
    for url in [one, two] {
        let engines: Vec<(String, String)> = clickhouse::Client::default()
            .with_url(url.as_str())
            .with_validation(false)
            .query(&format!(
                "SELECT name, engine FROM system.tables WHERE database = '{cli_database}' \
                 AND name IN ('events', 'events_local') ORDER BY name"
            ))
            .fetch_all()
            .await
            .expect("tables");
        assert_eq!(
            engines,
            [
                ("events".to_owned(), "Distributed".to_owned()),
                ("events_local".to_owned(), "ReplicatedMergeTree".to_owned()),
            ],
            "node at {url}"
        );
    }
}
