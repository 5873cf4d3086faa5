//! The agent ↔ collector contract, and the only crate both sides link.
//!
//! - [`v1`]: the protobuf messages and gRPC services generated from `proto/shaobing/v1/`.
//! - [`limits`]: framing limits both sides enforce.
//! - [`tls`]: the one TLS stack (rustls + ring, TLS 1.3) used for mutual TLS.
//! - [`names`]: stable string names for the protobuf enums (storage, JSON, Sigma fields).

pub mod names;
pub mod tls;

/// Generated protobuf types and tonic services, package `shaobing.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("shaobing.v1");
}

/// Framing limits. A frame over these is rejected and counted, never buffered.
pub mod limits {
    /// Largest encoded gRPC message either side accepts (one batch).
    pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
    /// Most events the agent puts in one batch.
    pub const MAX_EVENTS_PER_BATCH: usize = 2_000;
    /// Longest `raw` line kept in an event; longer lines are truncated (and marked).
    pub const MAX_RAW_BYTES: usize = 16 * 1024;
}

/// Current time in unix nanoseconds. Only for callers that own a clock (not `detect`).
pub fn now_unix_nano() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}
