//! `|expand` placeholders: `DestinationIp|expand: '%threat_ips%'` becomes one value
//! per line of `rules/lists/threat_ips.txt`.
//!
//! Expansion happens on the parsed rule, before compilation, and removes the
//! `expand` modifier, so the expanded values are ordinary Sigma strings: `*` and `?`
//! act as wildcards and other modifiers (`endswith`, `cidr`, ...) apply as usual.
//! (rsigma's own `expand` matcher fills placeholders from the *event's* fields at
//! run time, which is not what Sigma rules mean by it.)
//!
//! A placeholder without a list rejects the rule; an empty list makes the item
//! match nothing.

use std::collections::BTreeMap;

use rsigma_parser::{Detection, DetectionItem, Modifier, SigmaRule, SigmaString, SigmaValue};

/// Value used for an item whose lists are all empty: it can match no real field.
const MATCHES_NOTHING: &str = "\u{0}shaobing: empty list\u{0}";

/// Expands every `|expand` item of `rule` from `lists`.
///
/// Errors name the first placeholder that has no list.
pub fn expand_rule(
    rule: &mut SigmaRule,
    lists: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    for detection in rule.detection.named.values_mut() {
        expand_detection(detection, lists)?;
    }
    Ok(())
}

fn expand_detection(
    detection: &mut Detection,
    lists: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    match detection {
        Detection::AllOf(items) => {
            for item in items.iter_mut() {
                expand_item(item, lists)?;
            }
        }
        Detection::AnyOf(subs) | Detection::And(subs) => {
            for sub in subs.iter_mut() {
                expand_detection(sub, lists)?;
            }
        }
        Detection::ArrayMatch { body, .. } => expand_detection(body, lists)?,
        Detection::Conditional { named, .. } => {
            for sub in named.values_mut() {
                expand_detection(sub, lists)?;
            }
        }
        Detection::Keywords(_) => {}
    }
    Ok(())
}

fn expand_item(
    item: &mut DetectionItem,
    lists: &BTreeMap<String, Vec<String>>,
) -> Result<(), String> {
    if !item.field.has_modifier(Modifier::Expand) {
        return Ok(());
    }
    item.field.modifiers.retain(|m| *m != Modifier::Expand);
    let mut expanded = Vec::new();
    for value in item.values.drain(..) {
        match value {
            SigmaValue::String(text) => {
                for variant in expand_text(&text.original, lists)? {
                    expanded.push(SigmaValue::String(SigmaString::new(&variant)));
                }
            }
            other => expanded.push(other),
        }
    }
    if expanded.is_empty() {
        expanded.push(SigmaValue::String(SigmaString::new(MATCHES_NOTHING)));
    }
    item.values = expanded;
    Ok(())
}

/// Every string `template` stands for: each `%name%` replaced by each value of
/// list `name` (several placeholders give every combination).
fn expand_text(
    template: &str,
    lists: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<String>, String> {
    let Some(start) = template.find('%') else {
        return Ok(vec![template.to_string()]);
    };
    let after = &template[start + 1..];
    let Some(length) = after.find('%') else {
        return Ok(vec![template.to_string()]);
    };
    let name = &after[..length];
    let prefix = &template[..start];
    let rest = &after[length + 1..];
    let values = lists.get(name).ok_or_else(|| {
        format!("placeholder %{name}% has no list (expected rules/lists/{name}.txt)")
    })?;
    let tails = expand_text(rest, lists)?;
    let mut out = Vec::with_capacity(values.len() * tails.len());
    for value in values {
        for tail in &tails {
            out.push(format!("{prefix}{value}{tail}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> BTreeMap<String, Vec<String>> {
        let mut lists = BTreeMap::new();
        lists.insert(
            "ips".to_string(),
            vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()],
        );
        lists.insert("ports".to_string(), vec!["22".to_string()]);
        lists.insert("empty".to_string(), Vec::new());
        lists
    }

    #[test]
    fn placeholders_expand_with_prefix_suffix_and_combinations() {
        assert_eq!(
            expand_text("*.%ips%", &lists()).unwrap(),
            vec!["*.192.0.2.1", "*.192.0.2.2"]
        );
        assert_eq!(
            expand_text("%ips%:%ports%", &lists()).unwrap(),
            vec!["192.0.2.1:22", "192.0.2.2:22"]
        );
        assert_eq!(expand_text("100%", &lists()).unwrap(), vec!["100%"]);
        assert!(expand_text("%empty%", &lists()).unwrap().is_empty());
    }

    #[test]
    fn missing_list_names_the_file() {
        let error = expand_text("%threat_ips%", &lists()).unwrap_err();
        assert_eq!(
            error,
            "placeholder %threat_ips% has no list (expected rules/lists/threat_ips.txt)"
        );
    }
}
