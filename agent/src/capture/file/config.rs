//! The `[file]` section of the agent configuration: which paths are watched, how
//! files are hashed, and the timings of debounce and rescans.
//!
//! ```toml
//! [file]
//! hash = "sha256"            # or "sm3" (国密)
//! max_hash_bytes = 67108864  # larger files are compared by size/mtime/ctime only
//! debounce_ms = 200          # one event per file per burst of changes
//! rescan_secs = 3600         # safety-net rescan of every watched root (0 = never)
//! [[file.watches]]
//! path = "/var/www"
//! content_sample = true      # ≤ 4 KiB of small text files (head, and tail if longer), for Sigma content rules
//! exclude = ["*.log", "cache/**"]
//! ```
//!
//! Setting `watches` replaces the default list (see [`default_watches`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Name of the baseline database inside the agent's data directory.
pub const DEFAULT_STATE_FILE: &str = "file_baseline.db";

/// Largest content sample ever taken from a file.
pub const MAX_CONTENT_SAMPLE_BYTES: usize = 4096;

/// File integrity monitoring settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Whether the file capture runs at all.
    pub enabled: bool,
    /// What to watch. Replaces the defaults when set.
    pub watches: Vec<WatchSet>,
    /// Digest used for `hash_before` / `hash_after`.
    pub hash: HashAlgo,
    /// Files larger than this are not hashed (compared by size, mtime and ctime).
    pub max_hash_bytes: u64,
    /// Quiet time after the last change of a file before its event is emitted.
    pub debounce_ms: u64,
    /// Interval of the full rescan that catches anything inotify missed (0 = never).
    pub rescan_secs: u64,
    /// Rescan interval of roots that could not be watched (watch limit reached).
    pub degraded_rescan_secs: u64,
    /// Baseline database; default `<data_dir>/file_baseline.db`.
    pub state_path: Option<PathBuf>,
    /// Bytes kept in `content_sample` (at most 4096).
    pub content_sample_bytes: usize,
    /// Only files up to this size get a content sample.
    pub content_sample_max_file_bytes: u64,
    /// Events buffered between the inotify thread and the monitor; beyond it events
    /// are dropped, counted, and the roots rescanned.
    pub queue_capacity: usize,
    /// Most files with a change waiting out their debounce; beyond it the roots are
    /// rescanned instead.
    pub max_pending: usize,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            watches: default_watches(),
            hash: HashAlgo::Sha256,
            max_hash_bytes: 64 << 20,
            debounce_ms: 200,
            rescan_secs: 3600,
            degraded_rescan_secs: 60,
            state_path: None,
            content_sample_bytes: MAX_CONTENT_SAMPLE_BYTES,
            content_sample_max_file_bytes: 1 << 20,
            queue_capacity: 16_384,
            max_pending: 100_000,
        }
    }
}

impl FileConfig {
    /// The baseline database path.
    pub fn resolved_state_path(&self, data_dir: &Path) -> PathBuf {
        self.state_path
            .clone()
            .unwrap_or_else(|| data_dir.join(DEFAULT_STATE_FILE))
    }

    /// Content sample size, clamped to [`MAX_CONTENT_SAMPLE_BYTES`].
    pub fn sample_bytes(&self) -> usize {
        self.content_sample_bytes.min(MAX_CONTENT_SAMPLE_BYTES)
    }
}

/// One watched path (or glob pattern) and how to treat what is under it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchSet {
    /// Absolute path; components may be globs (`/home/*/.ssh`, `/etc/cron*`).
    /// A missing path is watched for when it appears.
    pub path: PathBuf,
    /// For a directory: watch the whole tree (else only its direct entries).
    pub recursive: bool,
    /// Globs on the path relative to the watched root; empty = everything.
    /// `*` also matches `/` (so `*.php` matches at any depth).
    pub include: Vec<String>,
    /// Globs on the relative path; a matching directory is skipped whole.
    pub exclude: Vec<String>,
    /// Hash regular files (else compare size, mtime and ctime only).
    pub hash: bool,
    /// Attach the first (and, for a file longer than the sample, the last) bytes
    /// of new or changed small text files (web roots).
    pub content_sample: bool,
}

impl Default for WatchSet {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            recursive: true,
            include: Vec::new(),
            exclude: Vec::new(),
            hash: true,
            content_sample: false,
        }
    }
}

impl WatchSet {
    fn at(path: &str) -> Self {
        Self {
            path: PathBuf::from(path),
            ..Self::default()
        }
    }
}

/// Digest algorithm for file hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgo {
    /// SHA-256 (FIPS 180-4).
    #[default]
    Sha256,
    /// SM3 (GB/T 32905-2016), the 国密 option.
    Sm3,
}

impl HashAlgo {
    /// Stable name, stored in the baseline so a change of algorithm is noticed.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sm3 => "sm3",
        }
    }
}

