//! Field mapping: turns a wire [`Event`] into the flat JSON object the Sigma engine
//! sees, with Sigma taxonomy field names, plus the set of logsources it belongs to.
//!
//! # Logsources
//!
//! An event can belong to several logsources at once (an sshd login line is both
//! `service: auth` and `service: sshd`), so a rule is a candidate for an event when
//! each dimension the rule sets is one of the event's values for it
//! ([`EventLogSource::admits`]).
//!
//! | body | product | service | category |
//! |---|---|---|---|
//! | `login` | `linux` | `auth`, plus `LoginEvent.service` when it is a plain name (`sshd`, `sudo`, `su`, `useradd`, `cron`, ...) | – |
//! | `file` create | `linux` | – | `file_event` |
//! | `file` modify, rescan | `linux` | – | `file_event`, `file_change` |
//! | `file` rename | `linux` | – | `file_event`, `file_rename` (the new name appears, as a create would) |
//! | `file` attrib | `linux` | – | `file_change` |
//! | `file` delete | `linux` | – | `file_delete` (not `file_event`: Sysmon's file_event means creation) |
//! | `network` dns_query | `linux` | – | `dns_query`, `dns` |
//! | `network` other actions | `linux` | – | `network_connection` |
//! | `process` | `linux` | – | `process_creation` |
//! | `check` | `shaobing` | `check` | – |
//! | `status` | `shaobing` | `agent` | – |
//! | none | `linux` | – | – |
//!
//! # Fields
//!
//! Every event: `EventId` and `event_id` (the correlation engine reads the latter for
//! event references), `Hostname`, `AgentId`, `EventSource` (which capture produced it),
//! `Raw` (the original log line). **Keyword rules see only `Raw`** (see
//! [`crate::sigma_event`]): SigmaHQ's Linux keyword rules are written against log lines.
//! Empty strings and unset numbers (a zero port or pid) are left out, so `Field: null`
//! means "not known".
//!
//! | body | Sigma field | from |
//! |---|---|---|
//! | login | `Action` | `action` stable name (`ssh_fail`, `ssh_accept`, `user_add`, ...) |
//! | login | `Outcome` | `success` / `failure` |
//! | login | `User`, `TargetUser` | `user`, `target_user` |
//! | login | `SourceIp` and `IpAddress` | `source_ip` |
//! | login | `SourcePort` | `source_port` |
//! | login | `AuthMethod`, `Service`, `Tty`, `Group` | same names |
//! | login | `CommandLine` | `command` (the sudo command) |
//! | login | `ProcessId` | `pid` |
//! | file | `TargetFilename`, `OldFilename` | `path`, `old_path` |
//! | file | `FileOp` | op name (`create`, `modify`, `delete`, `rename`, `attrib`, `rescan`) |
//! | file | `Hash` and `Hashes` | `hash_after`; `HashBefore` = `hash_before` |
//! | file | `User`, `Uid`, `Gid`, `FileMode` (octal text), `FileSize` | `owner`, `uid`, `gid`, `mode`, `size` |
//! | file | `Image`, `CommandLine`, `ProcessId` | `exe`, `cmdline`, `pid` (only when known) |
//! | file | `Content` | `content_sample` |
//! | file | `WatchedRoot` | `watched_root` |
//! | network | `Action`, `Direction`, `Protocol` | action name, direction name, `transport` |
//! | network | `SourceIp`, `SourcePort`, `DestinationIp`, `DestinationPort` | `src_*`, `dst_*`; for `listen` / `listen_closed` the listening address is `DestinationIp`/`DestinationPort` (`dst_*`, else `src_*`) |
//! | network | `Initiated` | `"true"` outbound, `"false"` inbound, absent otherwise |
//! | network | `QueryName`, `QueryType`, `QueryResults` (list), `QueryStatus` | `dns_query`, `dns_type`, `dns_answers`, `dns_rcode`; also `query`, `record_type`, `answer` for the `dns` category |
//! | network | `Image`, `User`, `ProcessId`, `Bytes`, `Packets`, `DurationMs` | `exe`, `user`, `pid`, `bytes`, `packets`, `duration_ms` |
//! | process | `Image`, `CommandLine`, `ParentImage`, `User`, `Uid`, `ProcessId`, `ParentProcessId`, `CurrentDirectory` | `exe`, `cmdline`, `parent_exe`, `user`, `uid`, `pid`, `ppid`, `cwd` |
//! | check | `CheckId`, `CheckTitle`, `CheckStatus`, `Observed`, `Expected` | `check_id`, `title`, status name, `observed`, `expected` |
//! | status | `AgentVersion`, `SpoolDepth`, `SpoolBytes`, `DroppedTotal`, `CpuPercent`, `RssBytes`, `Counters.<name>` | same names |

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};
use shaobing_wire::v1::{
    AgentStatus, CheckResult, Direction, Event, FileEvent, FileOp, LoginEvent, NetAction,
    NetworkEvent, ProcessEvent, event::Body,
};

