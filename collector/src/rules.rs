//! Reads rule directories from disk for `detect` (which does no I/O itself):
//! every `*.yml`/`*.yaml` Sigma file (not `*.tests.yml`), placeholder lists from
//! `lists/*.txt`, and the 等保 clause map `mlps.yml`.
//!
//! A serving collector also owns rule state of its own under its data directory
//! ([`RuleSet`]): `rules.local/` (rules written by the console, e.g. false-positive
//! filters; loaded with the operator's directories) and `rules-state.json` (the
//! rules an operator disabled, with who and when: [`RulesState`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shaobing_detect::{DetectConfig, RuleSource};

/// Directory (under the data directory) for rules the collector writes itself.
pub const LOCAL_RULE_DIR: &str = "rules.local";

/// File (under the data directory) listing the rules an operator disabled.
pub const RULES_STATE_FILE: &str = "rules-state.json";

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule directory {0} does not exist")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid rule state file: {reason}")]
    State { path: PathBuf, reason: String },
}

/// Who disabled a rule, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledRule {
    /// Rule title when it was disabled.
    pub title: String,
    /// Its level, kind and log source then (shown while it is not loaded).
    #[serde(default)]
    pub level: String,
    /// `detection`, `correlation` or `filter`.
    #[serde(default)]
    pub kind: String,
    /// `product=linux service=auth`-style log source.
    #[serde(default)]
    pub logsource: String,
    /// File the rule came from (its tests are found beside it).
    pub origin: String,
    /// Operator account.
    pub by: String,
    /// When (unix nanoseconds).
    pub at_unix_nano: i64,
}

/// `rules-state.json`: the operator's changes to the rule set that are not files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesState {
    /// Disabled rules by id.
    #[serde(default)]
    pub disabled: BTreeMap<String, DisabledRule>,
}

impl RulesState {
    /// Reads the state file; a missing file is the empty state.
    pub fn load(path: &Path) -> Result<RulesState, RulesError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RulesState::default());
            }
            Err(source) => {
                return Err(RulesError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|error| RulesError::State {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })
    }

    /// Writes the state file atomically (temporary file + rename).
    pub fn save(&self, path: &Path) -> Result<(), RulesError> {
        let io = |source| RulesError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|error| RulesError::State {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// The rules a collector runs: the operator's directories plus, when it has a data
/// directory, its own `rules.local/` and `rules-state.json`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Operator rule directories (`--rules`).
    pub dirs: Vec<PathBuf>,
    /// The collector's data directory, if it owns rule state.
    pub data_dir: Option<PathBuf>,
}

impl RuleSet {
    /// Rule directories only (no local rules, nothing disabled).
    pub fn dirs_only(dirs: Vec<PathBuf>) -> RuleSet {
        RuleSet {
            dirs,
            data_dir: None,
        }
    }

    /// Directories plus the state under `data_dir`.
    pub fn with_data_dir(dirs: Vec<PathBuf>, data_dir: PathBuf) -> RuleSet {
        RuleSet {
            dirs,
            data_dir: Some(data_dir),
        }
    }

    /// `<data_dir>/rules.local`.
    pub fn local_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join(LOCAL_RULE_DIR))
    }

    /// `<data_dir>/rules-state.json`.
    pub fn state_path(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.join(RULES_STATE_FILE))
    }

    /// Every directory that is read: the operator's, then `rules.local/` if it exists.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.dirs.clone();
        if let Some(local) = self.local_dir().filter(|d| d.is_dir()) {
            dirs.push(local);
        }
        dirs
    }

    /// The operator's rule state (empty without a data directory).
    pub fn state(&self) -> Result<RulesState, RulesError> {
        match self.state_path() {
            Some(path) => RulesState::load(&path),
            None => Ok(RulesState::default()),
        }
    }

    /// Every rule of [`Self::all_dirs`], with the disabled ones marked for skipping.
    pub fn read(&self) -> Result<DetectConfig, RulesError> {
        let mut config = read_rule_dirs(&self.all_dirs())?;
        config.disabled = self.state()?.disabled.into_keys().collect();
        Ok(config)
    }

    /// Every rule of [`Self::all_dirs`], disabled ones included (rule tests).
    pub fn read_all(&self) -> Result<DetectConfig, RulesError> {
        read_rule_dirs(&self.all_dirs())
    }
}

