//! Ingest: the collector's network edge. Two TLS listeners:
//!
//! - the **data port** (mutual TLS, client certificate required) serves
//!   `Ingest.Publish`; the agent id is read from the verified certificate here,
//!   once, and travels with the connection as [`AgentIdentity`];
//! - the **enrollment port** (server-authenticated TLS) serves `Enrollment.Enroll`.
//!
//! Handshake failures (no certificate, wrong CA, revoked) are refused before any
//! gRPC byte is read, counted, and logged with the peer address.

mod enroll;
mod listener;
mod publish;

pub use enroll::EnrollService;
pub use listener::{AgentIdentity, Listener, spawn_tls_listener};
pub use publish::PublishService;
