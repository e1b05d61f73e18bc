//! The simulated tenant: the directory objects the Graph simulator serves, as Graph JSON.
//!
//! Objects are stored exactly as Graph returns them (camelCase JSON), so `$select` projection,
//! paging and error behaviour can be applied generically. Two sources: the embedded demo
//! tenant (`demo_tenant.json`, hand-written to look like a real estate) and a deterministic
//! generator for scale tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::estate::{self, EstateSize};
use super::token::TokenSubject;

/// A simulated tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimTenant {
    /// Tenant id.
    pub tenant_id: String,
    /// The identity the scanner runs as in this tenant.
    pub scanner: TokenSubject,
    /// Every service principal, managed identities included, as Graph JSON objects.
    pub service_principals: Vec<Value>,
    /// Application registrations (with their credentials).
    #[serde(default)]
    pub applications: Vec<Value>,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<Value>,
    /// Direct members of each group (service principals, users or groups), by group id.
    #[serde(default)]
    pub group_members: BTreeMap<String, Vec<String>>,
    /// Users (members and guests), as Graph JSON objects.
    #[serde(default)]
    pub users: Vec<Value>,
    /// Owners (user or service principal ids) of applications, service principals and groups,
    /// by the owned object's id.
    #[serde(default)]
    pub owners: BTreeMap<String, Vec<String>>,
    /// App role assignments (application permissions) of every principal.
    #[serde(default)]
    pub app_role_assignments: Vec<Value>,
    /// Directory role definitions.
    #[serde(default)]
    pub role_definitions: Vec<Value>,
    /// Active directory role assignments.
    #[serde(default)]
    pub role_assignments: Vec<Value>,
    /// PIM eligibility schedules.
    #[serde(default)]
    pub role_eligibility_schedules: Vec<Value>,
    /// PIM active assignment schedules.
    #[serde(default)]
    pub role_assignment_schedules: Vec<Value>,
    /// Delegated permission grants.
    #[serde(default)]
    pub oauth2_permission_grants: Vec<Value>,
    /// Data sets the scanner is not allowed to read (answered with 403), e.g.
    /// `delegatedGrants` or `roleEligibilitySchedules`.
    #[serde(default)]
    pub denied: Vec<String>,
    /// The tenant has no Microsoft Entra ID P2 (or Governance) licence: the PIM schedule lists
    /// answer 400 `AadPremiumLicenseRequired`.
    #[serde(default)]
    pub pim_unlicensed: bool,
    /// The Azure plane (Azure Resource Manager and Resource Graph); empty when absent.
    #[serde(default)]
    pub arm: super::arm::SimArm,
    /// The Log Analytics workspace the usage plane reads; absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_analytics: Option<super::loganalytics::SimWorkspace>,
}

/// The embedded demo tenant.
const DEMO_TENANT: &str = include_str!("demo_tenant.json");

/// The demo's example `suppressions.json`: one accepted risk and one whose acceptance expired.
pub const DEMO_SUPPRESSIONS: &str = include_str!("demo_suppressions.json");

/// The demo's `suppressions.json` as of `today`: accepted risks run 90 days from then (within
/// the 365-day maximum), and one acceptance has expired.
pub fn demo_suppressions(today: time::Date) -> String {
    let expires = (today + time::Duration::days(90)).midnight().assume_utc();
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    DEMO_SUPPRESSIONS.replace("{EXPIRES_IN_90_DAYS}", &expires)
}

impl SimTenant {
    /// The demo tenant shipped with mi-assess.
    pub fn demo() -> Result<Self, serde_json::Error> {
        serde_json::from_str(DEMO_TENANT)
    }

