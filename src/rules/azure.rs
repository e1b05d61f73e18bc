//! Rules on the Azure plane: Azure RBAC held by managed identities, control over more privileged
//! user-assigned identities, orphaned identities and role assignments, and the federated
//! credentials of user-assigned identities. They read `TenantView::azure`; when the Azure plane
//! is unknown they find nothing (unknown is never treated as empty).

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use super::{Finding, Rule, Scope, az_rest};
use crate::classification::Tier;
use crate::config::{
    AWS_COGNITO_ISSUER, DEFAULT_FIC_ALLOWED_ISSUERS, FIC_ALLOWED_ISSUERS_VAR,
    GITHUB_ACTIONS_ISSUER, GOOGLE_ISSUER,
};
use crate::model::Severity;
use crate::model::SubjectKind;
use crate::resolve::ArmResourceId;
use crate::resolve::TenantView;
use crate::resolve::azure::{
    AzureIndex, FEDERATED_CREDENTIAL_WRITE, IDENTITY_ASSIGN, MANAGED_IDENTITY_CONTRIBUTOR,
    MANAGED_IDENTITY_OPERATOR, OWNER, RBAC_ADMINISTRATOR, ROLE_ASSIGNMENT_WRITE, ResolvedAzureRole,
    ScopeKind, USER_ACCESS_ADMINISTRATOR, management_group_of, normalise_issuer,
};
use crate::resolve::paths::ACTORS_LISTED;
use crate::resolve::principals::PrincipalView;
use crate::snapshot::azure::{FederatedCredential, UserAssignedIdentityRow};

/// Roles that can grant any role to anyone at their scope.
const ACCESS_ADMIN_ROLES: [&str; 3] = [OWNER, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR];

/// Host suffixes anyone with a storage account or web app can publish an OIDC issuer on.
const SELF_HOSTED_ISSUER_SUFFIXES: [(&str, &str); 3] = [
    (".blob.core.windows.net", "Azure Blob Storage"),
    (".web.core.windows.net", "Azure Storage static website"),
    (".azurewebsites.net", "Azure App Service"),
];

fn quote(value: &str) -> String {
    crate::model::shell_quote(value)
}

/// The view of a principal, or a minimal stand-in when Graph did not return it.
fn identities_by_id<'v>(view: &'v TenantView<'_>) -> HashMap<String, &'v PrincipalView> {
    view.identities
        .iter()
        .map(|v| (v.id.to_ascii_lowercase(), v))
        .collect()
}

/// "management group mg-contoso-root", "subscription sub-platform (e8a2…)", …
pub(super) fn describe_scope(index: &AzureIndex<'_>, scope: &str) -> String {
    match ScopeKind::of(scope) {
        ScopeKind::Root => "the root scope (/)".to_owned(),
        ScopeKind::ManagementGroup => {
            let name = management_group_of(scope).unwrap_or(scope);
            if index.is_tenant_root_group(name) {
                format!("the tenant root management group ({name})")
            } else {
                format!("management group {name}")
            }
        }
        ScopeKind::Subscription => {
            let id = scope
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(scope);
            match index.subscription_name(id) {
                Some(name) => format!("subscription {name} ({id})"),
                None => format!("subscription {id}"),
            }
        }
        ScopeKind::ResourceGroup => format!(
            "resource group {}",
            scope
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(scope)
        ),
        ScopeKind::Resource => format!("resource {scope}"),
    }
}

pub(super) fn via_text(role: &ResolvedAzureRole) -> String {
    role.via_group
        .as_ref()
        .map(|g| {
            format!(
                " through group {}",
                g.display_name.as_deref().unwrap_or(&g.id)
            )
        })
        .unwrap_or_default()
}

/// The exact call that removes a role, direct or through a group.
pub(super) fn remove_azure_role(
    view: &TenantView<'_>,
    subject: &PrincipalView,
    role: &ResolvedAzureRole,
) -> String {
    let delete = format!(
        "az role assignment delete --ids {}",
        quote(&role.assignment_id)
    );
    match &role.via_group {
        None => format!("Delete the assignment: {delete}"),
        Some(group) => format!(
            "Remove the identity from the group {} (or from the nested group that makes it a member): {}; or, if no member needs it, delete the group's assignment: {delete}",
            group.display_name.as_deref().unwrap_or(&group.id),
            az_rest(
                "DELETE",
                view.graph(),
                &format!("/groups/{}/members/{}/$ref", group.id, subject.id)
            )
        ),
    }
}

pub(super) fn role_evidence(index: &AzureIndex<'_>, role: &ResolvedAzureRole) -> serde_json::Value {
    let mut evidence = serde_json::to_value(role).unwrap_or_default();
    evidence["scopeDescription"] = json!(describe_scope(index, &role.scope));
    evidence
}

