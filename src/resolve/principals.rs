//! Principals resolved for the rules: each app role assignment named and tiered through the
//! resource's `appRoles` and the classification data, each transitive group marked privileged
//! or not, directory roles (direct or through a group, active or eligible, tenant or AU scope),
//! delegated grants, credentials and Azure RBAC roles gathered into one [`PrincipalView`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::azure::{AzureIndex, ResolvedAzureRole};
use super::by_lowercase_id;
use super::roles::RoleIndex;
use crate::classification::{Classifier, Tier};
use crate::model::{CredentialHome, CredentialKind, RoleState, SubjectKind, Timestamp};
use crate::snapshot::graph::{
    Credential, DirectoryObject, OAuth2PermissionGrant, ResourceServicePrincipal, RoleAssignment,
    RoleDefinition, ServicePrincipal,
};
use crate::snapshot::{CredentialServicePrincipal, Dataset, DatasetName, TenantSnapshot};

/// An application permission, resolved to its name and tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAppRole {
    /// The assignment id (what to delete).
    pub assignment_id: String,
    /// Object id of the resource service principal.
    pub resource_id: String,
    /// Application id of the resource (e.g. Microsoft Graph's `00000003-…`).
    pub resource_app_id: Option<String>,
    /// Resource display name.
    pub resource_name: Option<String>,
    /// App role id.
    pub app_role_id: String,
    /// Permission name, e.g. `Mail.Read`; `None` when the resource does not define the role.
    pub permission: Option<String>,
    /// Enterprise Access Model tier.
    pub tier: Tier,
    /// False when the tier comes from the name heuristic rather than the dataset.
    pub classified: bool,
    /// When it was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<String>,
}

/// A group the principal belongs to (directly or transitively).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGroup {
    /// Group object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Role-assignable group.
    pub is_assignable_to_role: Option<bool>,
    /// Security group.
    pub security_enabled: Option<bool>,
    /// Why the group counts as privileged (empty: not privileged).
    pub privileged_because: Vec<String>,
}

/// A directory role the principal holds, directly or through a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedDirectoryRole {
    /// Assignment or schedule id.
    pub assignment_id: String,
    /// Role definition id.
    pub role_definition_id: String,
    /// Role name.
    pub role_name: String,
    /// Enterprise Access Model tier.
    pub tier: Tier,
    /// False when the role is not in the classification data (for a custom role: when not all
    /// of its actions are, so a name heuristic tiered some).
    pub classified: bool,
    /// Microsoft's "privileged" label (or ControlPlane tier).
    pub is_privileged: bool,
    /// Active or eligible.
    pub state: RoleState,
    /// `/` (tenant) or `/administrativeUnits/{id}`.
    pub directory_scope_id: String,
    /// The group the role is held through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group: Option<GroupRef>,
}

impl ResolvedDirectoryRole {
    /// True when the role applies to the whole tenant.
    pub fn is_tenant_scope(&self) -> bool {
        self.directory_scope_id == "/"
    }
}

/// A group named in evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    /// Group object id.
    pub id: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// A delegated permission grant where the principal is the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGrant {
    /// Grant id.
    pub id: String,
    /// Resource service principal.
    pub resource_id: String,
    /// Resource name, when known.
    pub resource_name: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// `AllPrincipals` or `Principal`.
    pub consent_type: Option<String>,
}

/// A secret or certificate on a service principal or its application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCredential {
    /// Secret (`password`) or certificate (`certificate`).
    pub kind: CredentialKind,
    /// Where it lives.
    pub home: CredentialHome,
    /// Credential id.
    pub key_id: Option<String>,
    /// Friendly name.
    pub display_name: Option<String>,
    /// Start of validity.
    pub start: Option<Timestamp>,
    /// End of validity.
    pub end: Option<Timestamp>,
}

