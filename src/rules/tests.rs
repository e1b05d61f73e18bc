//! Table tests per rule: small snapshots, positive and negative cases.

use std::collections::BTreeMap;

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::assess::{Assessor, assess};
use crate::snapshot::graph::{
    AppRole, AppRoleAssignment, Credential, DirectoryObject, OAuth2PermissionGrant,
    ResourceServicePrincipal, RoleAssignment, RoleDefinition, ServicePrincipal,
};
use crate::snapshot::{
    AssessmentSettings, CollectionGap, CredentialServicePrincipal, Dataset, DatasetName,
    PrincipalData, ScannerIdentity, TenantSnapshot,
};

pub(super) const TENANT: &str = "11111111-0000-4000-8000-000000000000";
pub(super) const GRAPH_SP: &str = "22222222-0000-4000-8000-000000000000";
const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
const EXO_SP: &str = "22222222-0000-4000-8000-000000000001";
const EXO_APP: &str = "00000002-0000-0ff1-ce00-000000000000";
pub(super) const MI: &str = "33333333-0000-4000-8000-000000000001";
pub(super) const GROUP: &str = "44444444-0000-4000-8000-000000000001";
const SP: &str = "55555555-0000-4000-8000-000000000001";
const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";

fn graph_roles() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "RoleManagement.ReadWrite.Directory",
            "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
        ),
        (
            "Group.ReadWrite.All",
            "62a82d76-70ea-41e2-9197-370581804d09",
        ),
        ("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
        ("Sites.Selected", "883ea226-0bf2-4a8f-9f9d-92c9162a727d"),
        ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"),
        (
            "Application.Read.All",
            "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
        ),
        ("AuditLog.Read.All", "b0afded3-3588-46d8-8b3d-9842eff778da"),
        (
            "Application.ReadWrite.All",
            "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        ),
    ]
}

pub(super) fn role_id(name: &str) -> &'static str {
    graph_roles()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| id)
        .expect("known test role")
}

