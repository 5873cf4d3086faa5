//! Errors of the console: [`ConsoleError`] for start-up and internal failures, and how
//! each maps to an HTTP response (a page for browsers, JSON for `/api/`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// Everything that can go wrong in the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The console's own SQLite file (`console.db`).
    #[error("console database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The event/alert store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory or another file could not be used.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address asked for.
        addr: std::net::SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TLS certificate or key was refused.
    #[error("console TLS: {0}")]
    Tls(String),
    /// Password hashing failed (bad parameters).
    #[error("password hashing: {0}")]
    PasswordHash(String),
    /// A blocking task panicked or was cancelled.
    #[error("console task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The database lock was poisoned by a panic in another task.
    #[error("console database lock poisoned")]
    Poisoned,
    /// A request the console refuses (bad input); the text is shown to the operator.
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A notification could not be delivered.
    #[error("notification delivery: {0}")]
    Delivery(String),
    /// The change conflicts with the current state (e.g. a rule change the loader
    /// refused); the text is shown to the operator.
    #[error("{0}")]
    Conflict(String),
}

impl ConsoleError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Conflict(_) => StatusCode::CONFLICT,
            ConsoleError::Store(StoreError::InvalidQuery(_)) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Text safe to show to an operator: internal details are logged, not shown.
    pub fn public_message(&self) -> String {
        match self {
            ConsoleError::Invalid(m) | ConsoleError::Conflict(m) => m.clone(),
            ConsoleError::NotFound(m) => format!("not found: {m}"),
            ConsoleError::Store(StoreError::InvalidQuery(m)) => m.clone(),
            _ => "internal error".to_owned(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "console request failed");
        }
        let body = serde_json::json!({ "error": self.public_message() });
        (status, axum::Json(body)).into_response()
    }
}

/// Result of console operations.
pub type ConsoleResult<T> = Result<T, ConsoleError>;
