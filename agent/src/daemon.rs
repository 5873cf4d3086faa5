//! The agent daemon: wires capture → batcher → spool → ship and heartbeats,
//! runs until SIGTERM/Ctrl-C, then flushes captured events into the spool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::capture::{self, CaptureContext};
use crate::config::AgentConfig;
use crate::counters::Counters;
use crate::{batcher, enroll, heartbeat, host, ship, spool};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "未注册：请先运行 `shaobing-agent enroll` / not enrolled: run `shaobing-agent enroll` first (data dir {0})"
    )]
    NotEnrolled(PathBuf),
    #[error(
        "机器标识已变化，请重新注册 / machine-id changed since enrollment (cloned image?): re-enroll this host"
    )]
    MachineIdChanged,
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
}

/// Runs the agent until a shutdown signal.
pub async fn run(config: AgentConfig) -> Result<(), DaemonError> {
    let Some(identity) = enroll::load_identity(&config) else {
        return Err(DaemonError::NotEnrolled(config.data_dir.clone()));
    };
    let current_machine = enroll::machine_id();
    if !identity.machine_id.is_empty() && identity.machine_id != current_machine {
        return Err(DaemonError::MachineIdChanged);
    }
    let read =
        |path: PathBuf| std::fs::read(&path).map_err(|source| DaemonError::Read { path, source });
    let ship_config = ship::ShipConfig {
        collectors: config.collectors.clone(),
        server_name: config.server_name.clone(),
        ca_pem: read(config.ca_path())?,
        cert_pem: read(config.cert_path())?,
        key_pem: read(config.key_path())?,
        max_in_flight: config.max_in_flight,
        cert_path: config.cert_path(),
        key_path: config.key_path(),
        renew_before: Duration::from_secs(config.renew_before_days * 86_400),
    };
    let spool = spool::Spool::open(&config.spool_path(), config.spool_max_bytes)?;
    let counters = Arc::new(Counters::default());
    let host = host::host(&identity.agent_id);
    let (tx, rx) = mpsc::channel(1024);
    let ctx = CaptureContext {
        host: host.clone(),
        tx: tx.clone(),
        positions: Arc::new(spool.positions()?),
        counters: counters.clone(),
    };
    let spooled = Arc::new(Notify::new());
    let batcher = batcher::Batcher {
        spool: spool.clone(),
        agent_id: identity.agent_id.clone(),
        max_events: config
            .batch_max_events
            .clamp(1, shaobing_wire::limits::MAX_EVENTS_PER_BATCH),
        max_delay: Duration::from_millis(config.batch_max_delay_ms),
        spooled: spooled.clone(),
        counters: counters.clone(),
    };
    let batcher_task = tokio::spawn(batcher.run(rx));
    let mut capture_tasks = capture::login::spawn(&config.login, &ctx);
    capture_tasks.extend(capture::network::spawn(&config.network, &ctx));
    capture_tasks.extend(capture::file::spawn(&config.file, &config.data_dir, &ctx));
    let heartbeat_task = tokio::spawn(heartbeat::run(
        host,
        spool.clone(),
        counters.clone(),
        tx,
        Duration::from_secs(config.heartbeat_secs.max(1)),
    ));
    drop(ctx);
    let shipper = ship::Shipper {
        config: ship_config,
        spool,
        spooled,
        counters: counters.clone(),
    };
    let ship_task = tokio::spawn(shipper.run());
    tracing::info!(agent_id = %identity.agent_id, "agent running");

    shutdown_signal().await;
    tracing::info!("shutting down");
    heartbeat_task.abort();
    for t in capture_tasks {
        t.abort();
    }
    // Capture tasks are gone: the batcher flushes what it holds and ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), batcher_task).await;
    ship_task.abort();
    tracing::info!(counters = ?counters.snapshot(), "agent stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
