//! The Azure side of a simulated tenant: what the simulator's Azure Resource Manager endpoints
//! serve (`arm_api`).
//!
//! Resource Graph rows are stored exactly as mi-assess's KQL queries project them
//! (`crate::arm::queries`): the simulator answers each query string by identity rather than
//! running KQL, so a row here is one row of that query's answer. Federated identity credentials
//! are stored as ARM returns them, per user-assigned identity, and PIM eligibilities as ARM
//! returns role eligibility schedule instances.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
    /// Rows of `queries::STORAGE_ACCOUNTS`: the accounts deployment storage names (the
    /// simulator does not run the join: list exactly the accounts the query would return).
    pub storage_accounts: Vec<Value>,
    /// Other storage accounts (same row shape): found only by the by-name query of issuers'
    /// storage accounts (`queries::issuer_storage_accounts`), which searches both lists.
    pub other_storage_accounts: Vec<Value>,
    /// Azure RBAC PIM eligibilities: role eligibility schedule instances (ARM JSON, `id`,
    /// `name`, `type`, `properties`). A subscription's list returns those whose
    /// `properties.scope` is at, above or below it.
    pub eligible_role_assignments: Vec<Value>,
    /// The PIM eligibility lists are answered with this status instead: 400
    /// `AadPremiumLicenseRequired` (no Entra ID P2 licence), 403 `AuthorizationFailed`, or any
    /// other status as a server error.
    pub eligibility_status: Option<u16>,
    /// Federated identity credentials (ARM JSON), by user-assigned identity resource id.
    pub federated_credentials: BTreeMap<String, Vec<Value>>,
    /// User-assigned identities whose credential list is answered with this status instead:
    /// 404 (the identity is gone) or 405 (federated credentials not supported), by resource id.
    pub federated_credential_status: BTreeMap<String, u16>,
    /// Rows per Resource Graph page and credentials per list page (default: the service's
    /// maxima); lower it to exercise paging.
    pub page_size: Option<usize>,
    /// Resource Graph's subscription limit (10,000 in Azure; unlimited when unset): a query over
    /// more subscriptions than this covers the first this many of `subscriptions` (rows outside
    /// any subscription still come back at tenant scope) and answers
    /// `x-ms-tenant-subscription-limit-hit: true`.
    pub subscription_limit: Option<usize>,
    /// `GET /subscriptions` (the full list) is answered with this status instead.
    pub subscription_list_status: Option<u16>,
    /// The first this many Resource Graph requests are answered 429 with an exhausted quota.
    pub throttle_first: usize,
    /// The generated estate whose large data sets (role assignments, identity resources,
    /// user-assigned identities) are computed page by page after the stored rows above; not
    /// serialised.
    #[serde(skip)]
    pub estate: Option<Arc<super::estate::Estate>>,
    /// Resource Graph queries answered 400 `BadRequest`, as a Resource Graph that rejects them
    /// (an unsupported operator, say) would.
    pub rejected_queries: Vec<String>,
}