/// Everything known about one principal, resolved for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalView {
    /// Object id.
    pub id: String,
    /// Application id.
    pub app_id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Kind.
    pub kind: SubjectKind,
    /// Whether sign-in is enabled.
    pub account_enabled: Option<bool>,
    /// Application permissions; `None` when unknown.
    pub app_roles: Option<Vec<ResolvedAppRole>>,
    /// Transitive groups; `None` when unknown.
    pub groups: Option<Vec<ResolvedGroup>>,
    /// Directory roles; `None` when unknown.
    pub directory_roles: Option<Vec<ResolvedDirectoryRole>>,
    /// Delegated grants as client; `None` when unknown.
    pub delegated_grants: Option<Vec<ResolvedGrant>>,
    /// Azure RBAC roles, direct or through a group; `None` when the Azure plane is unknown.
    pub azure_roles: Option<Vec<ResolvedAzureRole>>,
    /// Credentials (service principals only).
    pub credentials: Vec<ResolvedCredential>,
    /// Data sets that could not be read for this principal.
    pub unknown: Vec<DatasetName>,
}

impl PrincipalView {
    /// A subject known only by its id (and a name to show): nothing collected about it, every
    /// data set unknown. Findings about the scanner, an expired suppression's target or a
    /// deleted principal use it.
    pub fn known_only_by_id(id: &str, display_name: &str, kind: SubjectKind) -> Self {
        Self {
            id: id.to_owned(),
            app_id: None,
            display_name: display_name.to_owned(),
            kind,
            account_enabled: None,
            app_roles: None,
            groups: None,
            directory_roles: None,
            delegated_grants: None,
            azure_roles: None,
            credentials: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// The highest tier across Graph permissions, directory roles and Azure roles, if it holds
    /// any.
    pub fn tier(&self) -> Option<Tier> {
        let app = self.app_roles.iter().flatten().map(|r| r.tier);
        let roles = self.directory_roles.iter().flatten().map(|r| r.tier);
        let azure = self.azure_roles.iter().flatten().map(|r| r.tier);
        app.chain(roles).chain(azure).max()
    }

    /// True when it is a managed identity.
    pub fn is_managed_identity(&self) -> bool {
        self.kind != SubjectKind::ServicePrincipal
    }

    /// Privileged groups it belongs to.
    pub fn privileged_groups(&self) -> impl Iterator<Item = &ResolvedGroup> {
        self.groups
            .iter()
            .flatten()
            .filter(|g| !g.privileged_because.is_empty())
    }
}

pub(super) fn credentials_of(c: &CredentialServicePrincipal) -> Vec<ResolvedCredential> {
    let make = |kind, home, cred: &Credential| ResolvedCredential {
        kind,
        home,
        key_id: cred.key_id.clone(),
        display_name: cred.display_name.clone(),
        start: cred.start_date_time.clone(),
        end: cred.end_date_time.clone(),
    };
    let sp = &c.service_principal;
    let mut out: Vec<ResolvedCredential> = Vec::new();
    out.extend(
        c.application_password_credentials
            .iter()
            .map(|k| make(CredentialKind::Password, CredentialHome::Application, k)),
    );
    out.extend(
        c.application_key_credentials
            .iter()
            .map(|k| make(CredentialKind::Certificate, CredentialHome::Application, k)),
    );
    out.extend(sp.password_credentials.iter().map(|k| {
        make(
            CredentialKind::Password,
            CredentialHome::ServicePrincipal,
            k,
        )
    }));
    out.extend(sp.key_credentials.iter().map(|k| {
        make(
            CredentialKind::Certificate,
            CredentialHome::ServicePrincipal,
            k,
        )
    }));
    out
}

/// The snapshot indexed for resolving principals.
pub(super) struct SnapshotIndex<'a> {
    snapshot: &'a TenantSnapshot,
    classifier: &'a Classifier,
    resources: HashMap<&'a str, &'a ResourceServicePrincipal>,
    role_names: HashMap<String, String>,
    /// Role definitions by lower-case id and template id (custom roles are tiered by their
    /// actions).
    role_definitions: HashMap<String, &'a RoleDefinition>,
    roles: RoleIndex<'a>,
    configured: BTreeSet<String>,
    grants_by_client: Option<HashMap<String, Vec<&'a OAuth2PermissionGrant>>>,
    pub(super) azure: Option<AzureIndex<'a>>,
}

impl<'a> SnapshotIndex<'a> {
    pub(super) fn new(snapshot: &'a TenantSnapshot, classifier: &'a Classifier) -> Self {
        let resources: HashMap<&str, &ResourceServicePrincipal> = snapshot
            .resources
            .iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        let role_names: HashMap<String, String> = snapshot
            .role_definitions
            .known()
            .into_iter()
            .flatten()
            .flat_map(|d| {
                let name = d.display_name.clone().unwrap_or_else(|| d.id.clone());
                let mut keys = vec![(d.id.to_ascii_lowercase(), name.clone())];
                if let Some(t) = &d.template_id {
                    keys.push((t.to_ascii_lowercase(), name));
                }
                keys
            })
            .collect();
        let role_definitions: HashMap<String, &RoleDefinition> = snapshot
            .role_definitions
            .known()
            .into_iter()
            .flatten()
            .flat_map(|d| {
                let mut keys = vec![(d.id.to_ascii_lowercase(), d)];
                if let Some(t) = &d.template_id {
                    keys.push((t.to_ascii_lowercase(), d));
                }
                keys
            })
            .collect();
        let configured: BTreeSet<String> = snapshot
            .settings
            .privileged_group_ids
            .iter()
            .map(|g| g.to_ascii_lowercase())
            .collect();
        let grants_by_client = snapshot
            .delegated_grants
            .known()
            .map(|grants| by_lowercase_id(grants, |g| &g.client_id));
        Self {
            snapshot,
            classifier,
            resources,
            role_names,
            role_definitions,
            roles: RoleIndex::new(snapshot),
            configured,
            grants_by_client,
            azure: snapshot
                .azure
                .known()
                .map(|azure| AzureIndex::new(azure, &snapshot.tenant_id)),
        }
    }

