//! [`Detector`]: evaluates events against the loaded rules, keeps correlation
//! state, and turns matches into alerts.
//!
//! Per event: map it to Sigma fields ([`crate::fields`]), evaluate the candidate
//! rules (the engine prunes other products; this module then drops matches whose
//! service/category the event does not belong to), feed the remaining matches to
//! the correlation windows at the event's own time, let the [`NewTermsBook`]
//! judge matches of new-terms rules ([`crate::new_terms`]), and record every
//! alert-worthy match in the [`AlertBook`] (suppression, see [`crate::alert`]).

use rsigma_eval::CorrelationSnapshot;
use rsigma_eval::result::{EvaluationResult, ResultBody};
use rsigma_parser::CorrelationType;
use serde::{Deserialize, Serialize};
use shaobing_wire::v1::Event;

use crate::alert::{Alert, AlertBook, Hit};
use crate::catalog::{Catalog, RuleMeta, load};
use crate::error::DetectError;
use crate::new_terms::{NewTermsBook, Verdict};
use crate::sigma_event::SigmaEvent;
use crate::{DetectConfig, LoadReport, RuleInfo};

/// Snapshot format version written by [`Detector::snapshot`].
pub const SNAPSHOT_VERSION: u32 = 1;

/// How often (in processed events) expired state is swept.
const EVICT_EVERY_EVENTS: u64 = 1024;

/// How far behind the latest event time state is kept anyway: an agent that was
/// offline ships its spooled backlog with old timestamps, and its windows must
/// survive the sweeps that newer agents' events trigger meanwhile.
const EVICTION_GRACE_NANOS: i64 = 3600 * NANOS_PER_SECOND;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// How candidate rules are chosen for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Routing {
    /// Only rules whose logsource admits the event, narrowed further by the
    /// engine's field-value index (the default).
    #[default]
    Routed,
    /// Every detection rule on every event (the baseline the benchmark compares
    /// against; same results, slower).
    Naive,
}

/// Sigma detection and correlation over Shaobing events. No I/O, no clock.
pub struct Detector {
    catalog: Catalog,
    routing: Routing,
    alerts: AlertBook,
    window_nanos: i64,
    /// Latest event time seen; the only notion of "now" (used for eviction).
    watermark_unix_nano: i64,
    processed_events: u64,
    /// Correlation windows dropped so far (expired, or over the cap).
    evicted_windows: u64,
    /// History of the new-terms rules.
    new_terms: NewTermsBook,
}

/// Result of [`Detector::process_detailed`].
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// Alerts opened or updated by the event.
    pub alerts: Vec<Alert>,
    /// Rules that matched the event or fired on it.
    pub matched_rule_ids: Vec<String>,
}

/// What [`Detector::snapshot`] writes.
#[derive(Serialize, Deserialize)]
struct DetectorSnapshot {
    version: u32,
    correlation: CorrelationSnapshot,
    alerts: AlertBook,
    watermark_unix_nano: i64,
    /// Absent in snapshots written before new-terms rules existed.
    #[serde(default)]
    new_terms: NewTermsBook,
}

impl Detector {
    /// Loads every rule in `config`. A broken rule never stops the others: it is
    /// listed in the report's `rejected`.
    pub fn new(config: DetectConfig) -> (Detector, LoadReport) {
        let (catalog, report) = load(&config);
        let window_secs = i64::try_from(config.suppression_window_secs).unwrap_or(i64::MAX);
        let detector = Detector {
            catalog,
            routing: Routing::Routed,
            alerts: AlertBook::default(),
            window_nanos: window_secs.saturating_mul(NANOS_PER_SECOND).max(1),
            watermark_unix_nano: i64::MIN,
            processed_events: 0,
            evicted_windows: 0,
            new_terms: NewTermsBook::default(),
        };
        (detector, report)
    }

