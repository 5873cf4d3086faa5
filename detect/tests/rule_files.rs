//! Every rule under `rules/` loads cleanly, is mapped in `rules/mlps.yml`, has a
//! sibling `<name>.tests.yml`, and passes it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use shaobing_detect::{DetectConfig, Detector, RuleSource, parse_list, run_rule_tests};

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "yml") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".tests.yml")
}

/// All rule files (not tests, not the clause map), sorted.
fn rule_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    yaml_files(&rules_dir(), &mut files);
    files.retain(|p| !is_test_file(p) && p.file_name().is_some_and(|n| n != "mlps.yml"));
    files.sort();
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn config() -> DetectConfig {
    let sources = rule_files()
        .iter()
        .map(|path| RuleSource {
            origin: path.display().to_string(),
            yaml: read(path),
        })
        .collect();
    let mut lists = BTreeMap::new();
    let lists_dir = rules_dir().join("lists");
    if lists_dir.is_dir() {
        for entry in fs::read_dir(&lists_dir).expect("lists dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|ext| ext == "txt") {
                let name = path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .to_string();
                lists.insert(name, parse_list(&read(&path)));
            }
        }
    }
    DetectConfig {
        sources,
        lists,
        mlps_yaml: Some(read(&rules_dir().join("mlps.yml"))),
        ..DetectConfig::default()
    }
}

#[test]
fn every_rule_loads_without_rejections_or_warnings() {
    let (detector, report) = Detector::new(config());
    let problems: Vec<String> = report
        .rejected
        .iter()
        .chain(&report.warnings)
        .map(ToString::to_string)
        .collect();
    assert!(
        problems.is_empty(),
        "rule problems:\n{}",
        problems.join("\n")
    );
    assert!(
        report.detection_rules >= 1 && report.correlation_rules >= 1,
        "{report:?}"
    );
    assert_eq!(detector.rules().len(), report.loaded);
}

#[test]
fn every_rule_is_mapped_to_mlps_clauses() {
    let (detector, _) = Detector::new(config());
    let unmapped: Vec<String> = detector
        .rules()
        .into_iter()
        .filter(|rule| rule.mlps.is_empty())
        .map(|rule| format!("{} ({}) in {}", rule.id, rule.title, rule.origin))
        .collect();
    assert!(
        unmapped.is_empty(),
        "rules without 等保 clauses in mlps.yml:\n{}",
        unmapped.join("\n")
    );
}

#[test]
fn every_rule_file_has_passing_tests() {
    let config = config();
    let mut failures = Vec::new();
    let mut cases = 0;
    for rule_path in rule_files() {
        let test_path = rule_path.with_extension("tests.yml");
        if !test_path.exists() {
            failures.push(format!(
                "{}: missing {}",
                rule_path.display(),
                test_path.display()
            ));
            continue;
        }
        let tests = RuleSource {
            origin: test_path.display().to_string(),
            yaml: read(&test_path),
        };
        let outcome = run_rule_tests(&config, &rule_path.display().to_string(), &tests);
        cases += outcome.cases.len();
        if let Some(error) = &outcome.error {
            failures.push(format!("{}: {error}", outcome.origin));
        }
        if outcome.cases.is_empty() {
            failures.push(format!("{}: no test cases", outcome.origin));
        }
        for case in outcome.failures() {
            failures.push(format!(
                "{}: {}: {}",
                outcome.origin, case.name, case.detail
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "rule test failures:\n{}",
        failures.join("\n")
    );
    assert!(cases > 0, "no rule test cases ran");
}

#[test]
fn every_test_file_has_a_rule_file() {
    let mut files = Vec::new();
    yaml_files(&rules_dir(), &mut files);
    let orphans: Vec<String> = files
        .iter()
        .filter(|p| is_test_file(p))
        .filter(|p| {
            let rule = p.to_string_lossy().replace(".tests.yml", ".yml");
            !Path::new(&rule).exists()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(orphans.is_empty(), "test files without a rule: {orphans:?}");
}
