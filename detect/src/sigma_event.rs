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

use crate::fields::{EventLogSource, MappedEvent, RAW_FIELD, field_text};

/// Pseudo field the engine's logsource extractor reads the product from.
pub const LOGSOURCE_PRODUCT_FIELD: &str = "@shaobing.logsource.product";

/// An event ready for evaluation.
#[derive(Debug, Clone)]
pub struct SigmaEvent {
    json: Value,
    logsource: EventLogSource,
}

impl SigmaEvent {
    /// Wraps a mapped event.
    pub fn new(mapped: MappedEvent) -> Self {
        SigmaEvent {
            json: Value::Object(mapped.fields),
            logsource: mapped.logsource,
        }
    }

    /// The logsources the event belongs to.
    pub fn logsource(&self) -> &EventLogSource {
        &self.logsource
    }

    /// A field as text (numbers in decimal, lists comma-joined), if present.
    pub fn text(&self, name: &str) -> Option<String> {
        field_text(self.fields()?, name)
    }

    fn fields(&self) -> Option<&Map<String, Value>> {
        self.json.as_object()
    }

    fn raw(&self) -> Option<&str> {
        self.fields()
            .and_then(|fields| fields.get(RAW_FIELD))
            .and_then(Value::as_str)
    }
}

impl Event for SigmaEvent {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if path == LOGSOURCE_PRODUCT_FIELD {
            return Some(EventValue::Str(Cow::Borrowed(self.logsource.product)));
        }
        let fields = self.fields()?;
        if let Some(value) = fields.get(path) {
            return Some(EventValue::from(value));
        }
        // Dotted paths reach into nested objects (only `Counters.<name>` today).
        let mut segments = path.split('.');
        let mut current = fields.get(segments.next()?)?;
        for segment in segments {
            current = current.as_object()?.get(segment)?;
        }
        Some(EventValue::from(current))
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

    fn to_json(&self) -> Value {
        self.json.clone()
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        let keys = self.fields()?.keys().map(|k| Cow::Borrowed(k.as_str()));
        Some(keys.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::PRODUCT_LINUX;

    fn sigma_event(fields: Value) -> SigmaEvent {
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
