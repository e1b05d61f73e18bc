//! The identity record: one line of `identities.ndjson`, a managed identity with the resource
//! behind it, its resolved privileges and its finding count.

use serde::{Deserialize, Serialize};

use crate::classification::Tier;
use crate::model::{IdentityKind, Severity};
use crate::resolve::azure::ResolvedAzureRole;
use crate::resolve::identity_kind::classify;
use crate::resolve::paths::{Actors, PathToTier0};
use crate::resolve::principals::{
    PrincipalView, ResolvedAppRole, ResolvedDirectoryRole, ResolvedGrant, ResolvedGroup,
};
use crate::snapshot::graph::ServicePrincipal;
use crate::snapshot::{DatasetName, PimLicence};

/// Version of the identity record format.
pub const IDENTITY_SCHEMA_VERSION: &str = "1.4.0";

/// One line of `identities.ndjson`: a managed identity and the resource behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRecord {
    /// Format version of this record.
    pub schema_version: String,
    /// Object id of the service principal.
    pub id: String,
    /// Application (client) id.
    pub app_id: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// `systemAssigned` or `userAssigned`.
    pub kind: IdentityKind,
    /// Whether the service principal can sign in.
    pub account_enabled: Option<bool>,
    /// Full ARM resource id from `alternativeNames`.
    pub resource_id: Option<String>,
    /// Subscription of the resource.
    pub subscription_id: Option<String>,
    /// Resource group of the resource.
    pub resource_group: Option<String>,
    /// Management group, for identities at management-group scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_group: Option<String>,
    /// Provider namespace and type, e.g. `Microsoft.Web/sites`.
    pub resource_type: Option<String>,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Anything odd about the classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification_note: Option<String>,
    /// Highest tier across its Graph permissions, directory roles and Azure roles (absent: it
    /// holds none).
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Application permissions, resolved and tiered (null: could not be read).
    #[serde(default)]
    pub app_roles: Option<Vec<ResolvedAppRole>>,
    /// Transitive group memberships (null: could not be read).
    #[serde(default)]
    pub groups: Option<Vec<ResolvedGroup>>,
    /// Directory roles, direct or through a group, active or eligible (null: could not be read).
    #[serde(default)]
    pub directory_roles: Option<Vec<ResolvedDirectoryRole>>,
    /// Delegated permission grants as client (null: could not be read).
    #[serde(default)]
    pub delegated_grants: Option<Vec<ResolvedGrant>>,
    /// Azure RBAC role assignments, direct or through a group, with scope and tier (null: the
    /// Azure plane could not be read).
    #[serde(default)]
    pub azure_role_assignments: Option<Vec<ResolvedAzureRole>>,
    /// Data sets that could not be read for this identity.
    #[serde(default)]
    pub unknown: Vec<DatasetName>,
    /// Whether the tenant has PIM (`{licensed: false}`: no role can be eligible, and the PIM
    /// checks do not apply); null when it could not be told.
    #[serde(default)]
    pub pim: Option<PimLicence>,
    /// The shortest path from it to a Tier-0 privilege, hop by hop (null: none). A direct
    /// holding is a path of one hop (two through a group).
    #[serde(default)]
    pub path_to_tier0: Option<PathToTier0>,
    /// The principals that can run code as it or take it over: their count and the first 20,
    /// most dangerous first.
    #[serde(default)]
    pub actors: Actors,
    /// What it was seen using in the usage window; absent when the usage plane is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<IdentityUsage>,
    /// Number of findings about it.
    #[serde(default)]
    pub finding_count: usize,
    /// Its most severe finding.
    #[serde(default)]
    pub highest_severity: Option<Severity>,
}

/// Most observed paths or operations a record lists.
pub const USAGE_LIST_CAP: usize = 50;

