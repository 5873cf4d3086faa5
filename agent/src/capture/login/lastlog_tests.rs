//! Tests of the lastlog watcher: a real Debian 12 lastlog file (written by
//! sshd, `login` through pam_lastlog, and `lastlog -S`; see
//! `testdata/README.md`), records built byte by byte in the native layout, and
//! hostile files (truncated, huge and sparse, garbage).

use std::io::Write;

use shaobing_wire::v1::event::Body;

use super::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/capture/login/testdata/debian12_lastlog"
);
const FIXTURE_PASSWD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/capture/login/testdata/debian12_passwd"
);

/// One record in the native layout.
fn record(time: i64, line: &[u8], host: &[u8]) -> Vec<u8> {
    let mut r = vec![0u8; RECORD_SIZE];
    if TIME_BYTES == 4 {
        r[..4].copy_from_slice(&(time as i32).to_ne_bytes());
    } else {
        r[..8].copy_from_slice(&time.to_ne_bytes());
    }
    r[TIME_BYTES..TIME_BYTES + line.len()].copy_from_slice(line);
    r[TIME_BYTES + LINE_BYTES..TIME_BYTES + LINE_BYTES + host.len()].copy_from_slice(host);
    r
}

/// Writes `record` at `uid`'s offset (the file grows sparse, like lastlog's writers do).
fn put(path: &Path, uid: u64, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    file.write_all_at(bytes, uid * RECORD_SIZE as u64).unwrap();
}

fn login(event: &Event) -> &LoginEvent {
    match &event.body {
        Some(Body::Login(login)) => login,
        other => panic!("not a login event: {other:?}"),
    }
}

/// (user, tty, host, time in seconds) of each event.
fn summary(events: &[Event]) -> Vec<(String, String, String, i64)> {
    events
        .iter()
        .map(|e| {
            let l = login(e);
            (
                l.user.clone(),
                l.tty.clone(),
                l.source_ip.clone(),
                e.time_unix_nano / 1_000_000_000,
            )
        })
        .collect()
}

fn config(dir: &Path, read_existing: bool) -> LastlogConfig {
    let passwd = dir.join("passwd");
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    .unwrap();
    LastlogConfig {
        path: dir.join("lastlog"),
        passwd,
        poll_interval: Duration::from_millis(10),
        read_existing,
    }
}

/// Makes the next `step` see the file as changed even within one clock tick.
fn touch_later(path: &Path, seconds: i64) {
    let when =
        std::time::SystemTime::UNIX_EPOCH + Duration::from_secs((1_800_000_000 + seconds) as u64);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn records_decode_and_hostile_fields_are_malformed() {
    assert_eq!(decode_record(5, &vec![0u8; RECORD_SIZE]), Ok(None));
    let decoded = decode_record(1000, &record(1_700_000_000, b"pts/3", b"192.0.2.9")).unwrap();
    assert_eq!(
        decoded,
        Some(LastlogRecord {
            uid: 1000,
            time_secs: 1_700_000_000,
            line: "pts/3".into(),
            host: "192.0.2.9".into(),
        })
    );
    // A terminal name filling its field (no NUL) is whole.
    let full = decode_record(1, &record(1_700_000_000, &[b'a'; LINE_BYTES], b"")).unwrap();
    assert_eq!(full.unwrap().line.len(), LINE_BYTES);
    assert_eq!(
        decode_record(2, &record(-5, b"pts/0", b"")),
        Err(MalformedRecord::BadTime { uid: 2, time: -5 })
    );
    assert_eq!(
        decode_record(3, &record(0, b"pts/0", b"x")),
        Err(MalformedRecord::BadTime { uid: 3, time: 0 })
    );
    assert_eq!(
        decode_record(4, &record(1_700_000_000, b"pts/0", b"\xff\xfe")),
        Err(MalformedRecord::BadText {
            uid: 4,
            field: "ll_host"
        })
    );
    assert_eq!(
        decode_record(4, &record(1_700_000_000, b"pts\x1b[2J", b"")),
        Err(MalformedRecord::BadText {
            uid: 4,
            field: "ll_line"
        })
    );
}

#[test]
fn passwd_names_uids_and_skips_malformed_lines() {
    let names = parse_passwd(
        b"root:x:0:0:root:/root:/bin/bash\n# comment:x:1:\nbad line\nnouid:x:abc:0::/:/bin/sh\n\xff:x:7:7::/:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\ntoor:x:0:0::/root:/bin/sh\n",
    );
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[&0], "root", "the first name of a UID wins");
    assert_eq!(names[&1000], "alice");
    let dir = tempfile::tempdir().unwrap();
    let mut users = UserNames::new(dir.path().join("missing"));
    users.refresh();
    assert_eq!(
        users.name(1000),
        "1000",
        "unknown UIDs are reported by number"
    );
}

