//! The compliance officer's view: alerts of a period summarised per 等保 2.0 clause
//! (GB/T 22239-2019), as a table and as a CSV export (audited). The full 等保 report
//! with verdicts lives in the `reports` module; this is the console's evidence summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use super::error::ConsoleResult;
use super::state::ConsoleState;
use crate::store::{AlertQuery, AlertStatus, MAX_QUERY_LIMIT, RetentionPolicy};

/// Alerts of one clause.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClauseRow {
    /// Clause id, e.g. `8.1.4.2`.
    pub clause: String,
    /// Alerts mapped to it.
    pub alerts: u64,
    /// Of which still open.
    pub open: u64,
    /// Of which closed as false positives.
    pub false_positives: u64,
    /// Hosts involved.
    pub hosts: usize,
    /// Rules that fired.
    pub rules: Vec<String>,
}

/// The summary of a period.
#[derive(Debug, Clone, Serialize)]
pub struct MlpsSummary {
    /// Period in days, ending now.
    pub days: u32,
    /// One row per clause, by clause id.
    pub rows: Vec<ClauseRow>,
    /// Alerts without any clause.
    pub unmapped: u64,
    /// The period held more alerts than one query returns: figures cover the newest.
    pub truncated: bool,
    /// How long the store keeps each table (等保 8.1.3.5 asks ≥ 6 months of audit records).
    pub retention: RetentionPolicy,
    /// Whether events are kept at least six months.
    pub retention_meets_six_months: bool,
}

/// Summarises the last `days` days.
pub async fn summarise(state: &ConsoleState, days: u32, now_ns: i64) -> ConsoleResult<MlpsSummary> {
    let days = days.clamp(1, 366);
    let alerts = state
        .store
        .alerts(&AlertQuery {
            since: Some(now_ns - i64::from(days) * 86_400 * 1_000_000_000),
            limit: Some(MAX_QUERY_LIMIT),
            ..AlertQuery::default()
        })
        .await?;
    let mut rows: BTreeMap<String, (ClauseRow, BTreeSet<String>, BTreeSet<String>)> =
        BTreeMap::new();
    let mut unmapped = 0;
    for alert in &alerts {
        if alert.mlps.is_empty() {
            unmapped += 1;
        }
        for clause in &alert.mlps {
            let (row, hosts, rules) = rows.entry(clause.clone()).or_default();
            row.clause.clone_from(clause);
            row.alerts += 1;
            if alert.status == AlertStatus::Open {
                row.open += 1;
            }
            if super::alerts::closing_reason(&alert.note) == Some("false_positive") {
                row.false_positives += 1;
            }
            hosts.insert(alert.hostname.clone());
            rules.insert(alert.rule_title.clone());
        }
    }
    Ok(MlpsSummary {
        days,
        rows: rows
            .into_values()
            .map(|(mut row, hosts, rules)| {
                row.hosts = hosts.len();
                row.rules = rules.into_iter().collect();
                row
            })
            .collect(),
        unmapped,
        truncated: alerts.len() >= MAX_QUERY_LIMIT,
        retention: *state.store.retention(),
        retention_meets_six_months: state.store.retention().meets_six_month_minimum(),
    })
}

/// RFC 4180 CSV with a UTF-8 BOM (so spreadsheet programs read the Chinese headers).
pub fn to_csv(summary: &MlpsSummary) -> String {
    let mut out = String::from(
        "\u{feff}条款 clause,告警 alerts,未处理 open,误报 false positives,主机 hosts,规则 rules\r\n",
    );
    for row in &summary.rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{}\r\n",
            csv_field(&row.clause),
            row.alerts,
            row.open,
            row.false_positives,
            row.hosts,
            csv_field(&row.rules.join("; "))
        );
    }
    out
}

fn csv_field(text: &str) -> String {
    // Quote everything; neutralise spreadsheet formulas.
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let summary = MlpsSummary {
            days: 7,
            rows: vec![ClauseRow {
                clause: "8.1.4.2".into(),
                alerts: 3,
                open: 1,
                false_positives: 1,
                hosts: 2,
                rules: vec!["=cmd".into(), "SSH \"brute\"".into()],
            }],
            unmapped: 0,
            truncated: false,
            retention: RetentionPolicy::default(),
            retention_meets_six_months: true,
        };
        let csv = to_csv(&summary);
        assert!(csv.starts_with('\u{feff}'));
        assert!(
            csv.contains("\"8.1.4.2\",3,1,1,2,\"'=cmd; SSH \"\"brute\"\"\"\r\n"),
            "{csv}"
        );
    }
}
