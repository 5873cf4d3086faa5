//! Monitor tests driven by a stand-in watcher and hand-made inotify messages:
//! watch limit, queue overflow, renames and the start-up modes, deterministically.
//! (Real inotify is exercised by `agent/tests/file_*.rs`.)

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shaobing_wire::v1::{Event, FileEvent, FileOp, Host, event::Body};
use tokio::sync::mpsc;

use super::config::{FileConfig, WatchSet};
use super::counter;
use super::hash::digest_bytes;
use super::monitor::Monitor;
use super::watch::{self, DirWatcher, WatchError, WatchMsg, WatchSink};
use crate::capture::{Capture, CaptureContext};
use crate::counters::Counters;

type Watched = Arc<Mutex<BTreeMap<PathBuf, bool>>>;

/// A watcher with a watch budget: past it, `watch` fails as inotify does at
/// `max_user_watches`.
struct BudgetWatcher {
    budget: Arc<Mutex<usize>>,
    watched: Watched,
}

impl DirWatcher for BudgetWatcher {
    fn watch(&mut self, dir: &Path, recursive: bool) -> Result<(), WatchError> {
        let mut budget = self.budget.lock().unwrap();
        if *budget == 0 {
            return Err(WatchError::LimitReached);
        }
        *budget -= 1;
        self.watched
            .lock()
            .unwrap()
            .insert(dir.to_path_buf(), recursive);
        Ok(())
    }

    fn unwatch(&mut self, dir: &Path) {
        self.watched.lock().unwrap().remove(dir);
    }
}

struct Rig {
    monitor: Monitor,
    rx: mpsc::Receiver<Capture>,
    sink: WatchSink,
    counters: Arc<Counters>,
    budget: Arc<Mutex<usize>>,
    watched: Watched,
    events: Vec<Event>,
}

fn file_body(event: &Event) -> &FileEvent {
    match &event.body {
        Some(Body::File(file)) => file,
        other => panic!("not a file event: {other:?}"),
    }
}

impl Rig {
    fn new(config: &FileConfig, budget: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let counters = Arc::new(Counters::default());
        let ctx = CaptureContext {
            host: Host {
                hostname: "test-host".into(),
                ..Host::default()
            },
            tx,
            positions: Arc::new(HashMap::new()),
            counters: counters.clone(),
        };
        let (sink, feed) = watch::channel(queue);
        let budget = Arc::new(Mutex::new(budget));
        let watched: Watched = Arc::default();
        let watcher = BudgetWatcher {
            budget: budget.clone(),
            watched: watched.clone(),
        };
        let state = config.state_path.clone().unwrap();
        let monitor = Monitor::new(
            config,
            &state,
            ctx,
            Arc::new(AtomicBool::new(false)),
            Some(Box::new(watcher)),
            feed,
        )
        .unwrap();
        let mut rig = Self {
            monitor,
            rx,
            sink,
            counters,
            budget,
            watched,
            events: Vec::new(),
        };
        rig.monitor.start().unwrap();
        rig.drain();
        rig
    }

    fn drain(&mut self) {
        while let Ok(capture) = self.rx.try_recv() {
            self.events.extend(capture.events);
        }
    }

    /// Steps the monitor until `done` holds for the events so far (5 s at most).
    fn step_until(&mut self, what: &str, done: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done(&self.events) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:#?}",
                self.events
            );
            self.monitor.step().unwrap();
            self.drain();
        }
    }

    /// Steps for `how_long` (to show that nothing more happens).
    fn step_for(&mut self, how_long: Duration) {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            self.monitor.step().unwrap();
            self.drain();
        }
    }

    fn find(&self, op: FileOp, path: &Path) -> Option<&FileEvent> {
        self.events
            .iter()
            .map(file_body)
            .find(|f| f.op() == op && Path::new(&f.path) == path)
    }
}

fn config(dir: &Path, sets: Vec<WatchSet>) -> FileConfig {
    FileConfig {
        watches: sets,
        debounce_ms: 20,
        rescan_secs: 0,
        degraded_rescan_secs: 1,
        state_path: Some(dir.join("state/file_baseline.db")),
        ..FileConfig::default()
    }
}

fn watch_set(path: &Path) -> WatchSet {
    WatchSet {
        path: path.to_path_buf(),
        ..WatchSet::default()
    }
}

fn sha256(bytes: &[u8]) -> String {
    digest_bytes(super::HashAlgo::Sha256, bytes)
}

