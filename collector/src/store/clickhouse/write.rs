//! Batch writes: exactly once per `(agent_id, seq)` without transactions, many batches per
//! call with a constant number of `INSERT`s.
//!
//! ClickHouse has no transactions, so exactly-once is built from the `batches` bookkeeping
//! table (persisted, so it survives collector restarts). For one call of `write_batches`:
//! 1. the state of every agent in the call is read in one query: a stored (`state = 1`)
//!    seq `>=` a batch's seq makes that batch a duplicate; a `state = 0` row for its seq means
//!    an earlier write of it was interrupted;
//! 2. one insert of `state = 0` ("being written") rows for the new batches, before any data;
//! 3. one insert each of events, check results and alerts for all batches together;
//! 4. one insert of `state = 1` ("stored") rows; only then are the batches acked.
//!
//! So a call costs at most five `INSERT`s whatever the number of batches and agents. Inside a
//! call, batches are decided in order as if written one by one: a repeated `(agent_id, seq)`,
//! or a seq not above one stored earlier in the call, is a duplicate.
//!
//! If a write dies between 2 and 4 (collector crash, timeout, server restart) the agent sends
//! the batch again and step 1 finds the `state = 0` row: the events of that `(agent_id, seq)`
//! already present (searched only in the day partitions the batch covers) are skipped and
//! only the missing ones are inserted. Alerts are upserts, so inserting them again is harmless.

use std::collections::HashMap;

use super::ClickHouseStore;
use super::alerts::alert_rows;
use super::rows::{AlertRow, BATCH_STORED, BATCH_WRITING, BatchRow, BatchStateRow, CheckRow};
use super::sql::{Bound, Statement, StatementId, any_of};
use crate::store::event_row::{EventRow, check_records, date_days, datetime_seconds};
use crate::store::{PreparedBatch, StoreError, WriteOutcome};

/// Agents whose state is read by one query. The per-agent `(agent_id = ? AND seq >= ?)`
/// conditions keep the read on the primary key, but 18.16's index analysis grows faster than
/// linearly with their number (measured: 32 agents 14 ms, 200 agents 93 ms), so bigger calls
/// are split into chunks that run concurrently.
const AGENTS_PER_STATE_QUERY: usize = 32;

/// What the `batches` table says about one agent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct AgentState {
    /// Highest stored seq (among those at or above the lowest seq asked about).
    last_stored: Option<u64>,
    /// Seqs asked about that have a "being written" row.
    writing: Vec<u64>,
}

/// What to do with one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Already stored (or not above a stored seq): write nothing.
    Duplicate,
    /// Never seen: mark, write, mark stored.
    Fresh,
    /// An earlier write was interrupted: write only what is missing, mark stored.
    Resume,
}

/// Decides every batch in order, as if they were written one by one.
fn plan(batches: &[(&str, u64)], states: &HashMap<String, AgentState>) -> Vec<Plan> {
    let mut last: HashMap<&str, Option<u64>> = HashMap::new();
    batches
        .iter()
        .map(|&(agent_id, seq)| {
            let state = states.get(agent_id);
            let last_stored = last
                .entry(agent_id)
                .or_insert_with(|| state.and_then(|s| s.last_stored));
            if last_stored.is_some_and(|stored| seq <= stored) {
                return Plan::Duplicate;
            }
            *last_stored = Some(seq);
            if state.is_some_and(|s| s.writing.contains(&seq)) {
                Plan::Resume
            } else {
                Plan::Fresh
            }
        })
        .collect()
}

/// Reads the state of `agents` (each with the lowest seq asked about): one row per agent that
/// has bookkeeping rows at or above that seq.
fn batch_state(agents: &[(&str, u64)], seqs: Vec<u64>) -> Statement {
    let (filter, binds) = any_of(agents, "agent_id = ? AND seq >= ?", |&(agent, seq)| {
        [Bound::Text(agent.to_owned()), Bound::Unsigned(seq)]
    });
    Statement::new(
        StatementId::BatchState,
        format!(
            "SELECT agent_id, maxIf(seq, state = 1), countIf(state = 1),
    arraySort(groupUniqArrayIf(seq, state = 0 AND has(?, seq)))
 FROM batches WHERE {filter} GROUP BY agent_id ORDER BY agent_id"
        ),
    )
    .bind([Bound::UnsignedList(seqs)])
    .bind(binds)
}

/// Ids already stored in `table` for the given `(agent_id, seq)`s, in the days `first..=last`.
fn stored_ids(
    id: StatementId,
    table: &str,
    batches: &[(&str, u64)],
    days: (u16, u16),
) -> Statement {
    let (filter, binds) = any_of(batches, "agent_id = ? AND seq = ?", |&(agent, seq)| {
        [Bound::Text(agent.to_owned()), Bound::Unsigned(seq)]
    });
    Statement::new(
        id,
        format!(
            "SELECT agent_id, seq, event_id FROM {table}
 WHERE date >= toDate(?) AND date <= toDate(?) AND ({filter})
 ORDER BY agent_id, seq, event_id"
        ),
    )
    .bind([
        Bound::Unsigned(u64::from(days.0)),
        Bound::Unsigned(u64::from(days.1)),
    ])
    .bind(binds)
}

