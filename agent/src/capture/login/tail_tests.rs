//! Tests of the file tail: appends, partial lines, checkpoints, both rotations
//! while a writer keeps writing, oversize lines, and the async task end to end.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;

use shaobing_wire::v1::{Host, event::Body};
use tokio::sync::mpsc;

use super::*;
use crate::counters::Counters;

fn config(path: &Path) -> TailConfig {
    TailConfig {
        path: path.to_path_buf(),
        poll_interval: Duration::from_millis(10),
        read_existing: true,
        max_line_bytes: 4096,
        utc_offset_seconds: 0,
    }
}

fn line(n: u32) -> String {
    format!(
        "Jan  5 09:00:00 h sshd[{n}]: Failed password for user{n} from 10.0.0.1 port {n} ssh2\n"
    )
}

fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The `user{n}` numbers of the events, in order.
fn users(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .map(|e| match &e.body {
            Some(Body::Login(l)) => l.user.trim_start_matches("user").parse().unwrap(),
            other => panic!("not a login event: {other:?}"),
        })
        .collect()
}

struct Harness {
    host: Host,
    counters: Counters,
}

impl Harness {
    fn new() -> Self {
        Harness {
            host: Host {
                hostname: "test".into(),
                ..Host::default()
            },
            counters: Counters::default(),
        }
    }

    fn handler(&self) -> LineHandler<'_> {
        LineHandler {
            host: &self.host,
            source: SOURCE,
            counters: &self.counters,
        }
    }

    /// Steps until idle twice in a row (lets a rotation's grace poll pass), collecting events.
    fn drain(&self, tail: &mut FileTail) -> (Vec<Event>, Option<Checkpoint>) {
        let mut events = Vec::new();
        let mut checkpoint = None;
        let mut idle = 0;
        for _ in 0..1000 {
            match tail.step(&self.handler()) {
                Step::Data(capture) => {
                    idle = 0;
                    events.extend(capture.events);
                    checkpoint = capture.checkpoint.or(checkpoint);
                }
                Step::More => idle = 0,
                Step::Idle => {
                    idle += 1;
                    if idle == 2 {
                        break;
                    }
                }
            }
        }
        (events, checkpoint)
    }
}

#[test]
fn follows_appends_and_holds_back_a_partial_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let partial = line(3);
    append(&path, &partial[..20]);
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    let (events, checkpoint) = h.drain(&mut tail);
    assert_eq!(users(&events), vec![1, 2]);
    let checkpoint = checkpoint.unwrap();
    assert_eq!(checkpoint.source, format!("auth_log:{}", path.display()));
    let position: FilePosition = serde_json::from_str(&checkpoint.position).unwrap();
    assert_eq!(position.offset, (line(1).len() + line(2).len()) as u64);
    append(&path, &partial[20..]);
    let (events, _) = h.drain(&mut tail);
    assert_eq!(users(&events), vec![3]);
    assert_eq!(
        tail.position().unwrap().offset,
        std::fs::metadata(&path).unwrap().len()
    );
    assert_eq!(h.counters.get(counter::PARSED), 3);
}

#[test]
fn resumes_from_a_checkpoint_without_rereading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut first = FileTail::new(config(&path), None);
    let (_, checkpoint) = h.drain(&mut first);
    let saved: FilePosition = serde_json::from_str(&checkpoint.unwrap().position).unwrap();
    drop(first);
    append(&path, &line(3));
    let mut second = FileTail::new(config(&path), Some(saved));
    let (events, _) = h.drain(&mut second);
    assert_eq!(users(&events), vec![3]);
}

#[test]
fn a_checkpoint_past_the_end_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &line(1));
    let inode = std::fs::metadata(&path).unwrap().ino();
    let h = Harness::new();
    let mut tail = FileTail::new(
        config(&path),
        Some(FilePosition {
            inode,
            offset: 1 << 20,
            ..FilePosition::default()
        }),
    );
    let (events, _) = h.drain(&mut tail);
    assert_eq!(users(&events), vec![1]);
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
}

#[test]
fn rename_and_create_rotation_while_the_writer_keeps_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let rotated = dir.path().join("auth.log.1");
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writer.write_all((line(1) + &line(2)).as_bytes()).unwrap();
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    let (mut events, _) = h.drain(&mut tail);
    std::fs::rename(&path, &rotated).unwrap();
    // The writer has not reopened yet: these land in the rotated file.
    writer.write_all(line(3).as_bytes()).unwrap();
    append(&path, &line(4));
    // A partial line in the old file at rotation time is still delivered.
    writer.write_all(line(5).trim_end().as_bytes()).unwrap();
    drop(writer);
    events.extend(h.drain(&mut tail).0);
    append(&path, &line(6));
    events.extend(h.drain(&mut tail).0);
    let mut seen = users(&events);
    assert_eq!(&seen[..3], &[1, 2, 3]);
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(h.counters.get(counter::ROTATIONS), 1);
    let position = tail.position().unwrap();
    assert_eq!(position.inode, std::fs::metadata(&path).unwrap().ino());
    assert_eq!(position.offset, (line(4).len() + line(6).len()) as u64);
}

