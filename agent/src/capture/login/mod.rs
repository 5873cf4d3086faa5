//! Login capture: every way a Linux host records who got in.
//!
//! - [`tail`]: follows auth log files (`/var/log/auth.log`, `/var/log/secure`, or an
//!   `sshd -E` file) across both kinds of rotation, resuming from the spool's checkpoint.
//! - [`journald`]: follows `journalctl -o json` for the auth facilities, resuming from a cursor.
//! - [`utmp`]: follows `wtmp` (logins, logouts, reboots) and `btmp` (failed logins).
//! - [`lastlog`]: watches `lastlog` (the last login of every account): changed
//!   records become events, the first scan is an inventory.
//! - [`parse`]: the pure line parser all of them share (sshd, PAM, su, sudo, login,
//!   account tools).
//! - [`replay`]: the same parsers run offline over old files (`shaobing-agent replay`).
//!
//! Every source counts what it reads in the agent counters: `login.parsed`,
//! `login.ignored`, `login.unrecognised`, `login.malformed` (plus `login.oversize`
//! for lines over `max_line_bytes`, and `login.read_errors`, `login.rotations`,
//! `login.truncations`, and for lastlog `login.lastlog_cleared` and
//! `login.lastlog_limited`).

pub mod config;
pub mod event;
pub mod journald;
pub mod lastlog;
pub mod parse;
pub mod replay;
pub mod tail;
pub mod utmp;

#[cfg(test)]
mod real_logs_tests;

use std::path::PathBuf;

use tokio::task::JoinHandle;

use crate::capture::CaptureContext;

pub use self::config::{JournaldMode, LoginConfig};
pub use self::parse::{
    MalformedReason, MessageOutcome, ParseContext, ParseOutcome, ParsedLine, parse_line,
    parse_message,
};
pub use self::replay::{ReplaySource, ReplaySummary, replay};

/// Counter names (stable: they appear in heartbeats).
pub mod counter {
    pub const PARSED: &str = "login.parsed";
    pub const IGNORED: &str = "login.ignored";
    pub const UNRECOGNISED: &str = "login.unrecognised";
    pub const MALFORMED: &str = "login.malformed";
    pub const OVERSIZE: &str = "login.oversize";
    pub const READ_ERRORS: &str = "login.read_errors";
    pub const ROTATIONS: &str = "login.rotations";
    pub const TRUNCATIONS: &str = "login.truncations";
    /// A lastlog record that was emptied (`lastlog -C`, a replaced file).
    pub const LASTLOG_CLEARED: &str = "login.lastlog_cleared";
    /// A lastlog scan cut at its size or account limit.
    pub const LASTLOG_LIMITED: &str = "login.lastlog_limited";
}

/// Errors of the login sources.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing replay output: {0}")]
    Write(#[source] std::io::Error),
    #[error("encoding an event as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown replay source {0:?} (expected auth, journald, wtmp, btmp or lastlog)")]
    UnknownSource(String),
    #[error("invalid utc_offset {0:?} (expected e.g. \"+08:00\")")]
    BadUtcOffset(String),
}

/// Starts every configured login source as a tokio task feeding `ctx.tx`.
/// A source that cannot start (no journalctl, say) logs why and ends its task.
pub fn spawn(config: &LoginConfig, ctx: &CaptureContext) -> Vec<JoinHandle<()>> {
    let utc_offset_seconds = config.resolved_utc_offset();
    let mut tasks = Vec::new();
    for path in &config.auth_logs {
        let tail_config = tail::TailConfig {
            path: path.clone(),
            poll_interval: config.poll_interval(),
            read_existing: config.read_existing,
            max_line_bytes: config.max_line_bytes.max(1024),
            utc_offset_seconds,
        };
        tasks.push(tokio::spawn(tail::run(tail_config, ctx.clone())));
    }
    if config.journald_enabled() {
        let journal_config = journald::JournaldConfig {
            journalctl: config.journalctl.clone(),
            read_existing: config.read_existing,
            max_line_bytes: config.max_line_bytes.max(1024),
        };
        tasks.push(tokio::spawn(journald::run(journal_config, ctx.clone())));
    }
    for (path, kind) in [
        (&config.wtmp, utmp::UtmpKind::Wtmp),
        (&config.btmp, utmp::UtmpKind::Btmp),
    ] {
        if let Some(path) = path {
            let utmp_config = utmp::UtmpConfig {
                path: path.clone(),
                kind,
                poll_interval: config.poll_interval(),
                read_existing: config.read_existing,
            };
            tasks.push(tokio::spawn(utmp::run(utmp_config, ctx.clone())));
        }
    }
    if let Some(path) = &config.lastlog {
        let lastlog_config = lastlog::LastlogConfig {
            path: path.clone(),
            passwd: config.passwd.clone(),
            poll_interval: config.poll_interval(),
            read_existing: config.read_existing,
        };
        tasks.push(tokio::spawn(lastlog::run(lastlog_config, ctx.clone())));
    }
    tasks
}
