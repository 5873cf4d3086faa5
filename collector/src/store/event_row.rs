//! The wide `events` row: one column per header field and per typed body field, shared by
//! both back-ends, and the lossless conversion between it and the wire [`Event`].
//!
//! The column list is written once (the `event_columns!` invocation below) and gives the
//! Rust struct (ClickHouse RowBinary order), the ClickHouse DDL types, the SQLite bindings and
//! the per-column filter kind used by `field = value` queries. Fields several bodies share
//! (`pid`, `exe`, `cmdline`, `user`) share a column, so one filter finds them in every kind.

use std::collections::HashMap;

use rusqlite::types::{Value as SqlValue, ValueRef};
use serde::{Deserialize, Serialize};
use shaobing_wire::names::body_kind;
use shaobing_wire::v1::{
    AgentStatus, CheckResult, CheckStatus, Direction, Event, FileEvent, FileOp, Host, LoginAction,
    LoginEvent, NetAction, NetworkEvent, Outcome, ProcessEvent, event::Body,
};

use super::StoreError;
use super::records::{CheckRecord, EventRecord, FieldFilter};

/// How a column is matched by a `field = value` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// Text, compared exactly.
    Text,
    /// Unsigned integer; the value must parse as `u64`.
    Unsigned,
    /// Signed integer; the value must parse as `i64`.
    Signed,
    /// Floating point; the value must parse as `f64`.
    Float,
    /// Array of text; matches when any element equals the value.
    TextArray,
    /// Array of unsigned integers; matches when any element equals the value.
    UnsignedArray,
}

/// One column of the `events` table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventColumn {
    /// Column name (same in both back-ends).
    pub name: &'static str,
    /// ClickHouse type in the DDL.
    pub clickhouse_type: &'static str,
    /// How filters match it.
    pub kind: ColumnKind,
}

/// Conversion of one column value to and from SQLite.
pub(crate) trait SqliteColumn: Sized {
    const KIND: ColumnKind;
    fn to_sql_value(&self) -> SqlValue;
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError>;
}

fn corrupt(column: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        column,
        reason: reason.into(),
    }
}

fn sql_integer(value: ValueRef<'_>, column: &'static str) -> Result<i64, StoreError> {
    match value {
        ValueRef::Integer(i) => Ok(i),
        other => Err(corrupt(column, format!("expected integer, got {other:?}"))),
    }
}

impl SqliteColumn for String {
    const KIND: ColumnKind = ColumnKind::Text;
    fn to_sql_value(&self) -> SqlValue {
        SqlValue::Text(self.clone())
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        match value {
            ValueRef::Text(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            other => Err(corrupt(column, format!("expected text, got {other:?}"))),
        }
    }
}

/// SQLite integers are `i64`: `u64` is stored bit-for-bit (values above `i64::MAX` read
/// back exactly but compare as negative; no counter here gets there).
impl SqliteColumn for u64 {
    const KIND: ColumnKind = ColumnKind::Unsigned;
    fn to_sql_value(&self) -> SqlValue {
        SqlValue::Integer(*self as i64)
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        Ok(sql_integer(value, column)? as u64)
    }
}

impl SqliteColumn for u32 {
    const KIND: ColumnKind = ColumnKind::Unsigned;
    fn to_sql_value(&self) -> SqlValue {
        SqlValue::Integer(i64::from(*self))
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        u32::try_from(sql_integer(value, column)?).map_err(|e| corrupt(column, e.to_string()))
    }
}

impl SqliteColumn for u16 {
    const KIND: ColumnKind = ColumnKind::Unsigned;
    fn to_sql_value(&self) -> SqlValue {
        SqlValue::Integer(i64::from(*self))
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        u16::try_from(sql_integer(value, column)?).map_err(|e| corrupt(column, e.to_string()))
    }
}

impl SqliteColumn for i64 {
    const KIND: ColumnKind = ColumnKind::Signed;
    fn to_sql_value(&self) -> SqlValue {
        SqlValue::Integer(*self)
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        sql_integer(value, column)
    }
}

impl SqliteColumn for f64 {
    const KIND: ColumnKind = ColumnKind::Float;
    fn to_sql_value(&self) -> SqlValue {
        SqlValue::Real(*self)
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        match value {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            other => Err(corrupt(column, format!("expected real, got {other:?}"))),
        }
    }
}

/// Arrays are JSON text in SQLite (`json_each` can search them).
fn json_array_to_sql<T: Serialize>(items: &[T]) -> SqlValue {
    SqlValue::Text(serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned()))
}

