//! Least privilege from evidence (the usage plane): what each managed identity was seen using
//! in the window, against what it holds.
//!
//! - MI-USE-001: a Graph application permission no observed request needs;
//! - MI-USE-002: a narrower Graph permission covers everything one was used for;
//! - MI-USE-003: an Azure role that allows writes, held by an identity that wrote nothing, or
//!   less than the role allows;
//! - MI-USE-004: a privileged identity that did not sign in at all.
//!
//! Each rule reads only evidence that was collected whole: a table the workspace lacks, one
//! the scanner may not read, or a result the query API cut leaves its rules silent (the
//! manifest says why). Policy-assignment identities sign in only when a remediation runs, so
//! their dormancy is `info`.

use serde_json::json;

use super::privileges::{is_graph, permission_label, remove_app_role};
use super::{Finding, Rule, Scope, az_rest};
use crate::classification::Tier;
use crate::model::Severity;
use crate::permission_map::{Cover, PermissionMap, Request};
use crate::resolve::TenantView;
use crate::resolve::azure::ResolvedAzureRole;
use crate::resolve::principals::{PrincipalView, ResolvedAppRole};
use crate::resolve::usage::UsageIndex;
use crate::snapshot::Dataset;
use crate::snapshot::usage::UsageSnapshot;

/// Observed requests or operations shown in a finding's evidence.
const SAMPLES: usize = 10;