/// Product of events captured from Linux hosts.
pub const PRODUCT_LINUX: &str = "linux";
/// Product of events about Shaobing itself (agent health, baseline checks).
pub const PRODUCT_SHAOBING: &str = "shaobing";
/// Field holding the original log line; the only field keyword rules search.
pub const RAW_FIELD: &str = "Raw";

/// The logsources an event belongs to (each dimension may hold several values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventLogSource {
    /// `linux` or `shaobing`.
    pub product: &'static str,
    /// Services, e.g. `auth` and `sshd`.
    pub services: Vec<String>,
    /// Categories, e.g. `file_event` and `file_change`.
    pub categories: Vec<&'static str>,
}

impl EventLogSource {
    /// Whether a rule with this logsource can match the event: every dimension the
    /// rule sets must be one of the event's values (an unset dimension matches all).
    pub fn admits(&self, rule: &rsigma_parser::LogSource) -> bool {
        let product_ok = rule.product.as_deref().is_none_or(|p| p == self.product);
        let service_ok = rule
            .service
            .as_deref()
            .is_none_or(|s| self.services.iter().any(|own| own == s));
        let category_ok = rule
            .category
            .as_deref()
            .is_none_or(|c| self.categories.contains(&c));
        product_ok && service_ok && category_ok
    }
}

/// An event in the shape the Sigma engine evaluates.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedEvent {
    /// Flat object of Sigma fields.
    pub fields: Map<String, Value>,
    /// Logsources the event belongs to.
    pub logsource: EventLogSource,
}

impl MappedEvent {
    /// A field as text (numbers in decimal, lists comma-joined), if present.
    pub fn text(&self, name: &str) -> Option<String> {
        field_text(&self.fields, name)
    }
}

/// A field of a mapped event as text (numbers in decimal, lists comma-joined).
pub fn field_text(fields: &Map<String, Value>, name: &str) -> Option<String> {
    value_text(fields.get(name)?)
}

/// A field value as text (numbers in decimal, lists comma-joined); `None` for
/// null and objects.
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Null | Value::Object(_) => None,
    }
}

/// Builds the flat Sigma view of a wire event.
pub fn map_event(event: &Event) -> MappedEvent {
    let (fields, logsource) = map_event_fields(event);
    MappedEvent {
        fields: fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_json()))
            .collect(),
        logsource,
    }
}

