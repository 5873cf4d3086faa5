//! Scale of the file capture (issue #4 targets):
//!
//! 1. **Baseline**: a tree of 200,000 files (200 directories × 1,000 files of
//!    100–300 bytes) is walked, hashed (SHA-256) and recorded. Prints the time
//!    (target ≤ 60 s) and the peak RSS of the process during the baseline
//!    (`VmHWM`, reset just before; target ≤ 64 MB).
//! 2. **Burst**: 10,000 of those files are rewritten as fast as possible (well under
//!    a second). Prints how long the writes took, the events per second until every
//!    change was reported, and how many changes were lost (target: none lost, or
//!    the loss reported as an overflow rescan that recovers them).
//!
//! Run: `cargo bench -p shaobing-agent --bench file_scale`. Without `--bench`
//! (e.g. `cargo test --all-targets`) it runs a 2,000-file smoke version.
//! `FILE_SCALE_FILES` overrides the tree size.

#![allow(clippy::print_stdout)] // the report is the benchmark's output

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shaobing_agent::capture::file::{self, FileConfig, WatchSet, counter};
use shaobing_agent::capture::{Capture, CaptureContext};
use shaobing_agent::counters::Counters;
use shaobing_wire::v1::{FileOp, Host, event::Body};
use tokio::sync::mpsc;

const FILES_PER_DIR: usize = 1_000;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0).
fn reset_peak_rss() {
    if let Err(error) = std::fs::write("/proc/self/clear_refs", "5") {
        println!("(cannot reset VmHWM: {error}; the peak includes building the tree)");
    }
}

fn file_path(root: &Path, index: usize) -> PathBuf {
    root.join(format!("d{:03}", index / FILES_PER_DIR))
        .join(format!("f{:04}.html", index % FILES_PER_DIR))
}

fn build_tree(root: &Path, files: usize) {
    for index in 0..files {
        let path = file_path(root, index);
        if index % FILES_PER_DIR == 0 {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        }
        let body = format!("<p>page {index}</p>\n").repeat(5 + index % 10);
        std::fs::write(&path, body).expect("write");
    }
}

/// Events seen by the consumer: paths of realtime/rescan file events, and notices.
#[derive(Default)]
struct Seen {
    changed: HashSet<String>,
    notices: u64,
    events: u64,
    last_at: Option<Instant>,
}

fn consume(mut rx: mpsc::Receiver<Capture>, seen: Arc<Mutex<Seen>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(capture) = rx.recv().await {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            for event in capture.events {
                seen.events += 1;
                seen.last_at = Some(Instant::now());
                if let Some(Body::File(file)) = event.body {
                    if file.op() == FileOp::Rescan {
                        seen.notices += 1;
                    } else {
                        seen.changed.insert(file.path);
                    }
                }
            }
        }
    })
}

/// Overwrites the head of every file (no truncation: one write per file), on two
/// threads, so that the burst fits in well under a second.
fn rewrite_in_parallel(paths: &HashSet<String>) {
    use std::io::Write;
    let paths: Vec<&String> = paths.iter().collect();
    let (first, second) = paths.split_at(paths.len() / 2);
    std::thread::scope(|scope| {
        for half in [first, second] {
            scope.spawn(move || {
                for path in half {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .expect("open for rewrite");
                    file.write_all(b"<p>DEFACED</p>").expect("rewrite");
                }
            });
        }
    });
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            println!("timed out waiting for {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let files: usize = std::env::var("FILE_SCALE_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 200_000 } else { 2_000 });
    let burst = (files / 20).clamp(100, 10_000);

    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("tree");
    let started = Instant::now();
    build_tree(&root, files);
    println!(
        "file_scale: built {files} files in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(&root, work.path(), files, burst));
}

async fn run(root: &Path, work: &Path, files: usize, burst: usize) {
    let config = FileConfig {
        watches: vec![WatchSet {
            path: root.to_path_buf(),
            ..WatchSet::default()
        }],
        rescan_secs: 0,
        state_path: Some(work.join("state/file_baseline.db")),
        ..FileConfig::default()
    };
    let (tx, rx) = mpsc::channel(1024);
    let counters = Arc::new(Counters::default());
    let ctx = CaptureContext {
        host: Host::default(),
        tx,
        positions: Arc::new(HashMap::new()),
        counters: counters.clone(),
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let consumer = consume(rx, seen.clone());

    // 1. Baseline.
    reset_peak_rss();
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let tasks = file::spawn(&config, work, &ctx);
    drop(ctx);
    let ready = wait_for("the baseline", Duration::from_secs(600), || {
        counters.get(counter::STARTUPS) == 1
    })
    .await;
    let baseline_secs = started.elapsed().as_secs_f64();
    let peak_kib = status_kib("VmHWM:");
    println!(
        "file_scale: baseline of {} files: {baseline_secs:.1} s ({:.0} files/s), peak RSS {:.1} MB \
         (VmHWM; {:.1} MB before start) [targets: <= 60 s, <= 64 MB]",
        counters.get(counter::BASELINED),
        files as f64 / baseline_secs,
        peak_kib as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
    if !ready {
        return;
    }

    // 2. Burst of changes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expected: HashSet<String> = (0..burst)
        .map(|i| {
            file_path(root, i * (files / burst))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let written = Instant::now();
    rewrite_in_parallel(&expected);
    let write_secs = written.elapsed().as_secs_f64();
    let complete = wait_for(
        "every change to be reported",
        Duration::from_secs(120),
        || {
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            expected.iter().all(|p| seen.changed.contains(p))
        },
    )
    .await;
    // Let stragglers (duplicates, notices) arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let reported = expected
        .iter()
        .filter(|p| seen.changed.contains(*p))
        .count();
    let until_last = seen
        .last_at
        .map(|at| at.duration_since(written).as_secs_f64())
        .unwrap_or(f64::NAN);
    println!(
        "file_scale: burst of {burst} changed files written in {write_secs:.2} s; {reported} reported \
         ({} lost{}) in {until_last:.2} s = {:.0} events/s; overflow notices {}, queue overflows {}, \
         pending overflows {}, peak RSS now {:.1} MB",
        burst - reported,
        if complete { "" } else { ", INCOMPLETE" },
        reported as f64 / until_last,
        seen.notices,
        counters.get(counter::QUEUE_OVERFLOWS),
        counters.get(counter::PENDING_OVERFLOWS),
        status_kib("VmHWM:") as f64 / 1024.0,
    );
    drop(seen);
    for task in tasks {
        task.abort();
    }
    consumer.abort();
}
