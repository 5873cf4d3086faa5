//! Rule loading: parses every rule source, rejects broken rules one by one (a broken
//! rule never stops the others), loads the rest into the rsigma correlation engine,
//! and keeps per-rule metadata ([`RuleMeta`]) for routing and alert building.
//!
//! Shaobing-specific rule attributes live in the rule's `custom_attributes:` block:
//! - `shaobing.group_by`: field names (a list or one name) whose values split a
//!   *detection* rule's alerts (e.g. `[SourceIp]`: one alert per attacking address).
//!   Correlations use their own `group-by`.
//! - `shaobing.summary`: the alert's one-line summary, with `{placeholders}` (see
//!   [`crate::alert`]).
//! - `shaobing.new_terms.*`: alert only on value combinations not seen in a
//!   history window (detection rules; see [`crate::new_terms`]).
//! - `shaobing.building_block: true`: the rule raises no alerts of its own (like
//!   Elastic's building-block rules); correlations still see its matches. For a
//!   correlation that another correlation chains on, this is the only way to be
//!   silent (Sigma's `generate` covers every rule a correlation references).
//!
//! `rsigma.*` attributes are removed: they would change engine-wide settings
//! (suppression, timestamps) that Shaobing owns.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use rsigma_eval::{CorrelationConfig, CorrelationEngine, CorrelationEventMode, LogSourceExtractor};
use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, FilterRule,
    LogSource, SigmaCollection, SigmaRule, Status,
};

use sha2::{Digest, Sha256};

use crate::error::RuleError;
use crate::mlps::{ClauseMap, MLPS_ORIGIN, parse_clause_map};
use crate::placeholders::expand_rule;
use crate::sigma_event::LOGSOURCE_PRODUCT_FIELD;
use crate::{DetectConfig, LoadReport, MAX_EVENT_IDS, RuleInfo};

/// Most entries one correlation group keeps in its window.
pub const MAX_GROUP_ENTRIES: usize = 256;

/// Most correlation windows (correlation × group) kept at once; at the cap the
/// engine evicts expired and then the stalest windows (counted by
/// [`crate::Detector::evicted_windows`]).
pub const MAX_CORRELATION_WINDOWS: usize = 100_000;

/// Custom attribute: fields that split a detection rule's alerts.
pub const ATTR_GROUP_BY: &str = "shaobing.group_by";
/// Custom attribute: the alert summary template.
pub const ATTR_SUMMARY: &str = "shaobing.summary";
/// Custom attribute: `true` makes the rule raise no alerts of its own.
pub const ATTR_BUILDING_BLOCK: &str = "shaobing.building_block";

/// What a rule document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Matches single events.
    Detection,
    /// Aggregates detections over time (Sigma correlation).
    Correlation,
    /// Adds exclusions to other rules (Sigma filter).
    Filter,
}

impl RuleKind {
    /// Stable name: `detection`, `correlation`, `filter`.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Detection => "detection",
            RuleKind::Correlation => "correlation",
            RuleKind::Filter => "filter",
        }
    }
}

