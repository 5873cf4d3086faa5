//! "New terms" rules: a detection rule that alerts only when the combination of
//! some of its fields' values was not seen within a history window (Elastic's
//! *New Terms* rule type; Sigma correlations cannot express "never seen before").
//!
//! # Writing one
//!
//! A plain Sigma detection rule opts in with custom attributes:
//!
//! ```yaml
//! detection:
//!     selection: {Action: ssh_accept}
//!     condition: selection
//! custom_attributes:
//!     shaobing.new_terms.fields: [User, SourceIp]   # required: the terms (one field or a list)
//!     shaobing.new_terms.history: 30d               # default 30d (s, m, h, d, w; a number = seconds)
//!     shaobing.new_terms.learning: 7d               # default 0: no learning period
//! ```
//!
//! # Semantics
//!
//! - Every event the rule's detection matches **refreshes** the history of its
//!   combination of values (the last time it was seen), whether it alerts or not.
//! - The match raises an alert only if that combination was **not seen within
//!   `history`** before the event (event time, like all of `detect`), and the
//!   learning period is over.
//! - An event lacking one of the fields (or with an empty value) neither alerts
//!   nor refreshes anything.
//! - History is fleet-wide per rule (add `AgentId` to `fields` for per-host terms),
//!   and the alert is grouped by the fields unless `shaobing.group_by` says otherwise.
//!
//! # Cold start
//!
//! A fresh collector has no history, so every combination would be new (Elastic
//! fills its history from stored events; `detect` does no I/O). `learning` is a
//! period, starting at the first event the rule matches, during which history is
//! filled but nothing alerts. Its start is kept in the snapshot, so a restart or a
//! reload neither restarts nor skips it. Without `learning`, the first sight of
//! each combination after install alerts (the first login of every user).
//!
//! # Bounds and state
//!
//! At most [`MAX_TERMS_PER_RULE`] combinations are kept per rule; beyond that the
//! least recently seen is dropped ([`NewTermsBook::evicted`] counts them; a
//! dropped combination alerts again when next seen). Combinations older than the
//! history window are swept with the correlation windows. The whole book is part
//! of [`crate::Detector::snapshot`]; a hot reload keeps the history of every rule
//! whose `fields` are unchanged. Rules without these attributes cost nothing: the
//! detector looks at this module only for matches of new-terms rules.

use std::collections::{BTreeMap, HashMap};

use hashlink::LinkedHashMap;
use serde::{Deserialize, Serialize};

use crate::sigma_event::SigmaEvent;

/// Custom attribute: the fields whose value combination must be new.
pub const ATTR_FIELDS: &str = "shaobing.new_terms.fields";
/// Custom attribute: how long a combination stays "seen".
pub const ATTR_HISTORY: &str = "shaobing.new_terms.history";
/// Custom attribute: the learning period at the start.
pub const ATTR_LEARNING: &str = "shaobing.new_terms.learning";
/// Prefix of the attributes above.
pub const ATTR_PREFIX: &str = "shaobing.new_terms.";
/// Default history window: 30 days.
pub const DEFAULT_HISTORY_SECS: u64 = 30 * 86_400;
/// Most combinations kept per rule.
pub const MAX_TERMS_PER_RULE: usize = 100_000;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A rule's new-terms settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTermsSpec {
    /// Fields whose value combination is the term.
    pub fields: Vec<String>,
    /// History window in seconds.
    pub history_secs: u64,
    /// Learning period in seconds (0: none).
    pub learning_secs: u64,
}

impl NewTermsSpec {
    /// Reads the attributes of a rule: `Ok(None)` when it does not use new terms.
    pub fn read<V: Serialize>(attributes: &HashMap<String, V>) -> Result<Option<Self>, String> {
        let as_json = |key: &str| {
            attributes
                .get(key)
                .and_then(|v| serde_json::to_value(v).ok())
        };
        let known = [ATTR_FIELDS, ATTR_HISTORY, ATTR_LEARNING];
        let mut ours: Vec<&String> = attributes
            .keys()
            .filter(|key| key.starts_with(ATTR_PREFIX))
            .collect();
        ours.sort();
        if let Some(unknown) = ours.iter().find(|key| !known.contains(&key.as_str())) {
            return Err(format!(
                "unknown attribute {unknown} (expected {ATTR_FIELDS}, {ATTR_HISTORY} or {ATTR_LEARNING})"
            ));
        }
        let Some(fields) = as_json(ATTR_FIELDS) else {
            return match ours.first() {
                Some(key) => Err(format!("{key} needs {ATTR_FIELDS}")),
                None => Ok(None),
            };
        };
        let bad_fields = || format!("{ATTR_FIELDS} must be a list of field names");
        let fields: Vec<String> = match fields {
            serde_json::Value::String(field) => vec![field],
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(bad_fields)?,
            _ => return Err(bad_fields()),
        };
        let mut distinct = fields.clone();
        distinct.sort();
        distinct.dedup();
        if fields.is_empty()
            || distinct.len() != fields.len()
            || fields.iter().any(|f| f.trim().is_empty())
        {
            return Err(bad_fields());
        }
        let duration = |key: &str, default: u64| match as_json(key) {
            None => Ok(default),
            Some(value) => parse_duration(&value)
                .ok_or_else(|| format!("{key} must be a duration like 30d, 12h or 90m")),
        };
        let history_secs = duration(ATTR_HISTORY, DEFAULT_HISTORY_SECS)?;
        if history_secs == 0 {
            return Err(format!("{ATTR_HISTORY} must be longer than 0"));
        }
        Ok(Some(NewTermsSpec {
            fields,
            history_secs,
            learning_secs: duration(ATTR_LEARNING, 0)?,
        }))
    }
}

