//! Turning a false positive into a Sigma filter: the candidate `field = value` pairs
//! from the alert's matching events (pre-selected: host, user, addresses, paths...),
//! the filter YAML for the pairs the operator keeps, and saving it into the
//! collector's `rules.local/filters/` (through [`crate::rule_admin::RuleAdmin`],
//! hot-reloaded, audited as `rule.filter.create`).
//!
//! The filter names the detection rules behind the alert (for a correlation, the
//! rules it counts), and excludes events whose fields equal the kept values
//! (`condition: not selection`; several values of one field are alternatives).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use super::audit;
use super::context::Ctx;
use super::error::{ConsoleError, ConsoleResult};
use super::rule_ops::{admin_error, admin_of};
use super::state::SharedState;
use crate::rule_admin::SavedFilter;
use crate::store::{AlertRecord, EventRecord};

/// Fields never offered (per-event identifiers and volatile values).
const SKIPPED: &[&str] = &[
    "Raw",
    "EventId",
    "event_id",
    "AgentId",
    // Same value as SourceIp (a Sigma alias).
    "IpAddress",
    "SourcePort",
    "ProcessId",
    "ParentProcessId",
    "Bytes",
    "Packets",
    "DurationMs",
    "FileSize",
    "Hash",
    "Hashes",
    "HashBefore",
    "SpoolDepth",
    "SpoolBytes",
    "CpuPercent",
    "RssBytes",
];

/// Fields selected by default.
const PRESELECTED: &[&str] = &[
    "Hostname",
    "User",
    "TargetUser",
    "SourceIp",
    "DestinationIp",
    "DestinationPort",
    "TargetFilename",
    "QueryName",
    "Image",
];

/// Most distinct values offered per field.
const MAX_VALUES: usize = 20;

/// One `field = value` the operator may keep in the filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Sigma field name.
    pub field: String,
    /// Value seen in a matching event.
    pub value: String,
    /// Selected by default.
    pub preselected: bool,
}

/// The candidate pairs of the alert's matching events, by field.
pub fn candidates(events: &[EventRecord]) -> Vec<Candidate> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for record in events {
        let mapped = shaobing_detect::fields::map_event(&record.event);
        for field in mapped.fields.keys() {
            if SKIPPED.contains(&field.as_str()) || field.starts_with("Counters.") {
                continue;
            }
            if let Some(value) = mapped.text(field).filter(|v| !v.is_empty()) {
                let values = seen.entry(field.clone()).or_default();
                if values.len() < MAX_VALUES {
                    values.insert(value.to_string());
                }
            }
        }
    }
    seen.into_iter()
        .flat_map(|(field, values)| {
            let preselected = PRESELECTED.contains(&field.as_str());
            values.into_iter().map(move |value| Candidate {
                field: field.clone(),
                value,
                preselected,
            })
        })
        .collect()
}

/// The pre-selected pairs.
pub fn default_selection(candidates: &[Candidate]) -> Vec<(String, String)> {
    candidates
        .iter()
        .filter(|c| c.preselected)
        .map(|c| (c.field.clone(), c.value.clone()))
        .collect()
}

/// What a filter is made of.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// The filter's rule id (a UUID).
    pub id: String,
    /// Detection rules it applies to.
    pub targets: Vec<String>,
    /// Kept `field = value` pairs.
    pub selection: Vec<(String, String)>,
    /// Operator.
    pub author: String,
    /// Creation time (unix nanoseconds).
    pub now_unix_nano: i64,
}

fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn valid_field(field: &str) -> bool {
    !field.is_empty()
        && field.len() <= 100
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Checks the selection: at least one pair, plain field names, sane values.
pub fn check_selection(selection: &[(String, String)], ctx: &Ctx) -> ConsoleResult<()> {
    if selection.is_empty() {
        return Err(ConsoleError::Invalid(
            ctx.t("请至少选择一个字段值", "Select at least one field value")
                .to_owned(),
        ));
    }
    for (field, value) in selection {
        if !valid_field(field) {
            return Err(ConsoleError::Invalid(format!("bad field name {field:?}")));
        }
        if value.is_empty() || value.len() > 2000 {
            return Err(ConsoleError::Invalid(format!("bad value for {field}")));
        }
    }
    Ok(())
}

/// The filter's YAML (one Sigma filter document).
pub fn render_yaml(alert: &AlertRecord, spec: &FilterSpec) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(spec.now_unix_nano))
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    let mut by_field: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (field, value) in &spec.selection {
        let values = by_field.entry(field).or_default();
        if !values.contains(&value.as_str()) {
            values.push(value);
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "title: {}\n",
        quoted(&format!(
            "误报过滤 / False positive filter: {}",
            alert.rule_title
        ))
    ));
    out.push_str(&format!("id: {}\nstatus: experimental\n", spec.id));
    out.push_str(&format!(
        "description: {}\n",
        quoted(&format!(
            "由误报告警 {id}（规则 {rule}，主机 {host}）生成 / Created from alert {id} (rule {rule}, host {host}) closed as a false positive.",
            id = alert.alert_id,
            rule = alert.rule_id,
            host = alert.hostname
        ))
    ));
    out.push_str(&format!(
        "author: {}\ndate: {}\nfilter:\n    rules:\n",
        quoted(&spec.author),
        quoted(&date)
    ));
    for target in &spec.targets {
        out.push_str(&format!("        - {}\n", quoted(target)));
    }
    out.push_str("    selection:\n");
    for (field, values) in by_field {
        match values.as_slice() {
            [one] => out.push_str(&format!("        {field}: {}\n", quoted(one))),
            many => {
                out.push_str(&format!("        {field}:\n"));
                for value in many {
                    out.push_str(&format!("            - {}\n", quoted(value)));
                }
            }
        }
    }
    out.push_str("    condition: not selection\n");
    out
}

/// The detection rules a filter for this alert must name.
pub async fn targets(
    state: &SharedState,
    ctx: &Ctx,
    alert: &AlertRecord,
) -> ConsoleResult<Vec<String>> {
    let (task_state, rule_id) = (state.clone(), alert.rule_id.clone());
    tokio::task::spawn_blocking(move || admin_of(&task_state)?.filter_targets(&rule_id))
        .await?
        .map_err(|e| admin_error(ctx.lang, e))
}

/// A fresh filter id.
pub fn new_filter_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Builds the spec for the alert from the operator's selection.
pub async fn spec(
    state: &SharedState,
    ctx: &Ctx,
    alert: &AlertRecord,
    id: Option<String>,
    selection: Vec<(String, String)>,
) -> ConsoleResult<FilterSpec> {
    check_selection(&selection, ctx)?;
    let id = id
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .unwrap_or_else(new_filter_id);
    Ok(FilterSpec {
        id,
        targets: targets(state, ctx, alert).await?,
        selection,
        author: ctx.actor(),
        now_unix_nano: shaobing_wire::now_unix_nano(),
    })
}

/// Saves the filter into `rules.local/filters/` and puts it in service.
pub async fn save(
    state: &SharedState,
    ctx: &Ctx,
    alert: &AlertRecord,
    spec: &FilterSpec,
) -> ConsoleResult<SavedFilter> {
    let yaml = render_yaml(alert, spec);
    let stem = format!("fp-{}", spec.id);
    let task_state = state.clone();
    let task_yaml = yaml.clone();
    let saved =
        tokio::task::spawn_blocking(move || admin_of(&task_state)?.save_filter(&stem, &task_yaml))
            .await?
            .map_err(|e| admin_error(ctx.lang, e))?;
    let selection: Vec<String> = spec
        .selection
        .iter()
        .map(|(f, v)| format!("{f}={v}"))
        .collect();
    audit::record(
        state,
        ctx,
        "rule.filter.create",
        &saved.id,
        json!({
            "alert": alert.alert_id,
            "rule": alert.rule_id,
            "targets": spec.targets,
            "selection": selection,
            "file": saved.path.display().to_string(),
        }),
    )
    .await?;
    Ok(saved)
}
