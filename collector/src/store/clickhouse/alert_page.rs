//! The alerts list in ClickHouse: which alerts match a query, and one page of them.
//!
//! An alert is stored as versions (rows of `alerts`, `version` = count) plus triage rows
//! (`alert_triage`). Its state is its newest version — the row with the greatest
//! `(version, last_time_ns)` — joined with its latest triage; every filter applies to that
//! state, and the list is ordered by the state's `last_time_ns` (newest first), then id.
//!
//! Aggregating every alert's versions before sorting costs seconds at a million alerts, so
//! a page is found in two steps:
//! 1. **Candidates** ([`alert_candidates`]): the `k` newest *rows* that pass the filters,
//!    read from narrow columns only (`alert_id`, `last_time_ns` and the filtered ones). The
//!    status filter is exact at this step too (a subquery over `alert_triage`).
//! 2. **States by id** ([`alerts_by_id`]): the newest version and triage of just those ids
//!    (a primary-key lookup), filtered again on the state, sorted and paged.
//!
//! Why this is exact: an alert matches iff its newest row passes the row filters, and that
//! row's `last_time_ns` is the alert's sort key. With `c` the smallest `last_time_ns` among
//! the `k` candidate rows, every matching alert whose key is greater than `c` has its newest
//! row among the candidates. So the states with key `> c` are exactly the matching alerts
//! with key `> c`, in order: when they fill the page, the page is right. When fewer than `k`
//! rows matched at all, every matching alert is a candidate. Otherwise `k` grows (×4) and
//! the steps run again; past [`MAX_CANDIDATES`] rows one aggregate over all alerts
//! ([`alerts_page_full`]) answers instead.
//!
//! A text search scans long strings, so it first looks only at rows whose `last_time_ns` is
//! within a day (then 8, then 64 days) of now: the `k` newest matching rows of such a window
//! are the `k` newest of all when the window holds at least `k`. Alert ids start with the
//! opening time (see `shaobing_detect`), so the rows of a time window are neighbours in the
//! `ORDER BY alert_id` table and the lookups by id read a few granules.

use super::ClickHouseStore;
use super::rows::AlertReadRow;
use super::schema::Layout;
use super::sql::{Bound, Conditions, Statement, StatementId};
use crate::store::StoreError;
use crate::store::records::{AlertQuery, AlertRecord, effective_limit};

/// Candidate rows asked for first: at least this many, and twice the rows up to the page end.
pub(super) const FIRST_CANDIDATES: u64 = 128;
/// Most candidate rows tried before falling back to one aggregate over all alerts.
pub(super) const MAX_CANDIDATES: u64 = 16_384;
/// Time windows (days back from now) a text search looks at before looking at everything.
const TEXT_WINDOW_DAYS: [i64; 3] = [1, 8, 64];
const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// Queries carrying a list of ids can exceed the default 256 KiB `max_query_size`.
const MAX_QUERY_SIZE: &str = "16777216";

/// The columns of the state, as `argMax` over the versions.
const NEWEST: &str = "(version, last_time_ns)";

/// Conditions on the detection columns of a query, written against `{prefix}column`:
/// prefix `""` for the rows of `alerts`, `"a_"` for the aggregated state.
fn detection_conditions(q: &AlertQuery, prefix: &str) -> Conditions {
    let mut c = Conditions::default();
    if let Some(alert_id) = &q.alert_id {
        c.push("alert_id = ?", [Bound::Text(alert_id.clone())]);
    }
    if let Some(since) = q.since {
        c.push(format!("{prefix}last_time_ns >= ?"), [Bound::Signed(since)]);
    }
    if let Some(until) = q.until {
        c.push(format!("{prefix}first_time_ns < ?"), [Bound::Signed(until)]);
    }
    if let Some(host) = &q.host {
        c.push(format!("{prefix}hostname = ?"), [Bound::Text(host.clone())]);
    }
    if let Some(agent_id) = &q.agent_id {
        c.push(
            format!("{prefix}agent_id = ?"),
            [Bound::Text(agent_id.clone())],
        );
    }
    if let Some(rule_id) = &q.rule_id {
        c.push(
            format!("{prefix}rule_id = ?"),
            [Bound::Text(rule_id.clone())],
        );
    }
    if !q.levels.is_empty() {
        c.push(
            format!("has(?, {prefix}level)"),
            [Bound::TextList(q.levels.clone())],
        );
    }
    if let Some(needle) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let fields = ["rule_title", "rule_id", "summary", "hostname", "group_key"];
        let clause = fields
            .iter()
            .map(|f| format!("positionCaseInsensitiveUTF8({prefix}{f}, ?) > 0"))
            .collect::<Vec<_>>()
            .join(" OR ");
        c.push(
            format!("({clause})"),
            fields.map(|_| Bound::Text(needle.to_owned())),
        );
    }
    c
}

