//! Lookup indexes over a [`SimTenant`], so the simulator answers per-object requests in constant
//! time even for tenants of tens of thousands of identities.

use std::collections::{BTreeSet, HashMap};
use std::ops::Deref;

use serde_json::{Value, json};

use super::tenant::SimTenant;

/// A tenant plus its indexes; dereferences to the tenant.
#[derive(Debug)]
pub struct SimData {
    tenant: SimTenant,
    sp_by_id: HashMap<String, usize>,
    sp_by_app_id: HashMap<String, usize>,
    assignments_by_principal: HashMap<String, Vec<usize>>,
    groups_of_member: HashMap<String, Vec<String>>,
    group_by_id: HashMap<String, usize>,
}

impl Deref for SimData {
    type Target = SimTenant;

    fn deref(&self) -> &SimTenant {
        &self.tenant
    }
}

fn key(value: &Value, field: &str) -> Option<String> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
}

impl SimData {
    /// Indexes a tenant.
    pub fn new(tenant: SimTenant) -> Self {
        let mut sp_by_id = HashMap::new();
        let mut sp_by_app_id = HashMap::new();
        for (i, sp) in tenant.service_principals.iter().enumerate() {
            if let Some(id) = key(sp, "id") {
                sp_by_id.insert(id, i);
            }
            if let Some(app_id) = key(sp, "appId") {
                sp_by_app_id.insert(app_id, i);
            }
        }
        let mut assignments_by_principal: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, a) in tenant.app_role_assignments.iter().enumerate() {
            if let Some(p) = key(a, "principalId") {
                assignments_by_principal.entry(p).or_default().push(i);
            }
        }
        let mut groups_of_member: HashMap<String, Vec<String>> = HashMap::new();
        for (group, members) in &tenant.group_members {
            for member in members {
                groups_of_member
                    .entry(member.to_ascii_lowercase())
                    .or_default()
                    .push(group.to_ascii_lowercase());
            }
        }
        let group_by_id = tenant
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| key(g, "id").map(|id| (id, i)))
            .collect();
        Self {
            tenant,
            sp_by_id,
            sp_by_app_id,
            assignments_by_principal,
            groups_of_member,
            group_by_id,
        }
    }

    /// The tenant itself.
    pub fn tenant(&self) -> &SimTenant {
        &self.tenant
    }

    /// A service principal by object id.
    pub fn service_principal(&self, id: &str) -> Option<&Value> {
        self.sp_by_id
            .get(&id.to_ascii_lowercase())
            .and_then(|i| self.tenant.service_principals.get(*i))
    }

    /// A service principal by application id.
    pub fn service_principal_by_app_id(&self, app_id: &str) -> Option<&Value> {
        self.sp_by_app_id
            .get(&app_id.to_ascii_lowercase())
            .and_then(|i| self.tenant.service_principals.get(*i))
    }

    /// The app role assignments held by one principal.
    pub fn app_role_assignments_of(&self, principal_id: &str) -> Vec<&Value> {
        self.assignments_by_principal
            .get(&principal_id.to_ascii_lowercase())
            .map(|indexes| {
                indexes
                    .iter()
                    .filter_map(|i| self.tenant.app_role_assignments.get(*i))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `GET /servicePrincipals/{id}/transitiveMemberOf` returns: every group that contains
    /// the principal directly or through nested groups, plus the activated directory roles it
    /// holds directly at tenant scope.
    pub fn transitive_member_of(&self, principal_id: &str) -> Vec<Value> {
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut frontier = vec![principal_id.to_ascii_lowercase()];
        while let Some(member) = frontier.pop() {
            for group in self.groups_of_member.get(&member).into_iter().flatten() {
                if found.insert(group.clone()) {
                    frontier.push(group.clone());
                }
            }
        }
        let mut out: Vec<Value> = found
            .iter()
            .filter_map(|id| self.group_by_id.get(id))
            .filter_map(|i| self.tenant.groups.get(*i))
            .map(|g| {
                let mut g = g.clone();
                g["@odata.type"] = Value::from("#microsoft.graph.group");
                g
            })
            .collect();
        for assignment in &self.tenant.role_assignments {
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
                .tenant
                .role_definitions
                .iter()
                .find(|d| d.get("id") == Some(&template))
                .and_then(|d| d.get("displayName").cloned())
                .unwrap_or(Value::Null);
            out.push(json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, template.to_string().as_bytes()).to_string(),
                "displayName": name,
                "roleTemplateId": template,
            }));
        }
        out
    }
}