/// What the detector needs to know about a loaded rule.
#[derive(Debug, Clone)]
pub struct RuleMeta {
    /// Rule id (required, unique).
    pub id: String,
    /// Optional Sigma `name` (correlations may reference rules by it).
    pub name: Option<String>,
    /// Rule title.
    pub title: String,
    /// Sigma level; `informational` when the rule has none.
    pub level: String,
    /// Sigma status, empty when the rule has none.
    pub status: String,
    /// Detection, correlation or filter.
    pub kind: RuleKind,
    /// Logsource of a detection or filter rule.
    pub logsource: LogSource,
    /// Sigma tags.
    pub tags: Vec<String>,
    /// 等保 clauses from the clause map.
    pub mlps: Vec<String>,
    /// Where the rule came from.
    pub origin: String,
    /// Rule description.
    pub description: String,
    /// Fields that split alerts (detection: `shaobing.group_by`; correlation: `group-by`).
    pub group_by: Vec<String>,
    /// Summary template, if the rule has one.
    pub summary: Option<String>,
    /// Correlation window in seconds (0 for detections).
    pub timespan_secs: u64,
    /// Correlation type name (`event_count`, ...), empty for detections.
    pub correlation_type: String,
    /// Whether matches (or firings) of this rule become alerts: false for a
    /// `shaobing.building_block`, and for a detection rule when every correlation
    /// that references it leaves `generate` at its default (false).
    pub emits_alerts: bool,
    /// Whether a correlation references this detection rule (its matches must
    /// go through the correlation engine; others skip it).
    pub correlated: bool,
    /// Threshold predicates the detector checks itself on each firing of a
    /// `value_percentile` correlation (rsigma 0.23 fires those whenever the
    /// window is not empty, without checking the threshold).
    pub recheck: Vec<(ConditionOperator, u64)>,
    /// Hash of what defines the rule: its file's text (and the placeholder lists
    /// when the file uses `|expand`); for a correlation, also the fingerprints of
    /// the rules it references. A reload keeps a correlation's windows only when
    /// its fingerprint is unchanged.
    pub fingerprint: String,
    /// New-terms settings of a detection rule (`shaobing.new_terms.*`).
    pub new_terms: Option<crate::new_terms::NewTermsSpec>,
}

impl RuleMeta {
    /// Whether a correlation's aggregated value passes [`Self::recheck`].
    pub fn passes_recheck(&self, value: f64) -> bool {
        self.recheck.iter().all(|(op, threshold)| {
            let threshold = *threshold as f64;
            match op {
                ConditionOperator::Lt => value < threshold,
                ConditionOperator::Lte => value <= threshold,
                ConditionOperator::Gt => value > threshold,
                ConditionOperator::Gte => value >= threshold,
                ConditionOperator::Eq => value == threshold,
                ConditionOperator::Neq => value != threshold,
            }
        })
    }
}

impl RuleMeta {
    /// The public description of the rule.
    pub fn info(&self) -> RuleInfo {
        RuleInfo {
            id: self.id.clone(),
            title: self.title.clone(),
            level: self.level.clone(),
            status: self.status.clone(),
            kind: self.kind.name().to_string(),
            logsource: logsource_text(&self.logsource),
            mlps: self.mlps.clone(),
            tags: self.tags.clone(),
            origin: self.origin.clone(),
            description: self.description.clone(),
        }
    }
}