/// Everything under `dirs` that detection needs, read into memory.
pub fn read_rule_dirs(dirs: &[PathBuf]) -> Result<DetectConfig, RulesError> {
    let mut sources = Vec::new();
    let mut lists = BTreeMap::new();
    let mut mlps_yaml = None;
    for dir in dirs {
        if !dir.is_dir() {
            return Err(RulesError::Missing(dir.clone()));
        }
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        for path in files {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let in_lists = path
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n == "lists");
            if in_lists && name.ends_with(".txt") {
                let text = read(&path)?;
                let values = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect();
                lists.insert(name.trim_end_matches(".txt").to_string(), values);
            } else if name == "mlps.yml" {
                mlps_yaml = Some(read(&path)?);
            } else if (name.ends_with(".yml") || name.ends_with(".yaml"))
                && !name.ends_with(".tests.yml")
            {
                sources.push(RuleSource {
                    origin: path.display().to_string(),
                    yaml: read(&path)?,
                });
            }
        }
    }
    Ok(DetectConfig {
        sources,
        lists,
        mlps_yaml,
        ..Default::default()
    })
}

fn read(path: &Path) -> Result<String, RulesError> {
    std::fs::read_to_string(path).map_err(|source| RulesError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RulesError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RulesError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// The default rule directory: `$SHAOBING_RULES`, else `rules/` beside the
/// working directory, else `/etc/shaobing/rules`.
pub fn default_rule_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SHAOBING_RULES") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("rules");
    if local.is_dir() {
        return local;
    }
    PathBuf::from("/etc/shaobing/rules")
}

/// Outcome of `rules test` over directories.
#[derive(Debug, Default)]
pub struct RuleTestReport {
    pub outcomes: Vec<shaobing_detect::TestOutcome>,
    /// Rule files that have no sibling `*.tests.yml`.
    pub untested: Vec<String>,
}

impl RuleTestReport {
    pub fn passed(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.passed())
    }
}

/// Runs every rule's sibling test file (`<name>.tests.yml`) found under `dirs`,
/// with all rules of `dirs` loaded (a correlation needs its detection rules).
pub fn test_rule_dirs(dirs: &[PathBuf]) -> Result<RuleTestReport, RulesError> {
    let config = read_rule_dirs(dirs)?;
    let mut report = RuleTestReport::default();
    for source in &config.sources {
        match test_rule_file(&config, &source.origin)? {
            Some(outcome) => report.outcomes.push(outcome),
            None => report.untested.push(source.origin.clone()),
        }
    }
    Ok(report)
}

/// The test file beside a rule file: `<name>.tests.yml`.
pub fn tests_path(rule_origin: &str) -> PathBuf {
    PathBuf::from(
        rule_origin
            .trim_end_matches(".yml")
            .trim_end_matches(".yaml"),
    )
    .with_extension("tests.yml")
}

/// Runs the tests of the rule file `origin` (one of `config`'s sources) with every
/// rule of `config` loaded; `None` when the file has no tests beside it.
pub fn test_rule_file(
    config: &DetectConfig,
    origin: &str,
) -> Result<Option<shaobing_detect::TestOutcome>, RulesError> {
    let path = tests_path(origin);
    if !path.is_file() {
        return Ok(None);
    }
    let tests = RuleSource {
        origin: path.display().to_string(),
        yaml: read(&path)?,
    };
    Ok(Some(shaobing_detect::run_rule_tests(
        config, origin, &tests,
    )))
}
