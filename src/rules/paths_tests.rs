//! Table tests of the privilege graph and its rules (MI-PATH-001, MI-PATH-002, MI-AZ-004), built
//! from small snapshots: each edge kind, custom roles, wildcards, `notActions`, scopes above and
//! beside a host, group nesting, chains of control; and a property check over generated estates:
//! every hop of every path is backed by evidence in the snapshot, and removing that evidence
//! removes the path.

use serde_json::json;

use super::azure_tests::{
    CUSTOM, READER, SUB, add_uami, assign, azure, azure_base, builtin, uami_id,
};
use super::tests::{GRAPH_SP, finding_of, group, role_id};
use crate::assess::assess;
use crate::model::Severity;
use crate::resolve::Resolver;
use crate::resolve::azure::{CONTRIBUTOR, MANAGED_IDENTITY_OPERATOR, OWNER};
use crate::resolve::paths::{EdgeKind, NodeKind, Route};
use crate::snapshot::azure::IdentityResourceRow;
use crate::snapshot::graph::{AppRoleAssignment, ServicePrincipal};
use crate::snapshot::{Dataset, PrincipalData, TenantSnapshot};

const HOLDER: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const TARGET: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const THIRD: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const PLATFORM_GROUP: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const USER: &str = "cccccccc-0000-4000-8000-000000000001";

fn vm_id(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

fn site_id(rg: &str, name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}")
}

/// A system-assigned identity on the resource `host` (of ARM type `host_type`), holding the
/// given Graph permissions and belonging to `groups`.
fn add_system(
    s: &mut TenantSnapshot,
    id: &str,
    host: &str,
    host_type: &str,
    permissions: &[&str],
    groups: &[&str],
) {
    let name = host.rsplit('/').next().unwrap_or(host).to_owned();
    s.managed_identities.push(ServicePrincipal {
        id: id.into(),
        app_id: Some(format!("app-{name}")),
        display_name: Some(name.clone()),
        service_principal_type: Some("ManagedIdentity".into()),
        alternative_names: vec!["isExplicit=False".into(), host.into()],
        account_enabled: Some(true),
        ..Default::default()
    });
    let assignments = permissions
        .iter()
        .enumerate()
        .map(|(i, p)| AppRoleAssignment {
            id: format!("{name}-assignment-{i}"),
            app_role_id: role_id(p).into(),
            principal_id: id.into(),
            resource_id: GRAPH_SP.into(),
            resource_display_name: Some("Microsoft Graph".into()),
            created_date_time: None,
        })
        .collect();
    let memberships = groups
        .iter()
        .map(|g| {
            let mut object = group(g, false);
            object.display_name = Some(format!("group-{}", &g[..8]));
            object
        })
        .collect();
    s.principals.insert(
        id.into(),
        PrincipalData {
            app_role_assignments: Dataset::Collected { items: assignments },
            memberships: Dataset::Collected { items: memberships },
        },
    );
    azure(s).identity_resources.push(IdentityResourceRow {
        id: host.into(),
        name: Some(name),
        resource_type: Some(host_type.to_ascii_lowercase()),
        subscription_id: Some(SUB.into()),
        identity_type: Some("SystemAssigned".into()),
        principal_id: Some(id.into()),
        ..Default::default()
    });
}

/// A custom role with the given actions and notActions, added to the definitions.
fn add_custom(s: &mut TenantSnapshot, actions: &[&str], not_actions: &[&str]) {
    let mut role = builtin(CUSTOM, "Contoso Operator", actions, not_actions);
    role.role_type = Some("CustomRole".into());
    azure(s).role_definitions.push(role);
}

/// The holder: the identity of web app app-holder in rg-app, a member of `groups`.
fn add_holder(s: &mut TenantSnapshot, groups: &[&str]) {
    add_system(
        s,
        HOLDER,
        &site_id("rg-app", "app-holder"),
        "Microsoft.Web/sites",
        &[],
        groups,
    );
}

/// The target: the identity of vm-target in rg-target, holding `permissions`.
fn add_target(s: &mut TenantSnapshot, permissions: &[&str]) {
    add_system(
        s,
        TARGET,
        &vm_id("rg-target", "vm-target"),
        "Microsoft.Compute/virtualMachines",
        permissions,
        &[],
    );
}

/// Contributor over rg-target: the holder can run code on the target's VM.
fn holder_runs_code_on_the_vm(s: &mut TenantSnapshot) {
    assign(s, HOLDER, "ServicePrincipal", CONTRIBUTOR, &rg("rg-target"));
}

