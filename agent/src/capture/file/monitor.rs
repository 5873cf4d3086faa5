//! The monitor: one blocking thread that owns the baseline, the watches and the
//! debouncer, and runs the life cycle.
//!
//! 1. **Start**: expand the watch sets, add the watches (before scanning, so that
//!    nothing changing during the scan is missed), then scan every root. A root
//!    seen before is diffed and its changes reported (source `file_baseline`:
//!    what changed while the agent was down); a root of a watch set seen before
//!    that appeared meanwhile is reported as created; a root of a newly configured
//!    watch set is baselined silently.
//! 2. **Run**: inotify messages go into the debouncer; paths whose burst is over
//!    are compared with the baseline (source `inotify`). Something appearing in an
//!    anchor re-expands its watch set (a new `.ssh`, a new `/etc/cron.*`).
//! 3. **Safety nets**: queue overflow (kernel or ours) → a notice event per root
//!    and a rescan of every root; watch limit reached → a notice event and the root
//!    is rescanned every `degraded_rescan_secs` until a watch can be added again;
//!    every `rescan_secs` → a full rescan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::FileCaptureError;
use super::baseline::{BaselineError, BaselineStore};
use super::config::FileConfig;
use super::counter;
use super::debounce::{Debouncer, Due};
use super::diff::{Differ, DigestSettings, ScanMode};
use super::event::{Emitter, SOURCE_BASELINE, SOURCE_INOTIFY};
use super::layout::{CompiledSet, Layout, Target};
use super::watch::{DirWatcher, WatchError, WatchFeed, WatchMsg};
use crate::capture::CaptureContext;

/// Most messages handled before the monitor looks at its timers again.
const MESSAGES_PER_ROUND: usize = 4096;

/// Timings derived from the configuration.
struct Timing {
    tick: Duration,
    debounce: Duration,
    rescan_every: Option<Duration>,
    degraded_every: Duration,
}

pub struct Monitor {
    layout: Layout,
    differ: Differ,
    watcher: Option<Box<dyn DirWatcher>>,
    feed: WatchFeed,
    debouncer: Debouncer,
    /// Directories watched now, and whether recursively.
    watched: BTreeMap<PathBuf, bool>,
    /// Targets that cannot be watched, and when each is next rescanned.
    degraded: BTreeMap<PathBuf, Instant>,
    timing: Timing,
    next_rescan: Option<Instant>,
    overflow_rescan_at: Option<Instant>,
    stop: Arc<AtomicBool>,
}

impl Monitor {
    /// Opens the baseline and compiles the watch sets (a broken one is logged,
    /// counted and skipped).
    pub fn new(
        config: &FileConfig,
        state_path: &Path,
        ctx: CaptureContext,
        stop: Arc<AtomicBool>,
        watcher: Option<Box<dyn DirWatcher>>,
        feed: WatchFeed,
    ) -> Result<Self, FileCaptureError> {
        let (store, reset) = BaselineStore::open(state_path, config.hash.name())?;
        if reset {
            tracing::warn!(
                hash = config.hash.name(),
                "file hash algorithm changed: the baseline is rebuilt silently"
            );
        }
        let mut sets = Vec::new();
        for set in &config.watches {
            match CompiledSet::compile(set) {
                Ok(compiled) => sets.push(compiled),
                Err(error) => {
                    tracing::error!(%error, "file watch set skipped");
                    ctx.counters.inc(counter::CONFIG_ERRORS);
                }
            }
        }
        let debounce = Duration::from_millis(config.debounce_ms);
        let timing = Timing {
            tick: (debounce / 4).clamp(Duration::from_millis(10), Duration::from_millis(100)),
            debounce,
            rescan_every: (config.rescan_secs > 0).then(|| Duration::from_secs(config.rescan_secs)),
            degraded_every: Duration::from_secs(config.degraded_rescan_secs.max(1)),
        };
        Ok(Self {
            layout: Layout::new(sets),
            differ: Differ {
                store,
                emitter: Emitter::new(ctx),
                settings: DigestSettings::from_config(config),
                generation: 0,
                stop: stop.clone(),
            },
            watcher,
            feed,
            debouncer: Debouncer::new(debounce, config.max_pending),
            watched: BTreeMap::new(),
            degraded: BTreeMap::new(),
            timing,
            next_rescan: None,
            overflow_rescan_at: None,
            stop,
        })
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.differ.emitter.is_closed()
    }

