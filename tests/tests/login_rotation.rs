//! Issue #3 acceptance: nothing lost and nothing stored twice when the auth log
//! is rotated (rename + create, and copytruncate) while lines are being written,
//! and when the agent is killed -9 mid-stream (and the log rotated, both ways,
//! while it is down). A writer thread appends numbered auth-log lines; the real agent follows
//! the file and ships to a real collector storing into ClickHouse; the stored
//! rows, distinct event ids and distinct lines must all equal the lines written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shaobing_tests::{Agent, Collector, clickhouse_query, unique_database, wait_for};

/// Lines per burst, and the pause after each (about 2,000 lines/s).
const BURST: usize = 20;
const PAUSE: Duration = Duration::from_millis(10);

/// A rotation the writer performs once `at` lines are written.
#[derive(Clone, Copy, Debug)]
enum Rotation {
    /// logrotate's default: `.1` → `.2`, rename the log to `.1`, keep writing
    /// `late` lines to the old file (the daemon has not reopened yet), then
    /// create a new file and write there.
    Rename { at: usize, late: usize },
    /// logrotate's `copytruncate`: `.1` → `.2`, copy the log to `.1`, truncate it in place; the
    /// writer's `O_APPEND` descriptor carries on at the new end.
    CopyTruncate { at: usize },
}

fn line(n: usize) -> String {
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "{stamp} rot-host sshd[{}]: pam_unix(sshd:session): session opened for user u{n}(uid=1000) by (uid=0)\n",
        1000 + n % 30_000
    )
}

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes `total` lines to `path` in bursts, performing `rotations` on the way;
/// `written` tells other threads how far it got.
fn write_lines(path: PathBuf, total: usize, rotations: Vec<Rotation>, written: Arc<AtomicUsize>) {
    let mut file = open_append(&path);
    let mut n = 0;
    let mut late_left = 0;
    while n < total {
        for rotation in &rotations {
            let (one, two) = (sibling(&path, ".1"), sibling(&path, ".2"));
            let shift = || {
                if one.exists() {
                    std::fs::rename(&one, &two).unwrap();
                }
            };
            match *rotation {
                Rotation::Rename { at, late } if at == n => {
                    shift();
                    std::fs::rename(&path, &one).unwrap();
                    late_left = late;
                }
                Rotation::CopyTruncate { at } if at == n => {
                    shift();
                    std::fs::copy(&path, &one).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                _ => {}
            }
        }
        let end = (n + BURST).min(total);
        let mut buf = String::new();
        for i in n..end {
            buf.push_str(&line(i));
        }
        file.write_all(buf.as_bytes()).unwrap();
        let burst = end - n;
        n = end;
        written.store(n, Ordering::SeqCst);
        if late_left > 0 {
            late_left = late_left.saturating_sub(burst);
            if late_left == 0 {
                // The daemon reopens its log: a new file at the path.
                file = open_append(&path);
            }
        }
        std::thread::sleep(PAUSE);
    }
    file.sync_all().unwrap();
}

/// A collector on ClickHouse database `db` and an enrolled agent (not started).
fn pair(dir: &Path, db: &str) -> (Collector, Agent) {
    let collector = Collector::start(&dir.join("collector"), Some(db)).unwrap();
    let agent = Agent::configure(&dir.join("agent"), collector.data_port).unwrap();
    let out = agent
        .enroll(&collector, &collector.token().unwrap())
        .unwrap();
    assert!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (collector, agent)
}

/// Waits until ClickHouse holds `total` login rows, ids and lines; returns what it holds.
fn stored(db: &str, total: usize) -> (Option<String>, String) {
    let query = format!(
        "SELECT count(), uniqExact(agent_id, event_id), uniqExact(raw) FROM {db}.events WHERE kind = 'login'"
    );
    let expected = format!("{total}\t{total}\t{total}");
    let done = wait_for(Duration::from_secs(60), || {
        let got = clickhouse_query(&query).ok()?;
        (got == expected).then_some(got)
    });
    // A last look, to catch duplicates arriving after the expected count.
    std::thread::sleep(Duration::from_secs(1));
    (done, clickhouse_query(&query).unwrap_or_default())
}

/// The largest value of agent counter `name` reported by heartbeats.
fn counter(db: &str, name: &str) -> u64 {
    clickhouse_query(&format!(
        "SELECT max(counter_values[indexOf(counter_names, '{name}')]) FROM {db}.events WHERE kind = 'status'"
    ))
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(0)
}

#[test]
fn rotations_both_ways_while_writing_store_every_line_once() {
    const TOTAL: usize = 9000;
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_login_rot");
    let (collector, mut agent) = pair(dir.path(), &db);
    agent.run().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    // About a second apart (at ~2,000 lines/s): the agent reaches a renamed log's
    // successor within two polls (0.5 s), and real rotations are hours apart. (Two
    // rotations within one poll can lose the lines of a file the agent never saw.)
    let rotations = vec![
        Rotation::Rename {
            at: 1500,
            late: 200,
        },
        Rotation::CopyTruncate { at: 4000 },
        Rotation::Rename {
            at: 6000,
            late: 100,
        },
        Rotation::CopyTruncate { at: 8200 },
    ];
    let path = agent.auth_log.clone();
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || write_lines(path, TOTAL, rotations, written))
    };
    writer.join().unwrap();

    let (done, got) = stored(&db, TOTAL);
    eprintln!(
        "written {TOTAL} lines with 2 renames and 2 copytruncates; stored (rows, ids, lines) = {got}"
    );
    assert!(
        done.is_some() && got == format!("{TOTAL}\t{TOTAL}\t{TOTAL}"),
        "stored {got}, expected {TOTAL} of each\nagent:\n{}\ncollector:\n{}",
        agent.log_text(),
        collector.daemon.log_text()
    );
    // The agent saw both rotations of each kind (reported by its heartbeats).
    let seen = wait_for(Duration::from_secs(10), || {
        (counter(&db, "login.rotations") >= 2 && counter(&db, "login.truncations") >= 2)
            .then_some(())
    });
    assert!(
        seen.is_some(),
        "rotations {} and truncations {} reported",
        counter(&db, "login.rotations"),
        counter(&db, "login.truncations")
    );
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}