/// `30d`, `12h`, `90m`, `45s`, `2w`, or a number of seconds.
pub fn parse_duration(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(text) => {
            let text = text.trim();
            let unit = match text.chars().last()? {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 7 * 86_400,
                c if c.is_ascii_digit() => return text.parse().ok(),
                _ => return None,
            };
            let number: u64 = text[..text.len() - 1].trim().parse().ok()?;
            number.checked_mul(unit)
        }
        _ => None,
    }
}

/// What the history says about one match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen within the history window: alert.
    New,
    /// Seen within the window: no alert.
    Seen,
    /// New, but the rule is still learning: no alert.
    Learning,
    /// A field is missing: no alert, history untouched.
    Incomplete,
}

/// The history of every new-terms rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "BookSnapshot", into = "BookSnapshot")]
pub struct NewTermsBook {
    rules: HashMap<String, RuleTerms>,
    evicted: u64,
}

#[derive(Debug, Clone)]
struct RuleTerms {
    fields: Vec<String>,
    /// Time of the first event the rule matched (the learning period starts here).
    started_unix_nano: i64,
    history_nanos: i64,
    /// Combination (JSON array of values) → last time seen, least recently seen first.
    seen: LinkedHashMap<String, i64>,
}

impl NewTermsBook {
    /// Judges a match of `rule_id` on `event` at `time_unix_nano` and records it.
    pub fn observe(
        &mut self,
        rule_id: &str,
        spec: &NewTermsSpec,
        event: &SigmaEvent<'_>,
        time_unix_nano: i64,
    ) -> Verdict {
        let mut values = Vec::with_capacity(spec.fields.len());
        for field in &spec.fields {
            match event.text(field) {
                Some(value) if !value.is_empty() => values.push(value),
                _ => return Verdict::Incomplete,
            }
        }
        self.observe_values(rule_id, spec, &values, time_unix_nano)
    }

    /// [`Self::observe`] with the field values already extracted.
    pub fn observe_values(
        &mut self,
        rule_id: &str,
        spec: &NewTermsSpec,
        values: &[String],
        time_unix_nano: i64,
    ) -> Verdict {
        // A JSON array: unambiguous whatever the values hold.
        let key = serde_json::to_string(values).unwrap_or_default();
        let history_nanos = seconds_to_nanos(spec.history_secs);
        let terms = self
            .rules
            .entry(rule_id.to_string())
            .or_insert_with(|| RuleTerms::new(spec.fields.clone(), time_unix_nano));
        if terms.fields != spec.fields {
            *terms = RuleTerms::new(spec.fields.clone(), time_unix_nano);
        }
        terms.history_nanos = history_nanos;
        let last = terms.seen.get(&key).copied();
        let novel = last.is_none_or(|last| time_unix_nano.saturating_sub(last) > history_nanos);
        terms
            .seen
            .insert(key, last.map_or(time_unix_nano, |l| l.max(time_unix_nano)));
        while terms.seen.len() > MAX_TERMS_PER_RULE {
            terms.seen.pop_front();
            self.evicted += 1;
        }
        let learning_ends = terms
            .started_unix_nano
            .saturating_add(seconds_to_nanos(spec.learning_secs));
        match (
            novel,
            spec.learning_secs > 0 && time_unix_nano < learning_ends,
        ) {
            (false, _) => Verdict::Seen,
            (true, true) => Verdict::Learning,
            (true, false) => Verdict::New,
        }
    }

    /// Drops combinations last seen more than their rule's history window before
    /// `now_unix_nano` (they would count as new anyway).
    pub fn evict_expired(&mut self, now_unix_nano: i64) {
        for terms in self.rules.values_mut() {
            let cutoff = now_unix_nano.saturating_sub(terms.history_nanos);
            while terms.seen.front().is_some_and(|(_, last)| *last < cutoff) {
                terms.seen.pop_front();
            }
        }
    }

