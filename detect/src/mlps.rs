//! The rule → 等保 2.0 (GB/T 22239-2019) clause map read from `rules/mlps.yml`.
//!
//! File shape (one entry per rule id; a rule may map to several clauses):
//!
//! ```yaml
//! rules:
//!   5d3b1c1e-0c53-4d39-9f0e-2f1f6b7a1001:   # SSH password failure
//!     - 8.1.4.1 b)
//!     - 8.1.4.3 a)
//! ```
//!
//! A clause is a clause number with an optional item letter: `8.1.4.4 f)`,
//! `8.1.5.4`. Level-3 clauses start with `8.`, level-2 with `7.`.

use std::collections::BTreeMap;

use crate::error::RuleError;

/// Origin used in error messages for the clause map.
pub const MLPS_ORIGIN: &str = "mlps.yml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MlpsFile {
    #[serde(default)]
    rules: BTreeMap<String, Vec<String>>,
}

/// Rule id → clauses.
pub type ClauseMap = BTreeMap<String, Vec<String>>;

/// Parses the clause map. Malformed clauses are reported and left out; a file that
/// is not valid YAML gives an empty map and one error.
pub fn parse_clause_map(yaml: &str) -> (ClauseMap, Vec<RuleError>) {
    let file: MlpsFile = match serde_norway::from_str(yaml) {
        Ok(file) => file,
        Err(error) => {
            return (
                ClauseMap::new(),
                vec![RuleError::new(MLPS_ORIGIN, error.to_string())],
            );
        }
    };
    let mut map = ClauseMap::new();
    let mut errors = Vec::new();
    for (rule_id, clauses) in file.rules {
        let mut valid = Vec::new();
        for clause in clauses {
            let clause = clause.trim().to_string();
            if is_clause(&clause) {
                valid.push(clause);
            } else {
                errors.push(
                    RuleError::new(
                        MLPS_ORIGIN,
                        format!("'{clause}' is not a clause like '8.1.4.1 b)' or '8.1.5.4'"),
                    )
                    .for_rule(Some(&rule_id)),
                );
            }
        }
        map.insert(rule_id, valid);
    }
    (map, errors)
}

/// `N.N.N.N` (three or four dot-separated numbers) optionally followed by ` x)`.
fn is_clause(text: &str) -> bool {
    let (number, item) = match text.split_once(' ') {
        Some((number, item)) => (number, Some(item)),
        None => (text, None),
    };
    let parts: Vec<&str> = number.split('.').collect();
    let number_ok = (3..=5).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    let item_ok = item.is_none_or(|item| {
        let mut chars = item.chars();
        matches!((chars.next(), chars.next(), chars.next()), (Some(letter), Some(')'), None) if letter.is_ascii_lowercase())
    });
    number_ok && item_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_rejects_bad_clauses() {
        let yaml = "rules:\n  r1:\n    - 8.1.4.1 b)\n    - 8.1.5.4\n  r2:\n    - eight\n    - 8.1.4.4 ff)\n";
        let (map, errors) = parse_clause_map(yaml);
        assert_eq!(map["r1"], vec!["8.1.4.1 b)", "8.1.5.4"]);
        assert!(map["r2"].is_empty());
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].rule_id.as_deref(), Some("r2"));
    }

    #[test]
    fn broken_yaml_is_one_error() {
        let (map, errors) = parse_clause_map("rules: [unclosed");
        assert!(map.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].origin, MLPS_ORIGIN);
    }

    #[test]
    fn unknown_top_level_key_is_an_error() {
        let (_, errors) = parse_clause_map("rule:\n  r1: [8.1.4.1 b)]\n");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].reason.contains("unknown field"),
            "{}",
            errors[0].reason
        );
    }
}
