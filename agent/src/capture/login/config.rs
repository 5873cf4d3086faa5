//! The `[login]` section of the agent's TOML configuration.
//!
//! ```toml
//! [login]
//! auth_logs = ["/var/log/auth.log", "/var/log/secure"]  # missing files are waited for
//! journald = "auto"          # "auto" | "on" | "off" (or true / false)
//! journalctl = "journalctl"  # program run for journald
//! wtmp = "/var/log/wtmp"     # "" disables
//! btmp = "/var/log/btmp"     # "" disables
//! lastlog = "/var/log/lastlog"  # "" disables; see capture::login::lastlog
//! passwd = "/etc/passwd"     # names for lastlog's UIDs
//! poll_interval_ms = 250
//! read_existing = true       # first start: read what the files already hold
//! utc_offset = "+08:00"      # zone of BSD syslog stamps; default: the host's at start
//! max_line_bytes = 65536     # longer lines are skipped and counted (login.oversize)
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::LoginError;

/// Configuration of the login sources. Every field has a default; `[login]` may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Auth log files to follow. Default `["/var/log/auth.log", "/var/log/secure"]`
    /// (Debian and Red Hat names). A missing file is waited for and read from its start
    /// when it appears.
    pub auth_logs: Vec<PathBuf>,
    /// Follow journald's auth facilities. Default `auto`: on when `journalctl` exists
    /// and none of `auth_logs` does (so an rsyslog host is not read twice).
    pub journald: JournaldMode,
    /// The `journalctl` program. Default `journalctl` (looked up in `PATH`).
    pub journalctl: PathBuf,
    /// Login records (logins, logouts, reboots). Default `/var/log/wtmp`; `""` disables.
    #[serde(
        deserialize_with = "optional_path",
        serialize_with = "optional_path_out"
    )]
    pub wtmp: Option<PathBuf>,
    /// Failed login records. Default `/var/log/btmp`; `""` disables.
    #[serde(
        deserialize_with = "optional_path",
        serialize_with = "optional_path_out"
    )]
    pub btmp: Option<PathBuf>,
    /// Last login of every account (glibc lastlog; a missing file is waited for).
    /// Default `/var/log/lastlog`; `""` disables.
    #[serde(
        deserialize_with = "optional_path",
        serialize_with = "optional_path_out"
    )]
    pub lastlog: Option<PathBuf>,
    /// The `passwd` file naming lastlog's UIDs (a UID it does not name is
    /// reported by number). Default `/etc/passwd`.
    pub passwd: PathBuf,
    /// How often files are checked for new data, in milliseconds. Default 250.
    pub poll_interval_ms: u64,
    /// On the very first start (no checkpoint yet), read what files and the journal
    /// already hold. Default `true`: nothing already logged is missed. Later starts
    /// always resume from the checkpoint.
    pub read_existing: bool,
    /// UTC offset of BSD syslog stamps (`Nov 23 19:21:41` carries no zone), e.g.
    /// `"+08:00"`. Default: the host's local offset when the agent starts.
    pub utc_offset: Option<String>,
    /// Longest line accepted; longer ones are skipped and counted. Default 64 KiB.
    pub max_line_bytes: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            auth_logs: vec![
                PathBuf::from("/var/log/auth.log"),
                PathBuf::from("/var/log/secure"),
            ],
            journald: JournaldMode::Auto,
            journalctl: PathBuf::from("journalctl"),
            wtmp: Some(PathBuf::from("/var/log/wtmp")),
            btmp: Some(PathBuf::from("/var/log/btmp")),
            lastlog: Some(PathBuf::from("/var/log/lastlog")),
            passwd: PathBuf::from("/etc/passwd"),
            poll_interval_ms: 250,
            read_existing: true,
            utc_offset: None,
            max_line_bytes: 64 * 1024,
        }
    }
}

impl LoginConfig {
    /// The poll interval, at least 10 ms.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }

    /// Whether the journald source runs (resolves `auto`).
    pub fn journald_enabled(&self) -> bool {
        match self.journald {
            JournaldMode::On => true,
            JournaldMode::Off => false,
            JournaldMode::Auto => {
                program_exists(&self.journalctl) && !self.auth_logs.iter().any(|path| path.exists())
            }
        }
    }

    /// The UTC offset in seconds: `utc_offset` when valid, else the host's local offset,
    /// else UTC (each fallback is logged).
    pub fn resolved_utc_offset(&self) -> i32 {
        if let Some(text) = &self.utc_offset {
            match parse_utc_offset(text) {
                Ok(seconds) => return seconds,
                Err(error) => tracing::warn!(%error, "ignoring [login] utc_offset"),
            }
        }
        match time::UtcOffset::current_local_offset() {
            Ok(offset) => offset.whole_seconds(),
            Err(_) => {
                tracing::warn!(
                    "cannot tell the local UTC offset: BSD syslog stamps are read as UTC"
                );
                0
            }
        }
    }
}

