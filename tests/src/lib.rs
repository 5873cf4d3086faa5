//! Helpers for the end-to-end tests: run the real `shaobing-collector` and
//! `shaobing-agent` binaries as processes, feed them real files, and read back
//! what landed in the store (ClickHouse through `clickhouse-client`, the
//! embedded store through the collector's own CLI).

pub mod browser;
pub mod file_host;
pub mod login_host;
pub mod network_host;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The ClickHouse HTTP URL the tests use (`SHAOBING_TEST_CLICKHOUSE_URL`).
pub fn clickhouse_url() -> String {
    std::env::var("SHAOBING_TEST_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// Repository root (parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Path of a workspace binary, built by `cargo build --workspace --bins`.
pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("unexpected test binary location")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not built: run `cargo build --workspace --bins` first (as .ci/test does)",
            path.display()
        );
    }
    Ok(path)
}

/// A TCP port free on every address, for a server started later. It is taken
/// from 10000–19999, below the kernel's ephemeral range (32768+ by default):
/// a port picked from that range can be handed to an outgoing connection (to
/// ClickHouse, say) before the server binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919).wrapping_add(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    );
    for _ in 0..10_000 {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (seed.wrapping_add(step.wrapping_mul(104_729)) % 10_000) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped, with its stderr captured to a file.
pub struct Daemon {
    child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        Ok(Self { child, log })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A collector process with its own data dir, CA and ports.
pub struct Collector {
    pub dir: PathBuf,
    pub data_port: u16,
    pub enroll_port: u16,
    pub clickhouse_database: Option<String>,
    /// Where the collector serves Prometheus metrics (`--metrics-listen`).
    pub metrics_port: u16,
    pub daemon: Daemon,
}

impl Collector {
    /// `ca init` then `serve` on free loopback ports. `clickhouse_database` selects ClickHouse.
    pub fn start(dir: &Path, clickhouse_database: Option<&str>) -> anyhow::Result<Self> {
        Self::init_ca(dir)?;
        Self::serve(dir, clickhouse_database)
    }

    /// `ca init` in `dir` (the fleet CA and the server certificate), without serving.
    pub fn init_ca(dir: &Path) -> anyhow::Result<()> {
        let out = Command::new(bin("shaobing-collector")?)
            .args(["ca", "init", "--data-dir"])
            .arg(dir)
            .output()?;
        if !out.status.success() {
            bail!("ca init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// `serve` only (the CA must exist): used to restart a collector.
    pub fn serve(dir: &Path, clickhouse_database: Option<&str>) -> anyhow::Result<Self> {
        Self::serve_on(
            dir,
            clickhouse_database,
            "127.0.0.1",
            free_port(),
            free_port(),
        )
    }

    /// `serve` with extra command-line arguments (e.g. `--retention-events-days 7`).
    pub fn serve_with_args(
        dir: &Path,
        clickhouse_database: Option<&str>,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::spawn(
            dir,
            clickhouse_database,
            "127.0.0.1",
            (free_port(), free_port()),
            args,
        )
    }

    /// `serve` on `host` with fixed ports (to restart a collector where its agents expect it).
    pub fn serve_on(
        dir: &Path,
        clickhouse_database: Option<&str>,
        host: &str,
        data_port: u16,
        enroll_port: u16,
    ) -> anyhow::Result<Self> {
        Self::spawn(
            dir,
            clickhouse_database,
            host,
            (data_port, enroll_port),
            &[],
        )
    }

    fn spawn(
        dir: &Path,
        clickhouse_database: Option<&str>,
        host: &str,
        (data_port, enroll_port): (u16, u16),
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let metrics_port = free_port();
        let mut cmd = Command::new(bin("shaobing-collector")?);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("{host}:{data_port}"))
            .arg("--enroll-listen")
            .arg(format!("{host}:{enroll_port}"))
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .arg("--rules")
            .arg(repo_root().join("rules"))
            .args(args)
            .env("RUST_LOG", "info");
        if let Some(db) = clickhouse_database {
            cmd.arg("--clickhouse-url")
                .arg(clickhouse_url())
                .arg("--clickhouse-database")
                .arg(db);
        }
        let log = dir.join(format!(
            "collector-{data_port}-{}.log",
            unique_database("run")
        ));
        let daemon = Daemon::spawn(cmd, log)?;
        let ready = wait_for(Duration::from_secs(30), || {
            daemon
                .log_text()
                .contains("collector listening")
                .then_some(())
        });
        if ready.is_none() {
            bail!("collector did not start:\n{}", daemon.log_text());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            data_port,
            enroll_port,
            clickhouse_database: clickhouse_database.map(str::to_string),
            metrics_port,
            daemon,
        })
    }

    /// The value of the counter `shaobing_rejects_total{reason="REASON"}`
    /// scraped from the collector's `/metrics` (0 when absent).
    pub fn rejects(&self, reason: &str) -> anyhow::Result<u64> {
        self.counter(&format!("shaobing_rejects_total{{reason=\"{reason}\"}}"))
    }

    /// The value of the counter `series` (a name with its labels, as printed) scraped from
    /// the collector's `/metrics` (0 when absent).
    pub fn counter(&self, series: &str) -> anyhow::Result<u64> {
        let out = Command::new("curl")
            .args([
                "-sf",
                &format!("http://127.0.0.1:{}/metrics", self.metrics_port),
            ])
            .output()
            .context("running curl")?;
        if !out.status.success() {
            bail!("metrics endpoint did not answer");
        }
        let prefix = format!("{series} ");
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0))
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// Issues a one-time enrollment token.
    pub fn token(&self) -> anyhow::Result<String> {
        let out = Command::new(bin("shaobing-collector")?)
            .args(["token", "create", "--data-dir"])
            .arg(&self.dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// Runs the collector's CLI against this collector's store.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = Command::new(bin("shaobing-collector")?);
        cmd.args(args).arg("--data-dir").arg(&self.dir);
        if let Some(db) = &self.clickhouse_database {
            cmd.arg("--clickhouse-url")
                .arg(clickhouse_url())
                .arg("--clickhouse-database")
                .arg(db);
        }
        Ok(cmd.output()?)
    }

    /// Alerts as JSON values, through `shaobing-collector alerts --json`.
    pub fn alerts_json(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let out = self.cli(&["alerts", "--json", "--limit", "1000"])?;
        if !out.status.success() {
            bail!("alerts failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8(out.stdout)?
            .lines()
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect()
    }
}

/// An agent with its own data dir, config and followed auth log.
pub struct Agent {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub auth_log: PathBuf,
    pub daemon: Option<Daemon>,
}

impl Agent {
    /// Writes a config following `auth_log` and shipping to `collector`.
    pub fn configure(dir: &Path, collector_port: u16) -> anyhow::Result<Self> {
        Self::configure_with(dir, collector_port, "")
    }

    /// Like [`Agent::configure`], with extra top-level TOML lines (e.g. `spool_max_bytes = 4096`).
    pub fn configure_with(dir: &Path, collector_port: u16, extra: &str) -> anyhow::Result<Self> {
        Self::configure_url(dir, &format!("https://127.0.0.1:{collector_port}"), extra)
    }

    /// Like [`Agent::configure_with`], shipping to the data-port URL `collector`.
    pub fn configure_url(dir: &Path, collector: &str, extra: &str) -> anyhow::Result<Self> {
        Self::configure_sections(dir, collector, extra, "enabled = false", "enabled = false")
    }

    /// Writes a config shipping to `collector` (a data-port URL) with `extra`
    /// top-level keys (heartbeats every second and 100 ms batches unless `extra`
    /// sets them), login capture following an empty `auth.log` in `dir`, and the
    /// given `[network]` and `[file]` section bodies.
    pub fn configure_sections(
        dir: &Path,
        collector: &str,
        extra: &str,
        network_section: &str,
        file_section: &str,
    ) -> anyhow::Result<Self> {
        let mut extra = extra.to_string();
        for (key, default) in [("heartbeat_secs", "1"), ("batch_max_delay_ms", "100")] {
            if !extra.contains(key) {
                extra.push_str(&format!("\n{key} = {default}"));
            }
        }
        std::fs::create_dir_all(dir)?;
        let auth_log = dir.join("auth.log");
        std::fs::write(&auth_log, b"")?;
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "collectors = [\"{collector}\"]\n\
                 data_dir = \"{}\"\n{extra}\n\
                 [login]\nauth_logs = [\"{}\"]\njournald = false\nwtmp = \"\"\nbtmp = \"\"\nlastlog = \"\"\n\
                 [network]\n{network_section}\n[file]\n{file_section}\n",
                dir.join("data").display(),
                auth_log.display()
            ),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            auth_log,
            daemon: None,
        })
    }

    /// `shaobing-agent enroll`; returns the process output (success or refusal).
    pub fn enroll(&self, collector: &Collector, token: &str) -> anyhow::Result<Output> {
        Ok(Command::new(bin("shaobing-agent")?)
            .arg("--config")
            .arg(&self.config)
            .args(["enroll", "--collector"])
            .arg(format!("https://127.0.0.1:{}", collector.enroll_port))
            .arg("--token")
            .arg(token)
            .arg("--ca-cert")
            .arg(collector.ca_cert())
            .output()?)
    }

    pub fn run(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(bin("shaobing-agent")?);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("RUST_LOG", "info");
        self.daemon = Some(Daemon::spawn(cmd, self.dir.join("agent.log"))?);
        Ok(())
    }

    /// Appends lines to the followed auth log.
    pub fn append(&self, lines: &[String]) -> anyhow::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.auth_log)?;
        for l in lines {
            writeln!(f, "{l}")?;
        }
        f.sync_all()?;
        Ok(())
    }

    pub fn log_text(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default()
    }
}