#[test]
fn copytruncate_rotation_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2) + &line(3)));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    assert_eq!(users(&h.drain(&mut tail).0), vec![1, 2, 3]);
    std::fs::copy(&path, dir.path().join("auth.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &line(4));
    assert_eq!(users(&h.drain(&mut tail).0), vec![4]);
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
}

/// logrotate's copytruncate: copy to `<path>.1`, then truncate in place.
fn copytruncate(path: &Path) {
    let mut copy = path.to_path_buf().into_os_string();
    copy.push(".1");
    std::fs::copy(path, copy).unwrap();
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn copytruncate_before_the_end_was_read_finishes_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    assert_eq!(users(&h.drain(&mut tail).0), vec![1, 2]);
    // Written, then rotated away before the next poll: only the copy holds them
    // (with a partial line at its end).
    append(&path, &(line(3) + &line(4) + &line(5)[..30]));
    copytruncate(&path);
    append(&path, &line(6));
    assert_eq!(users(&h.drain(&mut tail).0), vec![3, 4, 6]);
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
    assert_eq!(h.counters.get(counter::ROTATIONS), 0);
    let position = tail.position().unwrap();
    assert_eq!(position.inode, std::fs::metadata(&path).unwrap().ino());
    assert_eq!(position.offset, line(6).len() as u64);
}

#[test]
fn a_file_truncated_and_regrown_past_the_position_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    assert_eq!(users(&h.drain(&mut tail).0), vec![1, 2]);
    append(&path, &line(3));
    copytruncate(&path);
    // More than was read, before the next poll: the size alone shows nothing.
    let more: String = (10..40).map(line).collect();
    append(&path, &more);
    assert_eq!(
        users(&h.drain(&mut tail).0),
        std::iter::once(3).chain(10..40).collect::<Vec<_>>()
    );
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
}

#[test]
fn after_a_truncation_an_unrelated_rotated_file_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    assert_eq!(users(&h.drain(&mut tail).0), vec![1, 2]);
    // `.1` is an older file (different start), longer than our position.
    let older: String = (100..110).map(line).collect();
    std::fs::write(dir.path().join("auth.log.1"), older).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &line(3));
    assert_eq!(users(&h.drain(&mut tail).0), vec![3]);
}

#[test]
fn copytruncate_while_stopped_finishes_the_copy_then_the_live_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut first = FileTail::new(config(&path), None);
    h.drain(&mut first);
    let saved = first.position().unwrap();
    assert_eq!(saved.head_len, (line(1).len() + line(2).len()) as u64);
    drop(first);
    append(&path, &line(3));
    copytruncate(&path);
    append(&path, &line(4));
    let mut second = FileTail::new(config(&path), Some(saved));
    assert_eq!(users(&h.drain(&mut second).0), vec![3, 4]);
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
    assert_eq!(h.counters.get(counter::ROTATIONS), 0);
}

#[test]
fn truncated_and_regrown_while_stopped_restarts_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut first = FileTail::new(config(&path), None);
    h.drain(&mut first);
    let saved = first.position().unwrap();
    drop(first);
    // Same inode, longer than the checkpoint, but other lines: not resumed mid-file.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &(10..30).map(line).collect::<String>());
    let mut second = FileTail::new(config(&path), Some(saved));
    assert_eq!(users(&h.drain(&mut second).0), (10..30).collect::<Vec<_>>());
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
}

#[test]
fn checkpoints_carry_the_head_fingerprint_and_old_ones_still_load() {
    let position = FilePosition {
        inode: 7,
        offset: 99,
        head_len: 3,
        head_hash: head_hash(b"abc"),
    };
    let text = position.encode();
    assert_eq!(
        serde_json::from_str::<FilePosition>(&text).unwrap(),
        position
    );
    let old: FilePosition = serde_json::from_str(r#"{"inode":7,"offset":99}"#).unwrap();
    assert_eq!((old.inode, old.offset, old.head_len), (7, 99, 0));
    assert_ne!(head_hash(b"abc"), head_hash(b"abd"));
}

#[test]
fn finishes_a_file_rotated_while_stopped_then_reads_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &(line(1) + &line(2)));
    let h = Harness::new();
    let mut first = FileTail::new(config(&path), None);
    h.drain(&mut first);
    let saved = first.position().unwrap();
    drop(first);
    append(&path, &line(3));
    std::fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
    append(&path, &line(4));
    let mut second = FileTail::new(config(&path), Some(saved));
    assert_eq!(users(&h.drain(&mut second).0), vec![3, 4]);
}