/// The holder (a web app's identity) and a VM identity in rg-target holding
/// RoleManagement.ReadWrite.Directory.
fn estate() -> TenantSnapshot {
    let mut s = azure_base();
    add_holder(&mut s, &[]);
    add_target(&mut s, &["RoleManagement.ReadWrite.Directory"]);
    s
}

fn path_findings(s: &TenantSnapshot, subject: &str) -> Vec<crate::rules::Finding> {
    assess(s)
        .findings
        .into_iter()
        .filter(|f| f.rule_id == "MI-PATH-001" && f.identity_id == subject)
        .collect()
}

fn rg(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{name}")
}

#[test]
fn a_custom_role_with_the_action_gives_a_critical_path() {
    let mut s = estate();
    add_custom(
        &mut s,
        &["Microsoft.Compute/virtualMachines/runCommand/action"],
        &[],
    );
    assign(&mut s, HOLDER, "ServicePrincipal", CUSTOM, &rg("rg-target"));
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert_eq!(f.severity, Severity::Critical);
    let hops = f.evidence["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 2);
    assert_eq!(hops[0]["edge"], "canExecuteAs");
    assert_eq!(hops[0]["to"]["id"], TARGET);
    assert_eq!(
        hops[0]["evidence"]["action"],
        "Microsoft.Compute/virtualMachines/runCommand/action"
    );
    assert_eq!(hops[0]["evidence"]["route"], "host");
    assert!(
        hops[0]["remediation"]
            .as_str()
            .unwrap()
            .contains("az role assignment delete --ids")
    );
    assert_eq!(hops[1]["edge"], "holdsAppRole");
    assert_eq!(hops[1]["to"]["name"], "RoleManagement.ReadWrite.Directory");
    // The target's own holding is direct: no MI-PATH-001 for it, and its record has a one-hop path.
    assert!(path_findings(&s, TARGET).is_empty());
    let records = assess(&s).identities;
    let target = records.iter().find(|r| r.id == TARGET).unwrap();
    assert_eq!(target.path_to_tier0.as_ref().unwrap().hops.len(), 1);
    assert_eq!(target.actors.count, 1);
    assert_eq!(target.actors.first[0].principal.id, HOLDER);
    let holder = records.iter().find(|r| r.id == HOLDER).unwrap();
    assert_eq!(holder.path_to_tier0.as_ref().unwrap().hops.len(), 2);
}

#[test]
fn wildcards_match_and_not_actions_remove_the_edge() {
    let mut s = estate();
    add_custom(
        &mut s,
        &["*/read", "Microsoft.Compute/virtualMachines/extensions/*"],
        &[],
    );
    assign(&mut s, HOLDER, "ServicePrincipal", CUSTOM, &rg("rg-target"));
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].evidence["hops"][0]["evidence"]["grantedBy"],
        "Microsoft.Compute/virtualMachines/extensions/*"
    );

    let mut s = estate();
    add_custom(
        &mut s,
        &["Microsoft.Compute/*"],
        &[
            "Microsoft.Compute/virtualMachines/runCommand/action",
            "Microsoft.Compute/virtualMachines/runCommands/*",
            "Microsoft.Compute/virtualMachines/extensions/*",
        ],
    );
    assign(&mut s, HOLDER, "ServicePrincipal", CUSTOM, &rg("rg-target"));
    assert!(path_findings(&s, HOLDER).is_empty());
    // Reader never controls anything.
    let mut s = estate();
    assign(
        &mut s,
        HOLDER,
        "ServicePrincipal",
        READER,
        &format!("/subscriptions/{SUB}"),
    );
    assert!(path_findings(&s, HOLDER).is_empty());
}

#[test]
fn a_scope_above_the_host_reaches_it_and_one_beside_it_does_not() {
    for (scope, reaches) in [
        (vm_id("rg-target", "vm-target"), true),
        (rg("rg-target"), true),
        (format!("/subscriptions/{SUB}"), true),
        (
            "/providers/Microsoft.Management/managementGroups/mg1".to_owned(),
            true,
        ),
        ("/".to_owned(), true),
        (rg("rg-app"), false),
        (rg("rg-target-2"), false),
        (vm_id("rg-target", "vm-target-2"), false),
        (
            "/providers/Microsoft.Management/managementGroups/mg-other".to_owned(),
            false,
        ),
    ] {
        let mut s = estate();
        assign(&mut s, HOLDER, "ServicePrincipal", CONTRIBUTOR, &scope);
        assert_eq!(
            !path_findings(&s, HOLDER).is_empty(),
            reaches,
            "Contributor at {scope}"
        );
    }
}

