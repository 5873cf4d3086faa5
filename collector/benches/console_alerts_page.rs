//! Benchmark: the console's alerts list page over one million alerts in ClickHouse.
//!
//! Creates a unique database on the local ClickHouse (`SHAOBING_TEST_CLICKHOUSE_URL`,
//! default `http://127.0.0.1:8123`), stores 1 000 000 alerts spread over 30 days
//! through the store (ids made like detection makes them: opening time, then a hash;
//! every 10th alert raised a second time with another summary; every 500th triaged, some
//! of those closed, the rest acknowledged), then renders pages through the console's
//! router in-process (session cookie, guard, handler, store query, HTML) and prints the
//! server time per page. Target: ≤ 300 ms for the alerts pages; the overview (one
//! store query for all its counts) well under 1 s. The database is dropped at the end.
//!
//! Run: `cargo bench -p shaobing-collector --bench console_alerts_page`
//! (`SHAOBING_BENCH_ALERTS=100000` for a smaller run).
#![allow(clippy::print_stdout)] // a benchmark's output is its figures

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use shaobing_collector::console::{self, ConsoleConfig, PasswordCost, Role, RuleSnapshot};
use shaobing_collector::metrics::Metrics;
use shaobing_collector::store::{AlertStatus, Store};
use shaobing_detect::Alert;
use tower::ServiceExt;

const LEVELS: [(&str, u64); 4] = [("critical", 2), ("high", 10), ("medium", 30), ("low", 58)];
const DAY_NS: i64 = 86_400 * 1_000_000_000;
const RUNS: usize = 7;

fn level_of(i: u64) -> &'static str {
    let mut bucket = i % 100;
    for (level, share) in LEVELS {
        if bucket < share {
            return level;
        }
        bucket -= share;
    }
    "low"
}

