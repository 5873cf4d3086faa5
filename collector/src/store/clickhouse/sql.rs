//! Building ClickHouse `WHERE`/`HAVING` clauses with `?` placeholders bound client-side
//! (the server-side `{name:Type}` parameters do not exist in 18.16).

use ::clickhouse::query::Query;

use crate::store::StoreError;
use crate::store::event_row::{ColumnKind, FilterValue, check_filter, date_days};
use crate::store::records::EventQuery;

/// A value bound to one `?` placeholder.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    TextList(Vec<String>),
}

/// SQL conditions with `?` placeholders and the values to bind to them, in order.
#[derive(Default)]
pub(super) struct Conditions {
    pub(super) clauses: Vec<String>,
    pub(super) binds: Vec<Bound>,
}

impl Conditions {
    pub(super) fn push(
        &mut self,
        clause: impl Into<String>,
        binds: impl IntoIterator<Item = Bound>,
    ) {
        self.clauses.push(clause.into());
        self.binds.extend(binds);
    }

    pub(super) fn sql(&self, keyword: &str) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("{keyword} {}", self.clauses.join(" AND "))
        }
    }
}

pub(super) fn bind_all(mut query: Query, binds: &[Bound]) -> Query {
    for b in binds {
        query = match b {
            Bound::Text(s) => query.bind(s.as_str()),
            Bound::Unsigned(u) => query.bind(*u),
            Bound::Signed(i) => query.bind(*i),
            Bound::Float(f) => query.bind(*f),
            Bound::TextList(list) => query.bind(list.as_slice()),
        };
    }
    query
}

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