#[test]
fn a_group_holding_the_role_makes_every_member_an_actor() {
    let mut s = azure_base();
    add_holder(&mut s, &[PLATFORM_GROUP]);
    add_target(&mut s, &["RoleManagement.ReadWrite.Directory"]);
    assign(
        &mut s,
        PLATFORM_GROUP,
        "Group",
        CONTRIBUTOR,
        &rg("rg-target"),
    );
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1);
    let edges: Vec<&str> = found[0].evidence["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["edge"].as_str().unwrap())
        .collect();
    assert_eq!(edges, ["memberOf", "canExecuteAs", "holdsAppRole"]);
    assert_eq!(found[0].evidence["hops"][1]["from"]["kind"], "group");
    // The target's actor is the group itself.
    let target = assess(&s)
        .identities
        .into_iter()
        .find(|r| r.id == TARGET)
        .unwrap();
    assert_eq!(target.actors.first[0].principal.kind, NodeKind::Group);
}

#[test]
fn control_chains_through_several_identities() {
    // HOLDER controls the web app of THIRD, which controls the VM of TARGET.
    let mut s = estate();
    add_system(
        &mut s,
        THIRD,
        &site_id("rg-mid", "app-mid"),
        "Microsoft.Web/sites",
        &[],
        &[],
    );
    add_custom(&mut s, &["Microsoft.Web/sites/publish/Action"], &[]);
    assign(&mut s, HOLDER, "ServicePrincipal", CUSTOM, &rg("rg-mid"));
    assign(
        &mut s,
        THIRD,
        "ServicePrincipal",
        CONTRIBUTOR,
        &rg("rg-target"),
    );
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1);
    let hops = found[0].evidence["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 3);
    assert_eq!(hops[0]["to"]["id"], THIRD);
    assert_eq!(hops[1]["to"]["id"], TARGET);
    assert!(
        found[0].title.contains("app-mid → vm-target"),
        "{}",
        found[0].title
    );
    // The shortest path wins: a direct control of the VM makes it two hops.
    assign(
        &mut s,
        HOLDER,
        "ServicePrincipal",
        CONTRIBUTOR,
        &vm_id("rg-target", "vm-target"),
    );
    let found = path_findings(&s, HOLDER);
    assert_eq!(found[0].evidence["hops"].as_array().unwrap().len(), 2);
}

#[test]
fn severity_follows_the_target() {
    // An eligible-only target is high; an Azure access administrator at a management group is
    // critical.
    let mut s = azure_base();
    add_holder(&mut s, &[]);
    add_target(&mut s, &[]);
    holder_runs_code_on_the_vm(&mut s);
    assert!(
        path_findings(&s, HOLDER).is_empty(),
        "no Tier-0 behind the VM"
    );
    assign(
        &mut s,
        TARGET,
        "ServicePrincipal",
        OWNER,
        "/providers/Microsoft.Management/managementGroups/mg1",
    );
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Critical);
    assert_eq!(
        found[0].evidence["target"]["kind"],
        "azureAccessAdministration"
    );
    assert_eq!(found[0].evidence["hops"][1]["edge"], "holdsAzureRole");
}

#[test]
fn user_assigned_identities_are_taken_over_by_credential_write_or_assign_with_compute_write() {
    let setup = || {
        let mut s = azure_base();
        add_holder(&mut s, &[]);
        add_uami(
            &mut s,
            TARGET,
            "id-tier0",
            &["RoleManagement.ReadWrite.Directory"],
        );
        s
    };
    // Federated credential write alone is enough.
    let mut s = setup();
    add_custom(
        &mut s,
        &["Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"],
        &[],
    );
    assign(
        &mut s,
        HOLDER,
        "ServicePrincipal",
        CUSTOM,
        &uami_id("id-tier0"),
    );
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].evidence["hops"][0]["evidence"]["route"],
        "federatedCredential"
    );
    // Assign without compute write anywhere is latent: no path.
    let mut s = setup();
    assign(
        &mut s,
        HOLDER,
        "ServicePrincipal",
        MANAGED_IDENTITY_OPERATOR,
        &rg("rg"),
    );
    assert!(path_findings(&s, HOLDER).is_empty());
    let resolver = Resolver::new(&s);
    let controls = resolver.paths().controls(TARGET);
    assert!(controls.effective.is_empty());
    assert_eq!(controls.latent.len(), 1);
    // With Contributor over some resource group it can attach the identity there.
    assign(
        &mut s,
        HOLDER,
        "ServicePrincipal",
        CONTRIBUTOR,
        &rg("rg-app"),
    );
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1);
    let evidence = &found[0].evidence["hops"][0]["evidence"];
    assert_eq!(evidence["route"], "assign");
    assert!(
        evidence["computeAssignmentId"]
            .as_str()
            .unwrap()
            .contains("rg-app")
    );
}

