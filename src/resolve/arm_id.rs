//! The ARM resource id parser: subscription, resource group, management group, type and name
//! of an id, whatever its nesting. Pure.

use serde::{Deserialize, Serialize};

/// The ARM type of user-assigned identities.
pub const USER_ASSIGNED_IDENTITY_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// The parts of an ARM resource id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmResourceId {
    /// The id as Graph reported it.
    pub id: String,
    /// Subscription GUID, when the resource lives in a subscription.
    pub subscription_id: Option<String>,
    /// Resource group, when the resource lives in one.
    pub resource_group: Option<String>,
    /// Management group, for resources at management-group scope (policy assignments).
    pub management_group: Option<String>,
    /// Full type: namespace plus type segments, e.g. `Microsoft.Web/sites` or
    /// `Microsoft.Sql/servers/databases`.
    pub resource_type: String,
    /// The resource's own name (the last segment).
    pub name: String,
}

impl ArmResourceId {
    /// Parses an ARM resource id. Case-insensitive on the fixed segments; values keep their case.
    /// Returns `None` for anything that is not a resource id with a `/providers/` part.
    pub fn parse(id: &str) -> Option<Self> {
        let trimmed = id.trim();
        if !trimmed.starts_with('/') {
            return None;
        }
        let segments: Vec<&str> = trimmed.trim_matches('/').split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        // The resource's own provider is the last `providers` segment (ids can nest scopes,
        // e.g. a policy assignment under a management group).
        let provider_at = segments
            .iter()
            .rposition(|s| s.eq_ignore_ascii_case("providers"))?;
        let scope = &segments[..provider_at];
        let typed = &segments[provider_at + 1..];
        // namespace, then (type, name) pairs.
        if typed.len() < 3 || typed.len().is_multiple_of(2) {
            return None;
        }
        let namespace = typed[0];
        let mut type_parts = vec![namespace];
        let mut name = "";
        for pair in typed[1..].chunks(2) {
            type_parts.push(pair[0]);
            name = pair[1];
        }
        let value_after = |key: &str| {
            scope
                .iter()
                .position(|s| s.eq_ignore_ascii_case(key))
                .and_then(|i| scope.get(i + 1))
                .map(|s| (*s).to_owned())
        };
        Some(Self {
            id: trimmed.to_owned(),
            subscription_id: value_after("subscriptions"),
            resource_group: value_after("resourcegroups"),
            management_group: value_after("managementgroups"),
            resource_type: type_parts.join("/"),
            name: name.to_owned(),
        })
    }

    /// True when this id names a user-assigned identity resource.
    pub fn is_user_assigned_identity(&self) -> bool {
        self.resource_type
            .eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY_TYPE)
    }
}
