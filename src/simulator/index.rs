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
    user_by_id: HashMap<String, usize>,
    app_by_id: HashMap<String, usize>,
    owners_of: HashMap<String, Vec<String>>,
    owned_by: HashMap<String, Vec<String>>,
}

/// Graph application permissions that read full user objects; without one, users in
/// directory-object collections come back with limited information (type and id only).
const USER_READ_ROLES: [&str; 4] = [
    "User.Read.All",
    "User.ReadBasic.All",
    "Directory.Read.All",
    "User.ReadWrite.All",
];

/// Graph application permissions that read full group objects; without one, groups in
/// directory-object collections (a principal's `transitiveMemberOf`, owners, owned objects)
/// come back with limited information (type and id only).
const GROUP_READ_ROLES: [&str; 6] = [
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

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
        let by_id = |objects: &[Value]| -> HashMap<String, usize> {
            objects
                .iter()
                .enumerate()
                .filter_map(|(i, o)| key(o, "id").map(|id| (id, i)))
                .collect()
        };
        let group_by_id = by_id(&tenant.groups);
        let user_by_id = by_id(&tenant.users);
        let app_by_id = by_id(&tenant.applications);
        let mut owners_of: HashMap<String, Vec<String>> = HashMap::new();
        let mut owned_by: HashMap<String, Vec<String>> = HashMap::new();
        for (object, owners) in &tenant.owners {
            for owner in owners {
                owners_of
                    .entry(object.to_ascii_lowercase())
                    .or_default()
                    .push(owner.to_ascii_lowercase());
                owned_by
                    .entry(owner.to_ascii_lowercase())
                    .or_default()
                    .push(object.to_ascii_lowercase());
            }
        }
        Self {
            tenant,
            sp_by_id,
            sp_by_app_id,
            assignments_by_principal,
            groups_of_member,
            group_by_id,
            user_by_id,
            app_by_id,
            owners_of,
            owned_by,
        }
    }

    /// A group by object id.
    pub fn group(&self, id: &str) -> Option<&Value> {
        self.group_by_id
            .get(&id.to_ascii_lowercase())
            .and_then(|i| self.tenant.groups.get(*i))
    }

    /// An application registration by object id.
    pub fn application(&self, id: &str) -> Option<&Value> {
        self.app_by_id
            .get(&id.to_ascii_lowercase())
            .and_then(|i| self.tenant.applications.get(*i))
    }

    /// Any directory object by id, with its `@odata.type`, as a directory-object collection
    /// returns it: a user the scanner may not read in full (no User.Read.All or
    /// Directory.Read.All) comes back with limited information, only its type and id.
    pub fn directory_object(&self, id: &str) -> Option<Value> {
        let typed = |object: &Value, kind: &str| {
            let mut object = object.clone();
            object["@odata.type"] = Value::from(format!("#microsoft.graph.{kind}"));
            object
        };
        let id_lower = id.to_ascii_lowercase();
        if let Some(sp) = self.service_principal(id) {
            return Some(typed(sp, "servicePrincipal"));
        }
        if let Some(user) = self
            .user_by_id
            .get(&id_lower)
            .and_then(|i| self.tenant.users.get(*i))
        {
            let readable = self
                .tenant
                .scanner
                .graph_roles
                .iter()
                .any(|r| USER_READ_ROLES.iter().any(|u| u.eq_ignore_ascii_case(r)));
            if readable {
                return Some(typed(user, "user"));
            }
            return Some(json!({"@odata.type": "#microsoft.graph.user", "id": user.get("id")}));
        }
        if let Some(group) = self.group(id) {
            return Some(self.readable_group(group));
        }
        self.application(id).map(|app| typed(app, "application"))
    }

    /// A group as a directory-object collection returns it: in full when the scanner holds a
    /// group-read permission, otherwise with limited information (type and id only).
    fn readable_group(&self, group: &Value) -> Value {
        let readable = self
            .tenant
            .scanner
            .graph_roles
            .iter()
            .any(|r| GROUP_READ_ROLES.iter().any(|g| g.eq_ignore_ascii_case(r)));
        if !readable {
            return json!({"@odata.type": "#microsoft.graph.group", "id": group.get("id")});
        }
        let mut group = group.clone();
        group["@odata.type"] = Value::from("#microsoft.graph.group");
        group
    }

    /// The owners of an application, service principal or group, as directory objects.
    pub fn owners_of(&self, id: &str) -> Vec<Value> {
        self.owners_of
            .get(&id.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|o| self.directory_object(o))
            .collect()
    }

    /// What a user or service principal owns, as directory objects.
    pub fn owned_by(&self, owner_id: &str) -> Vec<Value> {
        self.owned_by
            .get(&owner_id.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|o| self.directory_object(o))
            .collect()
    }

    /// What `GET /groups/{id}/transitiveMembers` returns: every member of the group, directly
    /// or through nested groups (the nested groups included), as directory objects.
    pub fn transitive_members(&self, group_id: &str) -> Vec<Value> {
        let mut members_of: HashMap<String, &Vec<String>> = HashMap::new();
        for (group, members) in &self.tenant.group_members {
            members_of.insert(group.to_ascii_lowercase(), members);
        }
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut frontier = vec![group_id.to_ascii_lowercase()];
        while let Some(group) = frontier.pop() {
            for member in members_of.get(&group).into_iter().flat_map(|m| m.iter()) {
                let member = member.to_ascii_lowercase();
                if found.insert(member.clone()) {
                    frontier.push(member);
                }
            }
        }
        found
            .iter()
            .filter_map(|id| self.directory_object(id))
            .collect()
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
            .map(|g| self.readable_group(g))
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
