//! Managed-identity semantics: system- versus user-assigned, and the ARM resource behind each.
//!
//! Graph encodes both in `alternativeNames`: an `isExplicit=True|False` token and the ARM
//! resource id. The classification reads the token and the shape of the id, never the array
//! position (`../shared/reference/microsoft-graph.md` §1.1). Pure functions only.

use super::ArmResourceId;
use crate::model::IdentityKind;

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
