//! Collection against the Graph simulator: ownership (bulk `$expand`, the 20-item cut read again
//! in full, failures as gaps), the service principals owners control, and the principals of
//! Azure role assignments resolved in bulk.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::arm::{ArmClient, AzurePlane};
use crate::auth::TokenSource;
use crate::config::AzurePlaneMode;
use crate::http::RetryPolicy;
use crate::simulator::{RunningSimulator, SimTenant};

const FUNC_PAYROLL_SYNC: &str = "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01";
const LEGACY_SYNC_APP: &str = "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c02";
const LEGACY_SYNC_SP: &str = "3a4b5c6d-7e8f-4a0b-8c1d-2e3f4a5b6c02";
const TIER0_GROUP: &str = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e01";
const GUEST: &str = "a7b8c9d0-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
const PAYROLL_API_APP: &str = "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c03";
const PAYROLL_API_SP: &str = "5f7c0bd6-0d67-4b8d-9a53-000000000005";

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        max_throttled_retries: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

fn clients(sim: &RunningSimulator, mode: AzurePlaneMode) -> (GraphClient, AzurePlane) {
    let credential = Arc::new(sim.credential());
    let base = sim.graph_endpoint().as_str().trim_end_matches('/');
    let graph = GraphClient::new(
        sim.graph_endpoint().clone(),
        TokenSource::new(credential.clone(), format!("{base}/.default")),
        quick(),
    )
    .expect("graph client");
    let arm = ArmClient::new(
        sim.arm_endpoint().clone(),
        TokenSource::new(credential, format!("{base}/.default")),
        quick(),
    )
    .expect("arm client");
    (graph, AzurePlane::new(mode, arm))
}

async fn collect(tenant: SimTenant, mode: AzurePlaneMode) -> (TenantSnapshot, RunningSimulator) {
    let sim = RunningSimulator::start(tenant).await.expect("simulator");
    let (graph, plane) = clients(&sim, mode);
    let (tenant_id, scanner) = whoami(&graph).await.expect("whoami");
    let snapshot = collect_tenant(
        &graph,
        &plane,
        tenant_id,
        scanner,
        AssessmentSettings::default(),
    )
    .await
    .expect("collected");
    (snapshot, sim)
}

#[tokio::test]
async fn ownership_is_collected_in_bulk_with_owner_types() {
    let (snapshot, sim) = collect(SimTenant::demo().expect("demo"), AzurePlaneMode::Off).await;
    let ownership = snapshot.ownership.known().expect("ownership collected");
    // The managed identity (and a member user) own the legacy-directory-sync application...
    let owners = ownership.owners_of(LEGACY_SYNC_APP);
    assert_eq!(owners.len(), 2, "{owners:?}");
    let mi = owners
        .iter()
        .find(|o| o.id == FUNC_PAYROLL_SYNC)
        .expect("the MI owns it");
    assert!(mi.is_service_principal());
    assert_eq!(
        mi.service_principal_type.as_deref(),
        Some("ManagedIdentity")
    );
    let member = owners.iter().find(|o| o.is_user()).expect("a user owns it");
    assert_eq!(member.user_type.as_deref(), Some("Member"));
    // ... whose service principal is found by appId.
    let app = ownership
        .owned_by(FUNC_PAYROLL_SYNC)
        .map(|o| &o.object)
        .find(|o| o.is_application())
        .expect("owned app");
    let sp = ownership
        .service_principal_of_app(app.app_id.as_deref().expect("appId"))
        .expect("its service principal");
    assert_eq!(sp.id, LEGACY_SYNC_SP);
    // A guest owns the role-assignable group.
    let group = ownership
        .owned
        .iter()
        .find(|o| o.object.id == TIER0_GROUP)
        .expect("owned group");
    assert_eq!(group.object.is_assignable_to_role, Some(true));
    assert!(group.owners.iter().all(|o| o.is_guest() && o.id == GUEST));
    // Nothing without owners is listed, and nothing was read per object.
    assert!(ownership.owned.iter().all(|o| !o.owners.is_empty()));
    let log = sim.request_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("groups?") && l.contains("$expand=owners")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("/owners")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("ownedObjects")), "{log:?}");
    assert!(
        snapshot
            .gaps
            .iter()
            .all(|g| g.dataset == DatasetName::Azure),
        "{:?}",
        snapshot.gaps
    );
}

