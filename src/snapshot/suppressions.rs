//! Accepted risk as data: the entries of `suppressions.json` in the results container, recorded
//! in the snapshot's settings, with the entries that were rejected and why.
//!
//! Each entry names what it covers, a reason and an expiry. It covers one of:
//! - one finding, by `findingId`;
//! - a rule for one identity, by `ruleId` and `identityId`;
//! - a rule for every identity whose display name matches a glob, by `ruleId` and `displayName`;
//! - a rule for every identity, by `ruleId` alone.
//!
//! A suppressed finding is still written, marked `suppressed` with the reason. An expired
//! suppression stops applying and raises an `info` finding (rule `SUPP-001`) so it gets renewed
//! or removed. Parsing, validating and applying them is `crate::assess::suppressions`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Name of the file in the results container.
pub const SUPPRESSIONS_FILE: &str = "suppressions.json";

/// One accepted risk, as written in `suppressions.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Suppression {
    /// Rule id, e.g. `MI-GRAPH-002`; required unless the entry names a `findingId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Object id of the one identity (or service principal) the entry covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// A glob (`*`, `?`, `[a-z]`; case-insensitive) on the display name of the identities
    /// the entry covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The one finding the entry covers (`findingId` of findings.ndjson).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding_id: Option<String>,
    /// Why the risk is accepted.
    pub reason: String,
    /// When the acceptance ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Who accepted it (free text), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

pub use crate::model::SuppressionScope;

impl Suppression {
    /// What the entry covers: the most specific field it names. Validation
    /// (`crate::assess::suppressions::parse`) rejects entries that name more than one.
    pub fn scope(&self) -> SuppressionScope {
        if self.finding_id.is_some() {
            SuppressionScope::Finding
        } else if self.identity_id.is_some() {
            SuppressionScope::Identity
        } else if self.display_name.is_some() {
            SuppressionScope::DisplayName
        } else {
            SuppressionScope::Rule
        }
    }

    /// The rule it names, or "" (a `findingId` entry may name none).
    pub fn rule(&self) -> &str {
        self.rule_id.as_deref().unwrap_or_default()
    }

    /// What it covers, in words: "MI-GRAPH-002 for 1c2f…", "MI-HYG-001 for identities named
    /// 'test-*'", "MI-HYG-001 for every identity" or "finding bcc9…".
    pub fn describe(&self) -> String {
        match (
            self.scope(),
            &self.identity_id,
            &self.display_name,
            &self.finding_id,
        ) {
            (SuppressionScope::Finding, _, _, Some(id)) => format!("finding {id}"),
            (SuppressionScope::Identity, Some(id), _, _) => format!("{} for {id}", self.rule()),
            (SuppressionScope::DisplayName, _, Some(glob), _) => {
                format!("{} for identities named '{glob}'", self.rule())
            }
            _ => format!("{} for every identity", self.rule()),
        }
    }
}

/// An entry of `suppressions.json` that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedSuppression {
    /// Its position in the file's `suppressions` array, from 0.
    pub entry: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// The file's shape: `{"suppressions": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionFile {
    /// The entries.
    pub suppressions: Vec<Suppression>,
}
