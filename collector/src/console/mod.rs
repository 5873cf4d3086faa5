//! The operator console (issue #9): server-rendered web pages and a JSON API over the
//! store, for four separated roles (三员分立 + 合规专员).
//!
//! Request path: [`guard`] (route table lookup in [`access`], session or API token,
//! role, same-origin + CSRF for state changes) → a handler in [`pages`] (HTML) or
//! [`api`] (JSON) → the shared operations in [`alerts`], [`overview`], [`admin`],
//! [`reports`] → [`crate::store::Store`] for alerts, events, agents and the audit log,
//! and `console.db` ([`db`]) for the console's own state: [`users`], [`sessions`] and
//! API tokens, [`notify`] channels. Every state-changing action is written to the
//! store's append-only audit log ([`audit`]).
//!
//! Start it with [`start`]; the first start creates the `admin` account (系统管理员)
//! with a one-time password returned in [`ConsoleHandle::bootstrap_password`].

pub mod access;
pub mod admin;
pub mod alerts;
pub mod api;
pub mod assets;
pub mod audit;
pub mod chart;
pub mod context;
pub mod db;
pub mod error;
pub mod guard;
pub mod html;
pub mod i18n;
pub mod notify;
pub mod overview;
pub mod pages;
pub mod password;
pub mod reports;
pub mod roles;
pub mod rule_filter;
pub mod rule_ops;
pub mod sessions;
pub mod state;
pub mod tls;
pub mod totp;
pub mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use self::error::ConsoleError;
pub use self::password::PasswordCost;
pub use self::roles::Role;
pub use self::state::{RuleCatalog, RuleSnapshot, SharedState};

use self::db::ConsoleDb;
use self::notify::stopped;
use self::state::{ConsoleState, IngestSampler};
use crate::metrics::Metrics;
use crate::store::Store;

/// Name of the account created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// How the console runs.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// Address to listen on (port 0 picks a free port; see [`ConsoleHandle::addr`]).
    pub listen: SocketAddr,
    /// Certificate chain and private key (PEM) for HTTPS; `None` serves plain HTTP.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Directory for `console.db`.
    pub data_dir: PathBuf,
    /// A session ends after this long without a request (default 15 min).
    pub idle_timeout: Duration,
    /// Consecutive failed logins that lock an account (default 5).
    pub lockout_after: u32,
    /// How long a locked account stays locked (default 30 min).
    pub lockout_for: Duration,
    /// Mark cookies `Secure` (default: when TLS is on; set it behind a TLS proxy too).
    pub secure_cookies: bool,
    /// Extra origins (`https://soc.example`) accepted for state changes, e.g. behind a
    /// reverse proxy that rewrites `Host`.
    pub allowed_origins: Vec<String>,
    /// argon2id cost.
    pub password_cost: PasswordCost,
    /// How often new high/critical alerts are looked for and notified.
    pub notify_interval: Duration,
    /// An agent not heard from for this long shows as offline.
    pub agent_offline_after: Duration,
}