/// `$expand` returns at most 20 owners and no nextLink: an object with 20 is read again, paged,
/// and its owners are complete.
#[tokio::test]
async fn owners_cut_by_expand_are_read_again_in_full() {
    let mut tenant = SimTenant::demo().expect("demo");
    let many: Vec<String> = (0..25)
        .map(|u| format!("00000000-0000-4000-8000-{u:012x}"))
        .collect();
    for (u, id) in many.iter().enumerate() {
        tenant.users.push(
            serde_json::json!({"id": id, "displayName": format!("user {u}"), "userType": "Member"}),
        );
    }
    tenant.owners.insert(LEGACY_SYNC_APP.into(), many.clone());
    tenant
        .owners
        .insert(TIER0_GROUP.into(), many[..20].to_vec());
    let (snapshot, sim) = collect(tenant, AzurePlaneMode::Off).await;
    let ownership = snapshot.ownership.known().expect("ownership collected");
    assert_eq!(ownership.owners_of(LEGACY_SYNC_APP).len(), 25);
    assert_eq!(ownership.owners_of(TIER0_GROUP).len(), 20);
    let log = sim.request_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("applications/{LEGACY_SYNC_APP}/owners"))),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("groups/{TIER0_GROUP}/owners"))),
        "exactly 20 may be cut too: {log:?}"
    );
}

/// What cannot be read is a gap and unknown ownership, never "nobody owns anything"; the
/// credential-bearing service principals do not depend on the group list.
#[tokio::test]
async fn unreadable_ownership_is_a_gap_and_unknown() {
    let mut tenant = SimTenant::demo().expect("demo");
    tenant.denied.push("groupOwnership".into());
    let (snapshot, _sim) = collect(tenant, AzurePlaneMode::Off).await;
    assert!(snapshot.ownership.is_unknown());
    assert!(snapshot.credential_service_principals.known().is_some());
    let gap = snapshot
        .gaps
        .iter()
        .find(|g| g.dataset == DatasetName::GroupOwnership)
        .expect("a gap");
    assert_eq!(gap.status, Some(403));
    assert_eq!(
        gap.needs_permission.as_deref(),
        Some("GroupMember.Read.All")
    );

    // The per-object read of cut owners failing is unknown too.
    let mut tenant = SimTenant::demo().expect("demo");
    let many: Vec<String> = (0..21)
        .map(|u| format!("00000000-0000-4000-8000-{u:012x}"))
        .collect();
    for id in &many {
        tenant
            .users
            .push(serde_json::json!({"id": id, "userType": "Member"}));
    }
    tenant.owners.insert(LEGACY_SYNC_APP.into(), many);
    let sim = RunningSimulator::start(tenant).await.expect("simulator");
    sim.set_faults(crate::simulator::FaultPlan {
        self_next_link: Some("/owners".into()),
        ..Default::default()
    });
    let (graph, plane) = clients(&sim, AzurePlaneMode::Off);
    let (tenant_id, scanner) = whoami(&graph).await.expect("whoami");
    let snapshot = collect_tenant(&graph, &plane, tenant_id, scanner, Default::default())
        .await
        .expect("collected");
    assert!(snapshot.ownership.is_unknown(), "{:?}", snapshot.ownership);
    assert!(
        snapshot
            .gaps
            .iter()
            .any(|g| g.dataset == DatasetName::Ownership && g.reason.contains("in full")),
        "{:?}",
        snapshot.gaps
    );
}

/// A managed identity that owns an application controls its service principal: that one's app
/// roles and memberships are read too, so the resolve layer knows what the owner can become.
#[tokio::test]
async fn service_principals_controlled_through_ownership_get_principal_data() {
    let mut tenant = SimTenant::demo().expect("demo");
    tenant
        .owners
        .insert(PAYROLL_API_APP.into(), vec![FUNC_PAYROLL_SYNC.into()]);
    let (snapshot, _sim) = collect(tenant, AzurePlaneMode::Off).await;
    let creds = snapshot
        .credential_service_principals
        .known()
        .expect("creds");
    assert!(
        !creds
            .iter()
            .any(|c| c.service_principal.id == PAYROLL_API_SP),
        "payroll-api holds no credential"
    );
    let data = snapshot
        .principals
        .get(PAYROLL_API_SP)
        .expect("principal data of the controlled service principal");
    assert!(data.app_role_assignments.known().is_some());
    let ownership = snapshot.ownership.known().expect("ownership");
    assert!(
        ownership
            .application_service_principals
            .iter()
            .any(|sp| sp.id == PAYROLL_API_SP)
    );
}