/// `product=linux service=auth`-style text of a logsource.
fn logsource_text(logsource: &LogSource) -> String {
    let parts = [
        ("product", &logsource.product),
        ("service", &logsource.service),
        ("category", &logsource.category),
    ];
    parts
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// All loaded rules: the engine plus metadata by rule id.
pub struct Catalog {
    /// The rsigma engine with every accepted rule; it keeps the correlation
    /// state. Detection runs in [`Self::routes`].
    pub engine: CorrelationEngine,
    /// Metadata by rule id.
    pub rules: BTreeMap<String, RuleMeta>,
    /// Detection rules split by logsource, each part with its own engine (and
    /// its own field-value index).
    pub routes: Vec<crate::route::Route>,
}

/// A correlation or filter waiting for all detection rules to be loaded.
struct Pending<T> {
    origin: String,
    document: T,
}

/// Loads every source in `config`. Never fails: rejected rules are in the report.
pub fn load(config: &DetectConfig) -> (Catalog, LoadReport) {
    let mut loader = Loader::new(config);
    for source in &config.sources {
        loader.parse_source(&source.origin, &source.yaml);
    }
    let filters = std::mem::take(&mut loader.filters);
    for pending in filters {
        loader.add_filter(pending);
    }
    let correlations = std::mem::take(&mut loader.correlations);
    loader.add_correlations(correlations);
    for correlation in std::mem::take(&mut loader.disabled_correlations) {
        loader.mark_referenced(&correlation);
    }
    loader.finish()
}

struct Loader {
    engine: CorrelationEngine,
    lists: BTreeMap<String, Vec<String>>,
    clauses: ClauseMap,
    rules: BTreeMap<String, RuleMeta>,
    /// Detection rule names → ids (for correlation references by name).
    names: HashMap<String, String>,
    filters: Vec<Pending<FilterRule>>,
    correlations: Vec<Pending<CorrelationRule>>,
    /// Correlation id → the rules it references (ids or names).
    references: HashMap<String, Vec<String>>,
    /// Rule id → whether any correlation referencing it sets `generate: true`.
    referenced: HashMap<String, bool>,
    rejected: Vec<RuleError>,
    warnings: Vec<RuleError>,
    /// Origin → hash of the file's text (rule fingerprints).
    file_hashes: HashMap<String, String>,
    /// Hash of every placeholder list.
    lists_hash: String,
    /// Rule ids to skip ([`DetectConfig::disabled`]).
    disabled: BTreeSet<String>,
    /// Ids of the rules skipped because they are disabled.
    skipped: Vec<String>,
    /// Disabled correlations: not loaded, but their building blocks stay silent.
    disabled_correlations: Vec<CorrelationRule>,
}

impl Loader {
    fn new(config: &DetectConfig) -> Self {
        let engine_config = CorrelationConfig {
            // Shaobing suppresses alerts itself (one growing alert per window).
            suppress: None,
            emit_detections: true,
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: MAX_EVENT_IDS,
            // value_count re-counts distinct values over the whole window on every
            // event; without a cap a fast attack (hundreds of failures a second for
            // minutes) makes that quadratic. Dropping the oldest entries beyond the
            // cap can only under-count, and thresholds are far below it.
            max_group_entries: Some(MAX_GROUP_ENTRIES),
            max_state_entries: MAX_CORRELATION_WINDOWS,
            ..CorrelationConfig::default()
        };
        let mut engine = CorrelationEngine::new(engine_config);
        // Product is single-valued per event, so the engine may prune on it; service
        // and category are multi-valued and are checked after evaluation.
        engine.set_logsource_extractor(Some(LogSourceExtractor::new().with_field_names(
            LOGSOURCE_PRODUCT_FIELD,
            "@shaobing.unused.service",
            "@shaobing.unused.category",
        )));
        let (clauses, rejected) = match &config.mlps_yaml {
            Some(yaml) => parse_clause_map(yaml),
            None => (ClauseMap::new(), Vec::new()),
        };
        Loader {
            engine,
            lists: config.lists.clone(),
            clauses,
            rules: BTreeMap::new(),
            names: HashMap::new(),
            filters: Vec::new(),
            correlations: Vec::new(),
            referenced: HashMap::new(),
            references: HashMap::new(),
            rejected,
            warnings: Vec::new(),
            file_hashes: HashMap::new(),
            lists_hash: hash_lists(&config.lists),
            disabled: config.disabled.clone(),
            skipped: Vec::new(),
            disabled_correlations: Vec::new(),
        }
    }

    fn reject(&mut self, origin: &str, rule_id: Option<&str>, reason: impl Into<String>) {
        self.rejected
            .push(RuleError::new(origin, reason).for_rule(rule_id));
    }

    /// The fingerprint of a file's rules (see [`RuleMeta::fingerprint`]).
    fn fingerprint_of(&self, origin: &str) -> String {
        self.file_hashes.get(origin).cloned().unwrap_or_default()
    }

    fn parse_source(&mut self, origin: &str, yaml: &str) {
        let mut hasher = Sha256::new();
        hasher.update(yaml.as_bytes());
        if yaml.contains("|expand") {
            hasher.update(self.lists_hash.as_bytes());
        }
        self.file_hashes
            .insert(origin.to_string(), hex::encode(&hasher.finalize()[..16]));
        let parsed = catch_unwind(|| rsigma_parser::parse_sigma_yaml(yaml));
        let collection = match parsed {
            Ok(Ok(collection)) => collection,
            Ok(Err(error)) => return self.reject(origin, None, error.to_string()),
            Err(_) => return self.reject(origin, None, "the sigma parser panicked on this file"),
        };
        let SigmaCollection {
            mut rules,
            correlations,
            mut filters,
            errors,
        } = collection;
        rules.retain(|rule| !self.skip_disabled(rule.id.as_deref()));
        filters.retain(|filter| !self.skip_disabled(filter.id.as_deref()));
        let (disabled, correlations): (Vec<_>, Vec<_>) = correlations
            .into_iter()
            .partition(|correlation| self.skip_disabled(correlation.id.as_deref()));
        self.disabled_correlations.extend(disabled);
        for message in errors {
            if is_parser_warning(&message) {
                self.warnings.push(RuleError::new(origin, message));
            } else {
                self.reject(origin, None, message);
            }
        }
        for rule in rules {
            self.add_detection(origin, rule);
        }
        self.filters
            .extend(filters.into_iter().map(|document| Pending {
                origin: origin.to_string(),
                document,
            }));
        self.correlations
            .extend(correlations.into_iter().map(|document| Pending {
                origin: origin.to_string(),
                document,
            }));
    }

    /// Whether a document with this id is disabled (and records that it was skipped).
    fn skip_disabled(&mut self, id: Option<&str>) -> bool {
        match id.map(str::trim) {
            Some(id) if self.disabled.contains(id) => {
                self.skipped.push(id.to_string());
                true
            }
            _ => false,
        }
    }

    /// Checks that an id is present and unused; returns it.
    fn claim_id(&mut self, origin: &str, id: Option<&str>, title: &str) -> Option<String> {
        let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) else {
            self.reject(
                origin,
                None,
                format!("rule '{title}' has no id: every rule needs a unique `id` (a UUID)"),
            );
            return None;
        };
        if let Some(existing) = self.rules.get(id) {
            let first = existing.origin.clone();
            self.reject(
                origin,
                Some(id),
                format!("duplicate rule id (first defined in {first})"),
            );
            return None;
        }
        Some(id.to_string())
    }

    fn add_detection(&mut self, origin: &str, mut rule: SigmaRule) {
        let Some(id) = self.claim_id(origin, rule.id.as_deref(), &rule.title) else {
            return;
        };
        rule.custom_attributes
            .retain(|key, _| !key.starts_with("rsigma."));
        let attributes = match ShaobingAttributes::read(&rule.custom_attributes) {
            Ok(attributes) => attributes,
            Err(reason) => return self.reject(origin, Some(&id), reason),
        };
        let new_terms = match crate::new_terms::NewTermsSpec::read(&rule.custom_attributes) {
            Ok(spec) => spec,
            Err(reason) => return self.reject(origin, Some(&id), reason),
        };
        if let Err(reason) = expand_rule(&mut rule, &self.lists) {
            return self.reject(origin, Some(&id), reason);
        }
        if let Err(reason) = check_compiles(&rule) {
            return self.reject(origin, Some(&id), reason);
        }
        if let Err(error) = self.engine.add_rule(&rule) {
            return self.reject(origin, Some(&id), error.to_string());
        }
        if let Some(name) = &rule.name {
            self.names.insert(name.clone(), id.clone());
        }
        let meta = RuleMeta {
            mlps: self.clauses.get(&id).cloned().unwrap_or_default(),
            id: id.clone(),
            name: rule.name.clone(),
            title: rule.title.clone(),
            level: rule
                .level
                .map_or("informational", |l| l.as_str())
                .to_string(),
            status: status_name(rule.status),
            kind: RuleKind::Detection,
            logsource: rule.logsource.clone(),
            tags: rule.tags.clone(),
            origin: origin.to_string(),
            description: rule.description.clone().unwrap_or_default(),
            group_by: match (&new_terms, attributes.group_by.is_empty()) {
                (Some(spec), true) => spec.fields.clone(),
                _ => attributes.group_by,
            },
            summary: attributes.summary,
            timespan_secs: 0,
            correlation_type: String::new(),
            emits_alerts: !attributes.building_block,
            correlated: false,
            recheck: Vec::new(),
            fingerprint: self.fingerprint_of(origin),
            new_terms,
        };
        self.rules.insert(id, meta);
    }

    fn add_filter(&mut self, pending: Pending<FilterRule>) {
        let Pending { origin, document } = pending;
        let Some(id) = self.claim_id(&origin, document.id.as_deref(), &document.title) else {
            return;
        };
        let meta = RuleMeta {
            mlps: self.clauses.get(&id).cloned().unwrap_or_default(),
            id: id.clone(),
            name: document.name.clone(),
            title: document.title.clone(),
            level: String::new(),
            status: status_name(document.status),
            kind: RuleKind::Filter,
            logsource: document.logsource.clone().unwrap_or_default(),
            tags: document.tags.clone(),
            origin: origin.clone(),
            description: document.description.clone().unwrap_or_default(),
            group_by: Vec::new(),
            summary: None,
            timespan_secs: 0,
            correlation_type: String::new(),
            emits_alerts: false,
            correlated: false,
            recheck: Vec::new(),
            fingerprint: self.fingerprint_of(&origin),
            new_terms: None,
        };
        let mut collection = SigmaCollection::new();
        collection.filters.push(document);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.engine.add_collection(&collection)));
        match outcome {
            Ok(Ok(())) => {
                self.rules.insert(id, meta);
            }
            Ok(Err(error)) => self.reject(&origin, Some(&id), error.to_string()),
            Err(_) => self.reject(
                &origin,
                Some(&id),
                "the sigma engine panicked on this filter",
            ),
        }
    }

    fn add_correlations(&mut self, pending: Vec<Pending<CorrelationRule>>) {
        // Claim ids first so correlations may reference each other in any order.
        let mut accepted: Vec<(String, Pending<CorrelationRule>)> = Vec::new();
        let mut claimed: HashSet<String> = HashSet::new();
        for mut item in pending {
            let Some(id) = item
                .document
                .id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string)
            else {
                let title = item.document.title.clone();
                self.reject(
                    &item.origin,
                    None,
                    format!(
                        "correlation '{title}' has no id: every rule needs a unique `id` (a UUID)"
                    ),
                );
                continue;
            };
            if self.rules.contains_key(&id) || !claimed.insert(id.clone()) {
                self.reject(&item.origin, Some(&id), "duplicate rule id");
                continue;
            }
            item.document
                .custom_attributes
                .retain(|key, _| !key.starts_with("rsigma."));
            accepted.push((id, item));
        }

        // Drop correlations whose references are unknown, until none is left to drop
        // (a correlation may depend on a rejected correlation).
        loop {
            let known: HashSet<String> = self.known_references(&accepted);
            let before = accepted.len();
            let mut kept = Vec::new();
            for (id, item) in accepted {
                match item
                    .document
                    .rules
                    .iter()
                    .find(|r| !known.contains(r.as_str()))
                {
                    Some(missing) => {
                        let reason = format!("references unknown rule '{missing}' (by id or name)");
                        self.reject(&item.origin, Some(&id), reason);
                    }
                    None => kept.push((id, item)),
                }
            }
            accepted = kept;
            if accepted.len() == before {
                break;
            }
        }

        for (id, item) in accepted {
            self.add_correlation(id, item);
        }
    }

    fn known_references(
        &self,
        correlations: &[(String, Pending<CorrelationRule>)],
    ) -> HashSet<String> {
        let mut known: HashSet<String> = self.names.keys().cloned().collect();
        known.extend(
            self.rules
                .values()
                .filter(|meta| meta.kind == RuleKind::Detection)
                .map(|meta| meta.id.clone()),
        );
        for (id, item) in correlations {
            known.insert(id.clone());
            if let Some(name) = &item.document.name {
                known.insert(name.clone());
            }
        }
        known
    }

    fn add_correlation(&mut self, id: String, pending: Pending<CorrelationRule>) {
        let Pending {
            origin,
            mut document,
        } = pending;
        let recheck = fix_correlation_condition(&mut document);
        let attributes = match ShaobingAttributes::read(&document.custom_attributes) {
            Ok(attributes) => attributes,
            Err(reason) => return self.reject(&origin, Some(&id), reason),
        };
        if let Some(key) = document
            .custom_attributes
            .keys()
            .find(|key| key.starts_with(crate::new_terms::ATTR_PREFIX))
        {
            let reason = format!("{key} applies to detection rules only");
            return self.reject(&origin, Some(&id), reason);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| self.engine.add_correlation(&document)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return self.reject(&origin, Some(&id), error.to_string()),
            Err(_) => {
                return self.reject(
                    &origin,
                    Some(&id),
                    "the sigma engine panicked on this correlation",
                );
            }
        }
        if let Some(name) = &document.name {
            self.names.insert(name.clone(), id.clone());
        }
        self.mark_referenced(&document);
        self.references.insert(id.clone(), document.rules.clone());
        let meta = RuleMeta {
            mlps: self.clauses.get(&id).cloned().unwrap_or_default(),
            id: id.clone(),
            name: document.name.clone(),
            title: document.title.clone(),
            level: document
                .level
                .map_or("informational", |l| l.as_str())
                .to_string(),
            status: status_name(document.status),
            kind: RuleKind::Correlation,
            logsource: LogSource::default(),
            tags: document.tags.clone(),
            fingerprint: self.fingerprint_of(&origin),
            origin,
            description: document.description.clone().unwrap_or_default(),
            group_by: document.group_by.clone(),
            summary: attributes.summary,
            timespan_secs: document.timespan.seconds,
            correlation_type: document.correlation_type.as_str().to_string(),
            emits_alerts: !attributes.building_block,
            correlated: false,
            recheck,
            new_terms: None,
        };
        self.rules.insert(id, meta);
    }

    /// Records, for Sigma's `generate` semantics, that a correlation references rules.
    fn mark_referenced(&mut self, correlation: &CorrelationRule) {
        for reference in &correlation.rules {
            let id = self
                .names
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.clone());
            let generate = self.referenced.entry(id).or_insert(false);
            *generate |= correlation.generate;
        }
    }

    fn finish(mut self) -> (Catalog, LoadReport) {
        // A correlation also changes when a rule it references changes.
        let correlations: Vec<(String, Vec<String>)> = self
            .rules
            .values()
            .filter(|meta| meta.kind == RuleKind::Correlation)
            .map(|meta| {
                (
                    meta.id.clone(),
                    self.references.get(&meta.id).cloned().unwrap_or_default(),
                )
            })
            .collect();
        for (id, references) in correlations {
            let mut hasher = Sha256::new();
            for reference in references {
                let target = self.names.get(&reference).cloned().unwrap_or(reference);
                if let Some(meta) = self.rules.get(&target) {
                    hasher.update(meta.fingerprint.as_bytes());
                }
            }
            if let Some(meta) = self.rules.get_mut(&id) {
                hasher.update(meta.fingerprint.as_bytes());
                meta.fingerprint = hex::encode(&hasher.finalize()[..16]);
            }
        }
        // A detection rule referenced only by correlations with `generate: false`
        // (the default) raises no alert of its own.
        for meta in self.rules.values_mut() {
            if meta.kind == RuleKind::Detection
                && let Some(generate) = self.referenced.get(&meta.id)
            {
                meta.emits_alerts &= *generate;
                meta.correlated = true;
            }
        }
        for rule_id in self.clauses.keys() {
            if !self.rules.contains_key(rule_id) {
                let warning = RuleError::new(MLPS_ORIGIN, "clauses for a rule that is not loaded")
                    .for_rule(Some(rule_id));
                self.warnings.push(warning);
            }
        }
        let count = |kind: RuleKind| self.rules.values().filter(|m| m.kind == kind).count();
        let report = LoadReport {
            loaded: self.rules.len(),
            detection_rules: count(RuleKind::Detection),
            correlation_rules: count(RuleKind::Correlation),
            filter_rules: count(RuleKind::Filter),
            rejected: self.rejected,
            warnings: self.warnings,
            disabled: self.skipped,
        };
        let routes = crate::route::build_routes(self.engine.engine().rules());
        let catalog = Catalog {
            engine: self.engine,
            rules: self.rules,
            routes,
        };
        (catalog, report)
    }
}

