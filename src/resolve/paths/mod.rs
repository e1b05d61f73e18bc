//! Attack paths: who can become each managed identity, and what each one can reach, as one
//! privilege graph over the snapshot.
//!
//! A managed identity has no secret to steal. Its power is taken by whoever controls the
//! resource it runs in ([`Control`]: an Azure role whose actions, per the can-execute-as table
//! in [`execute_as`], give code execution on the host, or take over a user-assigned identity),
//! and it reaches further than its own grants when it controls another, more privileged
//! identity. This module builds that graph once per run:
//!
//! - **Nodes** ([`SubjectNode`]): the assessed subjects (managed identities, credential-bearing
//!   service principals), and what collected principals own that is not assessed: the service
//!   principal of an owned application, an owned service principal, an owned group.
//! - **Tier-0 holdings** ([`Holding`]): what a node holds that is Tier-0 by itself (a
//!   ControlPlane directory role at tenant scope, active or eligible; a ControlPlane application
//!   permission; a role that can grant Azure access at root or management-group scope, active
//!   or eligible through PIM), directly or through a group.
//! - **Control edges**, computed on demand from a scope index: for a host, walk its ancestor
//!   scopes (resource, resource group, subscription, management groups, `/`) and keep the
//!   assignments whose role allows a table action for the host's type, or writes the container
//!   a function app runs from, or takes over the user-assigned identity. Roles are matched by
//!   their actions (wildcards and `notActions`), never by role id.
//! - **Ownership edges** ([`OwnedRef`]): an owner becomes the service principal of an owned
//!   application or the owned service principal (it can add a secret), or gains the owned
//!   group's privileges (it can add itself).
//! - **Reachability**, once for the whole graph: a multi-source shortest-path search from the
//!   Tier-0 holders over the reversed control and membership edges, first from the critical
//!   targets, then from the high ones, so a path's severity follows its target.
//!
//! Pure: no I/O; the same snapshot gives the same paths.

pub mod execute_as;
mod index;
mod inherited;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::azure::{
    AzureIndex, CONTRIBUTOR, OWNER, RBAC_ADMINISTRATOR, ROLE_ASSIGNMENT_WRITE, ScopeKind,
    USER_ACCESS_ADMINISTRATOR, normalise_id, role_guid,
};
use super::principals::{GroupRef, PrincipalView};
use crate::classification::{DIRECT_TO_GLOBAL_ADMIN, MICROSOFT_GRAPH_APP_ID, Tier};
use crate::model::{RoleState, Severity, SubjectKind, az_rest};
use crate::snapshot::TenantSnapshot;
use crate::snapshot::azure::{
    AzureSnapshot, RoleAssignmentRow, RoleDefinitionRow, UserAssignedIdentityRow,
};
use crate::snapshot::graph::DirectoryObject;
use execute_as::{AllowedAction, ExecuteAsTable, first_allowed};
use index::ScopeIndex;
use inherited::Inherited;

/// How many actors an identity record and a finding list by name.
pub const ACTORS_LISTED: usize = 20;

/// What a node of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeKind {
    /// A managed identity's service principal.
    ManagedIdentity,
    /// Any other service principal.
    ServicePrincipal,
    /// A user.
    User,
    /// A group.
    Group,
    /// A principal from another tenant (`ForeignGroup`).
    ForeignPrincipal,
    /// A principal whose type is not known.
    Unknown,
    /// A directory role.
    DirectoryRole,
    /// An application permission (app role) on an API.
    AppPermission,
    /// An Azure RBAC scope (root, management group, subscription, resource group, resource).
    AzureScope,
}

impl NodeKind {
    /// The kind of an Azure role assignment's principal, from its `principalType`.
    pub fn of_principal_type(principal_type: Option<&str>) -> Self {
        match principal_type.map(str::to_ascii_lowercase).as_deref() {
            Some("user") => Self::User,
            Some("group") => Self::Group,
            Some("serviceprincipal") => Self::ServicePrincipal,
            Some("foreigngroup") => Self::ForeignPrincipal,
            _ => Self::Unknown,
        }
    }
}

/// A node named in a path or an actor list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRef {
    /// Object id, role id, permission id or scope.
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Display name, when known.
    pub name: Option<String>,
}

/// What an edge of the graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EdgeKind {
    /// Member of a group (transitively).
    MemberOf,
    /// Holds a directory role (active or eligible).
    HoldsDirectoryRole,
    /// Holds an application permission.
    HoldsAppRole,
    /// Holds an Azure role at a scope.
    HoldsAzureRole,
    /// Controls a managed identity: can run code in its host, or take over the user-assigned
    /// identity.
    CanExecuteAs,
    /// Owns an application, a service principal or a group: can add a credential to the
    /// application or service principal and sign in as it, or add a member to the group.
    Owns,
}

/// What a Tier-0 holding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HoldingKind {
    /// A ControlPlane directory role at tenant scope.
    DirectoryRole,
    /// A ControlPlane application permission.
    AppPermission,
    /// An Azure role that can grant access, at root or management-group scope.
    AzureAccessAdministration,
}

/// Something a subject holds that is Tier-0 by itself: the end of every path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    /// Critical for a Global-Administrator-equivalent target, high for other Tier-0 ones.
    pub severity: Severity,
    /// What it is.
    pub kind: HoldingKind,
    /// The target node: the role, permission or scope.
    pub target: NodeRef,
    /// One line: the role and its scope or state, or the permission and its API.
    pub description: String,
    /// The assignment that grants it (what to delete).
    pub assignment_id: String,
    /// The group it is held through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group: Option<GroupRef>,
    /// Held as a PIM eligibility (one activation away), not as an active assignment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eligible: bool,
    /// For an Azure eligibility: its principal and role, which removing it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<AzureEligibility>,
}

/// An Azure RBAC eligibility as a holding names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureEligibility {
    /// The eligible principal (the identity or its group).
    pub principal_id: String,
    /// The role definition id.
    pub role_definition_id: String,
    /// The scope.
    pub scope: String,
}

/// How a control edge reaches the identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "route",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Route {
    /// Code execution on a resource the identity is attached to.
    Host {
        /// The host's resource id.
        host_id: String,
        /// Its type.
        host_type: String,
    },
    /// A new package written to the container a function app runs from.
    DeploymentStorage {
        /// The function app's resource id.
        host_id: String,
        /// The deployment container's resource id (under its storage account).
        container_id: String,
    },
    /// A federated credential added to the user-assigned identity.
    FederatedCredential {
        /// The user-assigned identity's resource id.
        identity_resource_id: String,
    },
    /// The user-assigned identity attached to compute the actor can write.
    Assign {
        /// The user-assigned identity's resource id.
        identity_resource_id: String,
        /// The assignment that gives the compute write.
        compute_assignment_id: String,
        /// The compute write it allows.
        compute_action: String,
    },
}

/// One way a principal controls a managed identity: an Azure role assignment whose role
/// allows an action of the can-execute-as table over a scope that holds the identity's host
/// (or the user-assigned identity itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    /// Object id of the principal holding the assignment.
    pub actor_id: String,
    /// The assignment's `principalType`.
    pub actor_type: Option<String>,
    /// The assignment (what `az role assignment delete --ids` takes).
    pub assignment_id: String,
    /// Its role definition id.
    pub role_definition_id: String,
    /// The role's name.
    pub role_name: String,
    /// The assignment's scope.
    pub scope: String,
    /// The table action the role allows.
    pub action: String,
    /// The role's pattern that allows it (`*` when the definition was not collected and the
    /// role is Owner or Contributor).
    pub granted_by: String,
    /// How the action becomes the identity's token.
    pub how: String,
    /// The ABAC condition on the assignment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// How it reaches the identity.
    #[serde(flatten)]
    pub route: Route,
}

/// Everything that controls one identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    /// Controls that work as they stand.
    pub effective: Vec<Control>,
    /// `assign/action` over a user-assigned identity by a principal with no compute write
    /// anywhere: the control is latent until it gets one.
    pub latent: Vec<Control>,
}

/// One hop of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hop {
    /// Where the hop starts.
    pub from: NodeRef,
    /// What it is.
    pub edge: EdgeKind,
    /// Where it ends.
    pub to: NodeRef,
    /// What in the snapshot creates it.
    pub evidence: serde_json::Value,
    /// The exact change that removes it.
    pub remediation: String,
}