    /// Evaluates one event at its own time (`time_unix_nano`) and returns the alerts
    /// it opened or updated (each once; upsert them by `alert_id`). The agent of an
    /// alert is `event.host.agent_id`.
    pub fn process(&mut self, event: &Event) -> Vec<Alert> {
        self.process_detailed(event).alerts
    }

    /// Like [`Self::process`], and also names every rule that matched or fired,
    /// including correlation building blocks that raise no alert of their own
    /// (used by the rule-test runner).
    pub fn process_detailed(&mut self, event: &Event) -> Processed {
        let time = event.time_unix_nano;
        let time_secs = time.div_euclid(NANOS_PER_SECOND);
        let sigma_event = SigmaEvent::from_event(event);

        let engine = &mut self.catalog.engine;
        let rules = &self.catalog.rules;
        let candidates = match self.routing {
            Routing::Routed => {
                let mut found = Vec::new();
                for route in &self.catalog.routes {
                    if sigma_event.logsource().admits(&route.logsource) {
                        found.extend(route.engine.evaluate(&sigma_event));
                    }
                }
                found
            }
            Routing::Naive => engine
                .engine()
                .rules()
                .iter()
                .filter_map(|rule| rsigma_eval::evaluate_rule(rule, &sigma_event))
                .collect(),
        };
        // Matches of rules no correlation references skip the correlation engine
        // (it looks each match's rule up by a linear search).
        let mut results: Vec<EvaluationResult> = Vec::with_capacity(candidates.len());
        let mut correlated: Vec<EvaluationResult> = Vec::new();
        for result in candidates {
            match rule_of(rules, &result) {
                Some(rule) if sigma_event.logsource().admits(&rule.logsource) => {
                    if rule.correlated {
                        correlated.push(result);
                    } else {
                        results.push(result);
                    }
                }
                _ => {}
            }
        }
        if !correlated.is_empty() {
            let before = engine.state_count();
            results.extend(engine.process_with_detections(&sigma_event, correlated, time_secs));
            // At the cap the engine evicts before adding (at most a few new windows).
            let after = engine.state_count();
            if after < before {
                self.evicted_windows += (before - after) as u64;
            }
        }

        let mut alerts: Vec<Alert> = Vec::new();
        let mut matched_rule_ids: Vec<String> = Vec::new();
        for result in &results {
            let Some(rule) = rule_of(rules, result) else {
                continue;
            };
            if let ResultBody::Correlation(body) = &result.body
                && !rule.passes_recheck(body.aggregated_value)
            {
                continue;
            }
            if !matched_rule_ids.contains(&rule.id) {
                matched_rule_ids.push(rule.id.clone());
            }
            if let Some(spec) = &rule.new_terms
                && rule.emits_alerts
                && matches!(result.body, ResultBody::Detection(_))
                && self.new_terms.observe(&rule.id, spec, &sigma_event, time) != Verdict::New
            {
                continue;
            }
            let Some(hit) = make_hit(rule, result, &sigma_event, time) else {
                continue;
            };
            let alert = self.alerts.record(hit, self.window_nanos);
            match alerts.iter_mut().find(|a| a.alert_id == alert.alert_id) {
                Some(existing) => *existing = alert,
                None => alerts.push(alert),
            }
        }

        self.watermark_unix_nano = self.watermark_unix_nano.max(time);
        self.processed_events += 1;
        if self.processed_events.is_multiple_of(EVICT_EVERY_EVENTS) {
            self.evict_expired();
        }
        Processed {
            alerts,
            matched_rule_ids,
        }
    }

    /// Chooses how candidate rules are picked (see [`Routing`]); results are
    /// the same either way.
    pub fn set_routing(&mut self, routing: Routing) {
        self.routing = routing;
    }