/// The highest stored seq of one agent.
fn last_seq(agent_id: &str) -> Statement {
    Statement::new(
        StatementId::LastSeq,
        "SELECT max(seq), count() FROM batches WHERE agent_id = ? AND state = 1",
    )
    .bind([Bound::Text(agent_id.to_owned())])
}

type IdKey = (String, u64, String);

/// Counts of each stored id, so repeated ids are matched one for one.
fn multiset(ids: Vec<IdKey>) -> HashMap<IdKey, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Keeps the rows of resumed batches whose id is not (or not as often) stored already.
fn without_already_stored<T>(
    items: Vec<T>,
    mut already: HashMap<IdKey, usize>,
    key: impl Fn(&T) -> (&str, u64, &str),
) -> Vec<T> {
    if already.is_empty() {
        return items;
    }
    items
        .into_iter()
        .filter(|item| {
            let (agent, seq, id) = key(item);
            match already.get_mut(&(agent.to_owned(), seq, id.to_owned())) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            }
        })
        .collect()
}

fn check_rows(rows: &[EventRow]) -> Vec<CheckRow> {
    check_records(rows)
        .into_iter()
        .zip(rows.iter().filter(|r| r.kind == "check"))
        .map(|(c, row)| CheckRow {
            time: datetime_seconds(c.time_unix_nano),
            date: date_days(c.time_unix_nano),
            agent_id: c.agent_id,
            seq: row.seq,
            hostname: c.hostname,
            check_id: c.check_id,
            title: c.title,
            status: c.status,
            observed: c.observed,
            expected: c.expected,
            time_ns: c.time_unix_nano,
            event_id: c.event_id,
        })
        .collect()
}

fn batch_row<'a>(b: &PreparedBatch<'a>, state: u8, now: i64) -> BatchRow<'a> {
    BatchRow {
        agent_id: b.agent_id,
        seq: b.seq,
        state,
        event_count: u32::try_from(b.events.len()).unwrap_or(u32::MAX),
        alert_count: u32::try_from(b.alerts.len()).unwrap_or(u32::MAX),
        written_ns: now,
        written_date: date_days(now),
    }
}

impl ClickHouseStore {
    /// See [`crate::store::Store::write_batches`] and the module docs for the protocol.
    pub(crate) async fn write_batches(
        &self,
        batches: &[PreparedBatch<'_>],
    ) -> Result<Vec<WriteOutcome>, StoreError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        // Locks in sorted order: two calls sharing agents cannot wait on each other.
        let mut lowest: HashMap<&str, u64> = HashMap::new();
        for b in batches {
            let seq = lowest.entry(b.agent_id).or_insert(b.seq);
            *seq = (*seq).min(b.seq);
        }
        let mut agents: Vec<(&str, u64)> = lowest.into_iter().collect();
        agents.sort_unstable();
        let mut guards = Vec::with_capacity(agents.len());
        for (agent_id, _) in &agents {
            guards.push(self.agent_lock(agent_id)?.lock_owned().await);
        }

        let mut states = HashMap::new();
        let queries: Vec<Statement> = agents
            .chunks(AGENTS_PER_STATE_QUERY)
            .map(|chunk| {
                let mut seqs: Vec<u64> = batches
                    .iter()
                    .filter(|b| chunk.iter().any(|(agent, _)| *agent == b.agent_id))
                    .map(|b| b.seq)
                    .collect();
                seqs.sort_unstable();
                seqs.dedup();
                batch_state(chunk, seqs)
            })
            .collect();
        let answers = futures::future::try_join_all(
            queries
                .iter()
                .map(|query| self.fetch_all::<BatchStateRow>(query)),
        )
        .await?;
        for rows in answers {
            for row in rows {
                states.insert(
                    row.agent_id,
                    AgentState {
                        last_stored: (row.stored > 0).then_some(row.last_stored),
                        writing: row.writing,
                    },
                );
            }
        }
        let keys: Vec<(&str, u64)> = batches.iter().map(|b| (b.agent_id, b.seq)).collect();
        let plans = plan(&keys, &states);

        let mut events = Vec::new();
        let mut alerts: Vec<AlertRow<'_>> = Vec::new();
        let mut resumed = Vec::new();
        for (b, plan) in batches.iter().zip(&plans) {
            if *plan == Plan::Duplicate {
                continue;
            }
            if *plan == Plan::Resume {
                tracing::warn!(
                    agent_id = b.agent_id,
                    seq = b.seq,
                    "resuming a batch whose earlier write was interrupted"
                );
                resumed.push((b.agent_id, b.seq));
            }
            events.extend(
                b.events
                    .iter()
                    .map(|e| EventRow::from_event(b.agent_id, b.seq, e)),
            );
            alerts.extend(alert_rows(&b.alerts));
        }
        let mut checks = check_rows(&events);
        if !resumed.is_empty() {
            let (stored_events, stored_checks) = self.stored_ids(&resumed, &events).await?;
            events = without_already_stored(events, stored_events, |r| {
                (&r.agent_id, r.seq, &r.event_id)
            });
            checks = without_already_stored(checks, stored_checks, |c| {
                (&c.agent_id, c.seq, &c.event_id)
            });
        }

        let now = shaobing_wire::now_unix_nano();
        let marks: Vec<BatchRow<'_>> = batches
            .iter()
            .zip(&plans)
            .filter(|(_, plan)| **plan == Plan::Fresh)
            .map(|(b, _)| batch_row(b, BATCH_WRITING, now))
            .collect();
        self.insert_rows::<BatchRow<'_>>(StatementId::InsertBatches, "batches", &marks)
            .await?;
        // The three data inserts are independent: send them together.
        tokio::try_join!(
            self.insert_rows::<EventRow>(StatementId::InsertEvents, "events", &events),
            self.insert_rows::<CheckRow>(StatementId::InsertChecks, "check_results", &checks),
            self.insert_rows::<AlertRow<'_>>(StatementId::InsertAlerts, "alerts", &alerts),
        )?;
        let stored: Vec<BatchRow<'_>> = batches
            .iter()
            .zip(&plans)
            .filter(|(_, plan)| **plan != Plan::Duplicate)
            .map(|(b, _)| batch_row(b, BATCH_STORED, now))
            .collect();
        self.insert_rows::<BatchRow<'_>>(StatementId::InsertBatches, "batches", &stored)
            .await?;
        drop(guards);
        Ok(plans
            .into_iter()
            .map(|plan| match plan {
                Plan::Duplicate => WriteOutcome::Duplicate,
                Plan::Fresh | Plan::Resume => WriteOutcome::Stored,
            })
            .collect())
    }

