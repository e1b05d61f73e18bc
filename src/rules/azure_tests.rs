//! Table tests of the Azure-plane rules (MI-AZ-*, MI-ORPH-*, MI-FIC-*): small snapshots built in
//! the style of `tests.rs`, positive and negative cases per rule.

use serde_json::json;

use super::tests::{GROUP, MI, TENANT, empty, fired, group, managed_identity, role_id};
use super::*;
use crate::assess::assess;
use crate::resolve::azure::{
    CONTRIBUTOR, MANAGED_IDENTITY_OPERATOR, OWNER, RBAC_ADMINISTRATOR, USER_ACCESS_ADMINISTRATOR,
};
use crate::snapshot::azure::{
    AzureSnapshot, FederatedCredential, FederatedCredentialsResult, IdentityFederatedCredentials,
    IdentityResourceRow, ManagementGroupRef, PrincipalLookup, RoleAssignmentRow, RoleDefinitionRow,
    RolePermission, SubscriptionRow, UserAssignedIdentityRow,
};
use crate::snapshot::graph::{AppRoleAssignment, DirectoryObject, ServicePrincipal};
use crate::snapshot::{Dataset, PrincipalData, TenantSnapshot};

/// The subscription every test resource lives in (`managed_identity` uses it too).
pub(super) const SUB: &str = "s";
pub(super) const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const TARGET: &str = "33333333-0000-4000-8000-000000000002";
const HOST_MI: &str = "33333333-0000-4000-8000-000000000003";
const SECOND: &str = "33333333-0000-4000-8000-000000000004";
const THIRD: &str = "33333333-0000-4000-8000-000000000005";
const DELETED: &str = "66666666-0000-4000-8000-000000000001";
const EXISTING: &str = "66666666-0000-4000-8000-000000000002";
pub(super) const CUSTOM: &str = "77777777-0000-4000-8000-000000000001";
const GITHUB: &str = "https://token.actions.githubusercontent.com";

pub(super) fn uami_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

pub(super) fn builtin(
    guid: &str,
    name: &str,
    actions: &[&str],
    not_actions: &[&str],
) -> RoleDefinitionRow {
    RoleDefinitionRow {
        id: format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        role_name: Some(name.into()),
        role_type: Some("BuiltInRole".into()),
        permissions: vec![RolePermission {
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            not_actions: not_actions.iter().map(|a| (*a).to_owned()).collect(),
            ..Default::default()
        }],
        assignable_scopes: vec!["/".into()],
    }
}

pub(super) fn custom(actions: &[&str], not_actions: &[&str]) -> RoleDefinitionRow {
    RoleDefinitionRow {
        id: format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CUSTOM}"
        ),
        role_name: Some("Contoso Custom".into()),
        role_type: Some("CustomRole".into()),
        ..builtin(CUSTOM, "", actions, not_actions)
    }
}

/// A snapshot with one readable subscription (under management group `mg1`), the usual
/// built-in role definitions, and nothing assigned.
pub(super) fn azure_base() -> TenantSnapshot {
    let mut s = empty();
    s.azure = Dataset::Collected {
        items: AzureSnapshot {
            arm_endpoint: "https://management.azure.com".into(),
            subscriptions: vec![SubscriptionRow {
                id: format!("/subscriptions/{SUB}"),
                subscription_id: SUB.into(),
                name: Some("sub-test".into()),
                state: Some("Enabled".into()),
                management_group_ancestors_chain: vec![
                    ManagementGroupRef {
                        name: "mg1".into(),
                        display_name: None,
                    },
                    ManagementGroupRef {
                        name: TENANT.into(),
                        display_name: Some("Tenant Root Group".into()),
                    },
                ],
                ..Default::default()
            }],
            role_definitions: vec![
                builtin(OWNER, "Owner", &["*"], &[]),
                builtin(
                    CONTRIBUTOR,
                    "Contributor",
                    &["*"],
                    &[
                        "Microsoft.Authorization/*/Write",
                        "Microsoft.Authorization/*/Delete",
                    ],
                ),
                builtin(
                    USER_ACCESS_ADMINISTRATOR,
                    "User Access Administrator",
                    &["*/read", "Microsoft.Authorization/*"],
                    &[],
                ),
                builtin(
                    RBAC_ADMINISTRATOR,
                    "Role Based Access Control Administrator",
                    &["Microsoft.Authorization/roleAssignments/write", "*/read"],
                    &[],
                ),
                builtin(
                    MANAGED_IDENTITY_OPERATOR,
                    "Managed Identity Operator",
                    &[
                        "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
                        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
                    ],
                    &[],
                ),
                builtin(READER, "Reader", &["*/read"], &[]),
            ],
            principal_lookup: Dataset::Collected {
                items: PrincipalLookup::default(),
            },
            ..Default::default()
        },
    };
    s
}

pub(super) fn azure(s: &mut TenantSnapshot) -> &mut AzureSnapshot {
    match &mut s.azure {
        Dataset::Collected { items } => items,
        _ => panic!("the test snapshot has Azure data"),
    }
}