/// Works around two departures of rsigma 0.23 from the Sigma correlation
/// specification; returns the predicates the detector must re-check.
///
/// - `temporal` without a `condition` must mean "all referenced rules within the
///   timespan"; rsigma's parser makes it `gte: 1` (any one rule). A temporal
///   rule whose condition is exactly `gte: 1` gets `gte: <number of rules>`
///   (writing `gte: 1` on purpose would make the correlation a plain detection).
/// - `value_percentile` fires on every event of a non-empty window, without
///   checking the threshold: the threshold is returned for re-checking.
fn fix_correlation_condition(rule: &mut CorrelationRule) -> Vec<(ConditionOperator, u64)> {
    let CorrelationCondition::Threshold {
        predicates, field, ..
    } = &mut rule.condition
    else {
        return Vec::new();
    };
    match rule.correlation_type {
        CorrelationType::Temporal
            if field.is_none()
                && predicates.len() == 1
                && predicates[0] == (ConditionOperator::Gte, 1) =>
        {
            predicates[0].1 = rule.rules.len() as u64;
            Vec::new()
        }
        CorrelationType::ValuePercentile => predicates.clone(),
        _ => Vec::new(),
    }
}

fn hash_lists(lists: &BTreeMap<String, Vec<String>>) -> String {
    let mut hasher = Sha256::new();
    for (name, values) in lists {
        hasher.update(name.as_bytes());
        for value in values {
            hasher.update([0]);
            hasher.update(value.as_bytes());
        }
        hasher.update([1]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Compiles the rule on its own first, so that a failing rule leaves the engine
/// untouched (and a panicking compiler becomes a rejection, not a crash).
fn check_compiles(rule: &SigmaRule) -> Result<(), String> {
    match catch_unwind(|| rsigma_eval::compile_rule(rule).map(|_| ())) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the sigma compiler panicked on this rule".to_string()),
    }
}

/// The parser reports both failed documents and non-fatal problems of documents
/// it did load (an unknown `level` or `status`, a malformed `related` entry) in one
/// list; the latter are recognisable by their wording.
fn is_parser_warning(message: &str) -> bool {
    message.starts_with("invalid ")
        || message.starts_with("related[")
        || message.starts_with("'related'")
}

fn status_name(status: Option<Status>) -> String {
    match status {
        Some(Status::Stable) => "stable",
        Some(Status::Test) => "test",
        Some(Status::Experimental) => "experimental",
        Some(Status::Deprecated) => "deprecated",
        Some(Status::Unsupported) => "unsupported",
        None => "",
    }
    .to_string()
}

/// Shaobing's own custom attributes of a rule.
struct ShaobingAttributes {
    group_by: Vec<String>,
    summary: Option<String>,
    building_block: bool,
}

impl ShaobingAttributes {
    fn read<V: serde::Serialize>(attributes: &HashMap<String, V>) -> Result<Self, String> {
        let as_json = |key: &str| {
            attributes
                .get(key)
                .and_then(|v| serde_json::to_value(v).ok())
        };
        let group_by = match as_json(ATTR_GROUP_BY) {
            None => Vec::new(),
            Some(serde_json::Value::String(field)) => vec![field],
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("{ATTR_GROUP_BY} must be a list of field names"))?,
            Some(_) => return Err(format!("{ATTR_GROUP_BY} must be a list of field names")),
        };
        let summary = match as_json(ATTR_SUMMARY) {
            None => None,
            Some(serde_json::Value::String(text)) => Some(text),
            Some(_) => return Err(format!("{ATTR_SUMMARY} must be a string")),
        };
        let building_block = match as_json(ATTR_BUILDING_BLOCK) {
            None => false,
            Some(serde_json::Value::Bool(flag)) => flag,
            Some(_) => return Err(format!("{ATTR_BUILDING_BLOCK} must be true or false")),
        };
        Ok(ShaobingAttributes {
            group_by,
            summary,
            building_block,
        })
    }
}