#[test]
fn who_can_become_a_privileged_identity_is_listed_weakest_first() {
    let mut s = estate();
    assign(
        &mut s,
        USER,
        "User",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    );
    let f: Vec<_> = assess(&s)
        .findings
        .into_iter()
        .filter(|f| f.rule_id == "MI-PATH-002")
        .collect();
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].identity_id, TARGET);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].evidence["actorCount"], 1);
    assert_eq!(f[0].evidence["actors"][0]["principal"]["kind"], "user");
    assert_eq!(f[0].evidence["actors"][0]["control"]["roleName"], "Owner");
    // A holder without privilege is not listed: MI-PATH-002 is about privileged identities.
    assert!(!f.iter().any(|f| f.identity_id == HOLDER));
    // The assignment of a deleted principal controls nothing.
    let mut s = estate();
    assign(
        &mut s,
        USER,
        "User",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    );
    if let Dataset::Collected { items } = &mut azure(&mut s).principal_lookup {
        items.checked.push(USER.into());
    }
    assert!(
        !assess(&s)
            .findings
            .iter()
            .any(|f| f.rule_id == "MI-PATH-002")
    );
}

#[test]
fn broad_write_roles_at_subscription_scope_are_high_and_list_what_they_reach() {
    let mut s = estate();
    let group_id = PLATFORM_GROUP;
    if let Some(data) = s.principals.get_mut(HOLDER) {
        data.memberships = Dataset::Collected {
            items: vec![group(group_id, false)],
        };
    }
    assign(
        &mut s,
        group_id,
        "Group",
        CONTRIBUTOR,
        &format!("/subscriptions/{SUB}"),
    );
    let findings = assess(&s).findings;
    let broad: Vec<_> = findings
        .iter()
        .filter(|f| f.rule_id == "MI-AZ-004")
        .collect();
    assert_eq!(broad.len(), 1, "{broad:#?}");
    assert_eq!(broad[0].identity_id, HOLDER);
    assert_eq!(broad[0].severity, Severity::High);
    assert_eq!(broad[0].evidence["reachableIdentityCount"], 1);
    assert_eq!(broad[0].evidence["reachableIdentities"][0]["id"], TARGET);
    // Owner at subscription scope is MI-AZ-001's, not a broad-write finding too.
    let mut s = estate();
    assign(
        &mut s,
        HOLDER,
        "ServicePrincipal",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    );
    assert!(!assess(&s).findings.iter().any(|f| f.rule_id == "MI-AZ-004"));
    // At resource-group scope it is not broad.
    let mut s = estate();
    holder_runs_code_on_the_vm(&mut s);
    assert!(!assess(&s).findings.iter().any(|f| f.rule_id == "MI-AZ-004"));
}