pub(super) fn managed_identity(id: &str, name: &str, enabled: bool) -> ServicePrincipal {
    ServicePrincipal {
        id: id.into(),
        app_id: Some(format!("app-{name}")),
        display_name: Some(name.into()),
        service_principal_type: Some("ManagedIdentity".into()),
        alternative_names: vec![
            "isExplicit=True".into(),
            format!(
                "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            ),
        ],
        account_enabled: Some(enabled),
        ..Default::default()
    }
}

pub(super) fn empty() -> TenantSnapshot {
    TenantSnapshot {
        schema_version: "1.0.0".into(),
        tenant_id: TENANT.into(),
        collected_at: datetime!(2026-11-27 02:00 UTC),
        graph_endpoint: "https://graph.microsoft.com".into(),
        scanner: ScannerIdentity::default(),
        settings: AssessmentSettings::default(),
        managed_identities: Vec::new(),
        credential_service_principals: Dataset::Collected { items: Vec::new() },
        principals: BTreeMap::new(),
        resources: vec![
            ResourceServicePrincipal {
                id: GRAPH_SP.into(),
                app_id: Some(GRAPH_APP.into()),
                display_name: Some("Microsoft Graph".into()),
                app_roles: graph_roles()
                    .into_iter()
                    .map(|(value, id)| AppRole {
                        id: id.into(),
                        value: Some(value.into()),
                        ..Default::default()
                    })
                    .collect(),
            },
            ResourceServicePrincipal {
                id: EXO_SP.into(),
                app_id: Some(EXO_APP.into()),
                display_name: Some("Office 365 Exchange Online".into()),
                app_roles: vec![AppRole {
                    id: "dc890d15-9560-4a4c-9b7f-a736ec74ec40".into(),
                    value: Some("full_access_as_app".into()),
                    ..Default::default()
                }],
            },
        ],
        role_definitions: Dataset::Collected {
            items: vec![RoleDefinition {
                id: GLOBAL_ADMIN.into(),
                template_id: Some(GLOBAL_ADMIN.into()),
                display_name: Some("Global Administrator".into()),
                is_built_in: Some(true),
                ..Default::default()
            }],
        },
        role_assignments: Dataset::Collected { items: Vec::new() },
        role_eligibility_schedules: Dataset::Collected { items: Vec::new() },
        role_assignment_schedules: Dataset::Collected { items: Vec::new() },
        delegated_grants: Dataset::Collected { items: Vec::new() },
        azure: crate::snapshot::azure::not_collected("not read in this test"),
        usage: None,
        ownership: Dataset::Collected {
            items: Default::default(),
        },
        gaps: Vec::new(),
    }
}

/// A snapshot with one managed identity holding `app_roles` on Graph and member of `groups`.
fn with_identity(
    app_roles: &[&str],
    groups: Vec<DirectoryObject>,
    enabled: bool,
) -> TenantSnapshot {
    let mut snapshot = empty();
    snapshot
        .managed_identities
        .push(managed_identity(MI, "id-under-test", enabled));
    let assignments = app_roles
        .iter()
        .enumerate()
        .map(|(i, name)| AppRoleAssignment {
            id: format!("assignment-{i}"),
            app_role_id: role_id(name).into(),
            principal_id: MI.into(),
            resource_id: GRAPH_SP.into(),
            resource_display_name: Some("Microsoft Graph".into()),
            created_date_time: None,
        })
        .collect();
    snapshot.principals.insert(
        MI.into(),
        PrincipalData {
            app_role_assignments: Dataset::Collected { items: assignments },
            memberships: Dataset::Collected { items: groups },
        },
    );
    snapshot
}

pub(super) fn group(id: &str, role_assignable: bool) -> DirectoryObject {
    DirectoryObject {
        odata_type: Some("#microsoft.graph.group".into()),
        id: id.into(),
        display_name: Some("a group".into()),
        is_assignable_to_role: Some(role_assignable),
        security_enabled: Some(true),
        ..Default::default()
    }
}

fn role(principal: &str, definition: &str, scope: &str) -> RoleAssignment {
    RoleAssignment {
        id: format!("ra-{principal}-{definition}"),
        principal_id: principal.into(),
        role_definition_id: definition.into(),
        directory_scope_id: Some(scope.into()),
        ..Default::default()
    }
}

/// (rule id, severity) pairs of a snapshot's findings.
/// The one finding of `rule_id` in the assessment of `snapshot`.
pub(super) fn finding_of(snapshot: &TenantSnapshot, rule_id: &str) -> Finding {
    assess(snapshot)
        .findings
        .into_iter()
        .find(|f| f.rule_id == rule_id)
        .unwrap_or_else(|| panic!("no {rule_id} finding"))
}

pub(super) fn fired(snapshot: &TenantSnapshot, rule_id: &str) -> Vec<Severity> {
    assess(snapshot)
        .findings
        .iter()
        .filter(|f| f.rule_id == rule_id)
        .map(|f| f.severity)
        .collect()
}

#[test]
fn rule_ids_are_unique_and_well_formed() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "duplicate rule id");
    for rule in RULES {
        assert!(
            rule.id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'),
            "{}",
            rule.id
        );
        assert!(
            !rule.rationale.is_empty() && !rule.remediation.is_empty() && !rule.title.is_empty()
        );
    }
}

#[test]
fn control_plane_permission_severity_depends_on_the_path() {
    let cases: [(&[&str], &[Severity]); 5] = [
        (
            &["RoleManagement.ReadWrite.Directory"],
            &[Severity::Critical],
        ),
        (&["Application.ReadWrite.All"], &[Severity::Critical]),
        (&["Group.ReadWrite.All"], &[Severity::High]),
        (&["User.Read.All", "Mail.Read"], &[]),
        (&[], &[]),
    ];
    for (roles, expected) in cases {
        assert_eq!(
            fired(&with_identity(roles, vec![], true), "MI-GRAPH-001"),
            expected,
            "{roles:?}"
        );
    }
}

#[test]
fn control_plane_finding_names_the_exact_delete_call() {
    let a = assess(&with_identity(
        &["RoleManagement.ReadWrite.Directory"],
        vec![],
        true,
    ));
    let f = a
        .findings
        .iter()
        .find(|f| f.rule_id == "MI-GRAPH-001")
        .expect("finding");
    assert!(f.remediation.contains(&format!(
        "az rest --method DELETE --url 'https://graph.microsoft.com/v1.0/servicePrincipals/{MI}/appRoleAssignments/assignment-0'"
    )));
    assert_eq!(
        f.evidence["permission"],
        "RoleManagement.ReadWrite.Directory"
    );
    assert_eq!(f.evidence["directPathToGlobalAdmin"], true);
    assert_eq!(f.identity_id, MI);
    assert_eq!(f.identity_kind, crate::model::SubjectKind::UserAssigned);
}

