//! Rules on what a managed identity can do: application permissions, directory roles,
//! privileged groups, delegated grants, and privileges left on disabled identities.

use serde_json::json;

use super::{Finding, Rule, Scope, az_rest};
use crate::classification::Tier;
use crate::model::RoleState;
use crate::model::Severity;
use crate::resolve::TenantView;
use crate::resolve::principals::{PrincipalView, ResolvedAppRole, ResolvedDirectoryRole};

pub(crate) use crate::classification::{DIRECT_TO_GLOBAL_ADMIN, MICROSOFT_GRAPH_APP_ID};
/// Exchange Online's application id.
const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// SharePoint Online's application id.
const SHAREPOINT_APP_ID: &str = "00000003-0000-0ff1-ce00-000000000000";

pub(super) fn is_graph(role: &ResolvedAppRole) -> bool {
    role.resource_app_id
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case(MICROSOFT_GRAPH_APP_ID))
}

pub(super) fn permission_label(role: &ResolvedAppRole) -> String {
    let name = role
        .permission
        .clone()
        .unwrap_or_else(|| format!("app role {}", role.app_role_id));
    match &role.resource_name {
        Some(resource) => format!("{name} ({resource})"),
        None => name,
    }
}

pub(super) fn remove_app_role(
    view: &TenantView<'_>,
    subject: &PrincipalView,
    role: &ResolvedAppRole,
) -> String {
    az_rest(
        "DELETE",
        view.graph(),
        &format!(
            "/servicePrincipals/{}/appRoleAssignments/{}",
            subject.id, role.assignment_id
        ),
    )
}

fn app_role_evidence(role: &ResolvedAppRole) -> serde_json::Value {
    json!({
        "permission": role.permission,
        "appRoleId": role.app_role_id,
        "resourceId": role.resource_id,
        "resourceAppId": role.resource_app_id,
        "resourceName": role.resource_name,
        "assignmentId": role.assignment_id,
        "tier": role.tier,
        "classified": role.classified,
        "grantedAt": role.granted_at,
    })
}

/// MI-GRAPH-001.
pub(super) const CONTROL_PLANE_PERMISSION: Rule = Rule {
    id: "MI-GRAPH-001",
    title: "Managed identity holds a ControlPlane application permission",
    applies_to: "managed identities",
    severity: "critical for a direct path to Global Administrator (RoleManagement.ReadWrite.Directory, AppRoleAssignment.ReadWrite.All, Application.ReadWrite.All, RoleAssignmentSchedule.ReadWrite.Directory, PrivilegedAccess.ReadWrite.AzureADGroup, UserAuthenticationMethod.ReadWrite.All, …); high for any other ControlPlane permission on Graph or another API",
    severities: &[Severity::Critical, Severity::High],
    rationale: "ControlPlane permissions let the identity change who has access to the tenant: grant itself roles, add credentials to other apps, or reset administrators' authentication methods. Managed identities get no Conditional Access or continuous access evaluation, so whoever can run code on the hosting resource holds these rights.",
    remediation: "Remove the app role assignment (DELETE /servicePrincipals/{id}/appRoleAssignments/{assignmentId}) and grant the narrowest permission the workload needs instead.",
    references: &[
        "Securing managed identities in Microsoft Entra ID (learn.microsoft.com/entra/architecture/service-accounts-managed-identities)",
        "AzurePrivilegedIAM EAM classification (ControlPlane), emiliensocchi/azure-tiering Tier-0 \"Direct\" paths",
        "Maester MT.1050",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: control_plane_permission,
};

fn control_plane_permission(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &CONTROL_PLANE_PERMISSION;
    let mut out = Vec::new();
    for subject in &view.identities {
        for role in subject
            .app_roles
            .iter()
            .flatten()
            .filter(|r| r.tier == Tier::ControlPlane)
        {
            let direct = is_graph(role)
                && role.permission.as_deref().is_some_and(|p| {
                    DIRECT_TO_GLOBAL_ADMIN
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(p))
                });
            let severity = if direct {
                Severity::Critical
            } else {
                Severity::High
            };
            let mut evidence = app_role_evidence(role);
            evidence["directPathToGlobalAdmin"] = json!(direct);
            out.push(rule.finding(
                severity,
                subject,
                &format!("{}:{}", role.resource_id, role.app_role_id),
                format!("{} holds the ControlPlane permission {}", subject.display_name, permission_label(role)),
                evidence,
                format!(
                    "Remove the grant: {}. Then grant only what the workload needs (for directory reads, Application.Read.All or GroupMember.Read.All).",
                    remove_app_role(view, subject, role)
                ),
            ));
        }
    }
    out
}

