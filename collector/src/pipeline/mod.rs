//! The pipeline between ingest and store: validate a batch, stamp the agent's
//! identity on every event, deduplicate by `(agent_id, seq)`, run detection,
//! and hand the batch to the batching [`writer`]; the ack is built from the
//! writer's answer.
//!
//! A stream's batches are [`Pipeline::accept`]ed in order (dedup and detection
//! are sequential per agent) while earlier ones are still being written, and
//! [`Pipeline::complete`] turns each receipt into an ack, in order. An ack
//! exists only after the store wrote the batch; a batch that failed is never
//! acked and the agent resends it.

pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use shaobing_detect::{Alert, Detector};
use shaobing_wire::limits::MAX_EVENTS_PER_BATCH;
use shaobing_wire::v1::{Ack, AckStatus, Batch, Host, event::Body};
use tokio::sync::Mutex as AsyncMutex;

use crate::metrics::Metrics;
use crate::store::{AgentRecord, Store, StoreError, WriteOutcome};
use writer::{BatchWriter, WriteError, WriteReceipt, WriterConfig};

pub struct Pipeline {
    pub store: Store,
    pub detector: std::sync::Mutex<Detector>,
    pub metrics: Arc<Metrics>,
    writer: BatchWriter,
    /// Highest seq accepted per agent (seeded from `Store::last_seq`), one lock
    /// per agent so one agent's batches are accepted strictly in order.
    last_seq: std::sync::Mutex<HashMap<String, Arc<AsyncMutex<Option<u64>>>>>,
}

/// A batch that passed the checks, waiting for the store.
pub struct InFlight {
    seq: u64,
    events: u64,
    alerts: u64,
    status: Option<(Host, shaobing_wire::v1::AgentStatus, i64)>,
    receipt: WriteReceipt,
}

/// What accepting a batch produced.
pub enum Accepted {
    /// Answered without writing (duplicate, rejected).
    Ack(Ack),
    /// Being written; call [`Pipeline::complete`] for the ack.
    Writing(Box<InFlight>),
}

impl Pipeline {
    pub fn new(store: Store, detector: Detector, metrics: Arc<Metrics>) -> Self {
        Self::with_writer(store, detector, metrics, WriterConfig::default())
    }

    pub fn with_writer(
        store: Store,
        detector: Detector,
        metrics: Arc<Metrics>,
        config: WriterConfig,
    ) -> Self {
        let writer = BatchWriter::spawn(store.clone(), config, metrics.clone());
        Self {
            store,
            detector: std::sync::Mutex::new(detector),
            metrics,
            writer,
            last_seq: Default::default(),
        }
    }

    fn agent_slot(&self, agent_id: &str) -> Arc<AsyncMutex<Option<u64>>> {
        let mut map = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(agent_id.to_string())
            .or_insert_with(|| Arc::new(AsyncMutex::new(None)))
            .clone()
    }

    /// A new stream from `agent_id` begins: forget what was accepted but maybe
    /// not stored (re-read from the store) and clear the writer's failure mark.
    pub async fn stream_started(&self, agent_id: &str) {
        let slot = self.agent_slot(agent_id);
        let mut last = slot.lock().await;
        *last = None;
        self.writer.reset(agent_id).await;
    }

    /// Checks, stamps, deduplicates and runs detection on one batch from
    /// `agent_id` (already authenticated by TLS), then queues it for the store.
    pub async fn accept(&self, agent_id: &str, mut batch: Batch) -> Result<Accepted, StoreError> {
        let seq = batch.seq;
        if batch.events.len() > MAX_EVENTS_PER_BATCH {
            self.metrics.inc_reject("oversize_batch");
            return Ok(Accepted::Ack(ack(
                seq,
                AckStatus::Rejected,
                "batch has too many events",
            )));
        }
        if !batch.agent_id.is_empty() && batch.agent_id != agent_id {
            self.metrics.inc_reject("identity_mismatch");
            tracing::warn!(%agent_id, claimed = %batch.agent_id, "batch claims another agent id");
            return Ok(Accepted::Ack(ack(
                seq,
                AckStatus::Rejected,
                "agent_id does not match the client certificate",
            )));
        }

        let slot = self.agent_slot(agent_id);
        let mut last = slot.lock().await;
        if last.is_none() {
            *last = Some(self.store.last_seq(agent_id).await?.unwrap_or(0));
        }
        if seq <= last.unwrap_or(0) {
            self.metrics.dedup_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Accepted::Ack(ack(seq, AckStatus::Duplicate, "")));
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
        // Detection is CPU-bound (milliseconds per batch): keep it off the
        // runtime's worker so TLS streams and the writer keep moving meanwhile.
        let alerts = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.detect(&batch))
            }
            _ => self.detect(&batch),
        };
        let (events, alert_count) = (batch.events.len() as u64, alerts.len() as u64);
        let receipt = self
            .writer
            .submit(agent_id, seq, batch.events, alerts)
            .await;
        *last = Some(seq);
        Ok(Accepted::Writing(Box::new(InFlight {
            seq,
            events,
            alerts: alert_count,
            status,
            receipt,
        })))
    }

    /// Waits for the store and builds the ack. An error means the batch is not
    /// stored: the stream must end so the agent resends.
    pub async fn complete(
        &self,
        agent_id: &str,
        peer: &SocketAddr,
        in_flight: Box<InFlight>,
    ) -> Result<Ack, WriteError> {
        let outcome = in_flight
            .receipt
            .await
            .unwrap_or(Err(WriteError::Stopped))?;
        if let Some((host, s, time)) = in_flight.status {
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
        let status = match outcome {
            WriteOutcome::Stored => {
                self.metrics.batches_stored.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .events_stored
                    .fetch_add(in_flight.events, Ordering::Relaxed);
                self.metrics
                    .alerts_raised
                    .fetch_add(in_flight.alerts, Ordering::Relaxed);
                AckStatus::Stored
            }
            WriteOutcome::Duplicate => {
                self.metrics.dedup_hits.fetch_add(1, Ordering::Relaxed);
                AckStatus::Duplicate
            }
        };
        Ok(ack(in_flight.seq, status, ""))
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

fn ack(seq: u64, status: AckStatus, why: &str) -> Ack {
    Ack {
        seq,
        status: status as i32,
        error: why.to_string(),
    }
}
