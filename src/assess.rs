//! Assessment: a pure function from a [`TenantSnapshot`] to the records and findings a run
//! publishes. No I/O happens here, so every run can be replayed offline.
//!
//! First every principal (managed identity or credential-bearing service principal) is
//! *resolved*: its app role assignments are named and tiered through the resource's `appRoles`
//! and the classification data, its transitive groups are marked privileged or not, and its
//! directory roles (direct or through a group, active or eligible, tenant or AU scope) and its
//! Azure RBAC roles (direct or through a group, any scope) are gathered. Rules then read only
//! these resolved views.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::azure::{AzureIndex, ResolvedAzureRole};
use crate::classification::{Classifier, Tier};
use crate::graph::model::{
    Credential, DirectoryObject, ResourceServicePrincipal, RoleAssignment, ServicePrincipal,
};
use crate::inventory::{IdentityKind, IdentityRecord};
use crate::rules::{self, Finding, Severity};
use crate::snapshot::{CredentialServicePrincipal, Dataset, TenantSnapshot};

/// What one assessment produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// One record per managed identity, sorted by object id.
    pub identities: Vec<IdentityRecord>,
    /// Findings, sorted by severity (highest first), rule id, then finding id.
    pub findings: Vec<Finding>,
}

impl Assessment {
    /// Number of identities of one kind.
    pub fn count_kind(&self, kind: IdentityKind) -> usize {
        self.identities.iter().filter(|i| i.kind == kind).count()
    }
}

/// What kind of principal a view describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubjectKind {
    /// A system-assigned managed identity.
    SystemAssigned,
    /// A user-assigned managed identity.
    UserAssigned,
    /// An application service principal (not a managed identity).
    ServicePrincipal,
}

impl From<IdentityKind> for SubjectKind {
    fn from(kind: IdentityKind) -> Self {
        match kind {
            IdentityKind::SystemAssigned => Self::SystemAssigned,
            IdentityKind::UserAssigned => Self::UserAssigned,
        }
    }
}

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

/// How a directory role is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoleState {
    /// Active now (permanent or activated through PIM).
    Active,
    /// Eligible through PIM; can be activated.
    Eligible,
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
    /// False when the role is not in the classification data.
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

/// Where a credential lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialHome {
    /// On the application registration.
    Application,
    /// On the service principal object itself.
    ServicePrincipal,
}

/// A secret or certificate on a service principal or its application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCredential {
    /// Secret (`password`) or certificate (`certificate`).
    pub kind: String,
    /// Where it lives.
    pub home: CredentialHome,
    /// Credential id.
    pub key_id: Option<String>,
    /// Friendly name.
    pub display_name: Option<String>,
    /// Start of validity.
    pub start: Option<String>,
    /// End of validity.
    pub end: Option<String>,
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
    pub unknown: Vec<String>,
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

/// The resolved tenant the rules read.
#[derive(Debug, Clone)]
pub struct TenantView<'a> {
    /// The snapshot behind it.
    pub snapshot: &'a TenantSnapshot,
    /// Managed identities, by object id.
    pub identities: Vec<PrincipalView>,
    /// Credential-bearing service principals.
    pub service_principals: Vec<PrincipalView>,
    /// The Azure plane, indexed; `None` when it is unknown.
    pub azure: Option<AzureIndex<'a>>,
}

impl TenantView<'_> {
    /// Graph base URL for remediation commands.
    pub fn graph(&self) -> &str {
        &self.snapshot.graph_endpoint
    }
}

/// Assesses a snapshot.
pub fn assess(snapshot: &TenantSnapshot) -> Assessment {
    let view = resolve(snapshot, Classifier::embedded());
    let findings = rules::evaluate(&view);
    // Finding count and worst severity per subject, in one pass.
    let mut per_subject: HashMap<&str, (usize, Option<Severity>)> = HashMap::new();
    for finding in &findings {
        let entry = per_subject.entry(finding.identity_id.as_str()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.max(Some(finding.severity));
    }
    // The views move into the records: no second copy of every identity's privileges.
    let mut views: HashMap<String, PrincipalView> = view
        .identities
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    let mut identities: Vec<IdentityRecord> = snapshot
        .managed_identities
        .iter()
        .map(|sp| {
            let mut record = IdentityRecord::from_service_principal(sp);
            if let Some(view) = views.remove(&sp.id) {
                let (count, highest) = per_subject.get(sp.id.as_str()).copied().unwrap_or_default();
                record.attach(view, count, highest);
            }
            record
        })
        .collect();
    identities.sort_by(|a, b| a.id.cmp(&b.id));
    Assessment {
        identities,
        findings,
    }
}

/// Builds the resolved view of a snapshot.
pub fn resolve<'a>(snapshot: &'a TenantSnapshot, classifier: &Classifier) -> TenantView<'a> {
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
    let roles = RoleIndex::new(snapshot);
    let configured: BTreeSet<String> = snapshot
        .settings
        .privileged_group_ids
        .iter()
        .map(|g| g.to_ascii_lowercase())
        .collect();
    let azure = snapshot
        .azure
        .known()
        .map(|azure| AzureIndex::new(azure, &snapshot.tenant_id));
    let context = ResolveContext {
        snapshot,
        classifier,
        resources,
        role_names,
        roles,
        configured,
        azure: azure.as_ref(),
    };
    let identities = snapshot
        .managed_identities
        .iter()
        .map(|sp| {
            let kind = crate::inventory::classify(&sp.alternative_names)
                .kind
                .into();
            context.view(sp, kind, Vec::new())
        })
        .collect();
    let service_principals = snapshot
        .credential_service_principals
        .known()
        .into_iter()
        .flatten()
        .map(|c| {
            context.view(
                &c.service_principal,
                SubjectKind::ServicePrincipal,
                credentials_of(c),
            )
        })
        .collect();
    TenantView {
        snapshot,
        identities,
        service_principals,
        azure,
    }
}