/// What kind of tenant-wide data a permission reaches, and its scoped alternative.
fn tenant_wide_data(role: &ResolvedAppRole) -> Option<(&'static str, &'static str)> {
    let name = role.permission.as_deref()?;
    if name.ends_with(".Selected") {
        return None;
    }
    let app = role
        .resource_app_id
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    let mailbox = starts(&[
        "Mail.",
        "MailboxSettings.",
        "MailboxItem.",
        "MailboxFolder.",
        "Calendars.",
        "Contacts.",
    ]);
    let exchange_scope = "Exchange Online RBAC for Applications: create a management scope for the mailboxes the workload needs (New-ManagementScope) and assign the matching 'Application …' role to this identity (New-ServicePrincipal; New-ManagementRoleAssignment -App <appId> -Role \"Application Mail.Read\" -CustomResourceScope <scope>), then remove the tenant-wide grant";
    let sites_scope = "Sites.Selected: grant Sites.Selected and then per-site access (POST /v1.0/sites/{siteId}/permissions with roles [\"read\"] or [\"write\"] and grantedToIdentities [{\"application\":{\"id\":\"<appId>\"}}]), then remove the tenant-wide grant";
    if app == EXCHANGE_APP_ID && (name == "full_access_as_app" || mailbox) {
        return Some(("every mailbox (Exchange Online)", exchange_scope));
    }
    if app == SHAREPOINT_APP_ID && name.starts_with("Sites.") {
        return Some(("every SharePoint site", sites_scope));
    }
    if app != MICROSOFT_GRAPH_APP_ID {
        return None;
    }
    if mailbox {
        return Some(("every mailbox", exchange_scope));
    }
    if (name.starts_with("Files.") || name.starts_with("Sites.")) && name.ends_with(".All") {
        return Some(("every SharePoint site and OneDrive", sites_scope));
    }
    if starts(&[
        "Chat.",
        "ChannelMessage.",
        "OnlineMeetingTranscript.",
        "OnlineMeetingRecording.",
        "OnlineMeetingArtifact.",
    ]) && name.ends_with(".All")
    {
        return Some((
            "every Teams chat, channel or meeting",
            "resource-specific consent (RSC) for the teams and chats the workload needs, then remove the tenant-wide grant",
        ));
    }
    if name.starts_with("Notes.") && name.ends_with(".All") {
        return Some((
            "every OneNote notebook",
            "a delegated flow or a narrower per-user design, then remove the tenant-wide grant",
        ));
    }
    None
}