/// Whether the journald source runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournaldMode {
    #[default]
    Auto,
    On,
    Off,
}

impl<'de> Deserialize<'de> for JournaldMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Word(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Flag(true) => Ok(JournaldMode::On),
            Raw::Flag(false) => Ok(JournaldMode::Off),
            Raw::Word(word) => match word.as_str() {
                "auto" => Ok(JournaldMode::Auto),
                "on" | "true" => Ok(JournaldMode::On),
                "off" | "false" => Ok(JournaldMode::Off),
                other => Err(serde::de::Error::custom(format!(
                    "journald = {other:?}: expected \"auto\", \"on\" or \"off\""
                ))),
            },
        }
    }
}

impl Serialize for JournaldMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            JournaldMode::Auto => "auto",
            JournaldMode::On => "on",
            JournaldMode::Off => "off",
        })
    }
}

fn optional_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.filter(|t| !t.is_empty()).map(PathBuf::from))
}

fn optional_path_out<S: Serializer>(
    path: &Option<PathBuf>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(path) => path.serialize(serializer),
        None => serializer.serialize_str(""),
    }
}

/// `+08:00`, `-05:30`, `+0800`, `Z` or `UTC` → seconds east of UTC.
pub fn parse_utc_offset(text: &str) -> Result<i32, LoginError> {
    let bad = || LoginError::BadUtcOffset(text.to_string());
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("z") || trimmed.eq_ignore_ascii_case("utc") {
        return Ok(0);
    }
    let (sign, digits) = match trimmed.as_bytes().first() {
        Some(b'+') => (1, &trimmed[1..]),
        Some(b'-') => (-1, &trimmed[1..]),
        _ => return Err(bad()),
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i32 = digits[2..].parse().map_err(|_| bad())?;
    if hours > 14 || minutes > 59 {
        return Err(bad());
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

/// Whether `program` is runnable: an existing path, or found in `PATH`.
fn program_exists(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let config: LoginConfig = toml::from_str("").unwrap();
        assert_eq!(config, LoginConfig::default());
        assert_eq!(config.auth_logs[0], PathBuf::from("/var/log/auth.log"));
        assert_eq!(config.poll_interval(), Duration::from_millis(250));
        assert_eq!(config.journald, JournaldMode::Auto);
    }

    #[test]
    fn journald_accepts_words_and_booleans_and_empty_path_disables() {
        let config: LoginConfig =
            toml::from_str("journald = true\nwtmp = \"\"\nlastlog = \"\"").unwrap();
        assert_eq!(config.journald, JournaldMode::On);
        assert_eq!(config.wtmp, None);
        assert_eq!(config.lastlog, None);
        assert_eq!(
            LoginConfig::default().lastlog,
            Some(PathBuf::from("/var/log/lastlog"))
        );
        assert!(config.journald_enabled());
        let config: LoginConfig = toml::from_str("journald = \"off\"").unwrap();
        assert!(!config.journald_enabled());
        assert!(toml::from_str::<LoginConfig>("journald = \"maybe\"").is_err());
        assert!(toml::from_str::<LoginConfig>("no_such_field = 1").is_err());
    }

    #[test]
    fn config_round_trips_through_toml() {
        let config = LoginConfig {
            btmp: None,
            utc_offset: Some("+08:00".into()),
            ..LoginConfig::default()
        };
        let text = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<LoginConfig>(&text).unwrap(), config);
    }

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+08:00").unwrap(), 28_800);
        assert_eq!(parse_utc_offset("-0530").unwrap(), -19_800);
        assert_eq!(parse_utc_offset("UTC").unwrap(), 0);
        assert!(parse_utc_offset("8").is_err());
        assert!(parse_utc_offset("+99:00").is_err());
        let config = LoginConfig {
            utc_offset: Some("+08:00".into()),
            ..LoginConfig::default()
        };
        assert_eq!(config.resolved_utc_offset(), 28_800);
    }

    #[test]
    fn auto_journald_is_off_when_an_auth_log_exists() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        std::fs::write(&log, "").unwrap();
        let config = LoginConfig {
            auth_logs: vec![log],
            journalctl: PathBuf::from("/bin/sh"),
            ..LoginConfig::default()
        };
        assert!(!config.journald_enabled());
        let config = LoginConfig {
            auth_logs: vec![dir.path().join("missing")],
            ..config
        };
        assert!(config.journald_enabled());
    }
}
