//! `shaobing-collector`: command-line edge of the collector. Parses arguments,
//! sets up logging and the runtime, and calls into the library; no logic here.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shaobing_collector::cli::{self, Lang};
use shaobing_collector::pki::{Pki, TokenStore};
use shaobing_collector::server::{ServeConfig, open_store, start};
use shaobing_collector::store::AlertQuery;
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
    /// List enrolled agents and whether they are online.
    Agents {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
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
        Command::Demo { .. } | Command::Alerts { .. } | Command::Agents { .. } => "warn",
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
        } => {
            let config = ServeConfig {
                data_dir: store.data_dir,
                listen,
                enroll_listen,
                clickhouse_url: store.clickhouse_url,
                clickhouse_database: store.clickhouse_database,
                rule_dirs: rule_dirs_or_default(rule_dirs),
            };
            runtime.block_on(async {
                let running = start(&config).await.context("collector failed to start")?;
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
        Command::Agents { store, json } => runtime.block_on(async {
            let store = open_store(&serve_config_for(&store)).await?;
            let agents = store.agents().await?;
            cli::write_agents(&mut out, &agents, json, now_nanos(), lang)?;
            anyhow::Ok(())
        })?,
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
        clickhouse_url: store.clickhouse_url.clone(),
        clickhouse_database: store.clickhouse_database.clone(),
        rule_dirs: Vec::new(),
    }
}