/// Adds a user-assigned identity (Graph service principal and ARM resource) with Graph app roles.
pub(super) fn add_uami(s: &mut TenantSnapshot, id: &str, name: &str, permissions: &[&str]) {
    s.managed_identities.push(managed_identity(id, name, true));
    let assignments = permissions
        .iter()
        .enumerate()
        .map(|(i, p)| AppRoleAssignment {
            id: format!("{name}-assignment-{i}"),
            app_role_id: role_id(p).into(),
            principal_id: id.into(),
            resource_id: super::tests::GRAPH_SP.into(),
            resource_display_name: Some("Microsoft Graph".into()),
            created_date_time: None,
        })
        .collect();
    s.principals.insert(
        id.into(),
        PrincipalData {
            app_role_assignments: Dataset::Collected { items: assignments },
            memberships: Dataset::Collected { items: Vec::new() },
        },
    );
    azure(s)
        .user_assigned_identities
        .push(UserAssignedIdentityRow {
            id: uami_id(name),
            name: name.into(),
            subscription_id: Some(SUB.into()),
            resource_group: Some("rg".into()),
            location: Some("westeurope".into()),
            principal_id: Some(id.into()),
            client_id: Some(format!("client-{name}")),
            ..Default::default()
        });
    azure(s)
        .federated_credentials
        .push(IdentityFederatedCredentials {
            identity_id: uami_id(name),
            result: FederatedCredentialsResult::Listed {
                credentials: Vec::new(),
            },
        });
}

/// Attaches a user-assigned identity to a web app, so it is in use.
fn attach(s: &mut TenantSnapshot, name: &str) {
    azure(s).identity_resources.push(IdentityResourceRow {
        id: format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app-{name}"
        ),
        resource_type: Some("microsoft.web/sites".into()),
        identity_type: Some("UserAssigned".into()),
        user_assigned_identities: Some(
            [(uami_id(name).to_uppercase(), json!({}))]
                .into_iter()
                .collect(),
        ),
        ..Default::default()
    });
}

pub(super) fn assign(
    s: &mut TenantSnapshot,
    principal: &str,
    kind: &str,
    role: &str,
    scope: &str,
) -> String {
    let a = azure(s);
    let id = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/ra-{}",
        scope.trim_end_matches('/'),
        a.role_assignments.len()
    );
    a.role_assignments.push(RoleAssignmentRow {
        id: id.clone(),
        scope: scope.into(),
        principal_id: principal.into(),
        principal_type: Some(kind.into()),
        role_definition_id: format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        ),
        ..Default::default()
    });
    id
}

fn credential(s: &mut TenantSnapshot, name: &str, issuer: &str, subject: &str) {
    let entry = azure(s)
        .federated_credentials
        .iter_mut()
        .find(|f| f.identity_id == uami_id(name))
        .expect("identity added first");
    if let FederatedCredentialsResult::Listed { credentials } = &mut entry.result {
        let n = credentials.len();
        credentials.push(FederatedCredential {
            id: format!("{}/federatedIdentityCredentials/fic-{n}", uami_id(name)),
            name: format!("fic-{n}"),
            issuer: issuer.into(),
            subject: Some(subject.into()),
            audiences: vec!["api://AzureADTokenExchange".into()],
            claims_matching_expression: None,
        });
    }
}

/// One user-assigned identity under test (`MI`, "id-under-test"), attached to a resource.
fn with_mi(permissions: &[&str]) -> TenantSnapshot {
    let mut s = azure_base();
    add_uami(&mut s, MI, "id-under-test", permissions);
    attach(&mut s, "id-under-test");
    s
}

fn finding<'a>(findings: &'a [Finding], rule: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.rule_id == rule)
        .unwrap_or_else(|| panic!("{rule} fired: {findings:?}"))
}

#[test]
fn privileged_rbac_severity_follows_the_scope() {
    let mg = "/providers/Microsoft.Management/managementGroups/mg1";
    let sub = format!("/subscriptions/{SUB}");
    let rg = format!("/subscriptions/{SUB}/resourceGroups/rg");
    let cases: Vec<(&str, &str, String, Vec<Severity>)> = vec![
        (
            "Owner at a management group",
            OWNER,
            mg.to_owned(),
            vec![Severity::Critical],
        ),
        (
            "UAA at the root",
            USER_ACCESS_ADMINISTRATOR,
            "/".to_owned(),
            vec![Severity::Critical],
        ),
        (
            "RBAC admin at a subscription",
            RBAC_ADMINISTRATOR,
            sub.clone(),
            vec![Severity::High],
        ),
        ("Owner at a resource group", OWNER, rg, vec![]),
        (
            "Contributor at a management group",
            CONTRIBUTOR,
            mg.to_owned(),
            vec![],
        ),
        ("Reader at a subscription", READER, sub, vec![]),
    ];
    for (label, role, scope, expected) in cases {
        let mut s = with_mi(&[]);
        assign(&mut s, MI, "ServicePrincipal", role, &scope);
        assert_eq!(fired(&s, "MI-AZ-001"), expected, "{label}");
    }
    // Someone else's role, and unknown Azure data: nothing.
    let mut s = with_mi(&[]);
    assign(&mut s, "someone-else", "ServicePrincipal", OWNER, "/");
    assert!(fired(&s, "MI-AZ-001").is_empty());
    let mut unknown = with_mi(&[]);
    assign(&mut unknown, MI, "ServicePrincipal", OWNER, "/");
    unknown.azure = crate::snapshot::azure::not_collected("403");
    assert!(fired(&unknown, "MI-AZ-001").is_empty());
}