/// The shortest path from an identity to Tier-0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathToTier0 {
    /// The target's severity: critical for Global-Administrator-equivalent targets.
    pub severity: Severity,
    /// The Tier-0 holding at the end.
    pub target: Holding,
    /// The hops, from the identity to the target.
    pub hops: Vec<Hop>,
}

impl PathToTier0 {
    /// True when the path goes through control of another identity, not only through the
    /// identity's own holdings and groups.
    pub fn is_escalation(&self) -> bool {
        self.hops
            .iter()
            .any(|h| matches!(h.edge, EdgeKind::CanExecuteAs | EdgeKind::Owns))
    }
}

/// A principal that can act as an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The principal.
    pub principal: NodeRef,
    /// An application service principal that signs in with a secret or certificate.
    pub holds_credentials: bool,
    /// A guest user (`userType` `Guest`).
    pub guest: bool,
    /// A group's transitive member count, when it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u64>,
    /// Its own tier, when it is an assessed subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The first way it controls the identity.
    pub control: Control,
    /// How many ways it controls the identity.
    pub controls: usize,
}

impl Actor {
    /// True for the weakest actors: a guest, a credential-bearing application, a principal from
    /// another tenant, or a large group.
    pub fn is_weak(&self) -> bool {
        self.guest
            || self.holds_credentials
            || self.principal.kind == NodeKind::ForeignPrincipal
            || self.member_count.is_some_and(|n| n >= LARGE_GROUP_MEMBERS)
    }

    /// Lower is more dangerous: guests, credential-bearing apps and foreign principals first, then
    /// groups (every member is an actor), users, principals of unknown type, then other
    /// service principals and managed identities.
    pub fn danger_rank(&self) -> u8 {
        if self.holds_credentials || self.guest {
            return 0;
        }
        match self.principal.kind {
            NodeKind::ForeignPrincipal => 0,
            NodeKind::Group => 1,
            NodeKind::User => 2,
            NodeKind::Unknown => 3,
            _ => 4,
        }
    }
}

/// The principals that can act as an identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actors {
    /// How many distinct principals can.
    pub count: usize,
    /// The first [`ACTORS_LISTED`], most dangerous first.
    pub first: Vec<Actor>,
}

/// A subject of assessment as the graph knows it.
#[derive(Debug, Clone)]
pub struct SubjectNode {
    /// Object id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: SubjectKind,
    /// Tier.
    pub tier: Option<Tier>,
    /// Holds credentials (service principals).
    pub holds_credentials: bool,
    /// Tier-0 holdings, most severe first.
    pub holdings: Vec<Holding>,
    /// Its groups.
    pub groups: Vec<GroupRef>,
    /// What the node is: a managed identity or service principal (assessed subjects, and the
    /// service principals collected principals own), or a group someone owns.
    pub node_kind: NodeKind,
}

impl SubjectNode {
    /// The node built from a resolved view.
    pub fn from_view(view: &PrincipalView, azure: Option<&AzureIndex<'_>>) -> Self {
        Self {
            node_kind: if view.kind == SubjectKind::ServicePrincipal {
                NodeKind::ServicePrincipal
            } else {
                NodeKind::ManagedIdentity
            },
            id: view.id.clone(),
            name: view.display_name.clone(),
            kind: view.kind,
            tier: view.tier(),
            holds_credentials: !view.credentials.is_empty(),
            holdings: holdings_of(view, azure),
            groups: view
                .groups
                .iter()
                .flatten()
                .map(|g| GroupRef {
                    id: g.id.clone(),
                    display_name: g.display_name.clone(),
                })
                .collect(),
        }
    }

    /// The node built from the resolved view of an owned group (its own directory and Azure
    /// roles; it has no app roles or groups of its own here).
    pub fn group_from_view(view: &PrincipalView, azure: Option<&AzureIndex<'_>>) -> Self {
        Self {
            node_kind: NodeKind::Group,
            ..Self::from_view(view, azure)
        }
    }

    fn node(&self) -> NodeRef {
        NodeRef {
            id: self.id.clone(),
            kind: self.node_kind,
            name: Some(self.name.clone()),
        }
    }
}

/// The Tier-0 holdings in a view, most severe first.
pub fn holdings_of(view: &PrincipalView, azure: Option<&AzureIndex<'_>>) -> Vec<Holding> {
    let mut out = Vec::new();
    for role in view.directory_roles.iter().flatten() {
        if role.tier != Tier::ControlPlane || !role.is_tenant_scope() {
            continue;
        }
        let (severity, state) = match role.state {
            RoleState::Active => (Severity::Critical, "active"),
            RoleState::Eligible => (Severity::High, "eligible"),
        };
        out.push(Holding {
            severity,
            kind: HoldingKind::DirectoryRole,
            target: NodeRef {
                id: role.role_definition_id.clone(),
                kind: NodeKind::DirectoryRole,
                name: Some(role.role_name.clone()),
            },
            description: format!(
                "the {state} directory role {} at tenant scope",
                role.role_name
            ),
            assignment_id: role.assignment_id.clone(),
            via_group: role.via_group.clone(),
            eligible: role.state == RoleState::Eligible,
            eligibility: None,
        });
    }
    for role in view.app_roles.iter().flatten() {
        if role.tier != Tier::ControlPlane {
            continue;
        }
        let permission = role
            .permission
            .clone()
            .unwrap_or_else(|| format!("app role {}", role.app_role_id));
        let on_graph = role
            .resource_app_id
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(MICROSOFT_GRAPH_APP_ID));
        let direct = on_graph
            && DIRECT_TO_GLOBAL_ADMIN
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&permission));
        out.push(Holding {
            severity: if direct {
                Severity::Critical
            } else {
                Severity::High
            },
            kind: HoldingKind::AppPermission,
            target: NodeRef {
                id: format!("{}/{}", role.resource_id, role.app_role_id),
                kind: NodeKind::AppPermission,
                name: Some(permission.clone()),
            },
            description: format!(
                "the application permission {permission} on {}",
                role.resource_name.as_deref().unwrap_or(&role.resource_id)
            ),
            assignment_id: role.assignment_id.clone(),
            via_group: None,
            eligible: false,
            eligibility: None,
        });
    }
    for role in view.azure_roles.iter().flatten() {
        if !matches!(
            role.scope_kind,
            ScopeKind::Root | ScopeKind::ManagementGroup
        ) {
            continue;
        }
        let guid = role.role_guid();
        let grants = match azure.and_then(|a| a.definition(&role.role_definition_id)) {
            Some(d) if !d.permissions.is_empty() => d.allows(ROLE_ASSIGNMENT_WRITE),
            _ => [OWNER, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR].contains(&guid.as_str()),
        };
        if !grants {
            continue;
        }
        out.push(Holding {
            severity: Severity::Critical,
            kind: HoldingKind::AzureAccessAdministration,
            target: NodeRef {
                id: role.scope.clone(),
                kind: NodeKind::AzureScope,
                name: Some(role.scope.clone()),
            },
            description: format!(
                "{} at {}, which can grant any Azure role there",
                role.role_name, role.scope
            ),
            assignment_id: role.assignment_id.clone(),
            via_group: role.via_group.clone(),
            eligible: false,
            eligibility: None,
        });
    }
    // Azure RBAC eligibilities (PIM) of the principal and its groups: an eligible access
    // administrator at root or management-group scope is one activation away (high).
    if let Some(index) = azure {
        let holders = std::iter::once((view.id.as_str(), None)).chain(
            view.groups
                .iter()
                .flatten()
                .map(|g| (g.id.as_str(), Some(g))),
        );
        for (holder, group) in holders {
            for row in index.eligible_assignments_of(holder) {
                if !row.is_provisioned()
                    || !matches!(
                        ScopeKind::of(&row.scope),
                        ScopeKind::Root | ScopeKind::ManagementGroup
                    )
                {
                    continue;
                }
                let guid = role_guid(&row.role_definition_id);
                let definition = index.definition(&row.role_definition_id);
                let grants = match definition {
                    Some(d) if !d.permissions.is_empty() => d.allows(ROLE_ASSIGNMENT_WRITE),
                    _ => [OWNER, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR]
                        .contains(&guid.as_str()),
                };
                if !grants {
                    continue;
                }
                let role_name = definition.and_then(|d| d.role_name.clone()).unwrap_or(guid);
                out.push(Holding {
                    severity: Severity::High,
                    kind: HoldingKind::AzureAccessAdministration,
                    target: NodeRef {
                        id: row.scope.clone(),
                        kind: NodeKind::AzureScope,
                        name: Some(row.scope.clone()),
                    },
                    description: format!(
                        "{role_name} at {}, eligible through PIM, which can grant any Azure role there once activated",
                        row.scope
                    ),
                    assignment_id: row.id.clone(),
                    via_group: group.map(|g| GroupRef {
                        id: g.id.clone(),
                        display_name: g.display_name.clone(),
                    }),
                    eligible: true,
                    eligibility: Some(AzureEligibility {
                        principal_id: row.principal_id.clone(),
                        role_definition_id: row.role_definition_id.clone(),
                        scope: row.scope.clone(),
                    }),
                });
            }
        }
    }
    // Most severe first; direct before through a group; then by assignment for stability.
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.via_group.is_some().cmp(&b.via_group.is_some()))
            .then(a.assignment_id.cmp(&b.assignment_id))
    });
    out
}

