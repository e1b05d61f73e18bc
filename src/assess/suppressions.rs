//! Applying accepted risk: `suppressions.json` parsed against the rule catalogue, and the
//! findings an active entry covers marked suppressed. Pure: "now" is the snapshot's collection
//! time, so replays give the same result. The entries themselves are snapshot data
//! ([`crate::snapshot::suppressions`]); an expired one raises `SUPP-001` (`crate::rules`).

use time::OffsetDateTime;

use crate::model::AppliedSuppression;
use crate::rules::Finding;
use crate::snapshot::suppressions::{Suppression, SuppressionFile};

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
