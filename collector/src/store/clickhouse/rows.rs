//! ClickHouse row layouts (RowBinary, field order = column order) of the tables other than
//! `events` (whose row is the shared [`crate::store::event_row::EventRow`]).

use ::clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Row, Serialize)]
pub(super) struct BatchRow<'a> {
    pub(super) agent_id: &'a str,
    pub(super) seq: u64,
    pub(super) state: u8,
    pub(super) event_count: u32,
    pub(super) alert_count: u32,
    pub(super) written_ns: i64,
    pub(super) written_date: u16,
}

pub(super) const BATCH_WRITING: u8 = 0;
pub(super) const BATCH_STORED: u8 = 1;

#[derive(Debug, Row, Serialize)]
pub(super) struct AlertRow<'a> {
    pub(super) alert_id: &'a str,
    pub(super) rule_id: &'a str,
    pub(super) rule_title: &'a str,
    pub(super) level: &'a str,
    pub(super) kind: &'a str,
    pub(super) tags: &'a [String],
    pub(super) mlps: &'a [String],
    pub(super) agent_id: &'a str,
    pub(super) hostname: &'a str,
    pub(super) first_time_ns: i64,
    pub(super) last_time_ns: i64,
    pub(super) first_time: u32,
    pub(super) last_time: u32,
    pub(super) first_date: u16,
    pub(super) count: u64,
    pub(super) group_key: &'a str,
    pub(super) event_ids: &'a [String],
    pub(super) summary: &'a str,
    pub(super) version: u64,
}

/// An alert as read back: detection fields (argMax by version) plus triage.
#[derive(Debug, Row, Deserialize)]
pub(super) struct AlertReadRow {
    pub(super) alert_id: String,
    pub(super) rule_id: String,
    pub(super) rule_title: String,
    pub(super) level: String,
    pub(super) kind: String,
    pub(super) tags: Vec<String>,
    pub(super) mlps: Vec<String>,
    pub(super) agent_id: String,
    pub(super) hostname: String,
    pub(super) first_time_ns: i64,
    pub(super) last_time_ns: i64,
    pub(super) count: u64,
    pub(super) group_key: String,
    pub(super) event_ids: Vec<String>,
    pub(super) summary: String,
    pub(super) status: String,
    pub(super) assignee: String,
    pub(super) note: String,
}

#[derive(Debug, Row, Serialize)]
pub(super) struct TriageRow<'a> {
    pub(super) alert_id: &'a str,
    pub(super) status: &'a str,
    pub(super) assignee: &'a str,
    pub(super) note: &'a str,
    pub(super) updated_ns: u64,
    pub(super) updated: u32,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct AgentRow {
    pub(super) agent_id: String,
    pub(super) hostname: String,
    pub(super) ips: Vec<String>,
    pub(super) os: String,
    pub(super) version: String,
    pub(super) first_seen_ns: i64,
    pub(super) last_seen_ns: i64,
    pub(super) status: String,
    pub(super) last_seen: u32,
    pub(super) row_version: u64,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct CheckRow {
    pub(super) agent_id: String,
    pub(super) seq: u64,
    pub(super) hostname: String,
    pub(super) check_id: String,
    pub(super) title: String,
    pub(super) status: String,
    pub(super) observed: String,
    pub(super) expected: String,
    pub(super) time_ns: i64,
    pub(super) time: u32,
    pub(super) date: u16,
    pub(super) event_id: String,
}

#[derive(Debug, Row, Serialize, Deserialize)]
pub(super) struct AuditRow {
    pub(super) time_ns: i64,
    pub(super) time: u32,
    pub(super) date: u16,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) target: String,
    pub(super) detail: String,
}

/// One agent's bookkeeping state, as read by `write_batches`.
#[derive(Debug, Row, Deserialize)]
pub(super) struct BatchStateRow {
    pub(super) agent_id: String,
    pub(super) last_stored: u64,
    pub(super) stored: u64,
    pub(super) writing: Vec<u64>,
}
