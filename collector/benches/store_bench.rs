//! Store benchmark against a real ClickHouse server: insert throughput through
//! `Store::write_batches` and the latency of the console's main queries over a large table.
//!
//! ```sh
//! cargo bench -p shaobing-collector --bench store_bench
//! SHAOBING_BENCH_EVENTS=1000000 SHAOBING_BENCH_CLICKHOUSE_URL=http://127.0.0.1:8123 \
//!     cargo bench -p shaobing-collector --bench store_bench
//! ```
//!
//! Data: `SHAOBING_BENCH_EVENTS` events (default 10 million) from 1 000 hosts over 7 days,
//! written in time order as a collector would: each `write_batches` call merges agents'
//! batches of 500 events up to `SHAOBING_BENCH_CALL_EVENTS` events (default 100 000, the
//! collector's default flush), 0.5 % of events raising an alert over 20 rules. Targets: ≥ 300 000 rows/s
//! inserted, ≤ 500 ms for each main query. Runs in a database of its own, dropped at the end
//! (kept with `SHAOBING_BENCH_KEEP=1`). `RUST_LOG=shaobing_collector::store=trace` logs how
//! long every statement took.

#![allow(clippy::print_stdout)] // a benchmark's output is its figures

use std::time::{Duration, Instant};

use shaobing_collector::store::{
    AlertGroup, AlertQuery, AlertStatus, BatchWrite, ClickHouseOptions, EventGroup, EventQuery,
    FieldFilter, Store, WireCompression,
};
use shaobing_detect::Alert;
use shaobing_wire::v1::event::Body;
use shaobing_wire::v1::{
    Direction, Event, FileEvent, FileOp, Host, LoginAction, LoginEvent, NetAction, NetworkEvent,
    Outcome, ProcessEvent,
};

const HOSTS: u64 = 1_000;
const EVENTS_PER_BATCH: usize = 500;
const DAYS: i64 = 7;
const SECOND: i64 = 1_000_000_000;
/// 2024-05-01T00:00:00Z: the data spans the 7 days after it.
const START_NS: i64 = 1_714_521_600 * SECOND;
const RULES: u64 = 20;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ip(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix}.{}.{}", rng.below(256), rng.below(254) + 1)
}

fn event(rng: &mut Rng, host: u64, id: String, time: i64) -> Event {
    let body = match rng.below(100) {
        0..60 => Body::Login(LoginEvent {
            action: if rng.below(4) == 0 {
                LoginAction::SshAccept
            } else {
                LoginAction::SshFail
            } as i32,
            outcome: Outcome::Failure as i32,
            user: ["root", "admin", "oracle", "deploy"][rng.below(4) as usize].to_owned(),
            source_ip: ip(rng, "198.51"),
            source_port: 30_000 + rng.below(30_000) as u32,
            auth_method: "password".to_owned(),
            service: "sshd".to_owned(),
            pid: rng.below(60_000) as u32,
            ..LoginEvent::default()
        }),
        60..85 => Body::Network(NetworkEvent {
            action: NetAction::Connect as i32,
            transport: "tcp".to_owned(),
            src_ip: format!("10.0.{}.{}", host / 250, host % 250 + 1),
            src_port: 40_000 + rng.below(20_000) as u32,
            dst_ip: ip(rng, "203.0"),
            dst_port: [22, 80, 443, 3306, 6379][rng.below(5) as usize],
            direction: Direction::Outbound as i32,
            bytes: rng.below(1_000_000),
            packets: rng.below(1_000),
            exe: "/usr/bin/curl".to_owned(),
            user: "www-data".to_owned(),
            ..NetworkEvent::default()
        }),
        85..95 => Body::File(FileEvent {
            op: FileOp::Modify as i32,
            path: format!("/etc/app/conf-{}.yml", rng.below(50)),
            size: rng.below(100_000),
            mode: 0o100_644,
            owner: "root".to_owned(),
            hash_after: format!("{:064x}", rng.next()),
            watched_root: "/etc".to_owned(),
            ..FileEvent::default()
        }),
        _ => Body::Process(ProcessEvent {
            pid: rng.below(60_000) as u32,
            ppid: 1,
            exe: "/usr/bin/python3".to_owned(),
            cmdline: format!("python3 /opt/job-{}.py", rng.below(100)),
            user: "app".to_owned(),
            ..ProcessEvent::default()
        }),
    };
    Event {
        event_id: id,
        time_unix_nano: time,
        host: Some(Host {
            hostname: format!("host-{host:04}"),
            agent_id: format!("agent-{host:04}"),
            ips: vec![format!("10.0.{}.{}", host / 250, host % 250 + 1)],
            os: "Debian GNU/Linux 12".to_owned(),
        }),
        source: "auth.log".to_owned(),
        raw: format!("Failed password for root from 198.51.0.1 port 22 ssh2 #{time}"),
        body: Some(body),
    }
}