    /// Start, then run until stopped.
    pub fn run(mut self) -> Result<(), FileCaptureError> {
        self.start()?;
        self.run_loop()?;
        self.differ.checkpoint()?;
        Ok(())
    }

    /// Expands, watches and diffs every root against the baseline.
    pub fn start(&mut self) -> Result<(), FileCaptureError> {
        let started = Instant::now();
        self.layout.expand_all();
        self.sync_watches();
        let known_roots = self.differ.store.roots()?;
        let known_patterns = self.differ.store.patterns()?;
        let configured: Vec<PathBuf> = self
            .layout
            .sets
            .iter()
            .map(|s| s.config.path.clone())
            .collect();
        let mut files = 0;
        for index in 0..self.layout.targets.len() {
            if self.stopping() {
                return Ok(());
            }
            let target = self.layout.targets[index].clone();
            let pattern = configured[target.set].clone();
            let mode = if known_roots.iter().any(|(root, _)| *root == target.path)
                || known_patterns.contains(&pattern)
            {
                ScanMode::Report(SOURCE_BASELINE)
            } else {
                ScanMode::Silent
            };
            files += self.scan_target(&target, &target.path, mode)?.files;
            self.differ.store.add_root(&target.path, &pattern)?;
        }
        for (root, pattern) in known_roots {
            if self.layout.target_index(&root).is_some() {
                continue;
            }
            let mode = if configured.contains(&pattern) {
                ScanMode::Report(SOURCE_BASELINE) // the root vanished while we were down
            } else {
                ScanMode::Silent // no longer configured
            };
            self.differ.drop_root(&root, mode)?;
        }
        self.differ.store.set_patterns(&configured)?;
        self.differ.checkpoint()?;
        self.next_rescan = self.timing.rescan_every.map(|every| Instant::now() + every);
        tracing::info!(
            roots = self.layout.targets.len(),
            files,
            baseline = self.differ.store.file_count()?,
            watched_dirs = self.watched.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "file integrity monitoring started"
        );
        self.differ.emitter.count(counter::STARTUPS);
        Ok(())
    }

    fn run_loop(&mut self) -> Result<(), FileCaptureError> {
        while !self.stopping() {
            self.step()?;
        }
        Ok(())
    }