#[test]
fn waits_for_a_missing_file_and_reads_it_whole_even_when_starting_at_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secure");
    let h = Harness::new();
    let mut tail = FileTail::new(
        TailConfig {
            read_existing: false,
            ..config(&path)
        },
        None,
    );
    assert!(matches!(tail.step(&h.handler()), Step::Idle));
    append(&path, &line(7));
    assert_eq!(users(&h.drain(&mut tail).0), vec![7]);
}

#[test]
fn read_existing_false_starts_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &line(1));
    let h = Harness::new();
    let mut tail = FileTail::new(
        TailConfig {
            read_existing: false,
            ..config(&path)
        },
        None,
    );
    assert!(h.drain(&mut tail).0.is_empty());
    append(&path, &line(2));
    assert_eq!(users(&h.drain(&mut tail).0), vec![2]);
}

#[test]
fn oversize_lines_are_skipped_and_counted_without_buffering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let mut huge = vec![b'x'; 10 * 1024 * 1024];
    huge.push(b'\n');
    append(&path, &line(1));
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&huge)
        .unwrap();
    append(&path, &line(2));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    let (events, _) = h.drain(&mut tail);
    assert_eq!(users(&events), vec![1, 2]);
    assert_eq!(h.counters.get(counter::OVERSIZE), 1);
    assert_eq!(h.counters.get(counter::MALFORMED), 1);
    assert!(tail.pending.capacity() <= 2 * 4096 + READ_CHUNK);
}

#[test]
fn hostile_bytes_never_stop_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    let mut junk: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    junk.extend_from_slice(
        b"\nJan 99 99:99:99 h sshd[1]: Failed password for x from 1.2.3.4 port 1 ssh2\n",
    );
    junk.extend_from_slice(
        b"Jan  5 09:00:00 h sshd[1]: Invalid user \xff\xfe\x01 from 10.0.0.1 port 2\n",
    );
    append(&path, "");
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&junk)
        .unwrap();
    append(&path, &line(9));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    let (events, _) = h.drain(&mut tail);
    assert_eq!(events.len(), 2);
    assert_eq!(users(&events[1..]), vec![9]);
    assert!(h.counters.get(counter::MALFORMED) >= 1);
}

#[tokio::test]
async fn the_task_sends_captures_with_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &line(1));
    let inode = std::fs::metadata(&path).unwrap().ino();
    let saved = FilePosition {
        inode,
        offset: line(1).len() as u64,
        ..FilePosition::default()
    }
    .encode();
    let (tx, mut rx) = mpsc::channel(16);
    let ctx = CaptureContext {
        host: Host {
            hostname: "h1".into(),
            ..Host::default()
        },
        tx,
        positions: Arc::new(HashMap::from([(checkpoint_key(&path), saved)])),
        counters: Arc::new(Counters::default()),
    };
    let task = tokio::spawn(run(config(&path), ctx.clone()));
    append(&path, &line(2));
    let capture = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    task.abort();
    assert_eq!(users(&capture.events), vec![2]);
    let event = &capture.events[0];
    assert_eq!(event.host.as_ref().unwrap().hostname, "h1");
    assert_eq!(event.source, "auth_log");
    assert_eq!(event.raw, line(2).trim_end());
    assert_eq!(event.time_unix_nano % 1_000_000_000, 0);
    let checkpoint = capture.checkpoint.unwrap();
    let position: FilePosition = serde_json::from_str(&checkpoint.position).unwrap();
    let both = line(1) + &line(2);
    assert_eq!(
        position,
        FilePosition {
            inode,
            offset: both.len() as u64,
            head_len: both.len() as u64,
            head_hash: head_hash(both.as_bytes()),
        }
    );
}

#[test]
fn a_file_copytruncated_before_its_first_read_is_read_from_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    append(&path, &line(1));
    let h = Harness::new();
    let mut tail = FileTail::new(config(&path), None);
    assert_eq!(users(&h.drain(&mut tail).0), vec![1]);
    std::fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
    append(&path, &(line(2) + &line(3)));
    // The first step sees the new file (grace), the second opens it without reading.
    assert!(matches!(tail.step(&h.handler()), Step::Idle));
    match tail.step(&h.handler()) {
        Step::Data(capture) => assert!(capture.events.is_empty()),
        other => panic!("expected the switch to the new file, got {other:?}"),
    }
    copytruncate(&path);
    append(&path, &line(4));
    assert_eq!(users(&h.drain(&mut tail).0), vec![2, 3, 4]);
    assert_eq!(h.counters.get(counter::TRUNCATIONS), 1);
}
