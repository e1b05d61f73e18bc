//! The Azure side of a simulated tenant: what the simulator's Azure Resource Manager endpoints
//! serve (`arm_api`).
//!
//! Resource Graph rows are stored exactly as mi-assess's KQL queries project them
//! (`crate::arm::queries`): the simulator answers each query string by identity rather than
//! running KQL, so a row here is one row of that query's answer. Federated identity credentials
//! are stored as ARM returns them, per user-assigned identity.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arm::queries;

/// The Azure plane of a simulated tenant. Empty by default: ARM is readable and holds nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimArm {
    /// Every ARM call is answered 403 `AuthorizationFailed` (the scanner holds no Azure role).
    pub denied: bool,
    /// Rows of `queries::SUBSCRIPTIONS`.
    pub subscriptions: Vec<Value>,
    /// Rows of `queries::ROLE_ASSIGNMENTS`.
    pub role_assignments: Vec<Value>,
    /// Rows of `queries::ROLE_DEFINITIONS`.
    pub role_definitions: Vec<Value>,
    /// Rows of `queries::USER_ASSIGNED_IDENTITIES`.
    pub user_assigned_identities: Vec<Value>,
    /// Rows of `queries::IDENTITY_RESOURCES`.
    pub resources: Vec<Value>,
    /// Federated identity credentials (ARM JSON), by user-assigned identity resource id.
    pub federated_credentials: BTreeMap<String, Vec<Value>>,
    /// User-assigned identities whose credential list is answered with this status instead:
    /// 404 (the identity is gone) or 405 (federated credentials not supported), by resource id.
    pub federated_credential_status: BTreeMap<String, u16>,
    /// Rows per Resource Graph page and credentials per list page (default: the service's
    /// maxima); lower it to exercise paging.
    pub page_size: Option<usize>,
    /// The first this many Resource Graph requests are answered 429 with an exhausted quota.
    pub throttle_first: usize,
}

impl SimArm {
    /// The rows a Resource Graph query returns, or `None` for a query mi-assess never sends.
    pub fn rows(&self, query: &str) -> Option<&[Value]> {
        let rows = match query {
            q if q == queries::SUBSCRIPTIONS => &self.subscriptions,
            q if q == queries::ROLE_ASSIGNMENTS => &self.role_assignments,
            q if q == queries::ROLE_DEFINITIONS => &self.role_definitions,
            q if q == queries::USER_ASSIGNED_IDENTITIES => &self.user_assigned_identities,
            q if q == queries::IDENTITY_RESOURCES => &self.resources,
            _ => return None,
        };
        Some(rows)
    }

    /// True when a user-assigned identity with this resource id exists.
    pub fn has_identity(&self, id: &str) -> bool {
        self.user_assigned_identities.iter().any(|u| {
            u.get("id")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(id))
        })
    }

    /// The federated credentials of one identity (case-insensitive id).
    pub fn credentials_of(&self, id: &str) -> &[Value] {
        self.federated_credentials
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }

    /// The status configured for one identity's credential list, if any.
    pub fn credential_status(&self, id: &str) -> Option<u16> {
        self.federated_credential_status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_has_rows_and_nothing_else_does() {
        let arm = SimArm::default();
        for query in queries::ALL {
            assert!(arm.rows(query).is_some());
        }
        assert!(arm.rows("resources | take 1").is_none());
    }
}
