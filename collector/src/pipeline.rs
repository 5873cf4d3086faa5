//! The pipeline between ingest and store: validate a batch, stamp the agent's
//! identity on every event, deduplicate by `(agent_id, seq)`, run detection,
//! store events and alerts together, and produce the ack.
//!
//! Order matters: the ack is built only after `Store::write_batch` returned, so
//! an acked batch is durable; a batch that failed to store is never acked and
//! the agent resends it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shaobing_detect::{Alert, Detector};
use shaobing_wire::limits::MAX_EVENTS_PER_BATCH;
use shaobing_wire::v1::{Ack, AckStatus, Batch, event::Body};
use tokio::sync::Mutex as AsyncMutex;

use crate::metrics::Metrics;
use crate::store::{AgentRecord, Store, StoreError, WriteOutcome};

pub struct Pipeline {
    pub store: Store,
    pub detector: std::sync::Mutex<Detector>,
    pub metrics: Arc<Metrics>,
    /// Last stored seq per agent (a cache of `Store::last_seq`), one lock per agent
    /// so one agent's batches are handled strictly in order.
    last_seq: std::sync::Mutex<HashMap<String, Arc<AsyncMutex<Option<u64>>>>>,
}

impl Pipeline {
    pub fn new(store: Store, detector: Detector, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            detector: std::sync::Mutex::new(detector),
            metrics,
            last_seq: Default::default(),
        }
    }

    fn agent_slot(&self, agent_id: &str) -> Arc<AsyncMutex<Option<u64>>> {
        let mut map = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(agent_id.to_string())
            .or_insert_with(|| Arc::new(AsyncMutex::new(None)))
            .clone()
    }

    /// Handles one batch from `agent_id` (already authenticated by TLS).
    pub async fn handle_batch(
        &self,
        agent_id: &str,
        peer: &SocketAddr,
        mut batch: Batch,
    ) -> Result<Ack, StoreError> {
        let seq = batch.seq;
        if batch.events.len() > MAX_EVENTS_PER_BATCH {
            self.metrics.inc_reject("oversize_batch");
            return Ok(rejected(seq, "batch has too many events"));
        }
        if !batch.agent_id.is_empty() && batch.agent_id != agent_id {
            self.metrics.inc_reject("identity_mismatch");
            tracing::warn!(%agent_id, claimed = %batch.agent_id, "batch claims another agent id");
            return Ok(rejected(
                seq,
                "agent_id does not match the client certificate",
            ));
        }

        let slot = self.agent_slot(agent_id);
        let mut last = slot.lock().await;
        if last.is_none() {
            *last = Some(self.store.last_seq(agent_id).await?.unwrap_or(0));
        }
        if seq <= last.unwrap_or(0) {
            self.metrics.dedup_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Ack {
                seq,
                status: AckStatus::Duplicate as i32,
                error: String::new(),
            });
        }

        let mut status = None;
        for (i, event) in batch.events.iter_mut().enumerate() {
            let host = event.host.get_or_insert_with(Default::default);
            host.agent_id = agent_id.to_string();
            if event.event_id.is_empty() {
                event.event_id = format!("{seq}-{i}");
            }
            if let Some(Body::Status(s)) = &event.body {
                status = Some((host.clone(), s.clone(), event.time_unix_nano));
            }
        }
        let alerts = self.detect(&batch);

        let started = std::time::Instant::now();
        let outcome = self
            .store
            .write_batch(agent_id, seq, &batch.events, &alerts)
            .await
            .inspect_err(|_| {
                self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            })?;
        self.metrics
            .store_latency_us_total
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        *last = Some(seq);
        drop(last);

        if let Some((host, s, time)) = status {
            let record = AgentRecord {
                agent_id: agent_id.to_string(),
                hostname: host.hostname,
                ips: if host.ips.is_empty() {
                    vec![peer.ip().to_string()]
                } else {
                    host.ips
                },
                os: s.os,
                version: s.version,
                first_seen_unix_nano: time,
                last_seen_unix_nano: time,
                status: "online".into(),
            };
            if let Err(e) = self.store.upsert_agent(&record).await {
                tracing::warn!(%agent_id, error = %e, "agent status not recorded");
            }
        }

        let ack_status = match outcome {
            WriteOutcome::Stored => {
                self.metrics.batches_stored.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .events_stored
                    .fetch_add(batch.events.len() as u64, Ordering::Relaxed);
                self.metrics
                    .alerts_raised
                    .fetch_add(alerts.len() as u64, Ordering::Relaxed);
                AckStatus::Stored
            }
            WriteOutcome::Duplicate => {
                self.metrics.dedup_hits.fetch_add(1, Ordering::Relaxed);
                AckStatus::Duplicate
            }
        };
        Ok(Ack {
            seq,
            status: ack_status as i32,
            error: String::new(),
        })
    }

    /// Runs every event through detection; an alert updated several times in one
    /// batch is kept once, in its latest state.
    fn detect(&self, batch: &Batch) -> Vec<Alert> {
        let mut detector = self.detector.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_id: HashMap<String, Alert> = HashMap::new();
        let mut order = Vec::new();
        for event in &batch.events {
            for alert in detector.process(event) {
                if !by_id.contains_key(&alert.alert_id) {
                    order.push(alert.alert_id.clone());
                }
                by_id.insert(alert.alert_id.clone(), alert);
            }
        }
        order
            .into_iter()
            .filter_map(|id| by_id.remove(&id))
            .collect()
    }
}

fn rejected(seq: u64, why: &str) -> Ack {
    Ack {
        seq,
        status: AckStatus::Rejected as i32,
        error: why.to_string(),
    }
}