fn json_array_from_sql<T: for<'de> Deserialize<'de>>(
    value: ValueRef<'_>,
    column: &'static str,
) -> Result<Vec<T>, StoreError> {
    match value {
        ValueRef::Text(bytes) => {
            serde_json::from_slice(bytes).map_err(|e| corrupt(column, e.to_string()))
        }
        other => Err(corrupt(
            column,
            format!("expected JSON text, got {other:?}"),
        )),
    }
}

impl SqliteColumn for Vec<String> {
    const KIND: ColumnKind = ColumnKind::TextArray;
    fn to_sql_value(&self) -> SqlValue {
        json_array_to_sql(self)
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        json_array_from_sql(value, column)
    }
}

impl SqliteColumn for Vec<u64> {
    const KIND: ColumnKind = ColumnKind::UnsignedArray;
    fn to_sql_value(&self) -> SqlValue {
        json_array_to_sql(self)
    }
    fn from_sql_value(value: ValueRef<'_>, column: &'static str) -> Result<Self, StoreError> {
        json_array_from_sql(value, column)
    }
}

macro_rules! event_columns {
    ($($name:ident : $ty:ty => $clickhouse:literal),* $(,)?) => {
        /// One row of the `events` table.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ::clickhouse::Row)]
        pub(crate) struct EventRow {
            $(pub $name: $ty,)*
        }

        /// The columns of the `events` table, in row order.
        pub(crate) const EVENT_COLUMNS: &[EventColumn] = &[
            $(EventColumn {
                name: stringify!($name),
                clickhouse_type: $clickhouse,
                kind: <$ty as SqliteColumn>::KIND,
            },)*
        ];

        impl EventRow {
            /// Values in column order, for an SQLite `INSERT`.
            pub(crate) fn sqlite_values(&self) -> Vec<SqlValue> {
                vec![$(self.$name.to_sql_value(),)*]
            }

            /// Reads a row selected with all [`EVENT_COLUMNS`] in order.
            pub(crate) fn from_sqlite_row(row: &rusqlite::Row<'_>) -> Result<Self, StoreError> {
                let mut index = 0usize;
                let mut next = || {
                    let current = index;
                    index += 1;
                    current
                };
                Ok(EventRow {
                    $($name: <$ty as SqliteColumn>::from_sql_value(
                        row.get_ref(next())?,
                        stringify!($name),
                    )?,)*
                })
            }
        }
    };
}

event_columns! {
    // Header.
    event_id: String => "String",
    agent_id: String => "String",
    seq: u64 => "UInt64",
    time: u32 => "DateTime",
    time_ns: i64 => "Int64",
    date: u16 => "Date",
    hostname: String => "String",
    host_ips: Vec<String> => "Array(String)",
    host_os: String => "String",
    source: String => "String",
    kind: String => "String",
    raw: String => "String",
    // Shared by several bodies.
    pid: u32 => "UInt32",
    exe: String => "String",
    cmdline: String => "String",
    user: String => "String",
    // Login.
    login_action: String => "String",
    login_outcome: String => "String",
    target_user: String => "String",
    source_ip: String => "String",
    source_port: u32 => "UInt32",
    auth_method: String => "String",
    service: String => "String",
    tty: String => "String",
    command: String => "String",
    group_name: String => "String",
    // File.
    file_op: String => "String",
    file_path: String => "String",
    file_old_path: String => "String",
    file_size: u64 => "UInt64",
    file_mode: u32 => "UInt32",
    file_uid: u32 => "UInt32",
    file_gid: u32 => "UInt32",
    file_owner: String => "String",
    file_mtime_ns: i64 => "Int64",
    file_hash_before: String => "String",
    file_hash_after: String => "String",
    file_watched_root: String => "String",
    file_content_sample: String => "String",
    // Network.
    net_action: String => "String",
    transport: String => "String",
    src_ip: String => "String",
    src_port: u32 => "UInt32",
    dst_ip: String => "String",
    dst_port: u32 => "UInt32",
    direction: String => "String",
    bytes: u64 => "UInt64",
    packets: u64 => "UInt64",
    duration_ms: u64 => "UInt64",
    dns_query: String => "String",
    dns_type: String => "String",
    dns_answers: Vec<String> => "Array(String)",
    dns_rcode: String => "String",
    // Baseline check.
    check_id: String => "String",
    check_title: String => "String",
    check_status: String => "String",
    check_observed: String => "String",
    check_expected: String => "String",
    // Agent status.
    agent_version: String => "String",
    spool_depth: u64 => "UInt64",
    spool_bytes: u64 => "UInt64",
    dropped_total: u64 => "UInt64",
    cpu_percent: f64 => "Float64",
    rss_bytes: u64 => "UInt64",
    status_os: String => "String",
    counter_names: Vec<String> => "Array(String)",
    counter_values: Vec<u64> => "Array(UInt64)",
    // Process.
    ppid: u32 => "UInt32",
    process_uid: u32 => "UInt32",
    cwd: String => "String",
    parent_exe: String => "String",
}

