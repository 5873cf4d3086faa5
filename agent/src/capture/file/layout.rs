//! What is watched, concretely: watch-set patterns expanded into **targets** (the
//! existing paths they name) and **anchors** (existing directories where a missing
//! or glob-matched target could appear), and the routing of a changed path to the
//! target that owns it.
//!
//! `/home/*/.ssh` with users alice (has `.ssh`) and bob (has none) expands to the
//! target `/home/alice/.ssh` and the anchors `/home`, `/home/alice`, `/home/bob`: a
//! new user's home, or bob creating `.ssh`, shows up as a change in an anchor, and the
//! pattern is expanded again. A file target (`/etc/passwd`) always has its parent
//! as an anchor, which is also how it is watched: editors and `useradd` replace the
//! file by renaming a new one over it, which a watch on the old inode would miss.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};

use super::config::WatchSet;

/// A watch-set path that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("watch path {0:?} is not absolute")]
    NotAbsolute(PathBuf),
    #[error("watch path {0:?} contains '..'")]
    ParentComponent(PathBuf),
    #[error("watch path {path:?}: bad glob {glob:?}: {source}")]
    Glob {
        path: PathBuf,
        glob: String,
        #[source]
        source: globset::Error,
    },
}

enum PatternPart {
    Literal(OsString),
    Glob(GlobMatcher),
}

impl PatternPart {
    fn matches(&self, name: &OsStr) -> bool {
        match self {
            PatternPart::Literal(literal) => literal == name,
            PatternPart::Glob(glob) => glob.is_match(name),
        }
    }
}

/// A compiled watch set: its pattern and filters.
pub struct CompiledSet {
    pub config: WatchSet,
    parts: Vec<PatternPart>,
    include: Option<GlobSet>,
    exclude: GlobSet,
}

fn has_glob_chars(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
}

fn glob_set(path: &Path, globs: &[String]) -> Result<GlobSet, PatternError> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        let compiled = Glob::new(glob).map_err(|source| PatternError::Glob {
            path: path.to_path_buf(),
            glob: glob.clone(),
            source,
        })?;
        builder.add(compiled);
    }
    builder.build().map_err(|source| PatternError::Glob {
        path: path.to_path_buf(),
        glob: globs.join(", "),
        source,
    })
}

impl CompiledSet {
    /// Compiles the pattern and the include/exclude globs of `config`.
    pub fn compile(config: &WatchSet) -> Result<Self, PatternError> {
        let path = &config.path;
        if !path.is_absolute() {
            return Err(PatternError::NotAbsolute(path.clone()));
        }
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(PatternError::ParentComponent(path.clone()));
                }
                Component::Normal(name) => match name.to_str() {
                    Some(text) if has_glob_chars(text) => {
                        let glob = Glob::new(text).map_err(|source| PatternError::Glob {
                            path: path.clone(),
                            glob: text.to_string(),
                            source,
                        })?;
                        parts.push(PatternPart::Glob(glob.compile_matcher()));
                    }
                    _ => parts.push(PatternPart::Literal(name.to_os_string())),
                },
            }
        }
        let include = if config.include.is_empty() {
            None
        } else {
            Some(glob_set(path, &config.include)?)
        };
        Ok(Self {
            config: config.clone(),
            parts,
            include,
            exclude: glob_set(path, &config.exclude)?,
        })
    }

    /// Whether a file at `rel` (relative to its target) is monitored.
    pub fn admits_file(&self, rel: &Path) -> bool {
        if rel.as_os_str().is_empty() {
            return true; // the target itself
        }
        !self.excludes(rel) && self.include.as_ref().is_none_or(|set| set.is_match(rel))
    }

    /// Whether `rel` or one of its ancestors is excluded.
    pub fn excludes(&self, rel: &Path) -> bool {
        rel.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| self.exclude.is_match(a))
    }

    /// Existing paths the pattern names, and the anchor directories to watch.
    fn expand(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut targets = Vec::new();
        let mut anchors = Vec::new();
        if self.parts.is_empty() {
            targets.push(PathBuf::from("/"));
        } else {
            self.expand_from(Path::new("/"), 0, &mut targets, &mut anchors);
        }
        (targets, anchors)
    }

    fn expand_from(
        &self,
        dir: &Path,
        depth: usize,
        targets: &mut Vec<PathBuf>,
        anchors: &mut Vec<PathBuf>,
    ) {
        let part = &self.parts[depth];
        let last = depth + 1 == self.parts.len();
        let candidates: Vec<PathBuf> = match part {
            PatternPart::Literal(name) => {
                let candidate = dir.join(name);
                if std::fs::symlink_metadata(&candidate).is_ok() {
                    vec![candidate]
                } else {
                    Vec::new()
                }
            }
            PatternPart::Glob(glob) => match std::fs::read_dir(dir) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .filter(|e| glob.is_match(e.file_name()))
                        .map(|e| e.path())
                        .collect();
                    found.sort();
                    found
                }
                Err(_) => Vec::new(),
            },
        };
        if last || candidates.is_empty() || matches!(part, PatternPart::Glob(_)) {
            anchors.push(dir.to_path_buf());
        }
        for candidate in candidates {
            if last {
                targets.push(candidate);
            } else if std::fs::metadata(&candidate).is_ok_and(|m| m.is_dir()) {
                self.expand_from(&candidate, depth + 1, targets, anchors);
            }
        }
    }

    /// Whether an entry `name` appearing in anchor `anchor` could be (on the way to) a target.
    fn could_appear(&self, anchor: &Path, name: &OsStr) -> bool {
        let depth = anchor
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count();
        self.parts.get(depth).is_some_and(|part| part.matches(name))
    }
}

