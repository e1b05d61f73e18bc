//! The Azure estate of a generated tenant ([`super::SimTenant::generated_with`]): management
//! groups a few levels deep, subscriptions under them, a resource group layout, the host
//! resources of every kind in `data/attack-paths/execute-as.json` carrying the generated
//! managed identities, the storage accounts of Flex function apps' deployment storage, Azure
//! role assignments to users, groups and service principals at every scope kind, built-in and
//! custom role definitions (wildcards and `notActions` included), PIM eligibilities and
//! federated credentials.
//!
//! Deterministic for a seed, and lazy where it is large: the role assignments, the identity
//! resources and the user-assigned identity rows are not stored but computed row by row from
//! their index when the simulator serves a Resource Graph page ([`Estate::row`]), so a
//! 50,000-identity tenant (about 500,000 assignments and 100,000 resources) costs the
//! simulator a few megabytes. The small parts (subscriptions, role definitions, storage
//! accounts, eligibilities, federated credentials) are ordinary [`super::arm::SimArm`] rows.
//!
//! Placement of identity `i` (shared with the Graph side, whose `alternativeNames` carry the
//! same ARM ids): subscription `(i / 2) % S`, resource group `(i / 2 / S) % 20`, with
//! `S = max(4, identities / 250)`; even `i` are system-assigned identities of a host of kind
//! `HOSTS[(i / 2) % HOSTS.len()]`, odd `i` are user-assigned identities.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::arm::queries;

/// How big the Azure estate of a generated tenant is, relative to its managed identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EstateSize {
    /// Azure role assignments per managed identity, on average (to users, groups and service
    /// principals together). 0: no Azure estate at all (no readable subscription).
    pub role_assignments_per_identity: usize,
    /// Resources per managed identity (host resources, user-assigned identities and deployment
    /// storage accounts together), about.
    pub resources_per_identity: usize,
}

impl Default for EstateSize {
    /// 10 role assignments and 2 resources per identity: 500,000 and 100,000 at 50,000.
    fn default() -> Self {
        Self {
            role_assignments_per_identity: 10,
            resources_per_identity: 2,
        }
    }
}

impl EstateSize {
    /// No Azure estate: ARM answers, but the scanner can read no subscription.
    pub fn none() -> Self {
        Self {
            role_assignments_per_identity: 0,
            resources_per_identity: 0,
        }
    }

    /// True when there is no estate.
    pub fn is_none(&self) -> bool {
        self.role_assignments_per_identity == 0 && self.resources_per_identity == 0
    }
}

/// A host kind: ARM type, how Resource Graph spells it, and an extra property.
struct HostKind {
    arm_type: &'static str,
    kind: Option<&'static str>,
    function_app: bool,
    slot: bool,
}

/// Every host type of `execute-as.json`, web and function apps apart, slots included.
const HOSTS: [HostKind; 13] = [
    host("Microsoft.Compute/virtualMachines"),
    host("Microsoft.Compute/virtualMachineScaleSets"),
    host("Microsoft.HybridCompute/machines"),
    HostKind {
        arm_type: "Microsoft.Web/sites",
        kind: Some("app,linux"),
        function_app: false,
        slot: false,
    },
    HostKind {
        arm_type: "Microsoft.Web/sites",
        kind: Some("functionapp,linux"),
        function_app: true,
        slot: false,
    },
    HostKind {
        arm_type: "Microsoft.Web/sites/slots",
        kind: Some("app,linux"),
        function_app: false,
        slot: true,
    },
    host("Microsoft.Automation/automationAccounts"),
    host("Microsoft.Logic/workflows"),
    host("Microsoft.ContainerService/managedClusters"),
    host("Microsoft.App/containerApps"),
    host("Microsoft.App/jobs"),
    host("Microsoft.DataFactory/factories"),
    host("Microsoft.Batch/batchAccounts"),
];

const fn host(arm_type: &'static str) -> HostKind {
    HostKind {
        arm_type,
        kind: None,
        function_app: false,
        slot: false,
    }
}

/// Resource groups per subscription.
const RESOURCE_GROUPS: usize = 20;
/// Identities per subscription, about.
const IDENTITIES_PER_SUBSCRIPTION: usize = 250;

/// The management-group tree under the tenant root group: (name, display name, parent; None =
/// the tenant root group). Subscriptions sit under the leaves.
const MANAGEMENT_GROUPS: &[(&str, &str, Option<&str>)] = &[
    ("mg-estate", "Estate", None),
    ("mg-platform", "Platform", Some("mg-estate")),
    ("mg-platform-identity", "Identity", Some("mg-platform")),
    (
        "mg-platform-connectivity",
        "Connectivity",
        Some("mg-platform"),
    ),
    ("mg-landingzones", "Landing zones", Some("mg-estate")),
    ("mg-corp", "Corp", Some("mg-landingzones")),
    ("mg-corp-prod", "Corp production", Some("mg-corp")),
    ("mg-corp-nonprod", "Corp non-production", Some("mg-corp")),
    ("mg-online", "Online", Some("mg-landingzones")),
    ("mg-sandbox", "Sandbox", Some("mg-estate")),
];
/// Azure holds at most 500 role assignments per management group, a fixed limit
/// (learn.microsoft.com/azure/role-based-access-control/troubleshoot-limits): the estate keeps
/// the scopes above subscriptions (its management groups, the tenant root group, and `/`) at
/// this average, so that however large the estate, what sits there is what Azure allows.
const ASSIGNMENTS_PER_MANAGEMENT_GROUP: usize = 400;