fn alert(i: u64, now: i64, total: u64) -> Alert {
    let t = now - (30 * DAY_NS) + (i as i64) * (30 * DAY_NS / total as i64);
    let host = format!("web-{}", i % 500);
    let rule = i % 50;
    let digest = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes();
    Alert {
        alert_id: shaobing_detect::time_ordered_id(t, &digest),
        rule_id: format!("00000000-0000-4000-8000-{rule:012}"),
        rule_title: format!("规则 {rule}：SSH 暴力破解"),
        level: level_of(i).to_owned(),
        kind: "correlation".to_owned(),
        tags: vec!["attack.t1110".to_owned()],
        mlps: vec!["8.1.4.2".to_owned()],
        agent_id: format!("agent-{host}"),
        hostname: host,
        first_time_unix_nano: t,
        last_time_unix_nano: t + 60_000_000_000,
        count: 6,
        group_key: format!("SourceIp=203.0.{}.{}", (i / 250) % 250, i % 250),
        event_ids: vec![format!("{i}-0"), format!("{i}-1")],
        summary: format!(
            "203.0.{}.{} 在 60 秒内 SSH 登录失败 6 次",
            (i / 250) % 250,
            i % 250
        ),
    }
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(samples[samples.len() / 2]);
    let p95 = ms(samples[(samples.len() * 95 / 100).min(samples.len() - 1)]);
    (median, p95, ms(*samples.last().unwrap_or(&Duration::ZERO)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SHAOBING_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    let total: u64 = std::env::var("SHAOBING_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let database = format!("shaobing_bench_console_{}", std::process::id());
    let store = Store::open_clickhouse(&url, &database).await?;
    let result = run(&store, total).await;
    let drop = clickhouse::Client::default()
        .with_url(&url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
    if let Err(error) = drop {
        println!("could not drop {database}: {error}");
    }
    result
}

async fn run(store: &Store, total: u64) -> anyhow::Result<()> {
    let now = shaobing_wire::now_unix_nano();
    let started = Instant::now();
    let chunk = 100_000u64;
    for start in (0..total).step_by(chunk as usize) {
        let alerts: Vec<Alert> = (start..(start + chunk).min(total))
            .map(|i| alert(i, now, total))
            .collect();
        store.upsert_alerts(&alerts).await?;
        // Every 10th alert raised again: more events, a later end, a new summary.
        let again: Vec<Alert> = alerts
            .iter()
            .step_by(10)
            .map(|a| Alert {
                count: a.count + 3,
                last_time_unix_nano: a.last_time_unix_nano + 30_000_000_000,
                summary: format!("{}（再次）", a.summary),
                ..a.clone()
            })
            .collect();
        store.upsert_alerts(&again).await?;
    }
    println!(
        "stored {total} alerts (+{} second versions) in {:.1} s",
        total.div_ceil(10),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let triaged: Vec<u64> = (0..total).step_by(500).collect();
    for chunk in triaged.chunks(25) {
        let calls = chunk.iter().map(|&i| {
            let id = alert(i, now, total).alert_id;
            let status = if i % 1000 == 0 {
                AlertStatus::Closed
            } else {
                AlertStatus::Acknowledged
            };
            let store = store.clone();
            async move { store.set_alert_triage(&id, status, "sec", "bench").await }
        });
        for result in futures::future::join_all(calls).await {
            result?;
        }
    }
    println!(
        "triaged {} alerts in {:.1} s",
        triaged.len(),
        started.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut config = ConsoleConfig::new(listen, dir.path().to_path_buf());
    config.password_cost = PasswordCost::for_tests();
    let state = console::build_state(
        config,
        store.clone(),
        Arc::new(Metrics::default()),
        Arc::new(RuleSnapshot::default()),
    )
    .await?;
    state
        .db
        .create_user(
            "sec",
            "",
            Role::Secadmin,
            "bench",
            PasswordCost::for_tests(),
            now,
        )
        .await?;
    state
        .db
        .change_password("sec", "Bench-Passw0rd", PasswordCost::for_tests())
        .await?;
    let (cookie, _) = state.db.create_session("sec", "127.0.0.1", now).await?;
    let router = console::router(state);

    let pages = [
        ("alerts page 1 (default: last 7 days)", "/alerts"),
        ("alerts page 1, all time", "/alerts?range=all"),
        ("alerts page 20, all time", "/alerts?range=all&page=20"),
        ("alerts page 100, all time", "/alerts?range=all&page=100"),
        (
            "alerts: critical, open, 30 days",
            "/alerts?range=30d&level=critical&status=open",
        ),
        (
            "alerts: closed, all time",
            "/alerts?range=all&status=closed",
        ),
        ("alerts: host filter", "/alerts?range=all&host=web-42"),
        ("alerts: text search", "/alerts?range=all&q=203.0.7."),
        ("API /api/v1/alerts page 1", "/api/v1/alerts?range=all"),
        ("live rows /alerts/fresh", "/alerts/fresh?after=0&range=1h"),
        ("overview (24 h)", "/overview"),
        ("overview (7 days)", "/overview?hours=168"),
        ("overview (30 days: every alert)", "/overview?hours=720"),
        (
            "API /api/v1/overview (30 days)",
            "/api/v1/overview?hours=720",
        ),
    ];
    println!("console pages over {total} alerts in ClickHouse ({RUNS} runs each, server time)");
    println!(
        "{:<42} {:>10} {:>10} {:>10} {:>8}",
        "page", "median ms", "p95 ms", "max ms", "bytes"
    );
    for (name, path) in pages {
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..RUNS {
            let request = Request::get(path)
                .header("cookie", format!("sb_session={cookie}"))
                .body(Body::empty())?;
            let t = Instant::now();
            let response = router.clone().oneshot(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            samples.push(t.elapsed());
            anyhow::ensure!(
                status.is_success(),
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            bytes = body.len();
        }
        let (median, p95, max) = stats(samples);
        println!("{name:<42} {median:>10.1} {p95:>10.1} {max:>10.1} {bytes:>8}");
    }
    Ok(())
}