    pub(super) fn view(
        &self,
        sp: &ServicePrincipal,
        kind: SubjectKind,
        credentials: Vec<ResolvedCredential>,
    ) -> PrincipalView {
        let data = self.snapshot.principals.get(&sp.id);
        let mut unknown = Vec::new();
        let app_roles = match data.map(|d| &d.app_role_assignments) {
            Some(Dataset::Collected { items }) => Some(
                items
                    .iter()
                    .map(|a| {
                        let resource = self.resources.get(a.resource_id.as_str());
                        let resource_app_id = resource.and_then(|r| r.app_id.clone());
                        let defined = resource.and_then(|r| {
                            r.app_roles
                                .iter()
                                .find(|role| role.id.eq_ignore_ascii_case(&a.app_role_id))
                        });
                        let class = self.classifier.app_role(
                            resource_app_id.as_deref().unwrap_or_default(),
                            &a.app_role_id,
                            defined.and_then(|r| r.value.as_deref()),
                        );
                        ResolvedAppRole {
                            assignment_id: a.id.clone(),
                            resource_id: a.resource_id.clone(),
                            resource_app_id,
                            resource_name: a
                                .resource_display_name
                                .clone()
                                .or_else(|| resource.and_then(|r| r.display_name.clone())),
                            app_role_id: a.app_role_id.clone(),
                            permission: defined
                                .and_then(|r| r.value.clone())
                                .or_else(|| class.value.map(str::to_owned)),
                            tier: class.tiering.tier,
                            classified: class.tiering.classified,
                            granted_at: a.created_date_time.clone(),
                        }
                    })
                    .collect(),
            ),
            _ => {
                unknown.push(DatasetName::AppRoleAssignments);
                None
            }
        };
        let memberships: Option<&Vec<DirectoryObject>> = data.and_then(|d| d.memberships.known());
        if memberships.is_none() {
            unknown.push(DatasetName::Memberships);
        }
        let groups: Option<Vec<ResolvedGroup>> = memberships.map(|objects| {
            objects
                .iter()
                .filter(|o| o.is_group())
                .map(|g| ResolvedGroup {
                    id: g.id.clone(),
                    display_name: g.display_name.clone(),
                    is_assignable_to_role: g.is_assignable_to_role,
                    security_enabled: g.security_enabled,
                    privileged_because: self.group_privileges(g),
                })
                .collect()
        });
        let directory_roles = self.directory_roles(&sp.id, groups.as_deref());
        if directory_roles.is_none() {
            unknown.push(DatasetName::DirectoryRoles);
        }
        let delegated_grants = match &self.grants_by_client {
            Some(by_client) => Some(
                by_client
                    .get(&sp.id.to_ascii_lowercase())
                    .into_iter()
                    .flatten()
                    .map(|g| ResolvedGrant {
                        id: g.id.clone(),
                        resource_id: g.resource_id.clone(),
                        resource_name: self
                            .resources
                            .get(g.resource_id.as_str())
                            .and_then(|r| r.display_name.clone()),
                        scopes: g
                            .scope
                            .as_deref()
                            .unwrap_or_default()
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect(),
                        consent_type: g.consent_type.clone(),
                    })
                    .collect(),
            ),
            None => {
                unknown.push(DatasetName::DelegatedGrants);
                None
            }
        };
        let azure_roles = match &self.azure {
            Some(index) => Some(index.roles_of(self.classifier, &sp.id, groups.as_deref())),
            None => {
                unknown.push(DatasetName::AzureRoleAssignments);
                None
            }
        };
        PrincipalView {
            id: sp.id.clone(),
            app_id: sp.app_id.clone(),
            display_name: sp.display_name.clone().unwrap_or_else(|| sp.id.clone()),
            kind,
            account_enabled: sp.account_enabled,
            app_roles,
            groups,
            directory_roles,
            delegated_grants,
            azure_roles,
            credentials,
            unknown,
        }
    }