/// A mapped field's value, borrowed from the wire event where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// Text.
    Text(Cow<'a, str>),
    /// A whole number.
    Number(u64),
    /// A fraction.
    Float(f64),
    /// A list of texts.
    List(&'a [String]),
    /// Named counters (`Counters.<name>`).
    Counters(&'a HashMap<String, u64>),
    /// Any JSON value (fields built outside the mapping, e.g. in tests).
    Json(Value),
}

impl FieldValue<'_> {
    /// The value as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::Text(text) => Value::String(text.to_string()),
            FieldValue::Number(n) => Value::from(*n),
            FieldValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            FieldValue::List(items) => {
                Value::Array(items.iter().map(|v| Value::String(v.clone())).collect())
            }
            FieldValue::Counters(counters) => Value::Object(
                counters
                    .iter()
                    .map(|(name, value)| (name.clone(), Value::from(*value)))
                    .collect(),
            ),
            FieldValue::Json(value) => value.clone(),
        }
    }

    /// The value as text (numbers in decimal, lists comma-joined), if it has one.
    pub fn text(&self) -> Option<String> {
        match self {
            FieldValue::Text(text) => Some(text.to_string()),
            FieldValue::Number(n) => Some(n.to_string()),
            FieldValue::Float(f) => Some(f.to_string()),
            FieldValue::List(items) => Some(items.join(",")),
            FieldValue::Counters(_) => None,
            FieldValue::Json(value) => value_text(value),
        }
    }
}

/// The same mapping as [`map_event`], as a list of `(field, value)` in mapping
/// order with static names: what the detector evaluates (no key allocations,
/// and a short list is faster to scan than a map is to search).
pub fn map_event_fields(event: &Event) -> (Vec<(&'static str, FieldValue<'_>)>, EventLogSource) {
    let mut fields = FieldWriter {
        fields: Vec::with_capacity(24),
    };
    fields.text("EventId", &event.event_id);
    fields.text("event_id", &event.event_id);
    if let Some(host) = &event.host {
        fields.text("Hostname", &host.hostname);
        fields.text("AgentId", &host.agent_id);
    }
    fields.text("EventSource", &event.source);
    fields.text(RAW_FIELD, &event.raw);

    let logsource = match &event.body {
        Some(Body::Login(login)) => map_login(login, &mut fields),
        Some(Body::File(file)) => map_file(file, &mut fields),
        Some(Body::Network(network)) => map_network(network, &mut fields),
        Some(Body::Process(process)) => map_process(process, &mut fields),
        Some(Body::Check(check)) => map_check(check, &mut fields),
        Some(Body::Status(status)) => map_status(status, &mut fields),
        None => EventLogSource {
            product: PRODUCT_LINUX,
            ..EventLogSource::default()
        },
    };
    (fields.fields, logsource)
}

fn map_login<'a>(login: &'a LoginEvent, fields: &mut FieldWriter<'a>) -> EventLogSource {
    fields.text("Action", login.action().name());
    fields.text("Outcome", login.outcome().name());
    fields.text("User", &login.user);
    fields.text("TargetUser", &login.target_user);
    fields.text("SourceIp", &login.source_ip);
    fields.text("IpAddress", &login.source_ip);
    fields.nonzero("SourcePort", u64::from(login.source_port));
    fields.text("AuthMethod", &login.auth_method);
    fields.text("Service", &login.service);
    fields.text("Tty", &login.tty);
    fields.text("CommandLine", &login.command);
    fields.nonzero("ProcessId", u64::from(login.pid));
    fields.text("Group", &login.group);

    let mut services = vec!["auth".to_string()];
    let service = login.service.trim().to_ascii_lowercase();
    if is_plain_name(&service) && service != "auth" {
        services.push(service);
    }
    EventLogSource {
        product: PRODUCT_LINUX,
        services,
        categories: Vec::new(),
    }
}