/// An existing path a watch set names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    /// Index of its watch set.
    pub set: usize,
    /// A directory (followed if the target itself is a symlink to one).
    pub is_dir: bool,
}

/// Where a changed path belongs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Route {
    /// The owning target's index and the path relative to it (empty for the target itself).
    pub target: Option<(usize, PathBuf)>,
    /// Watch sets to expand again (something appeared or vanished in one of their anchors).
    pub expand: Vec<usize>,
}

/// The change in targets after an expansion.
#[derive(Debug, Default)]
pub struct TargetChanges {
    pub added: Vec<Target>,
    pub removed: Vec<Target>,
}

/// All watch sets, expanded.
pub struct Layout {
    pub sets: Vec<CompiledSet>,
    pub targets: Vec<Target>,
    /// Anchor directory → watch sets anchored there.
    anchors: BTreeMap<PathBuf, Vec<usize>>,
}

impl Layout {
    /// A layout of `sets`, not yet expanded.
    pub fn new(sets: Vec<CompiledSet>) -> Self {
        Self {
            sets,
            targets: Vec::new(),
            anchors: BTreeMap::new(),
        }
    }

    /// Expands every watch set; returns what changed.
    pub fn expand_all(&mut self) -> TargetChanges {
        let mut changes = TargetChanges::default();
        for set in 0..self.sets.len() {
            let one = self.expand_set(set);
            changes.added.extend(one.added);
            changes.removed.extend(one.removed);
        }
        changes
    }

    /// Expands watch set `set` again; returns the targets that appeared and vanished.
    pub fn expand_set(&mut self, set: usize) -> TargetChanges {
        let Some(compiled) = self.sets.get(set) else {
            return TargetChanges::default();
        };
        let (paths, anchors) = compiled.expand();
        for sets in self.anchors.values_mut() {
            sets.retain(|s| *s != set);
        }
        self.anchors.retain(|_, sets| !sets.is_empty());
        for anchor in anchors {
            self.anchors.entry(anchor).or_default().push(set);
        }
        let mut changes = TargetChanges::default();
        let (kept, removed): (Vec<Target>, Vec<Target>) = std::mem::take(&mut self.targets)
            .into_iter()
            .partition(|t| t.set != set || paths.contains(&t.path));
        changes.removed = removed;
        self.targets = kept;
        for path in paths {
            let taken = self.targets.iter().any(|t| t.path == path);
            if taken {
                continue; // another watch set already owns this path
            }
            let target = Target {
                is_dir: std::fs::metadata(&path).is_ok_and(|m| m.is_dir()),
                path,
                set,
            };
            changes.added.push(target.clone());
            self.targets.push(target);
        }
        changes
    }

    /// Whether `target` watches its whole tree.
    pub fn recursive(&self, target: &Target) -> bool {
        self.sets[target.set].config.recursive
    }

    /// Index of the target at exactly `path`.
    pub fn target_index(&self, path: &Path) -> Option<usize> {
        self.targets.iter().position(|t| t.path == path)
    }

    /// Paths of other targets strictly inside `target` (its scans skip them).
    pub fn nested_targets(&self, target: &Target) -> Vec<PathBuf> {
        if !target.is_dir {
            return Vec::new();
        }
        self.targets
            .iter()
            .filter(|t| t.path != target.path && t.path.starts_with(&target.path))
            .map(|t| t.path.clone())
            .collect()
    }

