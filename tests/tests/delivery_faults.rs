//! Nothing lost, nothing twice: login events from 10 real agents (100,000 by
//! default; `SB_FAULT_EVENTS_PER_AGENT=100000` for the full 1,000,000) reach
//! ClickHouse exactly once while the collector is killed -9 and restarted
//! twice, ClickHouse is stopped for 60 s, one agent's network link is cut for
//! 60 s (veth down), and one agent is killed -9 mid-stream. Prints sent vs
//! stored. Needs root (network namespace) and the local ClickHouse server.

use std::io::Write;
use std::time::{Duration, Instant};

use shaobing_tests::{
    Agent, Collector, Netns, clickhouse_query, clickhouse_start, clickhouse_stop, free_port,
    unique_database, wait_for,
};

const AGENTS: usize = 10;
/// Lines per agent: `SB_FAULT_EVENTS_PER_AGENT`, default 10,000.
fn lines_per_agent() -> usize {
    std::env::var("SB_FAULT_EVENTS_PER_AGENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
const CHUNKS: usize = 20;
const CHUNK_EVERY: Duration = Duration::from_secs(5);

/// Line `n` of agent `agent`'s auth log: the mix of a busy fleet (sessions,
/// logins, sudo, ~5 % failed passwords). Every line is unique (the pid is `n`),
/// which is how the test checks for duplicates.
fn line(agent: usize, n: usize) -> String {
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let user = format!("u{agent}_{}", n % 50);
    let ip = format!("198.18.{}.{}", (n / 250) % 250, n % 250 + 1);
    let port = 1024 + n % 60000;
    let body = match n % 20 {
        0..=6 => format!(
            "CRON[{n}]: pam_unix(cron:session): session opened for user {user}(uid=1000) by (uid=0)"
        ),
        7..=13 => format!("CRON[{n}]: pam_unix(cron:session): session closed for user {user}"),
        14 | 15 => format!("sshd[{n}]: Accepted publickey for {user} from {ip} port {port} ssh2"),
        16 => format!("sshd[{n}]: Accepted password for {user} from {ip} port {port} ssh2"),
        17 | 18 => format!(
            "sudo[{n}]:   {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
        ),
        _ => format!("sshd[{n}]: Failed password for {user} from {ip} port {port} ssh2"),
    };
    format!("{stamp} host{agent} {body}")
}

#[test]
fn events_survive_crashes_outages_and_cuts_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_faults");
    let ns = Netns::create("sbdel", 50).expect("network namespace (needs root)");
    let (data_port, enroll_port) = (free_port(), free_port());
    let cdir = dir.path().join("collector");
    let first = Collector::start(&cdir, Some(&db)).unwrap();
    let token_source = first;
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let url = if i == AGENTS - 1 {
            format!("https://{}:{data_port}", ns.host_ip)
        } else {
            format!("https://127.0.0.1:{data_port}")
        };
        let agent = Agent::configure_url(
            &dir.path().join(format!("agent{i}")),
            &url,
            "batch_max_events = 2000\nmax_in_flight = 8",
        )
        .unwrap();
        let out = agent
            .enroll(&token_source, &token_source.token().unwrap())
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        agents.push(agent);
    }
    drop(token_source);
    // The real collector, on fixed ports reachable from the namespace.
    let mut collector =
        Collector::serve_on(&cdir, Some(&db), "0.0.0.0", data_port, enroll_port).unwrap();
    for (i, agent) in agents.iter_mut().enumerate() {
        if i == AGENTS - 1 {
            agent.run_in(&ns.name).unwrap();
        } else {
            agent.run().unwrap();
        }
    }

    let logs: Vec<_> = agents.iter().map(|a| a.auth_log.clone()).collect();
    let lines_per_agent = lines_per_agent();
    let writer = std::thread::spawn(move || {
        let per_chunk = lines_per_agent / CHUNKS;
        for chunk in 0..CHUNKS {
            for (i, path) in logs.iter().enumerate() {
                let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                let mut buf = String::with_capacity(per_chunk * 120);
                for n in chunk * per_chunk..(chunk + 1) * per_chunk {
                    buf.push_str(&line(i, n));
                    buf.push('\n');
                }
                f.write_all(buf.as_bytes()).unwrap();
            }
            std::thread::sleep(CHUNK_EVERY);
        }
    });

    let start = Instant::now();
    let at = |secs: u64| {
        let t = Duration::from_secs(secs);
        if let Some(wait) = t.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    };
    at(8);
    eprintln!("[{:?}] fault: collector kill -9", start.elapsed());
    collector.daemon.kill();
    std::thread::sleep(Duration::from_secs(2));
    collector = Collector::serve_on(&cdir, Some(&db), "0.0.0.0", data_port, enroll_port).unwrap();

    at(20);
    eprintln!("[{:?}] fault: ClickHouse stopped for 60 s", start.elapsed());
    clickhouse_stop().unwrap();
    at(30);
    eprintln!(
        "[{:?}] fault: link of agent {} cut for 60 s",
        start.elapsed(),
        AGENTS - 1
    );
    ns.link(false).unwrap();
    at(80);
    clickhouse_start().unwrap();
    eprintln!("[{:?}] ClickHouse back", start.elapsed());
    at(90);
    ns.link(true).unwrap();
    eprintln!("[{:?}] link back", start.elapsed());

    at(95);
    eprintln!("[{:?}] fault: agent 3 kill -9", start.elapsed());
    if let Some(d) = agents[3].daemon.as_mut() {
        d.kill();
    }
    std::thread::sleep(Duration::from_secs(1));
    agents[3].run().unwrap();

    at(100);
    eprintln!(
        "[{:?}] fault: collector kill -9 (second time)",
        start.elapsed()
    );
    collector.daemon.kill();
    std::thread::sleep(Duration::from_secs(2));
    collector = Collector::serve_on(&cdir, Some(&db), "0.0.0.0", data_port, enroll_port).unwrap();
    writer.join().unwrap();
    let sent = AGENTS * lines_per_agent;
    eprintln!("[{:?}] all {sent} lines written", start.elapsed());

    let query = format!(
        "SELECT count(), uniqExact(agent_id, event_id), uniqExact(raw) FROM {db}.events WHERE kind = 'login'"
    );
    let expected = format!("{sent}\t{sent}\t{sent}");
    let done = wait_for(Duration::from_secs(240), || {
        let got = clickhouse_query(&query).ok()?;
        (got == expected).then_some(got)
    });
    let got = clickhouse_query(&query).unwrap_or_default();
    eprintln!(
        "sent {sent} events; stored (rows, unique ids, unique lines) = {got}; after {:?}",
        start.elapsed()
    );
    assert!(
        done.is_some(),
        "stored {got}, expected {expected}\ncollector log:\n{}",
        collector
            .daemon
            .log_text()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}