/// What one role definition allows of the can-execute-as table.
#[derive(Debug, Clone, Default)]
struct RoleAccess {
    name: String,
    /// Per table host entry.
    hosts: Vec<Option<AllowedAction>>,
    federated_credential: Option<AllowedAction>,
    assign: Option<AllowedAction>,
    compute_write: Option<AllowedAction>,
    deployment_storage: Option<AllowedAction>,
}

impl RoleAccess {
    fn of(table: &ExecuteAsTable, definition: Option<&RoleDefinitionRow>, guid: &str) -> Self {
        let compute: Vec<String> = table.compute_write_actions().collect();
        match definition.filter(|d| !d.permissions.is_empty()) {
            Some(d) => Self {
                name: d.role_name.clone().unwrap_or_else(|| guid.to_owned()),
                hosts: table
                    .hosts
                    .iter()
                    .map(|h| first_allowed(d, &h.actions, &h.data_actions))
                    .collect(),
                federated_credential: first_allowed(
                    d,
                    std::slice::from_ref(&table.user_assigned_identity.federated_credential_write),
                    &[],
                ),
                assign: first_allowed(
                    d,
                    std::slice::from_ref(&table.user_assigned_identity.assign),
                    &[],
                ),
                compute_write: first_allowed(d, &compute, &[]),
                deployment_storage: first_allowed(
                    d,
                    &table.deployment_storage.actions,
                    &table.deployment_storage.data_actions,
                ),
            },
            // Without a definition only Owner and Contributor are known to allow it all (`*`).
            None if guid == OWNER || guid == CONTRIBUTOR => {
                let all = |action: &String| {
                    Some(AllowedAction {
                        action: action.clone(),
                        granted_by: "*".to_owned(),
                    })
                };
                Self {
                    name: if guid == OWNER {
                        "Owner"
                    } else {
                        "Contributor"
                    }
                    .to_owned(),
                    hosts: table
                        .hosts
                        .iter()
                        .map(|h| h.actions.first().and_then(all))
                        .collect(),
                    federated_credential: all(&table
                        .user_assigned_identity
                        .federated_credential_write),
                    assign: all(&table.user_assigned_identity.assign),
                    compute_write: compute.first().and_then(all),
                    deployment_storage: table.deployment_storage.actions.first().and_then(all),
                }
            }
            None => Self {
                name: guid.to_owned(),
                hosts: vec![None; table.hosts.len()],
                ..Self::default()
            },
        }
    }
}

/// A resource a managed identity runs in.
#[derive(Debug, Clone)]
struct HostRef {
    id: String,
    resource_type: String,
    /// The blob container the host runs its package from (Flex Consumption function apps),
    /// as a resource id under its storage account, when the account was collected.
    deployment_container: Option<String>,
}

/// Where a subject stands in the search: the next step towards Tier-0.
#[derive(Debug, Clone)]
enum Step {
    Holds(Holding),
    Controls {
        via_group: Option<GroupRef>,
        control: Box<Control>,
        next: usize,
    },
    Owns {
        via_group: Option<GroupRef>,
        owned: Box<OwnedRef>,
        next: usize,
    },
}

/// What an owner owns, as an edge of the graph: the object (an application, a service principal
/// or a group) and the node it gives (the application's service principal, or the object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedRef {
    /// The owner's object id.
    pub owner_id: String,
    /// The owned object's id (for an application, the application object).
    pub object_id: String,
    /// `application`, `servicePrincipal` or `group`.
    pub object_kind: String,
    /// Its display name.
    pub object_name: Option<String>,
    /// The node ownership gives: the service principal or the group.
    pub gives: String,
}

impl OwnedRef {
    /// What the owner can do with it.
    pub fn means(&self) -> &'static str {
        match self.object_kind.as_str() {
            "group" => "add any member, itself included, to the group",
            "application" => "add a secret to the application and sign in as its service principal",
            _ => "add a secret to the service principal and sign in as it",
        }
    }

    /// The Graph path of the owner reference that removing the ownership deletes.
    pub fn owner_ref_path(&self) -> String {
        let collection = match self.object_kind.as_str() {
            "group" => "groups",
            "application" => "applications",
            _ => "servicePrincipals",
        };
        format!(
            "/{collection}/{}/owners/{}/$ref",
            self.object_id, self.owner_id
        )
    }
}

#[derive(Debug, Clone)]
struct Reach {
    severity: Severity,
    hops: u32,
    step: Step,
}

/// The privilege graph of one snapshot, with every subject's shortest path to Tier-0.
#[derive(Debug, Default)]
pub struct AttackPaths<'a> {
    graph: String,
    arm: String,
    subjects: Vec<SubjectNode>,
    position: HashMap<String, usize>,
    members: HashMap<String, Vec<usize>>,
    group_names: HashMap<String, Option<String>>,
    azure: Option<AzureGraph<'a>>,
    reach: Vec<Option<Reach>>,
    /// Ownership edges by the node they give (lower-case id).
    owners: HashMap<String, Vec<OwnedRef>>,
    /// Directory objects Graph returned for role-assignment principals and owners, by
    /// lower-case id (names, user types).
    objects: HashMap<String, &'a DirectoryObject>,
    /// Transitive member counts of groups, by lower-case id.
    member_counts: HashMap<String, u64>,
    /// Per role-assignment actor: its place in the order of [`Self::actors`].
    actor_rank: Vec<u32>,
    /// Per identity of the Azure scope lists: its tier, when it is a subject.
    identity_tiers: Vec<Option<Tier>>,
    /// What the assignments at management groups and `/` reach, by (scope key, role GUID):
    /// hundreds of assignments there share a few roles, and each reaches most identities.
    reached_above_subscriptions: HashMap<(String, String), ReachedSummary>,
}

/// The identities an assignment reaches (holder included), summarised for listing.
#[derive(Debug)]
struct ReachedSummary {
    /// How many.
    count: usize,
    /// The most privileged of them, in listing order, [`ACTORS_LISTED`] + 2 (room for the
    /// holder and an excluded subject).
    first: Vec<(u32, index::Reached)>,
}

/// A group with at least this many members is large: each member is an actor.
pub const LARGE_GROUP_MEMBERS: u64 = 50;

/// The Azure side: the scope index and what each role allows.
#[derive(Debug)]
struct AzureGraph<'a> {
    assignments: &'a [RoleAssignmentRow],
    by_scope: HashMap<String, Vec<usize>>,
    roles: HashMap<String, RoleAccess>,
    management_groups: HashMap<String, Vec<String>>,
    tenant_root: String,
    hosts: HashMap<String, Vec<HostRef>>,
    user_assigned: HashMap<String, String>,
    compute_writers: HashMap<String, usize>,
    /// Names of role-assignment principals Graph returned (`getByIds`).
    names: HashMap<String, String>,
    /// Role-assignment principals Graph says no longer exist.
    deleted: HashSet<String>,
    /// Role-assignment principals of another tenant (Lighthouse, `ForeignGroup`), which
    /// this directory does not hold: asked only about principals that are not subjects.
    foreign: HashSet<String>,
    /// The user-assigned identity rows.
    user_assigned_rows: &'a [UserAssignedIdentityRow],
    /// Assignments by id, hosts and user-assigned identities by scope, actors as integers.
    index: ScopeIndex,
    /// The actors each subscription chain gives its identities (built once actors are ranked).
    inherited: Inherited,
}