fn alert(rng: &mut Rng, host: u64, id: String, time: i64) -> Alert {
    let rule = rng.below(RULES);
    Alert {
        alert_id: id,
        rule_id: format!("rule-{rule:02}"),
        rule_title: format!("Benchmark rule {rule}"),
        level: ["low", "medium", "high", "critical"][(rule % 4) as usize].to_owned(),
        kind: "detection".to_owned(),
        tags: vec!["attack.t1110".to_owned()],
        mlps: vec!["8.1.4.2".to_owned()],
        agent_id: format!("agent-{host:04}"),
        hostname: format!("host-{host:04}"),
        first_time_unix_nano: time,
        last_time_unix_nano: time,
        count: 1,
        group_key: String::new(),
        event_ids: vec![],
        summary: "benchmark alert".to_owned(),
    }
}

/// One write_batches call: `agents` agents' batches covering `[from, to)`.
struct Call {
    agents: Vec<String>,
    seqs: Vec<u64>,
    events: Vec<Vec<Event>>,
    alerts: Vec<Vec<Alert>>,
}

fn make_call(rng: &mut Rng, agents: usize, call: u64, from: i64, to: i64) -> Call {
    let mut c = Call {
        agents: Vec::new(),
        seqs: Vec::new(),
        events: Vec::new(),
        alerts: Vec::new(),
    };
    let first_host = (call * agents as u64) % HOSTS;
    let span = (to - from).max(1);
    for a in 0..agents as u64 {
        let host = (first_host + a) % HOSTS;
        // Agents started at different times: their seq counters are far apart.
        let seq = host * 1_000_003 + call + 1;
        let mut events = Vec::with_capacity(EVENTS_PER_BATCH);
        let mut alerts = Vec::new();
        for i in 0..EVENTS_PER_BATCH as i64 {
            let time = from + (span * i) / EVENTS_PER_BATCH as i64 + rng.below(1_000) as i64;
            events.push(event(rng, host, format!("{seq}-{i}"), time));
            if rng.below(200) == 0 {
                alerts.push(alert(rng, host, format!("al-{host}-{seq}-{i}"), time));
            }
        }
        c.agents.push(format!("agent-{host:04}"));
        c.seqs.push(seq);
        c.events.push(events);
        c.alerts.push(alerts);
    }
    c
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// `SHAOBING_BENCH_COMPRESSION`: `lz4` (default) or `none`.
fn compression() -> WireCompression {
    match std::env::var("SHAOBING_BENCH_COMPRESSION").as_deref() {
        Ok("none") => WireCompression::None,
        _ => WireCompression::Lz4,
    }
}

/// `SHAOBING_BENCH_LANES`: concurrent `write_batches` calls per step (default 1).
fn lanes() -> usize {
    std::env::var("SHAOBING_BENCH_LANES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1)
}

async fn insert(store: &Store, total: u64, per_call: u64) -> Result<(u64, Duration), String> {
    let agents = (per_call as usize / EVENTS_PER_BATCH).max(1);
    let calls = total.div_ceil((agents * EVENTS_PER_BATCH) as u64);
    let span = DAYS * 86_400 * SECOND;
    let mut rng = Rng(0x5eed_5a0b_1e9c);
    let mut spent = Duration::ZERO;
    let mut rows = 0;
    for call in 0..calls {
        let from = START_NS + span * call as i64 / calls as i64;
        let to = START_NS + span * (call as i64 + 1) / calls as i64;
        let c = make_call(&mut rng, agents, call, from, to);
        let batches: Vec<BatchWrite<'_>> = (0..c.agents.len())
            .map(|i| BatchWrite {
                agent_id: &c.agents[i],
                seq: c.seqs[i],
                events: &c.events[i],
                alerts: &c.alerts[i],
            })
            .collect();
        let started = Instant::now();
        // Lanes: agents split over `lanes` concurrent calls (disjoint agents, as a
        // writer with several lanes keyed by agent would do).
        let lanes = lanes();
        let parts: Vec<Vec<BatchWrite<'_>>> = (0..lanes)
            .map(|lane| {
                batches
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % lanes == lane)
                    .map(|(_, b)| *b)
                    .collect()
            })
            .collect();
        futures::future::try_join_all(parts.iter().map(|part| store.write_batches(part)))
            .await
            .map_err(|e| format!("write_batches: {e}"))?;
        spent += started.elapsed();
        rows += c.events.iter().map(|e| e.len() as u64).sum::<u64>();
        if call % 100 == 99 {
            println!(
                "  {rows:>10} events, {:>9.0} rows/s so far",
                rows as f64 / spent.as_secs_f64()
            );
        }
    }
    Ok((rows, spent))
}

/// Runs `query` once to warm up, then `RUNS` times; returns (median, max).
async fn time_query<F, Fut, T>(query: F) -> Result<(Duration, Duration, T), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, shaobing_collector::store::StoreError>>,
{
    const RUNS: usize = 5;
    query().await.map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(query().await.map_err(|e| e.to_string())?);
        times.push(started.elapsed());
    }
    times.sort();
    let result = last.ok_or("no run")?;
    Ok((times[RUNS / 2], times[RUNS - 1], result))
}

