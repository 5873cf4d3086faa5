//! `shaobing-collector`: command-line edge of the collector. Parses arguments,
//! sets up logging and the runtime, and calls into the library; no logic here.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shaobing_collector::cli::{self, Lang};
use shaobing_collector::pki::{Pki, RevocationList, TokenStore};
use shaobing_collector::server::{ServeConfig, open_store, start};
use shaobing_collector::store::{
    AlertQuery, ClickHouseOptions, ClickHouseTarget, EventQuery, FieldFilter, RetentionPolicy,
    StoreConfig, WireCompression,
};
use shaobing_collector::{demo, rules};

#[derive(Parser)]
#[command(
    name = "shaobing-collector",
    version,
    about = "哨兵采集器 / Shaobing collector"
)]
struct Cli {
    /// Output language for operators: zh (default) or en.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "zh",
        env = "SHAOBING_LANG"
    )]
    lang: Lang,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Data directory: PKI, embedded store.
    #[arg(
        long,
        env = "SHAOBING_DATA_DIR",
        default_value = "/var/lib/shaobing-collector"
    )]
    data_dir: PathBuf,
    /// ClickHouse HTTP URL; without it the embedded store in the data directory is used.
    #[arg(long, env = "SHAOBING_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// ClickHouse database.
    #[arg(long, env = "SHAOBING_CLICKHOUSE_DATABASE", default_value = "shaobing")]
    clickhouse_database: String,
    /// ClickHouse cluster (from the servers' `remote_servers`): replicated tables behind
    /// Distributed tables, DDL ON CLUSTER. See deploy/clickhouse/cluster/README.md.
    #[arg(long, env = "SHAOBING_CLICKHOUSE_CLUSTER")]
    clickhouse_cluster: Option<String>,
    /// Cluster only: replicas that must hold an insert before a batch is acknowledged.
    #[arg(long, env = "SHAOBING_CLICKHOUSE_INSERT_QUORUM")]
    clickhouse_insert_quorum: Option<u32>,
    /// Compression between collector and ClickHouse: lz4 (across a network) or none (same host).
    #[arg(long, env = "SHAOBING_CLICKHOUSE_COMPRESSION", default_value = "lz4",
          value_parser = ["lz4", "none"])]
    clickhouse_compression: String,
    /// Days events (and check results) are kept; 等保 asks for at least 186 (six months).
    #[arg(long, env = "SHAOBING_RETENTION_EVENTS_DAYS", default_value_t = 186)]
    retention_events_days: u32,
    /// Days alerts and their triage are kept.
    #[arg(long, env = "SHAOBING_RETENTION_ALERTS_DAYS", default_value_t = 1096)]
    retention_alerts_days: u32,
    /// Days the console's audit log is kept.
    #[arg(long, env = "SHAOBING_RETENTION_AUDIT_DAYS", default_value_t = 1096)]
    retention_audit_days: u32,
}