#[test]
fn privileged_rbac_through_a_group_names_the_group_and_the_exact_calls() {
    let mut s = with_mi(&[]);
    if let Some(p) = s.principals.get_mut(MI) {
        p.memberships = Dataset::Collected {
            items: vec![group(GROUP, false)],
        };
    }
    let assignment = assign(
        &mut s,
        GROUP,
        "Group",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    );
    let a = assess(&s);
    let f = finding(&a.findings, "MI-AZ-001");
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.evidence["viaGroup"]["id"], GROUP);
    assert_eq!(f.evidence["scopeKind"], "subscription");
    assert!(f.title.contains("sub-test"), "{}", f.title);
    assert!(
        f.remediation
            .contains(&format!("az role assignment delete --ids '{assignment}'"))
    );
    assert!(
        f.remediation
            .contains(&format!("/groups/{GROUP}/members/{MI}/$ref"))
    );
    // The identity record lists the role with its path and takes its tier.
    let record = &a.identities[0];
    let roles = record.azure_role_assignments.as_ref().expect("known");
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].role_name, "Owner");
    assert_eq!(
        roles[0].via_group.as_ref().map(|g| g.id.as_str()),
        Some(GROUP)
    );
    assert_eq!(record.tier, Some(crate::classification::Tier::ControlPlane));
}

#[test]
fn custom_roles_that_can_grant_access_are_high() {
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], Vec<Severity>);
    let cases: [Case<'_>; 5] = [
        (
            "explicit",
            &["Microsoft.Authorization/roleAssignments/write"],
            &[],
            vec![Severity::High],
        ),
        ("*/write", &["*/read", "*/write"], &[], vec![Severity::High]),
        (
            "* minus authorization writes",
            &["*"],
            &["Microsoft.Authorization/*/Write"],
            vec![],
        ),
        ("read only", &["*/read"], &[], vec![]),
        ("web apps only", &["Microsoft.Web/sites/*"], &[], vec![]),
    ];
    for (label, actions, not_actions, expected) in cases {
        let mut s = with_mi(&[]);
        azure(&mut s)
            .role_definitions
            .push(custom(actions, not_actions));
        assign(
            &mut s,
            MI,
            "ServicePrincipal",
            CUSTOM,
            &format!("/subscriptions/{SUB}"),
        );
        assert_eq!(fired(&s, "MI-AZ-002"), expected, "{label}");
    }
    // A built-in role with the same rights is MI-AZ-001's business, not this rule's.
    let mut owner = with_mi(&[]);
    assign(
        &mut owner,
        MI,
        "ServicePrincipal",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    );
    assert!(fired(&owner, "MI-AZ-002").is_empty());

    let mut s = with_mi(&[]);
    azure(&mut s).role_definitions.push(custom(&["*"], &[]));
    assign(
        &mut s,
        MI,
        "ServicePrincipal",
        CUSTOM,
        &format!("/subscriptions/{SUB}"),
    );
    let a = assess(&s);
    let f = finding(&a.findings, "MI-AZ-002");
    assert_eq!(f.evidence["grantingActions"], json!(["*"]));
    assert!(f.remediation.contains("az role definition update"));
    assert_eq!(f.tier, Some(crate::classification::Tier::ControlPlane));
}

/// `MI` holds `role` over `scope`; `TARGET` is a user-assigned identity with `target_permissions`.
fn control_case(
    role: &str,
    scope: &str,
    holder_permissions: &[&str],
    target_permissions: &[&str],
) -> TenantSnapshot {
    let mut s = azure_base();
    add_uami(&mut s, MI, "id-holder", holder_permissions);
    attach(&mut s, "id-holder");
    add_uami(&mut s, TARGET, "id-target", target_permissions);
    attach(&mut s, "id-target");
    assign(&mut s, MI, "ServicePrincipal", role, scope);
    s
}