/// The management groups subscriptions are placed under, in turn.
const LEAVES: &[&str] = &[
    "mg-corp-prod",
    "mg-corp-prod",
    "mg-corp-nonprod",
    "mg-online",
    "mg-platform-identity",
    "mg-platform-connectivity",
    "mg-sandbox",
];

/// Built-in roles the estate assigns: (GUID, name, weight per mille, actions, notActions,
/// dataActions).
type Builtin = (
    &'static str,
    &'static str,
    u32,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);
const BUILTIN_ROLES: &[Builtin] = &[
    (
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader",
        260,
        &["*/read"],
        &[],
        &[],
    ),
    (
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Contributor",
        90,
        &["*"],
        &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ],
        &[],
    ),
    (
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Owner",
        12,
        &["*"],
        &[],
        &[],
    ),
    (
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
        4,
        &["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
        &[],
        &[],
    ),
    (
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Role Based Access Control Administrator",
        3,
        &[
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ],
        &[],
        &[],
    ),
    (
        "f1a07417-d97a-45cb-824c-7a7467783830",
        "Managed Identity Operator",
        6,
        &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        &[],
        &[],
    ),
    (
        "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59",
        "Managed Identity Contributor",
        2,
        &[
            "Microsoft.ManagedIdentity/userAssignedIdentities/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ],
        &[],
        &[],
    ),
    (
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Storage Blob Data Contributor",
        120,
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        &[],
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    ),
    (
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "Storage Blob Data Reader",
        90,
        &[
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        &[],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    ),
    (
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        100,
        &[],
        &[],
        &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ),
    (
        "de139f84-1756-47ae-9be6-808fbbe84772",
        "Website Contributor",
        40,
        &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Insights/components/*",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.Web/certificates/*",
            "Microsoft.Web/listSitesAssignedToHostName/read",
            "Microsoft.Web/serverFarms/join/action",
            "Microsoft.Web/serverFarms/read",
            "Microsoft.Web/sites/*",
        ],
        &[],
        &[],
    ),
    (
        "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
        "Virtual Machine Contributor",
        30,
        &[
            "Microsoft.Authorization/*/read",
            "Microsoft.Compute/availabilitySets/*",
            "Microsoft.Compute/locations/*",
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Compute/virtualMachineScaleSets/*",
            "Microsoft.Compute/disks/write",
            "Microsoft.Compute/disks/read",
            "Microsoft.Network/networkInterfaces/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/read",
            "Microsoft.Support/*",
        ],
        &[],
        &[],
    ),
    (
        "92aaf0da-9dab-42b6-94a3-d43ce8d16293",
        "Log Analytics Contributor",
        20,
        &[
            "*/read",
            "Microsoft.Compute/virtualMachines/extensions/*",
            "Microsoft.HybridCompute/machines/extensions/write",
            "Microsoft.Insights/diagnosticSettings/*",
            "Microsoft.OperationalInsights/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Support/*",
        ],
        &[],
        &[],
    ),
    (
        "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
        "Monitoring Reader",
        63,
        &[
            "*/read",
            "Microsoft.OperationalInsights/workspaces/search/action",
            "Microsoft.Support/*",
        ],
        &[],
        &[],
    ),
];

/// Custom roles, each assigned with weight 10 per mille: (name, actions, notActions,
/// dataActions, notDataActions).
type Custom = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);
const CUSTOM_ROLES: &[Custom] = &[
    (
        "Estate App Deployer",
        &[
            "*/read",
            "Microsoft.Web/sites/*",
            "Microsoft.Resources/deployments/*",
        ],
        &["Microsoft.Web/sites/delete"],
        &[],
        &[],
    ),
    (
        "Estate VM Operator",
        &["*/read", "Microsoft.Compute/virtualMachines/*"],
        &["Microsoft.Compute/virtualMachines/delete"],
        &[],
        &[],
    ),
    (
        "Estate Near Owner",
        &["*"],
        &[
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
        ],
        &[],
        &[],
    ),
    ("Estate Writer", &["*/read", "*/write"], &[], &[], &[]),
    (
        "Estate Identity Assigner",
        &[
            "*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        ],
        &[],
        &[],
        &[],
    ),
    (
        "Estate Storage Key Reader",
        &[
            "Microsoft.Storage/storageAccounts/read",
            "Microsoft.Storage/storageAccounts/listKeys/action",
        ],
        &[],
        &[],
        &[],
    ),
    (
        "Estate Blob Writer",
        &["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
        &[],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"],
    ),
    (
        "Estate Runbook Author",
        &[
            "*/read",
            "Microsoft.Automation/automationAccounts/runbooks/*",
            "Microsoft.Automation/automationAccounts/jobs/*",
        ],
        &[],
        &[],
        &[],
    ),
    (
        "Estate Logic Editor",
        &["Microsoft.Logic/workflows/*"],
        &[],
        &[],
        &[],
    ),
    (
        "Estate AKS Operator",
        &["Microsoft.ContainerService/managedClusters/*"],
        &["Microsoft.ContainerService/managedClusters/delete"],
        &[],
        &[],
    ),
    (
        "Estate Container Apps Developer",
        &["Microsoft.App/*"],
        &[],
        &[],
        &[],
    ),
    (
        "Estate Pipeline Developer",
        &[
            "Microsoft.DataFactory/factories/read",
            "Microsoft.DataFactory/factories/pipelines/*",
        ],
        &[],
        &[],
        &[],
    ),
    (
        "Estate Batch Operator",
        &[
            "Microsoft.Batch/batchAccounts/pools/*",
            "Microsoft.Batch/batchAccounts/read",
        ],
        &[],
        &["Microsoft.Batch/batchAccounts/jobs/*"],
        &[],
    ),
    (
        "Estate Arc Operator",
        &[
            "Microsoft.HybridCompute/machines/read",
            "Microsoft.HybridCompute/machines/extensions/*",
        ],
        &[],
        &[],
        &[],
    ),
    (
        "Estate Cost Reader",
        &[
            "Microsoft.Consumption/*/read",
            "Microsoft.CostManagement/*/read",
        ],
        &[],
        &[],
        &[],
    ),
    (
        "Estate RBAC Delegate",
        &["*/read", "Microsoft.Authorization/roleAssignments/*"],
        &[],
        &[],
        &[],
    ),
];
const CUSTOM_WEIGHT: u32 = 10;

/// SplitMix64: a fast, well-mixed hash, so any row can be computed from its index alone.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of (seed, stream, index).
fn draw(seed: u32, stream: u64, index: usize) -> u64 {
    mix(mix(u64::from(seed) ^ stream.wrapping_mul(0x0100_0000_01B3)) ^ index as u64)
}

/// A GUID-shaped id from (seed, stream, index).
fn guid(seed: u32, stream: u64, index: usize) -> String {
    let a = draw(seed, stream, index);
    let b = draw(seed, stream ^ 0xA5A5, index);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// Subscriptions of a tenant of `identities` identities.
pub fn subscription_count(identities: usize) -> usize {
    (identities / IDENTITIES_PER_SUBSCRIPTION).max(4)
}

/// Subscription GUID number `s`.
pub fn subscription_id(seed: u32, s: usize) -> String {
    format!("{seed:08x}-1111-4000-8000-{s:012x}")
}

/// Resource group name number `rg`.
fn resource_group(rg: usize) -> String {
    format!("rg-workload-{rg:02}")
}

/// Where identity `i` lives: (subscription index, resource group index). Identities `2k` and
/// `2k + 1` share a resource group, and consecutive pairs sit in consecutive subscriptions.
fn place(i: usize, subscriptions: usize) -> (usize, usize) {
    let pair = i / 2;
    (
        pair % subscriptions,
        (pair / subscriptions) % RESOURCE_GROUPS,
    )
}

/// The ARM resource id the managed identity `i` of a generated tenant belongs to (its host for
/// a system-assigned identity, the identity resource for a user-assigned one): what its
/// service principal's `alternativeNames` carry.
pub fn identity_arm_id(seed: u32, i: usize, identities: usize) -> String {
    let (s, rg) = place(i, subscription_count(identities));
    let prefix = format!(
        "/subscriptions/{}/resourceGroups/{}/providers",
        subscription_id(seed, s),
        resource_group(rg)
    );
    if i % 2 == 1 {
        return format!("{prefix}/Microsoft.ManagedIdentity/userAssignedIdentities/id-{i:06}");
    }
    let kind = &HOSTS[(i / 2) % HOSTS.len()];
    if kind.slot {
        format!("{prefix}/Microsoft.Web/sites/app-{i:06}/slots/staging")
    } else {
        format!("{prefix}/{}/res-{i:06}", kind.arm_type)
    }
}

/// Object id of managed identity `i` (as the Graph side generates it).
pub fn identity_object_id(seed: u32, i: usize) -> String {
    format!("{seed:08x}-{:04x}-4000-8000-{i:012x}", (i / 65536) % 65536)
}

/// Application (client) id of managed identity `i`.
pub fn identity_app_id(seed: u32, i: usize) -> String {
    format!("{seed:08x}-a000-4000-8000-{i:012x}")
}

/// Groups of a generated tenant and the id of group `g`.
pub fn group_count(identities: usize) -> usize {
    (identities / 100).max(4)
}

/// Object id of generated group `g`.
pub fn group_id(seed: u32, g: usize) -> String {
    format!("{seed:08x}-6000-4000-8000-{g:012x}")
}

/// Applications of a generated tenant.
pub fn application_count(identities: usize) -> usize {
    (identities / 20).max(1)
}

/// Service principal object id of generated application `a`.
pub fn application_sp_id(seed: u32, a: usize) -> String {
    format!("{seed:08x}-7000-4000-8000-{a:012x}")
}

/// Streams of [`draw`], one per decision, so decisions are independent.
mod stream {
    pub const ASSIGNMENT: u64 = 1;
    pub const PRINCIPAL: u64 = 2;
    pub const SCOPE: u64 = 3;
    pub const ROLE: u64 = 4;
    pub const HOST: u64 = 5;
    pub const SECOND: u64 = 6;
    pub const EXTRA: u64 = 7;
    pub const ELIGIBLE: u64 = 8;
    pub const FIC: u64 = 9;
    pub const GUID: u64 = 10;
    pub const DATE: u64 = 11;
}

/// Who a generated assignment is for.
#[derive(Debug, Clone, Copy)]
enum Principal {
    Identity,
    User,
    Group,
    Application,
    Deleted,
}

/// What a generated assignment's scope is.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Root,
    TenantRootGroup,
    ManagementGroup,
    Subscription,
    ResourceGroup,
    Resource,
}

/// The lazily generated part of an estate, and what is needed to compute it.
#[derive(Debug)]
pub struct Estate {
    seed: u32,
    identities: usize,
    size: EstateSize,
    subscriptions: usize,
    /// System-assigned identities (even indexes) = their hosts.
    system_hosts: usize,
    /// User-assigned identities (odd indexes).
    user_assigned: usize,
    /// Hosts that carry only user-assigned identities.
    uami_hosts: usize,
    role_assignments: usize,
    /// Of the draws that land above the subscriptions, how many per mille stay there (the
    /// rest move to a subscription): [`ASSIGNMENTS_PER_MANAGEMENT_GROUP`].
    above_subscriptions_kept: u64,
    tenant_id: String,
    users: usize,
    groups: usize,
    applications: usize,
    deleted: usize,
    /// Role weights: (cumulative per mille, role definition GUID).
    roles: Vec<(u32, String)>,
}

impl PartialEq for Estate {
    fn eq(&self, other: &Self) -> bool {
        (self.seed, self.identities, self.size, &self.tenant_id)
            == (other.seed, other.identities, other.size, &other.tenant_id)
    }
}

/// The small, stored part of an estate: rows for [`super::arm::SimArm`].
#[derive(Debug, Default)]
pub struct EstateRows {
    /// Rows of `queries::SUBSCRIPTIONS`.
    pub subscriptions: Vec<Value>,
    /// Rows of `queries::ROLE_DEFINITIONS`.
    pub role_definitions: Vec<Value>,
    /// Rows of `queries::STORAGE_ACCOUNTS`.
    pub storage_accounts: Vec<Value>,
    /// Rows of `queries::ROLE_ASSIGNMENTS` stored as is (the scanner's Reader).
    pub role_assignments: Vec<Value>,
    /// PIM eligibility instances.
    pub eligibilities: Vec<Value>,
    /// Federated credentials by user-assigned identity id.
    pub federated_credentials: BTreeMap<String, Vec<Value>>,
}

impl Estate {
    /// The estate of a generated tenant of `identities` managed identities, and its stored rows.
    pub fn generate(
        seed: u32,
        identities: usize,
        tenant_id: &str,
        scanner_object_id: &str,
        size: EstateSize,
    ) -> (Self, EstateRows) {
        let subscriptions = subscription_count(identities);
        let system_hosts = identities.div_ceil(2);
        let user_assigned = identities / 2;
        let total_resources = size.resources_per_identity * identities;
        let uami_hosts = if user_assigned == 0 {
            0
        } else {
            total_resources.saturating_sub(system_hosts + user_assigned)
        };
        let mut roles = Vec::new();
        let mut cumulative = 0;
        for (id, _, weight, ..) in BUILTIN_ROLES {
            cumulative += weight;
            roles.push((cumulative, (*id).to_owned()));
        }
        for c in 0..CUSTOM_ROLES.len() {
            cumulative += CUSTOM_WEIGHT;
            roles.push((cumulative, guid(seed, stream::ROLE, c)));
        }
        let role_assignments = size.role_assignments_per_identity * identities;
        // 15 per mille of draws land above subscriptions; the management groups, the tenant
        // root group and `/` share the limit.
        let above = (role_assignments * 15 / 1000).max(1);
        let allowed = ASSIGNMENTS_PER_MANAGEMENT_GROUP * (MANAGEMENT_GROUPS.len() + 2);
        let estate = Self {
            above_subscriptions_kept: (allowed * 1000 / above).min(1000) as u64,
            seed,
            identities,
            size,
            subscriptions,
            system_hosts,
            user_assigned,
            uami_hosts,
            role_assignments,
            tenant_id: tenant_id.to_owned(),
            users: (identities / 2).max(100),
            groups: group_count(identities),
            applications: application_count(identities),
            deleted: (identities / 200).max(10),
            roles,
        };
        let rows = estate.stored_rows(scanner_object_id);
        (estate, rows)
    }

    /// Rows the estate has for `query` beyond the stored ones.
    pub fn count(&self, query: &str) -> usize {
        match query {
            q if q == queries::ROLE_ASSIGNMENTS => self.role_assignments,
            q if q == queries::IDENTITY_RESOURCES => self.system_hosts + self.uami_hosts,
            q if q == queries::USER_ASSIGNED_IDENTITIES => self.user_assigned,
            _ => 0,
        }
    }

    /// Row `index` of `query` (below [`Self::count`]).
    pub fn row(&self, query: &str, index: usize) -> Option<Value> {
        if index >= self.count(query) {
            return None;
        }
        match query {
            q if q == queries::ROLE_ASSIGNMENTS => Some(self.role_assignment(index)),
            q if q == queries::IDENTITY_RESOURCES => Some(self.identity_resource(index)),
            q if q == queries::USER_ASSIGNED_IDENTITIES => {
                Some(self.user_assigned_identity(2 * index + 1))
            }
            _ => None,
        }
    }

    /// True when `id` is one of the estate's user-assigned identities.
    pub fn has_identity(&self, id: &str) -> bool {
        let lower = id.to_ascii_lowercase();
        let Some(number) = lower
            .rsplit_once("/providers/microsoft.managedidentity/userassignedidentities/id-")
            .and_then(|(_, n)| n.parse::<usize>().ok())
        else {
            return false;
        };
        number % 2 == 1
            && number < self.identities
            && identity_arm_id(self.seed, number, self.identities).eq_ignore_ascii_case(id)
    }

    fn subscription(&self, s: usize) -> String {
        subscription_id(self.seed, s)
    }

    fn rg_id(&self, s: usize, rg: usize) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription(s),
            resource_group(rg)
        )
    }

    /// The `i`-th user-assigned identity resource row (odd `i`).
    fn user_assigned_identity(&self, i: usize) -> Value {
        let (s, rg) = place(i, self.subscriptions);
        json!({
            "id": identity_arm_id(self.seed, i, self.identities),
            "name": format!("id-{i:06}"),
            "subscriptionId": self.subscription(s),
            "resourceGroup": resource_group(rg),
            "location": "westeurope",
            "tags": {"workload": format!("wl-{:03}", i % 400)},
            "principalId": identity_object_id(self.seed, i),
            "clientId": identity_app_id(self.seed, i),
        })
    }

    /// A user-assigned identity picked for host `n` of stream `which`: its identity index.
    fn pick_uami(&self, which: u64, n: usize) -> usize {
        let k = (draw(self.seed, which, n) % self.user_assigned.max(1) as u64) as usize;
        2 * k + 1
    }

    fn uami_entry(&self, i: usize) -> (String, Value) {
        (
            identity_arm_id(self.seed, i, self.identities),
            json!({"principalId": identity_object_id(self.seed, i), "clientId": identity_app_id(self.seed, i)}),
        )
    }

    /// The id, name, kind index and placement of identity resource `index`.
    fn resource_shape(&self, index: usize) -> (String, String, usize, usize, usize) {
        if index < self.system_hosts {
            let i = 2 * index;
            let (s, rg) = place(i, self.subscriptions);
            let kind = (i / 2) % HOSTS.len();
            let name = if HOSTS[kind].slot {
                format!("app-{i:06}/staging")
            } else {
                format!("res-{i:06}")
            };
            return (
                identity_arm_id(self.seed, i, self.identities),
                name,
                kind,
                s,
                rg,
            );
        }
        let j = index - self.system_hosts;
        let uami = self.pick_uami(stream::HOST, j);
        let (s, rg) = place(uami, self.subscriptions);
        let kind = (draw(self.seed, stream::EXTRA, j) % HOSTS.len() as u64) as usize;
        let prefix = format!("{}/providers", self.rg_id(s, rg));
        let (id, name) = if HOSTS[kind].slot {
            (
                format!("{prefix}/Microsoft.Web/sites/host-{j:06}/slots/blue"),
                format!("host-{j:06}/blue"),
            )
        } else {
            (
                format!("{prefix}/{}/host-{j:06}", HOSTS[kind].arm_type),
                format!("host-{j:06}"),
            )
        };
        (id, name, kind, s, rg)
    }

    /// The deployment storage account of resource group (s, rg).
    fn storage_account_name(&self, s: usize, rg: usize) -> String {
        format!("stdep{:04x}{rg:02}{:04x}", s, self.seed & 0xffff)
    }

    fn identity_resource(&self, index: usize) -> Value {
        let (id, name, kind, s, rg) = self.resource_shape(index);
        let host = &HOSTS[kind];
        let mut uamis = serde_json::Map::new();
        let (identity_type, principal) = if index < self.system_hosts {
            let i = 2 * index;
            // Three system-assigned hosts in ten also carry a user-assigned identity.
            if self.user_assigned > 0 && draw(self.seed, stream::SECOND, index) % 10 < 3 {
                let (k, v) = self.uami_entry(self.pick_uami(stream::SECOND, index));
                uamis.insert(k, v);
            }
            let t = if uamis.is_empty() {
                "SystemAssigned"
            } else {
                "SystemAssigned, UserAssigned"
            };
            (t, identity_object_id(self.seed, i))
        } else {
            let j = index - self.system_hosts;
            let (k, v) = self.uami_entry(self.pick_uami(stream::HOST, j));
            uamis.insert(k, v);
            // One host in five carries a second one.
            if draw(self.seed, stream::SECOND, index).is_multiple_of(5) {
                let (k, v) = self.uami_entry(self.pick_uami(stream::EXTRA, j));
                uamis.insert(k, v);
            }
            ("UserAssigned", String::new())
        };
        let (deployment, authentication) = if host.function_app {
            (
                format!(
                    "https://{}.blob.core.windows.net/app-package-{}",
                    self.storage_account_name(s, rg),
                    name.replace('/', "-")
                ),
                if principal.is_empty() {
                    "UserAssignedIdentity"
                } else {
                    "SystemAssignedIdentity"
                },
            )
        } else {
            (String::new(), "")
        };
        let oidc = if host.arm_type == "Microsoft.ContainerService/managedClusters" {
            format!(
                "https://westeurope.oic.prod-aks.azure.com/{}/{}/",
                self.tenant_id,
                guid(self.seed, stream::HOST, index)
            )
        } else {
            String::new()
        };
        let mut row = json!({
            "id": id,
            "name": name,
            "type": host.arm_type.to_ascii_lowercase(),
            "subscriptionId": self.subscription(s),
            "resourceGroup": resource_group(rg),
            "identityType": identity_type,
            "principalId": principal,
            "userAssignedIdentities": if uamis.is_empty() { Value::Null } else { Value::Object(uamis) },
            "oidcIssuerUrl": oidc,
            "deploymentStorage": deployment,
            "deploymentStorageAuthentication": authentication,
        });
        if let Some(kind) = host.kind {
            row["kind"] = Value::from(kind);
        }
        row
    }

    /// Any resource id of the estate (identity resources, then user-assigned identities).
    fn resource_id(&self, n: usize) -> String {
        let hosts = self.system_hosts + self.uami_hosts;
        if n < hosts {
            self.resource_shape(n).0
        } else {
            identity_arm_id(self.seed, 2 * (n - hosts) + 1, self.identities)
        }
    }

    /// A principal for draw `h`: (object id, principal type, identity index for managed
    /// identities). Managed identities 45%, users 25%, groups 8%, applications 21%, deleted
    /// principals 1%.
    fn principal(&self, h: u64) -> (String, &'static str, Option<usize>) {
        let kind = match h % 1000 {
            0..450 if self.identities > 0 => Principal::Identity,
            0..700 => Principal::User,
            700..780 => Principal::Group,
            780..990 => Principal::Application,
            _ => Principal::Deleted,
        };
        self.principal_of(kind, h >> 12)
    }

    fn principal_of(&self, kind: Principal, h: u64) -> (String, &'static str, Option<usize>) {
        let pick = |n: usize| (h % n.max(1) as u64) as usize;
        match kind {
            // Skewed: a few identities hold many assignments.
            Principal::Identity if self.identities > 0 => {
                let u = (h % 1_000_000) as f64 / 1_000_000.0;
                let i = (((u * u) * self.identities as f64) as usize).min(self.identities - 1);
                (
                    identity_object_id(self.seed, i),
                    "ServicePrincipal",
                    Some(i),
                )
            }
            Principal::Identity | Principal::User => (
                format!("{:08x}-0e00-4000-8000-{:012x}", self.seed, pick(self.users)),
                "User",
                None,
            ),
            Principal::Group => (group_id(self.seed, pick(self.groups)), "Group", None),
            Principal::Application => (
                application_sp_id(self.seed, pick(self.applications)),
                "ServicePrincipal",
                None,
            ),
            Principal::Deleted => (
                format!(
                    "{:08x}-dead-4000-8000-{:012x}",
                    self.seed,
                    pick(self.deleted)
                ),
                "ServicePrincipal",
                None,
            ),
        }
    }

    /// A scope for draw `h`: `/` 0.1%, the tenant root group 0.1%, other management groups
    /// 1.3% (fewer in estates so large that this would pass Azure's limit per management
    /// group: those move to a subscription), subscriptions 6.5%, resource groups 42%,
    /// resources 50%. Managed identities mostly work in their own subscription and resource
    /// group.
    fn scope(&self, h: u64, identity: Option<usize>) -> String {
        let kept = (h >> 50) % 1000 < self.above_subscriptions_kept;
        let kind = match h % 1000 {
            0 if kept => Scope::Root,
            1 if kept => Scope::TenantRootGroup,
            2..15 if kept => Scope::ManagementGroup,
            0..80 => Scope::Subscription,
            80..500 => Scope::ResourceGroup,
            _ => Scope::Resource,
        };
        self.scope_of(kind, h >> 10, identity)
    }

    fn scope_of(&self, kind: Scope, h: u64, identity: Option<usize>) -> String {
        let near = identity
            .filter(|_| h % 10 < 6)
            .map(|i| place(i, self.subscriptions));
        let (s, rg) = near.unwrap_or((
            ((h >> 8) % self.subscriptions as u64) as usize,
            ((h >> 24) % RESOURCE_GROUPS as u64) as usize,
        ));
        match kind {
            Scope::Root => "/".to_owned(),
            Scope::TenantRootGroup => format!(
                "/providers/Microsoft.Management/managementGroups/{}",
                self.tenant_id
            ),
            Scope::ManagementGroup => format!(
                "/providers/Microsoft.Management/managementGroups/{}",
                MANAGEMENT_GROUPS[((h >> 4) % MANAGEMENT_GROUPS.len() as u64) as usize].0
            ),
            Scope::Subscription => format!("/subscriptions/{}", self.subscription(s)),
            Scope::ResourceGroup => self.rg_id(s, rg),
            Scope::Resource => {
                let total = self.system_hosts + self.uami_hosts + self.user_assigned;
                if total == 0 {
                    return self.rg_id(s, rg);
                }
                self.resource_id(((h >> 30) % total as u64) as usize)
            }
        }
    }

    fn role_for(&self, h: u64) -> &str {
        let total = self.roles.last().map(|r| r.0).unwrap_or(1);
        let at = (h % u64::from(total)) as u32;
        self.roles
            .iter()
            .find(|(c, _)| at < *c)
            .map(|(_, g)| g.as_str())
            .unwrap_or(BUILTIN_ROLES[0].0)
    }

    fn date(&self, stream_id: u64, index: usize) -> String {
        let day = draw(self.seed, stream_id, index) % 1400;
        let date = time::Date::from_calendar_date(2022, time::Month::January, 1)
            .ok()
            .and_then(|d| d.checked_add(time::Duration::days(day as i64)));
        match date {
            Some(d) => format!("{d}T09:00:00Z"),
            None => "2022-01-01T09:00:00Z".to_owned(),
        }
    }

    /// Role definition id as an assignment at `scope` names it.
    fn definition_id(scope: &str, role: &str) -> String {
        match scope.strip_prefix("/subscriptions/") {
            Some(rest) => {
                let sub = rest.split('/').next().unwrap_or_default();
                format!(
                    "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
                )
            }
            None => format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        }
    }

    fn role_assignment(&self, index: usize) -> Value {
        let (principal, principal_type, identity) =
            self.principal(draw(self.seed, stream::PRINCIPAL, index));
        let scope = self.scope(draw(self.seed, stream::SCOPE, index), identity);
        let role = self
            .role_for(draw(self.seed, stream::ROLE, index))
            .to_owned();
        let storage_role = role == "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
        let condition = if storage_role && draw(self.seed, stream::EXTRA, index).is_multiple_of(20)
        {
            "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'exports'))"
        } else {
            ""
        };
        let separator = if scope == "/" { "" } else { "/" };
        json!({
            "id": format!(
                "{}{separator}providers/Microsoft.Authorization/roleAssignments/{}",
                scope.trim_end_matches('/'),
                guid(self.seed, stream::ASSIGNMENT, index)
            ),
            "scope": scope,
            "principalId": principal,
            "principalType": principal_type,
            "roleDefinitionId": Self::definition_id(&scope, &role),
            "condition": condition,
            "createdOn": self.date(stream::DATE, index),
        })
    }

    /// Subscriptions, definitions, deployment storage accounts, the scanner's Reader,
    /// eligibilities and federated credentials.
    fn stored_rows(&self, scanner_object_id: &str) -> EstateRows {
        let mut rows = EstateRows::default();
        if self.size.is_none() {
            return rows;
        }
        let chain = |leaf: &str| -> Vec<Value> {
            let mut out = Vec::new();
            let mut at = Some(leaf);
            while let Some(name) = at {
                let Some((n, display, parent)) =
                    MANAGEMENT_GROUPS.iter().find(|(n, ..)| *n == name)
                else {
                    break;
                };
                out.push(json!({"name": n, "displayName": display}));
                at = *parent;
            }
            out.push(json!({"name": self.tenant_id, "displayName": "Tenant Root Group"}));
            out
        };
        for s in 0..self.subscriptions {
            let sub = self.subscription(s);
            let state = if s % 50 == 49 { "Disabled" } else { "Enabled" };
            rows.subscriptions.push(json!({
                "id": format!("/subscriptions/{sub}"),
                "subscriptionId": sub,
                "name": format!("sub-estate-{s:03}"),
                "state": state,
                "managementGroupAncestorsChain": chain(LEAVES[s % LEAVES.len()]),
            }));
        }
        let permission = |actions: &[&str], not: &[&str], data: &[&str], not_data: &[&str]| json!([{"actions": actions, "notActions": not, "dataActions": data, "notDataActions": not_data}]);
        for (id, name, _, actions, not, data) in BUILTIN_ROLES {
            rows.role_definitions.push(json!({
                "id": format!("/providers/Microsoft.Authorization/roleDefinitions/{id}"),
                "roleName": name,
                "roleType": "BuiltInRole",
                "permissions": permission(actions, not, data, &[]),
                "assignableScopes": ["/"],
            }));
        }
        let mg_scope = "/providers/Microsoft.Management/managementGroups/mg-estate";
        for (c, (name, actions, not, data, not_data)) in CUSTOM_ROLES.iter().enumerate() {
            rows.role_definitions.push(json!({
                "id": format!("{mg_scope}/providers/Microsoft.Authorization/roleDefinitions/{}", guid(self.seed, stream::ROLE, c)),
                "roleName": name,
                "roleType": "CustomRole",
                "permissions": permission(actions, not, data, not_data),
                "assignableScopes": [mg_scope],
            }));
        }
        // The accounts the function apps' deployment storage names, once each.
        let mut accounts = std::collections::BTreeSet::new();
        for index in 0..self.system_hosts + self.uami_hosts {
            let (_, _, kind, s, rg) = self.resource_shape(index);
            if HOSTS[kind].function_app {
                accounts.insert((s, rg));
            }
        }
        for (s, rg) in accounts {
            let name = self.storage_account_name(s, rg);
            rows.storage_accounts.push(json!({
                "id": format!("{}/providers/Microsoft.Storage/storageAccounts/{name}", self.rg_id(s, rg)),
                "name": name,
                "subscriptionId": self.subscription(s),
                "resourceGroup": resource_group(rg),
                "blobEndpoint": format!("https://{name}.blob.core.windows.net/"),
            }));
        }
        rows.role_assignments.push(json!({
            "id": format!("/providers/Microsoft.Management/managementGroups/{}/providers/Microsoft.Authorization/roleAssignments/{}", self.tenant_id, guid(self.seed, stream::ASSIGNMENT, usize::MAX)),
            "scope": format!("/providers/Microsoft.Management/managementGroups/{}", self.tenant_id),
            "principalId": scanner_object_id,
            "principalType": "ServicePrincipal",
            "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{}", BUILTIN_ROLES[0].0),
            "condition": "",
            "createdOn": "2025-01-01T09:00:00Z",
        }));
        // PIM: one eligibility per hundred assignments, mostly users and groups.
        for e in 0..self.role_assignments / 100 {
            let h = draw(self.seed, stream::ELIGIBLE, e);
            let kind = match h % 10 {
                0..6 => Principal::User,
                6..9 => Principal::Group,
                _ => Principal::Identity,
            };
            let (principal, principal_type, identity) = self.principal_of(kind, h >> 8);
            let scope_kind = match (h >> 4) % 10 {
                0 => Scope::ManagementGroup,
                1..4 => Scope::Subscription,
                4..9 => Scope::ResourceGroup,
                _ => Scope::Resource,
            };
            let scope = self.scope_of(scope_kind, h >> 20, identity);
            let role = self
                .role_for(draw(self.seed, stream::ROLE, usize::MAX - e))
                .to_owned();
            let name = guid(self.seed, stream::ELIGIBLE, e);
            let separator = if scope == "/" { "" } else { "/" };
            rows.eligibilities.push(json!({
                "id": format!("{}{separator}providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{name}", scope.trim_end_matches('/')),
                "name": name,
                "type": "Microsoft.Authorization/roleEligibilityScheduleInstances",
                "properties": {
                    "scope": scope,
                    "roleDefinitionId": Self::definition_id(&scope, &role),
                    "principalId": principal,
                    "principalType": principal_type,
                    "roleEligibilityScheduleId": format!("{}{separator}providers/Microsoft.Authorization/roleEligibilitySchedules/{}", scope.trim_end_matches('/'), guid(self.seed, stream::GUID, e)),
                    "status": "Provisioned",
                    "memberType": "Direct",
                    "startDateTime": self.date(stream::ELIGIBLE, e),
                    "endDateTime": if e.is_multiple_of(3) { Value::Null } else { Value::from("2027-06-30T00:00:00Z") },
                    "createdOn": self.date(stream::ELIGIBLE, e),
                    "condition": "",
                },
            }));
        }
        // Federated credentials on three user-assigned identities in a hundred: GitHub Actions,
        // and now and then an issuer nobody trusts.
        for k in 0..self.user_assigned {
            let h = draw(self.seed, stream::FIC, k);
            if h % 100 >= 3 {
                continue;
            }
            let i = 2 * k + 1;
            let id = identity_arm_id(self.seed, i, self.identities);
            let mut credentials = vec![json!({
                "id": format!("{id}/federatedIdentityCredentials/github-main"),
                "name": "github-main",
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                "properties": {
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subject": format!("repo:estate/app-{:04}:ref:refs/heads/main", k % 1000),
                    "audiences": ["api://AzureADTokenExchange"],
                },
            })];
            if h % 1000 < 3 {
                credentials.push(json!({
                    "id": format!("{id}/federatedIdentityCredentials/legacy-idp"),
                    "name": "legacy-idp",
                    "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
                    "properties": {
                        "issuer": format!("https://idp-{k}.example.net"),
                        "subject": "system:serviceaccount:default:app",
                        "audiences": ["api://AzureADTokenExchange"],
                    },
                }));
            }
            rows.federated_credentials.insert(id, credentials);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estate(n: usize) -> (Estate, EstateRows) {
        Estate::generate(
            7,
            n,
            "00000007-0000-4000-8000-000000000000",
            "scanner",
            EstateSize::default(),
        )
    }

    #[test]
    fn the_estate_has_the_sizes_asked_for() {
        let (e, rows) = estate(10_000);
        assert_eq!(e.count(queries::ROLE_ASSIGNMENTS), 100_000);
        let resources = e.count(queries::IDENTITY_RESOURCES)
            + e.count(queries::USER_ASSIGNED_IDENTITIES)
            + rows.storage_accounts.len();
        assert!((19_000..22_000).contains(&resources), "{resources}");
        assert_eq!(rows.subscriptions.len(), 40);
        assert_eq!(rows.eligibilities.len(), 1_000);
        assert!(!rows.federated_credentials.is_empty());
        assert!(e.row(queries::ROLE_ASSIGNMENTS, 100_000).is_none());
    }

    #[test]
    fn management_groups_hold_no_more_than_azure_allows() {
        let (e, _) = estate(50_000);
        let mut per_scope = std::collections::HashMap::<String, usize>::new();
        for i in 0..e.count(queries::ROLE_ASSIGNMENTS) {
            let row = e.row(queries::ROLE_ASSIGNMENTS, i).expect("row");
            let scope = row["scope"].as_str().expect("scope");
            if !scope.starts_with("/subscriptions/") {
                *per_scope.entry(scope.to_owned()).or_default() += 1;
            }
        }
        assert_eq!(
            per_scope.len(),
            MANAGEMENT_GROUPS.len() + 2,
            "{per_scope:?}"
        );
        for (scope, n) in &per_scope {
            assert!((100..=500).contains(n), "{scope}: {n} assignments");
        }
    }

    #[test]
    fn rows_are_deterministic_and_cover_every_scope_kind_and_host() {
        let (a, _) = estate(2_000);
        let (b, _) = estate(2_000);
        assert_eq!(a, b);
        let mut kinds = std::collections::BTreeMap::new();
        let mut principals = std::collections::BTreeMap::new();
        for i in 0..a.count(queries::ROLE_ASSIGNMENTS) {
            let row = a.row(queries::ROLE_ASSIGNMENTS, i).expect("row");
            assert_eq!(Some(&row), b.row(queries::ROLE_ASSIGNMENTS, i).as_ref());
            let scope = row["scope"].as_str().expect("scope");
            *kinds
                .entry(crate::resolve::azure::ScopeKind::of(scope))
                .or_insert(0usize) += 1;
            *principals
                .entry(row["principalType"].as_str().expect("type").to_owned())
                .or_insert(0usize) += 1;
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        use crate::resolve::azure::ScopeKind;
        assert!(
            kinds[&ScopeKind::Resource] + kinds[&ScopeKind::ResourceGroup] > 15_000,
            "{kinds:?}"
        );
        assert_eq!(principals.len(), 3, "{principals:?}");
        let types: std::collections::BTreeSet<String> = (0..a.count(queries::IDENTITY_RESOURCES))
            .filter_map(|i| a.row(queries::IDENTITY_RESOURCES, i))
            .filter_map(|r| r["type"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(
            types.len(),
            HOSTS.len() - 1,
            "web and function apps share a type: {types:?}"
        );
    }

    #[test]
    fn identities_exist_where_the_graph_side_says() {
        let (e, _) = estate(1_000);
        for i in (1..1_000).step_by(2) {
            let id = identity_arm_id(7, i, 1_000);
            assert!(e.has_identity(&id.to_ascii_uppercase()), "{id}");
        }
        assert!(!e.has_identity(&identity_arm_id(7, 2, 1_000)));
        assert!(!e.has_identity(&identity_arm_id(7, 1_001, 1_002)));
        let uami = e.row(queries::USER_ASSIGNED_IDENTITIES, 0).expect("row");
        assert_eq!(uami["id"], identity_arm_id(7, 1, 1_000));
    }
}