#[test]
fn watch_limit_falls_back_to_rescans_with_one_notice_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "v1").unwrap();
    let mut rig = Rig::new(&config(dir.path(), vec![watch_set(&www)]), 0, 1024);

    let notice = rig
        .find(FileOp::Rescan, &www)
        .expect("a notice for the root");
    assert!(notice.watched_root.ends_with("www"));
    let notice_event = rig
        .events
        .iter()
        .find(|e| file_body(e).op() == FileOp::Rescan)
        .unwrap();
    assert!(
        notice_event.raw.contains("max_user_watches"),
        "{}",
        notice_event.raw
    );
    assert_eq!(rig.counters.get(counter::WATCH_LIMIT), 1);

    // No inotify: the degraded rescan finds the change.
    std::fs::write(www.join("index.html"), "v2 defaced").unwrap();
    rig.step_until("the rescan to report the modification", |events| {
        events.iter().any(|e| file_body(e).op() == FileOp::Modify)
    });
    let modify = rig.find(FileOp::Modify, &www.join("index.html")).unwrap();
    assert_eq!(modify.hash_before, sha256(b"v1"));
    assert_eq!(modify.hash_after, sha256(b"v2 defaced"));
    let modify_event = rig
        .events
        .iter()
        .find(|e| file_body(e).op() == FileOp::Modify)
        .unwrap();
    assert_eq!(modify_event.source, "file_baseline");

    // Watches become available again: the next degraded round re-adds the watch.
    *rig.budget.lock().unwrap() = 100;
    let watched = rig.watched.clone();
    let www_again = www.clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while watched.lock().unwrap().get(&www_again) != Some(&true) {
        assert!(
            Instant::now() < deadline,
            "the root was never watched again"
        );
        rig.monitor.step().unwrap();
    }
    assert_eq!(
        rig.counters.get(counter::WATCH_LIMIT),
        1,
        "one notice, not one per retry"
    );
}

#[test]
fn queue_overflow_rescans_every_root_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let cron = dir.path().join("cron.d");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&cron).unwrap();
    std::fs::write(www.join("a.js"), "ok").unwrap();
    let sets = vec![watch_set(&www), watch_set(&cron)];
    let mut rig = Rig::new(&config(dir.path(), sets), 100, 1024);
    assert!(
        rig.events.is_empty(),
        "first baseline is silent: {:?}",
        rig.events
    );

    // Changes whose inotify events were lost.
    std::fs::write(www.join("a.js"), "tampered").unwrap();
    std::fs::write(cron.join("backdoor"), "* * * * * root /tmp/x\n").unwrap();
    rig.sink.offer(WatchMsg::Overflow);
    rig.step_until("rescan events", |events| events.len() >= 4);
    assert_eq!(rig.counters.get(counter::QUEUE_OVERFLOWS), 1);
    for root in [&www, &cron] {
        assert!(
            rig.find(FileOp::Rescan, root).is_some(),
            "notice for {root:?}"
        );
    }
    assert!(rig.find(FileOp::Modify, &www.join("a.js")).is_some());
    let created = rig.find(FileOp::Create, &cron.join("backdoor")).unwrap();
    assert_eq!(created.hash_after, sha256(b"* * * * * root /tmp/x\n"));
}

#[test]
fn a_full_internal_queue_and_a_full_debounce_table_also_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut cfg = config(dir.path(), vec![watch_set(&www)]);
    cfg.max_pending = 2;
    let mut rig = Rig::new(&cfg, 100, 16);
    std::fs::write(www.join("new.php"), "<?php system($_GET['c']); ?>").unwrap();
    for i in 0..40 {
        rig.sink
            .offer(WatchMsg::Changed(www.join(format!("ghost{i}"))));
    }
    rig.step_until("the overflow rescan", |events| {
        events.iter().any(|e| file_body(e).op() == FileOp::Create)
    });
    assert!(rig.counters.get(counter::QUEUE_OVERFLOWS) >= 1);
    assert!(rig.counters.get(counter::PENDING_OVERFLOWS) >= 1);
    let created = rig.find(FileOp::Create, &www.join("new.php")).unwrap();
    assert_eq!(created.hash_after, sha256(b"<?php system($_GET['c']); ?>"));
}

