//! Batcher: drains the capture channel and closes batches into the spool at
//! `batch_max_events` events or `batch_max_delay_ms` after the first event,
//! whichever comes first. Checkpoints ride with the batch that holds their
//! events; a checkpoint with no events is committed on its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use shaobing_wire::v1::Event;
use tokio::sync::{Notify, mpsc};

use crate::capture::{Capture, Checkpoint};
use crate::counters::Counters;
use crate::spool::Spool;

pub struct Batcher {
    pub spool: Spool,
    pub agent_id: String,
    pub max_events: usize,
    pub max_delay: Duration,
    /// Woken after each batch is spooled (the shipper waits on it).
    pub spooled: Arc<Notify>,
    pub counters: Arc<Counters>,
}

impl Batcher {
    /// Runs until every capture sender is dropped, then flushes what is left.
    pub async fn run(self, mut rx: mpsc::Receiver<Capture>) {
        let mut events: Vec<Event> = Vec::new();
        let mut checkpoints: BTreeMap<String, String> = BTreeMap::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let next = match deadline {
                Some(d) => tokio::select! {
                    c = rx.recv() => Some(c),
                    _ = tokio::time::sleep_until(d) => None,
                },
                None => Some(rx.recv().await),
            };
            match next {
                Some(Some(capture)) => {
                    if events.is_empty() && !capture.events.is_empty() {
                        deadline = Some(tokio::time::Instant::now() + self.max_delay);
                    }
                    let had_events = !capture.events.is_empty();
                    events.extend(capture.events);
                    if let Some(cp) = capture.checkpoint {
                        checkpoints.insert(cp.source, cp.position);
                    }
                    if events.len() >= self.max_events {
                        self.flush(&mut events, &mut checkpoints).await;
                        deadline = None;
                    } else if !had_events && events.is_empty() && !checkpoints.is_empty() {
                        self.flush(&mut events, &mut checkpoints).await;
                    }
                }
                Some(None) => {
                    self.flush(&mut events, &mut checkpoints).await;
                    return;
                }
                None => {
                    self.flush(&mut events, &mut checkpoints).await;
                    deadline = None;
                }
            }
        }
    }

    async fn flush(&self, events: &mut Vec<Event>, checkpoints: &mut BTreeMap<String, String>) {
        let cps: Vec<Checkpoint> = std::mem::take(checkpoints)
            .into_iter()
            .map(|(source, position)| Checkpoint { source, position })
            .collect();
        if events.is_empty() {
            if !cps.is_empty()
                && let Err(e) = self.spool.commit_positions(cps).await
            {
                self.counters.inc("spool.errors");
                tracing::error!(error = %e, "spool: positions not committed");
            }
            return;
        }
        // Never exceed the per-batch limit even if one capture was huge.
        let mut all = std::mem::take(events);
        while !all.is_empty() {
            let rest = if all.len() > self.max_events {
                all.split_off(self.max_events)
            } else {
                Vec::new()
            };
            let cps_now = if rest.is_empty() {
                cps.clone()
            } else {
                Vec::new()
            };
            let n = all.len() as u64;
            match self.spool.append(self.agent_id.clone(), all, cps_now).await {
                Ok(_) => {
                    self.counters.add("spool.events", n);
                    self.spooled.notify_one();
                }
                Err(e) => {
                    // The disk is failing (full, read-only): count the loss loudly.
                    self.counters.add("spool.lost_events", n);
                    tracing::error!(error = %e, events = n, "spool write failed; events lost");
                }
            }
            all = rest;
        }
    }
}