    /// Keeps the history of the rules for which `keep(rule_id, fields)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &[String]) -> bool) {
        self.rules.retain(|id, terms| keep(id, &terms.fields));
    }

    /// Combinations dropped at [`MAX_TERMS_PER_RULE`] so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Combinations kept, over all rules.
    pub fn len(&self) -> usize {
        self.rules.values().map(|terms| terms.seen.len()).sum()
    }

    /// Whether no combination is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RuleTerms {
    fn new(fields: Vec<String>, started_unix_nano: i64) -> Self {
        RuleTerms {
            fields,
            started_unix_nano,
            history_nanos: seconds_to_nanos(DEFAULT_HISTORY_SECS),
            seen: LinkedHashMap::new(),
        }
    }
}

fn seconds_to_nanos(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .unwrap_or(i64::MAX)
        .saturating_mul(NANOS_PER_SECOND)
}

/// The serialised form of a [`NewTermsBook`].
#[derive(Serialize, Deserialize)]
struct BookSnapshot {
    rules: BTreeMap<String, RuleSnapshot>,
    evicted: u64,
}

#[derive(Serialize, Deserialize)]
struct RuleSnapshot {
    fields: Vec<String>,
    started_unix_nano: i64,
    history_nanos: i64,
    /// `[combination, last seen]`, least recently seen first.
    terms: Vec<(String, i64)>,
}

impl From<NewTermsBook> for BookSnapshot {
    fn from(book: NewTermsBook) -> Self {
        let rules = book
            .rules
            .into_iter()
            .map(|(id, terms)| {
                let snapshot = RuleSnapshot {
                    fields: terms.fields,
                    started_unix_nano: terms.started_unix_nano,
                    history_nanos: terms.history_nanos,
                    terms: terms.seen.into_iter().collect(),
                };
                (id, snapshot)
            })
            .collect();
        BookSnapshot {
            rules,
            evicted: book.evicted,
        }
    }
}

