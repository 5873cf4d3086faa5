//! Changes made while the agent was stopped are reported when it starts again on
//! the same baseline database (source `file_baseline`), and nothing is reported
//! twice across restarts.

mod file_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use file_support::{Running, Tree, file_body, sha256_hex};
use shaobing_wire::v1::FileOp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_while_stopped_are_reported_on_restart() {
    let tree = Tree::new();
    let passwd_v1 = b"root:x:0:0:root:/root:/bin/bash\n".to_vec();
    let passwd = tree.write("etc/passwd", &passwd_v1);
    let page = tree.write("www/html/about.html", b"<p>about</p>");
    let script = tree.write("www/html/app.js", b"console.log(1)");
    let keys = tree.write(
        "home/alice/.ssh/authorized_keys",
        b"ssh-ed25519 AAAA alice\n",
    );
    let config = tree.config();

    let first = Running::start(&config, tree.dir.path()).await;
    let events = first.stop().await;
    assert!(events.is_empty(), "first start only baselines: {events:#?}");

    // The agent is down.
    let passwd_v2 = b"root:x:0:0:root:/root:/bin/bash\nbackdoor:x:0:0::/:/bin/sh\n";
    std::fs::write(&passwd, passwd_v2).unwrap();
    let cron_body = b"[Service]\nExecStart=/tmp/.miner\n";
    let cron = tree.write("etc/cron.d/miner", cron_body);
    std::fs::remove_file(&page).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::remove_dir_all(tree.path("home/alice/.ssh")).unwrap();

    let mut second = Running::start(&config, tree.dir.path()).await;
    second.settle(Duration::from_millis(200)).await;
    assert!(
        second.events.iter().all(|e| e.source == "file_baseline"),
        "{:#?}",
        second.events
    );
    let modified = file_body(second.find(FileOp::Modify, &passwd)[0]);
    assert_eq!(modified.hash_before, sha256_hex(&passwd_v1));
    assert_eq!(modified.hash_after, sha256_hex(passwd_v2));
    let created = file_body(second.find(FileOp::Create, &cron)[0]);
    assert_eq!(created.hash_after, sha256_hex(cron_body));
    let deleted = file_body(second.find(FileOp::Delete, &page)[0]);
    assert_eq!(deleted.hash_before, sha256_hex(b"<p>about</p>"));
    let attrib = file_body(second.find(FileOp::Attrib, &script)[0]);
    assert_eq!(attrib.mode & 0o777, 0o777);
    let key_gone = file_body(second.find(FileOp::Delete, &keys)[0]);
    assert_eq!(
        Path::new(&key_gone.watched_root),
        tree.path("home/alice/.ssh")
    );
    assert_eq!(second.events.len(), 5, "{:#?}", second.events);

    // Realtime works after a restart too.
    second.events.clear();
    std::fs::write(&passwd, b"root:x:0:0::/root:/bin/bash\n").unwrap();
    let live = second.expect(FileOp::Modify, &passwd).await;
    assert_eq!(live.hash_before, sha256_hex(passwd_v2));
    let events = second.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, "inotify");

    // A third start has nothing new to say.
    let third = Running::start(&config, tree.dir.path()).await;
    let events = third.stop().await;
    assert!(events.is_empty(), "nothing changed since: {events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm3_baselines_hash_with_sm3_and_switching_algorithms_rebaselines_silently() {
    let tree = Tree::new();
    let passwd = tree.write("etc/passwd", b"root:x:0:0::/root:/bin/sh\n");
    let mut config = tree.config();
    config.hash = shaobing_agent::capture::file::HashAlgo::Sm3;
    let first = Running::start(&config, tree.dir.path()).await;
    assert!(first.stop().await.is_empty());

    std::fs::write(&passwd, b"root:x:0:0::/root:/bin/bash\n").unwrap();
    let second = Running::start(&config, tree.dir.path()).await;
    let events = second.stop().await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let modify = file_body(&events[0]);
    // GB/T 32905 digest: 64 hex characters, and not the SHA-256 of the bytes.
    assert_eq!(modify.hash_after.len(), 64);
    assert_ne!(
        modify.hash_after,
        sha256_hex(b"root:x:0:0::/root:/bin/bash\n")
    );

    // Switching to SHA-256: old hashes are not comparable, so rebaseline silently.
    config.hash = shaobing_agent::capture::file::HashAlgo::Sha256;
    let third = Running::start(&config, tree.dir.path()).await;
    assert!(third.stop().await.is_empty());
}