/// The check results carried by a batch (they also stay in `events`).
pub(crate) fn check_records(rows: &[EventRow]) -> Vec<CheckRecord> {
    rows.iter()
        .filter(|r| r.kind == "check")
        .map(|r| CheckRecord {
            agent_id: r.agent_id.clone(),
            hostname: r.hostname.clone(),
            check_id: r.check_id.clone(),
            title: r.check_title.clone(),
            status: r.check_status.clone(),
            observed: r.check_observed.clone(),
            expected: r.check_expected.clone(),
            time_unix_nano: r.time_ns,
            event_id: r.event_id.clone(),
        })
        .collect()
}

/// Looks up a column by name for a `field = value` filter.
pub(crate) fn event_column(name: &str) -> Option<&'static EventColumn> {
    EVENT_COLUMNS.iter().find(|c| c.name == name)
}

/// A filter value checked against its column type, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FilterValue {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

/// Validates a `field = value` filter: the column must exist and the value must parse.
pub(crate) fn check_filter(
    filter: &FieldFilter,
) -> Result<(&'static EventColumn, FilterValue), StoreError> {
    let column = event_column(&filter.field).ok_or_else(|| {
        StoreError::InvalidQuery(format!("unknown event field {:?}", filter.field))
    })?;
    let bad = |e: &dyn std::fmt::Display| {
        StoreError::InvalidQuery(format!(
            "value {:?} for field {}: {e}",
            filter.value, column.name
        ))
    };
    let value = match column.kind {
        ColumnKind::Text | ColumnKind::TextArray => FilterValue::Text(filter.value.clone()),
        ColumnKind::Unsigned | ColumnKind::UnsignedArray => {
            FilterValue::Unsigned(filter.value.trim().parse().map_err(|e| bad(&e))?)
        }
        ColumnKind::Signed => {
            FilterValue::Signed(filter.value.trim().parse().map_err(|e| bad(&e))?)
        }
        ColumnKind::Float => FilterValue::Float(filter.value.trim().parse().map_err(|e| bad(&e))?),
    };
    Ok((column, value))
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `DateTime` seconds for a unix-nanosecond time, clamped to the type's range (1970..2106).
pub(crate) fn datetime_seconds(time_unix_nano: i64) -> u32 {
    time_unix_nano
        .div_euclid(NANOS_PER_SECOND)
        .clamp(0, i64::from(u32::MAX)) as u32
}

/// `Date` day number for a unix-nanosecond time, clamped to the type's range (1970..2149).
pub(crate) fn date_days(time_unix_nano: i64) -> u16 {
    time_unix_nano
        .div_euclid(NANOS_PER_SECOND * SECONDS_PER_DAY)
        .clamp(0, i64::from(u16::MAX)) as u16
}

/// Stable name of a protobuf enum value; values this build does not know are kept as
/// `unknown(N)` rather than lost.
fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(E) -> &'static str) -> String {
    match E::try_from(value) {
        Ok(known) => name(known).to_owned(),
        Err(_) => format!("unknown({value})"),
    }
}