#[test]
fn control_over_a_more_privileged_identity_names_both() {
    let rg = format!("/subscriptions/{SUB}/resourceGroups/rg");
    let other_rg = format!("/subscriptions/{SUB}/resourceGroups/rg-other");
    let mg = "/providers/Microsoft.Management/managementGroups/mg1";
    let direct = &["RoleManagement.ReadWrite.Directory"][..];
    let cases: Vec<(&str, TenantSnapshot, Vec<Severity>)> = vec![
        (
            "operator over a ControlPlane target, no compute write anywhere: latent",
            control_case(MANAGED_IDENTITY_OPERATOR, &rg, &[], direct),
            vec![Severity::Medium],
        ),
        (
            "operator over a ControlPlane target, with compute it can write",
            {
                let mut s = control_case(MANAGED_IDENTITY_OPERATOR, &rg, &[], direct);
                assign(&mut s, MI, "ServicePrincipal", CONTRIBUTOR, &other_rg);
                s
            },
            vec![Severity::High],
        ),
        (
            "contributor through the management group",
            control_case(CONTRIBUTOR, mg, &["User.Read.All"], direct),
            vec![Severity::High],
        ),
        (
            "target outside the scope",
            control_case(MANAGED_IDENTITY_OPERATOR, &other_rg, &[], direct),
            vec![],
        ),
        (
            "target no more privileged",
            control_case(
                MANAGED_IDENTITY_OPERATOR,
                &rg,
                &["Mail.Read"],
                &["User.Read.All"],
            ),
            vec![],
        ),
        (
            "holder already ControlPlane",
            control_case(MANAGED_IDENTITY_OPERATOR, &rg, direct, direct),
            vec![],
        ),
        (
            "Reader cannot take over",
            control_case(READER, &rg, &[], direct),
            vec![],
        ),
    ];
    for (label, s, expected) in cases {
        assert_eq!(fired(&s, "MI-AZ-003"), expected, "{label}");
    }
    // A custom role with federated-credential write is control too.
    let mut s = control_case(CUSTOM, &rg, &[], direct);
    azure(&mut s).role_definitions.push(custom(
        &["Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"],
        &[],
    ));
    assert_eq!(fired(&s, "MI-AZ-003"), vec![Severity::High]);

    let s = control_case(MANAGED_IDENTITY_OPERATOR, &rg, &[], direct);
    let a = assess(&s);
    let f = finding(&a.findings, "MI-AZ-003");
    assert_eq!(f.identity_id, MI);
    assert_eq!(f.evidence["holder"]["name"], "id-holder");
    assert_eq!(f.evidence["targetCount"], 1);
    assert_eq!(f.evidence["targets"][0]["name"], "id-target");
    assert_eq!(f.evidence["targets"][0]["tier"], "controlPlane");
    assert_eq!(f.evidence["holder"]["tierWithoutThisControl"], json!(null));
    assert_eq!(f.evidence["canAssignIdentity"], true);
    assert_eq!(f.evidence["canAddFederatedCredential"], false);
    assert_eq!(f.evidence["latent"], true);
    assert_eq!(f.evidence["holderHasComputeWrite"], false);
    assert!(f.title.contains("latent"), "{}", f.title);
    assert!(
        f.title.contains("id-holder") && f.title.contains("id-target"),
        "{}",
        f.title
    );
    assert!(f.remediation.contains("az role assignment delete --ids"));

    // One assignment over several more privileged identities is one finding (one fact): the
    // targets are listed most privileged first, then by name, with their count; identities
    // that do not outrank the holder are left out.
    let mut s = control_case(MANAGED_IDENTITY_OPERATOR, &rg, &[], &["Mail.Read"]);
    add_uami(&mut s, SECOND, "id-second", direct);
    attach(&mut s, "id-second");
    add_uami(&mut s, THIRD, "id-third", &[]);
    attach(&mut s, "id-third");
    let a = assess(&s);
    let found: Vec<&Finding> = a
        .findings
        .iter()
        .filter(|f| f.rule_id == "MI-AZ-003")
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found[0];
    assert_eq!(f.evidence["targetCount"], 2);
    assert_eq!(f.evidence["targets"][0]["name"], "id-second");
    assert_eq!(f.evidence["targets"][0]["tier"], "controlPlane");
    assert_eq!(f.evidence["targets"][1]["name"], "id-target");
    assert!(
        f.title.contains("2 more privileged identities"),
        "{}",
        f.title
    );
}

#[test]
fn unattached_user_assigned_identities_rise_with_their_privileges() {
    let orphan = |permissions: &[&str]| {
        let mut s = azure_base();
        add_uami(&mut s, MI, "id-orphan", permissions);
        s
    };
    let cases: [(&str, &[&str], Vec<Severity>); 4] = [
        ("holds nothing", &[], vec![Severity::Low]),
        ("UserAccess only", &["User.Read.All"], vec![Severity::Low]),
        ("ManagementPlane", &["Mail.Read"], vec![Severity::Medium]),
        (
            "ControlPlane",
            &["RoleManagement.ReadWrite.Directory"],
            vec![Severity::High],
        ),
    ];
    for (label, permissions, expected) in cases {
        assert_eq!(
            fired(&orphan(permissions), "MI-ORPH-001"),
            expected,
            "{label}"
        );
    }
    // Attached (ids compare case-insensitively), federated, or unknown credentials: not flagged.
    assert!(fired(&with_mi(&[]), "MI-ORPH-001").is_empty());
    let mut federated = orphan(&[]);
    credential(
        &mut federated,
        "id-orphan",
        GITHUB,
        "repo:o/r:environment:prod",
    );
    assert!(fired(&federated, "MI-ORPH-001").is_empty());
    let mut failed = orphan(&[]);
    azure(&mut failed).federated_credentials[0].result = FederatedCredentialsResult::Failed {
        http_status: Some(500),
        reason: "boom".into(),
    };
    assert!(fired(&failed, "MI-ORPH-001").is_empty());
    // 405 (federated credentials not supported) means it has none.
    let mut unsupported = orphan(&[]);
    azure(&mut unsupported).federated_credentials[0].result =
        FederatedCredentialsResult::Unavailable {
            http_status: 405,
            reason: "not supported".into(),
        };
    assert_eq!(fired(&unsupported, "MI-ORPH-001"), vec![Severity::Low]);

    let mut s = orphan(&["RoleManagement.ReadWrite.Directory"]);
    let assignment = assign(
        &mut s,
        MI,
        "ServicePrincipal",
        READER,
        &format!("/subscriptions/{SUB}"),
    );
    let a = assess(&s);
    let f = finding(&a.findings, "MI-ORPH-001");
    assert!(f.remediation.contains(&format!(
        "az identity delete --ids '{}'",
        uami_id("id-orphan")
    )));
    assert!(
        f.remediation
            .contains(&format!("az role assignment delete --ids '{assignment}'"))
    );
    assert!(
        f.remediation
            .contains("/appRoleAssignments/id-orphan-assignment-0")
    );
    assert_eq!(f.evidence["attachedResources"], json!([]));
}

fn system_assigned(s: &mut TenantSnapshot, id: &str, resource: &str) {
    s.managed_identities.push(ServicePrincipal {
        id: id.into(),
        app_id: Some("app-host".into()),
        display_name: Some("app-host".into()),
        service_principal_type: Some("ManagedIdentity".into()),
        alternative_names: vec!["isExplicit=False".into(), resource.into()],
        account_enabled: Some(true),
        ..Default::default()
    });
}

