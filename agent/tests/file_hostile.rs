//! Hostile files never hang or crash the file capture, and are counted:
//!
//! - symlink loops (`loop -> .`, `a -> b -> a`, a watched root that points to itself);
//! - FIFOs (opening one for reading would block; root can open anything else);
//! - files deleted while being hashed;
//! - names that are not UTF-8 (reported lossily, kept exactly in the baseline).

mod file_support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use file_support::{Running, Tree, file_body, sha256_hex};
use shaobing_agent::capture::file::{WatchSet, counter};
use shaobing_wire::v1::FileOp;

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_fifos_and_non_utf8_names_are_handled_and_counted() {
    let tree = Tree::new();
    let html = tree.path("www/html");
    symlink(".", html.join("loop")).unwrap();
    symlink("b", html.join("a")).unwrap();
    symlink("a", html.join("b")).unwrap();
    mkfifo(&html.join("pipe"));
    let odd_name = html.join(OsStr::from_bytes(b"caf\xe9.php"));
    std::fs::write(&odd_name, b"<?php echo 'v1';").unwrap();
    symlink(tree.path("loopy"), tree.path("loopy")).unwrap();
    let mut config = tree.config();
    config.watches.push(WatchSet {
        path: tree.path("loopy"),
        ..WatchSet::default()
    });

    let mut running = Running::start(&config, tree.dir.path()).await;
    assert!(
        running.counters.get(counter::NOT_REGULAR) >= 1,
        "the FIFO was seen, not opened"
    );
    assert!(running.counters.get(counter::BASELINED) >= 5);

    // The non-UTF-8 file changes: found by its exact bytes, reported lossily.
    std::fs::write(&odd_name, b"<?php eval($_POST['z']);").unwrap();
    let lossy = PathBuf::from(odd_name.to_string_lossy().into_owned());
    let modified = running.expect(FileOp::Modify, &lossy).await;
    assert!(modified.path.contains('\u{FFFD}'));
    assert_eq!(modified.hash_before, sha256_hex(b"<?php echo 'v1';"));
    assert!(running.counters.get(counter::NON_UTF8_PATHS) >= 1);

    // A new FIFO: reported without a hash, the monitor does not block on it.
    let fifo = html.join("pipe2");
    mkfifo(&fifo);
    let created = running.expect(FileOp::Create, &fifo).await;
    assert_eq!(created.hash_after, "");
    assert_eq!(created.mode & 0o170000, 0o010000, "S_IFIFO");

    // A new self-referencing symlink.
    let self_link = html.join("self");
    symlink("self", &self_link).unwrap();
    running.expect(FileOp::Create, &self_link).await;
    let raw = &running.find(FileOp::Create, &self_link)[0].raw;
    assert_eq!(raw, "symlink to self");

    // Still alive: an ordinary file right after.
    let after = tree.write("www/html/after.html", b"ok");
    let ok = running.expect(FileOp::Create, &after).await;
    assert_eq!(ok.hash_after, sha256_hex(b"ok"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_deleted_while_being_hashed_never_get_a_wrong_hash() {
    let tree = Tree::new();
    let mut running = Running::start(&tree.config(), tree.dir.path()).await;
    let size = 4 << 20;
    let mut paths = Vec::new();
    for i in 0..12u8 {
        let path = tree.path(&format!("www/html/big{i}.bin"));
        let body = vec![i; size];
        std::fs::write(&path, &body).unwrap();
        paths.push((path, sha256_hex(&body)));
        // Deleted around the moment the debounced hash runs (debounce is 250 ms).
        tokio::time::sleep(Duration::from_millis(240 + 15 * u64::from(i))).await;
        std::fs::remove_file(&paths[usize::from(i)].0).unwrap();
    }
    let marker = tree.write("www/html/marker.txt", b"done");
    running.expect(FileOp::Create, &marker).await;
    running.settle(Duration::from_millis(300)).await;

    for (path, digest) in &paths {
        let ops: Vec<(FileOp, String)> = running
            .events
            .iter()
            .map(file_body)
            .filter(|f| Path::new(&f.path) == path)
            .map(|f| (f.op(), f.hash_after.clone()))
            .collect();
        match ops.as_slice() {
            [] => {}
            [(FileOp::Create, hash), (FileOp::Delete, _)] => {
                assert!(hash.is_empty() || hash == digest, "wrong hash for {path:?}");
            }
            other => panic!("{path:?}: unexpected events {other:?}"),
        }
    }
    running.stop().await;
}
