//! Shaobing host agent.
//!
//! Data flow: `capture/*` → channel → [`batcher`] → [`spool`] (disk) → [`ship`] →
//! collector. Capture never waits on the network; only `ship` talks to it.
//! [`daemon`] wires the parts; [`enroll`] obtains the client certificate;
//! [`heartbeat`] reports the agent's own health through the same path.

pub mod batcher;
pub mod capture;
pub mod config;
pub mod counters;
pub mod daemon;
pub mod enroll;
pub mod heartbeat;
pub mod host;
pub mod ship;
pub mod spool;