    /// One round: wait up to a tick for inotify messages, then do what is due.
    pub fn step(&mut self) -> Result<(), FileCaptureError> {
        match self.feed.rx.recv_timeout(self.timing.tick) {
            Ok(msg) => {
                self.on_message(msg);
                for _ in 0..MESSAGES_PER_ROUND {
                    match self.feed.rx.try_recv() {
                        Ok(msg) => self.on_message(msg),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // No watcher feeds us (inotify unavailable): only rescans remain.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.timing.tick),
        }
        if self.feed.take_dropped() {
            self.differ.emitter.count(counter::QUEUE_OVERFLOWS);
            self.schedule_overflow_rescan();
        }
        let now = Instant::now();
        self.flush_due(now)?;
        self.run_due_rescans(now)
    }

    fn on_message(&mut self, msg: WatchMsg) {
        let now = Instant::now();
        let recorded = match msg {
            WatchMsg::Changed(path) => self.debouncer.touch(&path, now),
            WatchMsg::Renamed { from, to } => self.debouncer.rename(&from, &to, now),
            WatchMsg::Overflow => {
                self.differ.emitter.count(counter::QUEUE_OVERFLOWS);
                self.schedule_overflow_rescan();
                true
            }
            WatchMsg::LimitReached(paths) => {
                for path in paths {
                    self.degrade_around(&path);
                }
                true
            }
        };
        if !recorded {
            self.differ.emitter.count(counter::PENDING_OVERFLOWS);
            self.schedule_overflow_rescan();
        }
    }

    fn schedule_overflow_rescan(&mut self) {
        if self.overflow_rescan_at.is_none() {
            self.overflow_rescan_at = Some(Instant::now() + self.timing.debounce);
        }
    }

    fn flush_due(&mut self, now: Instant) -> Result<(), FileCaptureError> {
        let mut due = self.debouncer.take_due(now);
        if due.is_empty() {
            return Ok(());
        }
        // Rename destinations first: they take over the old path's baseline row,
        // so the old path is not then reported as deleted.
        due.sort_by_key(|item| item.old_path.is_none());
        for item in due {
            if self.stopping() {
                break;
            }
            self.process_due(item)?;
        }
        self.differ.checkpoint()?;
        Ok(())
    }

    fn process_due(&mut self, due: Due) -> Result<(), FileCaptureError> {
        // The rename's destination carries the content: handle it first, so this
        // (old) path is not reported as deleted.
        if let Some(to) = &due.renamed_to
            && let Some(linked) = self.debouncer.take(to)
        {
            self.process_path(&linked.path, linked.old_path.as_deref())?;
        }
        self.process_path(&due.path, due.old_path.as_deref())
    }

    fn process_path(
        &mut self,
        path: &Path,
        old_path: Option<&Path>,
    ) -> Result<(), FileCaptureError> {
        let mut route = self.layout.route(path);
        if !route.expand.is_empty() {
            for set in std::mem::take(&mut route.expand) {
                self.reexpand(set, SOURCE_INOTIFY)?;
            }
            route = self.layout.route(path);
        }
        let Some((index, rel)) = route.target else {
            if let Some(old) = old_path {
                self.differ.vanished(old, SOURCE_INOTIFY)?; // moved out of sight
            }
            return Ok(());
        };
        let target = self.layout.targets[index].clone();
        let set = &self.layout.sets[target.set];
        let meta = match std::fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(_) => {
                self.differ.vanished(path, SOURCE_INOTIFY)?;
                if let Some(old) = old_path {
                    self.differ.vanished(old, SOURCE_INOTIFY)?;
                }
                return Ok(());
            }
        };
        let mode = ScanMode::Report(SOURCE_INOTIFY);
        if path == target.path && target.is_dir {
            self.scan_target(&target, path, mode)?;
        } else if meta.is_dir() {
            if set.config.recursive {
                if let Some(old) = old_path {
                    self.differ
                        .move_directory(&target, old, path, &meta, SOURCE_INOTIFY)?;
                }
                // A new or moved-in tree: its files are reported.
                self.scan_target(&target, path, mode)?;
            }
        } else if set.admits_file(&rel) {
            let generation = self.differ.generation;
            self.differ
                .examine(set, &target, path, &meta, old_path, mode, generation)?;
        } else if let Some(old) = old_path {
            self.differ.vanished(old, SOURCE_INOTIFY)?; // renamed to a name not monitored
        }
        Ok(())
    }

    fn scan_target(
        &mut self,
        target: &Target,
        start: &Path,
        mode: ScanMode,
    ) -> Result<super::diff::ScanStats, BaselineError> {
        let nested = self.layout.nested_targets(target);
        let set = &self.layout.sets[target.set];
        self.differ.scan(set, target, start, &nested, mode)
    }

    /// Expands watch set `set` again: vanished roots are reported deleted, new ones
    /// are watched and their files reported as created.
    fn reexpand(&mut self, set: usize, source: &'static str) -> Result<(), FileCaptureError> {
        let changes = self.layout.expand_set(set);
        self.sync_watches();
        for gone in &changes.removed {
            self.degraded.remove(&gone.path);
            self.differ
                .drop_root(&gone.path, ScanMode::Report(source))?;
        }
        for added in &changes.added {
            let pattern = self.layout.sets[added.set].config.path.clone();
            self.differ.store.add_root(&added.path, &pattern)?;
            self.scan_target(added, &added.path, ScanMode::Report(source))?;
        }
        Ok(())
    }

    /// Makes the watches match the layout's plan; roots that cannot be watched
    /// fall back to periodic rescans.
    fn sync_watches(&mut self) {
        if self.watcher.is_none() {
            let roots: Vec<PathBuf> = self.layout.targets.iter().map(|t| t.path.clone()).collect();
            for root in roots {
                self.degrade(&root, "inotify is not available");
            }
            return;
        }
        for path in self.apply_watch_plan() {
            self.degrade_around(&path);
        }
    }

    /// Adds and removes watches to match the plan; returns the directories that
    /// hit the watch limit.
    fn apply_watch_plan(&mut self) -> Vec<PathBuf> {
        let plan = self.layout.watch_plan();
        let Some(watcher) = self.watcher.as_mut() else {
            return plan.into_keys().collect();
        };
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(path, recursive)| plan.get(*path) != Some(*recursive))
            .map(|(path, _)| path.clone())
            .collect();
        for path in stale {
            watcher.unwatch(&path);
            self.watched.remove(&path);
        }
        let mut limit_hit = Vec::new();
        for (path, recursive) in plan {
            if self.watched.contains_key(&path) {
                continue;
            }
            match watcher.watch(&path, recursive) {
                Ok(()) => {
                    self.watched.insert(path, recursive);
                }
                Err(WatchError::LimitReached) => limit_hit.push(path),
                Err(WatchError::NotFound) => {}
                Err(WatchError::Other(error)) => {
                    tracing::warn!(path = %path.display(), %error, "cannot watch directory");
                    self.differ.emitter.count(counter::WATCH_ERRORS);
                }
            }
        }
        limit_hit
    }

    /// Targets served by `dir` (a directory that could not be watched).
    fn targets_around(&self, dir: &Path) -> Vec<PathBuf> {
        self.layout
            .targets
            .iter()
            .filter(|t| t.path.starts_with(dir) || dir.starts_with(&t.path))
            .map(|t| t.path.clone())
            .collect()
    }

    /// Degrades every target that `dir` (a directory that could not be watched) serves.
    fn degrade_around(&mut self, dir: &Path) {
        for root in self.targets_around(dir) {
            self.degrade(
                &root,
                "inotify watch limit reached (fs.inotify.max_user_watches)",
            );
        }
    }

    fn degrade(&mut self, root: &Path, why: &str) {
        if self.degraded.contains_key(root) {
            return;
        }
        self.differ.emitter.count(counter::WATCH_LIMIT);
        tracing::warn!(root = %root.display(), why, "falling back to periodic rescans");
        let raw = format!(
            "{why}: {} is rescanned every {} s instead of watched in real time",
            root.display(),
            self.timing.degraded_every.as_secs()
        );
        self.differ.notice(root, raw);
        self.degraded.insert(root.to_path_buf(), Instant::now());
    }

    fn run_due_rescans(&mut self, now: Instant) -> Result<(), FileCaptureError> {
        if self.overflow_rescan_at.is_some_and(|at| at <= now) {
            self.overflow_rescan_at = None;
            self.debouncer.clear();
            let targets = self.layout.targets.clone();
            for target in &targets {
                let raw = format!(
                    "inotify events were lost (queue overflow): rescanning {}",
                    target.path.display()
                );
                self.differ.notice(&target.path, raw);
                self.rescan(target)?;
            }
        }
        let due: Vec<PathBuf> = self
            .degraded
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(path, _)| path.clone())
            .collect();
        if !due.is_empty() {
            self.retry_degraded(&due, now)?;
        }
        if self.next_rescan.is_some_and(|at| at <= now) {
            for set in 0..self.layout.sets.len() {
                self.reexpand(set, SOURCE_BASELINE)?;
            }
            let targets = self.layout.targets.clone();
            for target in &targets {
                self.rescan(target)?;
            }
            self.next_rescan = self.timing.rescan_every.map(|every| Instant::now() + every);
        }
        Ok(())
    }