/// A service name usable as a logsource value: short, lowercase, no spaces or paths.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn map_file<'a>(file: &'a FileEvent, fields: &mut FieldWriter<'a>) -> EventLogSource {
    let op = file.op();
    fields.text("TargetFilename", &file.path);
    fields.text("OldFilename", &file.old_path);
    fields.text("FileOp", op.name());
    fields.text("Hash", &file.hash_after);
    fields.text("Hashes", &file.hash_after);
    fields.text("HashBefore", &file.hash_before);
    fields.text("User", &file.owner);
    fields.number("Uid", u64::from(file.uid));
    fields.number("Gid", u64::from(file.gid));
    if file.mode != 0 {
        fields.owned("FileMode", format!("{:04o}", file.mode & 0o7777));
    }
    fields.number("FileSize", file.size);
    fields.text("Image", &file.exe);
    fields.text("CommandLine", &file.cmdline);
    fields.nonzero("ProcessId", u64::from(file.pid));
    fields.text("Content", &file.content_sample);
    fields.text("WatchedRoot", &file.watched_root);

    let categories = match op {
        FileOp::Create | FileOp::Unspecified => vec!["file_event"],
        FileOp::Modify | FileOp::Rescan => vec!["file_event", "file_change"],
        FileOp::Rename => vec!["file_event", "file_rename"],
        FileOp::Attrib => vec!["file_change"],
        FileOp::Delete => vec!["file_delete"],
    };
    EventLogSource {
        product: PRODUCT_LINUX,
        services: Vec::new(),
        categories,
    }
}

fn map_network<'a>(network: &'a NetworkEvent, fields: &mut FieldWriter<'a>) -> EventLogSource {
    let action = network.action();
    fields.text("Action", action.name());
    fields.text("Direction", network.direction().name());
    fields.text("Protocol", &network.transport);
    if matches!(action, NetAction::Listen | NetAction::ListenClosed) {
        let (ip, port) = if network.dst_port != 0 || !network.dst_ip.is_empty() {
            (&network.dst_ip, network.dst_port)
        } else {
            (&network.src_ip, network.src_port)
        };
        fields.text("DestinationIp", ip);
        fields.nonzero("DestinationPort", u64::from(port));
    } else {
        fields.text("SourceIp", &network.src_ip);
        fields.nonzero("SourcePort", u64::from(network.src_port));
        fields.text("DestinationIp", &network.dst_ip);
        fields.nonzero("DestinationPort", u64::from(network.dst_port));
    }
    match network.direction() {
        Direction::Outbound => fields.text("Initiated", "true"),
        Direction::Inbound => fields.text("Initiated", "false"),
        Direction::Local | Direction::Unspecified => {}
    }
    fields.text("Image", &network.exe);
    fields.text("User", &network.user);
    fields.nonzero("ProcessId", u64::from(network.pid));
    fields.nonzero("Bytes", network.bytes);
    fields.nonzero("Packets", network.packets);
    fields.nonzero("DurationMs", network.duration_ms);

    let categories = if action == NetAction::DnsQuery {
        fields.text("QueryName", &network.dns_query);
        fields.text("query", &network.dns_query);
        fields.text("QueryType", &network.dns_type);
        fields.text("record_type", &network.dns_type);
        fields.text("QueryStatus", &network.dns_rcode);
        fields.list("QueryResults", &network.dns_answers);
        fields.list("answer", &network.dns_answers);
        vec!["dns_query", "dns"]
    } else {
        vec!["network_connection"]
    };
    EventLogSource {
        product: PRODUCT_LINUX,
        services: Vec::new(),
        categories,
    }
}

fn map_process<'a>(process: &'a ProcessEvent, fields: &mut FieldWriter<'a>) -> EventLogSource {
    fields.text("Image", &process.exe);
    fields.text("CommandLine", &process.cmdline);
    fields.text("ParentImage", &process.parent_exe);
    fields.text("User", &process.user);
    fields.number("Uid", u64::from(process.uid));
    fields.nonzero("ProcessId", u64::from(process.pid));
    fields.nonzero("ParentProcessId", u64::from(process.ppid));
    fields.text("CurrentDirectory", &process.cwd);
    EventLogSource {
        product: PRODUCT_LINUX,
        services: Vec::new(),
        categories: vec!["process_creation"],
    }
}