/// A deterministic pseudo-random generator for the property check (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// An estate of `n` identities on VMs and web apps in a few resource groups, random Contributor,
/// Reader and custom-role assignments at random scopes, and a few Tier-0 holders.
fn generated(seed: u64, n: usize) -> TenantSnapshot {
    let mut rng = Lcg(seed);
    let mut s = azure_base();
    add_custom(&mut s, &["Microsoft.Web/sites/config/write"], &[]);
    let ids: Vec<String> = (0..n)
        .map(|i| format!("dddddddd-0000-4000-8000-{i:012}"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let rg_name = format!("rg-{}", rng.next(4));
        let permissions: &[&str] = if rng.next(5) == 0 {
            &["RoleManagement.ReadWrite.Directory"]
        } else {
            &[]
        };
        if rng.next(2) == 0 {
            add_system(
                &mut s,
                id,
                &vm_id(&rg_name, &format!("vm-{i}")),
                "Microsoft.Compute/virtualMachines",
                permissions,
                &[],
            );
        } else {
            add_system(
                &mut s,
                id,
                &site_id(&rg_name, &format!("app-{i}")),
                "Microsoft.Web/sites",
                permissions,
                &[],
            );
        }
    }
    for _ in 0..n {
        let holder = ids[rng.next(n)].clone();
        let role = [CONTRIBUTOR, READER, CUSTOM][rng.next(3)];
        let scope = match rng.next(6) {
            0 => format!("/subscriptions/{SUB}"),
            _ => rg(&format!("rg-{}", rng.next(4))),
        };
        assign(&mut s, &holder, "ServicePrincipal", role, &scope);
    }
    s
}

#[test]
fn every_hop_is_backed_by_evidence_and_removing_it_removes_the_path() {
    let mut checked = 0;
    for seed in 1..=12u64 {
        let s = generated(seed, 14);
        let assessment = assess(&s);
        for finding in assessment
            .findings
            .iter()
            .filter(|f| f.rule_id == "MI-PATH-001")
        {
            let hops = finding.evidence["hops"].as_array().unwrap();
            for hop in hops {
                let evidence = &hop["evidence"];
                match hop["edge"].as_str().unwrap() {
                    "canExecuteAs" => {
                        let id = evidence["assignmentId"].as_str().unwrap();
                        let assignment = azure_assignment(&s, id).expect("the assignment exists");
                        assert!(
                            assignment
                                .principal_id
                                .eq_ignore_ascii_case(hop["from"]["id"].as_str().unwrap())
                        );
                        // Removing it removes this path (the finding id names the first hop).
                        let mut without = s.clone();
                        azure(&mut without).role_assignments.retain(|a| a.id != id);
                        let again = assess(&without);
                        let still = again
                            .identities
                            .iter()
                            .find(|r| r.id == finding.identity_id)
                            .and_then(|r| r.path_to_tier0.clone());
                        assert!(
                            still.is_none_or(|p| !p
                                .hops
                                .iter()
                                .any(|h| h.evidence["assignmentId"] == json!(id))),
                            "seed {seed}: a path still uses the removed assignment {id}"
                        );
                    }
                    "holdsAppRole" => {
                        let holder = hop["from"]["id"].as_str().unwrap();
                        let id = evidence["assignmentId"].as_str().unwrap();
                        let held = s.principals[holder]
                            .app_role_assignments
                            .known()
                            .unwrap()
                            .iter()
                            .any(|a| a.id == id);
                        assert!(held, "seed {seed}: {id} is not {holder}'s");
                    }
                    other => panic!("unexpected edge {other}"),
                }
                checked += 1;
            }
        }
        // Replaying the same snapshot gives identical paths.
        assert_eq!(assess(&s).identities, assessment.identities);
    }
    assert!(
        checked > 20,
        "the generated estates should hold paths ({checked} hops checked)"
    );
}

/// The actors of every identity, computed from the chains each subscription gives its
/// identities, equal those computed from the full edge list: over an estate where many actors
/// hold roles at the management groups, the tenant root group and `/` (more than an actor list
/// holds), with resource-group and resource assignments, user-assigned identities on hosts,
/// identities that hold a role over their own host, and deleted principals.
#[test]
fn inherited_actors_equal_the_actors_of_the_full_edge_list() {
    for seed in [3, 11, 29] {
        let mut rng = Lcg(seed);
        let mut s = generated(seed, 40);
        add_custom(&mut s, &["Microsoft.Web/sites/config/write"], &[]);
        for u in 0..8 {
            let id = format!("eeeeeeee-0000-4000-8000-{u:012}");
            let name = format!("id-shared-{u}");
            add_uami(&mut s, &id, &name, &[]);
            let host = if u % 2 == 0 {
                vm_id(&format!("rg-{}", rng.next(4)), &format!("vm-uami-{u}"))
            } else {
                site_id(&format!("rg-{}", rng.next(4)), &format!("app-uami-{u}"))
            };
            azure(&mut s).identity_resources.push(IdentityResourceRow {
                id: host.clone(),
                resource_type: Some(if u % 2 == 0 {
                    "microsoft.compute/virtualmachines".into()
                } else {
                    "microsoft.web/sites".into()
                }),
                subscription_id: Some(SUB.into()),
                identity_type: Some("UserAssigned".into()),
                user_assigned_identities: Some([(uami_id(&name), json!({}))].into_iter().collect()),
                ..Default::default()
            });
        }
        let identities: Vec<String> = s.managed_identities.iter().map(|m| m.id.clone()).collect();
        let mg = "/providers/Microsoft.Management/managementGroups/mg1".to_owned();
        let root_group = format!(
            "/providers/Microsoft.Management/managementGroups/{}",
            super::tests::TENANT
        );
        let deleted = "ffffffff-dead-4000-8000-000000000001";
        for k in 0..120 {
            let (principal, kind) = match rng.next(4) {
                0 => (
                    identities[rng.next(identities.len())].clone(),
                    "ServicePrincipal",
                ),
                1 => (deleted.to_owned(), "ServicePrincipal"),
                _ => (
                    format!("cccccccc-0000-4000-8000-{:012}", rng.next(60)),
                    "User",
                ),
            };
            let role = [
                CONTRIBUTOR,
                OWNER,
                READER,
                CUSTOM,
                MANAGED_IDENTITY_OPERATOR,
            ][rng.next(5)];
            let scope = match k % 6 {
                0 => "/".to_owned(),
                1 => root_group.clone(),
                2 | 3 => mg.clone(),
                4 => format!("/subscriptions/{SUB}"),
                _ => rg(&format!("rg-{}", rng.next(4))),
            };
            assign(&mut s, &principal, kind, role, &scope);
        }
        azure(&mut s).principal_lookup = Dataset::Collected {
            items: crate::snapshot::azure::PrincipalLookup {
                checked: vec![deleted.into()],
                ..Default::default()
            },
        };
        let resolver = Resolver::new(&s);
        let paths = resolver.paths();
        let mut crowded = 0;
        for id in &identities {
            let inherited = serde_json::to_value(paths.actors(id)).unwrap();
            let reference = serde_json::to_value(paths.actors_from_links(id)).unwrap();
            assert_eq!(inherited, reference, "actors of {id} (seed {seed})");
            if paths.actors(id).count > crate::resolve::paths::ACTORS_LISTED {
                crowded += 1;
            }
        }
        assert!(
            crowded > 10,
            "many identities should have more actors than a list holds (seed {seed}: {crowded})"
        );
        // What an assignment above the subscriptions reaches, from the summary of its scope
        // and role, equals what it reaches by itself, whoever is left out.
        let mut above = 0;
        let assignments = match &s.azure {
            Dataset::Collected { items } => &items.role_assignments,
            _ => panic!("the estate has Azure data"),
        };
        for a in assignments {
            if a.scope.starts_with("/subscriptions/") {
                continue;
            }
            above += 1;
            for exclude in [a.principal_id.as_str(), identities[0].as_str(), "nobody"] {
                let summarised = paths.controlled_by_listed(&a.id, exclude, 20);
                let reference = paths.controlled_by_listed_uncached(&a.id, exclude, 20);
                assert_eq!(summarised, reference, "{} without {exclude}", a.id);
            }
        }
        assert!(above > 50, "{above} assignments above subscriptions");
    }
}

fn azure_assignment<'s>(
    s: &'s TenantSnapshot,
    id: &str,
) -> Option<&'s crate::snapshot::azure::RoleAssignmentRow> {
    s.azure
        .known()?
        .role_assignments
        .iter()
        .find(|a| a.id == id)
}

