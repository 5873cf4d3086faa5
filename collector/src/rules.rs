//! Reads rule directories from disk for `detect` (which does no I/O itself):
//! every `*.yml`/`*.yaml` Sigma file (not `*.tests.yml`), placeholder lists from
//! `lists/*.txt`, and the 等保 clause map `mlps.yml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shaobing_detect::{DetectConfig, RuleSource};

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule directory {0} does not exist")]
    Missing(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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
        let tests_path = PathBuf::from(
            source
                .origin
                .trim_end_matches(".yml")
                .trim_end_matches(".yaml"),
        )
        .with_extension("tests.yml");
        if !tests_path.is_file() {
            report.untested.push(source.origin.clone());
            continue;
        }
        let tests = RuleSource {
            origin: tests_path.display().to_string(),
            yaml: read(&tests_path)?,
        };
        report.outcomes.push(shaobing_detect::run_rule_tests(
            &config,
            &source.origin,
            &tests,
        ));
    }
    Ok(report)
}