/// MI-GRAPH-002.
pub(super) const TENANT_WIDE_DATA: Rule = Rule {
    id: "MI-GRAPH-002",
    title: "Managed identity can read or write data across the whole tenant",
    applies_to: "managed identities",
    severity: "high",
    severities: &[Severity::High],
    rationale: "Application permissions such as Mail.Read, Files.Read.All, Sites.FullControl.All or Exchange full_access_as_app reach every mailbox or site in the tenant, not just the ones the workload uses. One compromised resource then exposes all of the organisation's mail or documents.",
    remediation: "Replace the tenant-wide permission with its scoped alternative: Sites.Selected plus per-site grants for SharePoint and OneDrive, Exchange Online RBAC for Applications with a management scope for mail, calendars and contacts, resource-specific consent for Teams; then remove the tenant-wide grant.",
    references: &[
        "Maester MT.1058; AzADServicePrincipalInsights critical permission patterns",
        "AzurePrivilegedIAM attack paths exchange-full-access-as-app, sharepoint-sites-fullcontrol-app",
        "Role Based Access Control for Applications in Exchange Online (learn.microsoft.com/exchange/permissions-exo/application-rbac)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: tenant_wide_data_check,
};

fn tenant_wide_data_check(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &TENANT_WIDE_DATA;
    let mut out = Vec::new();
    for subject in &view.identities {
        for role in subject.app_roles.iter().flatten() {
            let Some((reach, alternative)) = tenant_wide_data(role) else {
                continue;
            };
            let mut evidence = app_role_evidence(role);
            evidence["reaches"] = json!(reach);
            out.push(rule.finding(
                Severity::High,
                subject,
                &format!("{}:{}", role.resource_id, role.app_role_id),
                format!(
                    "{} can access {} through {}",
                    subject.display_name,
                    reach,
                    permission_label(role)
                ),
                evidence,
                format!(
                    "Use {alternative}: {} (appId {}).",
                    remove_app_role(view, subject, role),
                    subject.app_id.as_deref().unwrap_or("unknown")
                ),
            ));
        }
    }
    out
}

fn remove_directory_role(
    view: &TenantView<'_>,
    subject: &PrincipalView,
    role: &ResolvedDirectoryRole,
) -> String {
    if let Some(group) = &role.via_group {
        return format!(
            "Remove the identity from the group {} (or from the nested group that makes it a member): {}. Tokens already issued keep the role for up to 24 hours. If the workload needs the role, assign it to the identity directly instead of through the group.",
            group.display_name.as_deref().unwrap_or(&group.id),
            az_rest(
                "DELETE",
                view.graph(),
                &format!("/groups/{}/members/{}/$ref", group.id, subject.id)
            )
        );
    }
    match role.state {
        RoleState::Active => format!(
            "Remove the assignment: {}",
            az_rest(
                "DELETE",
                view.graph(),
                &format!(
                    "/roleManagement/directory/roleAssignments/{}",
                    role.assignment_id
                )
            )
        ),
        RoleState::Eligible => format!(
            "Remove the eligibility: {} --body '{{\"action\":\"adminRemove\",\"principalId\":\"{}\",\"roleDefinitionId\":\"{}\",\"directoryScopeId\":\"{}\"}}'",
            az_rest(
                "POST",
                view.graph(),
                "/roleManagement/directory/roleEligibilityScheduleRequests"
            ),
            subject.id,
            role.role_definition_id,
            role.directory_scope_id
        ),
    }
}

/// MI-ROLE-001.
pub(super) const DIRECTORY_ROLE: Rule = Rule {
    id: "MI-ROLE-001",
    title: "Managed identity holds a directory role",
    applies_to: "managed identities",
    severity: "critical for a privileged role active at tenant scope; high for a privileged role eligible through PIM; medium for a privileged role scoped to an administrative unit; info for a non-privileged role",
    severities: &[
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Info,
    ],
    rationale: "Directory roles are Entra's administrative rights. A privileged role on a managed identity turns every code path on its hosting resource into an administrator, with no MFA, Conditional Access or PIM approval in the way.",
    remediation: "Remove the assignment (DELETE /roleManagement/directory/roleAssignments/{id}), the eligibility (POST roleEligibilityScheduleRequests with action adminRemove), or the group membership that confers it; grant a narrower role scoped to an administrative unit when one is needed.",
    references: &[
        "Microsoft Entra built-in roles, privileged role labels (learn.microsoft.com/entra/identity/role-based-access-control/privileged-roles-permissions)",
        "Zero Trust Assessment 21836; Prowler TIER_0_ROLE_TEMPLATE_IDS",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: directory_role,
};

/// MI-ROLE-001's evidence: the role, and for a role held through a group, the group (why it is
/// privileged) and the token-cache delay that removing the membership has, so that the one
/// group path is one finding (MI-GROUP-001 and MI-GROUP-002 used to repeat it).
fn role_evidence(subject: &PrincipalView, role: &ResolvedDirectoryRole) -> serde_json::Value {
    let mut evidence = serde_json::to_value(role).unwrap_or_default();
    if let Some(via) = &role.via_group {
        let group = subject
            .groups
            .iter()
            .flatten()
            .find(|g| g.id.eq_ignore_ascii_case(&via.id));
        evidence["group"] = json!({
            "id": via.id,
            "name": via.display_name,
            "isAssignableToRole": group.and_then(|g| g.is_assignable_to_role),
            "securityEnabled": group.and_then(|g| g.security_enabled),
            "privilegedBecause": group.map(|g| g.privileged_because.clone()).unwrap_or_default(),
        });
        evidence["tokenCacheNote"] = json!(TOKEN_CACHE_NOTE);
    }
    evidence
}

/// Why removing a group membership does not revoke at once.
const TOKEN_CACHE_NOTE: &str =
    "managed identity tokens are cached for up to 24 hours; group changes take that long to apply";

/// True when the subject holds a directory role through the group (MI-ROLE-001 reports that
/// path, with the group as related evidence).
fn conveys_directory_role(subject: &PrincipalView, group_id: &str) -> bool {
    subject
        .directory_roles
        .iter()
        .flatten()
        .filter_map(|r| r.via_group.as_ref())
        .any(|g| g.id.eq_ignore_ascii_case(group_id))
}

fn directory_role(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &DIRECTORY_ROLE;
    let mut out = Vec::new();
    for subject in &view.identities {
        for role in subject.directory_roles.iter().flatten() {
            let severity = match (role.is_privileged, role.is_tenant_scope(), role.state) {
                (false, _, _) => Severity::Info,
                (true, false, _) => Severity::Medium,
                (true, true, RoleState::Active) => Severity::Critical,
                (true, true, RoleState::Eligible) => Severity::High,
            };
            let state = match role.state {
                RoleState::Active => "active",
                RoleState::Eligible => "eligible",
            };
            let scope = if role.is_tenant_scope() {
                "the tenant".to_owned()
            } else {
                role.directory_scope_id.clone()
            };
            let via = role
                .via_group
                .as_ref()
                .map(|g| {
                    format!(
                        " through group {}",
                        g.display_name.as_deref().unwrap_or(&g.id)
                    )
                })
                .unwrap_or_default();
            out.push(rule.finding(
                severity,
                subject,
                &format!(
                    "{}:{}:{}:{}",
                    role.role_definition_id,
                    role.directory_scope_id,
                    state,
                    role.via_group.as_ref().map(|g| g.id.as_str()).unwrap_or("direct")
                ),
                format!(
                    "{} holds {} role {} over {}{}",
                    subject.display_name, state, role.role_name, scope, via
                ),
                role_evidence(subject, role),
                remove_directory_role(view, subject, role),
            ));
        }
    }
    out
}

/// MI-GROUP-001.
pub(super) const PRIVILEGED_GROUP: Rule = Rule {
    id: "MI-GROUP-001",
    title: "Managed identity is a member of a privileged group",
    applies_to: "managed identities in a privileged group that gives them no directory role (MI-ROLE-001 reports a role held through a group, naming the group)",
    severity: "high",
    severities: &[Severity::High],
    rationale: "The guidance says to make sure a managed identity is not part of a privileged group such as an administrators group. A role-assignable group, a group holding a directory role (active or eligible) or a group the organisation declares privileged passes its rights to every member, and membership is easy to overlook when reviewing the identity itself.",
    remediation: "Remove the identity from the group (DELETE /groups/{groupId}/members/{identityId}/$ref, or from the nested group that makes it a member) and grant the identity the specific permission it needs directly.",
    references: &[
        "Securing managed identities in Microsoft Entra ID: \"make sure the managed identity isn't part of a privileged group\"",
        "EntraOps transitiveMemberOf with isAssignableToRole",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: privileged_group,
};

fn privileged_group(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &PRIVILEGED_GROUP;
    let mut out = Vec::new();
    for subject in &view.identities {
        for group in subject.privileged_groups() {
            if conveys_directory_role(subject, &group.id) {
                continue;
            }
            let name = group
                .display_name
                .clone()
                .unwrap_or_else(|| group.id.clone());
            out.push(rule.finding(
                Severity::High,
                subject,
                &group.id,
                format!("{} is a member of the privileged group {}", subject.display_name, name),
                json!({
                    "groupId": group.id,
                    "groupName": group.display_name,
                    "isAssignableToRole": group.is_assignable_to_role,
                    "securityEnabled": group.security_enabled,
                    "privilegedBecause": group.privileged_because,
                }),
                format!(
                    "Remove the membership (if it is nested, remove it from the intermediate group instead): {}",
                    az_rest("DELETE", view.graph(), &format!("/groups/{}/members/{}/$ref", group.id, subject.id))
                ),
            ));
        }
    }
    out
}

/// MI-GROUP-002.
pub(super) const PRIVILEGE_THROUGH_GROUP: Rule = Rule {
    id: "MI-GROUP-002",
    title: "Managed identity gets privileges through a group",
    applies_to: "managed identities",
    severity: "info",
    severities: &[Severity::Info],
    rationale: "Managed identity tokens are cached per resource for up to about 24 hours, so removing the identity from a group does not revoke what the group gave it until the cached token expires. Microsoft recommends assigning permissions to the identity directly.",
    remediation: "Assign the role to the identity (a user-assigned identity when several resources need it) instead of through the group, then remove the group membership.",
    references: &[
        "Managed identity best practice recommendations: limitation of using managed identities for authorization (learn.microsoft.com/entra/identity/managed-identities-azure-resources/managed-identity-best-practice-recommendations)",
    ],
    scope: Scope::Subjects,
    retired: Some(
        "merged into MI-ROLE-001 in 0.2: a directory role held through a group is one finding, whose evidence names the group and the token-cache delay",
    ),
    check: privilege_through_group,
};

fn privilege_through_group(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &PRIVILEGE_THROUGH_GROUP;
    let mut out = Vec::new();
    for subject in &view.identities {
        let via: Vec<&ResolvedDirectoryRole> = subject
            .directory_roles
            .iter()
            .flatten()
            .filter(|r| r.via_group.is_some())
            .collect();
        if via.is_empty() {
            continue;
        }
        let mut groups: Vec<&str> = via
            .iter()
            .filter_map(|r| r.via_group.as_ref().map(|g| g.id.as_str()))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let roles: Vec<serde_json::Value> = via
            .iter()
            .map(|r| json!({"role": r.role_name, "state": r.state, "scope": r.directory_scope_id, "viaGroup": r.via_group}))
            .collect();
        out.push(rule.finding(
            Severity::Info,
            subject,
            &groups.join(","),
            format!("{} holds {} directory role(s) through group membership", subject.display_name, via.len()),
            json!({
                "roles": roles,
                "tokenCacheNote": TOKEN_CACHE_NOTE,
            }),
            format!(
                "Assign the needed role directly to the identity (POST {}/v1.0/roleManagement/directory/roleAssignments with principalId {}), then remove it from the group(s) {}.",
                view.graph(),
                subject.id,
                groups.join(", ")
            ),
        ));
    }
    out
}

/// MI-GRANT-001.
pub(super) const DELEGATED_GRANTS: Rule = Rule {
    id: "MI-GRANT-001",
    title: "Managed identity has delegated permission grants",
    applies_to: "managed identities",
    severity: "low: a managed identity cannot run a user sign-in, so a delegated grant on it is inert hygiene",
    severities: &[Severity::Low],
    rationale: "Managed identities call APIs as themselves with application permissions; a delegated (user) grant on one is never needed for that and usually means someone consented for it by mistake. It is inert: delegated scopes act only in a user's sign-in, and a managed identity has no interactive or delegated sign-in flow, so nothing can use the grant today. Remove it so that it cannot become live if the grant is copied or the identity is replaced by an app registration.",
    remediation: "Delete the grant (DELETE /oauth2PermissionGrants/{id}).",
    references: &[
        "oAuth2PermissionGrant resource type (learn.microsoft.com/graph/api/resources/oauth2permissiongrant)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: delegated_grants,
};

fn delegated_grants(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &DELEGATED_GRANTS;
    let mut out = Vec::new();
    for subject in &view.identities {
        for grant in subject.delegated_grants.iter().flatten() {
            out.push(rule.finding(
                Severity::Low,
                subject,
                &grant.id,
                format!(
                    "{} has delegated scopes {} on {}",
                    subject.display_name,
                    grant.scopes.join(" "),
                    grant.resource_name.as_deref().unwrap_or(&grant.resource_id)
                ),
                serde_json::to_value(grant).unwrap_or_default(),
                format!(
                    "Delete the grant: {}",
                    az_rest(
                        "DELETE",
                        view.graph(),
                        &format!("/oauth2PermissionGrants/{}", grant.id)
                    )
                ),
            ));
        }
    }
    out
}

/// MI-HYG-001.
pub(super) const DISABLED_BUT_PRIVILEGED: Rule = Rule {
    id: "MI-HYG-001",
    title: "Disabled managed identity still holds privileges",
    applies_to: "managed identities",
    severity: "low",
    severities: &[Severity::Low],
    rationale: "A disabled identity cannot sign in today, but its grants stay; re-enabling it (or a platform re-provisioning) restores every right at once, and the grants clutter least-privilege reviews.",
    remediation: "Remove the identity's app role assignments, directory roles and group memberships, or delete the identity (or its resource) if it is no longer used.",
    references: &["Monkey365 / CIS analogue: disabled accounts with permissions"],
    scope: Scope::Subjects,
    retired: None,
    check: disabled_but_privileged,
};

fn disabled_but_privileged(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &DISABLED_BUT_PRIVILEGED;
    let mut out = Vec::new();
    for subject in view
        .identities
        .iter()
        .filter(|s| s.account_enabled == Some(false))
    {
        let app_roles: Vec<String> = subject
            .app_roles
            .iter()
            .flatten()
            .map(permission_label)
            .collect();
        let roles: Vec<&str> = subject
            .directory_roles
            .iter()
            .flatten()
            .map(|r| r.role_name.as_str())
            .collect();
        let groups: Vec<String> = subject
            .privileged_groups()
            .map(|g| g.display_name.clone().unwrap_or_else(|| g.id.clone()))
            .collect();
        if app_roles.is_empty() && roles.is_empty() && groups.is_empty() {
            continue;
        }
        let mut calls: Vec<String> = subject
            .app_roles
            .iter()
            .flatten()
            .map(|r| remove_app_role(view, subject, r))
            .collect();
        calls.extend(
            subject
                .directory_roles
                .iter()
                .flatten()
                .map(|r| remove_directory_role(view, subject, r)),
        );
        out.push(rule.finding(
            Severity::Low,
            subject,
            "disabled",
            format!("{} is disabled but still holds {} privilege(s)", subject.display_name, app_roles.len() + roles.len() + groups.len()),
            json!({"appRoles": app_roles, "directoryRoles": roles, "privilegedGroups": groups, "accountEnabled": false}),
            format!("Remove what it still holds, or delete the identity's resource if it is retired: {}", calls.join("; ")),
        ));
    }
    out
}
