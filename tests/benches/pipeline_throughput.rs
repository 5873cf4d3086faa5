//! End-to-end throughput and latency: N real agents → mutual TLS → collector
//! (detection on) → ClickHouse, all on this machine. Prints sustained events/s
//! (first line written → last event stored) and the p50/p99 latency from a
//! line being written to the log until it is queryable in ClickHouse (which
//! includes parse, spool, ship, detect and insert, so it bounds the spool →
//! store latency from above).
//!
//! `cargo bench -p shaobing-tests --bench pipeline_throughput`
//! Env: `SB_BENCH_AGENTS` (default 4), `SB_BENCH_EVENTS` (default 400000).

#![allow(clippy::print_stdout)] // a bench binary prints its figures

use std::io::Write;
use std::time::{Duration, Instant};

use shaobing_tests::{Agent, Collector, clickhouse_query, unique_database};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let agents_n = env("SB_BENCH_AGENTS", 4);
    let total = env("SB_BENCH_EVENTS", 400_000);
    let chunk = 2_000usize;
    let dir = tempfile::tempdir()?;
    let db = unique_database("sb_bench");
    let collector = Collector::start(&dir.path().join("c"), Some(&db))?;
    let mut agents = Vec::new();
    for i in 0..agents_n {
        let mut a = Agent::configure_with(
            &dir.path().join(format!("a{i}")),
            collector.data_port,
            "batch_max_events = 2000\nbatch_max_delay_ms = 50\nmax_in_flight = 16",
        )?;
        let out = a.enroll(&collector, &collector.token()?)?;
        anyhow::ensure!(out.status.success(), "enroll failed");
        a.run()?;
        agents.push(a);
    }
    std::thread::sleep(Duration::from_secs(1));

    // Chunks of `chunk` lines, round-robin over agents; each chunk has a marker user.
    let chunks = total / chunk;
    let mut written_at = Vec::with_capacity(chunks);
    let start = Instant::now();
    let stamp =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let mut next_poll = Instant::now();
    let mut stored_at: Vec<Option<Instant>> = vec![None; chunks];
    let poll = |stored_at: &mut Vec<Option<Instant>>| -> anyhow::Result<usize> {
        let out = clickhouse_query(&format!(
            "SELECT `user`, count() FROM {db}.events WHERE kind = 'login' GROUP BY `user`"
        ))?;
        let mut done = 0;
        for row in out.lines() {
            let mut parts = row.split('\t');
            let (Some(user), Some(n)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Some(idx) = user.strip_prefix("c").and_then(|s| s.parse::<usize>().ok()) else {
                continue;
            };
            if idx < stored_at.len() && n.parse::<usize>().unwrap_or(0) == chunk {
                if stored_at[idx].is_none() {
                    stored_at[idx] = Some(Instant::now());
                }
                done += 1;
            }
        }
        Ok(done)
    };
    for c in 0..chunks {
        let agent = &agents[c % agents_n];
        let mut buf = String::with_capacity(chunk * 120);
        for n in 0..chunk {
            buf.push_str(&format!(
                "{stamp} bench sshd[{}]: Failed password for c{c} from 198.18.{}.{} port {} ssh2\n",
                1000 + n,
                c % 250,
                n % 250 + 1,
                1024 + n
            ));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&agent.auth_log)?;
        f.write_all(buf.as_bytes())?;
        written_at.push(Instant::now());
        if Instant::now() >= next_poll {
            poll(&mut stored_at)?;
            next_poll = Instant::now() + Duration::from_millis(200);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = poll(&mut stored_at)?;
        if done == chunks || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = stored_at
        .iter()
        .flatten()
        .max()
        .map(|t| t.duration_since(start));
    let mut latencies: Vec<Duration> = written_at
        .iter()
        .zip(&stored_at)
        .filter_map(|(w, s)| s.map(|s| s.duration_since(*w)))
        .collect();
    latencies.sort();
    let stored: usize = latencies.len() * chunk;
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
    };
    println!(
        "pipeline_throughput: {agents_n} agents, {total} events, ClickHouse {}",
        clickhouse_query("SELECT version()")?
    );
    println!("  stored          {stored} / {total}");
    if let Some(e) = elapsed {
        println!(
            "  sustained       {:.0} events/s ({:.2} s)",
            stored as f64 / e.as_secs_f64(),
            e.as_secs_f64()
        );
    }
    println!(
        "  latency p50     {:?} (line written → queryable)",
        pct(0.50).unwrap_or_default()
    );
    println!("  latency p99     {:?}", pct(0.99).unwrap_or_default());
    let metrics = collector.daemon.log_text();
    drop(metrics);
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
    anyhow::ensure!(stored == total, "only {stored} of {total} events stored");
    Ok(())
}
