//! From real inotify events to the intended Sigma alerts: attacks are played on a
//! temporary tree, the captured events are re-rooted as if that tree were `/`
//! (`<tmp>/etc/passwd` → `/etc/passwd`, `<tmp>/www` → `/var/www`), and fed to the
//! detector loaded with every rule under `rules/`. Each change must raise exactly
//! the `rules/file/` rules meant for it.

mod file_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use file_support::{Running, Tree, file_body};
use shaobing_agent::capture::file::WatchSet;
use shaobing_detect::{DetectConfig, Detector, RuleSource, parse_list};
use shaobing_wire::v1::{Event, FileOp, event::Body};

const WEBSHELL_CONTENT: &str = "e7c188dd-73e7-407d-b112-b21243037c6f";
const WEB_SCRIPT_CREATED: &str = "ad6d7d47-aca8-40dd-8a30-e6aff340044e";
const WEB_PAGE_TAMPERING: &str = "c1966f38-9c11-46af-ba84-1a9bb9fbcd24";
const ACCOUNT_FILES_CHANGED: &str = "a38f5efa-446e-4d20-9c97-84f8389dc704";
const SUDOERS_CHANGED: &str = "888867e2-a833-4453-b648-f016c2fe78f6";
const AUTHORIZED_KEYS_CHANGED: &str = "a6767b8c-d22a-46d9-93fe-87312643abcb";
const CRON_PERSISTENCE: &str = "e1b5d2fd-e7b0-4a56-ac23-21401f8ab888";
const SYSTEMD_UNIT_PERSISTENCE: &str = "6999662c-886e-48f0-b577-953e0666917b";
const LD_SO_PRELOAD_WRITTEN: &str = "748bd681-921e-42b7-8963-4fac84b07352";

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn collect_rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rule_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml")
            && !path.to_string_lossy().ends_with(".tests.yml")
            && path.file_name().is_some_and(|n| n != "mlps.yml")
        {
            out.push(path);
        }
    }
}

fn detector() -> Detector {
    let mut files = Vec::new();
    collect_rule_files(&rules_dir(), &mut files);
    let sources = files
        .iter()
        .map(|path| RuleSource {
            origin: path.display().to_string(),
            yaml: std::fs::read_to_string(path).unwrap(),
        })
        .collect();
    let mut lists = BTreeMap::new();
    for entry in std::fs::read_dir(rules_dir().join("lists")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt") {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            lists.insert(name, parse_list(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    let (detector, report) = Detector::new(DetectConfig {
        sources,
        lists,
        ..DetectConfig::default()
    });
    assert!(report.loaded > 0);
    detector
}

/// The event as the agent would send it if the temporary tree were the host's `/`.
fn rerooted(event: &Event, tmp: &Path) -> Event {
    let tmp = tmp.to_string_lossy().into_owned();
    let reroot = |text: &str| -> String {
        let Some(rest) = text.strip_prefix(&tmp) else {
            return text.to_string();
        };
        match rest.strip_prefix("/www") {
            Some(web) => format!("/var/www{web}"),
            None => rest.to_string(),
        }
    };
    let mut event = event.clone();
    if let Some(Body::File(file)) = event.body.as_mut() {
        file.path = reroot(&file.path);
        file.old_path = reroot(&file.old_path);
        file.watched_root = reroot(&file.watched_root);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_attacks_raise_the_intended_rules() {
    let tree = Tree::new();
    for dir in ["etc/systemd/system", "etc/sudoers.d"] {
        std::fs::create_dir_all(tree.path(dir)).unwrap();
    }
    tree.write("www/html/index.html", b"<h1>Welcome</h1>");
    tree.write("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    tree.write(
        "home/alice/.ssh/authorized_keys",
        b"ssh-ed25519 AAAA alice\n",
    );
    let mut config = tree.config();
    for extra in ["etc/ld.so.preload", "etc/systemd/system", "etc/sudoers.d"] {
        config.watches.push(WatchSet {
            path: tree.path(extra),
            ..WatchSet::default()
        });
    }
    let mut running = Running::start(&config, tree.dir.path()).await;

    let changes: Vec<(PathBuf, FileOp, Vec<&str>)> = vec![
        (
            tree.write("www/html/shell.php", b"<?php @eval($_POST['x']); ?>"),
            FileOp::Create,
            vec![WEBSHELL_CONTENT, WEB_SCRIPT_CREATED],
        ),
        (
            tree.write("www/html/index.html", b"<h1>hacked</h1>"),
            FileOp::Modify,
            vec![WEB_PAGE_TAMPERING],
        ),
        (
            tree.write(
                "home/alice/.ssh/authorized_keys",
                b"ssh-ed25519 AAAA alice\nssh-rsa BBBB mallory\n",
            ),
            FileOp::Modify,
            vec![AUTHORIZED_KEYS_CHANGED],
        ),
        (
            tree.write("etc/cron.d/update", b"* * * * * root /tmp/.x\n"),
            FileOp::Create,
            vec![CRON_PERSISTENCE],
        ),
        (
            tree.write(
                "etc/passwd",
                b"root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/:/bin/sh\n",
            ),
            FileOp::Modify,
            vec![ACCOUNT_FILES_CHANGED],
        ),
        (
            tree.write("etc/ld.so.preload", b"/usr/lib/libhide.so\n"),
            FileOp::Create,
            vec![LD_SO_PRELOAD_WRITTEN],
        ),
        (
            tree.write(
                "etc/systemd/system/dbus-helper.service",
                b"[Service]\nExecStart=/tmp/.x\n",
            ),
            FileOp::Create,
            vec![SYSTEMD_UNIT_PERSISTENCE],
        ),
        (
            tree.write("etc/sudoers.d/90-x", b"mallory ALL=(ALL) NOPASSWD: ALL\n"),
            FileOp::Create,
            vec![SUDOERS_CHANGED],
        ),
    ];
    for (path, op, _) in &changes {
        running.expect(*op, path).await;
    }
    let events = running.stop().await;

    let mut detector = detector();
    let mut fired: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in &events {
        let event = rerooted(event, tree.dir.path());
        let path = file_body(&event).path.clone();
        for alert in detector.process(&event) {
            fired.entry(path.clone()).or_default().insert(alert.rule_id);
        }
    }
    for (path, _, expected) in &changes {
        let on_host = rerooted_path(path, tree.dir.path());
        let got = fired.remove(&on_host).unwrap_or_default();
        let expected: BTreeSet<String> = expected.iter().map(|id| id.to_string()).collect();
        assert_eq!(got, expected, "rules raised for {on_host}");
    }
    assert!(fired.is_empty(), "unexpected alerts: {fired:#?}");
}

fn rerooted_path(path: &Path, tmp: &Path) -> String {
    let rest = path
        .strip_prefix(tmp)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    match rest.strip_prefix("www/") {
        Some(web) => format!("/var/www/{web}"),
        None => format!("/{rest}"),
    }
}