#[test]
fn managed_identities_whose_resource_is_gone_are_stale() {
    let site =
        format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Web/sites/app-host");
    let host = |principal: Option<&str>| IdentityResourceRow {
        id: site.to_lowercase(),
        resource_type: Some("microsoft.web/sites".into()),
        identity_type: Some("SystemAssigned".into()),
        principal_id: principal.map(str::to_owned),
        ..Default::default()
    };
    let mut gone = azure_base();
    system_assigned(&mut gone, HOST_MI, &site);
    assert_eq!(fired(&gone, "MI-ORPH-002"), vec![Severity::Medium]);

    let mut present = azure_base();
    system_assigned(&mut present, HOST_MI, &site);
    azure(&mut present)
        .identity_resources
        .push(host(Some(HOST_MI)));
    assert!(fired(&present, "MI-ORPH-002").is_empty());

    let mut replaced = azure_base();
    system_assigned(&mut replaced, HOST_MI, &site);
    azure(&mut replaced)
        .identity_resources
        .push(host(Some(TARGET)));
    let a = assess(&replaced);
    let f = finding(&a.findings, "MI-ORPH-002");
    assert_eq!(f.evidence["reason"], "identityReplaced");
    assert_eq!(f.evidence["currentPrincipalId"], TARGET);

    // Only in readable subscriptions, and never for management-group or policy identities.
    let mut unreadable = azure_base();
    system_assigned(
        &mut unreadable,
        HOST_MI,
        "/subscriptions/other/resourceGroups/rg/providers/Microsoft.Web/sites/x",
    );
    assert!(fired(&unreadable, "MI-ORPH-002").is_empty());
    let mut policy = azure_base();
    system_assigned(
        &mut policy,
        HOST_MI,
        &format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/p"),
    );
    system_assigned(
        &mut policy,
        TARGET,
        "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/policyAssignments/q",
    );
    assert!(fired(&policy, "MI-ORPH-002").is_empty());

    // A user-assigned identity whose resource is gone; ControlPlane makes it high.
    let mut uami = azure_base();
    add_uami(
        &mut uami,
        MI,
        "id-gone",
        &["RoleManagement.ReadWrite.Directory"],
    );
    azure(&mut uami).user_assigned_identities.clear();
    assert_eq!(fired(&uami, "MI-ORPH-002"), vec![Severity::High]);
    assert!(fired(&with_mi(&[]), "MI-ORPH-002").is_empty());
}

#[test]
fn role_assignments_of_deleted_principals_are_orphaned() {
    let mut s = with_mi(&[]);
    let orphan = assign(
        &mut s,
        DELETED,
        "ServicePrincipal",
        CONTRIBUTOR,
        &format!("/subscriptions/{SUB}/resourceGroups/rg"),
    );
    assign(
        &mut s,
        EXISTING,
        "Unknown",
        READER,
        &format!("/subscriptions/{SUB}"),
    );
    azure(&mut s).principal_lookup = Dataset::Collected {
        items: PrincipalLookup {
            checked: vec![DELETED.into(), EXISTING.into()],
            found: vec![DirectoryObject {
                odata_type: Some("#microsoft.graph.servicePrincipal".into()),
                id: EXISTING.to_uppercase(),
                ..Default::default()
            }],
            ..Default::default()
        },
    };
    assert_eq!(fired(&s, "MI-ORPH-003"), vec![Severity::Medium]);
    let a = assess(&s);
    let f = finding(&a.findings, "MI-ORPH-003");
    assert_eq!(f.identity_id, DELETED);
    assert_eq!(f.identity_kind, crate::model::SubjectKind::ServicePrincipal);
    assert_eq!(f.evidence["roleName"], "Contributor");
    assert_eq!(
        f.remediation,
        format!("Delete the assignment: az role assignment delete --ids '{orphan}'")
    );
    // Not checked (or the lookup failed): never assumed deleted.
    azure(&mut s).principal_lookup = Dataset::Unknown {
        reason: "403".into(),
    };
    assert!(fired(&s, "MI-ORPH-003").is_empty());
}

/// The federated-credential rules that fire for one credential on `MI` with `permissions`.
fn fic_rules(permissions: &[&str], issuer: &str, subject: &str) -> Vec<(String, Severity)> {
    let mut s = with_mi(permissions);
    credential(&mut s, "id-under-test", issuer, subject);
    fic_rules_of(&s)
}

fn fic_rules_of(s: &TenantSnapshot) -> Vec<(String, Severity)> {
    let mut out: Vec<(String, Severity)> = assess(s)
        .findings
        .into_iter()
        .filter(|f| f.rule_id.starts_with("MI-FIC-"))
        .map(|f| (f.rule_id, f.severity))
        .collect();
    out.sort();
    out
}

fn rules(expected: &[(&str, Severity)]) -> Vec<(String, Severity)> {
    let mut out: Vec<(String, Severity)> = expected
        .iter()
        .map(|(r, s)| ((*r).to_owned(), *s))
        .collect();
    out.sort();
    out
}