impl StoreArgs {
    /// What store to open, from these arguments.
    fn store_config(&self) -> StoreConfig {
        StoreConfig {
            clickhouse: self.clickhouse_url.as_ref().map(|url| ClickHouseTarget {
                url: url.clone(),
                options: ClickHouseOptions {
                    cluster: self.clickhouse_cluster.clone(),
                    insert_quorum: self.clickhouse_insert_quorum,
                    compression: if self.clickhouse_compression == "none" {
                        WireCompression::None
                    } else {
                        WireCompression::Lz4
                    },
                    ..ClickHouseOptions::database(&self.clickhouse_database)
                },
            }),
            embedded_path: self.data_dir.join("shaobing.db"),
            retention: RetentionPolicy {
                events_days: self.retention_events_days,
                alerts_days: self.retention_alerts_days,
                audit_log_days: self.retention_audit_days,
            },
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Certificate authority for the fleet.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// One-time enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Accept agents, detect, store.
    Serve {
        #[command(flatten)]
        store: StoreArgs,
        /// Data port (mutual TLS).
        #[arg(long, default_value = "0.0.0.0:7443")]
        listen: SocketAddr,
        /// Enrollment port (server TLS).
        #[arg(long, default_value = "0.0.0.0:7444")]
        enroll_listen: SocketAddr,
        /// Rule directories (repeatable); default: $SHAOBING_RULES, ./rules, /etc/shaobing/rules.
        #[arg(long = "rules")]
        rule_dirs: Vec<PathBuf>,
        /// Serve Prometheus metrics on this address (GET /metrics).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// Raise an alert when an agent has sent nothing for this many seconds.
        #[arg(long, default_value_t = 300)]
        offline_after_secs: u64,
        /// Serve the operator console (HTTPS) on this address, e.g. 0.0.0.0:8443.
        #[arg(long)]
        console_listen: Option<SocketAddr>,
        /// Seconds between two retention runs (the first runs at start).
        #[arg(long, default_value_t = 3600)]
        retention_every_secs: u64,
    },
    /// List alerts.
    Alerts {
        #[command(flatten)]
        store: StoreArgs,
        /// Only alerts active since: 30s, 15m, 2h, 7d or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Only this hostname.
        #[arg(long)]
        host: Option<String>,
        /// Only these levels (repeatable): low, medium, high, critical.
        #[arg(long)]
        level: Vec<String>,
        /// Text search in title, summary, host, group.
        #[arg(long)]
        text: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Search stored events (JSON lines), or count them.
    Events {
        #[command(flatten)]
        store: StoreArgs,
        /// Only events since: 30s, 15m, 2h, 7d or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        host: Option<String>,
        /// login, file, network, check, status, process.
        #[arg(long)]
        kind: Option<String>,
        /// Column filters `name=value` (repeatable), e.g. `source_ip=203.0.113.7`.
        #[arg(long = "field")]
        fields: Vec<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print only the number of matching events.
        #[arg(long)]
        count: bool,
    },
    /// Manage one agent.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// List enrolled agents and whether they are online.
    Agents {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Sigma rules: list, lint, test.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Offline hunting: run the rules (correlation included) over event JSON lines
    /// (`shaobing-agent replay` output; `-` = stdin) or raw auth logs, in event-time order.
    Hunt {
        /// Rule directories (repeatable); default: $SHAOBING_RULES, ./rules, /etc/shaobing/rules.
        #[arg(long = "rules")]
        rule_dirs: Vec<PathBuf>,
        /// JSON lines (one alert each) instead of a table.
        #[arg(long)]
        json: bool,
        /// Input files.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Run the whole path locally: collector + agent over mTLS + a simulated SSH attack.
    Demo {
        /// Rule directories; default: $SHAOBING_RULES, ./rules, beside the binary, /etc/shaobing/rules.
        #[arg(long = "rules")]
        rule_dirs: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the CA and the collector's server certificate.
    Init {
        #[arg(
            long,
            env = "SHAOBING_DATA_DIR",
            default_value = "/var/lib/shaobing-collector"
        )]
        data_dir: PathBuf,
        /// Extra DNS names or IPs for the server certificate (repeatable).
        #[arg(long)]
        san: Vec<String>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// List loaded rules (id, level, kind, logsource, 等保 clauses).
    List {
        /// Rule directories; default: $SHAOBING_RULES, ./rules, /etc/shaobing/rules.
        dirs: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Load every rule and report rejected rules and warnings (exit 1 if any is rejected).
    Lint { dirs: Vec<PathBuf> },
    /// Run each rule's sibling `*.tests.yml` (exit 1 on any failure).
    Test { dirs: Vec<PathBuf> },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Revoke an agent's certificate: it is refused from its next connection on.
    Revoke {
        agent_id: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(
            long,
            env = "SHAOBING_DATA_DIR",
            default_value = "/var/lib/shaobing-collector"
        )]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a one-time enrollment token (printed once).
    Create {
        #[arg(
            long,
            env = "SHAOBING_DATA_DIR",
            default_value = "/var/lib/shaobing-collector"
        )]
        data_dir: PathBuf,
        /// Validity in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl_secs: i64,
    },
}

fn rule_dirs_or_default(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    if dirs.is_empty() {
        vec![rules::default_rule_dir()]
    } else {
        dirs
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Demo { .. }
        | Command::Hunt { .. }
        | Command::Alerts { .. }
        | Command::Agents { .. }
        | Command::Events { .. } => "warn",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let lang = cli.lang;
    let now_nanos = || time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    match cli.command {
        Command::Ca {
            command: CaCommand::Init { data_dir, san },
        } => {
            let pki = Pki::new(data_dir.join("pki"));
            pki.init(&san)?;
            writeln!(
                out,
                "CA 已创建 / CA created: {}\n请将 ca.crt 分发给各代理 / give ca.crt to agents",
                pki.ca_cert_path().display()
            )?;
        }
        Command::Token {
            command: TokenCommand::Create { data_dir, ttl_secs },
        } => {
            let pki = Pki::new(data_dir.join("pki"));
            pki.ca_pem()?;
            let token =
                TokenStore::new(pki.tokens_path()).create(now_nanos() / 1_000_000_000, ttl_secs)?;
            writeln!(out, "{token}")?;
        }
        Command::Serve {
            store,
            listen,
            enroll_listen,
            rule_dirs,
            metrics_listen,
            offline_after_secs,
            console_listen,
            retention_every_secs,
        } => {
            let store_config = store.store_config();
            if !store_config.retention.meets_six_month_minimum() {
                eprintln!(
                    "警告：事件保留 {} 天，少于等保要求的 6 个月（186 天） / warning: events are kept {} days, less than the six months (186 days) 等保 asks for",
                    store_config.retention.events_days, store_config.retention.events_days
                );
            }
            let config = ServeConfig {
                data_dir: store.data_dir,
                listen,
                enroll_listen,
                store: store_config,
                retention: shaobing_collector::retention::RetentionSchedule {
                    every: std::time::Duration::from_secs(retention_every_secs.max(1)),
                },
                rule_dirs: rule_dirs_or_default(rule_dirs),
                metrics_listen,
                fleet: shaobing_collector::fleet::FleetWatch {
                    offline_after: std::time::Duration::from_secs(offline_after_secs),
                    ..Default::default()
                },
                console_listen,
            };
            runtime.block_on(async {
                let running = start(&config).await.context("collector failed to start")?;
                if let Some(console) = &running.console {
                    if let Some(password) = &console.bootstrap_password {
                        eprintln!(
                            "控制台管理员 admin 的一次性密码 / console admin one-time password: {password}"
                        );
                    }
                    eprintln!("控制台 / console: {}", console.url());
                }
                tokio::select! {
                    r = running.wait() => r.context("collector stopped")?,
                    _ = tokio::signal::ctrl_c() => {}
                }
                anyhow::Ok(())
            })?;
        }
        Command::Alerts {
            store,
            since,
            host,
            level,
            text,
            limit,
            json,
        } => runtime.block_on(async {
            let since = since
                .map(|s| cli::parse_since(&s, now_nanos()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let store = open_store(&serve_config_for(&store)).await?;
            let query = AlertQuery {
                since,
                host,
                levels: level,
                text,
                limit: Some(limit),
                ..Default::default()
            };
            cli::print_alerts(&store, &query, json, lang, &mut out).await?;
            anyhow::Ok(())
        })?,
        Command::Events {
            store,
            since,
            host,
            kind,
            fields,
            limit,
            count,
        } => runtime.block_on(async {
            let since = since
                .map(|s| cli::parse_since(&s, now_nanos()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let fields = fields
                .iter()
                .map(|f| {
                    f.split_once('=')
                        .map(|(k, v)| FieldFilter::new(k, v))
                        .ok_or_else(|| anyhow::anyhow!("--field expects name=value, got {f:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let store = open_store(&serve_config_for(&store)).await?;
            let query = EventQuery {
                since,
                host,
                kind,
                fields,
                limit: Some(limit),
                ..Default::default()
            };
            if count {
                writeln!(out, "{}", store.count_events(&query).await?)?;
            } else {
                for record in store.events(&query).await? {
                    serde_json::to_writer(&mut out, &record.event)?;
                    writeln!(out)?;
                }
            }
            anyhow::Ok(())
        })?,
        Command::Agent {
            command:
                AgentCommand::Revoke {
                    agent_id,
                    reason,
                    data_dir,
                },
        } => {
            let pki = Pki::new(data_dir.join("pki"));
            pki.ca_pem()?;
            let list = RevocationList::new(pki.revoked_path());
            let now = now_nanos() / 1_000_000_000;
            if list.revoke(&agent_id, now, &reason)? {
                writeln!(out, "已吊销 / revoked: {agent_id}")?;
            } else {
                writeln!(out, "已处于吊销状态 / already revoked: {agent_id}")?;
            }
        }
        Command::Agents { store, json } => runtime.block_on(async {
            let store = open_store(&serve_config_for(&store)).await?;
            let agents = store.agents().await?;
            cli::write_agents(&mut out, &agents, json, now_nanos(), lang)?;
            anyhow::Ok(())
        })?,
        Command::Rules { command } => return rules_command(command, lang, &mut out),
        Command::Hunt {
            rule_dirs,
            json,
            inputs,
        } => {
            let report = shaobing_collector::hunt::hunt(&rule_dirs_or_default(rule_dirs), &inputs)?;
            for rejected in &report.load.rejected {
                tracing::warn!(rule = %rejected, "rule rejected");
            }
            shaobing_collector::hunt::write_report(&mut out, &report, json, lang)?;
        }
        Command::Demo { rule_dirs } => runtime.block_on(async {
            demo::run(rule_dirs_or_default(rule_dirs), lang, &mut out)
                .await
                .context("demo failed")?;
            anyhow::Ok(())
        })?,
    }
    Ok(())
}

fn serve_config_for(store: &StoreArgs) -> ServeConfig {
    ServeConfig {
        data_dir: store.data_dir.clone(),
        listen: ([127, 0, 0, 1], 0).into(),
        enroll_listen: ([127, 0, 0, 1], 0).into(),
        store: store.store_config(),
        retention: Default::default(),
        rule_dirs: Vec::new(),
        metrics_listen: None,
        fleet: Default::default(),
        console_listen: None,
    }
}

fn rules_command(command: RulesCommand, lang: Lang, out: &mut dyn Write) -> anyhow::Result<()> {
    let zh = lang == Lang::Zh;
    match command {
        RulesCommand::List { dirs, json } => {
            let config = rules::read_rule_dirs(&rule_dirs_or_default(dirs))?;
            let (detector, _) = shaobing_detect::Detector::new(config);
            for rule in detector.rules() {
                if json {
                    serde_json::to_writer(&mut *out, &rule)?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "{}  {:<13} {:<11} {:<40} {}  [{}]",
                        rule.id,
                        rule.level,
                        rule.kind,
                        rule.logsource,
                        rule.title,
                        rule.mlps.join(", ")
                    )?;
                }
            }
        }
        RulesCommand::Lint { dirs } => {
            let config = rules::read_rule_dirs(&rule_dirs_or_default(dirs))?;
            let (_, report) = shaobing_detect::Detector::new(config);
            for e in &report.rejected {
                writeln!(out, "{} {e}", if zh { "拒绝" } else { "rejected" })?;
            }
            for w in &report.warnings {
                writeln!(out, "{} {w}", if zh { "警告" } else { "warning" })?;
            }
            writeln!(
                out,
                "{}: {} / {}: {} / {}: {}",
                if zh { "已加载" } else { "loaded" },
                report.loaded,
                if zh { "拒绝" } else { "rejected" },
                report.rejected.len(),
                if zh { "警告" } else { "warnings" },
                report.warnings.len()
            )?;
            if !report.rejected.is_empty() {
                std::process::exit(1);
            }
        }
        RulesCommand::Test { dirs } => {
            let report = rules::test_rule_dirs(&rule_dirs_or_default(dirs))?;
            for o in &report.outcomes {
                let mark = if o.passed() { "ok  " } else { "FAIL" };
                writeln!(out, "{mark} {} ({} cases)", o.origin, o.cases.len())?;
                if let Some(e) = &o.error {
                    writeln!(out, "     {e}")?;
                }
                for f in o.failures() {
                    writeln!(out, "     {}: {}", f.name, f.detail)?;
                }
            }
            for u in &report.untested {
                writeln!(out, "{} {u}", if zh { "无测试" } else { "untested" })?;
            }
            let failed = report.outcomes.iter().filter(|o| !o.passed()).count();
            writeln!(
                out,
                "{} passed, {} failed",
                report.outcomes.len() - failed,
                failed
            )?;
            if !report.passed() || !report.untested.is_empty() {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_config_of(args: &[&str]) -> StoreConfig {
        let cli = Cli::try_parse_from(args).expect("arguments parse");
        match cli.command {
            Command::Serve { store, .. } => store.store_config(),
            _ => panic!("not serve"),
        }
    }

    #[test]
    fn serve_flags_select_the_store_and_its_retention() {
        let config = store_config_of(&[
            "shaobing-collector",
            "serve",
            "--data-dir",
            "/tmp/sb",
            "--clickhouse-url",
            "http://ch:8123",
            "--clickhouse-cluster",
            "shaobing",
            "--clickhouse-insert-quorum",
            "2",
            "--clickhouse-compression",
            "none",
            "--retention-events-days",
            "200",
        ]);
        let target = config.clickhouse.expect("ClickHouse selected");
        assert_eq!(target.url, "http://ch:8123");
        assert_eq!(target.options.database, "shaobing");
        assert_eq!(target.options.cluster.as_deref(), Some("shaobing"));
        assert_eq!(target.options.insert_quorum, Some(2));
        assert_eq!(target.options.compression, WireCompression::None);
        assert_eq!(config.retention.events_days, 200);
        assert_eq!(config.retention.alerts_days, 1096);

        let embedded = store_config_of(&["shaobing-collector", "serve", "--data-dir", "/tmp/sb"]);
        assert!(embedded.clickhouse.is_none());
        assert_eq!(
            embedded.embedded_path,
            std::path::Path::new("/tmp/sb/shaobing.db")
        );
        assert_eq!(embedded.retention, RetentionPolicy::default());

        assert!(
            Cli::try_parse_from([
                "shaobing-collector",
                "serve",
                "--clickhouse-compression",
                "zstd"
            ])
            .is_err(),
            "unknown compression refused"
        );
    }
}