async fn queries(store: &Store) -> Result<Vec<(String, Duration, Duration, usize)>, String> {
    let end = START_NS + DAYS * 86_400 * SECOND;
    let day_ago = end - 86_400 * SECOND;
    let mut figures = Vec::new();
    macro_rules! measure {
        ($name:expr, $call:expr) => {{
            let (median, max, rows) = time_query(|| $call).await?;
            figures.push(($name.to_owned(), median, max, rows.len()));
        }};
    }
    let page = AlertQuery {
        limit: Some(50),
        ..AlertQuery::default()
    };
    measure!("alerts page (newest 50)", store.alerts(&page));
    let open_high = AlertQuery {
        levels: vec!["high".into(), "critical".into()],
        statuses: vec![AlertStatus::Open],
        since: Some(day_ago),
        limit: Some(50),
        ..AlertQuery::default()
    };
    measure!(
        "alerts page (open high/critical, 24 h)",
        store.alerts(&open_high)
    );
    let last_day = AlertQuery {
        since: Some(day_ago),
        ..AlertQuery::default()
    };
    measure!(
        "top rules, last 24 h",
        store.alert_counts_by(&last_day, AlertGroup::Rule)
    );
    let timeline = EventQuery {
        host: Some("host-0042".into()),
        since: Some(day_ago),
        until: Some(end),
        limit: Some(100),
        ..EventQuery::default()
    };
    measure!(
        "host timeline (one host, 24 h, 100 rows)",
        store.events(&timeline)
    );
    let week_timeline = EventQuery {
        since: None,
        until: None,
        ..timeline.clone()
    };
    measure!(
        "host timeline (one host, 7 days, 100 rows)",
        store.events(&week_timeline)
    );
    let fleet_day = EventQuery {
        since: Some(day_ago),
        ..EventQuery::default()
    };
    measure!(
        "events per hour, fleet, 24 h",
        store.event_counts(&fleet_day, 3_600)
    );
    let search = EventQuery {
        fields: vec![FieldFilter::new("dst_port", "3306")],
        since: Some(day_ago),
        limit: Some(100),
        ..EventQuery::default()
    };
    measure!("event search dst_port=3306, 24 h", store.events(&search));
    let failed = EventQuery {
        kind: Some("login".into()),
        since: Some(day_ago),
        limit: Some(10),
        ..EventQuery::default()
    };
    let by_source_ip = EventGroup::Field("source_ip".into());
    measure!(
        "top source IPs of logins, 24 h",
        store.event_counts_by(&failed, &by_source_ip)
    );
    let every_source = EventQuery {
        limit: Some(10_000),
        ..EventQuery::default()
    };
    measure!(
        "first/last event per host and source (all)",
        store.event_sources(&every_source)
    );
    Ok(figures)
}

async fn bench(store: &Store, total: u64, per_call: u64) -> Result<(), String> {
    println!("inserting {total} events through write_batches, {per_call} events per call ...");
    let (rows, spent) = insert(store, total, per_call).await?;
    let rate = rows as f64 / spent.as_secs_f64();
    println!(
        "insert: {rows} events in {:.1} s = {rate:.0} rows/s (target >= 300000) {}",
        spent.as_secs_f64(),
        if rate >= 300_000.0 {
            "OK"
        } else {
            "BELOW TARGET"
        }
    );
    let count = store
        .count_events(&EventQuery::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("events stored: {count}");
    println!("query latency over {count} events (median / max of 5 runs, target <= 500 ms):");
    for (name, median, max, rows) in queries(store).await? {
        println!(
            "  {name:<46} {:>8.1} ms / {:>8.1} ms  ({rows} rows) {}",
            ms(median),
            ms(max),
            if median <= Duration::from_millis(500) {
                "OK"
            } else {
                "ABOVE TARGET"
            }
        );
    }
    Ok(())
}

fn main() -> Result<(), String> {
    // RUST_LOG=shaobing_collector::store=trace shows every statement's duration.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let url = std::env::var("SHAOBING_BENCH_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".to_owned());
    let total: u64 = std::env::var("SHAOBING_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let per_call: u64 = std::env::var("SHAOBING_BENCH_CALL_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let database = format!("shaobing_bench_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let options = ClickHouseOptions {
            compression: compression(),
            ..ClickHouseOptions::database(&database)
        };
        let store = Store::open_clickhouse_with(&url, &options)
            .await
            .map_err(|e| format!("open ClickHouse at {url}: {e}"))?;
        if let Some(ch) = store.as_clickhouse() {
            println!(
                "ClickHouse {} at {url}, database {database}",
                ch.server_version()
            );
        }
        let outcome = bench(&store, total, per_call).await;
        if std::env::var_os("SHAOBING_BENCH_KEEP").is_some() {
            println!("kept database {database} (SHAOBING_BENCH_KEEP)");
            return outcome;
        }
        let dropped = clickhouse::Client::default()
            .with_url(&url)
            .query(&format!("DROP DATABASE IF EXISTS {database}"))
            .execute()
            .await;
        if let Err(e) = dropped {
            println!("could not drop {database}: {e}");
        }
        outcome
    })
}