fn map_check<'a>(check: &'a CheckResult, fields: &mut FieldWriter<'a>) -> EventLogSource {
    fields.text("CheckId", &check.check_id);
    fields.text("CheckTitle", &check.title);
    fields.text("CheckStatus", check.status().name());
    fields.text("Observed", &check.observed);
    fields.text("Expected", &check.expected);
    EventLogSource {
        product: PRODUCT_SHAOBING,
        services: vec!["check".to_string()],
        categories: Vec::new(),
    }
}

fn map_status<'a>(status: &'a AgentStatus, fields: &mut FieldWriter<'a>) -> EventLogSource {
    fields.text("AgentVersion", &status.version);
    fields.number("SpoolDepth", status.spool_depth);
    fields.number("SpoolBytes", status.spool_bytes);
    fields.number("DroppedTotal", status.dropped_total);
    if status.cpu_percent.is_finite() {
        fields
            .fields
            .push(("CpuPercent", FieldValue::Float(status.cpu_percent)));
    }
    fields.number("RssBytes", status.rss_bytes);
    fields.text("Os", &status.os);
    if !status.counters.is_empty() {
        fields
            .fields
            .push(("Counters", FieldValue::Counters(&status.counters)));
    }
    EventLogSource {
        product: PRODUCT_SHAOBING,
        services: vec!["agent".to_string()],
        categories: Vec::new(),
    }
}

/// Writes fields, leaving out empty strings and unset numbers. Each name is
/// written at most once per event (the mapping functions above guarantee it).
struct FieldWriter<'a> {
    fields: Vec<(&'static str, FieldValue<'a>)>,
}

impl<'a> FieldWriter<'a> {
    fn text(&mut self, name: &'static str, value: &'a str) {
        if !value.is_empty() {
            self.fields
                .push((name, FieldValue::Text(Cow::Borrowed(value))));
        }
    }

    fn owned(&mut self, name: &'static str, value: String) {
        if !value.is_empty() {
            self.fields
                .push((name, FieldValue::Text(Cow::Owned(value))));
        }
    }

    /// A number where zero is meaningful (uid 0 is root).
    fn number(&mut self, name: &'static str, value: u64) {
        self.fields.push((name, FieldValue::Number(value)));
    }

    /// A number where zero means "not known" (port, pid).
    fn nonzero(&mut self, name: &'static str, value: u64) {
        if value != 0 {
            self.number(name, value);
        }
    }

