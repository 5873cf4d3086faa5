//! Coverage of a real syslog: `Linux_2k.log` from the loghub collection
//! (<https://github.com/logpai/loghub>; Jieming Zhu, Shilin He, Pinjia He, Jinyang
//! Liu, Michael R. Lyu, "Loghub: A Large Collection of System Log Datasets for
//! AI-driven Log Analytics", ISSRE 2023). The file is read from `../shared/data/`
//! and never copied into the repository.
//!
//! Every sshd, su, login, klogind and PAM line must be parsed or explicitly
//! ignored; the per-program coverage is printed (`cargo test -- --nocapture`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use shaobing_wire::v1::LoginAction;

use super::syslog_time::days_from_civil;
use super::*;

fn dataset() -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub/Linux_2k.log");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("loghub dataset {} is needed: {e}", path.display()))
}

/// The program tag of a loghub line (`sshd(pam_unix)`, `su(pam_unix)`, `kernel`, ...).
fn program_of(line: &str) -> String {
    let after_host = line
        .get(16..)
        .and_then(|rest| rest.split_once(' '))
        .map(|(_, r)| r.trim_start());
    let tag = after_host
        .and_then(|rest| rest.split([':', '[']).next())
        .unwrap_or("");
    tag.to_string()
}

fn must_be_understood(program: &str) -> bool {
    program.contains("pam_")
        || ["sshd", "su", "login", "klogind", "-- root"]
            .iter()
            .any(|p| program.starts_with(p))
}

#[test]
fn every_login_line_of_loghub_linux_is_parsed_or_classified() {
    let data = dataset();
    // The file was written in 2005: parse with "now" at the end of that year.
    let ctx = ParseContext::new(days_from_civil(2005, 12, 31) * 86_400 * 1_000_000_000, 0);
    let mut coverage: BTreeMap<String, [u32; 4]> = BTreeMap::new();
    let mut actions: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut lines = 0;
    for raw in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        lines += 1;
        let text = String::from_utf8_lossy(raw);
        let program = program_of(&text);
        let outcome = parse_line(raw, &ctx);
        let slot = match &outcome {
            ParseOutcome::Parsed(parsed) => {
                let action = LoginAction::try_from(parsed.login.action)
                    .map(LoginAction::name)
                    .unwrap_or("?");
                *actions.entry(action).or_default() += 1;
                let year = parsed.time_unix_nano.map(|t| t / 1_000_000_000 / 86_400);
                assert!(
                    year.is_some_and(|days| days >= days_from_civil(2005, 1, 1)),
                    "{text}"
                );
                0
            }
            ParseOutcome::Ignored(_) => 1,
            ParseOutcome::Unrecognised => 2,
            ParseOutcome::Malformed(_) => 3,
        };
        coverage.entry(program.clone()).or_default()[slot] += 1;
        if must_be_understood(&program) && slot >= 2 {
            misses.push(text.into_owned());
        }
    }
    eprintln!("loghub Linux_2k.log: {lines} lines");
    eprintln!(
        "{:<24} {:>7} {:>7} {:>12} {:>9}",
        "program", "parsed", "ignored", "unrecognised", "malformed"
    );
    for (program, [p, i, u, m]) in &coverage {
        eprintln!("{program:<24} {p:>7} {i:>7} {u:>12} {m:>9}");
    }
    eprintln!("actions: {actions:?}");
    assert!(
        misses.is_empty(),
        "login lines not understood:\n{}",
        misses.join("\n")
    );
    assert_eq!(lines, 2000);

    // Independent counts straight from the text.
    let text = String::from_utf8_lossy(&data);
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count() as u32;
    assert_eq!(
        actions["auth_failure"],
        count("authentication failure;")
            + count("Authentication failed from")
            + count("Kerberos authentication failed")
    );
    assert_eq!(actions["session_open"], count("session opened for user"));
    assert_eq!(actions["session_close"], count("session closed for user"));
    assert_eq!(actions["login"], count("ROOT LOGIN ON"));
    assert_eq!(
        coverage.values().map(|c| c[3]).sum::<u32>(),
        0,
        "no line of this file is malformed"
    );
    assert!(coverage["sshd(pam_unix)"][0] > 500);
}
