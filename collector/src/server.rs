//! `shaobing-collector serve`: wires ingest → pipeline → store and runs until
//! shutdown. Also used in-process by `demo` and by tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use shaobing_detect::{Detector, LoadReport};
use shaobing_wire::limits::MAX_MESSAGE_BYTES;
use shaobing_wire::v1::{enrollment_server::EnrollmentServer, ingest_server::IngestServer};
use tokio::net::TcpListener;

use crate::ingest::{EnrollService, PublishService, spawn_tls_listener};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pki::{Pki, RevocationList, TokenStore};
use crate::rules::RuleSet;
use crate::store::{Store, StoreConfig};

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub enroll_listen: SocketAddr,
    /// ClickHouse or the embedded store, and the retention policy.
    pub store: StoreConfig,
    /// How often retention runs (see [`crate::retention`]).
    pub retention: crate::retention::RetentionSchedule,
    pub rule_dirs: Vec<PathBuf>,
    /// Prometheus `GET /metrics` address (none = not served).
    pub metrics_listen: Option<SocketAddr>,
    /// Offline-agent detection.
    pub fleet: crate::fleet::FleetWatch,
    /// Operator console address (HTTPS with the collector's certificate); none = off.
    pub console_listen: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Tls(#[from] shaobing_wire::tls::TlsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Rules(#[from] crate::rules::RulesError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

/// A running collector: its bound addresses and shared state.
pub struct RunningCollector {
    /// The console, when `console_listen` was set.
    pub console: Option<crate::console::ConsoleHandle>,
    pub data_addr: SocketAddr,
    pub enroll_addr: SocketAddr,
    pub pipeline: Arc<Pipeline>,
    pub load_report: LoadReport,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl RunningCollector {
    /// Stops accepting and waits for the servers to finish.
    pub async fn shutdown(self) {
        if let Some(console) = self.console {
            console.shutdown().await;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Waits until a server task ends (error or shutdown).
    pub async fn wait(mut self) -> Result<(), ServeError> {
        if let Some(t) = self.tasks.pop()
            && let Ok(Err(e)) = t.await
        {
            return Err(e.into());
        }
        Ok(())
    }
}

/// Opens the store configured in `config`.
pub async fn open_store(config: &ServeConfig) -> Result<Store, ServeError> {
    Ok(config.store.open().await?)
}

/// Loads rules and certificates, binds both ports and starts serving.
pub async fn start(config: &ServeConfig) -> Result<RunningCollector, ServeError> {
    let pki = Pki::new(config.data_dir.join("pki"));
    let ca_pem = pki.ca_pem()?;
    let server_cert =
        std::fs::read(pki.server_cert_path()).map_err(|source| crate::pki::PkiError::Io {
            path: pki.server_cert_path(),
            source,
        })?;
    let server_key =
        std::fs::read(pki.server_key_path()).map_err(|source| crate::pki::PkiError::Io {
            path: pki.server_key_path(),
            source,
        })?;

    // The operator's directories plus the collector's own rules.local/ and
    // rules-state.json (rules disabled from the console).
    let rule_set = RuleSet::with_data_dir(config.rule_dirs.clone(), config.data_dir.clone());
    let detect_config = rule_set.read()?;
    let (mut detector, load_report) = Detector::new(detect_config);
    let state_path = crate::detect_state::state_path(&config.data_dir);
    crate::detect_state::restore(&mut detector, &state_path);
    tracing::info!(
        loaded = load_report.loaded,
        rejected = load_report.rejected.len(),
        "rules loaded"
    );
    for err in &load_report.rejected {
        tracing::warn!(rule = %err, "rule rejected");
    }

    let store = open_store(config).await?;
    tracing::info!(store = store.kind(), "store ready");
    let metrics = Arc::new(Metrics::default());
    let pipeline = Arc::new(Pipeline::new(store, detector, metrics.clone()));

    let data_tls = Arc::new(shaobing_wire::tls::mtls_server_config(
        ca_pem.as_bytes(),
        &server_cert,
        &server_key,
        Vec::new(),
    )?);
    let enroll_tls = Arc::new(shaobing_wire::tls::enroll_server_config(
        &server_cert,
        &server_key,
    )?);
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })
    };
    let data_listener = bind(config.listen).await?;
    let enroll_listener = bind(config.enroll_listen).await?;
    let data_addr = data_listener
        .local_addr()
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let enroll_addr = enroll_listener
        .local_addr()
        .map_err(|source| ServeError::Listen {
            addr: config.enroll_listen,
            source,
        })?;
    let revoked = Arc::new(RevocationList::new(pki.revoked_path()));
    let check_revoked = revoked.clone();
    let is_revoked: Arc<dyn Fn(&str) -> bool + Send + Sync> =
        Arc::new(move |id| check_revoked.is_revoked(id));
    let data_incoming = spawn_tls_listener(
        data_listener,
        data_tls,
        metrics.clone(),
        "data",
        is_revoked.clone(),
    );
    let enroll_incoming = spawn_tls_listener(
        enroll_listener,
        enroll_tls,
        metrics.clone(),
        "enroll",
        is_revoked,
    );

    if let Some(addr) = config.metrics_listen {
        let listener = bind(addr).await?;
        tokio::spawn(crate::metrics::serve(listener, metrics.clone()));
        tracing::info!(%addr, "metrics endpoint listening");
    }
    tokio::spawn(crate::fleet::run(pipeline.store.clone(), config.fleet));
    tokio::spawn(crate::retention::run(
        pipeline.store.clone(),
        metrics.clone(),
        config.retention,
    ));
    tokio::spawn(crate::detect_state::run(pipeline.clone(), state_path));
    let rule_watch = Arc::new(std::sync::Mutex::new(crate::rules_reload::RuleWatch::new(
        rule_set,
        &load_report,
    )));
    tokio::spawn(crate::rules_reload::watch(
        pipeline.clone(),
        rule_watch.clone(),
    ));

    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let ingest = IngestServer::new(PublishService {
        pipeline: pipeline.clone(),
        pki: pki.clone(),
        revoked,
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    let enroll = EnrollmentServer::new(EnrollService {
        pki: pki.clone(),
        tokens: Arc::new(TokenStore::new(pki.tokens_path())),
        metrics: metrics.clone(),
    });
    let data_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ingest)
            .serve_with_incoming_shutdown(data_incoming, signal(shutdown_rx.clone())),
    );
    let enroll_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(enroll)
            .serve_with_incoming_shutdown(enroll_incoming, signal(shutdown_rx)),
    );
    let console = match config.console_listen {
        Some(addr) => {
            let console_config = crate::console::ConsoleConfig::new(addr, config.data_dir.clone())
                .with_tls(server_cert.clone(), server_key.clone());
            let handle = crate::console::start(
                console_config,
                pipeline.store.clone(),
                metrics.clone(),
                Arc::new(crate::rule_admin::RuleAdmin::new(
                    pipeline.clone(),
                    rule_watch,
                )),
            )
            .await?;
            tracing::info!(url = %handle.url(), "console listening");
            Some(handle)
        }
        None => None,
    };
    tracing::info!(%data_addr, %enroll_addr, "collector listening");
    Ok(RunningCollector {
        console,
        data_addr,
        enroll_addr,
        pipeline,
        load_report,
        shutdown,
        tasks: vec![enroll_task, data_task],
    })
}