#[test]
fn federated_credentials_are_inventoried_and_judged() {
    let privileged = &["RoleManagement.ReadWrite.Directory"][..];
    let info = ("MI-FIC-001", Severity::Info);
    type Case<'a> = (
        &'a str,
        &'a [&'a str],
        &'a str,
        &'a str,
        Vec<(String, Severity)>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "GitHub environment on a privileged identity",
            privileged,
            GITHUB,
            "repo:contoso/infra:environment:production",
            rules(&[info]),
        ),
        (
            "GitHub pull_request on a privileged identity",
            privileged,
            GITHUB,
            "repo:contoso/infra:pull_request",
            rules(&[info, ("MI-FIC-004", Severity::High)]),
        ),
        (
            "GitHub branch (no environment) on a privileged identity",
            privileged,
            "https://token.actions.githubusercontent.com/",
            "repo:contoso/infra:ref:refs/heads/main",
            rules(&[info, ("MI-FIC-004", Severity::High)]),
        ),
        (
            "GitHub wildcard on a privileged identity",
            privileged,
            GITHUB,
            "repo:contoso/*:environment:prod",
            rules(&[info, ("MI-FIC-004", Severity::High)]),
        ),
        (
            "GitHub pull_request on an unprivileged identity",
            &["User.Read.All"],
            GITHUB,
            "repo:contoso/infra:pull_request",
            rules(&[info]),
        ),
        // Azure Policy's issuer types are allowed by default: GitHub (above), AWS, GCP, and
        // AKS clusters of this tenant.
        (
            "AWS (Cognito) on a privileged identity",
            privileged,
            "https://cognito-identity.amazonaws.com",
            "eu-west-1:1234",
            rules(&[info]),
        ),
        (
            "GCP on a privileged identity",
            privileged,
            "https://accounts.google.com",
            "1234567890",
            rules(&[info]),
        ),
        (
            "an AKS cluster of this tenant, even one not in Resource Graph",
            privileged,
            "https://westeurope.oic.prod-aks.azure.com/11111111-0000-4000-8000-000000000000/key/",
            "system:serviceaccount:ns:sa",
            rules(&[info]),
        ),
        (
            "an AKS cluster of another tenant on a ControlPlane identity",
            privileged,
            "https://westeurope.oic.prod-aks.azure.com/22222222-0000-4000-8000-000000000000/key/",
            "system:serviceaccount:ns:sa",
            rules(&[info, ("MI-FIC-002", Severity::Critical)]),
        ),
        // A well-known SaaS issuer: high on a ControlPlane identity, medium on one that is not
        // privileged.
        (
            "Terraform Cloud on a ControlPlane identity",
            privileged,
            "https://app.terraform.io",
            "organization:contoso:project:p:workspace:w:run_phase:apply",
            rules(&[info, ("MI-FIC-002", Severity::High)]),
        ),
        (
            "Terraform Cloud on an unprivileged identity",
            &[],
            "https://app.terraform.io",
            "organization:contoso:project:p:workspace:w:run_phase:apply",
            rules(&[info, ("MI-FIC-002", Severity::Medium)]),
        ),
        (
            "GitLab on an unprivileged identity",
            &[],
            "https://gitlab.com",
            "project_path:contoso/infra:ref_type:branch:ref:main",
            rules(&[info, ("MI-FIC-002", Severity::Medium)]),
        ),
        (
            "GitLab on a ControlPlane identity",
            privileged,
            "https://gitlab.com",
            "project_path:contoso/infra:ref_type:branch:ref:main",
            rules(&[info, ("MI-FIC-002", Severity::High)]),
        ),
        // An arbitrary domain: critical on a ControlPlane identity, medium otherwise.
        (
            "an unknown issuer on a ControlPlane identity",
            privileged,
            "https://idp.example.net",
            "x",
            rules(&[info, ("MI-FIC-002", Severity::Critical)]),
        ),
        (
            "an unknown issuer on an unprivileged identity",
            &[],
            "https://idp.example.net",
            "x",
            rules(&[info, ("MI-FIC-002", Severity::Medium)]),
        ),
        // Storage-hosted issuers whose account is not in the tenant (outside it or unclaimed):
        // critical whatever the tier.
        (
            "Blob Storage issuer outside the tenant",
            &[],
            "https://attacker.blob.core.windows.net/oidc",
            "x",
            rules(&[info, ("MI-FIC-003", Severity::Critical)]),
        ),
        (
            "static website issuer outside the tenant",
            &[],
            "https://idp.z6.web.core.windows.net",
            "x",
            rules(&[info, ("MI-FIC-003", Severity::Critical)]),
        ),
        (
            "App Service issuer on an unprivileged identity",
            &[],
            "https://idp.azurewebsites.net",
            "x",
            rules(&[info, ("MI-FIC-003", Severity::High)]),
        ),
        (
            "App Service issuer on a ControlPlane identity",
            privileged,
            "https://idp.azurewebsites.net",
            "x",
            rules(&[info, ("MI-FIC-003", Severity::Critical)]),
        ),
        (
            "bare IP issuer on an unprivileged identity",
            &[],
            "https://203.0.113.7/oidc",
            "x",
            rules(&[info, ("MI-FIC-003", Severity::High)]),
        ),
    ];
    for (label, permissions, issuer, subject, expected) in cases {
        assert_eq!(fic_rules(permissions, issuer, subject), expected, "{label}");
    }
}

