//! The scanner checks itself: it should hold its documented read permissions and nothing more.

use serde_json::json;

use super::{Finding, Rule, Scope, az_rest};
use crate::classification::{Classifier, Tier, is_read_only_permission};
use crate::model::Severity;
use crate::model::SubjectKind;
use crate::resolve::TenantView;
use crate::resolve::principals::PrincipalView;

/// The Graph application permissions mi-assess is documented to need.
pub const DOCUMENTED_READ_SET: &[&str] = &[
    "Application.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "Directory.Read.All",
];

/// SELF-001.
pub(super) const SCANNER_SELF_CHECK: Rule = Rule {
    id: "SELF-001",
    title: "The scanner's own identity holds more than its documented read permissions",
    applies_to: "the identity mi-assess runs as (the oid of its own token)",
    severity: "follows the most privileged excess grant: critical for a ControlPlane grant; high for a ManagementPlane grant that can write (or a ManagementPlane directory role); medium for a read-only ManagementPlane permission (such as AuditLog.Read.All); low for UserAccess grants only",
    severities: &[
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ],
    rationale: "A security scanner is a high-value target: it runs unattended and reads the whole directory. It needs Application.Read.All, GroupMember.Read.All, RoleManagement.Read.Directory and Directory.Read.All; anything more is standing privilege an attacker inherits by compromising the Function App.",
    remediation: "Remove every app role assignment and directory role beyond the documented read set from the scanner's identity.",
    references: &["Maester #1287 (run with least privileges); mi-assess docs/permissions.md"],
    scope: Scope::Tenant,
    retired: None,
    check: scanner_self_check,
};

/// The severity of one excess grant of the scanner, by its tier: a read-only permission
/// ([`is_read_only_permission`]) is a step below a writing one of the same tier. A directory
/// role counts as writing.
fn excess_severity(grant: &str, tier: Tier) -> Severity {
    let permission = grant.split(" (").next().unwrap_or(grant);
    let read_only = !grant.starts_with("directory role ") && is_read_only_permission(permission);
    match (tier, read_only) {
        (Tier::ControlPlane, _) => Severity::Critical,
        (Tier::ManagementPlane, false) => Severity::High,
        (Tier::ManagementPlane, true) => Severity::Medium,
        (Tier::UserAccess, _) => Severity::Low,
    }
}

fn scanner_self_check(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &SCANNER_SELF_CHECK;
    let scanner = &view.snapshot.scanner;
    let Some(object_id) = scanner.object_id.as_deref() else {
        return Vec::new();
    };
    let found = view.subject(object_id);
    let subject_view = found.as_ref();
    let allowed = |name: &str| {
        DOCUMENTED_READ_SET
            .iter()
            .any(|a| a.eq_ignore_ascii_case(name))
    };

    // Graph permissions from the token itself; others from the collected assignments.
    let mut excess: Vec<(String, Tier, Option<String>)> = Vec::new();
    for role in scanner.roles.iter().filter(|r| !allowed(r)) {
        let resolved = subject_view
            .and_then(|v| v.app_roles.as_ref())
            .and_then(|roles| {
                roles
                    .iter()
                    .find(|r| r.permission.as_deref() == Some(role.as_str()))
            });
        let tier = resolved
            .map(|r| r.tier)
            .unwrap_or_else(|| Classifier::embedded().graph_permission_tier(role));
        let call = match (subject_view, resolved) {
            (Some(v), Some(r)) => Some(az_rest(
                "DELETE",
                view.graph(),
                &format!(
                    "/servicePrincipals/{}/appRoleAssignments/{}",
                    v.id, r.assignment_id
                ),
            )),
            _ => None,
        };
        excess.push((format!("{role} (Microsoft Graph)"), tier, call));
    }
    if let Some(v) = subject_view {
        for role in v.app_roles.iter().flatten() {
            let graph = role
                .resource_app_id
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(super::privileges::MICROSOFT_GRAPH_APP_ID));
            if graph {
                continue; // judged from the token above
            }
            let call = az_rest(
                "DELETE",
                view.graph(),
                &format!(
                    "/servicePrincipals/{}/appRoleAssignments/{}",
                    v.id, role.assignment_id
                ),
            );
            excess.push((
                format!(
                    "{} ({})",
                    role.permission.as_deref().unwrap_or(&role.app_role_id),
                    role.resource_name.as_deref().unwrap_or(&role.resource_id)
                ),
                role.tier,
                Some(call),
            ));
        }
        for role in v.directory_roles.iter().flatten() {
            excess.push((
                format!("directory role {}", role.role_name),
                role.tier,
                None,
            ));
        }
    }
    if excess.is_empty() {
        return Vec::new();
    }
    excess.sort();
    let severity = excess
        .iter()
        .map(|(name, tier, _)| excess_severity(name, *tier))
        .max()
        .unwrap_or(Severity::Low);
    let mut fallback = PrincipalView::known_only_by_id(
        object_id,
        "mi-assess scanner",
        SubjectKind::ServicePrincipal,
    );
    fallback.app_id = scanner.app_id.clone();
    let subject = subject_view.unwrap_or(&fallback);
    let names: Vec<&str> = excess.iter().map(|(n, _, _)| n.as_str()).collect();
    let calls: Vec<String> = excess
        .iter()
        .map(|(name, _, call)| {
            call.clone()
                .unwrap_or_else(|| format!("remove {name} in the Entra admin center"))
        })
        .collect();
    vec![rule.finding(
        severity,
        subject,
        "self",
        format!("The scanner's identity {} holds more than it needs: {}", subject.display_name, names.join(", ")),
        json!({
            "documentedReadSet": DOCUMENTED_READ_SET,
            "excess": excess.iter().map(|(n, t, _)| json!({"grant": n, "tier": t})).collect::<Vec<_>>(),
            "tokenRoles": scanner.roles,
        }),
        format!("Remove the excess grants: {}", calls.join("; ")),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excess_grant_weighs_by_its_tier_and_whether_it_writes() {
        let cases = [
            (
                "Application.ReadWrite.All (Microsoft Graph)",
                Tier::ControlPlane,
                Severity::Critical,
            ),
            (
                "Mail.ReadWrite (Microsoft Graph)",
                Tier::ManagementPlane,
                Severity::High,
            ),
            (
                "directory role Global Reader",
                Tier::ManagementPlane,
                Severity::High,
            ),
            (
                "AuditLog.Read.All (Microsoft Graph)",
                Tier::ManagementPlane,
                Severity::Medium,
            ),
            (
                "Sites.Read.All (Microsoft Graph)",
                Tier::ManagementPlane,
                Severity::Medium,
            ),
            (
                "Mail.Send (Microsoft Graph)",
                Tier::ManagementPlane,
                Severity::High,
            ),
            (
                "User.Read.All (Microsoft Graph)",
                Tier::UserAccess,
                Severity::Low,
            ),
        ];
        for (grant, tier, expected) in cases {
            assert_eq!(excess_severity(grant, tier), expected, "{grant}");
        }
    }
}