/// MI-USE-001.
pub(super) const UNUSED_PERMISSION: Rule = Rule {
    id: "MI-USE-001",
    title: "A Graph application permission was not used in the usage window",
    applies_to: "managed identities, when the usage plane reads MicrosoftGraphActivityLogs",
    severity: "high for a ControlPlane permission, medium for a ManagementPlane one, low otherwise",
    severities: &[Severity::High, Severity::Medium, Severity::Low],
    rationale: "A permission that no request needed in the whole window is standing privilege: whoever can run code as the identity inherits it, and removing it breaks nothing that ran. The Graph activity log records every request with the caller's service principal, and Microsoft's permissions map says which permissions allow each method and path.",
    remediation: "Remove the app role assignment (DELETE /servicePrincipals/{id}/appRoleAssignments/{assignmentId}).",
    references: &[
        "Securing managed identities in Microsoft Entra ID: examine privileges (learn.microsoft.com/entra/architecture/service-accounts-managed-identities)",
        "Microsoft Graph activity logs (learn.microsoft.com/graph/microsoft-graph-activity-logs-overview)",
        "microsoftgraph/microsoft-graph-devx-content permissions map (data/graph-permissions)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: unused_permissions,
};

/// MI-USE-002.
pub(super) const NARROWER_PERMISSION: Rule = Rule {
    id: "MI-USE-002",
    title: "A narrower Graph permission covers everything this one was used for",
    applies_to: "managed identities, when the usage plane reads MicrosoftGraphActivityLogs",
    severity: "medium when the permission in use is ControlPlane, low when ManagementPlane, info otherwise",
    severities: &[Severity::Medium, Severity::Low, Severity::Info],
    rationale: "The identity needs the permission, but only part of it: a ReadWrite permission used only to read, or a permission broader than the one Microsoft's map marks least privileged for every path it called. Swapping it keeps the workload working and takes away what it never did.",
    remediation: "Grant the narrower permission, then remove the broader assignment.",
    references: &[
        "Microsoft Graph permissions reference: least privileged permissions (learn.microsoft.com/graph/permissions-reference)",
        "microsoftgraph/microsoft-graph-devx-content permissions map (data/graph-permissions)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: narrower_permissions,
};

/// MI-USE-003.
pub(super) const AZURE_ROLE_BROADER_THAN_USE: Rule = Rule {
    id: "MI-USE-003",
    title: "An Azure role that allows writes is broader than what the identity did",
    applies_to: "managed identities with Azure roles, when the usage plane reads AzureActivity",
    severity: "high for a ControlPlane role, medium for a ManagementPlane one, low otherwise; info for an Azure Policy assignment's identity, which works only when a remediation runs",
    severities: &[
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ],
    rationale: "The activity log records every write and action an identity performs through Azure Resource Manager. A role that allows writes, held by an identity that wrote nothing in the window, can shrink to Reader; one that wrote a few things can shrink to a custom role listing exactly those operations. Roles with data actions are left out: their use is data-plane, which the activity log does not record.",
    remediation: "Replace the assignment with Reader, or with a custom role holding the observed operations (the evidence gives its definition), then delete the broad assignment.",
    references: &[
        "Azure activity log (learn.microsoft.com/azure/azure-monitor/essentials/activity-log)",
        "Azure custom roles (learn.microsoft.com/azure/role-based-access-control/custom-roles)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: azure_roles_broader_than_use,
};

/// MI-USE-004.
pub(super) const DORMANT_PRIVILEGED_IDENTITY: Rule = Rule {
    id: "MI-USE-004",
    title: "A privileged managed identity did not sign in during the usage window",
    applies_to: "ControlPlane and ManagementPlane managed identities, when the usage plane reads AADManagedIdentitySignInLogs",
    severity: "high for a ControlPlane identity, medium for a ManagementPlane one; info for an Azure Policy assignment's identity, which signs in only when a remediation runs",
    severities: &[Severity::High, Severity::Medium, Severity::Info],
    rationale: "An identity that holds privilege but did not obtain a single token in the window is not doing the work its privileges are for: it is an unused key to the tenant. Dormant privileged identities are what attackers look for, because nobody notices when they start signing in.",
    remediation: "Confirm nothing needs it, then remove its privileges (or delete it); if it runs rarely, grant its privileges just in time instead of standing.",
    references: &[
        "Securing managed identities in Microsoft Entra ID (learn.microsoft.com/entra/architecture/service-accounts-managed-identities)",
        "Managed identity sign-in logs (learn.microsoft.com/entra/identity/monitoring-health/concept-sign-ins)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: dormant_privileged_identities,
};

/// The usage plane when `table` of it was read whole.
fn readable<'v, T: 'v>(
    view: &'v TenantView<'_>,
    dataset: impl Fn(&'v UsageSnapshot) -> &'v Dataset<Vec<T>>,
    table: &str,
) -> Option<(&'v UsageIndex<'v>, &'v UsageSnapshot)> {
    let index = view.usage?;
    let usage = index.usage?;
    let complete =
        dataset(usage).known().is_some() && !usage.truncated.iter().any(|t| t.starts_with(table));
    complete.then_some((index, usage))
}

/// Whether a grant is younger than the window: it could not have been used all along.
fn granted_within(granted_at: Option<&str>, usage: &UsageSnapshot) -> bool {
    granted_at
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|t| t > usage.window_start)
}

/// Which evidence the workspace had, for every usage finding.
fn coverage(usage: &UsageSnapshot) -> serde_json::Value {
    fn state<T>(dataset: &Dataset<Vec<T>>) -> serde_json::Value {
        match dataset {
            Dataset::Collected { items } => json!({"state": "collected", "rows": items.len()}),
            Dataset::NotApplicable { reason } => {
                json!({"state": "notApplicable", "reason": reason})
            }
            Dataset::Unknown { reason } => json!({"state": "unknown", "reason": reason}),
        }
    }
    json!({
        "workspaceId": usage.workspace_id,
        "windowDays": usage.window_days,
        "windowStart": rfc3339(usage.window_start),
        "windowEnd": rfc3339(usage.window_end),
        "AADManagedIdentitySignInLogs": state(&usage.sign_ins),
        "MicrosoftGraphActivityLogs": state(&usage.graph_requests),
        "AzureActivity": state(&usage.arm_operations),
        "truncated": usage.truncated,
    })
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn tiered(tier: Tier, control: Severity, management: Severity, other: Severity) -> Severity {
    match tier {
        Tier::ControlPlane => control,
        Tier::ManagementPlane => management,
        Tier::UserAccess => other,
    }
}

/// The identity's observed Graph requests, for the permissions map.
fn requests(index: &UsageIndex<'_>, subject: &PrincipalView) -> Vec<Request> {
    index
        .graph_requests(&subject.id)
        .iter()
        .map(|r| Request {
            method: r.method.clone(),
            path: r.path.clone(),
        })
        .collect()
}

/// The first requests, as evidence: `GET /users/{id}/messages (12×)`.
fn sample_requests(index: &UsageIndex<'_>, subject: &PrincipalView) -> Vec<String> {
    let mut rows = index.graph_requests(&subject.id).to_vec();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
    rows.iter()
        .take(SAMPLES)
        .map(|r| format!("{} {} ({}×)", r.method, r.path, r.count))
        .collect()
}

/// Graph permissions (application) the identity holds, by name, with their assignment.
fn graph_permissions(
    subject: &PrincipalView,
) -> Vec<(&str, &crate::resolve::principals::ResolvedAppRole)> {
    subject
        .app_roles
        .iter()
        .flatten()
        .filter(|r| is_graph(r))
        .filter_map(|r| r.permission.as_deref().map(|p| (p, r)))
        .collect()
}

/// Each identity of the chunk that holds Graph permissions, with them and what covers its
/// observed requests; `None` when the Graph activity was not read whole.
#[allow(clippy::type_complexity)]
fn graph_covers<'v>(
    view: &'v TenantView<'_>,
) -> Option<(
    &'v UsageIndex<'v>,
    &'v UsageSnapshot,
    Vec<(
        &'v PrincipalView,
        Vec<(&'v str, &'v ResolvedAppRole)>,
        Cover,
    )>,
)> {
    let (index, usage) = readable(view, |u| &u.graph_requests, "MicrosoftGraphActivityLogs")?;
    let map = PermissionMap::embedded().ok()?;
    let covers = view
        .identities
        .iter()
        .filter_map(|subject| {
            let held = graph_permissions(subject);
            if held.is_empty() {
                return None;
            }
            let names: Vec<String> = held.iter().map(|(p, _)| (*p).to_owned()).collect();
            let cover = map.cover(&names, &requests(index, subject));
            Some((subject, held, cover))
        })
        .collect();
    Some((index, usage, covers))
}

fn unused_permissions(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &UNUSED_PERMISSION;
    let Some((index, usage, covers)) = graph_covers(view) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (subject, held, cover) in &covers {
        // A request no granted permission is known to cover was allowed by one of them all the
        // same: which one is unknown, so none is called unused.
        if !cover.uncovered.is_empty() {
            continue;
        }
        for (permission, role) in held.iter().filter(|(p, role)| {
            cover.unused.iter().any(|u| u.eq_ignore_ascii_case(p))
                && !granted_within(role.granted_at.as_deref(), usage)
        }) {
            let severity = tiered(role.tier, Severity::High, Severity::Medium, Severity::Low);
            out.push(rule.finding(
                severity,
                subject,
                &format!("{}:{}", role.resource_id, role.app_role_id),
                format!(
                    "{} did not use {} in {} days",
                    subject.display_name,
                    permission_label(role),
                    usage.window_days
                ),
                json!({
                    "permission": permission,
                    "tier": role.tier,
                    "assignmentId": role.assignment_id,
                    "observedRequests": sample_requests(index, subject),
                    "observedRequestCount": index.graph_requests(&subject.id).len(),
                    "usedPermissions": cover.used.keys().collect::<Vec<_>>(),
                    "uncoveredRequests": cover.uncovered.iter().take(SAMPLES).map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(),
                    "coverage": coverage(usage),
                }),
                format!(
                    "Remove the unused permission: {}.",
                    remove_app_role(view, subject, role)
                ),
            ));
        }
    }
    out
}

fn narrower_permissions(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &NARROWER_PERMISSION;
    let Some((_, usage, covers)) = graph_covers(view) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (subject, held, cover) in &covers {
        for narrower in &cover.narrower {
            let Some((_, role)) = held
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(&narrower.granted))
            else {
                continue;
            };
            let severity = tiered(role.tier, Severity::Medium, Severity::Low, Severity::Info);
            let grant = grant_command(view, subject, &role.resource_id, &narrower.replacement);
            out.push(rule.finding(
                severity,
                subject,
                &format!("{}:{}:{}", role.resource_id, role.app_role_id, narrower.replacement),
                format!(
                    "{} needs only {} of {}: {}",
                    subject.display_name, narrower.replacement, narrower.granted, narrower.because
                ),
                json!({
                    "permission": narrower.granted,
                    "replacement": narrower.replacement,
                    "because": narrower.because,
                    "tier": role.tier,
                    "assignmentId": role.assignment_id,
                    "observedRequests": narrower.requests.iter().take(SAMPLES).map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(),
                    "coverage": coverage(usage),
                }),
                match grant {
                    Some(grant) => format!(
                        "Grant {}: {grant}. Then remove {}: {}.",
                        narrower.replacement,
                        narrower.granted,
                        remove_app_role(view, subject, role)
                    ),
                    None => format!(
                        "Grant {} (scripts/grant-graph-roles.sh names it), then remove {}: {}.",
                        narrower.replacement,
                        narrower.granted,
                        remove_app_role(view, subject, role)
                    ),
                },
            ));
        }
    }
    out
}

/// The call that grants `permission` of the resource `resource_id` to the subject, when the
/// resource's app roles (read by collection) name it.
fn grant_command(
    view: &TenantView<'_>,
    subject: &PrincipalView,
    resource_id: &str,
    permission: &str,
) -> Option<String> {
    let resource = view
        .snapshot
        .resources
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(resource_id))?;
    let role = resource.app_roles.iter().find(|r| {
        r.value
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case(permission))
    })?;
    let body = json!({
        "principalId": subject.id,
        "resourceId": resource.id,
        "appRoleId": role.id,
    });
    Some(format!(
        "{} --body {}",
        az_rest(
            "POST",
            view.graph(),
            &format!("/servicePrincipals/{}/appRoleAssignments", subject.id)
        ),
        crate::model::shell_quote(&body.to_string())
    ))
}

/// Whether the role's actions (wildcards included) allow `operation`, and its not-actions do not.
fn role_allows(definition: &crate::snapshot::azure::RoleDefinitionRow, operation: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: false,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    let matches = |patterns: &[String]| {
        patterns.iter().any(|p| {
            glob::Pattern::new(p).is_ok_and(|pattern| pattern.matches_with(operation, options))
        })
    };
    definition
        .permissions
        .iter()
        .any(|p| matches(&p.actions) && !matches(&p.not_actions))
}

/// Whether an action allows more than reading.
fn writes(action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    !(action.ends_with("/read") || action.ends_with("/*/read"))
}

fn azure_roles_broader_than_use(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &AZURE_ROLE_BROADER_THAN_USE;
    let Some((index, usage)) = readable(view, |u| &u.arm_operations, "AzureActivity") else {
        return Vec::new();
    };
    let Some(azure) = view.azure else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in &view.identities {
        let operations = index.arm_operations(&subject.id);
        for role in subject.azure_roles.iter().flatten() {
            let Some(definition) = azure.definition(&role.role_definition_id) else {
                continue;
            };
            // Data-plane roles are used through their data actions, which the activity log
            // does not record: their use cannot be told here.
            let data_role = definition
                .permissions
                .iter()
                .any(|p| !p.data_actions.is_empty());
            let role_writes = definition
                .permissions
                .iter()
                .flat_map(|p| &p.actions)
                .any(|a| writes(a));
            if data_role || !role_writes {
                continue;
            }
            // Only what this role allows: an operation another of its roles allowed must not
            // find its way into this role's replacement.
            let observed: Vec<&str> = operations
                .iter()
                .map(|o| o.operation.as_str())
                .filter(|op| role_allows(definition, op))
                .collect();
            let severity = if policy_identity(view, subject) {
                Severity::Info
            } else {
                tiered(role.tier, Severity::High, Severity::Medium, Severity::Low)
            };
            let (title, replacement, custom) = if observed.is_empty() {
                (
                    format!(
                        "{} holds {} at {} but wrote nothing through ARM in {} days",
                        subject.display_name, role.role_name, role.scope, usage.window_days
                    ),
                    "Reader".to_owned(),
                    None,
                )
            } else {
                let custom = custom_role(subject, role, &observed);
                (
                    format!(
                        "{} holds {} at {} but performed only {} operation(s) in {} days",
                        subject.display_name,
                        role.role_name,
                        role.scope,
                        observed.len(),
                        usage.window_days
                    ),
                    format!(
                        "a custom role with its {} observed operation(s)",
                        observed.len()
                    ),
                    Some(custom),
                )
            };
            let assign = match &custom {
                None => format!(
                    "az role assignment create --assignee-object-id {} --assignee-principal-type ServicePrincipal --role Reader --scope {}",
                    crate::model::shell_quote(&subject.id),
                    crate::model::shell_quote(&role.scope)
                ),
                Some(definition) => format!(
                    "az role definition create --role-definition {}",
                    crate::model::shell_quote(&definition.to_string())
                ),
            };
            out.push(rule.finding(
                severity,
                subject,
                &role.assignment_id,
                title,
                json!({
                    "assignmentId": role.assignment_id,
                    "roleName": role.role_name,
                    "scope": role.scope,
                    "tier": role.tier,
                    "viaGroup": role.via_group.as_ref().map(|g| &g.id),
                    "observedOperations": operations.iter().take(SAMPLES).map(|o| json!({"operation": o.operation, "count": o.count, "lastSeen": rfc3339(o.last_seen)})).collect::<Vec<_>>(),
                    "replacement": replacement,
                    "customRole": custom,
                    "coverage": coverage(usage),
                }),
                format!(
                    "Grant {replacement}: {assign}. Then remove the broad role. {}",
                    super::azure::remove_azure_role(view, subject, role)
                ),
            ));
        }
    }
    out
}

/// A custom role that allows exactly the observed operations at the assignment's scope.
fn custom_role(
    subject: &PrincipalView,
    role: &ResolvedAzureRole,
    observed: &[&str],
) -> serde_json::Value {
    let mut actions: Vec<&str> = observed.to_vec();
    actions.sort_unstable();
    actions.dedup();
    json!({
        "Name": format!("{} (least privilege from use)", subject.display_name),
        "IsCustom": true,
        "Description": format!("The operations {} performed under {} in the usage window.", subject.display_name, role.role_name),
        "Actions": actions,
        "NotActions": [],
        "AssignableScopes": [role.scope],
    })
}

/// Whether the identity is an Azure Policy assignment's: it works only when a remediation runs.
fn policy_identity(view: &TenantView<'_>, subject: &PrincipalView) -> bool {
    view.managed_identity(&subject.id)
        .and_then(|sp| crate::resolve::identity_kind::classify(&sp.alternative_names).resource)
        .is_some_and(|r| {
            r.resource_type
                .eq_ignore_ascii_case("Microsoft.Authorization/policyAssignments")
        })
}

fn dormant_privileged_identities(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &DORMANT_PRIVILEGED_IDENTITY;
    let Some((index, usage)) = readable(view, |u| &u.sign_ins, "AADManagedIdentitySignInLogs")
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in &view.identities {
        let Some(tier) = subject.tier() else {
            continue;
        };
        // Graph requests or ARM operations of its own mean it did obtain tokens: the sign-in log
        // is incomplete for it, which is no evidence of dormancy.
        if tier == Tier::UserAccess
            || !index.sign_ins(&subject.id).is_empty()
            || !index.graph_requests(&subject.id).is_empty()
            || !index.arm_operations(&subject.id).is_empty()
        {
            continue;
        }
        let policy = view
            .managed_identity(&subject.id)
            .and_then(|sp| crate::resolve::identity_kind::classify(&sp.alternative_names).resource)
            .is_some_and(|r| {
                r.resource_type
                    .eq_ignore_ascii_case("Microsoft.Authorization/policyAssignments")
            });
        let severity = if policy {
            Severity::Info
        } else {
            tiered(tier, Severity::High, Severity::Medium, Severity::Medium)
        };
        out.push(rule.finding(
            severity,
            subject,
            "dormant",
            format!(
                "{} holds {} privileges but did not sign in during the last {} days{}",
                subject.display_name,
                tier,
                usage.window_days,
                if policy { " (an Azure Policy assignment's identity: it signs in when a remediation runs)" } else { "" }
            ),
            json!({
                "tier": tier,
                "policyAssignment": policy,
                "graphRequests": index.graph_requests(&subject.id).len(),
                "armOperations": index.arm_operations(&subject.id).len(),
                "coverage": coverage(usage),
            }),
            if policy {
                "An Azure Policy assignment's identity signs in only when a deploy-if-not-exists or modify remediation runs: check the assignment still needs its roles.".to_owned()
            } else {
                let removals: Vec<String> = subject
                    .app_roles
                    .iter()
                    .flatten()
                    .map(|role| remove_app_role(view, subject, role))
                    .chain(
                        subject
                            .azure_roles
                            .iter()
                            .flatten()
                            .filter(|role| role.via_group.is_none())
                            .map(|role| {
                                format!(
                                    "az role assignment delete --ids {}",
                                    crate::model::shell_quote(&role.assignment_id)
                                )
                            }),
                    )
                    .take(SAMPLES)
                    .collect();
                format!(
                    "Confirm nothing needs {}, then remove its privileges{} or delete it; if it runs rarely, hold its roles just in time (PIM) instead of standing.",
                    subject.display_name,
                    if removals.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", removals.join("; "))
                    }
                )
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_allows_what_its_actions_match_and_its_not_actions_do_not() {
        let role = crate::snapshot::azure::RoleDefinitionRow {
            id: "r".into(),
            role_name: Some("Contributor".into()),
            role_type: Some("BuiltInRole".into()),
            permissions: vec![crate::snapshot::azure::RolePermission {
                actions: vec!["*".into()],
                not_actions: vec!["Microsoft.Authorization/*/Write".into()],
                data_actions: Vec::new(),
                not_data_actions: Vec::new(),
            }],
            assignable_scopes: Vec::new(),
        };
        assert!(role_allows(
            &role,
            "Microsoft.Compute/virtualMachines/write"
        ));
        assert!(!role_allows(
            &role,
            "Microsoft.Authorization/roleAssignments/write"
        ));
    }

    #[test]
    fn reads_are_not_writes() {
        assert!(!writes("Microsoft.Storage/storageAccounts/read"));
        assert!(!writes("*/read"));
        assert!(writes("*"));
        assert!(writes("Microsoft.Compute/virtualMachines/write"));
        assert!(writes("Microsoft.Storage/storageAccounts/listKeys/action"));
    }
}