#[test]
fn real_debian12_lastlog_is_read_with_its_passwd() {
    let file = File::open(FIXTURE).unwrap();
    let mut users = UserNames::new(PathBuf::from(FIXTURE_PASSWD));
    users.refresh();
    let host = Host::default();
    let mut records = Vec::new();
    let stats = scan(&file, MAX_SCAN_BYTES, |uid, bytes| {
        records.push(decode_record(uid, bytes).unwrap().unwrap());
    })
    .unwrap();
    assert_eq!(stats.partial_tail, 0);
    assert!(!stats.limited);
    let events: Vec<Event> = records
        .iter()
        .map(|r| record_event(r, &users, false, &host))
        .collect();
    let rows = summary(&events);
    // See testdata/README.md for how each record was written.
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].2.as_str()),
        ("root", "10.233.9.2")
    );
    assert!(
        rows[0].1.starts_with("pts/"),
        "sshd records the pty: {rows:?}"
    );
    assert_eq!(login(&events[0]).service, "sshd");
    assert_eq!(
        (rows[1].0.as_str(), rows[1].2.as_str()),
        ("daemon", "192.0.2.33")
    );
    assert!(
        rows[1].1.starts_with("pts/"),
        "pam_lastlog records the tty: {rows:?}"
    );
    // shadow 4.13's `lastlog -S` records line "lastlog" and host "localhost".
    assert_eq!(
        (rows[2].0.as_str(), rows[2].1.as_str(), rows[2].2.as_str()),
        ("bin", "lastlog", "localhost")
    );
    assert_eq!(login(&events[2]).service, "");
    for row in &rows {
        assert!(
            row.3 > 1_763_000_000,
            "recorded in November 2025 or later: {rows:?}"
        );
    }
    assert!(
        events[0]
            .raw
            .starts_with("lastlog login uid=0 user=root line=pts/")
    );
    assert!(events[0].raw.contains("host=10.233.9.2 time=20"));
}

#[test]
fn first_scan_is_an_inventory_then_only_changes_are_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    let counters = Counters::default();
    let host = Host::default();
    let mut watcher = LastlogWatcher::new(config.clone(), None);
    assert!(
        watcher.step(&host, &counters).unwrap().is_none(),
        "a missing file is waited for"
    );
    put(&config.path, 0, &record(1_700_000_000, b"tty1", b""));
    put(
        &config.path,
        1000,
        &record(1_700_000_100, b"pts/0", b"192.0.2.7"),
    );
    put(
        &config.path,
        4242,
        &record(1_600_000_000, b"pts/9", b"198.51.100.1"),
    );
    let capture = watcher.step(&host, &counters).unwrap().unwrap();
    assert_eq!(
        summary(&capture.events),
        vec![
            (
                "4242".into(),
                "pts/9".into(),
                "198.51.100.1".into(),
                1_600_000_000
            ),
            ("root".into(), "tty1".into(), "".into(), 1_700_000_000),
            (
                "alice".into(),
                "pts/0".into(),
                "192.0.2.7".into(),
                1_700_000_100
            ),
        ],
        "every account that ever logged in, oldest first"
    );
    assert!(
        capture
            .events
            .iter()
            .all(|e| e.raw.starts_with("lastlog inventory uid="))
    );
    assert_eq!(capture.events[1].source, SOURCE);
    assert_eq!(login(&capture.events[1]).service, "login");
    let checkpoint = capture.checkpoint.unwrap();
    assert_eq!(checkpoint.source, checkpoint_key(&config.path));
    assert!(
        watcher.step(&host, &counters).unwrap().is_none(),
        "unchanged file"
    );

    // alice logs in again: one event.
    put(
        &config.path,
        1000,
        &record(1_700_000_500, b"pts/1", b"203.0.113.5"),
    );
    touch_later(&config.path, 1);
    let capture = watcher.step(&host, &counters).unwrap().unwrap();
    assert_eq!(
        summary(&capture.events),
        vec![(
            "alice".into(),
            "pts/1".into(),
            "203.0.113.5".into(),
            1_700_000_500
        )]
    );
    assert!(
        capture.events[0]
            .raw
            .starts_with("lastlog login uid=1000 user=alice ")
    );
    assert_eq!(login(&capture.events[0]).action, LoginAction::Login as i32);
    let saved: SeenRecords = serde_json::from_str(&capture.checkpoint.unwrap().position).unwrap();
    assert_eq!(saved.seen.len(), 3);

    // Stopped; meanwhile root logs in and uid 4242's record is cleared.
    put(
        &config.path,
        0,
        &record(1_700_000_900, b"pts/2", b"192.0.2.8"),
    );
    put(&config.path, 4242, &vec![0u8; RECORD_SIZE]);
    let mut restarted = LastlogWatcher::new(config.clone(), Some(saved.clone()));
    let capture = restarted.step(&host, &counters).unwrap().unwrap();
    assert_eq!(
        summary(&capture.events),
        vec![(
            "root".into(),
            "pts/2".into(),
            "192.0.2.8".into(),
            1_700_000_900
        )],
        "a restart reports exactly what changed while stopped"
    );
    assert_eq!(counters.get(counter::LASTLOG_CLEARED), 1);
    // A restart from the same checkpoint with nothing changed repeats nothing.
    let after: SeenRecords = serde_json::from_str(&capture.checkpoint.unwrap().position).unwrap();
    let mut again = LastlogWatcher::new(config, Some(after));
    assert!(again.step(&host, &counters).unwrap().is_none());
    assert_eq!(counters.get(counter::PARSED), 5);
    assert_eq!(counters.get(counter::MALFORMED), 0);
}