#[test]
fn tenant_wide_data_access_names_the_scoped_alternative() {
    assert_eq!(
        fired(&with_identity(&["Mail.Read"], vec![], true), "MI-GRAPH-002"),
        vec![Severity::High]
    );
    assert!(
        fired(
            &with_identity(&["Sites.Selected"], vec![], true),
            "MI-GRAPH-002"
        )
        .is_empty()
    );
    assert!(
        fired(
            &with_identity(&["User.Read.All"], vec![], true),
            "MI-GRAPH-002"
        )
        .is_empty()
    );
    let a = assess(&with_identity(&["Mail.Read"], vec![], true));
    let f = a
        .findings
        .iter()
        .find(|f| f.rule_id == "MI-GRAPH-002")
        .expect("finding");
    assert!(
        f.remediation
            .contains("Exchange Online RBAC for Applications")
    );

    let mut exo = with_identity(&[], vec![], true);
    if let Some(Dataset::Collected { items }) = exo
        .principals
        .get_mut(MI)
        .map(|p| &mut p.app_role_assignments)
    {
        items.push(AppRoleAssignment {
            id: "exo".into(),
            app_role_id: "dc890d15-9560-4a4c-9b7f-a736ec74ec40".into(),
            principal_id: MI.into(),
            resource_id: EXO_SP.into(),
            ..Default::default()
        });
    }
    assert_eq!(fired(&exo, "MI-GRAPH-002"), vec![Severity::High]);
}

#[test]
fn directory_role_severity_follows_state_and_scope() {
    let cases = [
        (
            "active tenant",
            vec![role(MI, GLOBAL_ADMIN, "/")],
            vec![],
            vec![Severity::Critical],
        ),
        (
            "eligible tenant",
            vec![],
            vec![role(MI, GLOBAL_ADMIN, "/")],
            vec![Severity::High],
        ),
        (
            "active AU",
            vec![role(MI, GLOBAL_ADMIN, "/administrativeUnits/au1")],
            vec![],
            vec![Severity::Medium],
        ),
        (
            "non-privileged",
            vec![role(MI, DIRECTORY_READERS, "/")],
            vec![],
            vec![Severity::Info],
        ),
        (
            "someone else",
            vec![role("other", GLOBAL_ADMIN, "/")],
            vec![],
            vec![],
        ),
    ];
    for (label, active, eligible, expected) in cases {
        let mut s = with_identity(&[], vec![], true);
        s.role_assignments = Dataset::Collected { items: active };
        s.role_eligibility_schedules = Dataset::Collected { items: eligible };
        assert_eq!(fired(&s, "MI-ROLE-001"), expected, "{label}");
    }
}

#[test]
fn a_role_through_a_group_is_one_finding_naming_the_group() {
    let mut s = with_identity(&[], vec![group(GROUP, true)], true);
    s.role_assignments = Dataset::Collected {
        items: vec![role(GROUP, GLOBAL_ADMIN, "/")],
    };
    assert_eq!(fired(&s, "MI-ROLE-001"), vec![Severity::Critical]);
    // The same group path used to be three findings (MI-ROLE-001, MI-GROUP-001, MI-GROUP-002).
    assert_eq!(fired(&s, "MI-GROUP-001"), vec![]);
    assert_eq!(fired(&s, "MI-GROUP-002"), vec![]);
    let a = assess(&s);
    assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
    let f = &a.findings[0];
    assert!(
        f.remediation
            .contains(&format!("/groups/{GROUP}/members/{MI}/$ref"))
    );
    assert_eq!(f.evidence["group"]["id"], GROUP);
    assert_eq!(f.evidence["group"]["isAssignableToRole"], true);
    assert!(
        f.evidence["tokenCacheNote"]
            .as_str()
            .is_some_and(|n| n.contains("24 hours"))
    );
    // A privileged group that gives no role is still its own finding.
    let s = with_identity(&[], vec![group(GROUP, true)], true);
    assert_eq!(fired(&s, "MI-GROUP-001"), vec![Severity::High]);
}