/// `IN` for a subquery over another table: `GLOBAL IN` on a cluster (the outer table is
/// `Distributed`, and so is the one in the subquery).
fn in_keyword(layout: &Layout) -> &'static str {
    match layout {
        Layout::Single => "IN",
        Layout::Cluster(_) => "GLOBAL IN",
    }
}

/// The status filter as a condition on `alert_id` of `alerts` rows: exact, from the latest
/// triage row of each alert. An alert without triage is open.
fn status_condition(q: &AlertQuery, layout: &Layout) -> Option<(String, Bound)> {
    if q.statuses.is_empty() {
        return None;
    }
    let names: Vec<String> = q.statuses.iter().map(|s| s.name().to_owned()).collect();
    let latest = "if(argMax(status, updated_ns) = '', 'open', argMax(status, updated_ns))";
    let keyword = in_keyword(layout);
    // Open alerts mostly have no triage row: name the triaged ones to leave out instead.
    let clause = if names.iter().any(|n| n == "open") {
        let not_in = match layout {
            Layout::Single => "NOT IN",
            Layout::Cluster(_) => "GLOBAL NOT IN",
        };
        format!(
            "alert_id {not_in} (SELECT alert_id FROM alert_triage GROUP BY alert_id \
             HAVING NOT has(?, {latest}))"
        )
    } else {
        format!(
            "alert_id {keyword} (SELECT alert_id FROM alert_triage GROUP BY alert_id \
             HAVING has(?, {latest}))"
        )
    };
    Some((clause, Bound::TextList(names)))
}

/// Conditions on single rows of `alerts` that the newest row of every matching alert passes.
pub(super) fn row_conditions(q: &AlertQuery, layout: &Layout) -> Conditions {
    let mut c = detection_conditions(q, "");
    if let Some((clause, bound)) = status_condition(q, layout) {
        c.push(clause, [bound]);
    }
    c
}

/// `SELECT alert_id, a_* FROM alerts ... GROUP BY alert_id HAVING ...`: the state of each
/// alert (rows restricted by `rows_where`, which must keep every version of an alert it
/// keeps), filtered on the state by `q`.
fn newest_versions(q: &AlertQuery, rows_where: &Conditions, extra_having: &str) -> Statement {
    newest_versions_of(q, rows_where, extra_having, &ALL_COLUMNS)
}

/// Every detection column of an alert's state.
const ALL_COLUMNS: [&str; 14] = [
    "rule_id",
    "rule_title",
    "level",
    "kind",
    "tags",
    "mlps",
    "agent_id",
    "hostname",
    "first_time_ns",
    "last_time_ns",
    "count",
    "group_key",
    "event_ids",
    "summary",
];

/// The columns counts need (and the filters other than text search read): no arrays, no
/// summary, so aggregating the newest versions reads far less.
const COUNT_COLUMNS: [&str; 7] = [
    "rule_id",
    "rule_title",
    "level",
    "agent_id",
    "hostname",
    "first_time_ns",
    "last_time_ns",
];

/// [`newest_versions`] with only `columns` (which must cover what `q`'s filters read).
fn newest_versions_of(
    q: &AlertQuery,
    rows_where: &Conditions,
    extra_having: &str,
    columns: &[&str],
) -> Statement {
    let having = detection_conditions(q, "a_");
    let mut having_sql = having.sql("HAVING");
    if !extra_having.is_empty() {
        having_sql = if having_sql.is_empty() {
            format!("HAVING {extra_having}")
        } else {
            format!("{having_sql} AND {extra_having}")
        };
    }
    let columns = columns
        .iter()
        .map(|c| format!("argMax({c}, {NEWEST}) AS a_{c}"))
        .collect::<Vec<_>>()
        .join(",\n        ");
    let sql = format!(
        "SELECT alert_id,\n        {columns}\n    FROM alerts {} GROUP BY alert_id {having_sql}",
        rows_where.sql("WHERE")
    );
    let binds: Vec<Bound> = rows_where
        .binds
        .iter()
        .chain(&having.binds)
        .cloned()
        .collect();
    Statement::new(StatementId::AlertsPage, sql).bind(binds)
}