    /// The target owning `path` (the deepest one covering it) and the sets to re-expand.
    pub fn route(&self, path: &Path) -> Route {
        let mut best: Option<(usize, usize)> = None; // (index, depth of target path)
        for (index, target) in self.targets.iter().enumerate() {
            let covers = if path == target.path {
                true
            } else if target.is_dir && path.starts_with(&target.path) {
                self.recursive(target) || path.parent() == Some(target.path.as_path())
            } else {
                false
            };
            let depth = target.path.as_os_str().len();
            if covers && best.is_none_or(|(_, d)| depth > d) {
                best = Some((index, depth));
            }
        }
        let target = best.and_then(|(index, _)| {
            let owner = &self.targets[index];
            let rel = path.strip_prefix(&owner.path).ok()?.to_path_buf();
            (!self.sets[owner.set].excludes(&rel)).then_some((index, rel))
        });
        let mut expand = Vec::new();
        if let Some(sets) = self.anchors.get(path) {
            expand.extend(sets.iter().copied());
        }
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name())
            && let Some(sets) = self.anchors.get(parent)
        {
            for &set in sets {
                if self.sets[set].could_appear(parent, name) && !expand.contains(&set) {
                    expand.push(set);
                }
            }
        }
        Route { target, expand }
    }

    /// Directories to watch and whether recursively. Directories under a recursive
    /// watch are left out (the recursive watch covers them and a second, flat watch
    /// of the same directory would switch its recursion off).
    pub fn watch_plan(&self) -> BTreeMap<PathBuf, bool> {
        let mut plan: BTreeMap<PathBuf, bool> = BTreeMap::new();
        for target in self.targets.iter().filter(|t| t.is_dir) {
            let recursive = self.recursive(target);
            let slot = plan.entry(target.path.clone()).or_default();
            *slot |= recursive;
        }
        for anchor in self.anchors.keys() {
            plan.entry(anchor.clone()).or_default();
        }
        let recursive_dirs: Vec<PathBuf> = plan
            .iter()
            .filter(|(_, recursive)| **recursive)
            .map(|(path, _)| path.clone())
            .collect();
        plan.retain(|path, _| {
            !recursive_dirs
                .iter()
                .any(|dir| path != dir && path.starts_with(dir))
        });
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(path: &Path) -> WatchSet {
        WatchSet {
            path: path.to_path_buf(),
            ..WatchSet::default()
        }
    }

    #[test]
    fn globbed_and_missing_paths_expand_to_targets_and_anchors() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("alice/.ssh")).unwrap();
        std::fs::create_dir_all(home.join("bob")).unwrap();
        let sets = vec![
            CompiledSet::compile(&set(&home.join("*/.ssh"))).unwrap(),
            CompiledSet::compile(&set(&dir.path().join("etc/passwd"))).unwrap(),
        ];
        let mut layout = Layout::new(sets);
        let changes = layout.expand_all();
        assert_eq!(changes.added.len(), 1);
        assert_eq!(layout.targets[0].path, home.join("alice/.ssh"));
        assert!(layout.targets[0].is_dir);
        let plan = layout.watch_plan();
        assert_eq!(plan.get(&home.join("alice/.ssh")), Some(&true));
        assert_eq!(plan.get(&home), Some(&false));
        assert_eq!(plan.get(&home.join("bob")), Some(&false));
        // etc/ is missing: its deepest existing prefix is the anchor.
        assert_eq!(plan.get(dir.path()), Some(&false));

        // bob creates .ssh: the anchor routes it to a re-expansion of set 0.
        std::fs::create_dir(home.join("bob/.ssh")).unwrap();
        let route = layout.route(&home.join("bob/.ssh"));
        assert_eq!(route.target, None);
        assert_eq!(route.expand, vec![0]);
        assert!(layout.route(&home.join("bob/.bashrc")).expand.is_empty());
        let changes = layout.expand_set(0);
        assert_eq!(changes.added.len(), 1);
        assert_eq!(changes.added[0].path, home.join("bob/.ssh"));
        assert_eq!(layout.targets.len(), 2);

        std::fs::remove_dir(home.join("alice/.ssh")).unwrap();
        let changes = layout.expand_set(0);
        assert_eq!(changes.removed.len(), 1);
        assert_eq!(changes.removed[0].path, home.join("alice/.ssh"));
    }

    #[test]
    fn routing_picks_the_deepest_target_and_applies_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir_all(www.join("html/cache")).unwrap();
        std::fs::write(dir.path().join("passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        let mut web = set(&www);
        web.exclude = vec!["html/cache".into()];
        web.include = vec!["*.php".into()];
        let sets = vec![
            CompiledSet::compile(&web).unwrap(),
            CompiledSet::compile(&set(&dir.path().join("passwd"))).unwrap(),
        ];
        let mut layout = Layout::new(sets);
        layout.expand_all();
        let route = layout.route(&www.join("html/a.php"));
        assert_eq!(route.target, Some((0, PathBuf::from("html/a.php"))));
        assert_eq!(layout.route(&www.join("html/cache/x.php")).target, None);
        assert!(layout.sets[0].admits_file(Path::new("html/a.php")));
        assert!(!layout.sets[0].admits_file(Path::new("html/a.txt")));
        let route = layout.route(&dir.path().join("passwd"));
        assert_eq!(route.target, Some((1, PathBuf::new())));
        assert_eq!(layout.route(&dir.path().join("hosts")), Route::default());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(CompiledSet::compile(&set(Path::new("etc/passwd"))).is_err());
        assert!(CompiledSet::compile(&set(Path::new("/etc/../passwd"))).is_err());
        let mut bad_glob = set(Path::new("/etc"));
        bad_glob.include = vec!["[".into()];
        assert!(CompiledSet::compile(&bad_glob).is_err());
    }
}