/// Every principal of an Azure role assignment is resolved: the user holding Owner is a guest,
/// the group holding Contributor is counted, and the existence check (MI-ORPH-003's input) is
/// unchanged.
#[tokio::test]
async fn azure_role_assignment_principals_are_resolved_in_bulk() {
    let (snapshot, sim) = collect(SimTenant::demo().expect("demo"), AzurePlaneMode::Required).await;
    let azure = snapshot.azure.known().expect("azure");
    let lookup = azure.principal_lookup.known().expect("looked up");
    assert_eq!(lookup.checked.len(), 3, "{:?}", lookup.checked);
    assert!(lookup.is_deleted("e5f0a1b2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"));
    let guest = lookup.object(GUEST).expect("the Owner of sub-finance-prod");
    assert!(guest.is_guest(), "{guest:?}");
    assert_eq!(
        guest.display_name.as_deref(),
        Some("Dana Okafor (Fabrikam)")
    );
    assert!(!lookup.is_deleted(GUEST));
    let operators = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e02";
    assert!(lookup.object(operators).is_some_and(|g| g.is_group()));
    assert_eq!(lookup.member_count(operators), Some(1));
    // One getByIds (with $select: 2 RU) for everything, one count per group, in $batch.
    assert_eq!(sim.get_by_ids_requests(), 1);
    let log = sim.request_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("directoryObjects/getByIds?$select=")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with(&format!("groups/{operators}/transitiveMembers?$count=true"))),
        "{log:?}"
    );
    assert!(snapshot.gaps.is_empty(), "{:?}", snapshot.gaps);
}

/// A lookup that fails leaves every principal unknown, none deleted.
#[tokio::test]
async fn a_failed_lookup_calls_nobody_deleted() {
    let mut tenant = SimTenant::demo().expect("demo");
    tenant.denied.push("directoryObjects".into());
    let (snapshot, _sim) = collect(tenant, AzurePlaneMode::Required).await;
    let azure = snapshot.azure.known().expect("azure");
    assert!(azure.principal_lookup.is_unknown());
    let gap = snapshot
        .gaps
        .iter()
        .find(|g| g.dataset == DatasetName::DirectoryObjects)
        .expect("gap");
    assert_eq!(gap.needs_permission.as_deref(), Some("Directory.Read.All"));
}

/// The single-identity snapshot reads what the identity owns, with each owned object's owners.
#[tokio::test]
async fn one_identity_reads_what_it_owns() {
    let sim = RunningSimulator::start(SimTenant::demo().expect("demo"))
        .await
        .expect("simulator");
    let (graph, _) = clients(&sim, AzurePlaneMode::Off);
    let id = uuid::Uuid::parse_str(FUNC_PAYROLL_SYNC).expect("uuid");
    let snapshot = collect_identity(&graph, id, AssessmentSettings::default())
        .await
        .expect("collected")
        .expect("a managed identity");
    let ownership = snapshot.ownership.known().expect("ownership");
    assert_eq!(ownership.owned.len(), 1);
    assert_eq!(ownership.owners_of(LEGACY_SYNC_APP).len(), 2);
    assert_eq!(
        ownership
            .application_service_principals
            .first()
            .map(|s| s.id.as_str()),
        Some(LEGACY_SYNC_SP)
    );
    assert!(snapshot.principals.contains_key(LEGACY_SYNC_SP));
}

