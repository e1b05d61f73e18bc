//! Managed-identity semantics: system- versus user-assigned, and the ARM resource behind each.
//!
//! Graph encodes both in `alternativeNames`: an `isExplicit=True|False` token and the ARM
//! resource id. The classification reads the token and the shape of the id, never the array
//! position (`../shared/reference/microsoft-graph.md` §1.1). Pure functions only.

use serde::{Deserialize, Serialize};

use crate::assess::{ResolvedAppRole, ResolvedDirectoryRole, ResolvedGrant, ResolvedGroup};
use crate::classification::Tier;
use crate::graph::model::ServicePrincipal;
use crate::rules::Severity;

/// The ARM type of user-assigned identities.
pub const USER_ASSIGNED_IDENTITY_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// System-assigned identities live and die with their resource; user-assigned ones are
/// standalone resources that can outlive everything that uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentityKind {
    /// Created with, and deleted with, one Azure resource.
    SystemAssigned,
    /// A standalone `Microsoft.ManagedIdentity/userAssignedIdentities` resource.
    UserAssigned,
}

impl IdentityKind {
    /// The wire name (`systemAssigned` / `userAssigned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemAssigned => "systemAssigned",
            Self::UserAssigned => "userAssigned",
        }
    }
}

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

/// The result of reading `alternativeNames`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// System- or user-assigned.
    pub kind: IdentityKind,
    /// The `isExplicit` token, when present.
    pub is_explicit: Option<bool>,
    /// The ARM resource (host resource or the identity resource itself).
    pub resource: Option<ArmResourceId>,
    /// Set when the token and the resource type disagree.
    pub note: Option<String>,
}

/// Classifies a managed identity from its `alternativeNames`.
///
/// Rules, in order: a resource of type `Microsoft.ManagedIdentity/userAssignedIdentities` means
/// user-assigned; otherwise `isExplicit=True` means user-assigned; `isExplicit=False` or no
/// token means system-assigned.
pub fn classify(alternative_names: &[String]) -> Classification {
    let is_explicit = alternative_names.iter().find_map(|name| {
        let (key, value) = name.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("isExplicit") {
            return None;
        }
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    });
    let resource = alternative_names
        .iter()
        .find_map(|name| ArmResourceId::parse(name));
    let resource_says_user = resource
        .as_ref()
        .map(ArmResourceId::is_user_assigned_identity);
    let kind = match (resource_says_user, is_explicit) {
        (Some(true), _) | (None | Some(false), Some(true)) => IdentityKind::UserAssigned,
        _ => IdentityKind::SystemAssigned,
    };
    let note = match (resource_says_user, is_explicit) {
        (Some(true), Some(false)) => {
            Some("isExplicit=False but the resource is a user-assigned identity".to_owned())
        }
        (Some(false), Some(true)) => {
            Some("isExplicit=True but the resource is not a user-assigned identity".to_owned())
        }
        (None, _) => Some("alternativeNames carries no ARM resource id".to_owned()),
        _ => None,
    };
    Classification {
        kind,
        is_explicit,
        resource,
        note,
    }
}

/// Version of the identity record format.
pub const IDENTITY_SCHEMA_VERSION: &str = "1.1.0";

/// One line of `identities.ndjson`: a managed identity and the resource behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRecord {
    /// Format version of this record.
    pub schema_version: String,
    /// Object id of the service principal.
    pub id: String,
    /// Application (client) id.
    pub app_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// `systemAssigned` or `userAssigned`.
    pub kind: IdentityKind,
    /// Whether the service principal can sign in.
    pub account_enabled: Option<bool>,
    /// Full ARM resource id from `alternativeNames`.
    pub resource_id: Option<String>,
    /// Subscription of the resource.
    pub subscription_id: Option<String>,
    /// Resource group of the resource.
    pub resource_group: Option<String>,
    /// Management group, for identities at management-group scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_group: Option<String>,
    /// Provider namespace and type, e.g. `Microsoft.Web/sites`.
    pub resource_type: Option<String>,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Anything odd about the classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification_note: Option<String>,
    /// Highest tier across its Graph permissions, directory roles and Azure roles (absent: it
    /// holds none).
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Application permissions, resolved and tiered (null: could not be read).
    #[serde(default)]
    pub app_roles: Option<Vec<ResolvedAppRole>>,
    /// Transitive group memberships (null: could not be read).
    #[serde(default)]
    pub groups: Option<Vec<ResolvedGroup>>,
    /// Directory roles, direct or through a group, active or eligible (null: could not be read).
    #[serde(default)]
    pub directory_roles: Option<Vec<ResolvedDirectoryRole>>,
    /// Delegated permission grants as client (null: could not be read).
    #[serde(default)]
    pub delegated_grants: Option<Vec<ResolvedGrant>>,
    /// Azure RBAC role assignments, direct or through a group, with scope and tier (null: the
    /// Azure plane could not be read).
    #[serde(default)]
    pub azure_role_assignments: Option<Vec<crate::azure::ResolvedAzureRole>>,
    /// Data sets that could not be read for this identity.
    #[serde(default)]
    pub unknown: Vec<String>,
    /// Number of findings about it.
    #[serde(default)]
    pub finding_count: usize,
    /// Its most severe finding.
    #[serde(default)]
    pub highest_severity: Option<Severity>,
}

