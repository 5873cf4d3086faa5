//! Heartbeats: every `heartbeat_secs` an `AgentStatus` event (version, spool
//! depth, drops, CPU%, RSS, counters) goes through the spool like any event,
//! so the collector sees drops and silence (an offline agent stops beating).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shaobing_wire::v1::{AgentStatus, Event, Host, event::Body};
use tokio::sync::mpsc;

use crate::capture::Capture;
use crate::counters::Counters;
use crate::spool::Spool;

pub async fn run(
    host: Host,
    spool: Spool,
    counters: Arc<Counters>,
    tx: mpsc::Sender<Capture>,
    every: Duration,
) {
    let mut last = (Instant::now(), crate::host::cpu_ticks());
    loop {
        let stats = spool.stats().await.unwrap_or_default();
        let now = (Instant::now(), crate::host::cpu_ticks());
        let secs = now.0.duration_since(last.0).as_secs_f64().max(0.001);
        // Linux reports CPU time in 100 Hz ticks on every mainstream architecture.
        let cpu_percent = (now.1.saturating_sub(last.1) as f64 / 100.0) / secs * 100.0;
        last = now;
        let status = AgentStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            spool_depth: stats.batches,
            spool_bytes: stats.bytes,
            dropped_total: stats.dropped_events + counters.get("spool.lost_events"),
            cpu_percent,
            rss_bytes: crate::host::rss_bytes(),
            os: host.os.clone(),
            counters: counters.snapshot().into_iter().collect(),
        };
        let event = Event {
            time_unix_nano: shaobing_wire::now_unix_nano(),
            host: Some(host.clone()),
            source: "agent".into(),
            body: Some(Body::Status(status)),
            ..Default::default()
        };
        let capture = Capture {
            events: vec![event],
            checkpoint: None,
        };
        if tx.send(capture).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
