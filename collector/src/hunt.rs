//! `shaobing-collector hunt`: offline hunting for incident responders
//! (Chainsaw-style). Runs the same detection engine as `serve` — correlation
//! included — over events read from files, in event-time order, and prints the
//! alerts.
//!
//! Inputs, each recognised by its first non-blank line:
//! - event JSON lines (a line starting with `{`): what `shaobing-agent replay`
//!   prints, the fuller form of `shaobing_detect::event_form::event_json`
//!   (file, network, process events too), or stored events as
//!   `shaobing-collector events` prints them (to hunt retroactively over the
//!   store); `-` reads them from standard input;
//! - anything else is read as a raw auth log (syslog, RFC 3339 or `sshd -E`
//!   lines) through the agent's own login parsers.
//!
//! Events without an id get `<file>:<line>`; events without an agent id are
//! attributed to their host name.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use shaobing_agent::capture::login::{ReplaySource, replay};
use shaobing_detect::event_form::parse_event_line;
use shaobing_detect::{Alert, Detector, LoadReport};
use shaobing_wire::v1::Event;

use crate::cli::{Lang, write_alert_table};
use crate::rules::{RulesError, read_rule_dirs};
use crate::store::AlertRecord;

/// Why a hunt could not run.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: cannot parse as an auth log: {reason}")]
    AuthLog { path: String, reason: String },
    #[error("writing output: {0}")]
    Write(#[from] std::io::Error),
}

/// What a hunt found.
#[derive(Debug)]
pub struct HuntReport {
    /// Events evaluated.
    pub events: usize,
    /// Rule loading report.
    pub load: LoadReport,
    /// Final state of every alert, ordered by first time.
    pub alerts: Vec<Alert>,
}

/// Reads every input, evaluates the events in time order with the rules of
/// `rule_dirs`, and returns the alerts.
pub fn hunt(rule_dirs: &[PathBuf], inputs: &[PathBuf]) -> Result<HuntReport, HuntError> {
    let mut events = Vec::new();
    for input in inputs {
        events.extend(read_input(input)?);
    }
    // Stable: events of the same instant keep their file order.
    events.sort_by_key(|event| event.time_unix_nano);

    let (mut detector, load) = Detector::new(read_rule_dirs(rule_dirs)?);
    let mut latest: BTreeMap<String, Alert> = BTreeMap::new();
    for event in &events {
        for alert in detector.process(event) {
            latest.insert(alert.alert_id.clone(), alert);
        }
    }
    let mut alerts: Vec<Alert> = latest.into_values().collect();
    alerts.sort_by(|a, b| {
        (a.first_time_unix_nano, &a.rule_id, &a.group_key).cmp(&(
            b.first_time_unix_nano,
            &b.rule_id,
            &b.group_key,
        ))
    });
    Ok(HuntReport {
        events: events.len(),
        load,
        alerts,
    })
}

/// Prints a hunt's alerts: a table (in `lang`) or JSON lines, then a summary.
pub fn write_report(
    out: &mut dyn Write,
    report: &HuntReport,
    json: bool,
    lang: Lang,
) -> std::io::Result<()> {
    if json {
        for alert in &report.alerts {
            serde_json::to_writer(&mut *out, alert)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    let records: Vec<AlertRecord> = report.alerts.iter().map(AlertRecord::from_alert).collect();
    write_alert_table(out, &records, lang)?;
    match lang {
        Lang::Zh => writeln!(
            out,
            "检查了 {} 条事件，{} 条规则（拒绝 {} 条）",
            report.events,
            report.load.loaded,
            report.load.rejected.len()
        ),
        Lang::En => writeln!(
            out,
            "{} events checked against {} rules ({} rejected)",
            report.events,
            report.load.loaded,
            report.load.rejected.len()
        ),
    }
}

fn read_input(path: &Path) -> Result<Vec<Event>, HuntError> {
    let name = path.display().to_string();
    let read_error = |source| HuntError::Read {
        path: name.clone(),
        source,
    };
    let text = if name == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_error)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(read_error)?
    };
    let first = text.lines().map(str::trim).find(|line| !line.is_empty());
    match first {
        None => Ok(Vec::new()),
        Some(line) if line.starts_with('{') => json_lines(&name, &text),
        Some(_) => auth_log(&name, path),
    }
}

fn json_lines(name: &str, text: &str) -> Result<Vec<Event>, HuntError> {
    let file = Path::new(name)
        .file_name()
        .map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned());
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        // The event form first; else a stored event as `shaobing-collector events` prints it.
        let mut event = parse_event_line(line, number)
            .or_else(|error| serde_json::from_str::<Event>(line).map_err(|_| error))
            .map_err(|e| HuntError::Line {
                path: name.to_string(),
                line: number,
                reason: e.to_string(),
            })?;
        if event.event_id == format!("line-{number}") {
            event.event_id = format!("{file}:{number}");
        }
        if let Some(host) = event.host.as_mut()
            && host.agent_id.is_empty()
        {
            host.agent_id = host.hostname.clone();
        }
        events.push(event);
    }
    Ok(events)
}

fn auth_log(name: &str, path: &Path) -> Result<Vec<Event>, HuntError> {
    let mut lines = Vec::new();
    replay(ReplaySource::Auth, &[path.to_path_buf()], &mut lines).map_err(|e| {
        HuntError::AuthLog {
            path: name.to_string(),
            reason: e.to_string(),
        }
    })?;
    let text = String::from_utf8_lossy(&lines);
    json_lines(name, &text)
}

