//! Event reads in ClickHouse: the search page, counts, counts by time bucket or by a column,
//! and the first/last event of each host and source.
//!
//! Every time-bounded condition also names `date`, so whole day partitions outside the range
//! are never opened; `hostname` leads the primary key, so one host's timeline is one range.

use super::ClickHouseStore;
use super::schema::Layout;
use super::sql::{Bound, Conditions, Statement, StatementId};
use crate::store::StoreError;
use crate::store::event_row::{
    ColumnKind, EVENT_COLUMNS, EventRow, FilterValue, check_filter, date_days,
};
use crate::store::records::{
    EventGroup, EventQuery, EventRecord, GroupCount, MAX_TIME_BUCKETS, SourceSpan, TimeBucketCount,
    bucket_nanos, effective_limit, event_group_column,
};

pub(super) fn event_conditions(q: &EventQuery) -> Result<Conditions, StoreError> {
    let mut c = Conditions::default();
    if let Some(host) = &q.host {
        c.push("hostname = ?", [Bound::Text(host.clone())]);
    }
    if let Some(agent_id) = &q.agent_id {
        c.push("agent_id = ?", [Bound::Text(agent_id.clone())]);
    }
    if let Some(kind) = &q.kind {
        c.push("kind = ?", [Bound::Text(kind.clone())]);
    }
    // The `date` conditions let ClickHouse skip whole day partitions.
    if let Some(since) = q.since {
        c.push(
            "date >= toDate(?) AND time_ns >= ?",
            [
                Bound::Unsigned(u64::from(date_days(since))),
                Bound::Signed(since),
            ],
        );
    }
    if let Some(until) = q.until {
        c.push(
            "date <= toDate(?) AND time_ns < ?",
            [
                Bound::Unsigned(u64::from(date_days(until))),
                Bound::Signed(until),
            ],
        );
    }
    for filter in &q.fields {
        let (column, value) = check_filter(filter)?;
        let clause = match column.kind {
            ColumnKind::TextArray | ColumnKind::UnsignedArray => format!("has({}, ?)", column.name),
            _ => format!("{} = ?", column.name),
        };
        let bound = match value {
            FilterValue::Text(s) => Bound::Text(s),
            FilterValue::Unsigned(u) => Bound::Unsigned(u),
            FilterValue::Signed(i) => Bound::Signed(i),
            FilterValue::Float(f) => Bound::Float(f),
        };
        c.push(clause, [bound]);
    }
    Ok(c)
}

/// One page of events, newest first.
///
/// In two steps ("late materialization"): the subquery finds the page's rows reading only the
/// filtered columns and the key, then the outer query reads all ~70 columns of just those rows.
/// One step would read every column of every matching row before sorting (measured on 3 M
/// events: newest 100 of all 2.1 s → 0.24 s; a field search over a day 0.37 s → 0.07 s). On a
/// cluster the subquery must be `GLOBAL IN`: it picks the page across all shards once.
pub(super) fn events_page(q: &EventQuery, layout: &Layout) -> Result<Statement, StoreError> {
    let c = event_conditions(q)?;
    let names: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
    let in_keyword = match layout {
        Layout::Single => "IN",
        Layout::Cluster(_) => "GLOBAL IN",
    };
    let outer = if c.clauses.is_empty() {
        "WHERE".to_owned()
    } else {
        format!("{} AND", c.sql("WHERE"))
    };
    let binds = c.binds.iter().chain(&c.binds).cloned().collect::<Vec<_>>();
    Ok(Statement::new(
        StatementId::EventsPage,
        format!(
            "SELECT {} FROM events {outer} (hostname, time_ns, event_id) {in_keyword} (
    SELECT hostname, time_ns, event_id FROM events {}
    ORDER BY time_ns DESC, event_id DESC LIMIT {} OFFSET {})
 ORDER BY time_ns DESC, event_id DESC LIMIT {}",
            names.join(", "),
            c.sql("WHERE"),
            effective_limit(q.limit),
            q.offset,
            effective_limit(q.limit),
        ),
    )
    .bind(binds))
}

pub(super) fn events_count(q: &EventQuery) -> Result<Statement, StoreError> {
    let c = event_conditions(q)?;
    Ok(Statement::new(
        StatementId::EventsCount,
        format!("SELECT count() FROM events {}", c.sql("WHERE")),
    )
    .bind(c.binds))
}

/// Events per time bucket: the newest [`MAX_TIME_BUCKETS`] non-empty buckets.
pub(super) fn event_counts_by_time(
    q: &EventQuery,
    bucket_seconds: u32,
) -> Result<Statement, StoreError> {
    let bucket = bucket_nanos(bucket_seconds)?;
    let c = event_conditions(q)?;
    Ok(Statement::new(
        StatementId::EventCountsByTime,
        format!(
            "SELECT intDiv(time_ns, {bucket}) * {bucket} AS bucket, count() FROM events {}
 GROUP BY bucket ORDER BY bucket DESC LIMIT {MAX_TIME_BUCKETS}",
            c.sql("WHERE")
        ),
    )
    .bind(c.binds))
}

/// Events per value of a column, most frequent first.
pub(super) fn event_counts_by_group(
    q: &EventQuery,
    group: &EventGroup,
) -> Result<Statement, StoreError> {
    let column = event_group_column(group)?;
    let c = event_conditions(q)?;
    Ok(Statement::new(
        StatementId::EventCountsByGroup,
        format!(
            "SELECT toString({column}) AS key, '' AS label, count() AS n FROM events {}
 GROUP BY key ORDER BY n DESC, key LIMIT {} OFFSET {}",
            c.sql("WHERE"),
            effective_limit(q.limit),
            q.offset
        ),
    )
    .bind(c.binds))
}