#[test]
fn edge_kinds_and_routes_serialise_as_documented() {
    assert_eq!(
        serde_json::to_value(EdgeKind::CanExecuteAs).unwrap(),
        "canExecuteAs"
    );
    let route = Route::Host {
        host_id: "h".into(),
        host_type: "t".into(),
    };
    assert_eq!(
        serde_json::to_value(&route).unwrap(),
        json!({"route": "host", "hostId": "h", "hostType": "t"})
    );
}

fn object(odata: &str, id: &str, name: &str) -> crate::snapshot::graph::DirectoryObject {
    crate::snapshot::graph::DirectoryObject {
        odata_type: Some(odata.into()),
        id: id.into(),
        display_name: Some(name.into()),
        ..Default::default()
    }
}

const APP_OBJECT: &str = "eeeeeeee-0000-4000-8000-000000000001";
const APP_SP: &str = "eeeeeeee-0000-4000-8000-000000000002";
const OWNED_GROUP: &str = "eeeeeeee-0000-4000-8000-000000000003";

/// `owners` own `object`; an owned application's service principal is `APP_SP`.
fn own(
    s: &mut TenantSnapshot,
    object_node: crate::snapshot::graph::DirectoryObject,
    owners: &[(&str, &str)],
) {
    use crate::snapshot::graph::{SERVICE_PRINCIPAL_TYPE, USER_TYPE};
    use crate::snapshot::ownership::{OwnedObject, Ownership};
    if s.ownership.is_unknown() {
        s.ownership = Dataset::Collected {
            items: Ownership::default(),
        };
    }
    let Dataset::Collected { items } = &mut s.ownership else {
        unreachable!()
    };
    if object_node.is_application() {
        let mut sp = object(SERVICE_PRINCIPAL_TYPE, APP_SP, "app-sp");
        sp.app_id = object_node.app_id.clone();
        items.application_service_principals.push(sp);
    }
    items.owned.push(OwnedObject {
        object: object_node,
        owners: owners
            .iter()
            .map(|(id, kind)| {
                object(
                    if *kind == "user" {
                        USER_TYPE
                    } else {
                        SERVICE_PRINCIPAL_TYPE
                    },
                    id,
                    "owner",
                )
            })
            .collect(),
    });
}