impl IdentityRecord {
    /// Builds the record for one managed-identity service principal.
    pub fn from_service_principal(sp: &ServicePrincipal) -> Self {
        let c = classify(&sp.alternative_names);
        let resource = c.resource.as_ref();
        Self {
            schema_version: IDENTITY_SCHEMA_VERSION.to_owned(),
            id: sp.id.clone(),
            app_id: sp.app_id.clone(),
            display_name: sp.display_name.clone(),
            kind: c.kind,
            account_enabled: sp.account_enabled,
            resource_id: resource.map(|r| r.id.clone()),
            subscription_id: resource.and_then(|r| r.subscription_id.clone()),
            resource_group: resource.and_then(|r| r.resource_group.clone()),
            management_group: resource.and_then(|r| r.management_group.clone()),
            resource_type: resource.map(|r| r.resource_type.clone()),
            resource_name: resource.map(|r| r.name.clone()),
            classification_note: c.note,
            tier: None,
            app_roles: None,
            groups: None,
            directory_roles: None,
            delegated_grants: None,
            azure_role_assignments: None,
            unknown: Vec::new(),
            finding_count: 0,
            highest_severity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn explicit_true_is_user_assigned() {
        let c = classify(&names(&[
            "isExplicit=True",
            "/subscriptions/1b877039-42c8-467f-a80b-950b770fa4ff/resourcegroups/kjh-microsoft-learn/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kjh-mi",
        ]));
        assert_eq!(c.kind, IdentityKind::UserAssigned);
        let r = c.resource.expect("resource");
        assert_eq!(
            r.subscription_id.as_deref(),
            Some("1b877039-42c8-467f-a80b-950b770fa4ff")
        );
        assert_eq!(r.resource_group.as_deref(), Some("kjh-microsoft-learn"));
        assert_eq!(
            r.resource_type,
            "Microsoft.ManagedIdentity/userAssignedIdentities"
        );
        assert_eq!(r.name, "kjh-mi");
        assert!(c.note.is_none());
    }

    #[test]
    fn position_does_not_matter_and_case_is_ignored() {
        let c = classify(&names(&[
            "/SUBSCRIPTIONS/s/RESOURCEGROUPS/rg/providers/Microsoft.Web/sites/app",
            "ISEXPLICIT=false",
        ]));
        assert_eq!(c.kind, IdentityKind::SystemAssigned);
        assert_eq!(c.is_explicit, Some(false));
        assert_eq!(c.resource.map(|r| r.name), Some("app".to_owned()));
    }

    #[test]
    fn missing_token_is_system_assigned_unless_the_resource_is_a_uami() {
        let system = classify(&names(&[
            "/subscriptions/s/resourcegroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        ]));
        assert_eq!(system.kind, IdentityKind::SystemAssigned);
        let user = classify(&names(&[
            "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1",
        ]));
        assert_eq!(user.kind, IdentityKind::UserAssigned);
    }

    #[test]
    fn nested_and_scope_level_resources_parse() {
        let db = ArmResourceId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv/databases/db",
        )
        .expect("parses");
        assert_eq!(db.resource_type, "Microsoft.Sql/servers/databases");
        assert_eq!(db.name, "db");
        let policy = ArmResourceId::parse(
            "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/policyAssignments/deploy-diag",
        )
        .expect("parses");
        assert_eq!(policy.management_group.as_deref(), Some("mg1"));
        assert_eq!(policy.subscription_id, None);
        assert_eq!(
            policy.resource_type,
            "Microsoft.Authorization/policyAssignments"
        );
        let sub_policy = ArmResourceId::parse(
            "/subscriptions/s/providers/Microsoft.Authorization/policyAssignments/p",
        )
        .expect("parses");
        assert_eq!(sub_policy.subscription_id.as_deref(), Some("s"));
        assert_eq!(sub_policy.resource_group, None);
        assert!(ArmResourceId::parse("isExplicit=True").is_none());
        assert!(ArmResourceId::parse("/subscriptions/s/resourcegroups/rg").is_none());
        assert!(ArmResourceId::parse("/subscriptions/s/providers/Microsoft.Web/sites").is_none());
    }
}