    /// Drops correlation windows and open alerts that can no longer change: those
    /// older than the latest event time seen minus one hour of grace (for backlogs
    /// shipped late). [`Self::process`] calls this periodically.
    pub fn evict_expired(&mut self) {
        if self.watermark_unix_nano == i64::MIN {
            return;
        }
        let now = self
            .watermark_unix_nano
            .saturating_sub(EVICTION_GRACE_NANOS);
        let before = self.catalog.engine.state_count();
        self.catalog
            .engine
            .evict_expired(now.div_euclid(NANOS_PER_SECOND));
        let after = self.catalog.engine.state_count();
        self.evicted_windows += before.saturating_sub(after) as u64;
        self.alerts.evict(now, self.window_nanos);
        self.new_terms.evict_expired(now);
    }

    /// New-terms combinations dropped at [`crate::new_terms::MAX_TERMS_PER_RULE`]
    /// so far (a dropped combination alerts again when next seen).
    pub fn evicted_new_terms(&self) -> u64 {
        self.new_terms.evicted()
    }

    /// New-terms combinations currently remembered, over all rules.
    pub fn new_terms_kept(&self) -> usize {
        self.new_terms.len()
    }

    /// Correlation windows currently kept (correlation × group).
    pub fn correlation_windows(&self) -> usize {
        self.catalog.engine.state_count()
    }

    /// Correlation windows dropped so far: expired (older than the latest event
    /// time minus the grace) or evicted at [`crate::catalog::MAX_CORRELATION_WINDOWS`].
    pub fn evicted_windows(&self) -> u64 {
        self.evicted_windows
    }

    /// Hands this detector's state over to `next`, a detector built from a
    /// newer rule set (hot reload): the windows of every correlation whose
    /// definition is unchanged ([`crate::catalog::RuleMeta::fingerprint`]), the
    /// open alerts, the latest event time, the routing mode, and the history of
    /// every new-terms rule whose fields are unchanged. Windows of new,
    /// changed or removed correlations start empty. Returns how many
    /// correlations kept their windows.
    pub fn hand_over(&self, next: &mut Detector) -> usize {
        let mut state = self.catalog.engine.export_state();
        let unchanged = |id: &String| {
            matches!(
                (self.catalog.rules.get(id), next.catalog.rules.get(id)),
                (Some(old), Some(new)) if old.fingerprint == new.fingerprint
            )
        };
        state.windows.retain(|id, _| unchanged(id));
        state.last_alert.retain(|id, _| unchanged(id));
        state.event_buffers.retain(|id, _| unchanged(id));
        state.event_ref_buffers.retain(|id, _| unchanged(id));
        let kept = next
            .catalog
            .rules
            .values()
            .filter(|meta| meta.kind == crate::catalog::RuleKind::Correlation)
            .filter(|meta| unchanged(&meta.id))
            .count();
        next.catalog.engine.import_state(state);
        next.alerts = self.alerts.clone();
        next.new_terms = self.new_terms.clone();
        next.new_terms
            .retain(|id, fields| same_new_terms(&next.catalog, id, fields));
        next.watermark_unix_nano = next.watermark_unix_nano.max(self.watermark_unix_nano);
        next.processed_events = self.processed_events;
        next.evicted_windows = self.evicted_windows;
        next.routing = self.routing;
        kept
    }

    /// Forgets all correlation windows and open alerts; the rules stay loaded.
    pub fn reset(&mut self) {
        // Evicting "as of" a time far beyond every window empties every window.
        self.catalog.engine.evict_expired(i64::MAX / 4);
        self.alerts = AlertBook::default();
        self.new_terms = NewTermsBook::default();
        self.watermark_unix_nano = i64::MIN;
        self.processed_events = 0;
    }

    /// Every loaded rule (detections, correlations, filters), ordered by id.
    pub fn rules(&self) -> Vec<RuleInfo> {
        self.catalog.rules.values().map(RuleMeta::info).collect()
    }

    /// Number of alerts currently open (inside their suppression window).
    pub fn open_alerts(&self) -> usize {
        self.alerts.len()
    }

