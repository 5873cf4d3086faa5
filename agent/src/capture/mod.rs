//! Capture sources: each watches one kind of host activity and turns it into
//! [`Event`]s. Sources never touch the network: they hand [`Capture`]s to the
//! spool writer over a channel and carry on.
//!
//! A source that can resume (a log file offset, a journald cursor) attaches a
//! [`Checkpoint`]; the spool stores the events and the checkpoint in one
//! transaction, so after a crash the source restarts exactly after the last
//! event that reached the spool: nothing lost, nothing read twice.

pub mod file;
pub mod login;
pub mod network;

use std::collections::HashMap;
use std::sync::Arc;

use shaobing_wire::v1::{Event, Host};
use tokio::sync::mpsc;

use crate::counters::Counters;

/// A group of events from one source, plus where that source has read up to.
#[derive(Debug, Default)]
pub struct Capture {
    pub events: Vec<Event>,
    pub checkpoint: Option<Checkpoint>,
}

/// A source's resume position, opaque to everyone but that source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Stable key of the source, e.g. `auth_log:/var/log/auth.log`.
    pub source: String,
    /// The source's own serialised position (JSON, a cursor, ...).
    pub position: String,
}

/// What every source gets when it starts.
#[derive(Clone)]
pub struct CaptureContext {
    /// This host, stamped on every event.
    pub host: Host,
    /// Where captures go (the spool writer).
    pub tx: mpsc::Sender<Capture>,
    /// Last committed position of every source, by [`Checkpoint::source`].
    pub positions: Arc<HashMap<String, String>>,
    /// Agent-wide counters (parse errors, drops, ...), reported in heartbeats.
    pub counters: Arc<Counters>,
}
