//! Shared helpers of the integration tests and benches: reading `rules/`, the
//! SigmaHQ Linux corpus (outside the repository), and the mixed-event corpus.

#![allow(dead_code)]

pub mod mixed_corpus;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use shaobing_detect::{DetectConfig, RuleSource, parse_list};

/// The repository's `rules/`.
pub fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

/// SigmaHQ's Linux rules (DRL 1.1, never committed here): `rules/`,
/// `rules-emerging-threats/` and `rules-threat-hunting/`.
pub fn sigmahq_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sigmahq-linux")
}

/// The committed mixed-event corpus and its expected alerts.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every Sigma rule file under `dir` (not `*.tests.yml`, not `mlps.yml`), sorted.
pub fn rule_sources(dir: &Path) -> Vec<RuleSource> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    files.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        (name.ends_with(".yml") || name.ends_with(".yaml"))
            && !name.ends_with(".tests.yml")
            && name != "mlps.yml"
    });
    files.sort();
    files
        .iter()
        .map(|path| RuleSource {
            origin: path.display().to_string(),
            yaml: read(path),
        })
        .collect()
}

/// Our rules with their lists and clause map.
pub fn our_config() -> DetectConfig {
    let dir = rules_dir();
    let mut lists = BTreeMap::new();
    for entry in fs::read_dir(dir.join("lists")).expect("rules/lists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "txt") {
            let name = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            lists.insert(name, parse_list(&read(&path)));
        }
    }
    DetectConfig {
        sources: rule_sources(&dir),
        lists,
        mlps_yaml: Some(read(&dir.join("mlps.yml"))),
        ..DetectConfig::default()
    }
}

/// Our rules plus every SigmaHQ Linux rule.
pub fn our_and_sigmahq_config() -> DetectConfig {
    let dir = sigmahq_dir();
    assert!(
        dir.is_dir(),
        "SigmaHQ Linux rules not found at {} (copy SigmaHQ's rules/linux there)",
        dir.display()
    );
    let mut config = our_config();
    config.sources.extend(rule_sources(&dir));
    config
}