/// Keeps only the versions of alerts that have at least one row passing the row filters
/// (the newest row of a matching alert does): a cheap cut before aggregating, used when a
/// selective filter is given.
fn prefilter(q: &AlertQuery, layout: &Layout) -> Conditions {
    let selective = q.alert_id.is_some()
        || q.since.is_some()
        || q.until.is_some()
        || q.host.is_some()
        || q.agent_id.is_some()
        || q.rule_id.is_some();
    let mut c = Conditions::default();
    if selective {
        let rows = detection_conditions(q, "");
        c.push(
            format!(
                "alert_id {} (SELECT alert_id FROM alerts {})",
                in_keyword(layout),
                rows.sql("WHERE")
            ),
            rows.binds,
        );
    }
    c
}

/// `SELECT ... FROM (state of each alert matching q) [triage join] [WHERE status]`: columns
/// `alert_id`, `a_*` and (with triage) `t_status`, `t_assignee`, `t_note`. Aggregates every
/// alert that passes the row prefilter: for counts, and for pages too deep for candidates.
pub(super) fn filtered_alerts(
    q: &AlertQuery,
    layout: &Layout,
    with_triage: bool,
) -> (String, Vec<Bound>) {
    filtered_alerts_of(q, layout, with_triage, &ALL_COLUMNS)
}

/// [`filtered_alerts`] for counts: only the columns counts read (all of them when a text
/// search needs the rest).
pub(super) fn filtered_alerts_for_counts(
    q: &AlertQuery,
    layout: &Layout,
    with_triage: bool,
) -> (String, Vec<Bound>) {
    let columns: &[&str] = if q.text.is_some() {
        &ALL_COLUMNS
    } else {
        &COUNT_COLUMNS
    };
    filtered_alerts_of(q, layout, with_triage, columns)
}

fn filtered_alerts_of(
    q: &AlertQuery,
    layout: &Layout,
    with_triage: bool,
    columns: &[&str],
) -> (String, Vec<Bound>) {
    let rows_where = prefilter(q, layout);
    let newest = newest_versions_of(q, &rows_where, "", columns);
    let (newest_sql, newest_binds) = newest.into_parts();
    if !with_triage && q.statuses.is_empty() {
        return (format!("SELECT * FROM ({newest_sql})"), newest_binds);
    }
    let mut outer = Conditions::default();
    if !q.statuses.is_empty() {
        let names = q.statuses.iter().map(|s| s.name().to_owned()).collect();
        outer.push(
            "has(?, if(t_status = '', 'open', t_status))",
            [Bound::TextList(names)],
        );
    }
    let sql = format!(
        "SELECT * FROM ({newest_sql}) AS a ANY LEFT JOIN (
    SELECT alert_id,
        argMax(status, updated_ns) AS t_status,
        argMax(assignee, updated_ns) AS t_assignee,
        argMax(note, updated_ns) AS t_note
    FROM alert_triage GROUP BY alert_id
 ) AS t USING alert_id {}",
        outer.sql("WHERE")
    );
    let binds = newest_binds.into_iter().chain(outer.binds).collect();
    (sql, binds)
}

const PAGE_COLUMNS: &str = "alert_id, a_rule_id, a_rule_title, a_level, a_kind, a_tags, a_mlps,
    a_agent_id, a_hostname, a_first_time_ns, a_last_time_ns, a_count, a_group_key,
    a_event_ids, a_summary, t_status, t_assignee, t_note";

/// One page aggregated over every matching alert (the fallback for very deep pages).
pub(super) fn alerts_page_full(q: &AlertQuery, layout: &Layout) -> Statement {
    let (source, binds) = filtered_alerts(q, layout, true);
    Statement::new(
        StatementId::AlertsPage,
        format!(
            "SELECT {PAGE_COLUMNS}
 FROM ({source})
 ORDER BY a_last_time_ns DESC, alert_id LIMIT {} OFFSET {}",
            effective_limit(q.limit),
            q.offset
        ),
    )
    .bind(binds)
}