/// The container resource id of a deployment container URL, when its storage account (matched
/// on the blob host, else on the account name) was collected.
fn deployment_container(url: &str, accounts: &HashMap<String, &str>) -> Option<String> {
    let (_, account, container) = super::azure::parse_container_url(url)?;
    let host = url::Url::parse(url.trim())
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    let id = accounts.get(&host).or_else(|| accounts.get(&account))?;
    Some(format!(
        "{}/blobServices/default/containers/{container}",
        id.trim_end_matches('/')
    ))
}

/// The scope key of an assignment scope or resource id: lower case, `/` for the root.
fn scope_key(scope: &str) -> String {
    let key = normalise_id(scope);
    if key.is_empty() { "/".to_owned() } else { key }
}

impl<'a> AzureGraph<'a> {
    /// The kind of a role-assignment principal that is not a subject: foreign when it lives in
    /// another tenant, otherwise what its `principalType` says.
    fn kind_of_outsider(&self, key: &str, principal_type: Option<&str>) -> NodeKind {
        if self.foreign.contains(&key.to_ascii_lowercase()) {
            NodeKind::ForeignPrincipal
        } else {
            NodeKind::of_principal_type(principal_type)
        }
    }

    fn new(azure: &'a AzureSnapshot, tenant_id: &str) -> Self {
        let table = ExecuteAsTable::embedded();
        let definitions: HashMap<String, &RoleDefinitionRow> = azure
            .role_definitions
            .iter()
            .map(|d| (role_guid(&d.id), d))
            .collect();
        let mut by_scope: HashMap<String, Vec<usize>> = HashMap::new();
        let mut roles: HashMap<String, RoleAccess> = HashMap::new();
        let mut compute_writers = HashMap::new();
        for (i, a) in azure.role_assignments.iter().enumerate() {
            by_scope.entry(scope_key(&a.scope)).or_default().push(i);
            let guid = role_guid(&a.role_definition_id);
            let access = roles
                .entry(guid.clone())
                .or_insert_with(|| RoleAccess::of(table, definitions.get(&guid).copied(), &guid));
            if access.compute_write.is_some() {
                compute_writers
                    .entry(a.principal_id.to_ascii_lowercase())
                    .or_insert(i);
            }
        }
        let management_groups = azure
            .subscriptions
            .iter()
            .map(|s| {
                (
                    s.subscription_id.to_ascii_lowercase(),
                    s.management_group_ancestors_chain
                        .iter()
                        .map(|mg| mg.name.to_ascii_lowercase())
                        .collect(),
                )
            })
            .collect();
        let user_assigned: HashMap<String, String> = azure
            .user_assigned_identities
            .iter()
            .filter_map(|u| {
                let principal = u.principal_id.as_deref().filter(|p| !p.is_empty())?;
                Some((principal.to_ascii_lowercase(), u.id.clone()))
            })
            .collect();
        let principal_of_uami: HashMap<String, &str> = user_assigned
            .iter()
            .map(|(p, id)| (normalise_id(id), p.as_str()))
            .collect();
        let storage_accounts: HashMap<String, &str> = azure
            .storage_accounts
            .known()
            .into_iter()
            .flatten()
            .flat_map(|a| {
                let by_endpoint = a
                    .blob_endpoint
                    .as_deref()
                    .and_then(|e| url::Url::parse(e).ok())
                    .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
                [by_endpoint, Some(a.name.to_ascii_lowercase())]
                    .into_iter()
                    .flatten()
                    .map(move |key| (key, a.id.as_str()))
            })
            .collect();
        let mut hosts: HashMap<String, Vec<HostRef>> = HashMap::new();
        for r in &azure.identity_resources {
            let host = HostRef {
                id: r.id.clone(),
                resource_type: r.resource_type.clone().unwrap_or_default(),
                deployment_container: r
                    .deployment_storage
                    .as_deref()
                    .and_then(|url| deployment_container(url, &storage_accounts)),
            };
            if let Some(p) = r.principal_id.as_deref().filter(|p| !p.is_empty()) {
                hosts
                    .entry(p.to_ascii_lowercase())
                    .or_default()
                    .push(host.clone());
            }
            for (uami, value) in r.user_assigned_identities.iter().flatten() {
                let principal = value
                    .get("principalId")
                    .and_then(|v| v.as_str())
                    .filter(|p| !p.is_empty())
                    .map(str::to_ascii_lowercase)
                    .or_else(|| {
                        principal_of_uami
                            .get(&normalise_id(uami))
                            .map(|p| p.to_string())
                    });
                if let Some(p) = principal {
                    hosts.entry(p).or_default().push(host.clone());
                }
            }
        }
        let lookup = azure.principal_lookup.known();
        let names: HashMap<String, String> = lookup
            .into_iter()
            .flat_map(|l| &l.found)
            .filter_map(|o| Some((o.id.to_ascii_lowercase(), o.display_name.clone()?)))
            .collect();
        let foreign = azure.foreign_principals(tenant_id);
        let deleted = azure.deleted_principals(&foreign);
        let mut graph = Self {
            names,
            deleted,
            foreign,
            user_assigned_rows: &azure.user_assigned_identities,
            index: ScopeIndex::default(),
            inherited: Inherited::default(),
            assignments: &azure.role_assignments,
            by_scope,
            roles,
            management_groups,
            tenant_root: tenant_id.to_ascii_lowercase(),
            hosts,
            user_assigned,
            compute_writers,
        };
        graph.index = ScopeIndex::new(&graph, azure);
        graph
    }

    /// The scopes that contain `resource_id`, itself first, then its parent resources, its
    /// resource group, subscription, management groups and `/`.
    fn ancestors(&self, resource_id: &str) -> Vec<String> {
        let id = normalise_id(resource_id);
        let segments: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = Vec::new();
        if segments.len() >= 2 && segments[0] == "subscriptions" {
            let subscription = segments[1];
            // Resource and parent resources: every prefix ending on a name after providers/.
            if let Some(p) = segments.iter().position(|s| *s == "providers") {
                let mut end = segments.len();
                while end > p + 2 {
                    if (end - p).is_multiple_of(2) && end - p >= 4 {
                        out.push(format!("/{}", segments[..end].join("/")));
                    }
                    end -= 1;
                }
            }
            if segments.len() >= 4 && segments[2] == "resourcegroups" {
                out.push(format!(
                    "/subscriptions/{subscription}/resourcegroups/{}",
                    segments[3]
                ));
            }
            out.push(format!("/subscriptions/{subscription}"));
            let chain = self.management_groups.get(subscription);
            for mg in chain.into_iter().flatten() {
                out.push(format!(
                    "/providers/microsoft.management/managementgroups/{mg}"
                ));
            }
            if !chain.is_some_and(|c| c.contains(&self.tenant_root)) {
                out.push(format!(
                    "/providers/microsoft.management/managementgroups/{}",
                    self.tenant_root
                ));
            }
        } else {
            out.push(id);
        }
        out.push("/".to_owned());
        out
    }