    fn list(&mut self, name: &'static str, values: &'a [String]) {
        if !values.is_empty() {
            self.fields.push((name, FieldValue::List(values)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shaobing_wire::v1::{Host, LoginAction, Outcome};

    fn event_with(body: Body) -> Event {
        Event {
            event_id: "7-0".to_string(),
            time_unix_nano: 1_700_000_000_000_000_000,
            host: Some(Host {
                hostname: "web-1".to_string(),
                agent_id: "agent-1".to_string(),
                ..Host::default()
            }),
            source: "auth_log".to_string(),
            raw: "sshd[1]: Failed password for root from 203.0.113.7 port 5555 ssh2".to_string(),
            body: Some(body),
        }
    }

    fn logsource(
        product: Option<&str>,
        service: Option<&str>,
        category: Option<&str>,
    ) -> rsigma_parser::LogSource {
        rsigma_parser::LogSource {
            product: product.map(str::to_string),
            service: service.map(str::to_string),
            category: category.map(str::to_string),
            ..rsigma_parser::LogSource::default()
        }
    }

    #[test]
    fn ssh_failure_maps_to_auth_and_sshd_with_taxonomy_names() {
        let login = LoginEvent {
            action: LoginAction::SshFail as i32,
            outcome: Outcome::Failure as i32,
            user: "root".to_string(),
            source_ip: "203.0.113.7".to_string(),
            source_port: 5555,
            auth_method: "password".to_string(),
            service: "sshd".to_string(),
            ..LoginEvent::default()
        };
        let mapped = map_event(&event_with(Body::Login(login)));
        assert_eq!(mapped.text("Action").as_deref(), Some("ssh_fail"));
        assert_eq!(mapped.text("Outcome").as_deref(), Some("failure"));
        assert_eq!(mapped.text("SourceIp").as_deref(), Some("203.0.113.7"));
        assert_eq!(mapped.text("IpAddress").as_deref(), Some("203.0.113.7"));
        assert_eq!(mapped.fields.get("SourcePort"), Some(&Value::from(5555)));
        assert_eq!(mapped.text("Hostname").as_deref(), Some("web-1"));
        assert_eq!(mapped.text("AgentId").as_deref(), Some("agent-1"));
        assert_eq!(mapped.text("event_id").as_deref(), Some("7-0"));
        assert!(
            mapped
                .text(RAW_FIELD)
                .is_some_and(|raw| raw.contains("Failed password"))
        );
        assert_eq!(mapped.fields.get("Tty"), None, "empty strings are left out");
        assert_eq!(mapped.fields.get("ProcessId"), None, "pid 0 means unknown");
        assert_eq!(mapped.logsource.services, vec!["auth", "sshd"]);
        assert!(
            mapped
                .logsource
                .admits(&logsource(Some("linux"), Some("auth"), None))
        );
        assert!(
            mapped
                .logsource
                .admits(&logsource(Some("linux"), Some("sshd"), None))
        );
        assert!(
            mapped
                .logsource
                .admits(&logsource(Some("linux"), None, None))
        );
        assert!(
            !mapped
                .logsource
                .admits(&logsource(Some("linux"), Some("sudo"), None))
        );
        assert!(
            !mapped
                .logsource
                .admits(&logsource(Some("windows"), None, None))
        );
        assert!(
            !mapped
                .logsource
                .admits(&logsource(None, None, Some("process_creation")))
        );
    }

    #[test]
    fn odd_service_names_do_not_become_logsources() {
        let login = LoginEvent {
            service: "/usr/sbin/sshd -D".to_string(),
            ..LoginEvent::default()
        };
        let mapped = map_event(&event_with(Body::Login(login)));
        assert_eq!(mapped.logsource.services, vec!["auth"]);
    }

    #[test]
    fn file_ops_map_to_categories() {
        let categories = |op: FileOp| {
            let file = FileEvent {
                op: op as i32,
                path: "/etc/passwd".to_string(),
                ..FileEvent::default()
            };
            map_event(&event_with(Body::File(file)))
                .logsource
                .categories
        };
        assert_eq!(categories(FileOp::Create), vec!["file_event"]);
        assert_eq!(
            categories(FileOp::Modify),
            vec!["file_event", "file_change"]
        );
        assert_eq!(
            categories(FileOp::Rename),
            vec!["file_event", "file_rename"]
        );
        assert_eq!(categories(FileOp::Delete), vec!["file_delete"]);
        assert_eq!(categories(FileOp::Attrib), vec!["file_change"]);
    }

    #[test]
    fn file_fields_use_taxonomy_names() {
        let file = FileEvent {
            op: FileOp::Rename as i32,
            path: "/var/www/html/x.php".to_string(),
            old_path: "/tmp/x".to_string(),
            mode: 0o100644,
            uid: 0,
            hash_after: "abc".to_string(),
            content_sample: "<?php eval($_POST['x']);".to_string(),
            watched_root: "/var/www".to_string(),
            ..FileEvent::default()
        };
        let mapped = map_event(&event_with(Body::File(file)));
        assert_eq!(
            mapped.text("TargetFilename").as_deref(),
            Some("/var/www/html/x.php")
        );
        assert_eq!(mapped.text("OldFilename").as_deref(), Some("/tmp/x"));
        assert_eq!(mapped.text("FileOp").as_deref(), Some("rename"));
        assert_eq!(mapped.text("FileMode").as_deref(), Some("0644"));
        assert_eq!(
            mapped.fields.get("Uid"),
            Some(&Value::from(0)),
            "uid 0 is root, kept"
        );
        assert_eq!(mapped.text("Hashes").as_deref(), Some("abc"));
        assert!(mapped.text("Content").is_some_and(|c| c.contains("eval(")));
        assert_eq!(mapped.text("WatchedRoot").as_deref(), Some("/var/www"));
    }

    #[test]
    fn outbound_connection_is_initiated() {
        let network = NetworkEvent {
            action: NetAction::Connect as i32,
            direction: Direction::Outbound as i32,
            transport: "tcp".to_string(),
            src_ip: "10.0.0.5".to_string(),
            src_port: 40000,
            dst_ip: "198.51.100.9".to_string(),
            dst_port: 4444,
            ..NetworkEvent::default()
        };
        let mapped = map_event(&event_with(Body::Network(network)));
        assert_eq!(mapped.text("Initiated").as_deref(), Some("true"));
        assert_eq!(
            mapped.text("DestinationIp").as_deref(),
            Some("198.51.100.9")
        );
        assert_eq!(
            mapped.fields.get("DestinationPort"),
            Some(&Value::from(4444))
        );
        assert_eq!(mapped.logsource.categories, vec!["network_connection"]);
    }

    #[test]
    fn listener_port_is_the_destination_port() {
        let network = NetworkEvent {
            action: NetAction::Listen as i32,
            src_ip: "0.0.0.0".to_string(),
            src_port: 6379,
            ..NetworkEvent::default()
        };
        let mapped = map_event(&event_with(Body::Network(network)));
        assert_eq!(
            mapped.fields.get("DestinationPort"),
            Some(&Value::from(6379))
        );
        assert_eq!(mapped.fields.get("SourcePort"), None);
        assert_eq!(mapped.fields.get("Initiated"), None);
    }

    #[test]
    fn dns_query_is_dns_category_with_answers_list() {
        let network = NetworkEvent {
            action: NetAction::DnsQuery as i32,
            dns_query: "pool.example".to_string(),
            dns_type: "A".to_string(),
            dns_answers: vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()],
            ..NetworkEvent::default()
        };
        let mapped = map_event(&event_with(Body::Network(network)));
        assert_eq!(mapped.logsource.categories, vec!["dns_query", "dns"]);
        assert_eq!(mapped.text("QueryName").as_deref(), Some("pool.example"));
        assert_eq!(
            mapped.text("QueryResults").as_deref(),
            Some("192.0.2.1,192.0.2.2")
        );
    }

    #[test]
    fn process_and_status_mapping() {
        let process = ProcessEvent {
            exe: "/usr/bin/curl".to_string(),
            cmdline: "curl http://x".to_string(),
            parent_exe: "/bin/bash".to_string(),
            pid: 42,
            ppid: 1,
            ..ProcessEvent::default()
        };
        let mapped = map_event(&event_with(Body::Process(process)));
        assert_eq!(mapped.logsource.categories, vec!["process_creation"]);
        assert_eq!(mapped.text("ParentImage").as_deref(), Some("/bin/bash"));
        assert_eq!(mapped.fields.get("ParentProcessId"), Some(&Value::from(1)));

        let status = AgentStatus {
            dropped_total: 12,
            spool_depth: 3,
            ..AgentStatus::default()
        };
        let mapped = map_event(&event_with(Body::Status(status)));
        assert_eq!(mapped.logsource.product, PRODUCT_SHAOBING);
        assert_eq!(mapped.logsource.services, vec!["agent"]);
        assert_eq!(mapped.fields.get("DroppedTotal"), Some(&Value::from(12)));
        assert_eq!(mapped.fields.get("SpoolDepth"), Some(&Value::from(3)));
    }
}
