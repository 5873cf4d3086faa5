//! The realtime side: inotify through `notify` 8.2, reduced to the messages the
//! monitor needs ([`WatchMsg`]) and put on a bounded channel.
//!
//! The handler runs on notify's own thread and never blocks: when the channel is
//! full it drops the event and raises a flag, and the monitor rescans (a blocked
//! handler would deadlock `watch()` calls, which wait for that same thread).
//! Open/close-without-write notifications (notify always asks inotify for
//! `IN_OPEN`) are discarded right there.
//!
//! [`DirWatcher`] is the small interface the monitor drives, so tests can stand in
//! a watcher that runs out of watches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// What the monitor learns from inotify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMsg {
    /// Something happened to `path` (create, write, attrib, delete, one half of a rename).
    Changed(PathBuf),
    /// `from` was renamed to `to` (both inside watched directories).
    Renamed { from: PathBuf, to: PathBuf },
    /// The kernel queue overflowed: events were lost.
    Overflow,
    /// Watches could not be added (`max_user_watches` reached) under these paths.
    LimitReached(Vec<PathBuf>),
}

/// Why a directory could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("inotify watch limit reached (fs.inotify.max_user_watches)")]
    LimitReached,
    #[error("path not found")]
    NotFound,
    #[error("{0}")]
    Other(String),
}

/// Adds and removes directory watches.
pub trait DirWatcher: Send {
    /// Watches `dir` (and, if `recursive`, every directory below it, now and later).
    fn watch(&mut self, dir: &Path, recursive: bool) -> Result<(), WatchError>;
    /// Stops watching `dir` (errors are irrelevant: the directory may be gone).
    fn unwatch(&mut self, dir: &Path);
}

/// The receiving end: messages plus the "events were dropped" flag.
pub struct WatchFeed {
    pub rx: Receiver<WatchMsg>,
    pub dropped: Arc<AtomicBool>,
}

impl WatchFeed {
    /// Whether events were dropped since the last call (clears the flag).
    pub fn take_dropped(&self) -> bool {
        self.dropped.swap(false, Ordering::AcqRel)
    }
}

/// The sending end used by a watcher's handler.
#[derive(Clone)]
pub struct WatchSink {
    tx: SyncSender<WatchMsg>,
    dropped: Arc<AtomicBool>,
}

impl WatchSink {
    /// Queues `msg`; if the queue is full, drops it and raises the flag.
    pub fn offer(&self, msg: WatchMsg) {
        match self.tx.try_send(msg) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => self.dropped.store(true, Ordering::Release),
        }
    }

    /// Turns one notify result into messages.
    pub fn handle(&self, result: notify::Result<Event>) {
        match result {
            Ok(event) => {
                if let Some(msg) = translate(event) {
                    self.offer(msg);
                }
            }
            Err(error) => match error.kind {
                notify::ErrorKind::MaxFilesWatch => self.offer(WatchMsg::LimitReached(error.paths)),
                _ => tracing::debug!(%error, "inotify error"),
            },
        }
    }
}

/// A bounded channel between a watcher's handler and the monitor.
pub fn channel(capacity: usize) -> (WatchSink, WatchFeed) {
    let (tx, rx) = sync_channel(capacity.max(16));
    let dropped = Arc::new(AtomicBool::new(false));
    (
        WatchSink {
            tx,
            dropped: dropped.clone(),
        },
        WatchFeed { rx, dropped },
    )
}

fn translate(event: Event) -> Option<WatchMsg> {
    if event.need_rescan() {
        return Some(WatchMsg::Overflow);
    }
    match event.kind {
        // Reads are not changes; our own hashing causes them too.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) | EventKind::Other | EventKind::Any => return None,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let mut paths = event.paths.into_iter();
            return match (paths.next(), paths.next()) {
                (Some(from), Some(to)) => Some(WatchMsg::Renamed { from, to }),
                (Some(path), None) => Some(WatchMsg::Changed(path)),
                _ => None,
            };
        }
        _ => {}
    }
    event.paths.into_iter().next().map(WatchMsg::Changed)
}

/// [`DirWatcher`] over notify's inotify backend. Symlinks are never followed while
/// adding recursive watches (a symlink loop must not exhaust the watch limit).
pub struct NotifyWatcher {
    inner: RecommendedWatcher,
}

impl NotifyWatcher {
    /// Starts inotify; events go to `sink`.
    pub fn start(sink: WatchSink) -> Result<Self, WatchError> {
        let config = notify::Config::default().with_follow_symlinks(false);
        let inner = RecommendedWatcher::new(move |result| sink.handle(result), config)
            .map_err(|e| WatchError::Other(e.to_string()))?;
        Ok(Self { inner })
    }
}

impl DirWatcher for NotifyWatcher {
    fn watch(&mut self, dir: &Path, recursive: bool) -> Result<(), WatchError> {
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        self.inner.watch(dir, mode).map_err(|e| match e.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::LimitReached,
            notify::ErrorKind::PathNotFound => WatchError::NotFound,
            notify::ErrorKind::Io(ref io) if io.kind() == std::io::ErrorKind::NotFound => {
                WatchError::NotFound
            }
            _ => WatchError::Other(e.to_string()),
        })
    }

    fn unwatch(&mut self, dir: &Path) {
        let _ = self.inner.unwatch(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, Flag};

    #[test]
    fn events_become_messages_and_reads_are_dropped() {
        let (sink, feed) = channel(16);
        sink.handle(Ok(
            Event::new(EventKind::Create(CreateKind::File)).add_path("/w/a".into())
        ));
        sink.handle(Ok(Event::new(EventKind::Access(AccessKind::Open(
            AccessMode::Any,
        )))
        .add_path("/w/a".into())));
        sink.handle(Ok(Event::new(EventKind::Modify(ModifyKind::Name(
            RenameMode::Both,
        )))
        .add_path("/w/a".into())
        .add_path("/w/b".into())));
        sink.handle(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        sink.handle(Err(
            notify::Error::new(notify::ErrorKind::MaxFilesWatch).add_path("/w/deep".into())
        ));
        let got: Vec<WatchMsg> = feed.rx.try_iter().collect();
        assert_eq!(
            got,
            vec![
                WatchMsg::Changed("/w/a".into()),
                WatchMsg::Renamed {
                    from: "/w/a".into(),
                    to: "/w/b".into()
                },
                WatchMsg::Overflow,
                WatchMsg::LimitReached(vec!["/w/deep".into()]),
            ]
        );
        assert!(!feed.take_dropped());
    }

    #[test]
    fn a_full_queue_drops_and_flags_instead_of_blocking() {
        let (sink, feed) = channel(16);
        for i in 0..40 {
            sink.offer(WatchMsg::Changed(PathBuf::from(format!("/w/{i}"))));
        }
        assert_eq!(feed.rx.try_iter().count(), 16);
        assert!(feed.take_dropped());
        assert!(!feed.take_dropped(), "the flag clears once read");
    }
}