#[test]
fn renames_keep_their_history_and_directories_move_whole() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("old")).unwrap();
    std::fs::write(www.join("a.php"), "<?php echo 1;").unwrap();
    std::fs::write(www.join("old/x.js"), "x").unwrap();
    std::fs::write(www.join("old/y.js"), "y").unwrap();
    let mut rig = Rig::new(&config(dir.path(), vec![watch_set(&www)]), 100, 1024);

    std::fs::rename(www.join("a.php"), www.join("b.php")).unwrap();
    rig.sink.offer(WatchMsg::Changed(www.join("a.php")));
    rig.sink.offer(WatchMsg::Changed(www.join("b.php")));
    rig.sink.offer(WatchMsg::Renamed {
        from: www.join("a.php"),
        to: www.join("b.php"),
    });
    std::fs::rename(www.join("old"), www.join("new")).unwrap();
    rig.sink.offer(WatchMsg::Renamed {
        from: www.join("old"),
        to: www.join("new"),
    });
    rig.step_until("two renames", |events| events.len() >= 2);
    rig.step_for(Duration::from_millis(100));
    let file_rename = rig.find(FileOp::Rename, &www.join("b.php")).unwrap();
    assert!(file_rename.old_path.ends_with("a.php"));
    assert_eq!(file_rename.hash_before, sha256(b"<?php echo 1;"));
    assert_eq!(file_rename.hash_after, file_rename.hash_before);
    let dir_rename = rig.find(FileOp::Rename, &www.join("new")).unwrap();
    assert!(dir_rename.old_path.ends_with("old"));
    assert_eq!(
        rig.events.len(),
        2,
        "no deletes or creates: {:#?}",
        rig.events
    );

    // The moved rows kept their hashes: a later change has a hash_before.
    std::fs::write(www.join("new/x.js"), "x2").unwrap();
    rig.sink.offer(WatchMsg::Changed(www.join("new/x.js")));
    rig.step_until("modify", |events| events.len() >= 3);
    let modify = rig.find(FileOp::Modify, &www.join("new/x.js"));
    assert_eq!(
        modify.map(|m| m.hash_before.as_str()),
        Some(sha256(b"x").as_str()),
        "{:#?}",
        rig.events
    );
}

#[test]
fn start_up_tells_new_roots_from_appeared_and_vanished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    let keys = dir.path().join("home/alice/.ssh");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::create_dir_all(dir.path().join("home/alice")).unwrap();
    std::fs::write(web.join("index.html"), "hi").unwrap();
    let glob = dir.path().join("home/*/.ssh");
    {
        let rig = Rig::new(&config(dir.path(), vec![watch_set(&web)]), 100, 1024);
        assert!(rig.events.is_empty());
    }
    // A newly configured set (its root exists) is baselined silently.
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("authorized_keys"), "ssh-ed25519 AAAA alice\n").unwrap();
    let sets = vec![watch_set(&web), watch_set(&glob)];
    {
        let rig = Rig::new(&config(dir.path(), sets.clone()), 100, 1024);
        assert!(rig.events.is_empty(), "{:?}", rig.events);
        assert_eq!(rig.counters.get(counter::BASELINED), 1);
    }
    // While down: bob's .ssh appears (known set), alice's vanishes.
    let bob = dir.path().join("home/bob/.ssh");
    std::fs::create_dir_all(&bob).unwrap();
    std::fs::write(bob.join("authorized_keys"), "ssh-rsa AAAA mallory\n").unwrap();
    std::fs::remove_dir_all(&keys).unwrap();
    let rig = Rig::new(&config(dir.path(), sets), 100, 1024);
    let created = rig
        .find(FileOp::Create, &bob.join("authorized_keys"))
        .unwrap();
    assert_eq!(created.hash_after, sha256(b"ssh-rsa AAAA mallory\n"));
    let deleted = rig
        .find(FileOp::Delete, &keys.join("authorized_keys"))
        .unwrap();
    assert_eq!(deleted.hash_before, sha256(b"ssh-ed25519 AAAA alice\n"));
    assert!(rig.events.iter().all(|e| e.source == "file_baseline"));
    assert_eq!(rig.events.len(), 2, "{:#?}", rig.events);
    drop(rig);

    // A set removed from the configuration is forgotten silently.
    let rig = Rig::new(&config(dir.path(), vec![watch_set(&web)]), 100, 1024);
    assert!(rig.events.is_empty(), "{:?}", rig.events);
}

