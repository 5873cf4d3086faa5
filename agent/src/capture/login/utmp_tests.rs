//! Tests of the wtmp/btmp follower on records built byte by byte in the glibc
//! x86-64 layout (384 bytes), the layout utmp-rs reads natively there.

use super::*;

const USER_PROCESS: i16 = 7;
const DEAD_PROCESS: i16 = 8;
const BOOT_TIME: i16 = 2;
const LOGIN_PROCESS: i16 = 6;

fn put(record: &mut [u8], at: usize, len: usize, text: &[u8]) {
    record[at..at + text.len().min(len)].copy_from_slice(&text[..text.len().min(len)]);
}

/// One record: type, pid, line, user, host, seconds.
fn record(kind: i16, pid: i32, line: &[u8], user: &[u8], host: &[u8], seconds: i32) -> Vec<u8> {
    let mut r = vec![0u8; RECORD_SIZE];
    r[0..2].copy_from_slice(&kind.to_ne_bytes());
    r[4..8].copy_from_slice(&pid.to_ne_bytes());
    put(&mut r, 8, 32, line);
    put(&mut r, 44, 32, user);
    put(&mut r, 76, 256, host);
    r[340..344].copy_from_slice(&seconds.to_ne_bytes());
    r
}

fn actions(events: &[Event]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|e| match &e.body {
            Some(shaobing_wire::v1::event::Body::Login(l)) => (
                LoginAction::try_from(l.action)
                    .map(LoginAction::name)
                    .unwrap_or_default()
                    .to_string(),
                l.user.clone(),
                l.source_ip.clone(),
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn config(path: &Path, kind: UtmpKind) -> UtmpConfig {
    UtmpConfig {
        path: path.to_path_buf(),
        kind,
        poll_interval: Duration::from_millis(10),
        read_existing: true,
    }
}

#[test]
fn wtmp_logins_logouts_and_boots() {
    let counters = Counters::default();
    let host = Host::default();
    let mut bytes = record(BOOT_TIME, 0, b"~", b"reboot", b"6.1.0", 1_700_000_000);
    bytes.extend(record(
        USER_PROCESS,
        42,
        b"pts/0",
        b"alice",
        b"192.0.2.50",
        1_700_000_100,
    ));
    bytes.extend(record(
        LOGIN_PROCESS,
        43,
        b"tty1",
        b"LOGIN",
        b"",
        1_700_000_150,
    ));
    bytes.extend(record(DEAD_PROCESS, 42, b"pts/0", b"", b"", 1_700_000_200));
    bytes.extend(record(99, 0, b"", b"", b"", 0));
    bytes.extend_from_slice(&[0u8; 100]);
    let mut decoder = RecordDecoder::new(UtmpKind::Wtmp);
    let events = decoder.decode(&bytes, &host, &counters);
    assert_eq!(
        actions(&events),
        vec![
            ("reboot".into(), "".into(), "".into()),
            ("login".into(), "alice".into(), "192.0.2.50".into()),
            ("logout".into(), "alice".into(), "".into()),
        ]
    );
    assert_eq!(events[1].time_unix_nano, 1_700_000_100 * 1_000_000_000);
    assert_eq!(events[1].source, "wtmp");
    assert!(events[1].raw.contains("user=alice"));
    assert_eq!(counters.get(counter::MALFORMED), 1);
    assert_eq!(counters.get(counter::IGNORED), 1);
}

#[test]
fn btmp_failed_logins_and_hostile_names() {
    let counters = Counters::default();
    let mut bytes = record(
        LOGIN_PROCESS,
        7,
        b"ssh:notty",
        b"admin",
        b"198.51.100.60",
        1_700_000_000,
    );
    bytes.extend(record(
        LOGIN_PROCESS,
        8,
        b"ssh:notty",
        b"\xff\xfe",
        b"198.51.100.61",
        1_700_000_001,
    ));
    let events = RecordDecoder::new(UtmpKind::Btmp).decode(&bytes, &Host::default(), &counters);
    assert_eq!(
        actions(&events),
        vec![("login".into(), "admin".into(), "198.51.100.60".into())]
    );
    match &events[0].body {
        Some(shaobing_wire::v1::event::Body::Login(l)) => {
            assert_eq!(l.outcome, Outcome::Failure as i32);
            assert_eq!(l.service, "sshd");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(counters.get(counter::MALFORMED), 1);
}

#[test]
fn follower_reads_whole_records_resumes_and_restarts_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("btmp");
    let one = record(
        LOGIN_PROCESS,
        1,
        b"ssh:notty",
        b"u1",
        b"192.0.2.1",
        1_700_000_000,
    );
    let two = record(
        LOGIN_PROCESS,
        2,
        b"ssh:notty",
        b"u2",
        b"192.0.2.2",
        1_700_000_001,
    );
    let mut first_half = one.clone();
    first_half.extend_from_slice(&two[..100]);
    std::fs::write(&path, &first_half).unwrap();
    let counters = Counters::default();
    let host = Host::default();
    let mut follower = UtmpFollower::new(config(&path, UtmpKind::Btmp), None);
    let capture = follower.step(&host, &counters).unwrap().unwrap();
    assert_eq!(actions(&capture.events).len(), 1);
    let position: FilePosition =
        serde_json::from_str(&capture.checkpoint.unwrap().position).unwrap();
    assert_eq!(position.offset, RECORD_SIZE as u64);
    assert!(follower.step(&host, &counters).unwrap().is_none());
    let mut all = one.clone();
    all.extend_from_slice(&two);
    std::fs::write(&path, &all).unwrap();
    let capture = follower.step(&host, &counters).unwrap().unwrap();
    assert_eq!(actions(&capture.events)[0].1, "u2");
    // A new agent resumes after the second record.
    let saved = follower.file.as_ref().map(|(_, p)| *p);
    let mut resumed = UtmpFollower::new(config(&path, UtmpKind::Btmp), saved);
    assert!(resumed.step(&host, &counters).unwrap().is_none());
    // Rotation: a new file at the path is read from its start.
    std::fs::rename(&path, dir.path().join("btmp.1")).unwrap();
    std::fs::write(&path, &one).unwrap();
    let switched = resumed.step(&host, &counters).unwrap().unwrap();
    assert!(switched.events.is_empty());
    let capture = resumed.step(&host, &counters).unwrap().unwrap();
    assert_eq!(actions(&capture.events)[0].1, "u1");
    assert_eq!(counters.get(counter::ROTATIONS), 1);
}