/// `Legacy` service principals hold credentials of their own (often with no owner
/// organisation): they are listed beside `Application` ones and assessed for the move to a
/// managed identity; a foreign app's principal is still left out.
#[tokio::test]
async fn legacy_service_principals_with_secrets_are_listed() {
    const LEGACY_SP: &str = "3a4b5c6d-7e8f-4a0b-8c1d-2e3f4a5b6c07";
    let (snapshot, sim) = collect(SimTenant::demo().expect("demo"), AzurePlaneMode::Off).await;
    let listed = snapshot
        .credential_service_principals
        .known()
        .expect("credential-bearing principals listed");
    let legacy = listed
        .iter()
        .find(|c| c.service_principal.id == LEGACY_SP)
        .expect("the Legacy principal is listed");
    assert!(legacy.service_principal.is_legacy());
    assert!(legacy.service_principal.app_owner_organization_id.is_none());
    assert_eq!(legacy.service_principal.password_credentials.len(), 1);
    assert!(
        legacy.application_id.is_none(),
        "a Legacy principal has no app"
    );
    assert!(
        listed
            .iter()
            .all(|c| c.service_principal.display_name.as_deref()
                != Some("Office 365 Exchange Online")),
        "a foreign app's principal is not this tenant's to move"
    );
    let log = sim.request_log();
    for kind in CREDENTIAL_SERVICE_PRINCIPAL_TYPES {
        assert!(
            log.iter()
                .any(|l| l.contains(&format!("servicePrincipalType%20eq%20%27{kind}%27"))),
            "{kind}: {log:?}"
        );
    }
    let assessed = crate::assess::assess(&snapshot);
    let rules: Vec<&str> = assessed
        .findings
        .iter()
        .filter(|f| f.identity_id == LEGACY_SP)
        .map(|f| f.rule_id.as_str())
        .collect();
    assert!(rules.contains(&"SP-CRED-001"), "{rules:?}");
    assert!(
        rules.contains(&"SP-CRED-002"),
        "a 4,018-day secret: {rules:?}"
    );
}

/// Without a group-read permission Graph answers a principal's transitiveMemberOf with its
/// groups in limited information (type and id, everything else null). A null
/// `isAssignableToRole` is then no "not role-assignable": the memberships of every principal
/// in a group are unknown, one gap names GroupMember.Read.All, and principals in no group
/// keep their (empty) memberships. A 403 on transitiveMemberOf itself names
/// Application.Read.All, its least-privileged permission.
#[tokio::test]
async fn limited_group_information_makes_memberships_unknown() {
    let mut tenant = SimTenant::demo().expect("demo");
    tenant
        .scanner
        .graph_roles
        .retain(|r| !["GroupMember.Read.All", "Directory.Read.All"].contains(&r.as_str()));
    let (snapshot, _sim) = collect(tenant, AzurePlaneMode::Off).await;
    let in_groups: Vec<&String> = snapshot
        .principals
        .iter()
        .filter(|(_, d)| d.memberships.is_unknown())
        .map(|(id, _)| id)
        .collect();
    assert!(!in_groups.is_empty());
    assert!(
        snapshot
            .principals
            .values()
            .any(|d| d.memberships.known().is_some_and(Vec::is_empty)),
        "a principal in no group is unaffected"
    );
    let gap = snapshot
        .gaps
        .iter()
        .find(|g| g.dataset == DatasetName::Memberships)
        .expect("a memberships gap");
    assert_eq!(gap.principals, in_groups.len());
    assert_eq!(gap.needs_permission.as_deref(), Some(GROUP_READ_PERMISSION));
    assert!(gap.affects_status);
    assert!(gap.reason.contains("limited information"), "{}", gap.reason);
    // The assessment reports the memberships as unknown rather than as harmless groups.
    let assessed = crate::assess::assess(&snapshot);
    let logic = assessed
        .identities
        .iter()
        .find(|r| r.display_name.as_deref() == Some("logic-invoice-approval"))
        .expect("record");
    assert!(logic.groups.is_none());
    assert!(logic.unknown.contains(&DatasetName::Memberships));
    assert!(
        !assessed
            .findings
            .iter()
            .any(|f| f.rule_id == "MI-GROUP-001"),
        "no group can be judged from limited information"
    );

    let mut denied = SimTenant::demo().expect("demo");
    denied.denied.push("memberships".into());
    let (snapshot, _sim) = collect(denied, AzurePlaneMode::Off).await;
    let gap = snapshot
        .gaps
        .iter()
        .find(|g| g.dataset == DatasetName::Memberships)
        .expect("a memberships gap");
    assert_eq!(gap.status, Some(403));
    assert_eq!(
        gap.needs_permission.as_deref(),
        Some("Application.Read.All")
    );
}