#[test]
fn privileged_groups_are_role_assignable_role_holding_or_configured() {
    assert_eq!(
        fired(
            &with_identity(&[], vec![group(GROUP, true)], true),
            "MI-GROUP-001"
        ),
        vec![Severity::High]
    );
    assert!(
        fired(
            &with_identity(&[], vec![group(GROUP, false)], true),
            "MI-GROUP-001"
        )
        .is_empty()
    );
    let mut configured = with_identity(&[], vec![group(GROUP, false)], true);
    configured.settings.privileged_group_ids = vec![GROUP.to_uppercase()];
    assert_eq!(fired(&configured, "MI-GROUP-001"), vec![Severity::High]);
    let mut eligible = with_identity(&[], vec![group(GROUP, false)], true);
    eligible.role_eligibility_schedules = Dataset::Collected {
        items: vec![role(GROUP, DIRECTORY_READERS, "/")],
    };
    // A group holding an (eligible) role is privileged; MI-ROLE-001 reports the path, naming it.
    assert!(fired(&eligible, "MI-GROUP-001").is_empty());
    assert_eq!(fired(&eligible, "MI-ROLE-001"), vec![Severity::Info]);
    let a = assess(&eligible);
    let role = a
        .findings
        .iter()
        .find(|f| f.rule_id == "MI-ROLE-001")
        .unwrap();
    assert_eq!(
        role.evidence["group"]["privilegedBecause"][0],
        "holds the eligible directory role Directory Readers"
    );
    // Directory roles and administrative units in memberOf are not groups.
    let mut not_group = group(GROUP, true);
    not_group.odata_type = Some("#microsoft.graph.directoryRole".into());
    assert!(fired(&with_identity(&[], vec![not_group], true), "MI-GROUP-001").is_empty());
}

#[test]
fn delegated_grants_fire_only_for_their_client() {
    let grant = |client: &str| OAuth2PermissionGrant {
        id: format!("grant-{client}"),
        client_id: client.into(),
        consent_type: Some("AllPrincipals".into()),
        principal_id: None,
        resource_id: GRAPH_SP.into(),
        scope: Some("Mail.Send User.Read".into()),
    };
    let mut s = with_identity(&[], vec![], true);
    s.delegated_grants = Dataset::Collected {
        items: vec![grant(MI)],
    };
    // Calibrated: a managed identity has no user sign-in, so a delegated grant is inert.
    assert_eq!(fired(&s, "MI-GRANT-001"), vec![Severity::Low]);
    s.delegated_grants = Dataset::Collected {
        items: vec![grant("someone-else")],
    };
    assert!(fired(&s, "MI-GRANT-001").is_empty());
}

#[test]
fn disabled_identities_with_privileges_are_flagged() {
    assert_eq!(
        fired(
            &with_identity(&["User.Read.All"], vec![], false),
            "MI-HYG-001"
        ),
        vec![Severity::Low]
    );
    assert!(
        fired(
            &with_identity(&["User.Read.All"], vec![], true),
            "MI-HYG-001"
        )
        .is_empty()
    );
    assert!(fired(&with_identity(&[], vec![], false), "MI-HYG-001").is_empty());
}

fn credential_sp(app_role: Option<&str>, credential: Credential) -> TenantSnapshot {
    let mut s = empty();
    let sp = ServicePrincipal {
        id: SP.into(),
        app_id: Some("app-sp".into()),
        display_name: Some("legacy-app".into()),
        service_principal_type: Some("Application".into()),
        app_owner_organization_id: Some(TENANT.into()),
        ..Default::default()
    };
    s.credential_service_principals = Dataset::Collected {
        items: vec![CredentialServicePrincipal {
            service_principal: sp,
            application_id: Some("app-object".into()),
            application_password_credentials: vec![credential],
            application_key_credentials: vec![],
        }],
    };
    let assignments = app_role
        .map(|name| AppRoleAssignment {
            id: "sp-assignment".into(),
            app_role_id: role_id(name).into(),
            principal_id: SP.into(),
            resource_id: GRAPH_SP.into(),
            ..Default::default()
        })
        .into_iter()
        .collect();
    s.principals.insert(
        SP.into(),
        PrincipalData {
            app_role_assignments: Dataset::Collected { items: assignments },
            memberships: Dataset::Collected { items: vec![] },
        },
    );
    s
}