/// First and last event and count per host and source.
pub(super) fn event_sources(q: &EventQuery) -> Result<Statement, StoreError> {
    let c = event_conditions(q)?;
    Ok(Statement::new(
        StatementId::EventSources,
        format!(
            "SELECT hostname, source, min(time_ns), max(time_ns), count() FROM events {}
 GROUP BY hostname, source ORDER BY hostname, source LIMIT {} OFFSET {}",
            c.sql("WHERE"),
            effective_limit(q.limit),
            q.offset
        ),
    )
    .bind(c.binds))
}

/// Time buckets come newest first from the server; callers get them oldest first.
pub(super) fn oldest_first(rows: Vec<(i64, u64)>) -> Vec<TimeBucketCount> {
    rows.into_iter()
        .rev()
        .map(|(start_unix_nano, count)| TimeBucketCount {
            start_unix_nano,
            count,
        })
        .collect()
}

pub(super) fn group_counts(rows: Vec<(String, String, u64)>) -> Vec<GroupCount> {
    rows.into_iter()
        .map(|(key, label, count)| GroupCount { key, label, count })
        .collect()
}

impl ClickHouseStore {
    /// See [`crate::store::Store::events`].
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<EventRow> = self.fetch_all(&events_page(q, &self.layout)?).await?;
        Ok(rows.into_iter().map(EventRow::into_record).collect())
    }

    /// See [`crate::store::Store::count_events`].
    pub async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        self.fetch_one(&events_count(q)?).await
    }

    /// See [`crate::store::Store::event_counts`].
    pub async fn event_counts(
        &self,
        q: &EventQuery,
        bucket_seconds: u32,
    ) -> Result<Vec<TimeBucketCount>, StoreError> {
        let rows = self
            .fetch_all(&event_counts_by_time(q, bucket_seconds)?)
            .await?;
        Ok(oldest_first(rows))
    }

    /// See [`crate::store::Store::event_counts_by`].
    pub async fn event_counts_by(
        &self,
        q: &EventQuery,
        group: &EventGroup,
    ) -> Result<Vec<GroupCount>, StoreError> {
        let rows = self.fetch_all(&event_counts_by_group(q, group)?).await?;
        Ok(group_counts(rows))
    }

    /// See [`crate::store::Store::event_sources`].
    pub async fn event_sources(&self, q: &EventQuery) -> Result<Vec<SourceSpan>, StoreError> {
        let rows: Vec<(String, String, i64, i64, u64)> = self.fetch_all(&event_sources(q)?).await?;
        Ok(rows
            .into_iter()
            .map(
                |(hostname, source, first_unix_nano, last_unix_nano, count)| SourceSpan {
                    hostname,
                    source,
                    first_unix_nano,
                    last_unix_nano,
                    count,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::FieldFilter;

    #[test]
    fn time_bounds_also_select_day_partitions() {
        let q = EventQuery {
            host: Some("web-01".into()),
            since: Some(1_714_521_600_000_000_000),
            fields: vec![FieldFilter::new("dns_answers", "1.2.3.4")],
            ..EventQuery::default()
        };
        assert_eq!(
            events_count(&q).expect("valid").render(),
            "SELECT count() FROM events WHERE hostname = 'web-01' AND date >= toDate(19844) \
             AND time_ns >= 1714521600000000000 AND has(dns_answers, '1.2.3.4')"
        );
    }

    #[test]
    fn pages_read_all_columns_of_the_page_rows_only() {
        let q = EventQuery {
            host: Some("web-01".into()),
            limit: Some(10),
            offset: 20,
            ..EventQuery::default()
        };
        let single = events_page(&q, &Layout::Single).expect("valid").render();
        assert!(single.contains(
            "FROM events WHERE hostname = 'web-01' AND (hostname, time_ns, event_id) IN ("
        ));
        assert!(single.contains(
            "FROM events WHERE hostname = 'web-01'\n    ORDER BY time_ns DESC, event_id DESC \
             LIMIT 10 OFFSET 20)"
        ));
        assert!(single.ends_with("ORDER BY time_ns DESC, event_id DESC LIMIT 10"));
        let all = events_page(&EventQuery::default(), &Layout::Cluster("c".into()))
            .expect("valid")
            .render();
        assert!(all.contains("FROM events WHERE (hostname, time_ns, event_id) GLOBAL IN ("));
    }

    #[test]
    fn groups_and_buckets_are_checked() {
        let q = EventQuery::default();
        assert!(event_counts_by_time(&q, 0).is_err());
        assert!(event_counts_by_group(&q, &EventGroup::Field("host_ips".into())).is_err());
        assert!(event_counts_by_group(&q, &EventGroup::Field("nope".into())).is_err());
        let st = event_counts_by_group(&q, &EventGroup::Field("dst_port".into())).expect("ok");
        assert!(st.render().starts_with("SELECT toString(dst_port) AS key"));
        assert_eq!(
            oldest_first(vec![(20, 1), (10, 2)]),
            [
                TimeBucketCount {
                    start_unix_nano: 10,
                    count: 2
                },
                TimeBucketCount {
                    start_unix_nano: 20,
                    count: 1
                }
            ]
        );
    }
}
