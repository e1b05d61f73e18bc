//! Accepted risk as data: the entries of `suppressions.json` in the results container, recorded
//! in the snapshot's settings.
//!
//! Each entry names a rule, an identity, a reason and an expiry. A suppressed finding is still
//! written, marked `suppressed` with the reason. An expired suppression stops applying and
//! raises an `info` finding (rule `SUPP-001`) so it gets renewed or removed. Parsing and
//! applying them is `crate::assess::suppressions`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