fn credentials_of(c: &CredentialServicePrincipal) -> Vec<ResolvedCredential> {
    let make = |kind: &str, home, cred: &Credential| ResolvedCredential {
        kind: kind.to_owned(),
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
            .map(|k| make("password", CredentialHome::Application, k)),
    );
    out.extend(
        c.application_key_credentials
            .iter()
            .map(|k| make("certificate", CredentialHome::Application, k)),
    );
    out.extend(
        sp.password_credentials
            .iter()
            .map(|k| make("password", CredentialHome::ServicePrincipal, k)),
    );
    out.extend(
        sp.key_credentials
            .iter()
            .map(|k| make("certificate", CredentialHome::ServicePrincipal, k)),
    );
    out
}

/// Directory role assignments and schedules indexed by principal.
#[derive(Debug, Default)]
struct RoleIndex<'a> {
    active: Option<HashMap<String, Vec<&'a RoleAssignment>>>,
    eligible: Option<HashMap<String, Vec<&'a RoleAssignment>>>,
}

impl<'a> RoleIndex<'a> {
    fn new(snapshot: &'a TenantSnapshot) -> Self {
        let index = |data: &'a Dataset<Vec<RoleAssignment>>| {
            data.known().map(|items| {
                let mut map: HashMap<String, Vec<&'a RoleAssignment>> = HashMap::new();
                for item in items {
                    map.entry(item.principal_id.to_ascii_lowercase())
                        .or_default()
                        .push(item);
                }
                map
            })
        };
        Self {
            active: index(&snapshot.role_assignments),
            eligible: index(&snapshot.role_eligibility_schedules),
        }
    }

    /// True when a principal (a group) holds any role, active or eligible.
    fn holds_role(&self, principal_id: &str) -> Vec<(RoleState, &'a RoleAssignment)> {
        let key = principal_id.to_ascii_lowercase();
        let mut out = Vec::new();
        for (state, map) in [
            (RoleState::Active, &self.active),
            (RoleState::Eligible, &self.eligible),
        ] {
            if let Some(found) = map.as_ref().and_then(|m| m.get(&key)) {
                out.extend(found.iter().map(|a| (state, *a)));
            }
        }
        out
    }
}

struct ResolveContext<'a> {
    snapshot: &'a TenantSnapshot,
    classifier: &'a Classifier,
    resources: HashMap<&'a str, &'a ResourceServicePrincipal>,
    role_names: HashMap<String, String>,
    roles: RoleIndex<'a>,
    configured: BTreeSet<String>,
    azure: Option<&'a AzureIndex<'a>>,
}

impl ResolveContext<'_> {
    fn view(
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
                unknown.push("appRoleAssignments".to_owned());
                None
            }
        };
        let memberships: Option<&Vec<DirectoryObject>> = data.and_then(|d| d.memberships.known());
        if memberships.is_none() {
            unknown.push("memberships".to_owned());
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
            unknown.push("directoryRoles".to_owned());
        }
        let delegated_grants = match &self.snapshot.delegated_grants {
            Dataset::Collected { items } => Some(
                items
                    .iter()
                    .filter(|g| g.client_id.eq_ignore_ascii_case(&sp.id))
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
            Dataset::Unknown { .. } => {
                unknown.push("delegatedGrants".to_owned());
                None
            }
        };
        let azure_roles = match self.azure {
            Some(index) => Some(index.roles_of(self.classifier, &sp.id, groups.as_deref())),
            None => {
                unknown.push("azureRoleAssignments".to_owned());
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
            // A custom or unknown role: never assumed harmless.
            None => (Tier::ManagementPlane, false, false),
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

impl IdentityRecord {
    /// Adds the resolved privileges and the finding count to a record.
    pub fn attach(&mut self, view: PrincipalView, finding_count: usize, highest: Option<Severity>) {
        self.tier = view.tier();
        self.app_roles = view.app_roles;
        self.groups = view.groups;
        self.directory_roles = view.directory_roles;
        self.delegated_grants = view.delegated_grants;
        self.azure_role_assignments = view.azure_roles;
        self.unknown = view.unknown;
        self.finding_count = finding_count;
        self.highest_severity = highest;
    }
}