/// Selecting `keyCredentials` puts a call under a limit of 150 requests per minute per
/// tenant: only the bulk lists (999 per page) select it, never a read of one object, in a
/// full collection or a targeted one.
#[tokio::test]
async fn only_bulk_lists_select_key_credentials() {
    let (_snapshot, full) = collect(SimTenant::demo().expect("demo"), AzurePlaneMode::Off).await;
    let targeted = RunningSimulator::start(SimTenant::demo().expect("demo"))
        .await
        .expect("simulator");
    let (graph, _) = clients(&targeted, AzurePlaneMode::Off);
    let id = uuid::Uuid::parse_str(FUNC_PAYROLL_SYNC).expect("uuid");
    collect_identity(&graph, id, AssessmentSettings::default())
        .await
        .expect("collected")
        .expect("a managed identity");
    let targeted_log = targeted.request_log();
    assert!(
        targeted_log
            .iter()
            .any(|l| l.starts_with(&format!("servicePrincipals/{FUNC_PAYROLL_SYNC}?"))),
        "the identity is read by id: {targeted_log:?}"
    );
    let mut selecting = 0;
    for request in full.request_log().iter().chain(&targeted_log) {
        let (path, query) = request.split_once('?').unwrap_or((request, ""));
        if !query.contains("keyCredentials") {
            continue;
        }
        selecting += 1;
        let is_bulk_list =
            ["servicePrincipals", "applications"].contains(&path) && query.contains("$top=999");
        assert!(is_bulk_list, "{request}");
    }
    assert!(selecting >= 4, "the bulk lists still read credentials");
}

/// Azure Lighthouse: a tenant-scope Resource Graph query also returns subscriptions another
/// tenant delegated to this one, and this tenant's own subscriptions can be managed by another
/// tenant. Their principals are foreign, never deleted; a foreign principal that can run code
/// as a privileged identity is MI-XT-001. Without the subscriptions' tenant data the same
/// principals read as deleted (the test can fail).
#[tokio::test]
async fn lighthouse_principals_are_foreign_never_deleted() {
    const FABRIKAM_SP: &str = "6f5e4d3c-2b1a-4098-8f7e-6d5c4b3a2918";
    const MSP_GROUP: &str = "8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a";
    const HOME: &str = "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50";
    let (snapshot, _sim) =
        collect(SimTenant::demo().expect("demo"), AzurePlaneMode::Required).await;
    let azure = snapshot.azure.known().expect("azure");
    let delegated: Vec<&str> = azure
        .subscriptions
        .iter()
        .filter(|s| s.is_delegated_to(HOME))
        .map(|s| s.subscription_id.as_str())
        .collect();
    assert_eq!(delegated, ["7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"]);
    assert_eq!(azure.delegated_subscriptions(HOME).len(), 1);
    let foreign = azure.foreign_principals(HOME);
    assert!(
        foreign.contains(FABRIKAM_SP) && foreign.contains(MSP_GROUP),
        "{foreign:?}"
    );
    let deleted = azure.deleted_principals(&foreign);
    assert!(!deleted.contains(FABRIKAM_SP) && !deleted.contains(MSP_GROUP));
    assert!(
        !deleted.is_empty(),
        "a really deleted principal is still deleted"
    );

    let assessed = crate::assess::assess(&snapshot);
    let orphans: Vec<&str> = assessed
        .findings
        .iter()
        .filter(|f| f.rule_id == "MI-ORPH-003")
        .map(|f| f.identity_id.as_str())
        .collect();
    assert!(
        !orphans.contains(&FABRIKAM_SP) && !orphans.contains(&MSP_GROUP),
        "{orphans:?}"
    );
    let cross: Vec<&crate::rules::Finding> = assessed
        .findings
        .iter()
        .filter(|f| f.rule_id == "MI-XT-001")
        .collect();
    assert_eq!(cross.len(), 1, "{cross:?}");
    assert_eq!(cross[0].severity, crate::model::Severity::Critical);
    assert_eq!(
        cross[0].evidence["otherTenants"][0],
        "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
    );
    assert_eq!(
        cross[0].evidence["foreignActors"][0]["principal"]["kind"],
        "foreignPrincipal"
    );
    let vm = assessed
        .identities
        .iter()
        .find(|r| r.id == cross[0].identity_id)
        .expect("record");
    assert!(vm.actors.first.iter().any(|a| a.principal.id == MSP_GROUP));

    // The same tenant without the subscriptions' tenant data: both read as deleted.
    let mut blind = snapshot.clone();
    if let crate::snapshot::Dataset::Collected { items } = &mut blind.azure {
        for s in &mut items.subscriptions {
            s.tenant_id = None;
            s.managed_by_tenants.clear();
        }
    }
    let blind = blind.azure.known().expect("azure");
    let blind = blind.deleted_principals(&blind.foreign_principals(HOME));
    assert!(blind.contains(FABRIKAM_SP), "{blind:?}");
}