    /// Correlation windows, open alerts and new-terms history as JSON, for
    /// [`Self::restore`] after a restart. Rules are identified by id, so the
    /// snapshot survives rule reloads.
    pub fn snapshot(&self) -> Result<String, DetectError> {
        let snapshot = DetectorSnapshot {
            version: SNAPSHOT_VERSION,
            correlation: self.catalog.engine.export_state(),
            alerts: self.alerts.clone(),
            watermark_unix_nano: self.watermark_unix_nano,
            new_terms: self.new_terms.clone(),
        };
        Ok(serde_json::to_string(&snapshot)?)
    }

    /// Restores state written by [`Self::snapshot`] (state of rules no longer loaded
    /// is dropped).
    pub fn restore(&mut self, json: &str) -> Result<(), DetectError> {
        let snapshot: DetectorSnapshot = serde_json::from_str(json)?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(DetectError::SnapshotVersion {
                found: snapshot.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let correlation_version = snapshot.correlation.version;
        if !self.catalog.engine.import_state(snapshot.correlation) {
            return Err(DetectError::SnapshotVersion {
                found: correlation_version,
                expected: SNAPSHOT_VERSION,
            });
        }
        self.alerts = snapshot.alerts;
        self.new_terms = snapshot.new_terms;
        let catalog = &self.catalog;
        self.new_terms
            .retain(|id, fields| same_new_terms(catalog, id, fields));
        self.watermark_unix_nano = self.watermark_unix_nano.max(snapshot.watermark_unix_nano);
        Ok(())
    }
}

/// Whether `catalog` has new-terms rule `id` over exactly `fields`.
fn same_new_terms(catalog: &Catalog, id: &str, fields: &[String]) -> bool {
    catalog
        .rules
        .get(id)
        .and_then(|rule| rule.new_terms.as_ref())
        .is_some_and(|spec| spec.fields == fields)
}

fn rule_of<'a>(
    rules: &'a std::collections::BTreeMap<String, RuleMeta>,
    result: &EvaluationResult,
) -> Option<&'a RuleMeta> {
    result.header.rule_id.as_ref().and_then(|id| rules.get(id))
}

/// Turns an engine result into an alert hit, or `None` when the rule raises no
/// alerts of its own (a building block of correlations).
fn make_hit<'a>(
    rule: &'a RuleMeta,
    result: &EvaluationResult,
    event: &'a SigmaEvent<'a>,
    time_unix_nano: i64,
) -> Option<Hit<'a>> {
    match &result.body {
        ResultBody::Detection(_) => {
            if !rule.emits_alerts {
                return None;
            }
            let group = rule
                .group_by
                .iter()
                .filter_map(|field| event.text(field).map(|value| (field.clone(), value)))
                .collect();
            Some(Hit {
                rule,
                group,
                event,
                time_unix_nano,
                first_time_unix_nano: time_unix_nano,
                count: 1,
                event_ids: event.text("EventId").into_iter().collect(),
                value: 0.0,
            })
        }
        ResultBody::Correlation(_) if !rule.emits_alerts => None,
        ResultBody::Correlation(body) => {
            let refs = body.event_refs.as_deref().unwrap_or_default();
            let mut event_ids: Vec<String> = refs.iter().filter_map(|r| r.id.clone()).collect();
            // Chained correlations carry no event references: name at least the
            // event that completed them.
            if let Some(id) = event.text("EventId")
                && !event_ids.contains(&id)
            {
                event_ids.push(id);
            }
            // References keep whole seconds; never report a first time after the event.
            let first_time_unix_nano = refs
                .iter()
                .map(|r| r.timestamp.saturating_mul(NANOS_PER_SECOND))
                .min()
                .map_or(time_unix_nano, |first| first.min(time_unix_nano));
            let window_events = match body.correlation_type {
                CorrelationType::EventCount => body.aggregated_value as u64,
                _ => 0,
            };
            let count = window_events.max(event_ids.len() as u64).max(1);
            Some(Hit {
                rule,
                group: body.group_key.clone(),
                event,
                time_unix_nano,
                first_time_unix_nano,
                count,
                event_ids,
                value: body.aggregated_value,
            })
        }
    }
}