fn secret(start: &str, end: &str) -> Credential {
    Credential {
        key_id: Some("key-1".into()),
        display_name: Some("prod".into()),
        start_date_time: Some(start.into()),
        end_date_time: Some(end.into()),
    }
}

#[test]
fn credential_bearing_service_principals_should_move_to_managed_identities() {
    let fine = secret("2026-06-01T00:00:00Z", "2026-12-01T00:00:00Z");
    assert_eq!(
        fired(
            &credential_sp(Some("RoleManagement.ReadWrite.Directory"), fine.clone()),
            "SP-CRED-001"
        ),
        vec![Severity::Critical]
    );
    assert_eq!(
        fired(
            &credential_sp(Some("User.Read.All"), fine.clone()),
            "SP-CRED-001"
        ),
        vec![Severity::Medium]
    );
    let a = assess(&credential_sp(None, fine));
    let f = a
        .findings
        .iter()
        .find(|f| f.rule_id == "SP-CRED-001")
        .expect("finding");
    for kind in [
        "system-assigned",
        "az identity create",
        "federated-credential create",
    ] {
        assert!(
            f.remediation.contains(kind),
            "remediation names {kind}: {}",
            f.remediation
        );
    }
    assert!(
        f.remediation
            .contains("az ad app credential delete --id app-sp --key-id key-1")
    );
}

#[test]
fn expired_and_long_lived_credentials_are_flagged() {
    let cases = [
        (
            "three years",
            secret("2026-01-01T00:00:00Z", "2029-01-01T00:00:00Z"),
            vec![Severity::Medium],
        ),
        // Calibrated: ScubaGear MS.AAD.5.6 caps secrets at 180 days, not 365.
        (
            "200 days",
            secret("2026-06-01T00:00:00Z", "2026-12-18T00:00:00Z"),
            vec![Severity::Medium],
        ),
        (
            "six months",
            secret("2026-06-01T00:00:00Z", "2026-11-28T00:00:00Z"),
            vec![],
        ),
    ];
    for (label, credential, expected) in cases {
        assert_eq!(
            fired(&credential_sp(None, credential), "SP-CRED-002"),
            expected,
            "{label}"
        );
    }
    // The limits are settings, recorded in the snapshot.
    let mut s = credential_sp(None, secret("2026-06-01T00:00:00Z", "2026-12-18T00:00:00Z"));
    s.settings.max_secret_days = 400;
    assert!(fired(&s, "SP-CRED-002").is_empty());
    // Certificates have their own limit: 365 days by default.
    let certificate = |start: &str, end: &str| {
        let mut s = credential_sp(None, secret("2026-06-01T00:00:00Z", "2026-11-28T00:00:00Z"));
        if let Dataset::Collected { items } = &mut s.credential_service_principals {
            items[0].service_principal.key_credentials.push(Credential {
                key_id: Some("cert-1".into()),
                display_name: Some("prod cert".into()),
                start_date_time: Some(start.into()),
                end_date_time: Some(end.into()),
            });
        }
        fired(&s, "SP-CRED-002")
    };
    assert!(certificate("2026-06-01T00:00:00Z", "2026-12-18T00:00:00Z").is_empty());
    assert_eq!(
        certificate("2026-06-01T00:00:00Z", "2027-07-01T00:00:00Z"),
        vec![Severity::Medium]
    );
}

#[test]
fn a_principal_whose_every_credential_expired_cannot_authenticate() {
    let expired = secret("2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z");
    // Before: medium, "authenticates with 1 credential(s)", plus a low SP-CRED-002.
    let s = credential_sp(Some("RoleManagement.ReadWrite.Directory"), expired.clone());
    let f = finding_of(&s, "SP-CRED-001");
    assert_eq!(f.severity, Severity::Low);
    assert!(f.title.contains("only expired credentials"), "{}", f.title);
    assert!(
        f.remediation.starts_with("Remove the dead credential"),
        "{}",
        f.remediation
    );
    assert!(fired(&s, "SP-CRED-002").is_empty(), "one fact, one finding");
    // An expired credential beside a live one is hygiene of its own, and the live one counts.
    let mut s = credential_sp(None, secret("2026-06-01T00:00:00Z", "2026-11-28T00:00:00Z"));
    if let Dataset::Collected { items } = &mut s.credential_service_principals {
        items[0].application_password_credentials.push(Credential {
            key_id: Some("key-2".into()),
            ..expired
        });
    }
    assert_eq!(fired(&s, "SP-CRED-002"), vec![Severity::Low]);
    let f = finding_of(&s, "SP-CRED-001");
    assert_eq!(f.severity, Severity::Medium);
    assert!(
        f.title.contains("authenticates with 1 credential"),
        "{}",
        f.title
    );
}

