//! Rules on the privilege graph (`crate::resolve::paths`): paths from a managed identity to
//! Tier-0 through control of other identities (MI-PATH-001), the principals that can become a
//! privileged identity or the scanner (MI-PATH-002), and broad write roles that reach many
//! identities (MI-AZ-004). The path or the actor list is the evidence, and every hop carries
//! its own fix.

use serde_json::json;

use super::{Finding, Rule, Scope};
use crate::classification::Tier;
use crate::model::Severity;
use crate::resolve::TenantView;
use crate::resolve::azure::{ROLE_ASSIGNMENT_WRITE, ScopeKind};
use crate::resolve::paths::{ACTORS_LISTED, Actor, EdgeKind, NodeKind};

/// A write action no role names on purpose: a role that allows it writes every provider.
const ANY_PROVIDER_WRITE: &str = "Microsoft.MiAssessProbe/resources/write";

/// MI-PATH-001.
pub(super) const PATH_TO_TIER0: Rule = Rule {
    id: "MI-PATH-001",
    title: "Managed identity reaches Tier-0 through control of another identity",
    applies_to: "managed identities whose shortest path to a Tier-0 privilege runs through another identity they control (a path longer than a direct holding)",
    severity: "critical when the target is Global-Administrator-equivalent (a ControlPlane directory role active at tenant scope, a Graph permission with a direct path to Global Administrator, or a role that can grant Azure access at root or management-group scope); high for any other Tier-0 target (an eligible ControlPlane role, another ControlPlane permission)",
    severities: &[Severity::Critical, Severity::High],
    rationale: "A managed identity is judged by what it holds, but it holds whatever the identities it can run code as hold. A role that allows a VM extension, a web app deployment or a runbook over a scope with a more privileged identity's host makes the holder that identity. The path is invisible in the holder's own grants; this finding shows it hop by hop, shortest first.",
    remediation: "Break the first hop that should not exist: each hop in the evidence carries the exact command (delete or narrow the Azure role assignment that gives control of the host, or remove the group membership). Then move the privileged identity's host into a scope the holder cannot write.",
    references: &[
        "Andy Robbins, Managed Identity Attack Paths (posts.specterops.io)",
        "BloodHound CE Azure edges AZExecuteCommand, AZWebsiteContributor, AZAutomationContributor, AZLogicAppContributor, AZAKSContributor",
        "EntraOps: scopes above a Tier-0 host are Tier-0",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: path_to_tier0,
};

fn path_to_tier0(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &PATH_TO_TIER0;
    let mut out = Vec::new();
    for subject in &view.identities {
        let Some(path) = view.paths().path_to_tier0(&subject.id) else {
            continue;
        };
        if !path.is_escalation() {
            continue; // a direct holding: MI-GRAPH-001, MI-ROLE-001 and MI-AZ-001 report it
        }
        if path.hops.first().is_some_and(|h| h.edge == EdgeKind::Owns) {
            continue; // an owned object's privileges: MI-OWN-001 reports it, with this path
        }
        let through: Vec<String> = path
            .hops
            .iter()
            .skip(1)
            .filter(|h| {
                h.from.kind == NodeKind::ManagedIdentity
                    || h.from.kind == NodeKind::ServicePrincipal
            })
            .map(|h| h.from.name.clone().unwrap_or_else(|| h.from.id.clone()))
            .collect();
        let first = &path.hops[0];
        out.push(rule.finding(
            path.severity,
            subject,
            &format!(
                    "{}:{}",
                    first.evidence["assignmentId"]
                        .as_str()
                        .unwrap_or(&first.to.id),
                    path.target.assignment_id
                ),
            format!(
                "{} can reach {} in {} hops through {}",
                subject.display_name,
                path.target.description,
                path.hops.len(),
                through.join(" → ")
            ),
            json!({
                "target": path.target,
                "hopCount": path.hops.len(),
                "hops": path.hops,
            }),
            format!("Break the first hop: {}", first.remediation),
        ));
    }
    out
}

/// MI-PATH-002.
pub(super) const WHO_CAN_BECOME: Rule = Rule {
    id: "MI-PATH-002",
    title: "Principals can run code as a privileged managed identity",
    applies_to: "managed identities at ControlPlane or ManagementPlane tier, and the scanner's own identity, with at least one principal that can run code in their host or take over the user-assigned identity",
    severity: "critical for a ControlPlane identity that a guest, a foreign principal, an application with a secret or certificate, or a group of 50 or more members can act as; high for any other actor of a ControlPlane identity, for the scanner, and for a ManagementPlane identity with such a weak actor; medium for other actors of a ManagementPlane identity",
    severities: &[Severity::Critical, Severity::High, Severity::Medium],
    rationale: "Whoever can run code in a managed identity's host, or add a federated credential to a user-assigned identity, holds every right the identity has, with no secret, MFA or Conditional Access in the way. The identity is only as well protected as the weakest principal with that control. For the scanner, it means reading the whole directory and choosing what the assessment reports.",
    remediation: "Remove each actor's control in the evidence (delete or narrow the Azure role assignment it names), or move the identity's host into a resource group only its operators can write; keep Tier-0 hosts in scopes no broader role reaches.",
    references: &[
        "Securing managed identities in Microsoft Entra ID: who can use the resource can use the identity",
        "EntraOps: identities and scopes that control a Tier-0 asset are Tier-0",
        "BloodHound CE inbound control of AZManagedIdentity",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: who_can_become,
};

fn who_can_become(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &WHO_CAN_BECOME;
    let scanner = view.snapshot.scanner.object_id.as_deref();
    let mut out = Vec::new();
    for subject in &view.identities {
        let is_scanner = scanner.is_some_and(|s| s.eq_ignore_ascii_case(&subject.id));
        let tier = subject.tier();
        if !is_scanner && !matches!(tier, Some(Tier::ControlPlane | Tier::ManagementPlane)) {
            continue;
        }
        let actors = view.paths().actors(&subject.id);
        if actors.count == 0 {
            continue;
        }
        let weak = actors.first.iter().any(Actor::is_weak);
        let severity = match (tier, weak) {
            (Some(Tier::ControlPlane), true) => Severity::Critical,
            (Some(Tier::ControlPlane), false) => Severity::High,
            _ if is_scanner => Severity::High,
            (_, true) => Severity::High,
            _ => Severity::Medium,
        };
        let names: Vec<String> = actors
            .first
            .iter()
            .take(3)
            .map(|a| {
                a.principal
                    .name
                    .clone()
                    .unwrap_or_else(|| a.principal.id.clone())
            })
            .collect();
        let more = actors.count.saturating_sub(names.len());
        let what = if is_scanner {
            "the scanner".to_owned()
        } else {
            format!(
                "the {} identity",
                tier.map(Tier::as_str).unwrap_or("privileged")
            )
        };
        out.push(rule.finding(
            severity,
            subject,
            "actors",
            format!(
                "{} principal{} can run code as {what} {}: {}{}",
                actors.count,
                if actors.count == 1 { "" } else { "s" },
                subject.display_name,
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
            json!({
                "identityTier": tier,
                "isScanner": is_scanner,
                "actorCount": actors.count,
                "actorsListed": ACTORS_LISTED,
                "actors": actors.first,
            }),
            actor_remediation(&actors.first),
        ));
    }
    out
}

/// MI-XT-001.
pub(super) const CROSS_TENANT_CONTROL: Rule = Rule {
    id: "MI-XT-001",
    title: "A principal of another tenant can run code as a privileged managed identity",
    applies_to: "managed identities at ControlPlane or ManagementPlane tier, and the scanner's own identity, that a principal of another tenant (a ForeignGroup such as a CSP partner's admin agents, or a principal of a subscription delegated here through Azure Lighthouse) can act as through an Azure role over the identity's host or the user-assigned identity",
    severity: "critical for a ControlPlane identity; high for a ManagementPlane identity and for the scanner",
    severities: &[Severity::Critical, Severity::High],
    rationale: "A foreign group (a CSP partner's admin agents) or a managing tenant's principals can hold Azure roles in this tenant's subscriptions. Whoever among them can run code in a privileged managed identity's host holds that identity's rights in this directory, while their sign-in, MFA, Conditional Access and lifecycle are governed by the other tenant. This tenant can neither see nor revoke their credentials: the trust boundary of a Tier-0 identity then includes another organisation.",
    remediation: "Remove the foreign principal's control (the Lighthouse authorization or the role assignment named in the evidence), or move the privileged identity's host to a subscription that is not delegated; keep Lighthouse authorizations away from scopes that host privileged identities.",
    references: &[
        "Securing managed identities in Microsoft Entra ID: who can use the resource can use the identity",
        "Azure Lighthouse: recommended security practices (least privilege for managing tenants, eligible authorizations)",
        "Microsoft cloud security benchmark PA-1: separate and limit highly privileged users",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: cross_tenant_control,
};

fn cross_tenant_control(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &CROSS_TENANT_CONTROL;
    let Some(azure) = view.azure.filter(|a| a.has_foreign_principals()) else {
        return Vec::new();
    };
    let scanner = view.snapshot.scanner.object_id.as_deref();
    let mut out = Vec::new();
    for subject in &view.identities {
        let is_scanner = scanner.is_some_and(|s| s.eq_ignore_ascii_case(&subject.id));
        let tier = subject.tier();
        let severity = match tier {
            Some(Tier::ControlPlane) => Severity::Critical,
            Some(Tier::ManagementPlane) => Severity::High,
            _ if is_scanner => Severity::High,
            _ => continue,
        };
        let actors = view.paths().actors(&subject.id);
        // Foreign actors rank first among the most dangerous, so the listed ones hold them all
        // unless more than the listed number are foreign.
        let foreign: Vec<&Actor> = actors
            .first
            .iter()
            .filter(|a| a.principal.kind == NodeKind::ForeignPrincipal)
            .collect();
        if foreign.is_empty() {
            continue;
        }
        let mut tenants: Vec<String> = foreign
            .iter()
            .flat_map(|a| azure.other_tenants_of_scope(&a.control.scope))
            .collect();
        tenants.sort();
        tenants.dedup();
        let listed: Vec<serde_json::Value> = foreign
            .iter()
            .map(|a| {
                json!({
                    "principal": a.principal,
                    "role": a.control.role_name,
                    "scope": a.control.scope,
                    "assignmentId": a.control.assignment_id,
                    "action": a.control.action,
                    "otherTenants": azure.other_tenants_of_scope(&a.control.scope),
                })
            })
            .collect();
        let first = foreign[0];
        // Every listed actor is foreign and more actors exist: there may be more foreign ones.
        let at_least = foreign.len() == actors.first.len() && actors.count > actors.first.len();
        let steps: Vec<String> = foreign
            .iter()
            .map(|a| {
                let delete = format!(
                    "delete the role assignment: az role assignment delete --ids {}",
                    crate::model::shell_quote(&a.control.assignment_id)
                );
                let lighthouse = crate::snapshot::azure::subscription_of_scope(&a.control.scope)
                    .filter(|_| !azure.other_tenants_of_scope(&a.control.scope).is_empty())
                    .map(|subscription| {
                        format!(
                            "; then review the subscription's Lighthouse delegations: az managedservices assignment list --subscription {subscription} --include-definition true"
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "{} ({} over {}): {delete}{lighthouse}",
                    a.principal.name.as_deref().unwrap_or(&a.principal.id),
                    a.control.role_name,
                    a.control.scope,
                )
            })
            .collect();
        out.push(rule.finding(
            severity,
            subject,
            "actors",
            format!(
                "{}{} principal{} of another tenant{} can run code as the {} identity {}: {} through {} over {}",
                if at_least { "at least " } else { "" },
                foreign.len(),
                if foreign.len() == 1 { "" } else { "s" },
                if tenants.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", tenants.join(", "))
                },
                tier.map(Tier::as_str).unwrap_or("scanner"),
                subject.display_name,
                first.principal.name.as_deref().unwrap_or(&first.principal.id),
                first.control.role_name,
                first.control.scope
            ),
            json!({
                "identityTier": tier,
                "isScanner": is_scanner,
                "otherTenants": tenants,
                "foreignActors": listed,
                "foreignActorsMayBeMore": at_least,
                "actorCount": actors.count,
            }),
            format!(
                "Remove each foreign principal's control (a ForeignGroup is often a CSP partner's admin agents: end the partner's delegated access too if it is no longer needed). {}",
                steps.join(". ")
            ),
        ));
    }
    out
}

fn actor_remediation(actors: &[Actor]) -> String {
    let mut steps: Vec<String> = actors
        .iter()
        .map(|a| {
            format!(
                "{} ({}): az role assignment delete --ids {} (or narrow {} so it no longer covers the host)",
                a.principal.name.as_deref().unwrap_or(&a.principal.id),
                a.control.role_name,
                crate::model::shell_quote(&a.control.assignment_id),
                a.control.role_name
            )
        })
        .collect();
    steps.dedup();
    format!(
        "Remove the control of each actor that should not have it: {}",
        steps.join("; ")
    )
}

/// MI-AZ-004.
pub(super) const BROAD_WRITE_ROLE: Rule = Rule {
    id: "MI-AZ-004",
    title: "Managed identity holds a broad write role at subscription or management-group scope",
    applies_to: "managed identities holding, directly or through a group, a role that can write resources of every provider (Contributor, or any role with * or */write) at subscription, management-group or root scope, and that cannot itself grant access (MI-AZ-001 and MI-AZ-002 cover those)",
    severity: "high",
    severities: &[Severity::High],
    rationale: "Write over every resource in a subscription is code execution on every VM, app, runbook and workflow in it, and with that the power of every managed identity they run as. An identity with that reach is Tier-0 in practice even when no single grant looks privileged, and whoever controls its host inherits it all.",
    remediation: "Delete the assignment (az role assignment delete --ids <assignment id>) or remove the identity from the group that holds it, and grant a role with only the actions the workload uses, at the resource group it works in.",
    references: &[
        "Azure built-in roles: Contributor (learn.microsoft.com/azure/role-based-access-control/built-in-roles/privileged)",
        "emiliensocchi/azure-tiering: Contributor over a subscription is Tier 0 when it holds Tier-0 hosts",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: broad_write_role,
};

fn broad_write_role(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &BROAD_WRITE_ROLE;
    let Some(index) = &view.azure else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in &view.identities {
        for role in subject.azure_roles.iter().flatten() {
            if !matches!(
                role.scope_kind,
                ScopeKind::Subscription | ScopeKind::ManagementGroup | ScopeKind::Root
            ) {
                continue;
            }
            let broad = match index.definition(&role.role_definition_id) {
                Some(d) if !d.permissions.is_empty() => {
                    d.allows(ANY_PROVIDER_WRITE) && !d.allows(ROLE_ASSIGNMENT_WRITE)
                }
                _ => role.role_guid() == crate::resolve::azure::CONTRIBUTOR,
            };
            if !broad {
                continue;
            }
            // The count, and the most privileged identities reached (controls built for
            // those only).
            let (count, reached) =
                view.paths()
                    .controlled_by_listed(&role.assignment_id, &subject.id, ACTORS_LISTED);
            let identities: Vec<serde_json::Value> = reached
                .iter()
                .map(|(id, control)| {
                    let node = view.paths().subject(id);
                    json!({
                        "id": id,
                        "name": node.map(|n| n.name.clone()),
                        "tier": node.and_then(|n| n.tier),
                        "via": control.route,
                        "action": control.action,
                    })
                })
                .collect();
            out.push(rule.finding(
                Severity::High,
                subject,
                &format!(
                    "{}:{}",
                    role.assignment_id,
                    role.via_group.as_ref().map(|g| g.id.as_str()).unwrap_or("direct")
                ),
                format!(
                    "{} holds {} over {}{}: it can change any resource there and run code as {count} other identit{}",
                    subject.display_name,
                    role.role_name,
                    super::azure::describe_scope(index, &role.scope),
                    super::azure::via_text(role),
                    if count == 1 { "y" } else { "ies" }
                ),
                json!({
                    "role": super::azure::role_evidence(index, role),
                    "reachableIdentityCount": count,
                    "reachableIdentities": identities,
                }),
                format!(
                    "{}. Then grant a role with only the actions the workload uses, at the resource group it works in.",
                    super::azure::remove_azure_role(view, subject, role)
                ),
            ));
        }
    }
    out
}

/// MI-OWN-001.
pub(super) const OWNS_MORE_PRIVILEGED: Rule = Rule {
    id: "MI-OWN-001",
    title: "Managed identity owns an application, service principal or group more privileged than itself",
    applies_to: "managed identities that own an application registration, a service principal or a group whose privileges (its Graph permissions, directory roles and Azure roles, or its own path to Tier-0) exceed the identity's own",
    severity: "critical when the owned object has a critical path to Tier-0 (or is Tier-0 itself); high when it has a high path or is ControlPlane; medium when it is ManagementPlane above the owner",
    severities: &[Severity::Critical, Severity::High, Severity::Medium],
    rationale: "An owner of an application or service principal can add a secret to it and sign in as it; an owner of a group can add any member, itself included. Owning an object is as good as holding its privileges, yet the owner's own grants do not show them. A managed identity that owns something more privileged than itself hands those privileges to whoever runs code in its host.",
    remediation: "Remove the identity as an owner (DELETE /applications/{id}/owners/{ownerId}/$ref, /servicePrincipals/{id}/owners/{ownerId}/$ref or /groups/{id}/owners/{ownerId}/$ref); if automation must manage the object, give it the narrowest permission for that job instead of ownership.",
    references: &[
        "Microsoft Graph: application and service principal owners can manage credentials (learn.microsoft.com/graph/api/application-post-owners)",
        "Maester MT.1077, MT.1078 (owners of privileged applications)",
        "BloodHound CE edges AZOwns, AZAddSecret, AZAddMembers",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: owns_more_privileged,
};

fn owns_more_privileged(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &OWNS_MORE_PRIVILEGED;
    let paths = view.paths();
    let mut out = Vec::new();
    for subject in &view.identities {
        let own_tier = subject.tier();
        for (owned, node) in paths.owned_by(&subject.id) {
            let path = paths.path_to_tier0(&node.id);
            let severity = match (&path, node.tier) {
                (Some(p), _) if p.severity == Severity::Critical => Severity::Critical,
                (Some(_), _) | (None, Some(Tier::ControlPlane)) => Severity::High,
                (None, Some(Tier::ManagementPlane)) => Severity::Medium,
                _ => continue,
            };
            if path.is_none() && node.tier <= own_tier {
                continue;
            }
            let holds = path
                .as_ref()
                .map(|p| p.target.description.clone())
                .unwrap_or_else(|| {
                    format!("{} privileges", node.tier.map(Tier::as_str).unwrap_or("no"))
                });
            let name = owned
                .object_name
                .clone()
                .unwrap_or_else(|| owned.object_id.clone());
            out.push(rule.finding(
                severity,
                subject,
                &owned.object_id,
                format!(
                    "{} owns the {} {}, which {}: {}",
                    subject.display_name,
                    owned.object_kind,
                    name,
                    if path.as_ref().is_some_and(|p| p.is_escalation()) {
                        "reaches"
                    } else {
                        "holds"
                    },
                    holds
                ),
                json!({
                    "ownedObject": {
                        "id": owned.object_id,
                        "kind": owned.object_kind,
                        "name": owned.object_name,
                    },
                    "gives": {
                        "id": node.id,
                        "name": node.name,
                        "kind": node.node_kind,
                        "tier": node.tier,
                        "holdsCredentials": node.holds_credentials,
                    },
                    "means": owned.means(),
                    "ownerTier": own_tier,
                    "ownedPathToTier0": path,
                }),
                format!(
                    "Remove {} as an owner of the {} {}: {}",
                    subject.display_name,
                    owned.object_kind,
                    name,
                    super::az_rest("DELETE", view.graph(), &owned.owner_ref_path())
                ),
            ));
        }
    }
    out
}