/// The application's service principal holds RoleManagement.ReadWrite.Directory (collected
/// because a collected principal owns it).
fn privileged_app_sp(s: &mut TenantSnapshot) {
    s.principals.insert(
        APP_SP.into(),
        PrincipalData {
            app_role_assignments: Dataset::Collected {
                items: vec![AppRoleAssignment {
                    id: "app-sp-assignment".into(),
                    app_role_id: role_id("RoleManagement.ReadWrite.Directory").into(),
                    principal_id: APP_SP.into(),
                    resource_id: GRAPH_SP.into(),
                    resource_display_name: Some("Microsoft Graph".into()),
                    created_date_time: None,
                }],
            },
            memberships: Dataset::Collected { items: Vec::new() },
        },
    );
}

#[test]
fn owning_a_more_privileged_application_is_one_ownership_finding() {
    use crate::snapshot::graph::APPLICATION_TYPE;
    let mut s = azure_base();
    add_holder(&mut s, &[]);
    let mut app = object(APPLICATION_TYPE, APP_OBJECT, "legacy-sync");
    app.app_id = Some("app-id-legacy".into());
    own(&mut s, app, &[(HOLDER, "servicePrincipal")]);
    privileged_app_sp(&mut s);
    let a = assess(&s);
    let owns: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f.rule_id == "MI-OWN-001")
        .collect();
    assert_eq!(owns.len(), 1, "{:#?}", a.findings);
    assert_eq!(owns[0].severity, Severity::Critical);
    assert_eq!(owns[0].evidence["ownedObject"]["id"], APP_OBJECT);
    assert_eq!(owns[0].evidence["gives"]["id"], APP_SP);
    assert!(
        owns[0]
            .remediation
            .contains(&format!("/applications/{APP_OBJECT}/owners/{HOLDER}/$ref")),
        "{}",
        owns[0].remediation
    );
    // One fact, one finding: the ownership path is not a second MI-PATH-001.
    assert!(!a.findings.iter().any(|f| f.rule_id == "MI-PATH-001"));
    // The record still shows the path, through the owned application.
    let holder = a.identities.iter().find(|r| r.id == HOLDER).unwrap();
    let path = holder.path_to_tier0.as_ref().unwrap();
    assert_eq!(path.hops[0].edge, EdgeKind::Owns);
    assert_eq!(path.hops[1].edge, EdgeKind::HoldsAppRole);
    // Without the owner, nothing.
    let mut s2 = s.clone();
    s2.ownership = Dataset::Collected {
        items: Default::default(),
    };
    assert!(
        !assess(&s2)
            .findings
            .iter()
            .any(|f| f.rule_id == "MI-OWN-001")
    );
}

#[test]
fn an_owner_of_an_owner_and_a_controlled_owner_reach_through_ownership() {
    use crate::snapshot::graph::{APPLICATION_TYPE, GROUP_TYPE};
    // HOLDER runs code as TARGET (Contributor over its VM's resource group); TARGET owns an
    // application whose service principal owns a group that holds Global Administrator.
    let mut s = azure_base();
    add_holder(&mut s, &[]);
    add_target(&mut s, &[]);
    holder_runs_code_on_the_vm(&mut s);
    let mut app = object(APPLICATION_TYPE, APP_OBJECT, "legacy-sync");
    app.app_id = Some("app-id-legacy".into());
    own(&mut s, app, &[(TARGET, "servicePrincipal")]);
    own(
        &mut s,
        object(GROUP_TYPE, OWNED_GROUP, "sg-admins"),
        &[(APP_SP, "servicePrincipal")],
    );
    s.role_assignments = Dataset::Collected {
        items: vec![crate::snapshot::graph::RoleAssignment {
            id: "ra-group-ga".into(),
            principal_id: OWNED_GROUP.into(),
            role_definition_id: "62e90394-69f5-4237-9190-012177145e10".into(),
            directory_scope_id: Some("/".into()),
            ..Default::default()
        }],
    };
    let a = assess(&s);
    let path = &a
        .findings
        .iter()
        .find(|f| f.rule_id == "MI-PATH-001" && f.identity_id == HOLDER)
        .expect("HOLDER reaches Global Administrator")
        .evidence["hops"];
    let edges: Vec<&str> = path
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["edge"].as_str().unwrap())
        .collect();
    assert_eq!(
        edges,
        ["canExecuteAs", "owns", "owns", "holdsDirectoryRole"]
    );
    assert_eq!(path[2]["to"]["kind"], "group");
    // TARGET's own finding is the ownership.
    assert!(
        a.findings
            .iter()
            .any(|f| f.rule_id == "MI-OWN-001" && f.identity_id == TARGET)
    );
}

