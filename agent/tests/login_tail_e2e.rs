//! The login capture end to end through its public API (`capture::login::spawn`):
//! a writer appends auth-log lines while the file is rotated both ways, and the
//! agent is stopped and restarted from the checkpoints the spool would have kept.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shaobing_agent::capture::login::{JournaldMode, LoginConfig, spawn};
use shaobing_agent::capture::{Capture, CaptureContext};
use shaobing_agent::counters::Counters;
use shaobing_wire::v1::{Host, event::Body};
use tokio::sync::mpsc;

fn config(path: &Path) -> LoginConfig {
    LoginConfig {
        auth_logs: vec![path.to_path_buf()],
        journald: JournaldMode::Off,
        wtmp: None,
        btmp: None,
        lastlog: None,
        poll_interval_ms: 10,
        ..LoginConfig::default()
    }
}

fn line(n: u32) -> String {
    format!(
        "2026-01-05T10:00:00.000000+00:00 h sshd[{n}]: Failed password for u{n} from 192.0.2.1 port {n} ssh2\n"
    )
}

fn context(positions: HashMap<String, String>) -> (CaptureContext, mpsc::Receiver<Capture>) {
    let (tx, rx) = mpsc::channel(64);
    let ctx = CaptureContext {
        host: Host {
            hostname: "e2e".into(),
            ..Host::default()
        },
        tx,
        positions: Arc::new(positions),
        counters: Arc::new(Counters::default()),
    };
    (ctx, rx)
}

/// What a spool would keep: every event's number, and the latest checkpoint by source.
#[derive(Default)]
struct FakeSpool {
    numbers: Vec<u32>,
    positions: HashMap<String, String>,
}

impl FakeSpool {
    fn take(&mut self, capture: Capture) {
        for event in capture.events {
            assert_eq!(event.source, "auth_log");
            assert_eq!(
                event.host.as_ref().map(|h| h.hostname.as_str()),
                Some("e2e")
            );
            match event.body {
                Some(Body::Login(login)) => self.numbers.push(login.user[1..].parse().unwrap()),
                other => panic!("{other:?}"),
            }
        }
        if let Some(checkpoint) = capture.checkpoint {
            self.positions
                .insert(checkpoint.source, checkpoint.position);
        }
    }

    /// Receives until `count` events are in, or fails after 20 s.
    async fn until(&mut self, rx: &mut mpsc::Receiver<Capture>, count: usize) {
        while self.numbers.len() < count {
            match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
                Ok(Some(capture)) => self.take(capture),
                other => panic!(
                    "only {} of {count} events arrived ({other:?})",
                    self.numbers.len()
                ),
            }
        }
    }
}

fn append_with(file: &mut std::fs::File, from: u32, to: u32) {
    for n in from..to {
        file.write_all(line(n).as_bytes()).unwrap();
    }
}

fn open_append(path: &PathBuf) -> std::fs::File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

#[tokio::test]
async fn rename_rotation_while_writing_then_restart_from_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let (ctx, mut rx) = context(HashMap::new());
    let tasks = spawn(&config(&path), &ctx);
    assert_eq!(tasks.len(), 1);
    let mut spool = FakeSpool::default();
    // The file appears after the agent started: it is read from its start.
    let mut writer = open_append(&path);
    append_with(&mut writer, 0, 200);
    spool.until(&mut rx, 100).await;
    // logrotate renames; the daemon keeps writing to the old file until it reopens.
    std::fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
    append_with(&mut writer, 200, 300);
    writer = open_append(&path);
    append_with(&mut writer, 300, 400);
    spool.until(&mut rx, 400).await;
    for task in &tasks {
        task.abort();
    }
    assert_eq!(
        spool.numbers,
        (0..400).collect::<Vec<_>>(),
        "every line once, in order"
    );
    assert_eq!(ctx.counters.get("login.rotations"), 1);

    // Restart from the checkpoints: nothing is read twice.
    append_with(&mut writer, 400, 450);
    let (ctx2, mut rx2) = context(spool.positions.clone());
    let tasks = spawn(&config(&path), &ctx2);
    spool.until(&mut rx2, 450).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Ok(capture) = rx2.try_recv() {
        spool.take(capture);
    }
    for task in &tasks {
        task.abort();
    }
    assert_eq!(spool.numbers, (0..450).collect::<Vec<_>>());
}

#[tokio::test]
async fn copytruncate_rotation_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secure");
    let mut writer = open_append(&path);
    append_with(&mut writer, 0, 100);
    let (ctx, mut rx) = context(HashMap::new());
    let tasks = spawn(&config(&path), &ctx);
    let mut spool = FakeSpool::default();
    spool.until(&mut rx, 100).await;
    // copytruncate: copy, then truncate in place; the writer (O_APPEND) carries on.
    std::fs::copy(&path, dir.path().join("secure.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append_with(&mut writer, 100, 110);
    spool.until(&mut rx, 110).await;
    for task in &tasks {
        task.abort();
    }
    assert_eq!(spool.numbers, (0..110).collect::<Vec<_>>());
    assert_eq!(ctx.counters.get("login.truncations"), 1);
}