#[test]
fn the_allowlist_is_configurable_and_includes_aks_issuers() {
    let aks = "https://westeurope.oic.prod-aks.azure.com/tenant/cluster/";
    let mut s = with_mi(&[]);
    credential(
        &mut s,
        "id-under-test",
        "https://westeurope.oic.prod-aks.azure.com/tenant/cluster",
        "system:serviceaccount:ns:sa",
    );
    // A cluster of another tenant (the path's tenant segment), not in Resource Graph: not
    // allowed (medium: the identity holds nothing).
    assert_eq!(
        fic_rules_of(&s),
        rules(&[
            ("MI-FIC-001", Severity::Info),
            ("MI-FIC-002", Severity::Medium)
        ])
    );
    azure(&mut s).identity_resources.push(IdentityResourceRow {
        id: format!("/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks"),
        resource_type: Some("microsoft.containerservice/managedclusters".into()),
        oidc_issuer_url: Some(aks.into()),
        ..Default::default()
    });
    assert_eq!(fic_rules_of(&s), rules(&[("MI-FIC-001", Severity::Info)]));
    let a = assess(&s);
    assert_eq!(
        finding(&a.findings, "MI-FIC-001").evidence["issuerKind"],
        "aksCluster"
    );

    // A configured list replaces the defaults (GitHub is then not allowed).
    let mut configured = with_mi(&[]);
    configured.settings.fic_allowed_issuers = vec!["https://gitlab.example.com".into()];
    credential(
        &mut configured,
        "id-under-test",
        "https://gitlab.example.com/",
        "project_path:x",
    );
    credential(
        &mut configured,
        "id-under-test",
        GITHUB,
        "repo:o/r:environment:e",
    );
    assert_eq!(
        fic_rules_of(&configured),
        rules(&[
            ("MI-FIC-001", Severity::Info),
            ("MI-FIC-001", Severity::Info),
            ("MI-FIC-002", Severity::Medium)
        ])
    );
}