/// What an identity was seen doing in the usage window (identity records 1.4.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityUsage {
    /// The window, in days.
    pub window_days: u32,
    /// Its latest successful sign-in; null when none was seen, or sign-ins are unknown.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sign_in: Option<time::OffsetDateTime>,
    /// The resources it signed in to; null when sign-ins are unknown.
    pub resources: Option<Vec<String>>,
    /// Its Graph requests, most frequent first (at most 50); null when unknown.
    pub graph_requests: Option<Vec<ObservedGraphRequest>>,
    /// How many distinct Graph method and path pairs it used.
    pub graph_request_count: usize,
    /// Its ARM writes and actions, most frequent first (at most 50); null when unknown.
    pub arm_operations: Option<Vec<ObservedArmOperation>>,
    /// How many distinct ARM operations it performed.
    pub arm_operation_count: usize,
}

/// One Graph method and path template, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedGraphRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path template.
    pub path: String,
    /// Requests in the window.
    pub count: u64,
    /// The latest.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: time::OffsetDateTime,
}

/// One ARM operation, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedArmOperation {
    /// The operation, e.g. `Microsoft.Compute/virtualMachines/write`.
    pub operation: String,
    /// Operations in the window.
    pub count: u64,
    /// The latest.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: time::OffsetDateTime,
}

impl IdentityUsage {
    /// What `index` holds about the identity `id`.
    pub fn of(index: &crate::resolve::usage::UsageIndex<'_>, id: &str) -> Option<Self> {
        let usage = index.usage?;
        let sign_ins = index.sign_ins(id);
        let mut graph = index.graph_requests(id).to_vec();
        graph.sort_by(|a, b| b.count.cmp(&a.count).then(a.path.cmp(&b.path)));
        let mut arm = index.arm_operations(id).to_vec();
        arm.sort_by(|a, b| b.count.cmp(&a.count).then(a.operation.cmp(&b.operation)));
        Some(Self {
            window_days: usage.window_days,
            last_sign_in: sign_ins.iter().map(|s| s.last_seen).max(),
            resources: usage.sign_ins.known().map(|_| {
                let mut names: Vec<String> = sign_ins.iter().map(|s| s.resource.clone()).collect();
                names.sort();
                names.dedup();
                names
            }),
            graph_request_count: graph.len(),
            graph_requests: usage.graph_requests.known().map(|_| {
                graph
                    .iter()
                    .take(USAGE_LIST_CAP)
                    .map(|r| ObservedGraphRequest {
                        method: r.method.clone(),
                        path: r.path.clone(),
                        count: r.count,
                        last_seen: r.last_seen,
                    })
                    .collect()
            }),
            arm_operation_count: arm.len(),
            arm_operations: usage.arm_operations.known().map(|_| {
                arm.iter()
                    .take(USAGE_LIST_CAP)
                    .map(|o| ObservedArmOperation {
                        operation: o.operation.clone(),
                        count: o.count,
                        last_seen: o.last_seen,
                    })
                    .collect()
            }),
        })
    }
}

impl IdentityRecord {
    /// Builds the record for one managed-identity service principal.
    pub fn from_service_principal(sp: &ServicePrincipal) -> Self {
        let c = classify(&sp.alternative_names);
        let resource = c.resource.as_ref();
        Self {
            schema_version: IDENTITY_SCHEMA_VERSION.to_owned(),
            id: sp.id.clone(),
            app_id: sp.app_id.clone(),
            display_name: sp.display_name.clone(),
            kind: c.kind,
            account_enabled: sp.account_enabled,
            resource_id: resource.map(|r| r.id.clone()),
            subscription_id: resource.and_then(|r| r.subscription_id.clone()),
            resource_group: resource.and_then(|r| r.resource_group.clone()),
            management_group: resource.and_then(|r| r.management_group.clone()),
            resource_type: resource.map(|r| r.resource_type.clone()),
            resource_name: resource.map(|r| r.name.clone()),
            classification_note: c.note,
            tier: None,
            app_roles: None,
            groups: None,
            directory_roles: None,
            delegated_grants: None,
            azure_role_assignments: None,
            unknown: Vec::new(),
            pim: None,
            path_to_tier0: None,
            actors: Actors::default(),
            usage: None,
            finding_count: 0,
            highest_severity: None,
        }
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
