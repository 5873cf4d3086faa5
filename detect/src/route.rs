//! Routing: detection rules split by logsource, so that each event is evaluated
//! only against rules that can match it (see [`Route`]).

use rsigma_eval::{CompiledRule, Engine};
use rsigma_parser::LogSource;

/// The detection rules of one logsource (`product`, `service`, `category`).
///
/// An event is evaluated only by the routes its logsources admit
/// ([`crate::fields::EventLogSource::admits`]): a login line never meets a
/// `process_creation` rule. Inside a route, rsigma's candidate index skips
/// rules whose exact-value fields the event cannot match.
pub struct Route {
    /// The logsource shared by the route's rules.
    pub logsource: LogSource,
    /// Their compiled rules (filters already applied).
    pub engine: Engine,
}

/// Groups compiled detection rules by logsource into [`Route`]s, in order of
/// first appearance.
pub fn build_routes(rules: &[CompiledRule]) -> Vec<Route> {
    let mut groups: Vec<(LogSource, Vec<CompiledRule>)> = Vec::new();
    for rule in rules {
        let key = LogSource {
            product: rule.logsource.product.clone(),
            service: rule.logsource.service.clone(),
            category: rule.logsource.category.clone(),
            ..LogSource::default()
        };
        match groups.iter_mut().find(|(logsource, _)| *logsource == key) {
            Some((_, members)) => members.push(rule.clone()),
            None => groups.push((key, vec![rule.clone()])),
        }
    }
    groups
        .into_iter()
        .map(|(logsource, members)| {
            let mut engine = Engine::new();
            engine.extend_compiled_rules(members);
            Route { logsource, engine }
        })
        .collect()
}