/// Step 1: per alert id among the `k` newest rows passing the row filters (and, for a text
/// search, with `last_time_ns >= window`), how many of those rows it has and the oldest
/// `last_time_ns` of them.
pub(super) fn alert_candidates(
    q: &AlertQuery,
    layout: &Layout,
    k: u64,
    window: Option<i64>,
) -> Statement {
    let mut c = row_conditions(q, layout);
    if let Some(from) = window {
        c.push("last_time_ns >= ?", [Bound::Signed(from)]);
    }
    Statement::new(
        StatementId::AlertCandidates,
        format!(
            "SELECT alert_id, count() AS n, min(last_time_ns) AS oldest FROM (
    SELECT alert_id, last_time_ns FROM alerts {} ORDER BY last_time_ns DESC LIMIT {k}
 ) GROUP BY alert_id",
            c.sql("WHERE")
        ),
    )
    .bind(c.binds)
}

/// Step 2: the page among the states of `ids` that match `q`, keeping only those newer than
/// `newer_than` (the candidates' cutoff) when given.
pub(super) fn alerts_by_id(q: &AlertQuery, ids: Vec<String>, newer_than: Option<i64>) -> Statement {
    let mut rows_where = Conditions::default();
    rows_where.push(
        "alert_id IN (SELECT arrayJoin(?))",
        [Bound::TextList(ids.clone())],
    );
    let cutoff = if newer_than.is_some() {
        "a_last_time_ns > ?"
    } else {
        ""
    };
    let (newest_sql, mut binds) = newest_versions(q, &rows_where, cutoff).into_parts();
    if let Some(c) = newer_than {
        binds.push(Bound::Signed(c));
    }
    binds.push(Bound::TextList(ids));
    let mut outer = Conditions::default();
    if !q.statuses.is_empty() {
        let names = q.statuses.iter().map(|s| s.name().to_owned()).collect();
        outer.push(
            "has(?, if(t_status = '', 'open', t_status))",
            [Bound::TextList(names)],
        );
    }
    binds.extend(outer.binds.iter().cloned());
    Statement::new(
        StatementId::AlertsById,
        format!(
            "SELECT {PAGE_COLUMNS}
 FROM ({newest_sql}) AS a ANY LEFT JOIN (
    SELECT alert_id,
        argMax(status, updated_ns) AS t_status,
        argMax(assignee, updated_ns) AS t_assignee,
        argMax(note, updated_ns) AS t_note
    FROM alert_triage WHERE alert_id IN (SELECT arrayJoin(?)) GROUP BY alert_id
 ) AS t USING alert_id {}
 ORDER BY a_last_time_ns DESC, alert_id LIMIT {} OFFSET {}",
            outer.sql("WHERE"),
            effective_limit(q.limit),
            q.offset
        ),
    )
    .bind(binds)
    .setting("max_query_size", MAX_QUERY_SIZE)
}

/// The first time window of a text search (`None`: no window).
fn first_window(q: &AlertQuery, now: i64) -> Option<usize> {
    q.text.as_deref().filter(|t| !t.is_empty())?;
    next_window(q, now, 0)
}

/// Window number `from` or a later one that still narrows the query, if any.
fn next_window(q: &AlertQuery, now: i64, from: usize) -> Option<usize> {
    (from..TEXT_WINDOW_DAYS.len()).find(|&i| {
        let start = window_start(now, i);
        q.since.is_none_or(|since| since < start)
    })
}

fn window_start(now: i64, window: usize) -> i64 {
    now.saturating_sub(TEXT_WINDOW_DAYS[window] * DAY_NS)
}