    fn group_privileges(&self, group: &DirectoryObject) -> Vec<String> {
        let mut reasons = Vec::new();
        if group.is_assignable_to_role == Some(true) {
            reasons.push("role-assignable group".to_owned());
        }
        for (state, assignment) in self.roles.holds_role(&group.id) {
            let name = self.role_name(&assignment.role_definition_id);
            let state = match state {
                RoleState::Active => "active",
                RoleState::Eligible => "eligible",
            };
            reasons.push(format!("holds the {state} directory role {name}"));
        }
        if self.configured.contains(&group.id.to_ascii_lowercase()) {
            reasons.push("listed in MI_ASSESS_PRIVILEGED_GROUPS".to_owned());
        }
        reasons.sort();
        reasons.dedup();
        reasons
    }

    fn role_name(&self, role_definition_id: &str) -> String {
        self.classifier
            .directory_role(role_definition_id)
            .map(|c| c.name.to_owned())
            .or_else(|| {
                self.role_names
                    .get(&role_definition_id.to_ascii_lowercase())
                    .cloned()
            })
            .unwrap_or_else(|| role_definition_id.to_owned())
    }

    fn resolve_role(
        &self,
        assignment: &RoleAssignment,
        state: RoleState,
        via_group: Option<GroupRef>,
    ) -> ResolvedDirectoryRole {
        let class = self
            .classifier
            .directory_role(&assignment.role_definition_id);
        let (tier, classified, is_privileged) = match class {
            Some(c) => (
                c.tiering.tier,
                c.tiering.classified,
                c.is_privileged || c.tiering.tier == Tier::ControlPlane,
            ),
            // A custom role (or one newer than the data): tiered by its actions, every block's
            // (conditions only narrow them, so they are not relied on). Without a definition, or
            // with no actions, it is never assumed harmless.
            None => match self
                .role_definitions
                .get(&assignment.role_definition_id.to_ascii_lowercase())
                .filter(|d| !d.role_permissions.is_empty())
            {
                Some(definition) => {
                    let tiering = self.classifier.directory_role_by_actions(
                        definition
                            .role_permissions
                            .iter()
                            .flat_map(|p| p.allowed_resource_actions.iter())
                            .map(String::as_str),
                    );
                    (
                        tiering.tier,
                        tiering.classified,
                        definition.is_privileged.unwrap_or(false)
                            || tiering.tier == Tier::ControlPlane,
                    )
                }
                None => (Tier::ManagementPlane, false, false),
            },
        };
        ResolvedDirectoryRole {
            assignment_id: assignment.id.clone(),
            role_definition_id: assignment.role_definition_id.clone(),
            role_name: self.role_name(&assignment.role_definition_id),
            tier,
            classified,
            is_privileged,
            state,
            directory_scope_id: assignment
                .directory_scope_id
                .clone()
                .unwrap_or_else(|| "/".to_owned()),
            via_group,
        }
    }

