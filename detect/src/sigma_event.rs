//! [`SigmaEvent`]: the rsigma [`Event`] implementation over a [`MappedEvent`].
//!
//! Two things differ from rsigma's `JsonEvent`:
//! - keyword rules (field-less values) search only the original log line
//!   ([`crate::fields::RAW_FIELD`]), as SigmaHQ's Linux keyword rules assume, instead
//!   of every string in the event (which would let a keyword like `sudo` match a
//!   service name or a path);
//! - the event's product is readable under [`LOGSOURCE_PRODUCT_FIELD`] so that the
//!   engine's logsource pruning can skip other products' rules early.

use std::borrow::Cow;

use rsigma_eval::event::{Event, EventValue};
use serde_json::{Map, Value};
use shaobing_wire::v1::Event as WireEvent;

use crate::fields::{EventLogSource, FieldValue, MappedEvent, RAW_FIELD, map_event_fields};

/// Pseudo field the engine's logsource extractor reads the product from.
pub const LOGSOURCE_PRODUCT_FIELD: &str = "@shaobing.logsource.product";

/// An event ready for evaluation.
///
/// Fields are a short list scanned linearly (about 10–25 entries; comparing
/// lengths first makes a miss nearly free), which is faster than searching a
/// map for the many lookups of absent fields that Sigma rules make.
/// Values borrow from the wire event: mapping allocates almost nothing.
#[derive(Debug, Clone)]
pub struct SigmaEvent<'a> {
    fields: Vec<(Cow<'static, str>, FieldValue<'a>)>,
    logsource: EventLogSource,
}

impl<'a> SigmaEvent<'a> {
    /// Maps a wire event (the detector's path).
    pub fn from_event(event: &'a WireEvent) -> Self {
        let (fields, logsource) = map_event_fields(event);
        SigmaEvent {
            fields: fields
                .into_iter()
                .map(|(name, value)| (Cow::Borrowed(name), value))
                .collect(),
            logsource,
        }
    }

    /// Wraps a mapped event.
    pub fn new(mapped: MappedEvent) -> Self {
        SigmaEvent {
            fields: mapped
                .fields
                .into_iter()
                .map(|(name, value)| (Cow::Owned(name), FieldValue::Json(value)))
                .collect(),
            logsource: mapped.logsource,
        }
    }

    /// The logsources the event belongs to.
    pub fn logsource(&self) -> &EventLogSource {
        &self.logsource
    }

    /// A field as text (numbers in decimal, lists comma-joined), if present.
    pub fn text(&self, name: &str) -> Option<String> {
        self.value(name)?.text()
    }

    /// A top-level field's value.
    pub fn value(&self, name: &str) -> Option<&FieldValue<'a>> {
        self.fields
            .iter()
            .find(|(field, _)| field.len() == name.len() && field == name)
            .map(|(_, value)| value)
    }

    fn raw(&self) -> Option<&str> {
        match self.value(RAW_FIELD)? {
            FieldValue::Text(text) => Some(text),
            FieldValue::Json(value) => value.as_str(),
            _ => None,
        }
    }
}

fn event_value<'v>(value: &'v FieldValue<'_>) -> EventValue<'v> {
    match value {
        FieldValue::Text(text) => EventValue::Str(Cow::Borrowed(text)),
        FieldValue::Number(n) => {
            i64::try_from(*n).map_or(EventValue::Float(*n as f64), EventValue::Int)
        }
        FieldValue::Float(f) => EventValue::Float(*f),
        FieldValue::List(items) => EventValue::Array(
            items
                .iter()
                .map(|item| EventValue::Str(Cow::Borrowed(item.as_str())))
                .collect(),
        ),
        FieldValue::Counters(counters) => EventValue::Map(
            counters
                .iter()
                .map(|(name, n)| (Cow::Borrowed(name.as_str()), EventValue::Int(*n as i64)))
                .collect(),
        ),
        FieldValue::Json(value) => EventValue::from(value),
    }
}

impl Event for SigmaEvent<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(value) = self.value(path) {
            return Some(event_value(value));
        }
        if path == LOGSOURCE_PRODUCT_FIELD {
            return Some(EventValue::Str(Cow::Borrowed(self.logsource.product)));
        }
        // Dotted paths reach into nested objects (only `Counters.<name>` today).
        let (first, rest) = path.split_once('.')?;
        match self.value(first)? {
            FieldValue::Counters(counters) => counters
                .get(rest)
                .map(|n| i64::try_from(*n).map_or(EventValue::Float(*n as f64), EventValue::Int)),
            FieldValue::Json(value) => {
                let mut current = value;
                for segment in rest.split('.') {
                    current = current.as_object()?.get(segment)?;
                }
                Some(EventValue::from(current))
            }
            _ => None,
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.raw().is_some_and(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.raw().map(Cow::Borrowed).into_iter().collect()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        if let Some(raw) = self.raw() {
            visit(raw);
        }
    }

    /// The whole event as a JSON object. The correlation engine calls this for
    /// every detection that feeds a correlation but reads only the event id
    /// from it (event references), so only `event_id` is included: copying
    /// every field there was a measurable share of the time of busy windows.
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        if let Some(id) = self.value("event_id") {
            object.insert("event_id".to_string(), id.to_json());
        }
        Value::Object(object)
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        let keys = self
            .fields
            .iter()
            .map(|(name, _)| Cow::Borrowed(name.as_ref()));
        Some(keys.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::PRODUCT_LINUX;

    fn sigma_event(fields: Value) -> SigmaEvent<'static> {
        let Value::Object(fields) = fields else {
            panic!("test fields must be an object");
        };
        SigmaEvent::new(MappedEvent {
            fields,
            logsource: EventLogSource {
                product: PRODUCT_LINUX,
                ..EventLogSource::default()
            },
        })
    }

    #[test]
    fn keyword_search_sees_only_the_raw_line() {
        let event = sigma_event(serde_json::json!({
            "Raw": "sshd[9]: Failed password for root",
            "Service": "sudo",
        }));
        assert!(event.any_string_value(&|s| s.contains("Failed password")));
        assert!(!event.any_string_value(&|s| s.contains("sudo")));
        assert_eq!(event.all_string_values().len(), 1);
    }

    #[test]
    fn event_without_raw_matches_no_keyword() {
        let event = sigma_event(serde_json::json!({"TargetFilename": "/etc/passwd"}));
        assert!(!event.any_string_value(&|_| true));
    }

    #[test]
    fn json_view_carries_the_event_id_for_references() {
        let event = sigma_event(serde_json::json!({"event_id": "e-1", "User": "root"}));
        assert_eq!(event.to_json(), serde_json::json!({"event_id": "e-1"}));
    }

    #[test]
    fn fields_nested_paths_and_product_are_readable() {
        let event = sigma_event(serde_json::json!({
            "SourcePort": 22,
            "Counters": {"parse_errors": 3},
        }));
        assert_eq!(event.get_field("SourcePort"), Some(EventValue::Int(22)));
        assert_eq!(
            event.get_field("Counters.parse_errors"),
            Some(EventValue::Int(3))
        );
        assert_eq!(event.get_field("Counters.missing"), None);
        assert_eq!(
            event.get_field(LOGSOURCE_PRODUCT_FIELD),
            Some(EventValue::Str(Cow::Borrowed("linux")))
        );
        assert_eq!(event.text("SourcePort").as_deref(), Some("22"));
    }
}
