//! Network capture under a flood, with the real agent binary: the agent captures
//! inside a monitored network namespace (shipping over mutual TLS to a real
//! collector and ClickHouse) while `hping3 --flood` in the peer namespace pushes
//! packets at it. Prints, per phase: packets hping3 sent, packets the agent saw
//! and the kernel drops it reported (its heartbeat counters, as stored), flows
//! evicted, events rate-limited, network events stored, the agent's CPU% and its
//! peak RSS. No timed assertions: figures only.
//!
//! Phases (`SB_FLOOD_SECS` each, default 15):
//! 1. one UDP flow (`--udp -k`): the packet rate the capture keeps up with;
//! 2. SYNs from random sources (`-S --rand-source`): every packet a new flow,
//!    filling the flow table (`max_flows = 131072`, so > 100k concurrent flows)
//!    and the per-interface event budget.
//!
//! `cargo bench -p shaobing-tests --bench network_flood` (root, hping3, the local
//! ClickHouse server; release binaries are built by `cargo bench`, this bench runs
//! the ones next to it: build them first with `cargo build --release --workspace --bins`).

#![allow(clippy::print_stdout)] // a bench binary prints its figures

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shaobing_tests::network_host::{
    NetworkLab, configure_network_agent, cpu_ticks, start_collector_on_all_addresses, status_bytes,
};
use shaobing_tests::{clickhouse_query, unique_database, wait_for};

const MB: f64 = 1024.0 * 1024.0;
/// Clock ticks per second of `/proc/<pid>/stat` CPU times on Linux.
const TICKS_PER_SEC: f64 = 100.0;

struct Phase {
    name: &'static str,
    hping3: Vec<String>,
}

/// The agent's `network.*` counters from its latest heartbeat stored in `db`
/// (counters only grow, so the maximum is the latest).
fn counters(db: &str) -> anyhow::Result<HashMap<String, u64>> {
    let rows = clickhouse_query(&format!(
        "SELECT name, max(value) FROM {db}.events ARRAY JOIN counter_names AS name, counter_values AS value \
         WHERE kind = 'status' AND startsWith(name, 'network.') GROUP BY name"
    ))?;
    Ok(rows
        .lines()
        .filter_map(|row| {
            let (name, value) = row.split_once('\t')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect())
}

/// Nanosecond time of the newest stored heartbeat.
fn newest_heartbeat_ns(db: &str) -> i64 {
    clickhouse_query(&format!(
        "SELECT max(time_ns) FROM {db}.events WHERE kind = 'status'"
    ))
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(0)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Waits until a heartbeat newer than `after_ns` plus the kernel-drop read interval
/// (5 s) is stored, then returns the counters.
fn settled_counters(db: &str, after_ns: i64) -> anyhow::Result<HashMap<String, u64>> {
    let target = after_ns + 6_000_000_000;
    wait_for(Duration::from_secs(120), || {
        (newest_heartbeat_ns(db) >= target).then_some(())
    })
    .context("no fresh heartbeat stored within 120 s")?;
    counters(db)
}

fn network_events(db: &str) -> u64 {
    clickhouse_query(&format!(
        "SELECT count() FROM {db}.events WHERE kind = 'network'"
    ))
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(0)
}

/// "N packets transmitted" from hping3's statistics.
fn transmitted(output: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|line| line.split_once(" packets transmitted"))
        .and_then(|(n, _)| n.trim().parse().ok())
}

/// RSS samples of `pid` every 200 ms until stopped; returns the peak in bytes.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(status_bytes(pid, "VmRSS").unwrap_or(0));
            std::thread::sleep(Duration::from_millis(200));
        }
        peak
    })
}

fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("SB_FLOOD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let lab = NetworkLab::create(62)?;
    let dir = tempfile::tempdir()?;
    let db = unique_database("sb_flood");
    let collector = start_collector_on_all_addresses(&dir.path().join("collector"), Some(&db))?;
    let mut agent = configure_network_agent(
        &dir.path().join("agent"),
        &lab.collector_url(&collector),
        &lab.monitored_veth,
        "max_flows = 131072",
    )?;
    let out = agent.enroll(&collector, &collector.token()?)?;
    anyhow::ensure!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent.run_in(&lab.monitored)?;
    let pid = wait_for(Duration::from_secs(10), || {
        lab.pids_named(&lab.monitored, "shaobing-agent")
            .first()
            .copied()
    })
    .context("agent process not found")?;

    // Ready once a knock from the peer is stored.
    let ready = wait_for(Duration::from_secs(30), || {
        let _ = lab.run_in(&lab.peer, &["nc", "-z", "-w", "1", &lab.monitored_ip, "9"]);
        (network_events(&db) > 0).then_some(())
    });
    if ready.is_none() {
        bail!(
            "agent never shipped a captured knock:\n{}",
            agent.log_text()
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let idle_rss = status_bytes(pid, "VmRSS").unwrap_or(0);
    println!(
        "network flood bench: agent pid {pid} in {}, capturing {}, idle RSS {:.1} MB, {secs} s per phase",
        lab.monitored,
        lab.monitored_veth,
        idle_rss as f64 / MB
    );

    let target = lab.monitored_ip.clone();
    let phases = [
        Phase {
            name: "one UDP flow (--udp -k, 64-byte payload)",
            hping3: ["--udp", "-k", "-s", "40000", "-p", "5000", "-d", "64"]
                .map(String::from)
                .to_vec(),
        },
        Phase {
            name: "SYNs from random sources (-S --rand-source)",
            hping3: ["-S", "-p", "80", "--rand-source"]
                .map(String::from)
                .to_vec(),
        },
    ];
    let mut before = settled_counters(&db, now_ns())?;
    for phase in &phases {
        let events_before = network_events(&db);
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample_rss(pid, stop.clone());
        let ticks_before = cpu_ticks(pid).unwrap_or(0);
        let started = Instant::now();
        let mut args: Vec<String> = [
            "timeout",
            "-s",
            "INT",
            &secs.to_string(),
            "hping3",
            "--flood",
            "-q",
        ]
        .map(String::from)
        .to_vec();
        args.extend(phase.hping3.iter().cloned());
        args.push(target.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let flood = lab.run_in(&lab.peer, &args)?;
        let elapsed = started.elapsed().as_secs_f64();
        let ticks = cpu_ticks(pid).unwrap_or(0).saturating_sub(ticks_before);
        stop.store(true, Ordering::Relaxed);
        let peak_rss = sampler.join().unwrap_or(0);
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&flood.stdout),
            String::from_utf8_lossy(&flood.stderr)
        );
        let sent = transmitted(&output);
        let after = settled_counters(&db, now_ns())?;
        let delta = |name: &str| {
            after
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(name).copied().unwrap_or(0))
        };
        let seen = delta("network.packets");
        let drops = delta("network.kernel_drops");
        let cpu = ticks as f64 / TICKS_PER_SEC / elapsed * 100.0;
        println!("\n== {} for {elapsed:.1} s", phase.name);
        match sent {
            Some(sent) => println!(
                "hping3 sent        {sent} packets ({:.0}/s)",
                sent as f64 / elapsed
            ),
            None => println!("hping3 sent        ? (no statistics: {})", output.trim()),
        }
        println!(
            "agent saw          {seen} packets ({:.0}/s)",
            seen as f64 / elapsed
        );
        println!("kernel drops       {drops} (reported by the agent)");
        if let Some(sent) = sent.filter(|s| *s > 0) {
            println!(
                "seen + drops       {:.1}% of sent",
                (seen + drops) as f64 / sent as f64 * 100.0
            );
        }
        println!("flows evicted      {}", delta("network.flows_evicted"));
        println!(
            "events limited     {} (budget), dropped {} (queue)",
            delta("network.events_rate_limited"),
            delta("network.events_dropped")
        );
        println!(
            "network events     {} stored in ClickHouse",
            network_events(&db).saturating_sub(events_before)
        );
        println!("agent CPU          {cpu:.0}% of one core");
        println!(
            "agent peak RSS     {:.1} MB (sampled every 200 ms)",
            peak_rss as f64 / MB
        );
        before = after;
    }
    let hwm = status_bytes(pid, "VmHWM").unwrap_or(0);
    println!(
        "\nagent VmHWM over the run: {:.1} MB (target ≤ 48 MB)",
        hwm as f64 / MB
    );
    drop(agent);
    drop(collector);
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
    Ok(())
}