/// Inverse of [`enum_name`]: unknown names read back as `unspecified` (0) unless they are
/// `unknown(N)`.
fn enum_value<E: Into<i32>>(name: &str, from_name: impl Fn(&str) -> Option<E>) -> i32 {
    if let Some(known) = from_name(name) {
        return known.into();
    }
    name.strip_prefix("unknown(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl EventRow {
    /// Flattens an event; `agent_id` (the authenticated identity) and `seq` come from the batch.
    pub(crate) fn from_event(agent_id: &str, seq: u64, event: &Event) -> Self {
        let host = event.host.clone().unwrap_or_default();
        let mut row = EventRow {
            event_id: event.event_id.clone(),
            agent_id: agent_id.to_owned(),
            seq,
            time: datetime_seconds(event.time_unix_nano),
            time_ns: event.time_unix_nano,
            date: date_days(event.time_unix_nano),
            hostname: host.hostname,
            host_ips: host.ips,
            host_os: host.os,
            source: event.source.clone(),
            kind: body_kind(event.body.as_ref()).to_owned(),
            raw: event.raw.clone(),
            ..EventRow::default()
        };
        match &event.body {
            Some(Body::Login(login)) => row.set_login(login),
            Some(Body::File(file)) => row.set_file(file),
            Some(Body::Network(net)) => row.set_network(net),
            Some(Body::Check(check)) => row.set_check(check),
            Some(Body::Status(status)) => row.set_status(status),
            Some(Body::Process(process)) => row.set_process(process),
            None => {}
        }
        row
    }

    fn set_login(&mut self, login: &LoginEvent) {
        self.login_action = enum_name(login.action, LoginAction::name);
        self.login_outcome = enum_name(login.outcome, Outcome::name);
        self.user = login.user.clone();
        self.target_user = login.target_user.clone();
        self.source_ip = login.source_ip.clone();
        self.source_port = login.source_port;
        self.auth_method = login.auth_method.clone();
        self.service = login.service.clone();
        self.tty = login.tty.clone();
        self.command = login.command.clone();
        self.pid = login.pid;
        self.group_name = login.group.clone();
    }

    fn set_file(&mut self, file: &FileEvent) {
        self.file_op = enum_name(file.op, FileOp::name);
        self.file_path = file.path.clone();
        self.file_old_path = file.old_path.clone();
        self.file_size = file.size;
        self.file_mode = file.mode;
        self.file_uid = file.uid;
        self.file_gid = file.gid;
        self.file_owner = file.owner.clone();
        self.file_mtime_ns = file.mtime_unix_nano;
        self.file_hash_before = file.hash_before.clone();
        self.file_hash_after = file.hash_after.clone();
        self.file_watched_root = file.watched_root.clone();
        self.pid = file.pid;
        self.exe = file.exe.clone();
        self.cmdline = file.cmdline.clone();
        self.file_content_sample = file.content_sample.clone();
    }

    fn set_network(&mut self, net: &NetworkEvent) {
        self.net_action = enum_name(net.action, NetAction::name);
        self.transport = net.transport.clone();
        self.src_ip = net.src_ip.clone();
        self.src_port = net.src_port;
        self.dst_ip = net.dst_ip.clone();
        self.dst_port = net.dst_port;
        self.direction = enum_name(net.direction, Direction::name);
        self.bytes = net.bytes;
        self.packets = net.packets;
        self.duration_ms = net.duration_ms;
        self.dns_query = net.dns_query.clone();
        self.dns_type = net.dns_type.clone();
        self.dns_answers = net.dns_answers.clone();
        self.dns_rcode = net.dns_rcode.clone();
        self.pid = net.pid;
        self.exe = net.exe.clone();
        self.user = net.user.clone();
    }

    fn set_check(&mut self, check: &CheckResult) {
        self.check_id = check.check_id.clone();
        self.check_title = check.title.clone();
        self.check_status = enum_name(check.status, CheckStatus::name);
        self.check_observed = check.observed.clone();
        self.check_expected = check.expected.clone();
    }

    fn set_status(&mut self, status: &AgentStatus) {
        self.agent_version = status.version.clone();
        self.spool_depth = status.spool_depth;
        self.spool_bytes = status.spool_bytes;
        self.dropped_total = status.dropped_total;
        self.cpu_percent = status.cpu_percent;
        self.rss_bytes = status.rss_bytes;
        self.status_os = status.os.clone();
        let mut counters: Vec<(&String, &u64)> = status.counters.iter().collect();
        counters.sort();
        self.counter_names = counters.iter().map(|(name, _)| (*name).clone()).collect();
        self.counter_values = counters.iter().map(|(_, value)| **value).collect();
    }

    fn set_process(&mut self, process: &ProcessEvent) {
        self.pid = process.pid;
        self.ppid = process.ppid;
        self.exe = process.exe.clone();
        self.cmdline = process.cmdline.clone();
        self.user = process.user.clone();
        self.process_uid = process.uid;
        self.cwd = process.cwd.clone();
        self.parent_exe = process.parent_exe.clone();
    }

    /// Rebuilds the event (the inverse of [`Self::from_event`]).
    pub(crate) fn into_record(self) -> EventRecord {
        let body = self.body();
        EventRecord {
            event: Event {
                event_id: self.event_id,
                time_unix_nano: self.time_ns,
                host: Some(Host {
                    hostname: self.hostname,
                    agent_id: self.agent_id.clone(),
                    ips: self.host_ips,
                    os: self.host_os,
                }),
                source: self.source,
                raw: self.raw,
                body,
            },
            agent_id: self.agent_id,
            seq: self.seq,
        }
    }

    fn body(&self) -> Option<Body> {
        Some(match self.kind.as_str() {
            "login" => Body::Login(LoginEvent {
                action: enum_value(&self.login_action, LoginAction::from_name),
                outcome: enum_value(&self.login_outcome, Outcome::from_name),
                user: self.user.clone(),
                target_user: self.target_user.clone(),
                source_ip: self.source_ip.clone(),
                source_port: self.source_port,
                auth_method: self.auth_method.clone(),
                service: self.service.clone(),
                tty: self.tty.clone(),
                command: self.command.clone(),
                pid: self.pid,
                group: self.group_name.clone(),
            }),
            "file" => Body::File(FileEvent {
                op: enum_value(&self.file_op, FileOp::from_name),
                path: self.file_path.clone(),
                old_path: self.file_old_path.clone(),
                size: self.file_size,
                mode: self.file_mode,
                uid: self.file_uid,
                gid: self.file_gid,
                owner: self.file_owner.clone(),
                mtime_unix_nano: self.file_mtime_ns,
                hash_before: self.file_hash_before.clone(),
                hash_after: self.file_hash_after.clone(),
                watched_root: self.file_watched_root.clone(),
                pid: self.pid,
                exe: self.exe.clone(),
                cmdline: self.cmdline.clone(),
                content_sample: self.file_content_sample.clone(),
            }),
            "network" => Body::Network(NetworkEvent {
                action: enum_value(&self.net_action, NetAction::from_name),
                transport: self.transport.clone(),
                src_ip: self.src_ip.clone(),
                src_port: self.src_port,
                dst_ip: self.dst_ip.clone(),
                dst_port: self.dst_port,
                direction: enum_value(&self.direction, Direction::from_name),
                bytes: self.bytes,
                packets: self.packets,
                duration_ms: self.duration_ms,
                dns_query: self.dns_query.clone(),
                dns_type: self.dns_type.clone(),
                dns_answers: self.dns_answers.clone(),
                dns_rcode: self.dns_rcode.clone(),
                pid: self.pid,
                exe: self.exe.clone(),
                user: self.user.clone(),
            }),
            "check" => Body::Check(CheckResult {
                check_id: self.check_id.clone(),
                title: self.check_title.clone(),
                status: enum_value(&self.check_status, CheckStatus::from_name),
                observed: self.check_observed.clone(),
                expected: self.check_expected.clone(),
            }),
            "status" => Body::Status(AgentStatus {
                version: self.agent_version.clone(),
                spool_depth: self.spool_depth,
                spool_bytes: self.spool_bytes,
                dropped_total: self.dropped_total,
                cpu_percent: self.cpu_percent,
                rss_bytes: self.rss_bytes,
                os: self.status_os.clone(),
                counters: self
                    .counter_names
                    .iter()
                    .cloned()
                    .zip(self.counter_values.iter().copied())
                    .collect::<HashMap<String, u64>>(),
            }),
            "process" => Body::Process(ProcessEvent {
                pid: self.pid,
                ppid: self.ppid,
                exe: self.exe.clone(),
                cmdline: self.cmdline.clone(),
                user: self.user.clone(),
                uid: self.process_uid,
                cwd: self.cwd.clone(),
                parent_exe: self.parent_exe.clone(),
            }),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_survive_a_round_trip() {
        let name = enum_name(99, LoginAction::name);
        assert_eq!(name, "unknown(99)");
        assert_eq!(enum_value(&name, LoginAction::from_name), 99);
        assert_eq!(
            enum_value("sudo", LoginAction::from_name),
            LoginAction::Sudo as i32
        );
    }

    #[test]
    fn times_are_clamped_to_the_column_types() {
        assert_eq!(datetime_seconds(-5), 0);
        assert_eq!(datetime_seconds(1_700_000_000_999_999_999), 1_700_000_000);
        assert_eq!(date_days(86_400 * NANOS_PER_SECOND * 3 + 1), 3);
        assert_eq!(date_days(i64::MAX), 65_535);
    }

    #[test]
    fn filters_are_checked_against_the_column_type() {
        assert!(check_filter(&FieldFilter::new("dst_port", "22")).is_ok());
        assert!(matches!(
            check_filter(&FieldFilter::new("dst_port", "ssh")),
            Err(StoreError::InvalidQuery(_))
        ));
        assert!(matches!(
            check_filter(&FieldFilter::new("no_such_column", "x")),
            Err(StoreError::InvalidQuery(_))
        ));
        assert_eq!(
            check_filter(&FieldFilter::new("dns_answers", "1.2.3.4"))
                .map(|(c, _)| c.kind)
                .ok(),
            Some(ColumnKind::TextArray)
        );
    }

    #[test]
    fn column_names_are_unique() {
        let mut names: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