    fn assignments_over(&self, resource_id: &str) -> impl Iterator<Item = usize> + '_ {
        self.ancestors(resource_id)
            .into_iter()
            .flat_map(|scope| self.by_scope.get(&scope).cloned().unwrap_or_default())
    }

    fn control(&self, i: usize, allowed: &AllowedAction, how: &str, route: Route) -> Control {
        let a = &self.assignments[i];
        Control {
            actor_id: a.principal_id.clone(),
            actor_type: a.principal_type.clone(),
            assignment_id: a.id.clone(),
            role_definition_id: a.role_definition_id.clone(),
            role_name: self
                .roles
                .get(&role_guid(&a.role_definition_id))
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            scope: a.scope.clone(),
            action: allowed.action.clone(),
            granted_by: allowed.granted_by.clone(),
            how: how.to_owned(),
            condition: a.condition.clone().filter(|c| !c.trim().is_empty()),
            route,
        }
    }

    fn controls(&self, identity_id: &str) -> Controls {
        // The effective edges are the index's links (one definition of the edges); only the
        // latent ones, assign/action without compute write, are gathered here.
        let effective = self
            .links(identity_id)
            .iter()
            .map(|link| self.control_of(identity_id, link))
            .collect();
        let mut latent = Vec::new();
        let key = identity_id.to_ascii_lowercase();
        if let Some(uami) = self.user_assigned.get(&key) {
            let how = ExecuteAsTable::embedded()
                .user_assigned_identity
                .how
                .get("assign")
                .map(String::as_str)
                .unwrap_or_default();
            for i in self.assignments_over(uami) {
                let a = &self.assignments[i];
                let Some(access) = self.roles.get(&role_guid(&a.role_definition_id)) else {
                    continue;
                };
                let principal = a.principal_id.to_ascii_lowercase();
                let Some(allowed) = access.assign.as_ref().filter(|_| {
                    access.federated_credential.is_none()
                        && !self.has_compute_write(&principal)
                        && principal != key
                        && !self.deleted.contains(&principal)
                }) else {
                    continue;
                };
                latent.push(self.control(
                    i,
                    allowed,
                    how,
                    Route::Assign {
                        identity_resource_id: uami.clone(),
                        compute_assignment_id: String::new(),
                        compute_action: String::new(),
                    },
                ));
            }
        }
        Controls { effective, latent }
    }

    /// The identities an assignment controls: hosts under its scope whose type's actions its
    /// role allows, and user-assigned identities under it whose federated credentials it can
    /// write. Each identity once, with its first control.
    fn controlled_by(&self, assignment_id: &str) -> Vec<(String, Control)> {
        let Some(i) = self.assignment(assignment_id) else {
            return Vec::new();
        };
        self.reached_by(i)
            .into_iter()
            .filter_map(|(p, reached)| {
                let principal = self.index.identities.get(p as usize)?;
                let control = self.control_reached(i, principal, &reached)?;
                Some((principal.clone(), control))
            })
            .collect()
    }

    /// True when the principal holds a role with write on some compute host type.
    fn has_compute_write(&self, principal_id: &str) -> bool {
        self.compute_writers
            .contains_key(&principal_id.to_ascii_lowercase())
    }
}

impl<'a> AttackPaths<'a> {
    /// Builds the graph over `subjects` (in assessment order) and searches it.
    pub fn new(snapshot: &'a TenantSnapshot, subjects: Vec<SubjectNode>) -> Self {
        let azure = snapshot
            .azure
            .known()
            .map(|a| AzureGraph::new(a, &snapshot.tenant_id));
        let mut position = HashMap::with_capacity(subjects.len());
        let mut members: HashMap<String, Vec<usize>> = HashMap::new();
        let mut group_names: HashMap<String, Option<String>> = HashMap::new();
        for (i, s) in subjects.iter().enumerate() {
            position.entry(s.id.to_ascii_lowercase()).or_insert(i);
            for g in &s.groups {
                members
                    .entry(g.id.to_ascii_lowercase())
                    .or_default()
                    .push(i);
                group_names
                    .entry(g.id.to_ascii_lowercase())
                    .or_insert_with(|| g.display_name.clone());
            }
        }
        let mut owners: HashMap<String, Vec<OwnedRef>> = HashMap::new();
        let mut objects: HashMap<String, &'a DirectoryObject> = HashMap::new();
        if let Some(ownership) = snapshot.ownership.known() {
            for entry in &ownership.owned {
                let object = &entry.object;
                let (kind, gives) = if object.is_application() {
                    let sp = object
                        .app_id
                        .as_deref()
                        .and_then(|a| ownership.service_principal_of_app(a));
                    match sp {
                        Some(sp) => ("application", sp.id.clone()),
                        None => continue,
                    }
                } else if object.is_group() {
                    ("group", object.id.clone())
                } else if object.is_service_principal() {
                    ("servicePrincipal", object.id.clone())
                } else {
                    continue;
                };
                for owner in &entry.owners {
                    objects
                        .entry(owner.id.to_ascii_lowercase())
                        .or_insert(owner);
                    owners
                        .entry(gives.to_ascii_lowercase())
                        .or_default()
                        .push(OwnedRef {
                            owner_id: owner.id.clone(),
                            object_id: object.id.clone(),
                            object_kind: kind.to_owned(),
                            object_name: object.display_name.clone(),
                            gives: gives.clone(),
                        });
                }
            }
        }
        let lookup = snapshot
            .azure
            .known()
            .and_then(|a| a.principal_lookup.known());
        for object in lookup.into_iter().flat_map(|l| &l.found) {
            objects
                .entry(object.id.to_ascii_lowercase())
                .or_insert(object);
        }
        let member_counts = lookup
            .map(|l| l.group_member_counts.clone().into_iter().collect())
            .unwrap_or_default();
        let mut paths = Self {
            graph: super::remediation_graph(&snapshot.graph_endpoint).to_owned(),
            arm: snapshot
                .azure
                .known()
                .map(|a| {
                    super::remediation_endpoint(
                        &a.arm_endpoint,
                        crate::config::DEFAULT_ARM_ENDPOINT,
                    )
                    .to_owned()
                })
                .unwrap_or_default(),
            reach: vec![None; subjects.len()],
            subjects,
            position,
            members,
            group_names,
            azure,
            owners,
            objects,
            member_counts,
            actor_rank: Vec::new(),
            identity_tiers: Vec::new(),
            reached_above_subscriptions: HashMap::new(),
        };
        paths.actor_rank = paths.rank_actors();
        if let Some(azure) = paths.azure.as_mut() {
            azure.inherited = Inherited::new(azure, &paths.actor_rank);
        }
        paths.rank_user_assigned();
        paths.identity_tiers = paths.azure.as_ref().map_or(Vec::new(), |a| {
            a.index
                .identities
                .iter()
                .map(|id| paths.position.get(id).and_then(|&i| paths.subjects[i].tier))
                .collect()
        });
        paths.reached_above_subscriptions = paths.summarise_reached_above_subscriptions();
        for class in [Severity::Critical, Severity::High] {
            paths.search(class);
        }
        paths
    }

    /// The listing order of reached identities: most privileged first, then by object id
    /// (identity numbers follow it).
    fn reached_key(&self, p: u32) -> (Reverse<Option<Tier>>, u32) {
        (
            Reverse(self.identity_tiers.get(p as usize).copied().flatten()),
            p,
        )
    }

    /// [`ReachedSummary`] of every (scope, role) of the assignments above subscriptions.
    fn summarise_reached_above_subscriptions(&self) -> HashMap<(String, String), ReachedSummary> {
        let mut out = HashMap::new();
        let Some(azure) = &self.azure else {
            return out;
        };
        for (i, a) in azure.assignments.iter().enumerate() {
            if !matches!(
                ScopeKind::of(&a.scope),
                ScopeKind::ManagementGroup | ScopeKind::Root
            ) {
                continue;
            }
            let key = (scope_key(&a.scope), role_guid(&a.role_definition_id));
            if out.contains_key(&key) {
                continue;
            }
            let mut reached = azure.reached_by_all(i);
            let count = reached.len();
            let keep = ACTORS_LISTED + 2;
            if reached.len() > keep {
                reached.select_nth_unstable_by_key(keep - 1, |(p, _)| self.reached_key(*p));
                reached.truncate(keep);
            }
            reached.sort_by_key(|(p, _)| self.reached_key(*p));
            out.insert(
                key,
                ReachedSummary {
                    count,
                    first: reached,
                },
            );
        }
        out
    }

