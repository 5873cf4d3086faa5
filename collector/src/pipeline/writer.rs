//! The batching inserter: one task that merges batches from every agent into
//! one `Store::write_batches` call per flush (at `flush_rows` events or
//! `flush_interval` after the first pending batch, whichever comes first), then
//! answers each batch's caller. A few large inserts instead of one per batch is
//! what ClickHouse wants, and the bounded queue in front of it is the
//! back-pressure: when the store is slow, `submit` waits, the ingest stream
//! stops reading, and HTTP/2 flow control slows the agents — their spools hold
//! the rest.
//!
//! Order per agent: batches are written in submission order, and once a flush
//! fails every later batch of the same agent is failed unwritten ("poisoned")
//! until the agent's next stream sends a reset, so the store never holds seq
//! N+1 without N (its dedup trusts "seq ≤ last stored" to mean stored).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shaobing_detect::Alert;
use shaobing_wire::v1::Event;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::store::{BatchWrite, Store, StoreError, WriteOutcome};

/// Flush thresholds.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    pub flush_rows: usize,
    pub flush_interval: Duration,
    /// Batches waiting for the writer before `submit` blocks.
    pub queue_batches: usize,
    /// A store call slower than this fails the flush (the agents resend).
    pub store_timeout: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            flush_rows: 100_000,
            flush_interval: Duration::from_millis(500),
            queue_batches: 256,
            store_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a batch was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("store: {0}")]
    Store(String),
    #[error("store did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the writer stopped")]
    Stopped,
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e.to_string())
    }
}

struct Pending {
    /// When `submit` queued it: the flush deadline runs from the oldest pending batch.
    queued_at: tokio::time::Instant,
    agent_id: String,
    seq: u64,
    events: Vec<Event>,
    alerts: Vec<Alert>,
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

enum Message {
    Write(Pending),
    /// A new stream of this agent starts: flush, then forget its failures.
    Reset(String),
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct BatchWriter {
    tx: mpsc::Sender<Message>,
}

/// The answer to one submitted batch, awaited after later batches were submitted.
pub type WriteReceipt = oneshot::Receiver<Result<WriteOutcome, WriteError>>;

impl BatchWriter {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Store, config: WriterConfig, metrics: Arc<Metrics>) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_batches.max(1));
        tokio::spawn(run(store, config, metrics, rx));
        Self { tx }
    }

    /// Queues a batch (waits while the queue is full) and returns its receipt.
    pub async fn submit(
        &self,
        agent_id: &str,
        seq: u64,
        events: Vec<Event>,
        alerts: Vec<Alert>,
    ) -> WriteReceipt {
        let (reply, receipt) = oneshot::channel();
        let pending = Pending {
            queued_at: tokio::time::Instant::now(),
            agent_id: agent_id.to_string(),
            seq,
            events,
            alerts,
            reply,
        };
        if let Err(mpsc::error::SendError(Message::Write(p))) =
            self.tx.send(Message::Write(pending)).await
        {
            let _ = p.reply.send(Err(WriteError::Stopped));
        }
        receipt
    }

    /// Marks the start of a new stream from `agent_id` (a barrier in the queue).
    pub async fn reset(&self, agent_id: &str) {
        let _ = self.tx.send(Message::Reset(agent_id.to_string())).await;
    }
}

async fn run(
    store: Store,
    config: WriterConfig,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut poisoned: HashSet<String> = HashSet::new();
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut barrier = None;
        match first {
            Message::Reset(agent) => {
                poisoned.remove(&agent);
                continue;
            }
            Message::Write(p) => pending.push(p),
        }
        let mut rows = pending[0].events.len();
        // Group commit: batches that queued up during the previous flush are
        // already past (part of) their wait, so under load the next flush takes
        // everything queued at once instead of waiting a full interval again.
        let deadline = pending[0].queued_at + config.flush_interval;
        while rows < config.flush_rows {
            tokio::select! {
                biased;
                next = rx.recv() => match next {
                    Some(Message::Write(p)) => {
                        rows += p.events.len();
                        pending.push(p);
                    }
                    Some(Message::Reset(agent)) => {
                        barrier = Some(agent);
                        break;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // Batches of agents whose earlier write failed are refused unwritten.
        let (refused, ready): (Vec<Pending>, Vec<Pending>) = pending
            .drain(..)
            .partition(|p| poisoned.contains(&p.agent_id));
        for p in refused {
            let _ = p.reply.send(Err(WriteError::Store(
                "an earlier batch of this agent failed".into(),
            )));
        }
        pending = ready;
        if !pending.is_empty()
            && let Err(failed) = flush(&store, &config, &metrics, &mut pending).await
        {
            poisoned.extend(failed);
        }
        if let Some(agent) = barrier {
            poisoned.remove(&agent);
        }
    }
}

/// Writes and answers `pending`; on failure returns the agents involved.
async fn flush(
    store: &Store,
    config: &WriterConfig,
    metrics: &Metrics,
    pending: &mut Vec<Pending>,
) -> Result<(), Vec<String>> {
    let writes: Vec<BatchWrite<'_>> = pending
        .iter()
        .map(|p| BatchWrite {
            agent_id: &p.agent_id,
            seq: p.seq,
            events: &p.events,
            alerts: &p.alerts,
        })
        .collect();
    let started = std::time::Instant::now();
    // `write_batches` is idempotent per (agent_id, seq), so a transient failure
    // (a pooled connection the server closed, a restart) is retried here before
    // the agents are made to resend.
    let mut result = Err(WriteError::Stopped);
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
        }
        let write = store.write_batches(&writes);
        result = match tokio::time::timeout(config.store_timeout, write).await {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(e)) => Err(WriteError::from(e)),
            Err(_) => Err(WriteError::Timeout(config.store_timeout)),
        };
        match &result {
            Ok(_) | Err(WriteError::Timeout(_)) => break,
            Err(e) => tracing::debug!(error = %e, attempt, "store flush failed; retrying"),
        }
    }
    drop(writes);
    metrics
        .store_latency_us_total
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    metrics.store_flushes.fetch_add(1, Ordering::Relaxed);
    match result {
        Ok(outcomes) => {
            for (p, outcome) in pending.drain(..).zip(outcomes) {
                let _ = p.reply.send(Ok(outcome));
            }
            Ok(())
        }
        Err(e) => {
            metrics.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, batches = pending.len(), "store flush failed; agents will resend");
            let mut agents = Vec::new();
            for p in pending.drain(..) {
                agents.push(p.agent_id.clone());
                let _ = p.reply.send(Err(e.clone()));
            }
            Err(agents)
        }
    }
}
