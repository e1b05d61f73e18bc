//! The simulated tenant: the directory objects the Graph simulator serves, as Graph JSON.
//!
//! Objects are stored exactly as Graph returns them (camelCase JSON), so `$select` projection,
//! paging and error behaviour can be applied generically. Two sources: the embedded demo
//! tenant (`demo_tenant.json`, hand-written to look like a real estate) and a deterministic
//! generator for scale tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::token::TokenSubject;

/// A simulated tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Direct members of each group (service principals or groups), by group id.
    #[serde(default)]
    pub group_members: BTreeMap<String, Vec<String>>,
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
}

/// The embedded demo tenant.
const DEMO_TENANT: &str = include_str!("demo_tenant.json");

/// The demo's example `suppressions.json`: one accepted risk and one whose acceptance expired.
pub const DEMO_SUPPRESSIONS: &str = include_str!("demo_suppressions.json");

impl SimTenant {
    /// The demo tenant shipped with mi-assess.
    pub fn demo() -> Result<Self, serde_json::Error> {
        serde_json::from_str(DEMO_TENANT)
    }

    /// A deterministic tenant with `identities` managed identities (alternating system- and
    /// user-assigned across several resource types) plus Microsoft Graph's own service principal.
    pub fn generated(identities: usize, seed: u32) -> Self {
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
        const HOSTS: [&str; 5] = [
            "Microsoft.Web/sites",
            "Microsoft.Compute/virtualMachines",
            "Microsoft.Logic/workflows",
            "Microsoft.DataFactory/factories",
            "Microsoft.Automation/automationAccounts",
        ];
        let mut service_principals = vec![microsoft_graph_service_principal()];
        for i in 0..identities {
            let id = format!("{seed:08x}-{:04x}-4000-8000-{i:012x}", (i / 65536) % 65536);
            let app_id = format!("{seed:08x}-a000-4000-8000-{i:012x}");
            let sub = format!("{:08x}-1111-4000-8000-{:012x}", seed, i % 7);
            let rg = format!("rg-workload-{:03}", i % 40);
            let (names, display) = if i % 2 == 0 {
                let host = HOSTS[(i / 2) % HOSTS.len()];
                let name = format!("res-{i:06}");
                (
                    vec![
                        "isExplicit=False".to_owned(),
                        format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/{host}/{name}"),
                    ],
                    name,
                )
            } else {
                let name = format!("id-{i:06}");
                (
                    vec![
                        "isExplicit=True".to_owned(),
                        format!(
                            "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
                        ),
                    ],
                    name,
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
        Self {
            tenant_id,
            scanner,
            service_principals,
            applications: Vec::new(),
            groups: Vec::new(),
            group_members: BTreeMap::new(),
            app_role_assignments: Vec::new(),
            role_definitions: Vec::new(),
            role_assignments: Vec::new(),
            role_eligibility_schedules: Vec::new(),
            role_assignment_schedules: Vec::new(),
            oauth2_permission_grants: Vec::new(),
            denied: Vec::new(),
        }
    }

    /// What `GET /servicePrincipals/{id}/transitiveMemberOf` returns: every group that contains
    /// the principal directly or through nested groups, plus the activated directory roles it
    /// holds directly at tenant scope.
    pub fn transitive_member_of(&self, principal_id: &str) -> Vec<Value> {
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut frontier = vec![principal_id.to_ascii_lowercase()];
        while let Some(member) = frontier.pop() {
            for (group, members) in &self.group_members {
                if members.iter().any(|m| m.eq_ignore_ascii_case(&member))
                    && found.insert(group.to_ascii_lowercase())
                {
                    frontier.push(group.to_ascii_lowercase());
                }
            }
        }
        let mut out: Vec<Value> = self
            .groups
            .iter()
            .filter(|g| {
                g.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| found.contains(&id.to_ascii_lowercase()))
            })
            .map(|g| {
                let mut g = g.clone();
                g["@odata.type"] = Value::from("#microsoft.graph.group");
                g
            })
            .collect();
        for assignment in &self.role_assignments {
            let mine = assignment
                .get("principalId")
                .and_then(Value::as_str)
                .is_some_and(|p| p.eq_ignore_ascii_case(principal_id));
            let tenant_scope =
                assignment.get("directoryScopeId").and_then(Value::as_str) == Some("/");
            if !(mine && tenant_scope) {
                continue;
            }
            let template = assignment
                .get("roleDefinitionId")
                .cloned()
                .unwrap_or(Value::Null);
            let name = self
                .role_definitions
                .iter()
                .find(|d| d.get("id") == Some(&template))
                .and_then(|d| d.get("displayName").cloned())
                .unwrap_or(Value::Null);
            out.push(json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": format!("{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, template.to_string().as_bytes())),
                "displayName": name,
                "roleTemplateId": template,
            }));
        }
        out
    }

    /// Finds a service principal by object id (case-insensitive).
    pub fn service_principal(&self, id: &str) -> Option<&Value> {
        self.service_principals.iter().find(|sp| {
            sp.get("id")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(id))
        })
    }

    /// Finds a service principal by application id (case-insensitive).
    pub fn service_principal_by_app_id(&self, app_id: &str) -> Option<&Value> {
        self.service_principals.iter().find(|sp| {
            sp.get("appId")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(app_id))
        })
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
    fn generated_tenants_are_deterministic() {
        assert_eq!(SimTenant::generated(50, 7), SimTenant::generated(50, 7));
        assert_eq!(SimTenant::generated(50, 7).service_principals.len(), 51);
    }
}