    /// Multi-source shortest paths from the holders of `class` targets over reversed control
    /// and membership edges; fills subjects no more severe class reached.
    fn search(&mut self, class: Severity) {
        let mut best: Vec<Option<Reach>> = vec![None; self.subjects.len()];
        let mut queue = BinaryHeap::new();
        // Actors already relaxed in this class: a later edge from one is never shorter.
        let mut relaxed = vec![false; self.azure.as_ref().map_or(0, |a| a.index.actors.len())];
        let mut exhausted = HashSet::new();
        for (i, s) in self.subjects.iter().enumerate() {
            if let Some(h) = s.holdings.iter().find(|h| h.severity == class) {
                let hops = 1 + u32::from(h.via_group.is_some());
                best[i] = Some(Reach {
                    severity: class,
                    hops,
                    step: Step::Holds(h.clone()),
                });
                queue.push(Reverse((hops, i)));
            }
        }
        while let Some(Reverse((hops, v))) = queue.pop() {
            if best[v].as_ref().is_some_and(|r| r.hops < hops) {
                continue;
            }
            // Owners of the node (of its application, for a service principal) become it.
            let node_id = self.subjects[v].id.to_ascii_lowercase();
            for owned in self.owners.get(&node_id).into_iter().flatten() {
                let owner = owned.owner_id.to_ascii_lowercase();
                let mut relax =
                    |u: usize, via_group: Option<GroupRef>, queue: &mut BinaryHeap<_>| {
                        let cost = hops + 1 + u32::from(via_group.is_some());
                        if u != v && best[u].as_ref().is_none_or(|r| r.hops > cost) {
                            best[u] = Some(Reach {
                                severity: class,
                                hops: cost,
                                step: Step::Owns {
                                    via_group,
                                    owned: Box::new(owned.clone()),
                                    next: v,
                                },
                            });
                            queue.push(Reverse((cost, u)));
                        }
                    };
                if let Some(&u) = self.position.get(&owner) {
                    relax(u, None, &mut queue);
                }
                if let Some(group_members) = self.members.get(&owner) {
                    let via = GroupRef {
                        id: owned.owner_id.clone(),
                        display_name: self.group_names.get(&owner).cloned().flatten(),
                    };
                    for &u in group_members {
                        relax(u, Some(via.clone()), &mut queue);
                    }
                }
            }
            for control in
                self.unrelaxed_controls(&self.subjects[v].id, &mut relaxed, &mut exhausted)
            {
                let actor = control.actor_id.to_ascii_lowercase();
                let mut relax =
                    |u: usize, via_group: Option<GroupRef>, queue: &mut BinaryHeap<_>| {
                        let cost = hops + 1 + u32::from(via_group.is_some());
                        if best[u].as_ref().is_none_or(|r| r.hops > cost) {
                            best[u] = Some(Reach {
                                severity: class,
                                hops: cost,
                                step: Step::Controls {
                                    via_group,
                                    control: Box::new(control.clone()),
                                    next: v,
                                },
                            });
                            queue.push(Reverse((cost, u)));
                        }
                    };
                if let Some(&u) = self.position.get(&actor) {
                    relax(u, None, &mut queue);
                }
                if let Some(group_members) = self.members.get(&actor) {
                    let via = GroupRef {
                        id: control.actor_id.clone(),
                        display_name: self.group_names.get(&actor).cloned().flatten(),
                    };
                    for &u in group_members {
                        relax(u, Some(via.clone()), &mut queue);
                    }
                }
            }
        }
        for (slot, found) in self.reach.iter_mut().zip(best) {
            if slot.is_none() {
                *slot = found;
            }
        }
    }

    /// The effective controls of an identity whose actors are not yet `relaxed`, the first of
    /// each such actor only; marks them relaxed.
    fn unrelaxed_controls(
        &self,
        identity_id: &str,
        relaxed: &mut [bool],
        exhausted: &mut HashSet<(String, u32)>,
    ) -> Vec<Control> {
        let Some(azure) = &self.azure else {
            return Vec::new();
        };
        azure
            .fresh_links(identity_id, relaxed, exhausted)
            .iter()
            .map(|link| azure.control_of(identity_id, link))
            .collect()
    }

    /// How many principals control the identity, and the first effective control (in the
    /// order of [`Self::controls`]) of each of the [`ACTORS_LISTED`] most dangerous of them,
    /// with how many it has: an actor list builds no other control, and reads only the
    /// identity's own scopes (the inherited ones are computed once per subscription,
    /// [`inherited`]).
    fn listed_controls(&self, identity_id: &str) -> (usize, Vec<(Control, usize)>) {
        let Some(azure) = &self.azure else {
            return (0, Vec::new());
        };
        let listed = azure.listed_links(identity_id, &self.actor_rank);
        (
            listed.count,
            azure.first_controls(identity_id, &listed.links),
        )
    }

    /// [`Self::listed_controls`] from the full edge list: the reference the inherited form is
    /// tested against.
    #[cfg(test)]
    fn listed_controls_from_links(&self, identity_id: &str) -> (usize, Vec<(Control, usize)>) {
        let Some(azure) = &self.azure else {
            return (0, Vec::new());
        };
        let links = azure.links(identity_id);
        let actor = |l: &index::Link| azure.index.actor_of(l.assignment as usize);
        let mut distinct: Vec<u32> = links.iter().map(actor).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let count = distinct.len();
        let rank = |a: &u32| {
            self.actor_rank
                .get(*a as usize)
                .copied()
                .unwrap_or(u32::MAX)
        };
        if distinct.len() > ACTORS_LISTED {
            distinct.select_nth_unstable_by_key(ACTORS_LISTED - 1, rank);
            distinct.truncate(ACTORS_LISTED);
        }
        let links: Vec<index::Link> = links
            .into_iter()
            .filter(|l| distinct.contains(&actor(l)))
            .collect();
        (count, azure.first_controls(identity_id, &links))
    }

    /// Every role-assignment actor's place in the order of [`Self::actors`] (danger, name, id).
    fn rank_actors(&self) -> Vec<u32> {
        let Some(azure) = &self.azure else {
            return Vec::new();
        };
        let placeholder = Control {
            actor_id: String::new(),
            actor_type: None,
            assignment_id: String::new(),
            role_definition_id: String::new(),
            role_name: String::new(),
            scope: String::new(),
            action: String::new(),
            granted_by: String::new(),
            how: String::new(),
            condition: None,
            route: Route::FederatedCredential {
                identity_resource_id: String::new(),
            },
        };
        let mut first_assignment: Vec<Option<&RoleAssignmentRow>> =
            vec![None; azure.index.actors.len()];
        for a in azure.assignments {
            if let Some(p) = azure.index.actor_position(&a.principal_id) {
                first_assignment[p as usize].get_or_insert(a);
            }
        }
        let mut order: Vec<(u32, Actor)> = azure
            .index
            .actors
            .iter()
            .zip(first_assignment)
            .enumerate()
            .map(|(p, (key, first))| {
                let subject = self.position.get(key).map(|&i| &self.subjects[i]);
                let principal = match subject {
                    Some(s) => s.node(),
                    None => NodeRef {
                        id: first.map(|a| a.principal_id.clone()).unwrap_or_default(),
                        kind: azure
                            .kind_of_outsider(key, first.and_then(|a| a.principal_type.as_deref())),
                        name: self.principal_name(key),
                    },
                };
                let actor = Actor {
                    principal,
                    guest: self.objects.get(key).is_some_and(|o| o.is_guest()),
                    member_count: self.member_counts.get(key).copied(),
                    holds_credentials: subject.is_some_and(|s| s.holds_credentials),
                    tier: subject.and_then(|s| s.tier),
                    control: placeholder.clone(),
                    controls: 1,
                };
                (p as u32, actor)
            })
            .collect();
        order.sort_by(|(_, a), (_, b)| {
            a.danger_rank()
                .cmp(&b.danger_rank())
                .then_with(|| a.principal.name.cmp(&b.principal.name))
                .then_with(|| a.principal.id.cmp(&b.principal.id))
        });
        let mut rank = vec![u32::MAX; order.len()];
        for (r, (p, _)) in order.into_iter().enumerate() {
            rank[p as usize] = r as u32;
        }
        rank
    }

    /// Orders the user-assigned identities under each scope most privileged first, so that a
    /// rule asking for those above a tier reads only them.
    fn rank_user_assigned(&mut self) {
        let Some(azure) = self.azure.as_mut() else {
            return;
        };
        let rows = azure.user_assigned_rows;
        // Each row's place in the order, computed once; the lists then sort by it.
        let mut order: Vec<u32> = (0..rows.len() as u32).collect();
        order.sort_by_cached_key(|&u| {
            let subject = azure
                .index
                .identities
                .get(azure.index.identity_of_row(u) as usize)
                .and_then(|id| self.position.get(id))
                .map(|&i| &self.subjects[i]);
            (
                subject.is_none(),
                Reverse(subject.and_then(|s| s.tier)),
                subject.map(|s| s.name.as_str()),
                rows.get(u as usize).map(|r| r.id.as_str()),
            )
        });
        let mut place = vec![0u32; rows.len()];
        for (rank, &u) in order.iter().enumerate() {
            place[u as usize] = rank as u32;
        }
        azure
            .index
            .rank_user_assigned(|u| place.get(u as usize).copied().unwrap_or(u32::MAX));
    }