    /// Event and check ids already stored for interrupted batches, searched in the day
    /// partitions their events fall in.
    async fn stored_ids(
        &self,
        resumed: &[(&str, u64)],
        rows: &[EventRow],
    ) -> Result<(HashMap<IdKey, usize>, HashMap<IdKey, usize>), StoreError> {
        let days = rows
            .iter()
            .filter(|r| resumed.contains(&(r.agent_id.as_str(), r.seq)))
            .map(|r| r.date);
        let (Some(first), Some(last)) = (days.clone().min(), days.max()) else {
            return Ok((HashMap::new(), HashMap::new()));
        };
        let events: Vec<IdKey> = self
            .fetch_all(&stored_ids(
                StatementId::StoredEventIds,
                "events",
                resumed,
                (first, last),
            ))
            .await?;
        let checks: Vec<IdKey> = self
            .fetch_all(&stored_ids(
                StatementId::StoredCheckIds,
                "check_results",
                resumed,
                (first, last),
            ))
            .await?;
        Ok((multiset(events), multiset(checks)))
    }

    /// See [`crate::store::Store::last_seq`].
    pub async fn last_seq(&self, agent_id: &str) -> Result<Option<u64>, StoreError> {
        let (last, stored): (u64, u64) = self.fetch_one(&last_seq(agent_id)).await?;
        Ok((stored > 0).then_some(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_decided_in_order_against_the_stored_state() {
        let states = HashMap::from([
            (
                "a".to_owned(),
                AgentState {
                    last_stored: Some(5),
                    writing: vec![7],
                },
            ),
            (
                "b".to_owned(),
                AgentState {
                    last_stored: None,
                    writing: vec![],
                },
            ),
        ]);
        let batches = [
            ("a", 5), // stored before
            ("a", 6), // new
            ("a", 6), // repeated in this call
            ("b", 1), // new agent
            ("a", 7), // interrupted earlier
            ("c", 3), // never seen
            ("a", 4), // below what this call stored
            ("c", 2), // below what this call stored
        ];
        assert_eq!(
            plan(&batches, &states),
            [
                Plan::Duplicate,
                Plan::Fresh,
                Plan::Duplicate,
                Plan::Fresh,
                Plan::Resume,
                Plan::Fresh,
                Plan::Duplicate,
                Plan::Duplicate,
            ]
        );
    }

    #[test]
    fn state_query_reads_each_agent_from_its_lowest_seq() {
        let st = batch_state(&[("a", 3), ("b'", 9)], vec![3, 9]);
        assert_eq!(
            st.render(),
            "SELECT agent_id, maxIf(seq, state = 1), countIf(state = 1),
    arraySort(groupUniqArrayIf(seq, state = 0 AND has([3,9], seq)))
 FROM batches WHERE (agent_id = 'a' AND seq >= 3) OR (agent_id = 'b\\'' AND seq >= 9) \
             GROUP BY agent_id ORDER BY agent_id"
        );
    }

    #[test]
    fn already_stored_ids_are_skipped_one_for_one() {
        let key = |s: &str| ("a".to_owned(), 1, s.to_owned());
        let items = vec!["x", "y", "y", "z"];
        let stored = multiset(vec![key("y"), key("z")]);
        assert_eq!(
            without_already_stored(items, stored, |s| ("a", 1, s)),
            vec!["x", "y"]
        );
    }
}