#[test]
fn agent_killed_mid_stream_resumes_without_loss_or_duplicates() {
    const TOTAL: usize = 6000;
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_login_kill");
    let (collector, mut agent) = pair(dir.path(), &db);
    agent.run().unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    // Rotated while the agent is down: renamed during the first outage,
    // copytruncated during the second.
    let rotations = vec![
        Rotation::Rename { at: 2600, late: 60 },
        Rotation::CopyTruncate { at: 4800 },
    ];
    let path = agent.auth_log.clone();
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || write_lines(path, TOTAL, rotations, written))
    };
    let reached = |n: usize| {
        wait_for(Duration::from_secs(60), || {
            (written.load(Ordering::SeqCst) >= n).then_some(())
        })
        .unwrap_or_else(|| panic!("the writer did not reach line {n}"))
    };

    reached(1500);
    agent.daemon.as_mut().unwrap().kill();
    let killed_at = written.load(Ordering::SeqCst);
    reached(3200);
    agent.run().unwrap();
    let restarted_at = written.load(Ordering::SeqCst);
    // The restarted agent first finishes the file rotated while it was down.
    let finished = wait_for(Duration::from_secs(20), || {
        agent
            .log_text()
            .contains("finishing the file rotated while the agent was stopped")
            .then_some(())
    });
    assert!(
        finished.is_some(),
        "the restarted agent resumes in the rotated file:\n{}",
        agent.log_text()
    );
    reached(4500);
    agent.daemon.as_mut().unwrap().kill();
    reached(5000);
    agent.run().unwrap();
    let copy_finished = wait_for(Duration::from_secs(20), || {
        agent
            .log_text()
            .contains("truncated while the agent was stopped: finishing its copy first")
            .then_some(())
    });
    assert!(
        copy_finished.is_some(),
        "the restarted agent reads the unread end from the copy:\n{}",
        agent.log_text()
    );
    writer.join().unwrap();

    let (done, got) = stored(&db, TOTAL);
    eprintln!(
        "written {TOTAL} lines; agent killed -9 at line {killed_at}, log rotated at 2600 while down, restarted at {restarted_at}, killed -9 again at 4500, copytruncated at 4800 while down, restarted at 5000; stored (rows, ids, lines) = {got}"
    );
    assert!(
        done.is_some() && got == format!("{TOTAL}\t{TOTAL}\t{TOTAL}"),
        "stored {got}, expected {TOTAL} of each\nagent:\n{}\ncollector:\n{}",
        agent.log_text(),
        collector.daemon.log_text()
    );
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}