    /// The user-assigned identities (with a principal id) under a scope: the identity itself,
    /// or any resource group, subscription, management group or `/` above it; most privileged
    /// first (tier, name, resource id), those that are not subjects last.
    pub fn user_assigned_under(&self, scope: &str) -> Vec<&'a UserAssignedIdentityRow> {
        self.azure
            .as_ref()
            .map(|a| a.user_assigned_under(scope).collect())
            .unwrap_or_default()
    }

    /// Everything that controls the identity, computed from the scope index.
    pub fn controls(&self, identity_id: &str) -> Controls {
        self.azure
            .as_ref()
            .map(|a| a.controls(identity_id))
            .unwrap_or_default()
    }

    /// True when the principal holds a role with write on some compute host type anywhere
    /// (what `assign/action` over a user-assigned identity needs to be used).
    pub fn has_compute_write(&self, principal_id: &str) -> bool {
        self.azure
            .as_ref()
            .is_some_and(|a| a.has_compute_write(principal_id))
    }

    /// The identities (by object id) that one Azure role assignment lets its holder act as,
    /// each with the control it gives.
    pub fn controlled_by(&self, assignment_id: &str) -> Vec<(String, Control)> {
        self.azure
            .as_ref()
            .map(|a| a.controlled_by(assignment_id))
            .unwrap_or_default()
    }

    /// What [`Self::controlled_by`] returns for one assignment, without the holder `exclude`:
    /// how many identities it reaches, and the `listed` most privileged of them (by tier,
    /// then object id) with their controls; controls are built for those only.
    pub fn controlled_by_listed(
        &self,
        assignment_id: &str,
        exclude: &str,
        listed: usize,
    ) -> (usize, Vec<(String, Control)>) {
        self.controlled_by_listed_with(assignment_id, exclude, listed, true)
    }

    /// [`Self::controlled_by_listed`] without the summaries of assignments above
    /// subscriptions: the reference they are tested against.
    #[cfg(test)]
    pub(crate) fn controlled_by_listed_uncached(
        &self,
        assignment_id: &str,
        exclude: &str,
        listed: usize,
    ) -> (usize, Vec<(String, Control)>) {
        self.controlled_by_listed_with(assignment_id, exclude, listed, false)
    }

    /// [`Self::controlled_by_listed`], from the summary of the assignment's (scope, role) when
    /// `summaries` allows and there is one.
    fn controlled_by_listed_with(
        &self,
        assignment_id: &str,
        exclude: &str,
        listed: usize,
        summaries: bool,
    ) -> (usize, Vec<(String, Control)>) {
        let Some(azure) = &self.azure else {
            return (0, Vec::new());
        };
        let Some(i) = azure.assignment(assignment_id) else {
            return (0, Vec::new());
        };
        let exclude = exclude.to_ascii_lowercase();
        let a = &azure.assignments[i];
        let summary = summaries
            .then(|| {
                self.reached_above_subscriptions
                    .get(&(scope_key(&a.scope), role_guid(&a.role_definition_id)))
            })
            .flatten();
        if let Some(summary) = summary {
            let holder = a.principal_id.to_ascii_lowercase();
            let left_out = [holder.as_str(), exclude.as_str()];
            let mut count = summary.count;
            for (n, id) in left_out.iter().enumerate() {
                if left_out[..n].contains(id) {
                    continue;
                }
                if azure.reaches(i, id) {
                    count = count.saturating_sub(1);
                }
            }
            let controls = summary
                .first
                .iter()
                .filter_map(|(p, r)| {
                    let id = azure.index.identities.get(*p as usize)?;
                    if left_out.contains(&id.as_str()) {
                        return None;
                    }
                    let control = azure.control_reached(i, id, r)?;
                    Some((id.clone(), control))
                })
                .take(listed)
                .collect();
            return (count, controls);
        }
        self.listed_from_reached(azure, i, &exclude, listed)
    }

    /// What assignment `i` reaches, but `exclude` (lower case), counted and listed.
    fn listed_from_reached(
        &self,
        azure: &AzureGraph<'_>,
        i: usize,
        exclude: &str,
        listed: usize,
    ) -> (usize, Vec<(String, Control)>) {
        let mut reached: Vec<(u32, index::Reached)> = azure.reached_by(i);
        reached.retain(|(p, _)| azure.index.identities[*p as usize] != exclude);
        let count = reached.len();
        let key = |(p, _): &(u32, index::Reached)| self.reached_key(*p);
        if reached.len() > listed && listed > 0 {
            reached.select_nth_unstable_by_key(listed - 1, key);
            reached.truncate(listed);
        }
        reached.sort_by_key(key);
        let controls = reached
            .into_iter()
            .filter_map(|(p, r)| {
                let id = azure.index.identities.get(p as usize)?;
                let control = azure.control_reached(i, id, &r)?;
                Some((id.clone(), control))
            })
            .take(listed)
            .collect();
        (count, controls)
    }

    /// The resources the identity runs in (id and ARM type), as the Azure plane lists them.
    pub fn hosts_of(&self, identity_id: &str) -> Vec<(String, String)> {
        self.azure
            .as_ref()
            .and_then(|a| a.hosts.get(&identity_id.to_ascii_lowercase()))
            .into_iter()
            .flatten()
            .map(|h| (h.id.clone(), h.resource_type.clone()))
            .collect()
    }

    /// The scopes that contain a resource, in lower case: itself, its parent resources, its
    /// resource group, subscription, management groups (nearest first) and `/`.
    pub fn ancestors(&self, resource_id: &str) -> Vec<String> {
        match &self.azure {
            Some(a) => a.ancestors(resource_id),
            None => vec![scope_key(resource_id)],
        }
    }

    /// The display name Graph gave a role-assignment principal (`getByIds`), if any.
    pub fn principal_name(&self, id: &str) -> Option<String> {
        let key = id.to_ascii_lowercase();
        self.group_names
            .get(&key)
            .cloned()
            .flatten()
            .or_else(|| self.objects.get(&key)?.display_name.clone())
            .or_else(|| self.azure.as_ref()?.names.get(&key).cloned())
    }

    /// What a principal owns, with the graph node each owned object gives (the service
    /// principal of an owned application, the owned service principal or group).
    pub fn owned_by(&self, owner_id: &str) -> Vec<(&OwnedRef, &SubjectNode)> {
        let mut out: Vec<(&OwnedRef, &SubjectNode)> = self
            .owners
            .values()
            .flatten()
            .filter(|o| o.owner_id.eq_ignore_ascii_case(owner_id))
            .filter_map(|o| Some((o, self.subject(&o.gives)?)))
            .collect();
        out.sort_by(|a, b| a.0.object_id.cmp(&b.0.object_id));
        out
    }

    /// What a principal is, as far as the snapshot says: a node of the graph, or a directory
    /// object Graph returned for a role assignment or an ownership; otherwise unknown.
    pub fn kind_of(&self, id: &str) -> NodeKind {
        if let Some(node) = self.subject(id) {
            return node.node_kind;
        }
        match self.objects.get(&id.to_ascii_lowercase()) {
            Some(o) if o.is_user() => NodeKind::User,
            Some(o) if o.is_group() => NodeKind::Group,
            Some(o)
                if o.is_service_principal()
                    && o.service_principal_type
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("ManagedIdentity")) =>
            {
                NodeKind::ManagedIdentity
            }
            Some(o) if o.is_service_principal() => NodeKind::ServicePrincipal,
            _ => NodeKind::Unknown,
        }
    }

    /// The owners of a node (of its application, for a service principal).
    pub fn owners_of(&self, node_id: &str) -> &[OwnedRef] {
        self.owners
            .get(&node_id.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The subject node of an assessed subject, by object id.
    pub fn subject(&self, id: &str) -> Option<&SubjectNode> {
        self.position
            .get(&id.to_ascii_lowercase())
            .map(|&i| &self.subjects[i])
    }

    /// The principals that can act as the identity, most dangerous first.
    pub fn actors(&self, identity_id: &str) -> Actors {
        self.actors_of(self.listed_controls(identity_id))
    }

    /// The actors of the identity from the full edge list (the reference of [`Self::actors`]).
    #[cfg(test)]
    pub(crate) fn actors_from_links(&self, identity_id: &str) -> Actors {
        self.actors_of(self.listed_controls_from_links(identity_id))
    }

    /// How many principals can act as the identity (the `count` of [`Self::actors`], without
    /// building the listed actors' controls).
    pub fn actor_count(&self, identity_id: &str) -> usize {
        self.azure
            .as_ref()
            .map_or(0, |a| a.listed_links(identity_id, &self.actor_rank).count)
    }

    /// The actors of a count and the listed controls, most dangerous first.
    fn actors_of(&self, (count, listed): (usize, Vec<(Control, usize)>)) -> Actors {
        let mut by_actor: BTreeMap<String, Actor> = BTreeMap::new();
        for (control, controls) in listed {
            let key = control.actor_id.to_ascii_lowercase();
            let subject = self.position.get(&key).map(|&i| &self.subjects[i]);
            let object = self.objects.get(&key).copied();
            let principal = match subject {
                Some(s) => s.node(),
                None => NodeRef {
                    id: control.actor_id.clone(),
                    kind: self.azure.as_ref().map_or_else(
                        || NodeKind::of_principal_type(control.actor_type.as_deref()),
                        |a| a.kind_of_outsider(&key, control.actor_type.as_deref()),
                    ),
                    name: self.principal_name(&control.actor_id),
                },
            };
            by_actor.insert(
                key.clone(),
                Actor {
                    principal,
                    guest: object.is_some_and(DirectoryObject::is_guest),
                    member_count: self.member_counts.get(&key).copied(),
                    holds_credentials: subject.is_some_and(|s| s.holds_credentials),
                    tier: subject.and_then(|s| s.tier),
                    control,
                    controls,
                },
            );
        }
        let mut all: Vec<Actor> = by_actor.into_values().collect();
        all.sort_by(|a, b| {
            a.danger_rank()
                .cmp(&b.danger_rank())
                .then_with(|| a.principal.name.cmp(&b.principal.name))
                .then_with(|| a.principal.id.cmp(&b.principal.id))
        });
        all.truncate(ACTORS_LISTED);
        Actors { count, first: all }
    }

    /// The shortest path from a subject to Tier-0 (its most severe class), if any.
    pub fn path_to_tier0(&self, subject_id: &str) -> Option<PathToTier0> {
        let mut i = *self.position.get(&subject_id.to_ascii_lowercase())?;
        let first = self.reach[i].as_ref()?;
        let severity = first.severity;
        let mut hops = Vec::new();
        let mut seen = HashSet::new();
        loop {
            if !seen.insert(i) {
                return None; // unreachable: each step leads to a shorter distance
            }
            let subject = &self.subjects[i];
            let reach = self.reach[i].as_ref()?;
            let from = subject.node();
            match &reach.step {
                Step::Holds(holding) => {
                    let holder = self.through_group(&mut hops, &from, holding.via_group.as_ref());
                    hops.push(self.holding_hop(subject, holder, holding));
                    return Some(PathToTier0 {
                        severity,
                        target: holding.clone(),
                        hops,
                    });
                }
                Step::Controls {
                    via_group,
                    control,
                    next,
                } => {
                    let actor = self.through_group(&mut hops, &from, via_group.as_ref());
                    let target = &self.subjects[*next];
                    hops.push(control_hop(actor, target.node(), control));
                    i = *next;
                }
                Step::Owns {
                    via_group,
                    owned,
                    next,
                } => {
                    let owner = self.through_group(&mut hops, &from, via_group.as_ref());
                    let target = &self.subjects[*next];
                    hops.push(self.owns_hop(owner, target.node(), owned));
                    i = *next;
                }
            }
        }
    }

    /// Adds the membership hop when the step goes through a group; returns the node the next
    /// hop starts from.
    fn through_group(
        &self,
        hops: &mut Vec<Hop>,
        from: &NodeRef,
        group: Option<&GroupRef>,
    ) -> NodeRef {
        let Some(group) = group else {
            return from.clone();
        };
        let node = NodeRef {
            id: group.id.clone(),
            kind: NodeKind::Group,
            name: group.display_name.clone(),
        };
        hops.push(Hop {
            from: from.clone(),
            edge: EdgeKind::MemberOf,
            to: node.clone(),
            evidence: json!({ "groupId": group.id, "membership": "transitive" }),
            remediation: format!(
                "Remove {} from the group {} (or from the nested group that makes it a member): {}",
                from.name.as_deref().unwrap_or(&from.id),
                group.display_name.as_deref().unwrap_or(&group.id),
                az_rest(
                    "DELETE",
                    &self.graph,
                    &format!("/groups/{}/members/{}/$ref", group.id, from.id)
                )
            ),
        });
        node
    }

    fn owns_hop(&self, owner: NodeRef, target: NodeRef, owned: &OwnedRef) -> Hop {
        Hop {
            remediation: format!(
                "Remove {} as an owner of the {} {}: {}",
                owner.name.as_deref().unwrap_or(&owner.id),
                owned.object_kind,
                owned.object_name.as_deref().unwrap_or(&owned.object_id),
                az_rest("DELETE", &self.graph, &owned.owner_ref_path())
            ),
            from: owner,
            edge: EdgeKind::Owns,
            to: target,
            evidence: json!({
                "ownedObject": {
                    "id": owned.object_id,
                    "kind": owned.object_kind,
                    "name": owned.object_name,
                },
                "means": owned.means(),
            }),
        }
    }

    fn holding_hop(&self, subject: &SubjectNode, holder: NodeRef, holding: &Holding) -> Hop {
        let (edge, remediation) = match holding.kind {
            HoldingKind::DirectoryRole if holding.eligible => (
                EdgeKind::HoldsDirectoryRole,
                format!(
                    "Remove the eligibility: {} --body '{{\"action\":\"adminRemove\",\"principalId\":\"{}\",\"roleDefinitionId\":\"{}\",\"directoryScopeId\":\"/\"}}'",
                    az_rest(
                        "POST",
                        &self.graph,
                        "/roleManagement/directory/roleEligibilityScheduleRequests"
                    ),
                    holder.id,
                    holding.target.id
                ),
            ),
            HoldingKind::DirectoryRole => (
                EdgeKind::HoldsDirectoryRole,
                format!(
                    "Remove the role assignment: {}",
                    az_rest(
                        "DELETE",
                        &self.graph,
                        &format!(
                            "/roleManagement/directory/roleAssignments/{}",
                            holding.assignment_id
                        )
                    )
                ),
            ),
            HoldingKind::AppPermission => (
                EdgeKind::HoldsAppRole,
                format!(
                    "Remove the app role assignment: {}",
                    az_rest(
                        "DELETE",
                        &self.graph,
                        &format!(
                            "/servicePrincipals/{}/appRoleAssignments/{}",
                            subject.id, holding.assignment_id
                        )
                    )
                ),
            ),
            HoldingKind::AzureAccessAdministration => (
                EdgeKind::HoldsAzureRole,
                match &holding.eligibility {
                    Some(e) => format!(
                        "Remove the eligibility: az rest --method PUT --url \"{}{}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/$(uuidgen)?api-version=2020-10-01\" --body '{{\"properties\":{{\"requestType\":\"AdminRemove\",\"principalId\":\"{}\",\"roleDefinitionId\":\"{}\"}}}}'",
                        self.arm.trim_end_matches('/'),
                        e.scope.trim_end_matches('/'),
                        e.principal_id,
                        e.role_definition_id
                    ),
                    None => format!(
                        "Delete the assignment: az role assignment delete --ids {}",
                        crate::model::shell_quote(&holding.assignment_id)
                    ),
                },
            ),
        };
        Hop {
            from: holder,
            edge,
            to: holding.target.clone(),
            evidence: json!({
                "assignmentId": holding.assignment_id,
                "holds": holding.description,
            }),
            remediation,
        }
    }
}

/// The hop of a control edge.
fn control_hop(actor: NodeRef, target: NodeRef, control: &Control) -> Hop {
    let narrow = match &control.route {
        Route::Host { host_id, .. } => format!(
            "or grant {} at a scope that does not hold {host_id}, or use a role without {}",
            control.role_name, control.action
        ),
        Route::DeploymentStorage { container_id, .. } => format!(
            "or grant {} at a scope that does not hold the deployment container {container_id}, or use a role without {}; let only the deployment pipeline write the container",
            control.role_name, control.action
        ),
        Route::FederatedCredential {
            identity_resource_id,
        }
        | Route::Assign {
            identity_resource_id,
            ..
        } => format!(
            "or grant {} at a scope that does not hold {identity_resource_id}, or use a role without {}",
            control.role_name, control.action
        ),
    };
    Hop {
        from: actor,
        edge: EdgeKind::CanExecuteAs,
        to: target,
        evidence: serde_json::to_value(control).unwrap_or_default(),
        remediation: format!(
            "Delete the assignment: az role assignment delete --ids {}; {narrow}",
            crate::model::shell_quote(&control.assignment_id)
        ),
    }
}