impl SimArm {
    /// The rows a Resource Graph query returns, or `None` for a query mi-assess never sends.
    pub fn rows(&self, query: &str) -> Option<std::borrow::Cow<'_, [Value]>> {
        if let Some(names) = queries::issuer_storage_account_names(query) {
            let named = |row: &&Value| {
                row.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| names.iter().any(|w| w.eq_ignore_ascii_case(n)))
            };
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<Value> = self
                .storage_accounts
                .iter()
                .chain(&self.other_storage_accounts)
                .filter(named)
                .filter(|r| seen.insert(r.get("id").cloned()))
                .cloned()
                .collect();
            return Some(std::borrow::Cow::Owned(rows));
        }
        let rows = match query {
            q if q == queries::SUBSCRIPTIONS => &self.subscriptions,
            q if q == queries::ROLE_ASSIGNMENTS => &self.role_assignments,
            q if q == queries::ROLE_DEFINITIONS => &self.role_definitions,
            q if q == queries::USER_ASSIGNED_IDENTITIES => &self.user_assigned_identities,
            q if q == queries::IDENTITY_RESOURCES => &self.resources,
            q if q == queries::STORAGE_ACCOUNTS => &self.storage_accounts,
            _ => return None,
        };
        Some(std::borrow::Cow::Borrowed(rows))
    }

    /// The subscription ids of `subscriptions`, in order.
    pub fn subscription_ids(&self) -> Vec<String> {
        self.subscriptions
            .iter()
            .filter_map(|s| s.get("subscriptionId").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// Which subscriptions a query on `requested` (tenant scope when `None`) covers, under
    /// [`Self::subscription_limit`]: `None` for every row (no limit reached at tenant scope),
    /// else the covered subscription ids (lower case) and whether rows outside any subscription
    /// come back; and whether the limit was hit.
    fn covered(&self, requested: Option<&[String]>) -> (Option<(BTreeSet<String>, bool)>, bool) {
        let limit = self.subscription_limit.unwrap_or(usize::MAX);
        let lower = |ids: &[String]| -> Vec<String> {
            ids.iter().map(|s| s.to_ascii_lowercase()).collect()
        };
        match requested {
            None if self.subscriptions.len() <= limit => (None, false),
            None => {
                let ids = lower(&self.subscription_ids());
                (Some((ids.into_iter().take(limit).collect(), true)), true)
            }
            Some(list) => {
                let ids = lower(list);
                let hit = ids.len() > limit;
                (Some((ids.into_iter().take(limit).collect(), false)), hit)
            }
        }
    }

    /// One Resource Graph page of `query` on `subscriptions` (tenant scope when `None`): the
    /// total row count, rows `offset..offset + top` (the stored rows, then the generated
    /// estate's), and whether the subscription limit was hit. `None` for a query mi-assess
    /// never sends.
    pub fn page(
        &self,
        query: &str,
        subscriptions: Option<&[String]>,
        offset: usize,
        top: usize,
    ) -> Option<(usize, Vec<Value>, bool)> {
        let (covered, limit_hit) = self.covered(subscriptions);
        let Some((covered, outside)) = covered else {
            let (total, rows) = self.unfiltered_page(query, offset, top)?;
            return Some((total, rows, limit_hit));
        };
        let (total, all) = self.unfiltered_page(query, 0, usize::MAX)?;
        debug_assert_eq!(total, all.len());
        let rows: Vec<Value> = all
            .into_iter()
            .filter(|row| match row_subscription(row) {
                Some(id) => covered.contains(&id),
                None => outside,
            })
            .collect();
        let end = offset.saturating_add(top).min(rows.len());
        let page = rows[offset.min(end)..end].to_vec();
        Some((rows.len(), page, limit_hit))
    }

    /// [`Self::page`] over every row.
    fn unfiltered_page(
        &self,
        query: &str,
        offset: usize,
        top: usize,
    ) -> Option<(usize, Vec<Value>)> {
        let stored = self.rows(query)?;
        let generated = self.estate.as_ref().map_or(0, |e| e.count(query));
        let total = stored.len() + generated;
        let end = offset.saturating_add(top).min(total);
        let rows = (offset.min(end)..end)
            .filter_map(|i| match stored.get(i) {
                Some(row) => Some(row.clone()),
                None => self
                    .estate
                    .as_ref()
                    .and_then(|e| e.row(query, i - stored.len())),
            })
            .collect();
        Some((total, rows))
    }

    /// `GET /subscriptions` items: every subscription of `subscriptions`, shaped as
    /// Subscriptions - List returns them.
    pub fn subscription_list(&self) -> Vec<Value> {
        self.subscriptions
            .iter()
            .map(|row| {
                let field = |name: &str| row.get(name).cloned().unwrap_or(Value::Null);
                let id = row.get("subscriptionId").and_then(Value::as_str).unwrap_or_default();
                serde_json::json!({
                    "id": format!("/subscriptions/{id}"),
                    "subscriptionId": id,
                    "tenantId": field("tenantId"),
                    "displayName": field("name"),
                    "state": field("state"),
                    "authorizationSource": "RoleBased",
                    "managedByTenants": row.get("managedByTenants").cloned().unwrap_or_else(|| serde_json::json!([])),
                })
            })
            .collect()
    }

    /// The management groups above a readable subscription (its ancestor chain), or `None` when
    /// the subscription is not one of `subscriptions`.
    pub fn ancestors_of(&self, subscription_id: &str) -> Option<Vec<String>> {
        let row = self.subscriptions.iter().find(|s| {
            s.get("subscriptionId")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(subscription_id))
        })?;
        Some(
            row.get("managementGroupAncestorsChain")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|mg| mg.get("name").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The eligibilities a subscription's list returns: with `at_scope_only` (`$filter=atScope()`)
    /// those at or above it, otherwise also those below it.
    pub fn eligibilities_for(&self, subscription_id: &str, at_scope_only: bool) -> Vec<&Value> {
        let Some(ancestors) = self.ancestors_of(subscription_id) else {
            return Vec::new();
        };
        let subscription = format!("/subscriptions/{}", subscription_id.to_ascii_lowercase());
        self.eligible_role_assignments
            .iter()
            .filter(|e| {
                let scope = e
                    .pointer("/properties/scope")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_ascii_lowercase();
                if scope.is_empty() {
                    return true;
                }
                if let Some(group) =
                    scope.strip_prefix("/providers/microsoft.management/managementgroups/")
                {
                    return ancestors.iter().any(|a| a.eq_ignore_ascii_case(group));
                }
                scope == subscription
                    || (!at_scope_only && scope.starts_with(&format!("{subscription}/")))
            })
            .collect()
    }

    /// True when a user-assigned identity with this resource id exists.
    pub fn has_identity(&self, id: &str) -> bool {
        self.estate.as_ref().is_some_and(|e| e.has_identity(id))
            || self.user_assigned_identities.iter().any(|u| {
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

/// The subscription a Resource Graph row lies in (lower case): its `subscriptionId` column,
/// else the subscription its `scope` or `id` starts with; `None` for rows outside any
/// subscription (management-group role assignments, built-in role definitions).
fn row_subscription(row: &Value) -> Option<String> {
    if let Some(id) = row.get("subscriptionId").and_then(Value::as_str) {
        return Some(id.to_ascii_lowercase());
    }
    ["scope", "id"].iter().find_map(|key| {
        let path = row.get(*key).and_then(Value::as_str)?;
        let mut parts = path.trim_start_matches('/').split('/');
        (parts.next()?.eq_ignore_ascii_case("subscriptions"))
            .then(|| parts.next())
            .flatten()
            .map(str::to_ascii_lowercase)
    })
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

    #[test]
    fn a_subscription_lists_the_eligibilities_at_above_and_below_it() {
        let arm: SimArm = serde_json::from_value(serde_json::json!({
            "subscriptions": [{"subscriptionId": "S1", "managementGroupAncestorsChain": [{"name": "mg-a"}, {"name": "root"}]}],
            "eligibleRoleAssignments": [
                {"id": "root", "properties": {"scope": "/"}},
                {"id": "mg", "properties": {"scope": "/providers/Microsoft.Management/managementGroups/MG-A"}},
                {"id": "other-mg", "properties": {"scope": "/providers/Microsoft.Management/managementGroups/mg-b"}},
                {"id": "sub", "properties": {"scope": "/subscriptions/s1"}},
                {"id": "rg", "properties": {"scope": "/subscriptions/s1/resourceGroups/rg"}},
                {"id": "other-sub", "properties": {"scope": "/subscriptions/s10"}}
            ]
        }))
        .expect("parses");
        let ids = |at_scope| -> Vec<&str> {
            arm.eligibilities_for("s1", at_scope)
                .iter()
                .filter_map(|e| e["id"].as_str())
                .collect()
        };
        assert_eq!(ids(false), ["root", "mg", "sub", "rg"]);
        assert_eq!(ids(true), ["root", "mg", "sub"]);
        assert!(arm.eligibilities_for("s2", false).is_empty());
    }
}
