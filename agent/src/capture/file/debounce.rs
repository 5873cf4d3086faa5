//! Debouncing: a burst of inotify events on one path becomes one piece of work,
//! done once the path has been quiet for `quiet` (or, for a path written without
//! pause, after `max_delay`). Renames keep their link: the new path remembers the
//! old one, and the old path knows where its content went.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Pending {
    first: Instant,
    last: Instant,
    old_path: Option<PathBuf>,
    renamed_to: Option<PathBuf>,
}

/// A path whose burst is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub path: PathBuf,
    /// The path this one was renamed from.
    pub old_path: Option<PathBuf>,
    /// The path this one was renamed to.
    pub renamed_to: Option<PathBuf>,
}

/// Paths waiting out their burst.
pub struct Debouncer {
    quiet: Duration,
    max_delay: Duration,
    max_pending: usize,
    entries: HashMap<PathBuf, Pending>,
}

impl Debouncer {
    /// `quiet`: time without events before a path is due; `max_pending`: most paths held.
    pub fn new(quiet: Duration, max_pending: usize) -> Self {
        Self {
            quiet,
            max_delay: (quiet * 10).max(Duration::from_secs(2)),
            max_pending: max_pending.max(1),
            entries: HashMap::new(),
        }
    }

    /// Number of paths waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no path is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records an event on `path`. Returns false when the table is full and the
    /// event was not recorded (the caller must rescan instead).
    pub fn touch(&mut self, path: &Path, now: Instant) -> bool {
        self.entry(path, now).is_some()
    }

    /// Records that `from` was renamed to `to`.
    pub fn rename(&mut self, from: &Path, to: &Path, now: Instant) -> bool {
        let Some(to_entry) = self.entry(to, now) else {
            return false;
        };
        to_entry.old_path = Some(from.to_path_buf());
        let Some(from_entry) = self.entry(from, now) else {
            return false;
        };
        from_entry.renamed_to = Some(to.to_path_buf());
        true
    }

    fn entry(&mut self, path: &Path, now: Instant) -> Option<&mut Pending> {
        if !self.entries.contains_key(path) && self.entries.len() >= self.max_pending {
            return None;
        }
        let pending = self
            .entries
            .entry(path.to_path_buf())
            .or_insert_with(|| Pending {
                first: now,
                last: now,
                old_path: None,
                renamed_to: None,
            });
        pending.last = now;
        Some(pending)
    }

    /// Removes and returns the paths whose burst is over, sorted by path (so a new
    /// directory comes before the files in it).
    pub fn take_due(&mut self, now: Instant) -> Vec<Due> {
        let due_paths: Vec<PathBuf> = self
            .entries
            .iter()
            .filter(|(_, p)| {
                now.duration_since(p.last) >= self.quiet
                    || now.duration_since(p.first) >= self.max_delay
            })
            .map(|(path, _)| path.clone())
            .collect();
        let mut due: Vec<Due> = due_paths
            .into_iter()
            .filter_map(|path| self.take(&path))
            .collect();
        due.sort_by(|a, b| a.path.cmp(&b.path));
        due
    }

    /// Removes and returns `path` whether or not its burst is over.
    pub fn take(&mut self, path: &Path) -> Option<Due> {
        self.entries.remove(path).map(|p| Due {
            path: path.to_path_buf(),
            old_path: p.old_path,
            renamed_to: p.renamed_to,
        })
    }

    /// Forgets everything (a full rescan covers it).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_due_path_after_the_quiet_time() {
        let mut d = Debouncer::new(Duration::from_millis(100), 10);
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(d.touch(Path::new("/w/a"), t0 + Duration::from_millis(10 * i)));
        }
        assert!(d.take_due(t0 + Duration::from_millis(100)).is_empty());
        let due = d.take_due(t0 + Duration::from_millis(141));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].path, PathBuf::from("/w/a"));
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn a_path_written_without_pause_is_due_after_the_max_delay() {
        let mut d = Debouncer::new(Duration::from_millis(100), 10);
        let t0 = Instant::now();
        let mut now = t0;
        while now < t0 + Duration::from_millis(1990) {
            d.touch(Path::new("/w/log"), now);
            assert!(d.take_due(now).is_empty());
            now += Duration::from_millis(50);
        }
        d.touch(Path::new("/w/log"), t0 + Duration::from_secs(2));
        assert_eq!(d.take_due(t0 + Duration::from_secs(2)).len(), 1);
    }

    #[test]
    fn renames_link_both_paths_and_a_full_table_refuses() {
        let mut d = Debouncer::new(Duration::from_millis(10), 2);
        let t0 = Instant::now();
        assert!(d.rename(Path::new("/w/a"), Path::new("/w/b"), t0));
        assert!(!d.touch(Path::new("/w/c"), t0), "table of 2 is full");
        let due = d.take_due(t0 + Duration::from_millis(20));
        assert_eq!(
            due,
            vec![
                Due {
                    path: "/w/a".into(),
                    old_path: None,
                    renamed_to: Some("/w/b".into())
                },
                Due {
                    path: "/w/b".into(),
                    old_path: Some("/w/a".into()),
                    renamed_to: None
                },
            ]
        );
    }
}