/// Web roots of common web servers (Apache/nginx on Debian and RHEL, the BT panel
/// 宝塔 `/www/wwwroot`, Tomcat webapps, SUSE's and Arch's `/srv`, nginx and Apache
/// built from source under `/usr/local`, XAMPP): content-sampled for webshell
/// rules. The web rules in `rules/file/` know the same roots (checked by a test).
pub const DEFAULT_WEB_ROOTS: [&str; 9] = [
    "/var/www",
    "/usr/share/nginx/html",
    "/www/wwwroot",
    "/var/lib/tomcat*/webapps",
    "/srv/www",
    "/srv/http",
    "/usr/local/nginx/html",
    "/usr/local/apache2/htdocs",
    "/opt/lampp/htdocs",
];

/// The watch list used when the configuration sets none: accounts, privilege,
/// SSH, PAM and login policy, scheduled tasks, services, the dynamic loader, boot
/// scripts, web roots.
pub fn default_watches() -> Vec<WatchSet> {
    let mut sets: Vec<WatchSet> = [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/sudoers.d",
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d",
        "/etc/cron*",
        "/var/spool/cron",
        "/etc/systemd/system",
        "/etc/ld.so.preload",
        "/etc/rc.local",
        "/etc/rc.d",
        "/etc/init.d",
        "/etc/pam.d",
        "/etc/security",
        "/etc/login.defs",
    ]
    .into_iter()
    .map(WatchSet::at)
    .collect();
    for ssh_dir in ["/root/.ssh", "/home/*/.ssh"] {
        sets.push(WatchSet {
            // known_hosts changes whenever the user connects somewhere new.
            exclude: vec!["known_hosts*".into()],
            ..WatchSet::at(ssh_dir)
        });
    }
    for web_root in DEFAULT_WEB_ROOTS {
        sets.push(WatchSet {
            content_sample: true,
            ..WatchSet::at(web_root)
        });
    }
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_the_defaults_and_typos_are_refused() {
        let config: FileConfig = toml::from_str("").unwrap();
        assert!(config.enabled);
        assert_eq!(config.hash, HashAlgo::Sha256);
        assert!(
            config
                .watches
                .iter()
                .any(|w| w.path == Path::new("/etc/passwd"))
        );
        assert!(
            config
                .watches
                .iter()
                .any(|w| w.path == Path::new("/var/www") && w.content_sample)
        );
        assert!(toml::from_str::<FileConfig>("debounce = 5").is_err());
        assert!(
            toml::from_str::<FileConfig>("[[watches]]\npath = \"/x\"\nrecurse = true").is_err()
        );
    }

    #[test]
    fn watch_sets_replace_the_defaults_and_sm3_is_accepted() {
        let config: FileConfig = toml::from_str(
            "hash = \"sm3\"\n[[watches]]\npath = \"/srv/web\"\ncontent_sample = true\ninclude = [\"*.php\"]",
        )
        .unwrap();
        assert_eq!(config.hash, HashAlgo::Sm3);
        assert_eq!(config.watches.len(), 1);
        let set = &config.watches[0];
        assert!(set.recursive && set.hash && set.content_sample);
        assert_eq!(set.include, vec!["*.php".to_string()]);
        assert!(toml::from_str::<FileConfig>("hash = \"md5\"").is_err());
    }

    /// The `TargetFilename|startswith` prefixes of a rule file's web-root selection.
    fn rule_web_prefixes(name: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../rules/file/{name}.yml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text
            .lines()
            .skip_while(|l| !l.contains("TargetFilename|startswith:"));
        lines.next().expect("a startswith list");
        lines
            .map_while(|l| l.trim().strip_prefix("- '")?.strip_suffix('\''))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_web_root_the_rules_know_is_watched_by_default() {
        let defaults = default_watches();
        let watched: Vec<&WatchSet> = defaults.iter().filter(|w| w.content_sample).collect();
        for rule in [
            "web_script_created",
            "web_script_modified",
            "web_page_tampering",
        ] {
            let prefixes = rule_web_prefixes(rule);
            assert!(prefixes.len() >= 8, "{rule}: {prefixes:?}");
            for prefix in prefixes {
                let covered = watched.iter().any(|w| {
                    let root = w.path.to_string_lossy();
                    // The watch is the prefix, or inside it (`/usr/share/nginx/html`
                    // for `/usr/share/nginx/`).
                    root.starts_with(prefix.trim_end_matches('/'))
                });
                assert!(covered, "{rule} knows {prefix}, no default watch covers it");
            }
        }
        // `/webapps/` anywhere: Tomcat's, by glob.
        assert!(
            watched
                .iter()
                .any(|w| w.path.to_string_lossy().ends_with("/webapps"))
        );
    }

    #[test]
    fn state_path_defaults_into_the_data_dir_and_sample_is_clamped() {
        let mut config = FileConfig::default();
        assert_eq!(
            config.resolved_state_path(Path::new("/var/lib/shaobing-agent")),
            Path::new("/var/lib/shaobing-agent/file_baseline.db")
        );
        config.content_sample_bytes = 1 << 20;
        assert_eq!(config.sample_bytes(), MAX_CONTENT_SAMPLE_BYTES);
    }
}
