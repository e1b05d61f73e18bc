//! Accepted risk: `suppressions.json` in the results container.
//!
//! Each entry names a rule, an identity, a reason and an expiry. A suppressed finding is still
//! written, marked `suppressed` with the reason. An expired suppression stops applying and
//! raises an `info` finding (rule `SUPP-001`) so it gets renewed or removed. Applying suppressions is
//! pure: "now" is the snapshot's collection time, so replays give the same result.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::rules::Finding;

/// Name of the file in the results container.
pub const SUPPRESSIONS_FILE: &str = "suppressions.json";

/// One accepted risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Suppression {
    /// Rule id, e.g. `MI-GRAPH-002`.
    pub rule_id: String,
    /// Object id of the identity (or service principal) the finding is about.
    pub identity_id: String,
    /// Why the risk is accepted.
    pub reason: String,
    /// When the acceptance ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Who accepted it (free text), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// The file's shape: `{"suppressions": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionFile {
    /// The entries.
    pub suppressions: Vec<Suppression>,
}

/// Why `suppressions.json` was not used.
#[derive(Debug, thiserror::Error)]
#[error("suppressions.json is malformed, so no suppression was applied: {0}")]
pub struct MalformedSuppressions(pub String);

/// Parses and validates the file. Entries must name a known rule and a non-empty reason.
pub fn parse(bytes: &[u8]) -> Result<Vec<Suppression>, MalformedSuppressions> {
    let file: SuppressionFile =
        serde_json::from_slice(bytes).map_err(|e| MalformedSuppressions(e.to_string()))?;
    for (i, s) in file.suppressions.iter().enumerate() {
        if crate::rules::rule(&s.rule_id).is_none() {
            return Err(MalformedSuppressions(format!(
                "entry {i}: unknown rule id {:?}",
                s.rule_id
            )));
        }
        if s.reason.trim().is_empty() {
            return Err(MalformedSuppressions(format!(
                "entry {i}: the reason is empty"
            )));
        }
        if s.identity_id.trim().is_empty() {
            return Err(MalformedSuppressions(format!(
                "entry {i}: the identity id is empty"
            )));
        }
    }
    Ok(file.suppressions)
}

/// Marks the findings an active (unexpired) suppression covers. Expired suppressions are
/// reported by rule `SUPP-001` instead.
pub fn mark(findings: &mut [Finding], suppressions: &[Suppression], now: OffsetDateTime) {
    for finding in findings.iter_mut() {
        let active = suppressions.iter().find(|s| {
            s.expires > now
                && s.rule_id.eq_ignore_ascii_case(&finding.rule_id)
                && s.identity_id.eq_ignore_ascii_case(&finding.identity_id)
        });
        if let Some(s) = active {
            finding.suppressed = true;
            finding.suppression = Some(AppliedSuppression {
                reason: s.reason.clone(),
                expires: s.expires,
                approved_by: s.approved_by.clone(),
            });
        }
    }
}

/// The suppression recorded on a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedSuppression {
    /// Why the risk is accepted.
    pub reason: String,
    /// When the acceptance ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Who accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}
