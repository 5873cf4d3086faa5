//! `shaobing-collector demo`: the whole path on one machine, no ClickHouse, no
//! root. Creates a CA, starts a collector on the embedded store, enrolls and
//! starts a real `shaobing-agent` process over mutual TLS on loopback, writes an
//! SSH brute force followed by a successful login into a real log file the agent
//! follows, and prints the alerts the collector raised.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::cli::{Lang, write_alert_table};
use crate::pki::{Pki, TokenStore};
use crate::server::{ServeConfig, start};
use crate::store::{AlertQuery, AlertRecord, StoreConfig};

/// The attacker's address in the demo (TEST-NET-3, RFC 5737: never routed).
pub const ATTACKER_IP: &str = "203.0.113.45";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "shaobing-agent binary not found next to {0} (build the workspace: `cargo build --release`)"
    )]
    AgentMissing(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("agent enrollment failed: {0}")]
    Enroll(String),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("no brute-force alert within {0:?}")]
    NoAlert(Duration),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// The agent binary: `$SHAOBING_AGENT_BIN`, else beside this executable.
pub fn agent_binary() -> Result<PathBuf, DemoError> {
    if let Ok(p) = std::env::var("SHAOBING_AGENT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(io("locating the collector executable"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidate = dir.join("shaobing-agent");
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(DemoError::AgentMissing(exe))
    }
}

