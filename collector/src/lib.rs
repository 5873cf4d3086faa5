//! Shaobing collector.
//!
//! Data flow, one module each: [`ingest`] (TLS listeners, enrollment, the
//! Publish stream) → [`pipeline`] (identity, dedup, detection, ack after store)
//! → [`store`] (ClickHouse or the embedded SQLite file; the only database
//! code) → [`cli`] (operator commands over the store). [`pki`] owns the fleet
//! CA, tokens and revocation, [`rules`] reads rule directories for `shaobing_detect`
//! ([`rules_reload`] reloads them while serving, [`rule_admin`] applies operators'
//! changes: enable/disable, filters, rule tests), [`hunt`] runs detection over files,
//! [`fleet`] raises alerts for agents that went silent, [`retention`] drops
//! expired data while serving, [`metrics`] counts and serves Prometheus text,
//! [`console`] is the operators' web UI and JSON API, [`server`] wires it all
//! for `serve`, and [`demo`] runs the whole path locally. Still to come, in its
//! own module: `reports/` (等保 2.0 compliance reports).

pub mod cli;
pub mod console;
pub mod demo;
pub mod detect_state;
pub mod fleet;
pub mod hunt;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod pki;
pub mod retention;
pub mod rule_admin;
pub mod rules;
pub mod rules_reload;
pub mod server;
pub mod store;