impl ClickHouseStore {
    /// See [`crate::store::Store::alerts`]; how: the module documentation.
    pub async fn alerts(&self, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let limit = effective_limit(q.limit);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = shaobing_wire::now_unix_nano();
        let want = q.offset as u64 + limit;
        let mut k = want.saturating_mul(2).max(FIRST_CANDIDATES);
        let mut window = first_window(q, now);
        while k <= MAX_CANDIDATES {
            let from = window.map(|w| window_start(now, w));
            let candidates: Vec<(String, u64, i64)> = self
                .fetch_all(&alert_candidates(q, &self.layout, k, from))
                .await?;
            let rows: u64 = candidates.iter().map(|c| c.1).sum();
            if rows < k
                && let Some(w) = window
            {
                // The window holds fewer than k matching rows: look further back.
                window = next_window(q, now, w + 1);
                continue;
            }
            if candidates.is_empty() {
                return Ok(Vec::new());
            }
            let everything = rows < k;
            let cutoff = if everything {
                None
            } else {
                candidates.iter().map(|c| c.2).min()
            };
            let ids = candidates.into_iter().map(|c| c.0).collect();
            let page: Vec<AlertReadRow> = self.fetch_all(&alerts_by_id(q, ids, cutoff)).await?;
            if everything || page.len() as u64 == limit {
                return page.into_iter().map(super::alerts::alert_record).collect();
            }
            k = k.saturating_mul(4);
        }
        let rows: Vec<AlertReadRow> = self.fetch_all(&alerts_page_full(q, &self.layout)).await?;
        rows.into_iter().map(super::alerts::alert_record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::AlertStatus;

    #[test]
    fn status_filter_names_the_triaged_alerts_to_keep_or_leave_out() {
        let open = AlertQuery {
            statuses: vec![AlertStatus::Open, AlertStatus::Acknowledged],
            ..AlertQuery::default()
        };
        let sql = alert_candidates(&open, &Layout::Single, 128, None).render();
        assert!(sql.contains("alert_id NOT IN (SELECT alert_id FROM alert_triage"));
        assert!(sql.contains("HAVING NOT has(['open','acknowledged'],"));
        assert!(sql.contains("ORDER BY last_time_ns DESC LIMIT 128"));
        let closed = AlertQuery {
            statuses: vec![AlertStatus::Closed],
            ..AlertQuery::default()
        };
        let sql = alert_candidates(&closed, &Layout::Cluster("c".into()), 512, None).render();
        assert!(sql.contains("alert_id GLOBAL IN (SELECT alert_id FROM alert_triage"));
        assert!(sql.contains("HAVING has(['closed'],"));
        let sql = alert_candidates(&open, &Layout::Cluster("c".into()), 512, None).render();
        assert!(sql.contains("alert_id GLOBAL NOT IN (SELECT alert_id FROM alert_triage"));
    }

    #[test]
    fn lookup_by_id_keeps_only_states_newer_than_the_cutoff() {
        let q = AlertQuery {
            host: Some("web-01".into()),
            limit: Some(2),
            offset: 3,
            ..AlertQuery::default()
        };
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let by_id = alerts_by_id(&q, ids.clone(), Some(42));
        let sql = by_id.render();
        assert!(sql.contains("FROM alerts WHERE alert_id IN (SELECT arrayJoin(['a','b']))"));
        assert!(sql.contains("HAVING a_hostname = 'web-01' AND a_last_time_ns > 42"));
        assert!(sql.contains("argMax(summary, (version, last_time_ns)) AS a_summary"));
        assert!(sql.contains("LIMIT 2 OFFSET 3"));
        assert_eq!(
            by_id.settings(),
            [("max_query_size", MAX_QUERY_SIZE.into())]
        );
        let all = alerts_by_id(&AlertQuery::default(), ids, None).render();
        assert!(!all.contains("HAVING"));
    }

    #[test]
    fn text_windows_start_after_since_only() {
        let now = 100 * DAY_NS;
        let text = AlertQuery {
            text: Some("ssh".into()),
            ..AlertQuery::default()
        };
        assert_eq!(first_window(&text, now), Some(0));
        assert_eq!(next_window(&text, now, 1), Some(1));
        assert_eq!(next_window(&text, now, 3), None);
        let recent = AlertQuery {
            since: Some(now - 2 * DAY_NS),
            ..text.clone()
        };
        // A one-day window narrows a two-day query; eight days do not.
        assert_eq!(first_window(&recent, now), Some(0));
        assert_eq!(next_window(&recent, now, 1), None);
        assert_eq!(first_window(&AlertQuery::default(), now), None);
    }

    #[test]
    fn selective_filters_cut_versions_before_aggregating() {
        let layout = Layout::Single;
        let (plain, _) = filtered_alerts(&AlertQuery::default(), &layout, false);
        assert!(!plain.contains(" IN "));
        let host = AlertQuery {
            host: Some("web-01".into()),
            ..AlertQuery::default()
        };
        let (sql, binds) = filtered_alerts(&host, &layout, false);
        assert!(sql.contains("WHERE alert_id IN (SELECT alert_id FROM alerts WHERE hostname = ?)"));
        assert!(sql.contains("HAVING a_hostname = ?"));
        assert_eq!(binds.len(), 2);
    }
}
