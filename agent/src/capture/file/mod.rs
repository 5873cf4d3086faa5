//! File integrity monitoring (FIM): who changed the files that decide who may log
//! in, what runs at boot and on schedule, what the dynamic loader preloads, and
//! what a web server serves.
//!
//! Data flow, in module order:
//!
//! - [`config`]: [`FileConfig`] and its [`WatchSet`]s (paths or globs; defaults in
//!   [`config::default_watches`]).
//! - [`layout`]: watch sets expanded into concrete roots ("targets") plus the
//!   directories where a missing root may appear ("anchors"); routes a changed path
//!   to its root.
//! - [`watch`]: inotify via `notify` 8.2 → bounded channel of [`watch::WatchMsg`].
//! - [`debounce`]: one piece of work per path per burst of changes.
//! - [`hash`]: SHA-256 or SM3 of a file plus its content sample, safe against
//!   FIFOs, symlink swaps and files that change or vanish mid-read.
//! - [`baseline`]: the last known state of every file, in SQLite (`<data_dir>/file_baseline.db`).
//! - [`diff`]: disk vs baseline → create / modify / delete / rename / attrib events.
//! - [`event`]: wire events, batched into [`Capture`](crate::capture::Capture)s.
//! - [`monitor`]: the thread running it all (start-up diff, realtime loop, rescans).
//!
//! Events carry source `inotify` (realtime) or `file_baseline` (found by comparing
//! with the baseline: after a restart, a periodic rescan, or an overflow rescan).
//! An `op: rescan` event (source `file_baseline`, `raw` saying why) marks a root
//! whose realtime events were lost or that could not be watched.
//!
//! Not known, so left empty: the process behind a change (`pid`, `exe`, `cmdline`).
//! inotify does not report it, and fanotify / audit are not enabled by default.
//!
//! Counters (agent heartbeats): see [`counter`].

pub mod baseline;
pub mod config;
pub mod debounce;
pub mod diff;
pub mod event;
pub mod hash;
pub mod layout;
pub mod monitor;
pub mod watch;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinHandle;

use crate::capture::CaptureContext;

pub use self::config::{FileConfig, HashAlgo, WatchSet};

/// Counter names (stable: they appear in heartbeats).
pub mod counter {
    /// Events handed to the spool writer.
    pub const EVENTS: &str = "file.events";
    /// Events built but not handed on because the agent was stopping.
    pub const EVENTS_UNSENT: &str = "file.events_unsent";
    /// Files recorded silently by a first baseline.
    pub const BASELINED: &str = "file.baselined";
    /// Paths that are not UTF-8 (reported lossily).
    pub const NON_UTF8_PATHS: &str = "file.non_utf8_paths";
    /// Files gone between being listed and being read.
    pub const VANISHED: &str = "file.vanished";
    /// FIFOs, sockets and devices (recorded, never read).
    pub const NOT_REGULAR: &str = "file.not_regular";
    /// Files that could not be read (reported without hash).
    pub const READ_ERRORS: &str = "file.read_errors";
    /// Files that kept changing while being hashed (reported without hash).
    pub const CHANGED_DURING_HASH: &str = "file.changed_during_hash";
    /// Files over `max_hash_bytes` (compared by metadata only).
    pub const TOO_LARGE_TO_HASH: &str = "file.too_large_to_hash";
    /// Directory entries a walk could not read.
    pub const WALK_ERRORS: &str = "file.walk_errors";
    /// inotify queue overflows (kernel queue, or ours full): roots rescanned.
    pub const QUEUE_OVERFLOWS: &str = "file.queue_overflows";
    /// Changes not debounced because too many were pending: roots rescanned.
    pub const PENDING_OVERFLOWS: &str = "file.pending_overflows";
    /// Roots that fell back to periodic rescans (watch limit, or no inotify).
    pub const WATCH_LIMIT: &str = "file.watch_limit";
    /// Directories that could not be watched for another reason.
    pub const WATCH_ERRORS: &str = "file.watch_errors";
    /// Root rescans (periodic, overflow, degraded).
    pub const RESCANS: &str = "file.rescans";
    /// Completed start-ups (baseline diffed, realtime running).
    pub const STARTUPS: &str = "file.startups";
    /// Watch sets skipped because their path or globs are invalid.
    pub const CONFIG_ERRORS: &str = "file.config_errors";
}

/// Errors that stop the file capture.
#[derive(Debug, thiserror::Error)]
pub enum FileCaptureError {
    #[error(transparent)]
    Baseline(#[from] baseline::BaselineError),
}

/// Sets the stop flag when dropped: the task holding it was aborted or finished.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Starts file integrity monitoring. The work runs on a blocking thread (hashing
/// and SQLite must not stall the agent's single-threaded runtime); the returned
/// task ends when that thread does. Aborting the task stops the thread within a
/// tick; so does closing the capture channel.
pub fn spawn(config: &FileConfig, data_dir: &Path, ctx: &CaptureContext) -> Vec<JoinHandle<()>> {
    if !config.enabled {
        tracing::info!("file integrity monitoring disabled");
        return Vec::new();
    }
    let config = config.clone();
    let state_path = config.resolved_state_path(data_dir);
    let ctx = ctx.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let guard = StopOnDrop(stop.clone());
    let task = tokio::spawn(async move {
        let _guard = guard;
        let worker =
            tokio::task::spawn_blocking(move || run_blocking(config, &state_path, ctx, stop));
        match worker.await {
            Ok(Ok(())) => tracing::info!("file integrity monitoring stopped"),
            Ok(Err(error)) => tracing::error!(%error, "file integrity monitoring failed"),
            Err(error) => tracing::error!(%error, "file integrity monitoring thread panicked"),
        }
    });
    vec![task]
}

fn run_blocking(
    config: FileConfig,
    state_path: &Path,
    ctx: CaptureContext,
    stop: Arc<AtomicBool>,
) -> Result<(), FileCaptureError> {
    let (sink, feed) = watch::channel(config.queue_capacity);
    let watcher: Option<Box<dyn watch::DirWatcher>> = match watch::NotifyWatcher::start(sink) {
        Ok(watcher) => Some(Box::new(watcher)),
        Err(error) => {
            tracing::error!(%error, "inotify unavailable: file changes are found by rescans only");
            None
        }
    };
    monitor::Monitor::new(&config, state_path, ctx, stop, watcher, feed)?.run()
}

#[cfg(test)]
mod tests;