#[test]
fn managed_identities_never_get_credential_or_owner_findings() {
    // Even if Graph reported credentials on a managed identity, it is not a credential-bearing SP.
    let mut s = with_identity(&["RoleManagement.ReadWrite.Directory"], vec![], true);
    s.managed_identities[0]
        .password_credentials
        .push(secret("2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"));
    let findings = assess(&s).findings;
    assert!(
        findings.iter().all(|f| !f.rule_id.starts_with("SP-CRED")),
        "{findings:?}"
    );
}

#[test]
fn scanner_self_check_compares_with_the_documented_read_set() {
    let scanner = |roles: &[&str]| {
        let mut s = with_identity(&[], vec![], true);
        s.scanner = ScannerIdentity {
            object_id: Some(MI.into()),
            app_id: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        s
    };
    assert!(
        fired(
            &scanner(&["Application.Read.All", "GroupMember.Read.All"]),
            "SELF-001"
        )
        .is_empty()
    );
    // Calibrated: the severity follows the excess's tier, a read-only one a step lower.
    assert_eq!(
        fired(
            &scanner(&["Application.Read.All", "AuditLog.Read.All"]),
            "SELF-001"
        ),
        vec![Severity::Medium]
    );
    assert_eq!(
        fired(
            &scanner(&[
                "Application.Read.All",
                "AuditLog.Read.All",
                "Mail.ReadWrite"
            ]),
            "SELF-001"
        ),
        vec![Severity::High]
    );
    assert_eq!(
        fired(
            &scanner(&["Application.Read.All", "Application.ReadWrite.All"]),
            "SELF-001"
        ),
        vec![Severity::Critical]
    );
}

#[test]
fn unknown_data_is_not_treated_as_empty() {
    let mut s = with_identity(&["RoleManagement.ReadWrite.Directory"], vec![], true);
    if let Some(p) = s.principals.get_mut(MI) {
        p.memberships = Dataset::Unknown {
            reason: "403".into(),
        };
    }
    s.role_assignments = Dataset::Unknown {
        reason: "403".into(),
    };
    s.gaps.push(CollectionGap {
        dataset: DatasetName::RoleAssignments,
        principals: 0,
        status: Some(403),
        reason: "403".into(),
        needs_permission: Some("RoleManagement.Read.Directory".into()),
        affects_status: true,
        not_applicable: false,
    });
    let assessor = Assessor::new(&s);
    let identity = &assessor
        .resolver()
        .subject(&s.managed_identities[0].id)
        .expect("the identity is assessed");
    assert!(identity.groups.is_none() && identity.directory_roles.is_none());
    assert!(identity.unknown.contains(&DatasetName::Memberships));
    let record = assess(&s).identities.remove(0);
    assert!(record.directory_roles.is_none(), "null, never []");
    assert_eq!(
        serde_json::to_value(&record).expect("serialises")["groups"],
        json!(null)
    );
}

#[test]
fn finding_ids_are_stable_and_distinct() {
    let s = with_identity(
        &["RoleManagement.ReadWrite.Directory", "Group.ReadWrite.All"],
        vec![],
        true,
    );
    let first: Vec<String> = assess(&s)
        .findings
        .iter()
        .map(|f| f.finding_id.clone())
        .collect();
    let second: Vec<String> = assess(&s)
        .findings
        .iter()
        .map(|f| f.finding_id.clone())
        .collect();
    assert_eq!(first, second);
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len());
}

#[test]
fn catalogue_lists_every_rule() {
    let markdown = catalogue_markdown();
    let text = catalogue_text();
    for rule in RULES {
        assert!(markdown.contains(&format!("## {}", rule.id)));
        assert!(text.contains(rule.id));
    }
}

#[test]
fn docs_rules_md_is_generated_from_the_catalogue() {
    let shipped = include_str!("../../docs/rules.md");
    assert!(
        shipped == catalogue_markdown(),
        "docs/rules.md is stale: regenerate it with `cargo run -- rules --markdown > docs/rules.md`"
    );
}
