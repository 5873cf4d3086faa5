//! Tests of the journald source: entry decoding (text and byte-array fields),
//! bounded line reading, journalctl arguments, and the task against a stand-in
//! `journalctl` script.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use shaobing_wire::v1::{Host, LoginAction, event::Body};
use tokio::sync::mpsc;

use super::*;
use crate::counters::Counters;

const ENTRY: &str = r#"{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1767607200123456","SYSLOG_IDENTIFIER":"sshd","_PID":"321","MESSAGE":"Failed password for root from 192.0.2.70 port 4000 ssh2"}"#;

#[test]
fn entries_decode_text_and_byte_fields() {
    let entry = parse_entry(ENTRY.as_bytes()).unwrap();
    assert_eq!(entry.cursor, "s=abc;i=1");
    assert_eq!(entry.time_unix_nano, 1_767_607_200_123_456_000);
    assert_eq!((entry.identifier.as_str(), entry.pid), ("sshd", 321));
    let binary = r#"{"__CURSOR":"c","_COMM":"sshd","MESSAGE":[73,110,118,97,108,105,100,32,117,115,101,114,32,255,32,102,114,111,109,32,49,46,50,46,51,46,52]}"#;
    let entry = parse_entry(binary.as_bytes()).unwrap();
    assert_eq!(entry.identifier, "sshd");
    assert_eq!(entry.message, "Invalid user \u{fffd} from 1.2.3.4");
    assert!(parse_entry(b"not json").is_err());
    assert!(
        parse_entry(b"{\"MESSAGE\":{\"x\":1}}")
            .unwrap()
            .message
            .is_empty()
    );
}

#[test]
fn entry_events_carry_time_pid_and_raw() {
    let counters = Counters::default();
    let host = Host::default();
    let handler = LineHandler {
        host: &host,
        source: SOURCE,
        counters: &counters,
    };
    let event = entry_event(&parse_entry(ENTRY.as_bytes()).unwrap(), &handler, 5).unwrap();
    assert_eq!(event.time_unix_nano, 1_767_607_200_123_456_000);
    assert_eq!(event.source, "journald");
    assert_eq!(
        event.raw,
        "sshd[321]: Failed password for root from 192.0.2.70 port 4000 ssh2"
    );
    match event.body {
        Some(Body::Login(l)) => {
            assert_eq!(l.action, LoginAction::SshFail as i32);
            assert_eq!(l.pid, 321);
        }
        other => panic!("{other:?}"),
    }
    let noise = JournalEntry {
        identifier: "CRON".into(),
        message: "hello".into(),
        ..JournalEntry::default()
    };
    assert!(entry_event(&noise, &handler, 5).is_none());
    assert_eq!(counters.get(counter::UNRECOGNISED), 1);
}

#[test]
fn arguments_resume_after_the_cursor() {
    let args = journalctl_args(Some("s=1"), true);
    assert!(args.contains(&"--after-cursor=s=1".to_string()));
    assert!(args.contains(&"SYSLOG_FACILITY=10".to_string()));
    assert!(journalctl_args(None, true).contains(&"--lines=all".to_string()));
    assert!(journalctl_args(None, false).contains(&"--lines=0".to_string()));
}

#[tokio::test]
async fn bounded_lines_skip_oversize_input() {
    let mut input = Vec::new();
    input.extend_from_slice(b"short\n");
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend_from_slice(b"\nlast");
    let mut reader = BufReader::with_capacity(64, &input[..]);
    let mut line = Vec::new();
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 1000)
            .await
            .unwrap(),
        LineRead::Line
    );
    assert_eq!(line, b"short\n");
    line.clear();
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 1000)
            .await
            .unwrap(),
        LineRead::Oversize
    );
    assert!(line.capacity() <= 2048);
    line.clear();
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 1000)
            .await
            .unwrap(),
        LineRead::Line
    );
    assert_eq!(line, b"last");
    line.clear();
    assert_eq!(
        read_bounded_line(&mut reader, &mut line, 1000)
            .await
            .unwrap(),
        LineRead::End
    );
}

fn context(positions: HashMap<String, String>) -> (CaptureContext, mpsc::Receiver<Capture>) {
    let (tx, rx) = mpsc::channel(16);
    let ctx = CaptureContext {
        host: Host {
            hostname: "j".into(),
            ..Host::default()
        },
        tx,
        positions: Arc::new(positions),
        counters: Arc::new(Counters::default()),
    };
    (ctx, rx)
}

#[tokio::test]
async fn the_task_follows_a_journalctl_and_checkpoints_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let args_file = dir.path().join("args");
    let script = dir.path().join("journalctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\ncat <<'EOF'\n{ENTRY}\nnot json\nEOF\nexec sleep 30\n",
            args_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ctx, mut rx) = context(HashMap::from([(
        SOURCE.to_string(),
        "s=old;i=0".to_string(),
    )]));
    let config = JournaldConfig {
        journalctl: script,
        read_existing: true,
        max_line_bytes: 65_536,
    };
    let task = tokio::spawn(run(config, ctx.clone()));
    let mut events = Vec::new();
    let mut checkpoint = None;
    while events.is_empty() {
        let capture = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        events.extend(capture.events);
        checkpoint = capture.checkpoint.or(checkpoint);
    }
    task.abort();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].host.as_ref().unwrap().hostname, "j");
    let checkpoint = checkpoint.unwrap();
    assert_eq!(
        (checkpoint.source.as_str(), checkpoint.position.as_str()),
        ("journald", "s=abc;i=1")
    );
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert!(args.contains("--after-cursor=s=old;i=0"), "{args}");
}

#[tokio::test]
async fn a_missing_journalctl_ends_the_task() {
    let (ctx, _rx) = context(HashMap::new());
    let config = JournaldConfig {
        journalctl: PathBuf::from("/nonexistent/journalctl"),
        read_existing: true,
        max_line_bytes: 1024,
    };
    tokio::time::timeout(Duration::from_secs(5), run(config, ctx))
        .await
        .unwrap();
}