/// Reads the lines of a reader (used by tests to build inputs).
#[cfg(test)]
fn lines_of(reader: impl std::io::BufRead) -> Vec<String> {
    reader.lines().map_while(Result::ok).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILURE: &str = "title: SSH failure\nid: 00000000-0000-4000-8000-0000000000f1\nname: failure\nlogsource: {product: linux, service: auth}\ndetection:\n    sel: {Action: ssh_fail}\n    condition: sel\nlevel: low\n";
    const BRUTE_FORCE: &str = "title: Brute force\nid: 00000000-0000-4000-8000-0000000000b1\nlevel: high\ncorrelation:\n    type: event_count\n    rules: [failure]\n    group-by: [SourceIp]\n    timespan: 60s\n    condition: {gte: 5}\ngenerate: true\n";

    fn rules() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("failure.yml"), FAILURE).expect("write");
        std::fs::write(dir.path().join("brute.yml"), BRUTE_FORCE).expect("write");
        dir
    }

    #[test]
    fn json_lines_out_of_order_across_files_still_correlate() {
        let rules = rules();
        let inputs = tempfile::tempdir().expect("tempdir");
        let line = |second: i64| {
            format!(
                r#"{{"time_unix_nano":{},"hostname":"web","source":"auth_log","raw":"x","login":{{"action":"ssh_fail","user":"root","source_ip":"203.0.113.7","service":"sshd"}}}}"#,
                1_700_000_000_000_000_000i64 + second * 1_000_000_000
            )
        };
        // Two files, each with part of the attack, in reverse order.
        let a = inputs.path().join("a.jsonl");
        let b = inputs.path().join("b.jsonl");
        std::fs::write(&a, [line(40), line(30), line(20)].join("\n")).expect("write");
        std::fs::write(&b, [line(10), line(0)].join("\n")).expect("write");
        let report = hunt(&[rules.path().to_path_buf()], &[a, b]).expect("hunt");
        assert_eq!(report.events, 5);
        let brute: Vec<&Alert> = report
            .alerts
            .iter()
            .filter(|a| a.rule_title == "Brute force")
            .collect();
        assert_eq!(brute.len(), 1, "{:#?}", report.alerts);
        assert_eq!(brute[0].count, 5);
        assert_eq!(brute[0].agent_id, "web", "host name stands for the agent");
        assert!(brute[0].event_ids.iter().any(|id| id == "b.jsonl:2"));

        let mut table = Vec::new();
        write_report(&mut table, &report, false, Lang::En).expect("write");
        let text = String::from_utf8(table).expect("utf8");
        assert!(text.contains("Brute force"), "{text}");
        assert!(text.contains("5 events checked against 2 rules"), "{text}");
        let mut json = Vec::new();
        write_report(&mut json, &report, true, Lang::Zh).expect("write");
        assert_eq!(lines_of(json.as_slice()).len(), report.alerts.len());
    }

    #[test]
    fn stored_events_as_printed_by_the_events_command_are_read() {
        let rules = rules();
        let inputs = tempfile::tempdir().expect("tempdir");
        let path = inputs.path().join("stored.jsonl");
        let lines: Vec<String> = (0..5)
            .map(|n| {
                let mut event = shaobing_detect::event_form::parse_event_yaml(&format!(
                    "at: {n}\nevent_id: s-{n}\nhostname: db\nagent_id: agent-db\nlogin: {{action: ssh_fail, source_ip: 192.0.2.9}}"
                ))
                .expect("event");
                event.raw = "sshd: Failed password".to_string();
                serde_json::to_string(&event).expect("json")
            })
            .collect();
        std::fs::write(&path, lines.join("\n")).expect("write");
        let report = hunt(&[rules.path().to_path_buf()], &[path]).expect("hunt");
        let brute = report
            .alerts
            .iter()
            .find(|a| a.rule_title == "Brute force")
            .expect("brute force alert");
        assert_eq!(brute.agent_id, "agent-db");
        assert!(brute.event_ids.contains(&"s-4".to_string()));
    }

    #[test]
    fn raw_auth_log_goes_through_the_agent_parsers() {
        let rules = rules();
        let inputs = tempfile::tempdir().expect("tempdir");
        let log = inputs.path().join("auth.log");
        let text: String = (0..6)
            .map(|n| {
                format!(
                    "2024-03-01T10:00:{n:02}+00:00 web sshd[1{n}]: Failed password for root from 198.51.100.4 port 4{n}000 ssh2\n"
                )
            })
            .collect();
        std::fs::write(&log, text).expect("write");
        let report = hunt(&[rules.path().to_path_buf()], &[log]).expect("hunt");
        assert_eq!(report.events, 6);
        assert!(
            report
                .alerts
                .iter()
                .any(|a| a.rule_title == "Brute force" && a.group_key == "SourceIp=198.51.100.4"),
            "{:#?}",
            report.alerts
        );
    }

    #[test]
    fn a_bad_line_names_file_and_line() {
        let rules = rules();
        let inputs = tempfile::tempdir().expect("tempdir");
        let path = inputs.path().join("bad.jsonl");
        std::fs::write(
            &path,
            "{\"raw\": \"ok\"}\n{\"login\": {\"action\": \"nope\"}}\n",
        )
        .expect("write");
        let error = hunt(&[rules.path().to_path_buf()], &[path]).expect_err("bad line");
        let text = error.to_string();
        assert!(text.contains("bad.jsonl:2"), "{text}");
        assert!(text.contains("unknown login action"), "{text}");
    }
}
