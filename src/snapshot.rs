//! The tenant snapshot: everything collection read from Graph, as one serialisable value.
//!
//! Assessment is a pure function of this snapshot, so any run can be replayed offline from the
//! snapshot it wrote. The snapshot holds raw Graph objects, not conclusions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::graph::model::ServicePrincipal;

/// Version of the snapshot format.
pub const SNAPSHOT_SCHEMA_VERSION: &str = "1.0.0";

/// Everything collected about one tenant in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSnapshot {
    /// Format version of this document.
    pub schema_version: String,
    /// The tenant that was scanned.
    pub tenant_id: String,
    /// When collection finished.
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    /// The Graph endpoint that was read.
    pub graph_endpoint: String,
    /// The scanner's own identity, from its token.
    pub scanner: ScannerIdentity,
    /// Every service principal with `servicePrincipalType eq 'ManagedIdentity'`.
    pub managed_identities: Vec<ServicePrincipal>,
}

/// Who ran the scan, as its own token describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerIdentity {
    /// Object id (`oid`).
    pub object_id: Option<String>,
    /// Application id (`appid`).
    pub app_id: Option<String>,
    /// Graph application permissions in the token (`roles`).
    #[serde(default)]
    pub roles: Vec<String>,
}