/// MI-AZ-001.
pub(super) const PRIVILEGED_RBAC_AT_HIGH_SCOPE: Rule = Rule {
    id: "MI-AZ-001",
    title: "Managed identity can grant Azure access at management-group, root or subscription scope",
    applies_to: "managed identities with Azure RBAC role assignments (direct or through a group)",
    severity: "critical for Owner, User Access Administrator or Role Based Access Control Administrator at management-group or root (/) scope; high for the same roles at subscription scope",
    severities: &[Severity::Critical, Severity::High],
    rationale: "These three roles can create role assignments, so the identity can give itself (or anyone) Owner over every subscription below the scope. Whoever can run code on the identity's resource, or attach the identity elsewhere, inherits that power, with no MFA or Conditional Access in the way. Management-group scope reaches every current and future subscription underneath.",
    remediation: "Delete the assignment (az role assignment delete --ids <assignment id>) or remove the identity from the group that holds it, then grant the narrowest role the workload needs at the resource group it works in. If it must delegate access, use Role Based Access Control Administrator with a condition that limits the roles and principals it can assign.",
    references: &[
        "Azure built-in roles, privileged administrator roles (learn.microsoft.com/azure/role-based-access-control/built-in-roles)",
        "EntraOps AzureHighPrivilegedRoles / AzureHighPrivilegedScopes (Control Plane)",
        "Delegate Azure role assignment management with conditions (learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-overview)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: privileged_rbac_at_high_scope,
};

fn privileged_rbac_at_high_scope(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &PRIVILEGED_RBAC_AT_HIGH_SCOPE;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in &view.identities {
        for role in subject.azure_roles.iter().flatten() {
            if !ACCESS_ADMIN_ROLES.contains(&role.role_guid().as_str()) {
                continue;
            }
            let severity = match role.scope_kind {
                ScopeKind::Root | ScopeKind::ManagementGroup => Severity::Critical,
                ScopeKind::Subscription => Severity::High,
                ScopeKind::ResourceGroup | ScopeKind::Resource => continue,
            };
            let mut evidence = role_evidence(index, role);
            evidence["constrainedByCondition"] = json!(role.condition.is_some());
            out.push(rule.finding(
                severity,
                subject,
                &format!(
                    "{}:{}",
                    role.assignment_id,
                    role.via_group.as_ref().map(|g| g.id.as_str()).unwrap_or("direct")
                ),
                format!(
                    "{} holds {} over {}{}",
                    subject.display_name,
                    role.role_name,
                    describe_scope(index, &role.scope),
                    via_text(role)
                ),
                evidence,
                format!(
                    "{}. Then grant only the role the workload needs at the resource group it works in.",
                    remove_azure_role(view, subject, role)
                ),
            ));
        }
    }
    out
}

/// MI-AZ-002.
pub(super) const CUSTOM_ROLE_GRANTS_ACCESS: Rule = Rule {
    id: "MI-AZ-002",
    title: "Managed identity holds a custom Azure role that can grant access",
    applies_to: "managed identities with custom Azure role assignments (direct or through a group)",
    severity: "high",
    severities: &[Severity::High],
    rationale: "A custom role whose actions allow Microsoft.Authorization/roleAssignments/write (directly, or through */write or *) lets its holder assign any role, Owner included, at the role's scope: it is an access administrator under another name, and reviews that look only for Owner and User Access Administrator miss it.",
    remediation: "Remove Microsoft.Authorization/roleAssignments/write and the wildcards that imply it (*, */write, Microsoft.Authorization/*) from the role's actions, or add them to notActions (az role definition update --role-definition <file>), or delete the assignment (az role assignment delete --ids <assignment id>).",
    references: &[
        "AzADServicePrincipalInsights: \"can create role assignments\"",
        "Azure custom roles (learn.microsoft.com/azure/role-based-access-control/custom-roles)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: custom_role_grants_access,
};

fn custom_role_grants_access(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &CUSTOM_ROLE_GRANTS_ACCESS;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in &view.identities {
        for role in subject.azure_roles.iter().flatten() {
            let Some(definition) = index.definition(&role.role_definition_id) else {
                continue;
            };
            if !definition.is_custom() || !definition.allows(ROLE_ASSIGNMENT_WRITE) {
                continue;
            }
            let mut evidence = role_evidence(index, role);
            evidence["grantingActions"] =
                json!(definition.granting_patterns(ROLE_ASSIGNMENT_WRITE));
            evidence["notActions"] = json!(
                definition
                    .permissions
                    .iter()
                    .flat_map(|p| p.not_actions.iter())
                    .collect::<Vec<_>>()
            );
            evidence["assignableScopes"] = json!(definition.assignable_scopes);
            out.push(rule.finding(
                Severity::High,
                subject,
                &format!(
                    "{}:{}",
                    role.assignment_id,
                    role.via_group.as_ref().map(|g| g.id.as_str()).unwrap_or("direct")
                ),
                format!(
                    "{} holds the custom role {} over {}{}, which can create role assignments",
                    subject.display_name,
                    role.role_name,
                    describe_scope(index, &role.scope),
                    via_text(role)
                ),
                evidence,
                format!(
                    "Take {ROLE_ASSIGNMENT_WRITE} out of the role {} ({}): remove {} from its actions or add {ROLE_ASSIGNMENT_WRITE} to its notActions, then az role definition update --role-definition <updated definition file>. If the identity needs none of it: {}.",
                    role.role_name,
                    definition.id,
                    definition.granting_patterns(ROLE_ASSIGNMENT_WRITE).join(", "),
                    remove_azure_role(view, subject, role)
                ),
            ));
        }
    }
    out
}

/// MI-AZ-003.
pub(super) const CONTROL_OVER_PRIVILEGED_IDENTITY: Rule = Rule {
    id: "MI-AZ-003",
    title: "Managed identity can take over a more privileged user-assigned identity",
    applies_to: "managed identities holding Managed Identity Operator, Managed Identity Contributor, or any role with federated-credential write or identity assign rights, over a scope that holds a user-assigned identity",
    severity: "high; medium when the control is latent (assign/action alone, and the holder has write on no compute resource to attach the identity to)",
    severities: &[Severity::High, Severity::Medium],
    rationale: "Federated-credential write lets the holder add a trust to an issuer it controls and mint tokens as the target identity; assign/action (Managed Identity Operator) lets it attach the identity to compute it controls and use its token. Either way the holder gets every right of the target. When the target is more privileged than the holder (by its Graph, Entra and Azure roles, not counting this control), that is privilege escalation.",
    remediation: "Delete the controlling assignment (az role assignment delete --ids <assignment id>), or narrow it to a resource group that holds no identity more privileged than the holder; move privileged user-assigned identities to a resource group of their own.",
    references: &[
        "AzurePrivilegedIAM attack path uami-federated-credential-backdoor",
        "emiliensocchi/azure-tiering: Managed Identity Operator and Contributor are Tier 0",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: control_over_privileged_identity,
};

fn control_over_privileged_identity(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &CONTROL_OVER_PRIVILEGED_IDENTITY;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for holder in &view.identities {
        let controlling: Vec<&ResolvedAzureRole> = holder
            .azure_roles
            .iter()
            .flatten()
            .filter(|r| index.controls_identities(&r.role_definition_id))
            .collect();
        if controlling.is_empty() {
            continue;
        }
        let controlling_ids: BTreeSet<&str> = controlling
            .iter()
            .map(|r| r.assignment_id.as_str())
            .collect();
        // The holder's tier without the control itself.
        let holder_tier = holder
            .app_roles
            .iter()
            .flatten()
            .map(|r| r.tier)
            .chain(holder.directory_roles.iter().flatten().map(|r| r.tier))
            .chain(
                holder
                    .azure_roles
                    .iter()
                    .flatten()
                    .filter(|r| !controlling_ids.contains(r.assignment_id.as_str()))
                    .map(|r| r.tier),
            )
            .max();
        let has_compute_write = view.paths().has_compute_write(&holder.id)
            || holder
                .groups
                .iter()
                .flatten()
                .any(|g| view.paths().has_compute_write(&g.id));
        for role in controlling {
            let definition = index.definition(&role.role_definition_id);
            let guid = role.role_guid();
            let can_add_credential = guid == MANAGED_IDENTITY_CONTRIBUTOR
                || definition.is_some_and(|d| d.allows(FEDERATED_CREDENTIAL_WRITE))
                || (definition.is_none() && guid != MANAGED_IDENTITY_OPERATOR);
            let can_assign = guid == MANAGED_IDENTITY_OPERATOR
                || definition.is_some_and(|d| d.allows(IDENTITY_ASSIGN))
                || (definition.is_none() && guid != MANAGED_IDENTITY_CONTRIBUTOR);
            // The user-assigned identities under the scope (from the scope index) that
            // outrank the holder. The index lists them most privileged first (then by name
            // and resource id), so the first one at or below the holder's tier ends the list.
            let mut targets: Vec<(Option<Tier>, &str, &UserAssignedIdentityRow)> = Vec::new();
            for uami in view.paths().user_assigned_under(&role.scope) {
                let Some(target_id) = uami.principal_id.as_deref() else {
                    continue;
                };
                let Some(target_tier) = view.tier_of(target_id) else {
                    continue;
                };
                if target_tier <= holder_tier {
                    break;
                }
                if target_id.eq_ignore_ascii_case(&holder.id) {
                    continue;
                }
                let Some(node) = view
                    .paths()
                    .subject(target_id)
                    .filter(|n| n.kind != SubjectKind::ServicePrincipal)
                else {
                    continue;
                };
                targets.push((target_tier, node.name.as_str(), uami));
            }
            if targets.is_empty() {
                continue;
            }
            let count = targets.len();
            let how = match (can_add_credential, can_assign) {
                (true, true) => "add a federated credential to it or attach it to a resource",
                (true, false) => "add a federated credential to it",
                _ => "attach it to a resource it controls",
            };
            // assign/action is used by attaching the identity to compute the holder can
            // write; without such write anywhere, the control is latent.
            let latent = !can_add_credential && !has_compute_write;
            let (top_tier, top_name, _) = targets[0];
            let whom = if count == 1 {
                format!(
                    "the more privileged {top_name} ({})",
                    top_tier.map(Tier::as_str).unwrap_or("no tier")
                )
            } else {
                let names: Vec<String> = targets
                    .iter()
                    .take(3)
                    .map(|(t, n, _)| format!("{n} ({})", t.map(Tier::as_str).unwrap_or("no tier")))
                    .collect();
                format!(
                    "{count} more privileged identities ({}{})",
                    names.join(", "),
                    if count > names.len() {
                        format!(" and {} more", count - names.len())
                    } else {
                        String::new()
                    }
                )
            };
            let listed: Vec<serde_json::Value> = targets
                .iter()
                .take(ACTORS_LISTED)
                .map(|(tier, name, uami)| {
                    json!({
                        "id": uami.principal_id,
                        "name": name,
                        "identityResourceId": uami.id,
                        "clientId": uami.client_id,
                        "tier": tier,
                    })
                })
                .collect();
            let keep_apart = if count == 1 {
                format!("keep {top_name} in a resource group of its own")
            } else {
                "keep each of them in a resource group of its own".to_owned()
            };
            out.push(rule.finding(
                if latent {
                    Severity::Medium
                } else {
                    Severity::High
                },
                holder,
                &role.assignment_id,
                format!(
                    "{} {} {whom} through {} over {}{}{}",
                    holder.display_name,
                    if latent { "could take over" } else { "can take over" },
                    role.role_name,
                    describe_scope(index, &role.scope),
                    via_text(role),
                    if latent {
                        " (latent: it can write no compute resource to attach it to)"
                    } else {
                        ""
                    }
                ),
                json!({
                    "holder": {
                        "id": holder.id,
                        "name": holder.display_name,
                        "tierWithoutThisControl": holder_tier,
                    },
                    "targetCount": count,
                    "targetsListed": ACTORS_LISTED,
                    "targets": listed,
                    "role": role_evidence(index, role),
                    "canAddFederatedCredential": can_add_credential,
                    "canAssignIdentity": can_assign,
                    "holderHasComputeWrite": has_compute_write,
                    "latent": latent,
                    "how": how,
                }),
                format!(
                    "{} (it lets {} {how}). If the workload needs the role, grant it on a resource group that holds no identity more privileged than {}, and {keep_apart}.",
                    remove_azure_role(view, holder, role),
                    holder.display_name,
                    holder.display_name,
                ),
            ));
        }
    }
    out
}

/// MI-ORPH-001.
pub(super) const UNUSED_USER_ASSIGNED_IDENTITY: Rule = Rule {
    id: "MI-ORPH-001",
    title: "User-assigned identity is attached to no resource",
    applies_to: "user-assigned identities (Azure Resource Graph) without federated credentials",
    severity: "low when it holds no privilege (or only UserAccess), medium with ManagementPlane privileges, high with ControlPlane privileges",
    severities: &[Severity::High, Severity::Medium, Severity::Low],
    rationale: "A user-assigned identity outlives the resources that used it: it is not deleted with them. An identity attached to nothing and used by no federated credential is an orphan whose permissions nobody reviews, and anyone who can attach it (Managed Identity Operator) or add a credential to it inherits them.",
    remediation: "Confirm nothing uses it (sign-in logs of the service principal), delete its Azure role assignments (az role assignment delete --ids …) and app role assignments, then delete the identity: az identity delete --ids <identity resource id>.",
    references: &[
        "Securing managed identities in Microsoft Entra ID: user-assigned identities are not deleted automatically",
        "EntraOps Get-EntraOpsManagedIdentityAssignments (Resource Graph join on identity.userAssignedIdentities)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: unused_user_assigned_identity,
};

fn unused_user_assigned_identity(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &UNUSED_USER_ASSIGNED_IDENTITY;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let by_id = identities_by_id(view);
    let mut out = Vec::new();
    for uami in &index.snapshot.user_assigned_identities {
        if index.is_attached(&uami.id) {
            continue;
        }
        // Used through federation, or unknown: not an orphan we can prove.
        let credentials = match index
            .federated_credentials(&uami.id)
            .map(|r| (r, r.known()))
        {
            Some((result, Some([]))) => result,
            _ => continue,
        };
        let Some(subject) = uami_subject(view, &by_id, uami) else {
            continue;
        };
        let tier = subject.tier();
        let severity = match tier {
            Some(Tier::ControlPlane) => Severity::High,
            Some(Tier::ManagementPlane) => Severity::Medium,
            _ => Severity::Low,
        };
        let azure_assignments: Vec<&str> = subject
            .azure_roles
            .iter()
            .flatten()
            .filter(|r| r.via_group.is_none())
            .map(|r| r.assignment_id.as_str())
            .collect();
        let mut steps = Vec::new();
        if !azure_assignments.is_empty() {
            steps.push(format!(
                "delete its Azure role assignments: az role assignment delete --ids {}",
                azure_assignments
                    .iter()
                    .map(|a| quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        for app_role in subject.app_roles.iter().flatten() {
            steps.push(format!(
                "remove {}: {}",
                app_role
                    .permission
                    .as_deref()
                    .unwrap_or(&app_role.app_role_id),
                az_rest(
                    "DELETE",
                    view.graph(),
                    &format!(
                        "/servicePrincipals/{}/appRoleAssignments/{}",
                        subject.id, app_role.assignment_id
                    )
                )
            ));
        }
        steps.push(format!(
            "delete the identity: az identity delete --ids {}",
            quote(&uami.id)
        ));
        out.push(rule.finding(
            severity,
            &subject,
            &uami.id,
            format!(
                "{} is attached to no resource{}",
                subject.display_name,
                match tier {
                    Some(Tier::ControlPlane | Tier::ManagementPlane) => " and still holds privileges",
                    _ => "",
                }
            ),
            json!({
                "identityResourceId": uami.id,
                "principalId": uami.principal_id,
                "clientId": uami.client_id,
                "subscriptionId": uami.subscription_id,
                "resourceGroup": uami.resource_group,
                "location": uami.location,
                "tags": uami.tags,
                "attachedResources": [],
                "federatedCredentials": serde_json::to_value(credentials).unwrap_or_default(),
                "tier": tier,
                "appRoles": subject.app_roles.iter().flatten().filter_map(|r| r.permission.clone()).collect::<Vec<_>>(),
                "directoryRoles": subject.directory_roles.iter().flatten().map(|r| r.role_name.clone()).collect::<Vec<_>>(),
                "azureRoles": subject.azure_roles.iter().flatten().map(|r| json!({"role": r.role_name, "scope": r.scope})).collect::<Vec<_>>(),
            }),
            format!(
                "Confirm nothing uses it any more (its service principal's sign-in logs), then {}.",
                steps.join("; ")
            ),
        ));
    }
    out
}

/// The view of a user-assigned identity's service principal when it is in this chunk, or a
/// stand-in in the tenant pass when Graph did not return it; `None` when another chunk holds it
/// or the ARM row carries no usable principal id to attribute findings to.
fn uami_subject(
    view: &TenantView<'_>,
    by_id: &HashMap<String, &PrincipalView>,
    uami: &UserAssignedIdentityRow,
) -> Option<PrincipalView> {
    let principal = uami
        .principal_id
        .as_deref()
        .filter(|p| uuid::Uuid::parse_str(p).is_ok())?;
    match by_id.get(&principal.to_ascii_lowercase()) {
        Some(found) => Some((*found).clone()),
        None if view.is_tenant_pass() && view.tier_of(principal).is_none() => Some(
            PrincipalView::known_only_by_id(principal, &uami.name, SubjectKind::UserAssigned),
        ),
        None => None,
    }
}

/// MI-ORPH-002.
pub(super) const STALE_MANAGED_IDENTITY: Rule = Rule {
    id: "MI-ORPH-002",
    title: "Managed identity's Azure resource no longer exists",
    applies_to: "managed identities whose resource is in a subscription the scanner can read (management-group and policy-assignment identities excluded)",
    severity: "medium; high when the identity still holds ControlPlane privileges",
    severities: &[Severity::High, Severity::Medium],
    rationale: "A managed identity's service principal should disappear with its resource. One whose resource is gone (or now carries a different identity) is a relic: nothing legitimate authenticates as it, yet its role assignments and app roles stay valid and keep cluttering reviews.",
    remediation: "Remove what the service principal still holds: its Azure role assignments (az role assignment delete --ids …, or find them with az role assignment list --assignee <object id> --all) and its app roles (DELETE /servicePrincipals/{id}/appRoleAssignments/{assignmentId}); if the service principal itself remains, open a support case: managed-identity service principals cannot be deleted directly.",
    references: &[
        "AzADServicePrincipalInsights \"relict\" managed identities",
        "Managed identity best practice recommendations (learn.microsoft.com/entra/identity/managed-identities-azure-resources/managed-identity-best-practice-recommendations)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: stale_managed_identity,
};

fn stale_managed_identity(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &STALE_MANAGED_IDENTITY;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in &view.identities {
        let Some(sp) = view.managed_identity(&subject.id) else {
            continue;
        };
        let Some(resource) =
            crate::resolve::identity_kind::classify(&sp.alternative_names).resource
        else {
            continue;
        };
        // Only resources Resource Graph's `resources` table lists, in readable subscriptions.
        let Some(subscription) = resource.subscription_id.as_deref() else {
            continue;
        };
        let namespace = resource.resource_type.split('/').next().unwrap_or_default();
        if namespace.eq_ignore_ascii_case("Microsoft.Authorization")
            || namespace.eq_ignore_ascii_case("Microsoft.Management")
            || !index.subscription_readable(subscription)
        {
            continue;
        }
        let (reason, current) = if resource.is_user_assigned_identity() {
            match index.user_assigned_identity(&resource.id) {
                None => ("resourceNotFound", None),
                Some(u) => match u.principal_id.as_deref().filter(|p| !p.is_empty()) {
                    Some(p) if !p.eq_ignore_ascii_case(&subject.id) => {
                        ("identityReplaced", Some(p))
                    }
                    _ => continue,
                },
            }
        } else {
            match index.resource(&resource.id) {
                None => ("resourceNotFound", None),
                Some(r) => match r.principal_id.as_deref().filter(|p| !p.is_empty()) {
                    Some(p) if !p.eq_ignore_ascii_case(&subject.id) => {
                        ("identityReplaced", Some(p))
                    }
                    _ => continue,
                },
            }
        };
        let tier = subject.tier();
        let severity = if tier == Some(Tier::ControlPlane) {
            Severity::High
        } else {
            Severity::Medium
        };
        let direct: Vec<String> = subject
            .azure_roles
            .iter()
            .flatten()
            .filter(|r| r.via_group.is_none())
            .map(|r| quote(&r.assignment_id))
            .collect();
        let mut calls = Vec::new();
        if !direct.is_empty() {
            calls.push(format!(
                "az role assignment delete --ids {}",
                direct.join(" ")
            ));
        }
        calls.push(format!(
            "check for assignments in subscriptions the scanner cannot read: az role assignment list --assignee {} --all",
            subject.id
        ));
        calls.extend(subject.app_roles.iter().flatten().map(|r| {
            az_rest(
                "DELETE",
                view.graph(),
                &format!(
                    "/servicePrincipals/{}/appRoleAssignments/{}",
                    subject.id, r.assignment_id
                ),
            )
        }));
        out.push(rule.finding(
            severity,
            subject,
            &resource.id,
            match reason {
                "resourceNotFound" => format!(
                    "{}'s resource {} no longer exists",
                    subject.display_name, resource.name
                ),
                _ => format!(
                    "{}'s resource {} now uses a different identity",
                    subject.display_name, resource.name
                ),
            },
            json!({
                "resourceId": resource.id,
                "resourceType": resource.resource_type,
                "subscriptionId": resource.subscription_id,
                "subscriptionName": index.subscription_name(subscription),
                "reason": reason,
                "currentPrincipalId": current,
                "accountEnabled": subject.account_enabled,
                "tier": tier,
                "appRoles": subject.app_roles.iter().flatten().filter_map(|r| r.permission.clone()).collect::<Vec<_>>(),
                "azureRoles": subject.azure_roles.iter().flatten().map(|r| json!({"role": r.role_name, "scope": r.scope, "assignmentId": r.assignment_id})).collect::<Vec<_>>(),
            }),
            format!(
                "Remove what the leftover service principal still holds: {}. If it remains after that, open a support case (managed-identity service principals cannot be deleted directly).",
                calls.join("; ")
            ),
        ));
    }
    out
}

/// MI-ORPH-003.
pub(super) const ORPHANED_ROLE_ASSIGNMENT: Rule = Rule {
    id: "MI-ORPH-003",
    title: "Azure role assignment belongs to a principal that no longer exists",
    applies_to: "Azure role assignments to service principals (or to principals of unknown type) not found in Entra",
    severity: "medium",
    severities: &[Severity::Medium],
    rationale: "Azure does not remove role assignments when their principal is deleted: they show as \"Identity not found\". They grant nothing today, but they hide real assignments in reviews, count against the subscription's assignment limit, and are exactly what an attacker restoring a soft-deleted principal would reuse.",
    remediation: "Delete the assignment: az role assignment delete --ids <assignment id>.",
    references: &[
        "Remove Azure role assignments: \"Identity not found\" (learn.microsoft.com/azure/role-based-access-control/troubleshoot-limits#remove-role-assignments-for-deleted-principals)",
    ],
    scope: Scope::Tenant,
    retired: None,
    check: orphaned_role_assignment,
};

fn orphaned_role_assignment(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &ORPHANED_ROLE_ASSIGNMENT;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    if index.snapshot.principal_lookup.known().is_none() {
        return Vec::new();
    }
    let classifier = crate::classification::Classifier::embedded();
    // A principal of another tenant (Lighthouse) is foreign, never deleted.
    let deleted = index.deleted_principals();
    if deleted.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for assignment in &index.snapshot.role_assignments {
        if !deleted.contains(&assignment.principal_id.to_ascii_lowercase()) {
            continue;
        }
        let subject = view.subject(&assignment.principal_id).unwrap_or_else(|| {
            PrincipalView::known_only_by_id(
                &assignment.principal_id,
                &format!("deleted principal {}", assignment.principal_id),
                SubjectKind::ServicePrincipal,
            )
        });
        let role = index.resolve(classifier, assignment, None);
        let mut evidence = role_evidence(index, &role);
        evidence["principalId"] = json!(assignment.principal_id);
        evidence["principalType"] = json!(assignment.principal_type);
        evidence["createdOn"] = json!(assignment.created_on);
        evidence["foundInEntra"] = json!(false);
        out.push(rule.finding(
            Severity::Medium,
            &subject,
            &assignment.id,
            format!(
                "{} over {} is assigned to {}, which no longer exists in Entra",
                role.role_name,
                describe_scope(index, &assignment.scope),
                assignment.principal_id
            ),
            evidence,
            format!(
                "Delete the assignment: az role assignment delete --ids {}",
                quote(&assignment.id)
            ),
        ));
    }
    out
}

/// Where a federated credential's issuer is hosted, when anyone could host one there.
fn self_hosted(issuer: &str) -> Option<(String, &'static str)> {
    let url = url::Url::parse(issuer.trim()).ok()?;
    match url.host()? {
        url::Host::Ipv4(ip) => Some((ip.to_string(), "a bare IP address")),
        url::Host::Ipv6(ip) => Some((ip.to_string(), "a bare IP address")),
        url::Host::Domain(domain) => {
            let host = domain.to_ascii_lowercase();
            SELF_HOSTED_ISSUER_SUFFIXES
                .iter()
                .find(|(suffix, _)| host.ends_with(suffix))
                .map(|(_, kind)| (host.clone(), *kind))
        }
    }
}

/// The issuers the tenant trusts: the configured list (or its defaults) plus AKS OIDC issuers.
fn allowlist(view: &TenantView<'_>, index: &AzureIndex<'_>) -> BTreeSet<String> {
    let configured = &view.snapshot.settings.fic_allowed_issuers;
    let mut out: BTreeSet<String> = if configured.is_empty() {
        DEFAULT_FIC_ALLOWED_ISSUERS
            .iter()
            .map(|i| normalise_issuer(i))
            .collect()
    } else {
        configured.iter().map(|i| normalise_issuer(i)).collect()
    };
    out.extend(
        index
            .aks_clusters()
            .iter()
            .map(|c| normalise_issuer(c.issuer)),
    );
    out
}

/// Hosts of well-known SaaS OIDC issuers (CI/CD and infrastructure services): run by a vendor,
/// not by the organisation, and shared by all its customers, so the subject alone tells one
/// customer's workload from another's. Not in Azure Policy's issuer types.
const SAAS_ISSUER_HOSTS: [(&str, &str); 4] = [
    ("app.terraform.io", "terraformCloud"),
    ("gitlab.com", "gitlab"),
    ("oidc.circleci.com", "circleci"),
    ("vstoken.dev.azure.com", "azureDevOps"),
];

/// The host suffix of AKS clusters' OIDC issuers
/// (`https://{region}.oic.prod-aks.azure.com/{tenant id}/{key}/`).
const AKS_ISSUER_SUFFIX: &str = ".oic.prod-aks.azure.com";

/// The tenant segment of an AKS OIDC issuer, when the issuer is one.
fn aks_issuer_tenant(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    if !host.ends_with(AKS_ISSUER_SUFFIX) {
        return None;
    }
    url.path_segments()?
        .next()
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
}

fn issuer_kind(index: &AzureIndex<'_>, issuer: &str) -> &'static str {
    let normalised = normalise_issuer(issuer);
    let host = url::Url::parse(issuer.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if normalised == normalise_issuer(GITHUB_ACTIONS_ISSUER) {
        "githubActions"
    } else if normalised == normalise_issuer(AWS_COGNITO_ISSUER) {
        "aws"
    } else if normalised == normalise_issuer(GOOGLE_ISSUER) {
        "gcp"
    } else if index
        .aks_clusters()
        .iter()
        .any(|c| normalise_issuer(c.issuer) == normalised)
    {
        "aksCluster"
    } else if let Some(tenant) = aks_issuer_tenant(issuer) {
        if tenant.eq_ignore_ascii_case(index.tenant_id()) {
            "aksCluster"
        } else {
            "aksOtherTenant"
        }
    } else if let Some((_, kind)) = SAAS_ISSUER_HOSTS.iter().find(|(h, _)| host == *h) {
        kind
    } else if self_hosted(issuer).is_some() {
        "selfHosted"
    } else {
        "other"
    }
}

/// True when the issuer is allowed: on the allowlist, or an AKS cluster of this tenant.
fn is_allowed(index: &AzureIndex<'_>, allowed: &BTreeSet<String>, issuer: &str) -> bool {
    allowed.contains(&normalise_issuer(issuer)) || issuer_kind(index, issuer) == "aksCluster"
}

/// True for a well-known SaaS issuer ([`SAAS_ISSUER_HOSTS`]).
fn is_saas_issuer(index: &AzureIndex<'_>, issuer: &str) -> bool {
    let kind = issuer_kind(index, issuer);
    SAAS_ISSUER_HOSTS.iter().any(|(_, k)| *k == kind)
}

/// One federated credential with its identity.
struct Trust<'a> {
    uami: &'a UserAssignedIdentityRow,
    identity_id: &'a str,
    credential: &'a FederatedCredential,
    subject: PrincipalView,
}

impl Trust<'_> {
    fn identity_name(&self) -> String {
        self.uami.name.clone()
    }

    fn delete_call(&self) -> String {
        let parsed = ArmResourceId::parse(self.identity_id);
        format!(
            "az identity federated-credential delete --name {} --identity-name {} --resource-group {} --subscription {} --yes",
            quote(&self.credential.name),
            quote(&self.identity_name()),
            quote(
                parsed
                    .as_ref()
                    .and_then(|r| r.resource_group.as_deref())
                    .unwrap_or("<resource group>")
            ),
            parsed
                .as_ref()
                .and_then(|r| r.subscription_id.clone())
                .unwrap_or_else(|| "<subscription>".to_owned())
        )
    }

    fn evidence(&self, index: &AzureIndex<'_>, allowed: &BTreeSet<String>) -> serde_json::Value {
        json!({
            "identityResourceId": self.identity_id,
            "identityName": self.identity_name(),
            "credentialId": self.credential.id,
            "credentialName": self.credential.name,
            "issuer": self.credential.issuer,
            "issuerKind": issuer_kind(index, &self.credential.issuer),
            "subject": self.credential.subject,
            "audiences": self.credential.audiences,
            "claimsMatchingExpression": self.credential.claims_matching_expression,
            "issuerAllowlisted": is_allowed(index, allowed, &self.credential.issuer),
            "identityTier": self.subject.tier(),
        })
    }
}

fn trusts<'a>(view: &TenantView<'_>, index: &AzureIndex<'a>) -> Vec<Trust<'a>> {
    let by_id = identities_by_id(view);
    let mut out = Vec::new();
    for entry in &index.snapshot.federated_credentials {
        let Some(credentials) = entry.result.known() else {
            continue;
        };
        // Findings are about the identity's service principal: no principal, no subject.
        let Some(uami) = index.user_assigned_identity(&entry.identity_id) else {
            continue;
        };
        let Some(subject) = uami_subject(view, &by_id, uami) else {
            continue;
        };
        for credential in credentials {
            out.push(Trust {
                uami,
                identity_id: &entry.identity_id,
                credential,
                subject: subject.clone(),
            });
        }
    }
    out
}

/// MI-FIC-001.
pub(super) const FEDERATED_CREDENTIAL_INVENTORY: Rule = Rule {
    id: "MI-FIC-001",
    title: "User-assigned identity trusts an external issuer (federated credential)",
    applies_to: "federated identity credentials of user-assigned identities",
    severity: "info",
    severities: &[Severity::Info],
    rationale: "A federated credential lets tokens from another identity provider (GitHub Actions, Terraform Cloud, a Kubernetes cluster, …) sign in as the identity without any secret. The trust boundary moves to that issuer and to whoever controls the matching subject, so every credential belongs in the inventory with its issuer, subject and audiences.",
    remediation: "Review each credential; delete the ones no workload uses: az identity federated-credential delete --name <credential> --identity-name <identity> --resource-group <rg>.",
    references: &[
        "Workload identity federation considerations (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations)",
        "Federated Identity Credentials - List (learn.microsoft.com/rest/api/managedidentity)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: federated_credential_inventory,
};

fn federated_credential_inventory(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &FEDERATED_CREDENTIAL_INVENTORY;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let allowed = allowlist(view, index);
    trusts(view, index)
        .into_iter()
        .map(|trust| {
            rule.finding(
                Severity::Info,
                &trust.subject,
                &trust.credential.id,
                format!(
                    "{} trusts {} for subject {}",
                    trust.identity_name(),
                    trust.credential.issuer,
                    trust
                        .credential
                        .subject
                        .as_deref()
                        .unwrap_or("(claims-matching expression)")
                ),
                trust.evidence(index, &allowed),
                format!(
                    "Review the trust; if no workload uses it any more, delete it: {}",
                    trust.delete_call()
                ),
            )
        })
        .collect()
}

/// MI-FIC-002.
pub(super) const UNTRUSTED_ISSUER: Rule = Rule {
    id: "MI-FIC-002",
    title: "Federated credential trusts an issuer outside the allowlist",
    applies_to: "federated identity credentials of user-assigned identities (issuers not already flagged by MI-FIC-003)",
    severity: "critical for a ControlPlane identity trusting an unknown issuer (or another tenant's AKS cluster); high for a ControlPlane identity trusting a well-known SaaS issuer (Terraform Cloud, GitLab, CircleCI, Azure DevOps) and for any ManagementPlane identity; medium for an identity that is not privileged",
    severities: &[Severity::Critical, Severity::High, Severity::Medium],
    rationale: "Only issuers the organisation vouches for should mint tokens for its identities. The allowlist is MI_ASSESS_FIC_ALLOWED_ISSUERS, by default the issuer types of Azure Policy's built-in initiative \"Managed Identity Federated Credentials should be of approved types from approved federation sources\" (GitHub Actions, AWS, GCP, and AKS, here the AKS clusters of this tenant). Any other issuer is an unreviewed way in; how bad depends on what the identity holds, and on whether the issuer is a known SaaS vendor or an arbitrary domain.",
    remediation: "Delete the credential (az identity federated-credential delete …), or, if the issuer is trusted, add it to MI_ASSESS_FIC_ALLOWED_ISSUERS.",
    references: &[
        "Azure Policy initiative 5e4ee281-95a3-442a-bb2a-5ef68cf5181a and policy 2571b7c3-3056-4a61-b00a-9bc5232234f5: Managed Identity Federated Credentials should be from allowed issuer types",
        "Workload identity federation: supported scenarios (learn.microsoft.com/entra/workload-id/workload-identity-federation)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: untrusted_issuer,
};

/// MI-FIC-002's severity: the identity's tier, and whether the issuer is a known SaaS vendor.
fn untrusted_issuer_severity(tier: Option<Tier>, saas: bool) -> Severity {
    match (tier, saas) {
        (Some(Tier::ControlPlane), false) => Severity::Critical,
        (Some(Tier::ControlPlane), true) | (Some(Tier::ManagementPlane), _) => Severity::High,
        _ => Severity::Medium,
    }
}

fn untrusted_issuer(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &UNTRUSTED_ISSUER;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let allowed = allowlist(view, index);
    trusts(view, index)
        .into_iter()
        .filter(|t| {
            !is_allowed(index, &allowed, &t.credential.issuer)
                && self_hosted(&t.credential.issuer).is_none()
        })
        .map(|trust| {
            let saas = is_saas_issuer(index, &trust.credential.issuer);
            rule.finding(
                untrusted_issuer_severity(trust.subject.tier(), saas),
                &trust.subject,
                &trust.credential.id,
                format!(
                    "{} trusts {}, which is not an allowed issuer",
                    trust.identity_name(),
                    trust.credential.issuer
                ),
                {
                    let mut e = trust.evidence(index, &allowed);
                    e["allowedIssuers"] = json!(allowed);
                    e
                },
                format!(
                    "Delete the credential: {}. If the issuer is one you trust, add it to {FIC_ALLOWED_ISSUERS_VAR} instead.",
                    trust.delete_call()
                ),
            )
        })
        .collect()
}

/// MI-FIC-003.
pub(super) const SELF_HOSTED_ISSUER: Rule = Rule {
    id: "MI-FIC-003",
    title: "Federated credential trusts an issuer hosted on Blob Storage, App Service or a bare IP",
    applies_to: "federated identity credentials of user-assigned identities",
    severity: "critical for an issuer on a storage account outside the tenant or an unclaimed name (anyone can publish keys there), or on App Service or a bare IP for a privileged identity; for a storage account inside the tenant, by the identity's tier (high for ControlPlane, medium for ManagementPlane, low otherwise), with who can write to it; high for App Service or a bare IP on an identity that is not privileged",
    severities: &[
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ],
    rationale: "An OIDC issuer is just two JSON documents and a key set. Hosted on a storage account (*.blob.core.windows.net, *.web.core.windows.net), a web app (*.azurewebsites.net) or a bare IP, whoever can write to that storage or app, or take over its name once it is deleted, can publish their own keys and mint tokens that sign in as the identity (the attacker-controlled issuer pattern, roadoidc). A Blob-hosted issuer is also the documented setup for self-managed Kubernetes clusters: when the account is inside the tenant, the risk is who can write to it, and those principals are listed; when it is not, anyone may own it.",
    remediation: "For an account inside the tenant: limit write access to the issuer's container to the cluster's operators (remove the other writers in the evidence). Otherwise delete the credential (az identity federated-credential delete …) and federate only with an issuer on a domain your identity provider controls.",
    references: &[
        "dirkjanm/roadoidc: an OIDC issuer on App Service or Blob Storage",
        "Azure AD Workload Identity: self-managed clusters publish the OIDC discovery document on Azure Blob Storage (azure.github.io/azure-workload-identity/docs/installation/self-managed-clusters/oidc-issuer.html)",
        "Workload identity federation considerations: issuer requirements",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: self_hosted_issuer,
};

/// The data action that writes a blob, and the action that reads an account's keys (which
/// write anything).
const BLOB_WRITE: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write";
const LIST_KEYS: &str = "Microsoft.Storage/storageAccounts/listKeys/action";

/// Writers of a storage account listed in MI-FIC-003's evidence, at most.
const WRITERS_LISTED: usize = 20;

/// The role assignments that can write blobs to the account (a blob-write data action, or the
/// account keys).
fn storage_writers(index: &AzureIndex<'_>, account_id: &str) -> Vec<serde_json::Value> {
    index
        .snapshot
        .role_assignments
        .iter()
        .filter(|a| index.scope_contains(&a.scope, account_id))
        .filter_map(|a| {
            let definition = index.definition(&a.role_definition_id)?;
            let data = definition.granting_data_patterns(BLOB_WRITE);
            let keys = definition.granting_patterns(LIST_KEYS);
            if data.is_empty() && keys.is_empty() {
                return None;
            }
            Some(json!({
                "principalId": a.principal_id,
                "principalType": a.principal_type,
                "role": definition.role_name,
                "scope": a.scope,
                "assignmentId": a.id,
                "grantedBy": data.into_iter().chain(keys).collect::<Vec<_>>(),
            }))
        })
        .collect()
}

fn self_hosted_issuer(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &SELF_HOSTED_ISSUER;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let allowed = allowlist(view, index);
    let accounts = index.snapshot.issuer_storage_accounts.known();
    trusts(view, index)
        .into_iter()
        .filter_map(|trust| {
            let (host, kind) = self_hosted(&trust.credential.issuer)?;
            let tier = trust.subject.tier();
            let privileged = matches!(tier, Some(Tier::ControlPlane | Tier::ManagementPlane));
            let mut evidence = trust.evidence(index, &allowed);
            evidence["issuerHost"] = json!(host);
            evidence["hostedOn"] = json!(kind);
            let account_name =
                crate::snapshot::azure::issuer_storage_account(&trust.credential.issuer);
            // An account of a subscription another tenant delegated here is not this tenant's.
            let account = account_name.as_ref().and_then(|name| {
                accounts?
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(name) && !index.is_delegated(&a.id))
            });
            let (severity, title, remediation) = match (&account_name, account) {
                (Some(_), Some(account)) => {
                    let writers = storage_writers(index, &account.id);
                    let principals: BTreeSet<String> = writers
                        .iter()
                        .filter_map(|w| w["principalId"].as_str())
                        .map(str::to_ascii_lowercase)
                        .collect();
                    evidence["storageAccount"] = json!({
                        "id": account.id,
                        "inTenant": true,
                        "writerCount": principals.len(),
                        "writers": writers.iter().take(WRITERS_LISTED).collect::<Vec<_>>(),
                    });
                    let severity = match tier {
                        Some(Tier::ControlPlane) => Severity::High,
                        Some(Tier::ManagementPlane) => Severity::Medium,
                        _ => Severity::Low,
                    };
                    (
                        severity,
                        format!(
                            "{} trusts an issuer on storage account {} in this tenant, which {} principal{} can write",
                            trust.identity_name(),
                            account.name,
                            principals.len(),
                            if principals.len() == 1 { "" } else { "s" }
                        ),
                        format!(
                            "Limit write access to the issuer's container to the cluster's operators: remove the other writers in the evidence (az role assignment delete --ids \"<assignmentId>\"). If no cluster uses the issuer any more, delete the credential: {}.",
                            trust.delete_call()
                        ),
                    )
                }
                (Some(name), None) => {
                    evidence["storageAccount"] = json!({
                        "name": name,
                        "inTenant": false,
                        "resolved": accounts.is_some(),
                    });
                    (
                        Severity::Critical,
                        format!(
                            "{} trusts an issuer on storage account {name}, which {} ({})",
                            trust.identity_name(),
                            if accounts.is_some() {
                                "is in no subscription of this tenant the scanner reads (another tenant's, or unclaimed)"
                            } else {
                                "could not be looked up"
                            },
                            trust.credential.issuer
                        ),
                        format!(
                            "Delete the credential now: {}. Then federate only with an issuer on a domain your identity provider controls.",
                            trust.delete_call()
                        ),
                    )
                }
                (None, _) => (
                    if privileged {
                        Severity::Critical
                    } else {
                        Severity::High
                    },
                    format!(
                        "{} trusts an issuer hosted on {kind} ({})",
                        trust.identity_name(),
                        trust.credential.issuer
                    ),
                    format!(
                        "Delete the credential now: {}. Then federate only with an issuer on a domain your identity provider controls.",
                        trust.delete_call()
                    ),
                ),
            };
            Some(rule.finding(
                severity,
                &trust.subject,
                &trust.credential.id,
                title,
                evidence,
                remediation,
            ))
        })
        .collect()
}

/// Why a GitHub Actions subject is broad; empty when it is not.
fn broad_github_subject(credential: &FederatedCredential) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if credential.claims_matching_expression.is_some() {
        reasons.push("uses a claims-matching expression (wildcards) instead of an exact subject");
    }
    let Some(subject) = credential.subject.as_deref() else {
        return reasons;
    };
    let lower = subject.to_ascii_lowercase();
    if lower.contains(":pull_request") {
        reasons.push("trusts pull_request workflows, which run code from forks and branches");
    }
    if lower.contains('*') {
        reasons.push("contains a wildcard");
    }
    if !lower.contains(":environment:") {
        reasons.push("names no GitHub environment, so no environment protection rule guards it");
    }
    reasons
}

/// MI-FIC-004.
pub(super) const BROAD_GITHUB_SUBJECT: Rule = Rule {
    id: "MI-FIC-004",
    title: "Privileged identity trusts a broad GitHub Actions subject",
    applies_to: "GitHub Actions federated credentials of user-assigned identities at ManagementPlane or ControlPlane tier",
    severity: "high",
    severities: &[Severity::High],
    rationale: "The subject decides which workflow runs may sign in. pull_request subjects admit code from any pull request; wildcards admit any matching repository or branch; a subject without environment: is not protected by GitHub environment rules (required reviewers, branch restrictions). On a privileged identity, anyone who can push a workflow to the repository gets its rights.",
    remediation: "Replace the credential with one bound to a protected GitHub environment: delete it (az identity federated-credential delete …) and create repo:<org>/<repo>:environment:<environment> (az identity federated-credential create … --subject repo:<org>/<repo>:environment:<environment>), with required reviewers on that environment.",
    references: &[
        "GitHub: security hardening with OpenID Connect, example subject claims (docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect)",
        "prowler #12747: broad federated credential subjects",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: broad_github_subject_rule,
};

fn broad_github_subject_rule(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &BROAD_GITHUB_SUBJECT;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let allowed = allowlist(view, index);
    let github = normalise_issuer(GITHUB_ACTIONS_ISSUER);
    trusts(view, index)
        .into_iter()
        .filter(|t| normalise_issuer(&t.credential.issuer) == github)
        .filter(|t| t.subject.tier() >= Some(Tier::ManagementPlane))
        .filter_map(|trust| {
            let reasons = broad_github_subject(trust.credential);
            if reasons.is_empty() {
                return None;
            }
            let repository = trust
                .credential
                .subject
                .as_deref()
                .and_then(|s| s.strip_prefix("repo:"))
                .and_then(|s| s.split(':').next())
                .filter(|r| !r.contains('*'))
                .unwrap_or("<org>/<repo>")
                .to_owned();
            let parsed = ArmResourceId::parse(trust.identity_id);
            let create = format!(
                "az identity federated-credential create --name {} --identity-name {} --resource-group {} --subscription {} --issuer {GITHUB_ACTIONS_ISSUER} --subject {} --audiences api://AzureADTokenExchange",
                quote(&format!("{}-environment", trust.credential.name)),
                quote(&trust.identity_name()),
                quote(parsed.as_ref().and_then(|r| r.resource_group.as_deref()).unwrap_or("<resource group>")),
                parsed
                    .as_ref()
                    .and_then(|r| r.subscription_id.clone())
                    .unwrap_or_else(|| "<subscription>".to_owned()),
                quote(&format!("repo:{repository}:environment:<environment>"))
            );
            let mut evidence = trust.evidence(index, &allowed);
            evidence["broadBecause"] = json!(reasons);
            Some(rule.finding(
                Severity::High,
                &trust.subject,
                &trust.credential.id,
                format!(
                    "{} ({}) trusts the broad GitHub subject {}",
                    trust.identity_name(),
                    trust.subject.tier().map(Tier::as_str).unwrap_or("no tier"),
                    trust
                        .credential
                        .subject
                        .as_deref()
                        .unwrap_or("(claims-matching expression)")
                ),
                evidence,
                format!(
                    "Bind the trust to a protected GitHub environment: {create}; configure required reviewers on that environment, then delete the broad credential: {}",
                    trust.delete_call()
                ),
            ))
        })
        .collect()
}