impl ConsoleConfig {
    /// Defaults: 15 min idle timeout, lockout 5 → 30 min, plain HTTP.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        ConsoleConfig {
            listen,
            tls: None,
            data_dir,
            idle_timeout: Duration::from_secs(15 * 60),
            lockout_after: 5,
            lockout_for: Duration::from_secs(30 * 60),
            secure_cookies: false,
            allowed_origins: Vec::new(),
            password_cost: PasswordCost::default(),
            notify_interval: Duration::from_secs(10),
            agent_offline_after: Duration::from_secs(120),
        }
    }

    /// Serves HTTPS with this certificate chain and key (PEM); cookies become `Secure`.
    pub fn with_tls(mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Self {
        self.tls = Some((cert_pem, key_pem));
        self.secure_cookies = true;
        self
    }
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("listen", &self.listen)
            .field("tls", &self.tls.is_some())
            .field("data_dir", &self.data_dir)
            .field("idle_timeout", &self.idle_timeout)
            .field("lockout_after", &self.lockout_after)
            .field("lockout_for", &self.lockout_for)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

/// A running console.
pub struct ConsoleHandle {
    /// Bound address.
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// One-time password of the `admin` account when this start created it: print it
    /// once to the operator (stderr) and forget it. `None` on later starts.
    pub bootstrap_password: Option<String>,
    /// Shared state (tests and the notifier use it).
    pub state: SharedState,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ConsoleHandle {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops serving and waits for the server and background tasks to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// The full router (route table + guard) over `state`; for tests that call it directly.
pub fn router(state: SharedState) -> axum::Router {
    access::router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

/// Opens `console.db`, bootstraps the admin account if there is none, binds `listen`
/// and serves the console until [`ConsoleHandle::shutdown`].
pub async fn start(
    config: ConsoleConfig,
    store: Store,
    metrics: Arc<Metrics>,
    rules: Arc<dyn RuleCatalog>,
) -> Result<ConsoleHandle, ConsoleError> {
    let state = build_state(config, store, metrics, rules).await?;
    let bootstrap_password = bootstrap_admin(&state).await?;
    let listen = state.config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ConsoleError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ConsoleError::Listen {
            addr: listen,
            source,
        })?;
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let app: IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr> =
        router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut tasks = Vec::new();
    let scheme = match &state.config.tls {
        Some((cert, key)) => {
            let tls_config = tls::server_config(cert, key)?;
            let (tls_listener, accept_task) =
                tls::TlsListener::spawn(listener, tls_config, addr, stop(shutdown_rx.clone()));
            tasks.push(accept_task);
            let server = axum::serve(tls_listener.tap_io(|_| ()), app)
                .with_graceful_shutdown(stop(shutdown_rx.clone()));
            tasks.push(tokio::spawn(async move {
                if let Err(error) = server.await {
                    tracing::error!(%error, "console server stopped");
                }
            }));
            "https"
        }
        None => {
            let server =
                axum::serve(listener, app).with_graceful_shutdown(stop(shutdown_rx.clone()));
            tasks.push(tokio::spawn(async move {
                if let Err(error) = server.await {
                    tracing::error!(%error, "console server stopped");
                }
            }));
            "http"
        }
    };
    tasks.push(tokio::spawn(sample_ingest(
        state.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(notify::run_dispatcher(
        state.clone(),
        shutdown_rx,
    )));
    tracing::info!(%addr, scheme, "console listening");
    Ok(ConsoleHandle {
        addr,
        scheme,
        bootstrap_password,
        state,
        shutdown,
        tasks,
    })
}

/// Builds the shared state without serving (tests call the router directly).
pub async fn build_state(
    config: ConsoleConfig,
    store: Store,
    metrics: Arc<Metrics>,
    rules: Arc<dyn RuleCatalog>,
) -> Result<SharedState, ConsoleError> {
    let db = ConsoleDb::open(&config.data_dir.join("console.db"))?;
    let dummy_hash = password::hash_password(&password::random_token(8), config.password_cost)?;
    Ok(Arc::new(ConsoleState {
        config,
        store,
        metrics,
        rules,
        db,
        dummy_hash,
        ingest: IngestSampler::default(),
    }))
}

/// Creates `admin` (系统管理员) with a one-time password when no account exists.
pub async fn bootstrap_admin(state: &ConsoleState) -> Result<Option<String>, ConsoleError> {
    if state.db.user_count().await? > 0 {
        return Ok(None);
    }
    let now = shaobing_wire::now_unix_nano();
    let password = state
        .db
        .create_user(
            BOOTSTRAP_ADMIN,
            "系统管理员",
            Role::Sysadmin,
            "bootstrap",
            state.config.password_cost,
            now,
        )
        .await?;
    audit::record_as(
        state,
        "system",
        "local",
        "user.bootstrap",
        BOOTSTRAP_ADMIN,
        serde_json::json!({ "role": Role::Sysadmin.name() }),
    )
    .await?;
    tracing::warn!(
        user = BOOTSTRAP_ADMIN,
        "console: first start, created the admin account with a one-time password"
    );
    Ok(Some(password))
}

async fn sample_ingest(state: SharedState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(IngestSampler::INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => state.ingest.sample(&state.metrics),
            () = stopped(&mut shutdown) => return,
        }
    }
}