    /// Roles held directly or through any of the principal's groups; `None` when active role
    /// assignments could not be read (eligible-only data cannot rule anything out).
    fn directory_roles(
        &self,
        principal_id: &str,
        groups: Option<&[ResolvedGroup]>,
    ) -> Option<Vec<ResolvedDirectoryRole>> {
        self.roles.active.as_ref()?;
        let mut out = Vec::new();
        for (state, assignment) in self.roles.holds_role(principal_id) {
            out.push(self.resolve_role(assignment, state, None));
        }
        for group in groups.unwrap_or_default() {
            for (state, assignment) in self.roles.holds_role(&group.id) {
                let via = GroupRef {
                    id: group.id.clone(),
                    display_name: group.display_name.clone(),
                };
                out.push(self.resolve_role(assignment, state, Some(via)));
            }
        }
        // One entry per (role, scope, state, path): schedules and assignments can repeat.
        let mut seen = BTreeMap::new();
        for role in out {
            let key = (
                role.role_definition_id.to_ascii_lowercase(),
                role.directory_scope_id.clone(),
                role.state == RoleState::Active,
                role.via_group.as_ref().map(|g| g.id.clone()),
            );
            seen.entry(key).or_insert(role);
        }
        Some(seen.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Resolver;
    use crate::classification::Tier;
    use crate::snapshot::TenantSnapshot;

    const MI: &str = "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01";

    /// A snapshot with one managed identity holding one directory role, defined as given.
    fn holding(role_id: &str, definition: serde_json::Value) -> TenantSnapshot {
        serde_json::from_value(serde_json::json!({
            "schemaVersion": "1.0.0",
            "tenantId": "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50",
            "collectedAt": "2026-01-01T00:00:00Z",
            "graphEndpoint": "https://graph.microsoft.com",
            "scanner": {},
            "managedIdentities": [{"id": MI, "servicePrincipalType": "ManagedIdentity"}],
            "roleDefinitions": {"status": "collected", "items": [definition]},
            "roleAssignments": {"status": "collected", "items": [
                {"id": "ra-1", "principalId": MI, "roleDefinitionId": role_id, "directoryScopeId": "/"}
            ]},
            "roleEligibilitySchedules": {"status": "collected", "items": []},
        }))
        .expect("snapshot")
    }

    fn role_of(snapshot: &TenantSnapshot) -> super::ResolvedDirectoryRole {
        let resolver = Resolver::new(snapshot);
        let view = resolver.subject(MI).expect("subject");
        view.directory_roles
            .expect("roles known")
            .into_iter()
            .next()
            .expect("one role")
    }

    /// A custom role is tiered by its actions through the per-action classification, never
    /// left at the unclassified default when its actions say more.
    #[test]
    fn custom_roles_are_tiered_by_their_actions() {
        let custom = "c0ffee00-0000-4000-8000-000000000001";
        let credentials = holding(
            custom,
            serde_json::json!({
                "id": custom, "displayName": "App credential manager", "isBuiltIn": false,
                "rolePermissions": [{"allowedResourceActions": [
                    "microsoft.directory/applications/standard/read",
                    "microsoft.directory/applications/credentials/update"
                ], "condition": null}]
            }),
        );
        let role = role_of(&credentials);
        assert_eq!(role.role_name, "App credential manager");
        assert_eq!(role.tier, Tier::ControlPlane);
        assert!(role.classified, "every action is in the data");
        assert!(role.is_privileged, "ControlPlane counts as privileged");

        let reader = holding(
            custom,
            serde_json::json!({
                "id": custom, "displayName": "Group reader", "isBuiltIn": false,
                "rolePermissions": [{"allowedResourceActions": [
                    "microsoft.directory/groups/standard/read"
                ]}]
            }),
        );
        let role = role_of(&reader);
        assert_eq!(role.tier, Tier::UserAccess);
        assert!(role.classified && !role.is_privileged);

        // No actions known: never assumed harmless.
        let opaque = holding(
            custom,
            serde_json::json!({"id": custom, "displayName": "Opaque", "isBuiltIn": false}),
        );
        let role = role_of(&opaque);
        assert_eq!(role.tier, Tier::ManagementPlane);
        assert!(!role.classified && !role.is_privileged);

        // A built-in role keeps the role-level classification.
        let global_admin = "62e90394-69f5-4237-9190-012177145e10";
        let builtin = holding(
            global_admin,
            serde_json::json!({"id": global_admin, "templateId": global_admin, "displayName": "Global Administrator", "isBuiltIn": true,
                "rolePermissions": [{"allowedResourceActions": ["microsoft.directory/groups/standard/read"]}]}),
        );
        let role = role_of(&builtin);
        assert_eq!(role.tier, Tier::ControlPlane);
    }
}
