//! Error types: [`RuleError`] for one rejected rule (loading goes on without it) and
//! [`DetectError`] for failures of a whole operation (snapshot, restore, rule tests).

use std::fmt;

/// Why one rule file (or one document in it) was not loaded.
///
/// A broken rule never stops the others: the detector collects these in
/// [`crate::LoadReport::rejected`] and loads everything else.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleError {
    /// Where the rule came from (a file path, for error messages).
    pub origin: String,
    /// 1-based line in `origin`, when the parser reported one.
    pub line: Option<usize>,
    /// The rule id, when the document got far enough to have one.
    pub rule_id: Option<String>,
    /// What is wrong, in one line.
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(id) = &self.rule_id {
            write!(f, " (rule {id})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl RuleError {
    /// A rejection with no line and no rule id.
    pub fn new(origin: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        RuleError {
            origin: origin.to_string(),
            line: line_from_message(&reason),
            rule_id: None,
            reason,
        }
    }

    /// The same rejection, naming the rule it is about.
    pub fn for_rule(mut self, rule_id: Option<&str>) -> Self {
        self.rule_id = rule_id.map(str::to_string);
        self
    }
}

/// Finds "line N" in a parser message (YAML errors say "at line 3 column 5").
fn line_from_message(message: &str) -> Option<usize> {
    let start = message.find("line ")? + "line ".len();
    let digits: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Failure of a detector-wide operation.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The correlation snapshot could not be written or read as JSON.
    #[error("correlation snapshot is not valid json: {0}")]
    SnapshotJson(#[from] serde_json::Error),
    /// The snapshot was written by an incompatible version.
    #[error("correlation snapshot version {found} is not supported (expected {expected})")]
    SnapshotVersion {
        /// Version found in the snapshot.
        found: u32,
        /// Version this build writes and reads.
        expected: u32,
    },
    /// A rule test file could not be read.
    #[error("rule test file {origin}: {reason}")]
    TestFile {
        /// Path of the test file.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// An event in the test form could not be turned into a wire event.
    #[error("invalid event: {0}")]
    EventForm(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_taken_from_yaml_messages() {
        let error = RuleError::new("a.yml", "YAML parsing error: bad indent at line 7 column 3");
        assert_eq!(error.line, Some(7));
        assert_eq!(
            error.to_string(),
            "a.yml:7: YAML parsing error: bad indent at line 7 column 3"
        );
    }

    #[test]
    fn message_without_line_has_none() {
        let error = RuleError::new("b.yml", "missing id").for_rule(Some("r1"));
        assert_eq!(error.line, None);
        assert_eq!(error.to_string(), "b.yml (rule r1): missing id");
    }
}