impl From<BookSnapshot> for NewTermsBook {
    fn from(snapshot: BookSnapshot) -> Self {
        let rules = snapshot
            .rules
            .into_iter()
            .map(|(id, rule)| {
                let mut seen = LinkedHashMap::new();
                for (key, last) in rule.terms.into_iter().take(MAX_TERMS_PER_RULE) {
                    seen.insert(key, last);
                }
                let terms = RuleTerms {
                    fields: rule.fields,
                    started_unix_nano: rule.started_unix_nano,
                    history_nanos: rule.history_nanos,
                    seen,
                };
                (id, terms)
            })
            .collect();
        NewTermsBook {
            rules,
            evicted: snapshot.evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400 * NANOS_PER_SECOND;

    fn spec(learning_days: u64) -> NewTermsSpec {
        NewTermsSpec {
            fields: vec!["User".into(), "SourceIp".into()],
            history_secs: 30 * 86_400,
            learning_secs: learning_days * 86_400,
        }
    }

    fn values(user: &str, ip: &str) -> Vec<String> {
        vec![user.to_string(), ip.to_string()]
    }

    fn attributes(yaml: &str) -> HashMap<String, serde_json::Value> {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn attributes_are_read_and_checked() {
        let spec = NewTermsSpec::read(&attributes(
            "shaobing.new_terms.fields: [User, SourceIp]\nshaobing.new_terms.history: 2w\nshaobing.new_terms.learning: 36h\nshaobing.summary: x",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(spec.fields, vec!["User", "SourceIp"]);
        assert_eq!(spec.history_secs, 14 * 86_400);
        assert_eq!(spec.learning_secs, 36 * 3600);
        let one = NewTermsSpec::read(&attributes("shaobing.new_terms.fields: SourceIp"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (one.fields.len(), one.history_secs, one.learning_secs),
            (1, DEFAULT_HISTORY_SECS, 0)
        );
        assert_eq!(
            NewTermsSpec::read(&attributes("shaobing.summary: x")).unwrap(),
            None
        );
        for (yaml, wanted) in [
            (
                "shaobing.new_terms.history: 30d",
                "needs shaobing.new_terms.fields",
            ),
            ("shaobing.new_terms.fields: []", "list of field names"),
            (
                "shaobing.new_terms.fields: [User, User]",
                "list of field names",
            ),
            ("shaobing.new_terms.fields: [1]", "list of field names"),
            (
                "shaobing.new_terms.fields: [User]\nshaobing.new_terms.history: soon",
                "duration",
            ),
            (
                "shaobing.new_terms.fields: [User]\nshaobing.new_terms.history: 0d",
                "longer than 0",
            ),
            (
                "shaobing.new_terms.fields: [User]\nshaobing.new_terms.window: 1d",
                "unknown attribute",
            ),
        ] {
            let error = NewTermsSpec::read(&attributes(yaml)).unwrap_err();
            assert!(error.contains(wanted), "{yaml}: {error}");
        }
    }

    #[test]
    fn durations() {
        let text = |t: &str| parse_duration(&serde_json::Value::String(t.into()));
        assert_eq!(text("30d"), Some(30 * 86_400));
        assert_eq!(text("90m"), Some(5400));
        assert_eq!(text("45"), Some(45));
        assert_eq!(parse_duration(&serde_json::json!(60)), Some(60));
        assert_eq!(text("d"), None);
        assert_eq!(text("-1d"), None);
        assert_eq!(text("99999999999999999999w"), None);
    }

    #[test]
    fn new_seen_expired_and_refreshed() {
        let mut book = NewTermsBook::default();
        let spec = spec(0);
        let observe = |book: &mut NewTermsBook, user, ip, day: i64| {
            book.observe_values("r", &spec, &values(user, ip), day * DAY)
        };
        assert_eq!(observe(&mut book, "alice", "192.0.2.1", 0), Verdict::New);
        assert_eq!(observe(&mut book, "alice", "192.0.2.1", 1), Verdict::Seen);
        assert_eq!(observe(&mut book, "alice", "192.0.2.2", 2), Verdict::New);
        assert_eq!(observe(&mut book, "bob", "192.0.2.1", 2), Verdict::New);
        // Refreshed at day 1: still seen at day 31, forgotten after day 62.
        assert_eq!(observe(&mut book, "alice", "192.0.2.1", 31), Verdict::Seen);
        assert_eq!(observe(&mut book, "alice", "192.0.2.1", 62), Verdict::New);
        // A late (older) event does not move the last sighting back.
        assert_eq!(observe(&mut book, "alice", "192.0.2.1", 40), Verdict::Seen);
        assert_eq!(observe(&mut book, "alice", "192.0.2.1", 91), Verdict::Seen);
        assert_eq!(book.len(), 3);
        book.evict_expired(100 * DAY);
        assert_eq!(
            book.len(),
            1,
            "only alice@192.0.2.1 (day 91) is within 30 days"
        );
    }

    #[test]
    fn learning_period_fills_history_without_alerting() {
        let mut book = NewTermsBook::default();
        let spec = spec(7);
        let mut observe =
            |user, ip, day: i64| book.observe_values("r", &spec, &values(user, ip), day * DAY);
        assert_eq!(observe("alice", "192.0.2.1", 0), Verdict::Learning);
        assert_eq!(observe("bob", "192.0.2.9", 6), Verdict::Learning);
        assert_eq!(observe("alice", "192.0.2.1", 8), Verdict::Seen);
        assert_eq!(observe("bob", "192.0.2.9", 8), Verdict::Seen);
        assert_eq!(observe("alice", "203.0.113.5", 8), Verdict::New);
    }

    #[test]
    fn memory_is_bounded_least_recently_seen_first() {
        let mut book = NewTermsBook::default();
        let spec = spec(0);
        for n in 0..MAX_TERMS_PER_RULE + 10 {
            book.observe_values("r", &spec, &values("u", &n.to_string()), 0);
        }
        assert_eq!(book.len(), MAX_TERMS_PER_RULE);
        assert_eq!(book.evicted(), 10);
        // The oldest went, the newest stayed.
        assert_eq!(
            book.observe_values("r", &spec, &values("u", "0"), 1),
            Verdict::New
        );
        let last = (MAX_TERMS_PER_RULE + 9).to_string();
        assert_eq!(
            book.observe_values("r", &spec, &values("u", &last), 1),
            Verdict::Seen
        );
    }

    #[test]
    fn snapshot_round_trip_keeps_history_order_and_learning_start() {
        let mut book = NewTermsBook::default();
        let spec = spec(7);
        book.observe_values("r", &spec, &values("alice", "192.0.2.1"), 0);
        book.observe_values("r", &spec, &values("bob", "192.0.2.2"), DAY);
        let json = serde_json::to_string(&book).unwrap();
        let mut restored: NewTermsBook = serde_json::from_str(&json).unwrap();
        assert_eq!(restored.len(), 2);
        // Learning started at day 0, not at the restore.
        assert_eq!(
            restored.observe_values("r", &spec, &values("carol", "192.0.2.3"), 8 * DAY),
            Verdict::New
        );
        assert_eq!(
            restored.observe_values("r", &spec, &values("bob", "192.0.2.2"), 8 * DAY),
            Verdict::Seen
        );
        // Changing the fields forgets the rule's history.
        let other = NewTermsSpec {
            fields: vec!["User".into()],
            ..spec.clone()
        };
        assert_eq!(
            restored.observe_values("r", &other, &["alice".to_string()], 9 * DAY),
            Verdict::Learning
        );
        restored.retain(|_, _| false);
        assert!(restored.is_empty());
    }
}