/// Realistic auth.log lines (RFC 3339 stamps, as rsyslog on Debian 12 writes them).
fn attack_lines(host: &str) -> Vec<String> {
    let now = time::OffsetDateTime::now_utc();
    let stamp = |i: i64| {
        (now + time::Duration::milliseconds(i * 300))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut lines = Vec::new();
    let users = [
        "root", "root", "admin", "root", "oracle", "root", "root", "root",
    ];
    for (i, user) in users.iter().enumerate() {
        let port = 40_000 + i * 7;
        let line = if *user == "admin" || *user == "oracle" {
            format!(
                "{} {host} sshd[{}]: Failed password for invalid user {user} from {ATTACKER_IP} port {port} ssh2",
                stamp(i as i64),
                2100 + i
            )
        } else {
            format!(
                "{} {host} sshd[{}]: Failed password for {user} from {ATTACKER_IP} port {port} ssh2",
                stamp(i as i64),
                2100 + i
            )
        };
        lines.push(line);
    }
    // A line with a broken header: the agent counts it as malformed and keeps going.
    lines.push(format!(
        "2026-19-45T25:61:00Z {host} sshd[2200]: Failed password for root from {ATTACKER_IP} port 1 ssh2"
    ));
    lines.push(format!(
        "{} {host} sshd[2201]: Accepted password for root from {ATTACKER_IP} port 40099 ssh2",
        stamp(10)
    ));
    lines
}

/// Runs the demo, printing progress and the alerts to `out`.
pub async fn run(
    rule_dirs: Vec<PathBuf>,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<Vec<AlertRecord>, DemoError> {
    let zh = lang == Lang::Zh;
    let say = |out: &mut dyn Write, zh_text: &str, en_text: &str| {
        let _ = writeln!(out, "{}", if zh { zh_text } else { en_text });
    };
    let agent_bin = agent_binary()?;
    let work = tempfile::Builder::new()
        .prefix("shaobing-demo-")
        .tempdir()
        .map_err(io("creating a temporary directory"))?;
    let dir = work.path();
    say(
        out,
        &format!("▶ 工作目录 {}", dir.display()),
        &format!("▶ work dir {}", dir.display()),
    );

    let collector_dir = dir.join("collector");
    let pki = Pki::new(collector_dir.join("pki"));
    pki.init(&[])?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = TokenStore::new(pki.tokens_path()).create(now, 600)?;
    say(
        out,
        "▶ 已创建 CA、服务端证书和一次性注册令牌",
        "▶ CA, server certificate and one-time token created",
    );

    let config = ServeConfig {
        data_dir: collector_dir.clone(),
        listen: "127.0.0.1:0"
            .parse()
            .map_err(|_| DemoError::NoAlert(Duration::ZERO))?,
        enroll_listen: "127.0.0.1:0"
            .parse()
            .map_err(|_| DemoError::NoAlert(Duration::ZERO))?,
        store: StoreConfig::embedded(collector_dir.join("shaobing.db")),
        retention: Default::default(),
        rule_dirs,
        metrics_listen: None,
        fleet: Default::default(),
        console_listen: None,
    };
    let collector = start(&config).await?;
    say(
        out,
        &format!(
            "▶ 采集器已启动（内嵌存储），数据端口 {}，注册端口 {}，已加载 {} 条规则",
            collector.data_addr, collector.enroll_addr, collector.load_report.loaded
        ),
        &format!(
            "▶ collector up (embedded store), data {} enroll {}, {} rules loaded",
            collector.data_addr, collector.enroll_addr, collector.load_report.loaded
        ),
    );

    let agent_dir = dir.join("agent");
    let auth_log = dir.join("auth.log");
    std::fs::write(&auth_log, b"").map_err(io("creating auth.log"))?;
    let agent_config = dir.join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "collectors = [\"https://{}\"]\ndata_dir = \"{}\"\nheartbeat_secs = 5\nbatch_max_delay_ms = 100\n[login]\nauth_logs = [\"{}\"]\njournald = false\nwtmp = \"\"\nbtmp = \"\"\nlastlog = \"\"\n[network]\nenabled = false\n[file]\nenabled = false\n",
            collector.data_addr,
            agent_dir.display(),
            auth_log.display()
        ),
    )
    .map_err(io("writing agent.toml"))?;

    let enroll = tokio::process::Command::new(&agent_bin)
        .arg("--config")
        .arg(&agent_config)
        .arg("enroll")
        .arg("--collector")
        .arg(format!("https://{}", collector.enroll_addr))
        .arg("--token")
        .arg(&token)
        .arg("--ca-cert")
        .arg(pki.ca_cert_path())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .map_err(io("running shaobing-agent enroll"))?;
    if !enroll.status.success() {
        return Err(DemoError::Enroll(
            String::from_utf8_lossy(&enroll.stderr).into_owned(),
        ));
    }
    say(
        out,
        "▶ 代理已通过一次性令牌注册，获得客户端证书（双向 TLS）",
        "▶ agent enrolled with the token and got its client certificate (mutual TLS)",
    );

    let mut agent = tokio::process::Command::new(&agent_bin)
        .arg("--config")
        .arg(&agent_config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("starting shaobing-agent"))?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    say(
        out,
        &format!(
            "▶ 模拟攻击：{ATTACKER_IP} 对 SSH 暴力破解 8 次后登录成功（写入 {}）",
            auth_log.display()
        ),
        &format!(
            "▶ attack: {ATTACKER_IP} brute-forces SSH 8 times, then logs in (written to {})",
            auth_log.display()
        ),
    );
    let host = crate::demo::short_hostname();
    for line in attack_lines(&host) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&auth_log)
            .map_err(io("appending to auth.log"))?;
        writeln!(f, "{line}").map_err(io("appending to auth.log"))?;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    let deadline = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let store = &collector.pipeline.store;
    let alerts = loop {
        let alerts = store.alerts(&AlertQuery::default()).await?;
        let brute = alerts
            .iter()
            .any(|a| a.group_key.contains(ATTACKER_IP) && a.kind == "correlation");
        let accepted = store
            .count_events(&crate::store::EventQuery {
                kind: Some("login".into()),
                ..Default::default()
            })
            .await?;
        if brute && accepted >= 9 {
            // Give the success-after-failures correlation its moment, then stop.
            tokio::time::sleep(Duration::from_millis(700)).await;
            break store.alerts(&AlertQuery::default()).await?;
        }
        if started.elapsed() > deadline {
            let _ = agent.kill().await;
            return Err(DemoError::NoAlert(deadline));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = agent.kill().await;
    let events = store.count_events(&Default::default()).await?;
    say(
        out,
        &format!("▶ 已入库事件 {events} 条，告警如下："),
        &format!("▶ {events} events stored; alerts:"),
    );
    let _ = writeln!(out);
    let _ = write_alert_table(out, &alerts, lang);
    collector.shutdown().await;
    Ok(alerts)
}

/// This host's short name, as syslog writes it.
pub fn short_hostname() -> String {
    hostname::get()
        .map(|h| {
            h.to_string_lossy()
                .split('.')
                .next()
                .unwrap_or("localhost")
                .to_string()
        })
        .unwrap_or_else(|_| "localhost".into())
}