    fn rescan(&mut self, target: &Target) -> Result<(), FileCaptureError> {
        self.differ.emitter.count(counter::RESCANS);
        self.scan_target(target, &target.path, ScanMode::Report(SOURCE_BASELINE))?;
        Ok(())
    }

    /// Rescans degraded roots and tries to watch them again.
    fn retry_degraded(&mut self, due: &[PathBuf], now: Instant) -> Result<(), FileCaptureError> {
        if let Some(watcher) = self.watcher.as_mut() {
            for root in due {
                if self.watched.remove(root).is_some() {
                    watcher.unwatch(root); // re-add whole: part of its tree may be unwatched
                }
            }
        }
        let still_failing: Vec<PathBuf> = self
            .apply_watch_plan()
            .iter()
            .flat_map(|dir| self.targets_around(dir))
            .collect();
        for root in due {
            let Some(index) = self.layout.target_index(root) else {
                self.degraded.remove(root);
                continue;
            };
            let target = self.layout.targets[index].clone();
            self.rescan(&target)?;
            if self.watcher.is_some() && !still_failing.contains(root) {
                self.degraded.remove(root);
                tracing::info!(root = %root.display(), "watching in real time again");
            } else {
                self.degraded
                    .insert(root.clone(), now + self.timing.degraded_every);
            }
        }
        Ok(())
    }
}