/// A Blob-hosted issuer whose storage account is inside the tenant (the documented setup for
/// self-managed Kubernetes) follows the identity's tier and lists who can write to the
/// account; the same issuer on an account outside the tenant is critical.
#[test]
fn a_blob_issuer_inside_the_tenant_follows_the_tier_and_names_its_writers() {
    use crate::snapshot::azure::StorageAccountRow;
    let account_id = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-k8s/providers/Microsoft.Storage/storageAccounts/k8soidc"
    );
    let issuer = "https://k8soidc.blob.core.windows.net/oidc";
    let cases = [
        (&["RoleManagement.ReadWrite.Directory"][..], Severity::High),
        (&["User.Read.All"][..], Severity::Low),
    ];
    for (permissions, expected) in cases {
        let mut s = with_mi(permissions);
        credential(
            &mut s,
            "id-under-test",
            issuer,
            "system:serviceaccount:ns:sa",
        );
        let outside = fic_rules_of(&s);
        assert!(
            outside.contains(&("MI-FIC-003".to_owned(), Severity::Critical)),
            "{outside:?}"
        );
        let a = azure(&mut s);
        a.issuer_storage_accounts = Dataset::Collected {
            items: vec![StorageAccountRow {
                id: account_id.clone(),
                name: "k8soidc".into(),
                ..Default::default()
            }],
        };
        // A writer over the resource group (Storage Blob Data Contributor), and a reader.
        for (role, n) in [
            ("ba92f5b4-2d11-453d-a403-e96b0029c9fe", 1),
            ("acdd72a7-3385-48ef-bd42-f606fba81ae7", 2),
        ] {
            a.role_assignments.push(RoleAssignmentRow {
                id: format!("/subscriptions/{SUB}/resourceGroups/rg-k8s/providers/Microsoft.Authorization/roleAssignments/{n}"),
                scope: format!("/subscriptions/{SUB}/resourceGroups/rg-k8s"),
                principal_id: format!("00000000-0000-4000-8000-00000000000{n}"),
                principal_type: Some("User".into()),
                role_definition_id: format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                ..Default::default()
            });
        }
        if !a
            .role_definitions
            .iter()
            .any(|d| d.id.ends_with("ba92f5b4-2d11-453d-a403-e96b0029c9fe"))
        {
            a.role_definitions.push(RoleDefinitionRow {
                id: "/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe".into(),
                role_name: Some("Storage Blob Data Contributor".into()),
                permissions: vec![crate::snapshot::azure::RolePermission {
                    data_actions: vec!["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*".into()],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        let assessed = assess(&s);
        let f = finding(&assessed.findings, "MI-FIC-003");
        assert_eq!(f.severity, expected, "{permissions:?}");
        let account = &f.evidence["storageAccount"];
        assert_eq!(account["inTenant"], true);
        assert_eq!(
            account["writerCount"], 1,
            "the reader cannot write: {account}"
        );
        assert_eq!(
            account["writers"][0]["principalId"],
            "00000000-0000-4000-8000-000000000001"
        );
    }
}

#[test]
fn federated_credential_findings_carry_evidence_and_exact_calls() {
    let mut s = with_mi(&["RoleManagement.ReadWrite.Directory"]);
    credential(
        &mut s,
        "id-under-test",
        GITHUB,
        "repo:contoso/infra:pull_request",
    );
    let a = assess(&s);
    let inventory = finding(&a.findings, "MI-FIC-001");
    assert_eq!(inventory.identity_id, MI);
    assert_eq!(inventory.evidence["issuer"], GITHUB);
    assert_eq!(
        inventory.evidence["subject"],
        "repo:contoso/infra:pull_request"
    );
    assert_eq!(
        inventory.evidence["audiences"],
        json!(["api://AzureADTokenExchange"])
    );
    assert_eq!(inventory.evidence["issuerAllowlisted"], true);
    let broad = finding(&a.findings, "MI-FIC-004");
    assert!(
        broad.remediation.contains(
            "az identity federated-credential delete --name 'fic-0' --identity-name 'id-under-test' --resource-group 'rg' --subscription s --yes"
        ),
        "{}",
        broad.remediation
    );
    assert!(
        broad
            .remediation
            .contains("--subject 'repo:contoso/infra:environment:<environment>'")
    );
    assert!(broad.evidence["broadBecause"].as_array().is_some_and(|r| {
        r.iter()
            .any(|x| x.as_str().is_some_and(|x| x.contains("pull_request")))
    }));
    // Failed listings are unknown: no finding either way.
    let mut failed = with_mi(&[]);
    azure(&mut failed).federated_credentials[0].result = FederatedCredentialsResult::Failed {
        http_status: None,
        reason: "timeout".into(),
    };
    assert!(fic_rules_of(&failed).is_empty());
}

#[test]
fn azure_unknown_keeps_records_null_and_rules_quiet() {
    let mut s = with_mi(&["RoleManagement.ReadWrite.Directory"]);
    credential(
        &mut s,
        "id-under-test",
        "https://attacker.blob.core.windows.net/x",
        "x",
    );
    s.azure = crate::snapshot::azure::not_collected("no access");
    let a = assess(&s);
    assert!(a.findings.iter().all(|f| !f.rule_id.starts_with("MI-AZ")
        && !f.rule_id.starts_with("MI-ORPH")
        && !f.rule_id.starts_with("MI-FIC")));
    let record = serde_json::to_value(&a.identities[0]).expect("serialises");
    assert_eq!(record["azureRoleAssignments"], json!(null));
    assert!(
        record["unknown"]
            .as_array()
            .is_some_and(|u| u.iter().any(|x| x == "azureRoleAssignments"))
    );
    // Known and empty is [], not null.
    let known = serde_json::to_value(&assess(&with_mi(&[])).identities[0]).expect("serialises");
    assert_eq!(known["azureRoleAssignments"], json!([]));
}

#[test]
fn azure_finding_ids_are_stable_and_distinct() {
    let mut s = control_case(
        MANAGED_IDENTITY_OPERATOR,
        &format!("/subscriptions/{SUB}"),
        &[],
        &["RoleManagement.ReadWrite.Directory"],
    );
    assign(&mut s, MI, "ServicePrincipal", OWNER, "/");
    credential(&mut s, "id-target", GITHUB, "repo:o/r:pull_request");
    credential(&mut s, "id-target", "https://gitlab.com", "x");
    let first: Vec<String> = assess(&s)
        .findings
        .into_iter()
        .map(|f| f.finding_id)
        .collect();
    let second: Vec<String> = assess(&s)
        .findings
        .into_iter()
        .map(|f| f.finding_id)
        .collect();
    assert_eq!(first, second);
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len());
    assert!(first.len() >= 5);
}

/// A streamed run assesses the tenant a chunk of subjects at a time; whatever the chunk size, the
/// records and findings must be exactly those of the whole-tenant assessment: cross-subject rules
/// (MI-AZ-003 with holder and target in different chunks), tenant-pass rules (MI-ORPH-003,
/// SUPP-001, SELF-001) and stand-ins (a user-assigned identity Graph did not return) included,
/// each finding once.
#[test]
fn chunked_assessment_equals_the_whole_tenant_assessment() {
    let rg = format!("/subscriptions/{SUB}/resourceGroups/rg");
    let mut s = control_case(
        MANAGED_IDENTITY_OPERATOR,
        &rg,
        &[],
        &["RoleManagement.ReadWrite.Directory"],
    );
    // An identity in the ARM data only: no service principal in the snapshot, attached to nothing.
    add_uami(&mut s, HOST_MI, "id-ghost", &[]);
    s.managed_identities.retain(|sp| sp.id != HOST_MI);
    // A deleted principal that still holds a role.
    assign(&mut s, DELETED, "ServicePrincipal", CONTRIBUTOR, &rg);
    azure(&mut s).principal_lookup = Dataset::Collected {
        items: PrincipalLookup {
            checked: vec![DELETED.into()],
            found: Vec::new(),
            ..Default::default()
        },
    };
    // An expired suppression about the target, and the scanner running as the holder with more
    // than its read set.
    s.settings
        .suppressions
        .push(crate::snapshot::suppressions::Suppression {
            rule_id: Some("MI-GRAPH-001".into()),
            identity_id: Some(TARGET.into()),
            display_name: None,
            finding_id: None,
            reason: "accepted last year".into(),
            expires: s.collected_at - time::Duration::days(1),
            approved_by: None,
        });
    s.scanner.object_id = Some(MI.into());
    s.scanner.roles = vec!["Application.ReadWrite.All".into()];

    let whole = assess(&s);
    let fired: std::collections::BTreeSet<&str> =
        whole.findings.iter().map(|f| f.rule_id.as_str()).collect();
    for rule in [
        "MI-AZ-003",
        "MI-ORPH-001",
        "MI-ORPH-003",
        "SUPP-001",
        "SELF-001",
    ] {
        assert!(
            fired.contains(rule),
            "{rule} fires in the test tenant: {fired:?}"
        );
    }
    let mut ids: Vec<&str> = whole
        .findings
        .iter()
        .map(|f| f.finding_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), whole.findings.len(), "each finding once");

    let assessor = crate::assess::Assessor::new(&s);
    for size in [1, 2, 3] {
        let mut chunked = crate::assess::Assessment::default();
        for chunk in assessor.chunks(size) {
            chunked.identities.extend(chunk.identities);
            chunked.findings.extend(chunk.findings);
        }
        assert_eq!(chunked, whole, "chunks of {size}");
    }
}