#[test]
fn without_read_existing_the_first_scan_only_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), false);
    put(
        &config.path,
        1000,
        &record(1_700_000_100, b"pts/0", b"192.0.2.7"),
    );
    let counters = Counters::default();
    let host = Host::default();
    let mut watcher = LastlogWatcher::new(config.clone(), None);
    let capture = watcher.step(&host, &counters).unwrap().unwrap();
    assert!(capture.events.is_empty());
    assert!(capture.checkpoint.is_some());
    put(
        &config.path,
        0,
        &record(1_700_000_200, b"pts/4", b"192.0.2.1"),
    );
    touch_later(&config.path, 2);
    let capture = watcher.step(&host, &counters).unwrap().unwrap();
    assert_eq!(summary(&capture.events)[0].0, "root");
}

#[test]
fn truncated_file_reads_whole_records_and_counts_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    let mut bytes = vec![0u8; RECORD_SIZE];
    bytes.extend(record(1_700_000_100, b"pts/0", b"192.0.2.7"));
    bytes.extend_from_slice(&record(1_700_000_200, b"pts/1", b"192.0.2.8")[..100]);
    std::fs::write(&config.path, &bytes).unwrap();
    let counters = Counters::default();
    let capture = LastlogWatcher::new(config, None)
        .step(&Host::default(), &counters)
        .unwrap()
        .unwrap();
    assert_eq!(summary(&capture.events).len(), 1);
    assert_eq!(
        login(&capture.events[0]).user,
        "1",
        "uid 1 is not in this passwd"
    );
    assert_eq!(counters.get(counter::MALFORMED), 1);
}

#[test]
fn huge_sparse_file_reads_only_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    // A UID near the top of the 32-bit range: a ~1.2 TB file that is almost all hole.
    let uid = 4_000_000_000u64;
    put(
        &config.path,
        1000,
        &record(1_700_000_100, b"pts/0", b"192.0.2.7"),
    );
    put(
        &config.path,
        uid,
        &record(1_700_000_300, b"pts/5", b"198.51.100.200"),
    );
    let len = std::fs::metadata(&config.path).unwrap().len();
    assert!(len > 1_000_000_000_000, "{len}");
    let file = File::open(&config.path).unwrap();
    let mut uids = Vec::new();
    let stats = scan(&file, MAX_SCAN_BYTES, |uid, _| uids.push(uid)).unwrap();
    assert_eq!(uids, vec![1000, uid as u32]);
    assert!(
        stats.bytes_read < 1024 * 1024,
        "only the data extents are read: {stats:?}"
    );
    let counters = Counters::default();
    let capture = LastlogWatcher::new(config, None)
        .step(&Host::default(), &counters)
        .unwrap()
        .unwrap();
    assert_eq!(capture.events.len(), 2);
    assert_eq!(counters.get(counter::LASTLOG_LIMITED), 0);
}

#[test]
fn scan_stops_at_its_byte_limit_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lastlog");
    for uid in 0..3000u64 {
        put(
            &path,
            uid,
            &record(1_700_000_000 + uid as i64, b"pts/0", b"192.0.2.7"),
        );
    }
    let file = File::open(&path).unwrap();
    let mut seen = 0;
    let stats = scan(&file, 100 * RECORD_SIZE as u64, |_, _| seen += 1).unwrap();
    assert!(stats.limited);
    assert!((100..3000).contains(&seen), "{seen}");
}

#[test]
fn garbage_never_panics_and_every_record_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), true);
    // Deterministic pseudo-random bytes (xorshift), plus a few valid records.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes: Vec<u8> = (0..RECORD_SIZE * 200)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    for uid in [3usize, 50, 199] {
        bytes[uid * RECORD_SIZE..(uid + 1) * RECORD_SIZE].copy_from_slice(&record(
            1_700_000_000,
            b"pts/0",
            b"192.0.2.7",
        ));
    }
    std::fs::File::create(&config.path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let counters = Counters::default();
    let mut watcher = LastlogWatcher::new(config, None);
    let capture = watcher.step(&Host::default(), &counters).unwrap().unwrap();
    let parsed = counters.get(counter::PARSED);
    let malformed = counters.get(counter::MALFORMED);
    assert_eq!(parsed, capture.events.len() as u64);
    assert!(parsed >= 3, "the valid records are read: {parsed}");
    assert_eq!(parsed + malformed, 200, "each record parsed or malformed");
    for event in &capture.events {
        assert!(!event.raw.chars().any(char::is_control), "{:?}", event.raw);
    }
    // The same garbage is not counted again on the next (unchanged) scan.
    assert!(watcher.step(&Host::default(), &counters).unwrap().is_none());
    assert_eq!(counters.get(counter::MALFORMED), malformed);
}