/// `count` sshd failed-password lines from `ip`, RFC 3339 stamps one second apart from now.
pub fn ssh_failures(ip: &str, count: usize) -> Vec<String> {
    let now = time::OffsetDateTime::now_utc();
    (0..count)
        .map(|i| {
            let t = (now + time::Duration::milliseconds(i as i64 * 500))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            format!(
                "{t} web-01 sshd[{}]: Failed password for root from {ip} port {} ssh2",
                3000 + i,
                50_000 + i
            )
        })
        .collect()
}

/// Runs a query with `clickhouse-client` and returns its trimmed output.
pub fn clickhouse_query(sql: &str) -> anyhow::Result<String> {
    let out = Command::new("clickhouse-client")
        .arg("--query")
        .arg(sql)
        .output()
        .context("running clickhouse-client (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "clickhouse-client: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// A database name unique to this test run.
pub fn unique_database(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos}", std::process::id())
}

impl Collector {
    /// Number of stored events matching `args` (e.g. `["--kind", "login"]`), via the CLI.
    pub fn count_events(&self, args: &[&str]) -> anyhow::Result<u64> {
        let mut all = vec!["events", "--count"];
        all.extend_from_slice(args);
        let out = self.cli(&all)?;
        if !out.status.success() {
            bail!("events failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?.trim().parse()?)
    }
}

impl Agent {
    /// The agent id from `identity.json` (after enrolling).
    pub fn agent_id(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(self.dir.join("data/identity.json"))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        v["agent_id"]
            .as_str()
            .map(str::to_string)
            .context("identity.json has no agent_id")
    }
}

/// Stops the local ClickHouse server (SIGTERM to every `clickhouse-server`) and
/// waits until it no longer answers.
pub fn clickhouse_stop() -> anyhow::Result<()> {
    let _ = Command::new("pkill")
        .args(["-TERM", "-x", "clickhouse-serv"])
        .status();
    let _ = Command::new("pkill")
        .args(["-TERM", "-f", "clickhouse-server --config-file"])
        .status();
    let stopped = wait_for(Duration::from_secs(30), || {
        (!clickhouse_pings()).then_some(())
    });
    if stopped.is_none() {
        bail!("ClickHouse did not stop");
    }
    Ok(())
}

/// Starts the local ClickHouse server as the `clickhouse` user (as `.ci/run` does)
/// and waits for `/ping`.
pub fn clickhouse_start() -> anyhow::Result<()> {
    Command::new("su")
        .args([
            "-s",
            "/bin/sh",
            "clickhouse",
            "-c",
            "clickhouse-server --config-file=/etc/clickhouse-server/config.xml >/dev/null 2>&1 &",
        ])
        .status()?;
    if wait_for(Duration::from_secs(60), || clickhouse_pings().then_some(())).is_none() {
        bail!("ClickHouse did not come back");
    }
    Ok(())
}

/// Whether ClickHouse answers `SELECT 1`.
pub fn clickhouse_pings() -> bool {
    clickhouse_query("SELECT 1")
        .map(|v| v == "1")
        .unwrap_or(false)
}

/// Runs `ip` with `args`, failing with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A network namespace joined to the root namespace by a veth pair:
/// `host_ip` on the root side, `ns_ip` inside. Removed on drop.
pub struct Netns {
    pub name: String,
    pub host_if: String,
    pub host_ip: String,
    pub ns_ip: String,
}

impl Netns {
    pub fn create(name: &str, subnet: u8) -> anyhow::Result<Self> {
        let host_if = format!("{name}-h");
        let ns_if = format!("{name}-a");
        let quiet = |args: &[&str]| {
            let _ = Command::new("ip").args(args).stderr(Stdio::null()).status();
        };
        quiet(&["netns", "del", name]);
        quiet(&["link", "del", &host_if]);
        let host_ip = format!("10.231.{subnet}.1");
        let ns_ip = format!("10.231.{subnet}.2");
        ip(&["netns", "add", name])?;
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", name])?;
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "netns",
            "exec",
            name,
            "ip",
            "addr",
            "add",
            &format!("{ns_ip}/24"),
            "dev",
            &ns_if,
        ])?;
        ip(&["netns", "exec", name, "ip", "link", "set", &ns_if, "up"])?;
        ip(&["netns", "exec", name, "ip", "link", "set", "lo", "up"])?;
        Ok(Self {
            name: name.to_string(),
            host_if,
            host_ip,
            ns_ip,
        })
    }

    /// Cuts (`false`) or restores (`true`) the link.
    pub fn link(&self, up: bool) -> anyhow::Result<()> {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

impl Agent {
    /// Runs the agent inside network namespace `ns`.
    pub fn run_in(&mut self, ns: &str) -> anyhow::Result<()> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(bin("shaobing-agent")?)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("RUST_LOG", "info");
        self.daemon = Some(Daemon::spawn(cmd, self.dir.join("agent.log"))?);
        Ok(())
    }
}