    /// A deterministic tenant with `identities` managed identities (alternating system- and
    /// user-assigned across every host type of the attack-path table) plus Microsoft Graph's
    /// own service principal, without an Azure estate ([`EstateSize::none`]): the existing
    /// rule MI-AZ-003 is quadratic in the user-assigned identities a role's scope covers and
    /// emits one finding per pair, so the realistic estate ([`EstateSize::default`], through
    /// [`Self::generated_with`] or `simulate --role-assignments-per-identity 10
    /// --resources-per-identity 2`) would take the scale test and benchmark past their budgets.
    pub fn generated(identities: usize, seed: u32) -> Self {
        Self::generated_with(identities, seed, EstateSize::none())
    }

    /// The same tenant with a Log Analytics workspace (`workspace_id`) holding evidence for
    /// every managed identity: nine in ten signed in to Graph in the last month, one in three
    /// read users through Graph, one in five wrote a storage account; the rest are dormant.
    pub fn with_usage_evidence(mut self, workspace_id: &str) -> Self {
        use super::loganalytics::{SimArmOperation, SimGraphRequest, SimSignIn, SimWorkspace};
        let mut workspace = SimWorkspace {
            workspace_id: workspace_id.to_owned(),
            tables: vec![
                "AADManagedIdentitySignInLogs".into(),
                "MicrosoftGraphActivityLogs".into(),
                "AzureActivity".into(),
            ],
            ..SimWorkspace::default()
        };
        let identities: Vec<String> = self
            .service_principals
            .iter()
            .filter(|sp| sp["servicePrincipalType"] == "ManagedIdentity")
            .filter_map(|sp| sp["id"].as_str().map(str::to_owned))
            .collect();
        for (i, id) in identities.iter().enumerate() {
            let day = (i % 29) as f64 + 0.5;
            if i % 10 != 0 {
                workspace.sign_ins.push(SimSignIn {
                    service_principal_id: id.clone(),
                    resource: "Microsoft Graph".into(),
                    days_ago: vec![day, day + 0.25],
                });
            }
            if i % 3 == 0 {
                workspace.graph_requests.push(SimGraphRequest {
                    service_principal_id: id.clone(),
                    method: "GET".into(),
                    uri: format!("https://graph.microsoft.com/v1.0/users/{id}?$select=id"),
                    days_ago: vec![day],
                });
            }
            if i % 5 == 0 {
                workspace.arm_operations.push(SimArmOperation {
                    caller: id.clone(),
                    operation: "Microsoft.Storage/storageAccounts/write".into(),
                    days_ago: vec![day],
                });
            }
        }
        self.log_analytics = Some(workspace);
        self
    }

    /// [`Self::generated`] with an Azure estate of `estate`'s size ([`EstateSize::none`]: ARM
    /// answers but no subscription is readable). See [`super::estate`].
    pub fn generated_with(identities: usize, seed: u32, estate: EstateSize) -> Self {
        let tenant_id = format!("{seed:08x}-0000-4000-8000-000000000000");
        let scanner = TokenSubject {
            tenant_id: tenant_id.clone(),
            object_id: format!("{seed:08x}-5ca0-4000-8000-000000000001"),
            app_id: format!("{seed:08x}-5ca0-4000-8000-000000000002"),
            graph_roles: vec![
                "Application.Read.All".into(),
                "GroupMember.Read.All".into(),
                "RoleManagement.Read.Directory".into(),
            ],
        };
        let mut service_principals = vec![microsoft_graph_service_principal()];
        for i in 0..identities {
            let id = estate::identity_object_id(seed, i);
            let app_id = estate::identity_app_id(seed, i);
            // Graph spells the resource group segment in lower case.
            let arm_id = estate::identity_arm_id(seed, i, identities).replacen(
                "/resourceGroups/",
                "/resourcegroups/",
                1,
            );
            let (names, display) = if i % 2 == 0 {
                (
                    vec!["isExplicit=False".to_owned(), arm_id],
                    format!("res-{i:06}"),
                )
            } else {
                (
                    vec!["isExplicit=True".to_owned(), arm_id],
                    format!("id-{i:06}"),
                )
            };
            service_principals.push(json!({
                "id": id,
                "appId": app_id,
                "displayName": display,
                "servicePrincipalType": "ManagedIdentity",
                "alternativeNames": names,
                "accountEnabled": true,
                "appOwnerOrganizationId": null,
                "servicePrincipalNames": [app_id, format!("https://identity.azure.net/{id}")],
                "tags": [],
                "passwordCredentials": [],
                "keyCredentials": [],
            }));
        }
        let mut tenant = Self {
            tenant_id,
            scanner,
            service_principals,
            ..Self::default()
        };
        tenant.add_realistic_privileges(identities, seed);
        tenant.add_realistic_ownership(identities, seed);
        if !estate.is_none() {
            let scanner = tenant.scanner.object_id.clone();
            let (generated, rows) =
                estate::Estate::generate(seed, identities, &tenant.tenant_id, &scanner, estate);
            let arm = &mut tenant.arm;
            arm.subscriptions = rows.subscriptions;
            arm.role_definitions = rows.role_definitions;
            arm.storage_accounts = rows.storage_accounts;
            arm.role_assignments = rows.role_assignments;
            arm.eligible_role_assignments = rows.eligibilities;
            arm.federated_credentials = rows.federated_credentials;
            arm.estate = Some(std::sync::Arc::new(generated));
        }
        tenant
    }
}

