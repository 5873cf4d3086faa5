//! Network capture: connections, flows, DNS lookups, ICMP and listening sockets,
//! as [`NetworkEvent`](shaobing_wire::v1::NetworkEvent)s.
//!
//! # Data flow
//!
//! ```text
//! per interface (blocking thread)                         one blocking thread
//! pnet AF_PACKET ─▶ decode ─▶ dns_queries / flows ─▶ sink ─▶ enrich ─▶ CaptureContext.tx
//!  (socket + BPF)   (pure)    (bounded, LRU)       (budget)  (process)
//! /proc/net/{tcp,udp}{,6} ─▶ listeners (poll, checkpointed set) ───────▶ CaptureContext.tx
//! ```
//!
//! - [`socket`] opens the AF_PACKET socket with the [`bpf`] filter, [`capture`]
//!   runs pnet's channel on it and reads kernel drops (`network.kernel_drops`).
//! - [`decode`] is the pure, fuzzed packet decoder; malformed frames are counted
//!   (`network.malformed`, `network.fragments`, `network.not_ip`) and skipped.
//! - [`processor`] routes UDP port 53 to [`dns_queries`] (one `dns_query` per
//!   lookup) and the rest to [`flows`] (`connect`/`accept`/`icmp` at the start of
//!   a conversation, one `flow` summary at its end) — never one event per packet.
//!   Flow state is capped ([`lru`]); evictions are counted (`network.flows_evicted`).
//! - [`capture::RecordSink`] enforces the per-interface event budget
//!   (`network.events_rate_limited`) and never blocks capture
//!   (`network.events_dropped` when the enricher falls behind).
//! - [`enrich`] attaches the local process ([`proc_net`] + [`procs`]) and builds
//!   the wire events (source `packet`); [`listeners`] reports `listen` /
//!   `listen_closed` (source `proc_net`). Event ids are left to the spool.
//!
//! Privileges: `CAP_NET_RAW` for capture; process names of other users'
//! sockets need `CAP_DAC_READ_SEARCH` + `CAP_SYS_PTRACE` (see
//! `deploy/network-capabilities.md`).

pub mod bpf;
pub mod capture;
pub mod config;
pub mod decode;
pub mod dns;
pub mod dns_queries;
pub mod enrich;
pub mod flows;
pub mod frames;
pub mod listeners;
pub mod lru;
pub mod proc_net;
pub mod processor;
pub mod procs;
pub mod record;
pub mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pnet::datalink::{self, NetworkInterface};
use tokio::task::JoinHandle;

pub use config::NetworkConfig;
pub use decode::{DecodeError, Packet, decode};

use crate::capture::CaptureContext;
use capture::{InterfaceCapture, RecordSink};
use processor::LinkType;

/// Record batches queued between the capture threads and the enricher.
const RECORD_QUEUE: usize = 1024;

/// Starts capture on the configured interfaces, the enricher and the listener
/// poller. Aborting any returned task stops them all (the blocking threads see
/// the stop flag within a quarter second, summarise their open flows and end).
pub fn spawn(config: &NetworkConfig, ctx: &CaptureContext) -> Vec<JoinHandle<()>> {
    if !config.enabled {
        tracing::info!("network capture disabled");
        return Vec::new();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();

    let interfaces = select_interfaces(config);
    if interfaces.is_empty() {
        tracing::warn!(configured = ?config.interfaces, "no interface to capture on");
    } else {
        let (records_tx, records_rx) = std::sync::mpsc::sync_channel(RECORD_QUEUE);
        let max_flows = (config.max_flows / interfaces.len()).max(1);
        for (interface, link) in interfaces {
            let capture = InterfaceCapture {
                interface,
                link,
                config: config.clone(),
                max_flows,
                counters: ctx.counters.clone(),
                sink: RecordSink::new(records_tx.clone(), config.max_events_per_sec),
                stop: stop.clone(),
            };
            threads.push(tokio::task::spawn_blocking(move || capture.run()));
        }
        drop(records_tx);
        let owners = config.process_lookup.then(|| {
            enrich::SocketOwners::new(
                proc_net::SocketTables::default(),
                procs::ProcessTable::default(),
            )
        });
        let (host, tx) = (ctx.host.clone(), ctx.tx.clone());
        threads.push(tokio::task::spawn_blocking(move || {
            enrich::run(records_rx, host, tx, owners);
        }));
    }

    let checkpoint = ctx
        .positions
        .get(listeners::CHECKPOINT_SOURCE)
        .map(String::as_str);
    let processes = config.process_lookup.then(procs::ProcessTable::default);
    let watch =
        listeners::ListenerWatch::new(proc_net::SocketTables::default(), processes, checkpoint);
    let interval = Duration::from_secs(config.listener_poll_secs.max(1));
    let (host, tx, listener_stop) = (ctx.host.clone(), ctx.tx.clone(), stop.clone());
    threads.push(tokio::task::spawn_blocking(move || {
        listeners::run(watch, host, tx, interval, listener_stop);
    }));

    threads
        .into_iter()
        .map(|thread| {
            let guard = StopOnDrop(stop.clone());
            tokio::spawn(async move {
                let _guard = guard;
                let _ = thread.await;
            })
        })
        .collect()
}

/// Sets the shared stop flag when the task holding it ends or is aborted.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The interfaces to capture on with their framing: the configured ones, or
/// every interface that is up and not loopback. Unknown names and link types the
/// decoder cannot read are skipped with a warning.
fn select_interfaces(config: &NetworkConfig) -> Vec<(NetworkInterface, LinkType)> {
    let available = datalink::interfaces();
    let chosen: Vec<NetworkInterface> = if config.interfaces.is_empty() {
        available
            .into_iter()
            .filter(|interface| interface.is_up() && !interface.is_loopback())
            .collect()
    } else {
        config
            .interfaces
            .iter()
            .filter_map(|name| {
                let found = available
                    .iter()
                    .find(|interface| &interface.name == name)
                    .cloned();
                if found.is_none() {
                    tracing::warn!(interface = %name, "configured interface not found");
                }
                found
            })
            .collect()
    };
    chosen
        .into_iter()
        .filter_map(|interface| match capture::link_type(&interface) {
            Some(link) => Some((interface, link)),
            None => {
                tracing::warn!(interface = %interface.name, "link type not supported; not capturing");
                None
            }
        })
        .collect()
}
