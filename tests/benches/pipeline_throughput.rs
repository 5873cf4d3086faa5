//! End-to-end throughput and latency: N real agents → mutual TLS → collector
//! (detection on) → ClickHouse, all on this machine. Lines are appended to the
//! agents' auth logs at an offered rate, in chunks; prints the sustained
//! events/s (first line written → last event stored; with a paced rate it
//! cannot exceed that rate, so `SB_BENCH_RATE=0` measures the ceiling) and the p50/p99 latency
//! from a chunk being written to the log until all of it is queryable in
//! ClickHouse (parse, spool, ship, detect and insert: an upper bound of the
//! spool → store latency).
//!
//! The default mix is what a busy fleet's auth logs look like (sessions opened
//! and closed, public-key and password logins, sudo, ~5 % failed passwords);
//! `SB_BENCH_MIX=failures` makes every line a failed password, the worst case
//! for detection (every event feeds four correlation rules).
//!
//! `cargo bench -p shaobing-tests --bench pipeline_throughput`
//! Env: `SB_BENCH_AGENTS` (default 4), `SB_BENCH_EVENTS` (default 400000),
//! `SB_BENCH_RATE` offered events/s (default 50000; 0 = as fast as possible),
//! `SB_BENCH_MIX` (`fleet` or `failures`).

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
    let rate = env("SB_BENCH_RATE", 50_000);
    let mix = std::env::var("SB_BENCH_MIX").unwrap_or_else(|_| "fleet".into());
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
    let clickhouse_pid = std::process::Command::new("pgrep")
        .args(["-o", "clickhouse-serv"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .ok()
        });
    let mut pids = vec![("collector", collector.daemon.pid())];
    for a in &agents {
        if let Some(d) = &a.daemon {
            pids.push(("agents", d.pid()));
        }
    }
    if let Some(pid) = clickhouse_pid {
        pids.push(("ClickHouse", pid));
    }
    let cpu_before: Vec<f64> = pids.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();

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
        if rate > 0 {
            let due = start + Duration::from_secs_f64((c * chunk) as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let agent = &agents[c % agents_n];
        let mut buf = String::with_capacity(chunk * 120);
        for n in 0..chunk {
            buf.push_str(&stamp);
            buf.push_str(&line(&mix, c, n));
            buf.push('\n');
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
        "pipeline_throughput: {agents_n} agents, {total} events, mix {mix}, offered {}, ClickHouse {}",
        if rate > 0 {
            format!("{rate} events/s")
        } else {
            "as fast as possible".into()
        },
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
    // CPU time each part spent on the run: what the events cost, independent of
    // whatever else the machine was doing meanwhile.
    let mut by_part: Vec<(&str, f64)> = Vec::new();
    for ((part, pid), before) in pids.iter().zip(&cpu_before) {
        let spent = cpu_seconds(*pid) - before;
        match by_part.iter_mut().find(|(p, _)| p == part) {
            Some((_, total)) => *total += spent,
            None => by_part.push((part, spent)),
        }
    }
    let cpu_total: f64 = by_part.iter().map(|(_, s)| s).sum();
    for (part, spent) in &by_part {
        println!(
            "  cpu {part:<11} {spent:.1} s = {:.1} µs/event",
            spent * 1e6 / stored.max(1) as f64
        );
    }
    println!(
        "  cpu total       {cpu_total:.1} s = {:.1} µs/event → {:.0} events/s per core when nothing else runs",
        cpu_total * 1e6 / stored.max(1) as f64,
        stored as f64 / cpu_total.max(1e-9)
    );
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
    anyhow::ensure!(stored == total, "only {stored} of {total} events stored");
    Ok(())
}

/// One auth-log line (after the timestamp) for chunk `c`, line `n`. Every line
/// names the user `c{c}`, which is how the bench counts a chunk as stored.
fn line(mix: &str, c: usize, n: usize) -> String {
    let (pid, ip, port) = (
        1000 + n,
        format!("198.18.{}.{}", c % 250, n % 250 + 1),
        1024 + n,
    );
    if mix == "failures" {
        return format!(" bench sshd[{pid}]: Failed password for c{c} from {ip} port {port} ssh2");
    }
    match n % 20 {
        0..=6 => format!(
            " bench CRON[{pid}]: pam_unix(cron:session): session opened for user c{c}(uid=0) by (uid=0)"
        ),
        7..=13 => {
            format!(" bench CRON[{pid}]: pam_unix(cron:session): session closed for user c{c}")
        }
        14 | 15 => {
            format!(" bench sshd[{pid}]: Accepted publickey for c{c} from {ip} port {port} ssh2")
        }
        16 => format!(" bench sshd[{pid}]: Accepted password for c{c} from {ip} port {port} ssh2"),
        17 | 18 => format!(
            " bench sudo:   c{c} : TTY=pts/0 ; PWD=/home/c{c} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
        ),
        _ => format!(" bench sshd[{pid}]: Failed password for c{c} from {ip} port {port} ssh2"),
    }
}

/// User + system CPU seconds a process has used so far (from `/proc/PID/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}