/// Graph application permissions the generated tenant hands out: (name, app role id).
const GENERATED_GRAPH_ROLES: &[(&str, &str)] = &[
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214"),
    ("Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61"),
    (
        "Application.Read.All",
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    ),
    ("Sites.Read.All", "332a536c-c7ef-4017-ab91-336970924f0d"),
    ("Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
    ("Files.Read.All", "01d4889c-1287-42c6-ac1f-5d1e02578ef6"),
    (
        "Sites.ReadWrite.All",
        "9492366f-7969-46a4-8d15-ed1a20078fff",
    ),
    (
        "Group.ReadWrite.All",
        "62a82d76-70ea-41e2-9197-370581804d09",
    ),
    (
        "RoleManagement.ReadWrite.Directory",
        "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
    ),
    (
        "GroupMember.Read.All",
        "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    ),
    (
        "RoleManagement.Read.Directory",
        "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
    ),
];

/// Built-in directory roles the generated tenant assigns: (template id, name).
const GENERATED_DIRECTORY_ROLES: &[(&str, &str)] = &[
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers"),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
];

impl SimTenant {
    /// Gives a generated tenant the privileges a real estate has, deterministically for `seed`:
    /// about 60% of identities hold application permissions (mostly reads, a few tenant-wide or
    /// ControlPlane ones), about 20% belong to groups (some of them role-assignable and holding
    /// directory roles), a few hold directory roles directly or through PIM, a few have delegated
    /// grants, and one application in twenty authenticates with a secret.
    fn add_realistic_privileges(&mut self, identities: usize, seed: u32) {
        let mut rng = fastrand::Rng::with_seed(u64::from(seed));
        let graph_sp = "5f7c0bd6-0d67-4b8d-9a53-000000000003";
        if let Some(graph) = self.service_principals.first_mut() {
            graph["appRoles"] = Value::Array(
                GENERATED_GRAPH_ROLES
                    .iter()
                    .map(|(name, id)| json!({"id": id, "value": name, "displayName": name, "allowedMemberTypes": ["Application"], "isEnabled": true}))
                    .collect(),
            );
        }
        self.role_definitions = GENERATED_DIRECTORY_ROLES
            .iter()
            .map(|(id, name)| json!({"id": id, "templateId": id, "displayName": name, "isBuiltIn": true, "isEnabled": true}))
            .collect();
        let identity_ids: Vec<String> = self
            .service_principals
            .iter()
            .filter(|sp| sp["servicePrincipalType"] == "ManagedIdentity")
            .filter_map(|sp| sp["id"].as_str().map(str::to_owned))
            .collect();
        let group_count = estate::group_count(identities);
        for g in 0..group_count {
            self.groups.push(json!({
                "id": estate::group_id(seed, g),
                "displayName": format!("sg-generated-{g:04}"),
                "securityEnabled": true,
                "isAssignableToRole": g < 2,
                "mailEnabled": false,
                "groupTypes": [],
            }));
        }
        let group_id = |g: usize| estate::group_id(seed, g);
        self.role_assignments.push(json!({"id": format!("ra-gen-group-0"), "principalId": group_id(0), "roleDefinitionId": GENERATED_DIRECTORY_ROLES[1].0, "directoryScopeId": "/"}));
        self.role_eligibility_schedules.push(json!({"id": "res-gen-group-1", "principalId": group_id(1), "roleDefinitionId": GENERATED_DIRECTORY_ROLES[2].0, "directoryScopeId": "/", "memberType": "Direct", "status": "Provisioned"}));
        let mut assignment = 0usize;
        let mut assign = |tenant: &mut Self, principal: &str, role: usize| {
            assignment += 1;
            let (_, role_id) = GENERATED_GRAPH_ROLES[role];
            tenant.app_role_assignments.push(json!({
                "id": format!("gen-{assignment:08}"),
                "appRoleId": role_id,
                "principalId": principal,
                "principalType": "ServicePrincipal",
                "resourceId": graph_sp,
                "resourceDisplayName": "Microsoft Graph",
                "createdDateTime": "2025-06-01T00:00:00Z",
            }));
        };
        for (i, id) in identity_ids.iter().enumerate() {
            let draw = rng.u32(0..1000);
            match draw {
                0..400 => {}
                400..750 => assign(self, id, rng.usize(0..4)),
                750..950 => {
                    assign(self, id, rng.usize(0..3));
                    assign(self, id, 4 + rng.usize(0..2));
                }
                950..995 => assign(self, id, 6 + rng.usize(0..2)),
                _ => assign(self, id, 8),
            }
            if rng.u32(0..100) < 20 {
                // Role-assignable groups are rare; most memberships are ordinary groups.
                let g = if rng.u32(0..100) < 5 {
                    rng.usize(0..2)
                } else {
                    2 + rng.usize(0..group_count - 2)
                };
                self.group_members
                    .entry(group_id(g))
                    .or_default()
                    .push(id.clone());
            }
            if rng.u32(0..1000) < 5 {
                let (role, _) =
                    GENERATED_DIRECTORY_ROLES[rng.usize(0..GENERATED_DIRECTORY_ROLES.len())];
                self.role_assignments.push(json!({"id": format!("ra-gen-{i}"), "principalId": id, "roleDefinitionId": role, "directoryScopeId": "/"}));
            }
            if rng.u32(0..1000) < 2 {
                self.oauth2_permission_grants.push(json!({"id": format!("grant-gen-{i}"), "clientId": id, "consentType": "AllPrincipals", "principalId": null, "resourceId": graph_sp, "scope": "User.Read Mail.Send"}));
            }
        }
        // Applications owned by the tenant, one in twenty with a secret.
        for a in 0..estate::application_count(identities) {
            let sp_id = estate::application_sp_id(seed, a);
            let app_id = format!("{seed:08x}-7a00-4000-8000-{a:012x}");
            self.service_principals.push(json!({
                "id": sp_id, "appId": app_id, "displayName": format!("app-generated-{a:05}"),
                "servicePrincipalType": "Application", "alternativeNames": [], "accountEnabled": true,
                "appOwnerOrganizationId": self.tenant_id, "servicePrincipalNames": [app_id], "tags": [],
                "passwordCredentials": [], "keyCredentials": [],
            }));
            self.applications.push(json!({
                "id": format!("{seed:08x}-7b00-4000-8000-{a:012x}"), "appId": app_id, "displayName": format!("app-generated-{a:05}"),
                "passwordCredentials": [{"keyId": format!("{seed:08x}-7c00-4000-8000-{a:012x}"), "displayName": "ci", "startDateTime": "2025-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}],
                "keyCredentials": [],
            }));
            let role = if rng.u32(0..10) == 0 {
                8
            } else {
                rng.usize(0..4)
            };
            assign(self, &sp_id, role);
        }
        // The scanner holds exactly its read set.
        let scanner_id = self.scanner.object_id.clone();
        for role in [2, 9, 10, 1] {
            assign(self, &scanner_id, role);
        }
        self.scanner.graph_roles.push("Directory.Read.All".into());
    }
}

impl SimTenant {
    /// Gives a generated tenant the owners a real estate has, deterministically for `seed` (with
    /// a generator of its own, so the privileges above do not change): one user per hundred
    /// identities (at least five; one in ten, and the last, a guest); most applications owned by a user or two,
    /// one in fifty also by a managed identity (an owner that can add itself a credential); a few
    /// service principals and a third of the groups owned by users, the first role-assignable
    /// group by the last user, a guest; and one application with 25 owners, more than `$expand` returns.
    fn add_realistic_ownership(&mut self, identities: usize, seed: u32) {
        let mut rng = fastrand::Rng::with_seed(u64::from(seed) ^ 0x0a3e_5e11);
        let user_count = (identities / 100).max(5);
        let user_id = |u: usize| format!("{seed:08x}-8000-4000-8000-{u:012x}");
        for u in 0..user_count {
            let guest = u % 10 == 9 || u + 1 == user_count;
            let (name, upn, kind) = if guest {
                (
                    format!("Partner {u:05}"),
                    format!("partner{u:05}_fabrikam.com#EXT#@generated.onmicrosoft.com"),
                    "Guest",
                )
            } else {
                (
                    format!("User {u:05}"),
                    format!("user{u:05}@generated.onmicrosoft.com"),
                    "Member",
                )
            };
            self.users.push(json!({
                "id": user_id(u), "displayName": name, "userPrincipalName": upn,
                "userType": kind, "accountEnabled": true,
            }));
        }
        let identity_ids: Vec<String> = self
            .service_principals
            .iter()
            .filter(|sp| sp["servicePrincipalType"] == "ManagedIdentity")
            .filter_map(|sp| sp["id"].as_str().map(str::to_owned))
            .collect();
        let field = |object: &Value, name: &str| object[name].as_str().map(str::to_owned);
        let applications: Vec<String> = self
            .applications
            .iter()
            .filter_map(|a| field(a, "id"))
            .collect();
        for (a, app) in applications.iter().enumerate() {
            let mut owners = Vec::new();
            if rng.u32(0..100) < 70 {
                for _ in 0..rng.usize(1..3) {
                    owners.push(user_id(rng.usize(0..user_count)));
                }
            }
            if rng.u32(0..100) < 2 && !identity_ids.is_empty() {
                owners.push(identity_ids[rng.usize(0..identity_ids.len())].clone());
            }
            if a == 0 && user_count >= 25 {
                owners = (0..25).map(user_id).collect();
            }
            owners.sort();
            owners.dedup();
            if !owners.is_empty() {
                self.owners.insert(app.clone(), owners);
            }
        }
        let application_sps: Vec<String> = self
            .service_principals
            .iter()
            .filter(|sp| {
                sp["servicePrincipalType"] == "Application"
                    && sp["appOwnerOrganizationId"].as_str() == Some(self.tenant_id.as_str())
            })
            .filter_map(|sp| field(sp, "id"))
            .collect();
        for sp in application_sps {
            if rng.u32(0..100) < 5 {
                self.owners
                    .insert(sp, vec![user_id(rng.usize(0..user_count))]);
            }
        }
        let groups: Vec<String> = self.groups.iter().filter_map(|g| field(g, "id")).collect();
        for (g, group) in groups.iter().enumerate() {
            if g == 0 {
                // A guest owns the first role-assignable group.
                self.owners
                    .insert(group.clone(), vec![user_id(user_count - 1)]);
            } else if rng.u32(0..100) < 33 {
                self.owners
                    .insert(group.clone(), vec![user_id(rng.usize(0..user_count))]);
            }
        }
    }
}

/// Microsoft Graph's service principal as it appears in every tenant (appRoles trimmed).
fn microsoft_graph_service_principal() -> Value {
    json!({
        "id": "5f7c0bd6-0d67-4b8d-9a53-000000000003",
        "appId": "00000003-0000-0000-c000-000000000000",
        "displayName": "Microsoft Graph",
        "servicePrincipalType": "Application",
        "alternativeNames": [],
        "accountEnabled": true,
        "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        "servicePrincipalNames": ["00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com"],
        "tags": [],
        "passwordCredentials": [],
        "keyCredentials": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_tenant_parses_and_has_both_kinds() {
        let demo = SimTenant::demo().expect("demo tenant is valid JSON");
        let names: Vec<&Value> = demo
            .service_principals
            .iter()
            .filter(|sp| sp["servicePrincipalType"] == "ManagedIdentity")
            .collect();
        assert!(names.len() >= 8);
        let explicit = |flag: &str| {
            names
                .iter()
                .filter(|sp| {
                    sp["alternativeNames"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|n| n == flag))
                })
                .count()
        };
        assert!(explicit("isExplicit=True") >= 2);
        assert!(explicit("isExplicit=False") >= 2);
    }

    #[test]
    fn generated_identities_live_in_the_generated_estate() {
        let tenant = SimTenant::generated_with(600, 3, EstateSize::default());
        let arm = &tenant.arm;
        let estate = arm.estate.as_ref().expect("an estate");
        let queries = crate::arm::queries::IDENTITY_RESOURCES;
        let hosts: std::collections::BTreeMap<String, Value> = (0..estate.count(queries))
            .filter_map(|i| estate.row(queries, i))
            .map(|r| (r["id"].as_str().unwrap_or_default().to_ascii_lowercase(), r))
            .collect();
        for sp in tenant
            .service_principals
            .iter()
            .filter(|sp| sp["servicePrincipalType"] == "ManagedIdentity")
        {
            let arm_id = sp["alternativeNames"][1].as_str().expect("arm id");
            if sp["alternativeNames"][0] == "isExplicit=True" {
                assert!(arm.has_identity(arm_id), "{arm_id}");
            } else {
                let host = hosts
                    .get(&arm_id.to_ascii_lowercase())
                    .expect("the host exists");
                assert_eq!(host["principalId"], sp["id"], "{arm_id}");
            }
        }
        // Every group and application an assignment names exists in Graph.
        let known: std::collections::BTreeSet<String> = tenant
            .service_principals
            .iter()
            .chain(tenant.groups.iter())
            .filter_map(|o| o["id"].as_str().map(str::to_owned))
            .collect();
        let assignments = crate::arm::queries::ROLE_ASSIGNMENTS;
        for i in 0..estate.count(assignments) {
            let row = estate.row(assignments, i).expect("row");
            let principal = row["principalId"].as_str().expect("principal");
            let kind = row["principalType"].as_str().expect("type");
            if kind == "Group" || (kind == "ServicePrincipal" && !principal.contains("-dead-")) {
                assert!(known.contains(principal), "{row}");
            }
        }
        assert!(!arm.storage_accounts.is_empty() && !arm.eligible_role_assignments.is_empty());
        let none = SimTenant::generated_with(10, 3, EstateSize::none());
        assert!(none.arm.estate.is_none() && none.arm.subscriptions.is_empty());
    }

    #[test]
    fn generated_tenants_are_deterministic() {
        assert_eq!(SimTenant::generated(50, 7), SimTenant::generated(50, 7));
        assert_eq!(
            SimTenant::generated(50, 7).service_principals.len(),
            53,
            "50 identities, Microsoft Graph, 2 applications"
        );
    }
}
