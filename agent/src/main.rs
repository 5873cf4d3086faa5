//! `shaobing-agent` command line: parses arguments and calls into the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shaobing_agent::config::AgentConfig;
use shaobing_agent::{capture, daemon, enroll, spool};

const DEFAULT_CONFIG: &str = "/etc/shaobing/agent.toml";

#[derive(Parser)]
#[command(
    name = "shaobing-agent",
    version,
    about = "哨兵主机代理 / Shaobing host agent"
)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "SHAOBING_AGENT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Capture and ship events (the default).
    Run,
    /// Obtain a client certificate from the collector with a one-time token.
    Enroll {
        /// Enrollment port URL, e.g. https://collector:7444
        #[arg(long)]
        collector: String,
        /// One-time token from `shaobing-collector token create`.
        #[arg(long)]
        token: String,
        /// The fleet CA certificate (ca.crt from the collector), to trust the collector.
        #[arg(long)]
        ca_cert: PathBuf,
    },
    /// Parse old log files offline and print events as JSON lines.
    Replay {
        /// auth | journald | wtmp | btmp | lastlog
        #[arg(long, default_value = "auth")]
        source: String,
        /// passwd file naming lastlog's UIDs (that of the host the file came from)
        #[arg(long, default_value = "/etc/passwd")]
        passwd: PathBuf,
        files: Vec<PathBuf>,
    },
    /// Show the spool's depth and drops.
    Status,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let config = AgentConfig::load(&config_path, cli.config.is_some())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => Ok(runtime.block_on(daemon::run(config))?),
        Command::Enroll {
            collector,
            token,
            ca_cert,
        } => runtime.block_on(async {
            let identity = enroll::enroll(&config, &collector, &token, &ca_cert)
                .await
                .context("注册失败 / enrollment failed")?;
            eprintln!(
                "注册成功 / enrolled: agent_id = {}  ({})",
                identity.agent_id,
                config.data_dir.display()
            );
            Ok(())
        }),
        Command::Replay {
            source,
            passwd,
            files,
        } => {
            let source = source
                .parse()
                .map_err(|e| anyhow::anyhow!("--source: {e}"))?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let summary =
                capture::login::replay::replay_with_passwd(source, &files, &passwd, &mut out)?;
            eprintln!("{summary}");
            Ok(())
        }
        Command::Status => runtime.block_on(async {
            let spool = spool::Spool::open(&config.spool_path(), config.spool_max_bytes)?;
            let s = spool.stats().await?;
            eprintln!(
                "spool: {} batches, {} bytes, dropped {} events in {} batches",
                s.batches, s.bytes, s.dropped_events, s.dropped_batches
            );
            Ok(())
        }),
    }
}