#[test]
fn the_periodic_rescan_finds_what_inotify_never_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cron = dir.path().join("cron.d");
    std::fs::create_dir_all(&cron).unwrap();
    let mut cfg = config(dir.path(), vec![watch_set(&cron)]);
    cfg.rescan_secs = 1;
    let mut rig = Rig::new(&cfg, 100, 1024);
    // No inotify message at all (as if it had been lost without an overflow).
    std::fs::write(cron.join("job"), "@reboot root /tmp/.x\n").unwrap();
    rig.step_until("the periodic rescan", |events| !events.is_empty());
    let created = rig.find(FileOp::Create, &cron.join("job")).unwrap();
    assert_eq!(created.hash_after, sha256(b"@reboot root /tmp/.x\n"));
    assert_eq!(rig.events[0].source, "file_baseline");
    assert!(rig.counters.get(counter::RESCANS) >= 1);
    assert!(
        rig.find(FileOp::Rescan, &cron).is_none(),
        "a routine rescan is not a notice"
    );
}

#[test]
fn a_rename_over_a_known_file_is_a_modification_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    for (name, body) in [
        ("index.html", "v1"),
        ("about.html", "a1"),
        ("same.html", "s"),
    ] {
        std::fs::write(www.join(name), body).unwrap();
    }
    let mut rig = Rig::new(&config(dir.path(), vec![watch_set(&www)]), 100, 1024);
    let rename = |rig: &mut Rig, from: &str, to: &str| {
        std::fs::rename(www.join(from), www.join(to)).unwrap();
        rig.sink.offer(WatchMsg::Changed(www.join(from)));
        rig.sink.offer(WatchMsg::Renamed {
            from: www.join(from),
            to: www.join(to),
        });
    };

    // Staged long enough to be recorded (its create is reported), then moved
    // over the page: the page changed from its old content to the staged one.
    std::fs::write(www.join("index.html.new"), "defaced").unwrap();
    rig.sink
        .offer(WatchMsg::Changed(www.join("index.html.new")));
    rig.step_until("the staged create", |events| events.len() == 1);
    rename(&mut rig, "index.html.new", "index.html");
    rig.step_until("the page modified", |events| events.len() == 2);
    let modify = rig.find(FileOp::Modify, &www.join("index.html")).unwrap();
    assert_eq!(modify.hash_before, sha256(b"v1"));
    assert_eq!(modify.hash_after, sha256(b"defaced"));
    assert!(modify.old_path.ends_with("index.html.new"), "{modify:?}");
    assert_eq!(modify.content_sample, "", "not a content-sampled set");

    // Staged and renamed within one burst (`sed -i`): the same report.
    std::fs::write(www.join(".about.tmp"), "a2").unwrap();
    rename(&mut rig, ".about.tmp", "about.html");
    rig.step_until("about modified", |events| events.len() == 3);
    let modify = rig.find(FileOp::Modify, &www.join("about.html")).unwrap();
    assert_eq!(modify.hash_before, sha256(b"a1"));
    assert_eq!(modify.hash_after, sha256(b"a2"));
    assert!(modify.old_path.ends_with(".about.tmp"), "{modify:?}");

    // Identical content moved over a page: only the staged name went away.
    std::fs::write(www.join("same.html.new"), "s").unwrap();
    rig.sink.offer(WatchMsg::Changed(www.join("same.html.new")));
    rig.step_until("the second staged create", |events| events.len() == 4);
    rename(&mut rig, "same.html.new", "same.html");
    rig.step_until("the rename", |events| events.len() == 5);
    let renamed = rig.find(FileOp::Rename, &www.join("same.html")).unwrap();
    assert!(renamed.old_path.ends_with("same.html.new"));
    assert_eq!(renamed.hash_before, sha256(b"s"));
    assert_eq!(renamed.hash_after, sha256(b"s"));

    rig.step_for(Duration::from_millis(100));
    let ops: Vec<(FileOp, String)> = rig
        .events
        .iter()
        .map(file_body)
        .map(|f| (f.op(), f.path.rsplit('/').next().unwrap_or("").to_string()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (FileOp::Create, "index.html.new".to_string()),
            (FileOp::Modify, "index.html".to_string()),
            (FileOp::Modify, "about.html".to_string()),
            (FileOp::Create, "same.html.new".to_string()),
            (FileOp::Rename, "same.html".to_string()),
        ],
        "no deletes of the staged names"
    );
}
