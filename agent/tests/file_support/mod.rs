//! Shared harness of the `file_*` integration tests: runs the real file capture
//! (`capture::file::spawn`, real inotify) over a temporary tree and collects the
//! events it sends to the capture channel.

#![allow(dead_code)] // each test crate uses a different part

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use shaobing_agent::capture::file::{self, FileConfig, WatchSet, counter};
use shaobing_agent::capture::{Capture, CaptureContext};
use shaobing_agent::counters::Counters;
use shaobing_wire::v1::{Event, FileEvent, FileOp, Host, event::Body};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long any single expectation may take.
pub const PATIENCE: Duration = Duration::from_secs(15);

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn file_body(event: &Event) -> &FileEvent {
    match &event.body {
        Some(Body::File(file)) => file,
        other => panic!("not a file event: {other:?}"),
    }
}

/// A temporary host tree: `www/`, `etc/`, `root/`, `home/`, and a state directory.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["www/html", "etc/cron.d", "root", "home/alice/.ssh", "state"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        Self { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(rel);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    /// Watch sets shaped like the defaults, rooted in the temporary tree.
    pub fn config(&self) -> FileConfig {
        let set = |rel: &str| WatchSet {
            path: self.path(rel),
            ..WatchSet::default()
        };
        FileConfig {
            watches: vec![
                WatchSet {
                    content_sample: true,
                    ..set("www")
                },
                set("etc/passwd"),
                set("etc/cron*"),
                set("root/.ssh"),
                set("home/*/.ssh"),
            ],
            debounce_ms: 250,
            rescan_secs: 0,
            state_path: Some(self.path("state/file_baseline.db")),
            ..FileConfig::default()
        }
    }
}

/// A running file capture and the events it produced so far.
pub struct Running {
    rx: mpsc::Receiver<Capture>,
    pub counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
    pub events: Vec<Event>,
}

impl Running {
    /// Starts the capture and waits until its start-up diff is done.
    pub async fn start(config: &FileConfig, data_dir: &Path) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let counters = Arc::new(Counters::default());
        let ctx = CaptureContext {
            host: Host {
                hostname: "test-host".into(),
                agent_id: "agent-1".into(),
                ..Host::default()
            },
            tx,
            positions: Arc::new(HashMap::new()),
            counters: counters.clone(),
        };
        let tasks = file::spawn(config, data_dir, &ctx);
        assert_eq!(tasks.len(), 1);
        drop(ctx);
        let mut running = Self {
            rx,
            counters,
            tasks,
            events: Vec::new(),
        };
        running
            .until("start-up", |r| r.counters.get(counter::STARTUPS) == 1)
            .await;
        running
    }

    fn drain(&mut self) {
        while let Ok(capture) = self.rx.try_recv() {
            assert!(capture.checkpoint.is_none());
            self.events.extend(capture.events);
        }
    }

    /// Waits until `done` holds (collecting events meanwhile).
    pub async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            self.drain();
            if done(self) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; events: {:#?}",
                self.events
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Collects events for `how_long` (to show that nothing more arrives).
    pub async fn settle(&mut self, how_long: Duration) {
        tokio::time::sleep(how_long).await;
        self.drain();
    }

    /// The file events on `path` with `op`.
    pub fn find(&self, op: FileOp, path: &Path) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| file_body(e).op() == op && Path::new(&file_body(e).path) == path)
            .collect()
    }

    /// Waits for an event with `op` on `path` and returns its body.
    pub async fn expect(&mut self, op: FileOp, path: &Path) -> FileEvent {
        let what = format!("{op:?} {}", path.display());
        self.until(&what, |r| !r.find(op, path).is_empty()).await;
        file_body(self.find(op, path)[0]).clone()
    }

    /// Stops the capture the way the agent does at shutdown (the channel closes)
    /// and waits for its thread to end.
    pub async fn stop(self) -> Vec<Event> {
        let Running {
            rx, tasks, events, ..
        } = self;
        drop(rx);
        for task in tasks {
            tokio::time::timeout(PATIENCE, task)
                .await
                .expect("the capture stops when its channel closes")
                .expect("the capture task ends cleanly");
        }
        events
    }
}