#[test]
fn a_guest_who_can_act_as_a_control_plane_identity_is_critical() {
    let mut s = estate();
    assign(
        &mut s,
        USER,
        "User",
        OWNER,
        &format!("/subscriptions/{SUB}"),
    );
    if let Dataset::Collected { items } = &mut azure(&mut s).principal_lookup {
        let mut guest = object(crate::snapshot::graph::USER_TYPE, USER, "Dana (Fabrikam)");
        guest.user_type = Some("Guest".into());
        items.found.push(guest);
    }
    let f = finding_of(&s, "MI-PATH-002");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.evidence["actors"][0]["guest"], true);
    assert_eq!(
        f.evidence["actors"][0]["principal"]["name"],
        "Dana (Fabrikam)"
    );
}

#[test]
fn writing_a_function_apps_deployment_container_controls_its_identity() {
    use crate::snapshot::azure::StorageAccountRow;
    let account = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-deploy/providers/Microsoft.Storage/storageAccounts/stdeploy"
    );
    let setup = |data_action: &str| {
        let mut s = estate();
        // The target's VM becomes a function app running from stdeploy/app-package.
        let a = azure(&mut s);
        let host = a
            .identity_resources
            .iter_mut()
            .find(|r| r.principal_id.as_deref() == Some(TARGET))
            .unwrap();
        host.resource_type = Some("microsoft.web/sites".into());
        host.deployment_storage = Some("https://stdeploy.blob.core.windows.net/app-package".into());
        a.storage_accounts = Dataset::Collected {
            items: vec![StorageAccountRow {
                id: account.clone(),
                name: "stdeploy".into(),
                blob_endpoint: Some("https://stdeploy.blob.core.windows.net/".into()),
                ..Default::default()
            }],
        };
        let mut role = builtin(CUSTOM, "Blob Writer", &[], &[]);
        role.permissions[0].data_actions = vec![data_action.to_owned()];
        a.role_definitions.push(role);
        assign(&mut s, HOLDER, "ServicePrincipal", CUSTOM, &account);
        s
    };
    let s = setup("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*");
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1, "{:#?}", assess(&s).findings);
    let hop = &found[0].evidence["hops"][0]["evidence"];
    assert_eq!(hop["route"], "deploymentStorage");
    assert_eq!(
        hop["action"],
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
    );
    assert!(
        hop["containerId"]
            .as_str()
            .unwrap()
            .ends_with("/containers/app-package")
    );
    // Reading blobs only is no control.
    let s = setup("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read");
    assert!(path_findings(&s, HOLDER).is_empty());
}

#[test]
fn an_eligible_access_administrator_at_a_management_group_is_a_high_target() {
    use crate::snapshot::azure::EligibleRoleAssignmentRow;
    let mut s = estate();
    // The VM identity holds nothing in Graph; it is eligible (PIM) for Owner at mg1.
    s.principals.get_mut(TARGET).unwrap().app_role_assignments =
        Dataset::Collected { items: Vec::new() };
    holder_runs_code_on_the_vm(&mut s);
    let mg = "/providers/Microsoft.Management/managementGroups/mg1";
    azure(&mut s).eligible_role_assignments = Dataset::Collected {
        items: vec![EligibleRoleAssignmentRow {
            id: format!(
                "{mg}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e1"
            ),
            scope: mg.into(),
            principal_id: TARGET.into(),
            principal_type: Some("ServicePrincipal".into()),
            role_definition_id: format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{OWNER}"
            ),
            status: Some("Provisioned".into()),
            ..Default::default()
        }],
    };
    let found = path_findings(&s, HOLDER);
    assert_eq!(found.len(), 1, "{:#?}", assess(&s).findings);
    assert_eq!(found[0].severity, Severity::High);
    let last = &found[0].evidence["hops"][1];
    assert_eq!(last["edge"], "holdsAzureRole");
    assert!(
        last["remediation"]
            .as_str()
            .unwrap()
            .contains("roleEligibilityScheduleRequests")
    );
    assert_eq!(found[0].evidence["target"]["eligible"], true);
}
