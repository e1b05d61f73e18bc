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
pub const IDENTITY_SCHEMA_VERSION: &str = "1.3.0";

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
    /// Number of findings about it.
    #[serde(default)]
    pub finding_count: usize,
    /// Its most severe finding.
    #[serde(default)]
    pub highest_severity: Option<Severity>,
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
