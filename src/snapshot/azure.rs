//! The Azure plane as the snapshot stores it: the rows of the Resource Graph queries
//! (`crate::arm::queries`), the federated identity credentials of every user-assigned identity
//! (or why they could not be listed), and which role-assignment principals still exist in Entra.
//! It is `TenantSnapshot::azure`, a [`Dataset`]: unknown when ARM was off or not readable.
//!
//! Every row field has a serde default, so a missing column or property reads as empty rather
//! than failing the whole page; unknown fields are ignored. Raw rows, not conclusions, so a run
//! can be replayed offline. Data only: what the rows mean lives in `crate::resolve::azure`.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::Dataset;
use super::graph::DirectoryObject;

/// Everything collected about the Azure plane in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureSnapshot {
    /// The ARM endpoint that was read (remediation commands target this cloud).
    pub arm_endpoint: String,
    /// Subscriptions the scanner could read.
    pub subscriptions: Vec<SubscriptionRow>,
    /// Azure RBAC role assignments.
    pub role_assignments: Vec<RoleAssignmentRow>,
    /// Role definitions, built-in and custom.
    pub role_definitions: Vec<RoleDefinitionRow>,
    /// User-assigned identity resources.
    pub user_assigned_identities: Vec<UserAssignedIdentityRow>,
    /// Resources with an `identity` block, and AKS clusters.
    pub identity_resources: Vec<IdentityResourceRow>,
    /// The storage accounts that function apps' Flex Consumption deployment storage names
    /// (rows of `crate::arm::queries::STORAGE_ACCOUNTS`); unknown when the query failed, and in
    /// snapshots written before they were collected.
    #[serde(default = "storage_accounts_not_recorded")]
    pub storage_accounts: Dataset<Vec<StorageAccountRow>>,
    /// Azure RBAC PIM eligibility (role eligibility schedule instances), per readable
    /// subscription; unknown when not readable, when the tenant has no PIM licence, and in
    /// snapshots written before it was collected.
    #[serde(default = "eligible_not_recorded")]
    pub eligible_role_assignments: Dataset<Vec<EligibleRoleAssignmentRow>>,
    /// The federated credentials of each user-assigned identity.
    pub federated_credentials: Vec<IdentityFederatedCredentials>,
    /// The storage accounts inside the tenant that federated credentials' Blob-hosted issuers
    /// name (`crate::arm::queries::issuer_storage_accounts`); a named account missing here is
    /// outside the tenant or unclaimed. Unknown when the query failed, and in snapshots
    /// written before it was collected.
    #[serde(default = "issuer_storage_accounts_not_recorded")]
    pub issuer_storage_accounts: Dataset<Vec<StorageAccountRow>>,
    /// Which role-assignment principals still exist in Entra (for orphaned assignments).
    pub principal_lookup: Dataset<PrincipalLookup>,
}

/// The data set when the Azure plane was not read.
pub fn not_collected(reason: impl Into<String>) -> Dataset<AzureSnapshot> {
    Dataset::Unknown {
        reason: reason.into(),
    }
}

/// Serde default of `TenantSnapshot::azure`: snapshots written before the Azure plane existed.
pub fn not_recorded() -> Dataset<AzureSnapshot> {
    not_collected("this snapshot carries no Azure-plane data")
}

/// Serde default of [`AzureSnapshot::storage_accounts`]: snapshots written before deployment
/// storage accounts were collected.
pub fn storage_accounts_not_recorded() -> Dataset<Vec<StorageAccountRow>> {
    Dataset::Unknown {
        reason: "this snapshot carries no deployment storage accounts".into(),
    }
}

/// Serde default of [`AzureSnapshot::issuer_storage_accounts`]: snapshots written before the
/// issuers' storage accounts were resolved.
pub fn issuer_storage_accounts_not_recorded() -> Dataset<Vec<StorageAccountRow>> {
    Dataset::Unknown {
        reason: "this snapshot carries no storage accounts of federated-credential issuers".into(),
    }
}

/// The storage account name of a federated-credential issuer hosted on Azure Blob Storage or
/// a static website (`{account}.blob.core.windows.net`, `{account}.z6.web.core.windows.net`),
/// when its first label is a valid account name.
pub fn issuer_storage_account(issuer: &str) -> Option<String> {
    let url = url::Url::parse(issuer.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    if !(host.ends_with(".blob.core.windows.net") || host.ends_with(".web.core.windows.net")) {
        return None;
    }
    let first = host.split('.').next()?;
    let name = first.strip_suffix("-secondary").unwrap_or(first);
    let valid = (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    valid.then(|| name.to_owned())
}

/// Serde default of [`AzureSnapshot::eligible_role_assignments`]: snapshots written before
/// PIM eligibility was collected.
pub fn eligible_not_recorded() -> Dataset<Vec<EligibleRoleAssignmentRow>> {
    Dataset::Unknown {
        reason: "this snapshot carries no Azure PIM eligibility data".into(),
    }
}

/// The federated credentials of one user-assigned identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityFederatedCredentials {
    /// Resource id of the user-assigned identity.
    pub identity_id: String,
    /// What listing them gave.
    pub result: FederatedCredentialsResult,
}

/// What listing one identity's federated credentials gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "status",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum FederatedCredentialsResult {
    /// Listed completely (possibly none).
    Listed {
        /// The credentials.
        credentials: Vec<FederatedCredential>,
    },
    /// ARM answered 404 (the identity is gone) or 405 (federated credentials are not supported
    /// for it): there are none to assess.
    Unavailable {
        /// 404 or 405.
        http_status: u16,
        /// ARM's explanation.
        reason: String,
    },
    /// Could not be listed; unknown, never treated as none.
    Failed {
        /// The HTTP status, when there was one.
        http_status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
}

impl Default for FederatedCredentialsResult {
    fn default() -> Self {
        Self::Listed {
            credentials: Vec::new(),
        }
    }
}

impl FederatedCredentialsResult {
    /// The credentials, when known (`Unavailable` means none).
    pub fn known(&self) -> Option<&[FederatedCredential]> {
        match self {
            Self::Listed { credentials } => Some(credentials),
            Self::Unavailable { .. } => Some(&[]),
            Self::Failed { .. } => None,
        }
    }
}

/// The principals of Azure role assignments as Entra knows them
/// (`POST /directoryObjects/getByIds`): which still exist, and what each one is (a user, member
/// or guest; a group; a service principal, managed identity or not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrincipalLookup {
    /// Principal ids that were checked for existence: those of role assignments to a service
    /// principal (or an unknown principal type) that collection did not already know. One
    /// missing from `found` is deleted (MI-ORPH-003).
    pub checked: Vec<String>,
    /// The directory objects Graph returned for `checked` and `resolved` (`@odata.type`, `id`,
    /// `displayName`, and `userType`, `appId`, `servicePrincipalType`, `isAssignableToRole`,
    /// `securityEnabled` as the type has them).
    pub found: Vec<DirectoryObject>,
    /// The other principal ids of role assignments that were looked up for their name and type:
    /// users, groups, foreign groups and devices. One missing from `found` stays unknown (a
    /// foreign group lives in another tenant); only `checked` ids are ever called deleted.
    /// Empty in snapshots written before it existed.
    pub resolved: Vec<String>,
    /// Transitive member counts (`/groups/{id}/transitiveMembers?$count=true`) of the groups
    /// that hold Azure roles, by lower-case group id; a group missing here was not counted.
    pub group_member_counts: BTreeMap<String, u64>,
}

impl PrincipalLookup {
    /// The ids (lower case) that were looked up and that Graph did not return: one pass over
    /// both lists, for callers that ask about many ids ([`Self::is_deleted`] scans them).
    pub fn deleted_ids(&self) -> HashSet<String> {
        let found: HashSet<String> = self
            .found
            .iter()
            .map(|f| f.id.to_ascii_lowercase())
            .collect();
        self.checked
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .filter(|c| !found.contains(c))
            .collect()
    }

    /// True when `id` was looked up and Graph did not return it (a linear scan: use
    /// [`Self::deleted_ids`] for many ids).
    pub fn is_deleted(&self, id: &str) -> bool {
        self.checked.iter().any(|c| c.eq_ignore_ascii_case(id))
            && !self.found.iter().any(|f| f.id.eq_ignore_ascii_case(id))
    }

    /// The directory object Graph returned for `id`, when it was looked up and found.
    pub fn object(&self, id: &str) -> Option<&DirectoryObject> {
        self.found.iter().find(|f| f.id.eq_ignore_ascii_case(id))
    }

    /// The transitive member count of a group that holds Azure roles, when it was counted.
    pub fn member_count(&self, group_id: &str) -> Option<u64> {
        self.group_member_counts
            .get(&group_id.to_ascii_lowercase())
            .copied()
    }
}

/// A management group in a subscription's ancestor chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagementGroupRef {
    /// Management group name (its id segment).
    pub name: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// A row of [`super::queries::SUBSCRIPTIONS`]: a subscription the scanner can read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionRow {
    /// `/subscriptions/{id}`.
    pub id: String,
    /// Subscription GUID.
    pub subscription_id: String,
    /// Display name.
    pub name: Option<String>,
    /// `Enabled`, `Disabled`, `Warned`, …
    pub state: Option<String>,
    /// Management groups from the direct parent up to the tenant root group.
    pub management_group_ancestors_chain: Vec<ManagementGroupRef>,
    /// The tenant the subscription belongs to. Another tenant's: a subscription delegated to
    /// this one through Azure Lighthouse (a tenant-scope Resource Graph query returns those
    /// too). `None` in snapshots written before it was read.
    pub tenant_id: Option<String>,
    /// The tenants that manage it through Azure Lighthouse (`properties.managedByTenants`);
    /// empty when none.
    pub managed_by_tenants: Vec<ManagedByTenant>,
}

/// A tenant that manages a subscription through Azure Lighthouse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedByTenant {
    /// The managing tenant's id.
    pub tenant_id: String,
}

impl SubscriptionRow {
    /// True when the subscription belongs to another tenant than `home_tenant` (delegated to
    /// it through Azure Lighthouse).
    pub fn is_delegated_to(&self, home_tenant: &str) -> bool {
        self.tenant_id
            .as_deref()
            .is_some_and(|t| !t.trim().is_empty() && !t.trim().eq_ignore_ascii_case(home_tenant))
    }

    /// The other tenants involved: the owning tenant of a delegated subscription, and the
    /// tenants that manage it, never `home_tenant` itself.
    pub fn other_tenants(&self, home_tenant: &str) -> Vec<String> {
        let owner = self
            .is_delegated_to(home_tenant)
            .then(|| self.tenant_id.clone())
            .flatten();
        let mut out: Vec<String> = owner
            .into_iter()
            .chain(self.managed_by_tenants.iter().map(|m| m.tenant_id.clone()))
            .filter(|t| !t.trim().eq_ignore_ascii_case(home_tenant))
            .collect();
        out.dedup();
        out
    }
}

/// The subscription GUID (lower case) of an Azure scope under `/subscriptions/{id}`.
pub fn subscription_of_scope(scope: &str) -> Option<String> {
    let mut parts = scope.trim_start_matches('/').split('/');
    (parts.next()?.eq_ignore_ascii_case("subscriptions"))
        .then(|| parts.next())
        .flatten()
        .filter(|id| !id.is_empty())
        .map(str::to_ascii_lowercase)
}

impl AzureSnapshot {
    /// The subscriptions (lower-case GUIDs) another tenant delegated to `home_tenant`
    /// ([`SubscriptionRow::is_delegated_to`]): their role assignments name that tenant's
    /// principals.
    pub fn delegated_subscriptions(&self, home_tenant: &str) -> HashSet<String> {
        self.subscriptions
            .iter()
            .filter(|s| s.is_delegated_to(home_tenant))
            .map(|s| s.subscription_id.trim().to_ascii_lowercase())
            .collect()
    }

    /// True when the resource or scope sits in a subscription delegated to `home_tenant`.
    pub fn in_delegated_subscription(&self, id: &str, delegated: &HashSet<String>) -> bool {
        subscription_of_scope(id).is_some_and(|s| delegated.contains(&s))
    }

    /// The principals (lower-case ids) of role assignments that live in another tenant:
    /// `ForeignGroup`s (such as a CSP partner's admin agents), and the principals of
    /// assignments in a subscription delegated to this tenant that the principal lookup did
    /// not find here. They are `foreign`, never deleted. A principal the lookup found is
    /// this tenant's; with the lookup unknown, only the delegated subscriptions' principals
    /// count (nothing is called deleted then anyway).
    pub fn foreign_principals(&self, home_tenant: &str) -> HashSet<String> {
        let delegated = self.delegated_subscriptions(home_tenant);
        let found: HashSet<String> = self
            .principal_lookup
            .known()
            .into_iter()
            .flat_map(|l| &l.found)
            .map(|o| o.id.to_ascii_lowercase())
            .collect();
        self.role_assignments
            .iter()
            .filter(|a| {
                let id = a.principal_id.to_ascii_lowercase();
                a.principal_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("ForeignGroup"))
                    || (self.in_delegated_subscription(&a.scope, &delegated)
                        && !found.contains(&id))
            })
            .map(|a| a.principal_id.to_ascii_lowercase())
            .collect()
    }

    /// The principals that were looked up, not found, and are not `foreign` (what
    /// [`Self::foreign_principals`] gave): the only ones ever called deleted (MI-ORPH-003).
    pub fn deleted_principals(&self, foreign: &HashSet<String>) -> HashSet<String> {
        let Some(lookup) = self.principal_lookup.known() else {
            return HashSet::new();
        };
        let mut deleted = lookup.deleted_ids();
        deleted.retain(|id| !foreign.contains(id));
        deleted
    }
}

/// A row of [`super::queries::ROLE_ASSIGNMENTS`]: an Azure RBAC role assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleAssignmentRow {
    /// Assignment resource id (what `az role assignment delete --ids` takes).
    pub id: String,
    /// Scope: `/`, a management group, a subscription, a resource group or a resource.
    pub scope: String,
    /// Object id of the principal.
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal`, `ForeignGroup`, `Device` or `Unknown`.
    pub principal_type: Option<String>,
    /// Full role definition id; its last segment is the GUID.
    pub role_definition_id: String,
    /// ABAC condition, when the assignment has one (empty strings read as none).
    pub condition: Option<String>,
    /// When it was created.
    pub created_on: Option<String>,
}

/// One permission block of a role definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RolePermission {
    /// Control-plane actions (wildcards allowed).
    pub actions: Vec<String>,
    /// Control-plane actions excluded from `actions`.
    pub not_actions: Vec<String>,
    /// Data-plane actions.
    pub data_actions: Vec<String>,
    /// Data-plane actions excluded from `dataActions`.
    pub not_data_actions: Vec<String>,
}

/// A row of [`super::queries::ROLE_DEFINITIONS`]: an Azure role definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleDefinitionRow {
    /// Definition resource id; its last segment is the GUID.
    pub id: String,
    /// Role name, e.g. `Owner`.
    pub role_name: Option<String>,
    /// `BuiltInRole` or `CustomRole`.
    pub role_type: Option<String>,
    /// What the role allows.
    pub permissions: Vec<RolePermission>,
    /// Where it can be assigned.
    pub assignable_scopes: Vec<String>,
}

/// A row of [`super::queries::USER_ASSIGNED_IDENTITIES`]: a user-assigned identity resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserAssignedIdentityRow {
    /// Resource id.
    pub id: String,
    /// Resource name.
    pub name: String,
    /// Subscription GUID.
    pub subscription_id: Option<String>,
    /// Resource group.
    pub resource_group: Option<String>,
    /// Region.
    pub location: Option<String>,
    /// Resource tags.
    pub tags: Option<BTreeMap<String, serde_json::Value>>,
    /// Object id of its service principal.
    pub principal_id: Option<String>,
    /// Application (client) id of its service principal.
    pub client_id: Option<String>,
}

/// A row of [`super::queries::IDENTITY_RESOURCES`]: a resource with an `identity` block (or an
/// AKS cluster, whose OIDC issuer is needed even without one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityResourceRow {
    /// Resource id.
    pub id: String,
    /// Resource name.
    pub name: Option<String>,
    /// Resource type as Resource Graph reports it (lower case).
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    /// Subscription GUID.
    pub subscription_id: Option<String>,
    /// Resource group.
    pub resource_group: Option<String>,
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    pub identity_type: Option<String>,
    /// Object id of the system-assigned identity, when there is one.
    pub principal_id: Option<String>,
    /// `identity.userAssignedIdentities`: keyed by user-assigned identity resource id.
    pub user_assigned_identities: Option<BTreeMap<String, serde_json::Value>>,
    /// `properties.oidcIssuerProfile.issuerURL` of AKS clusters (empty otherwise).
    pub oidc_issuer_url: Option<String>,
    /// `properties.functionAppConfig.deployment.storage.value` of Flex Consumption function
    /// apps: the blob container URL the app runs its package from
    /// (`https://{account}.blob.core.windows.net/{container}`). None for everything else.
    #[serde(
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployment_storage: Option<String>,
    /// `properties.functionAppConfig.deployment.storage.authentication.type`: how the app reads
    /// its deployment container (`SystemAssignedIdentity`, `UserAssignedIdentity` or
    /// `StorageAccountConnectionString`; ARM may report it in lower case).
    #[serde(
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployment_storage_authentication: Option<String>,
}

/// Reads an empty (or all-blank) string as `None`: Resource Graph's `tostring()` of a missing
/// property is `""`.
fn empty_as_none<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value: Option<String> = Option::deserialize(deserializer)?;
    Ok(value.filter(|v| !v.trim().is_empty()))
}

/// A row of `crate::arm::queries::STORAGE_ACCOUNTS`: a storage account that some function app's
/// deployment storage names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageAccountRow {
    /// Resource id.
    pub id: String,
    /// Account name (globally unique in its cloud; the first label of its endpoints).
    pub name: String,
    /// Subscription GUID.
    pub subscription_id: Option<String>,
    /// Resource group.
    pub resource_group: Option<String>,
    /// `properties.primaryEndpoints.blob`, e.g. `https://{name}.blob.core.windows.net/`.
    #[serde(deserialize_with = "empty_as_none")]
    pub blob_endpoint: Option<String>,
}

/// An Azure RBAC PIM eligibility: a role eligibility schedule instance
/// (`GET {scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`, api-version
/// `2020-10-01`), its `properties` flattened. The principal holds nothing until it activates
/// the role, which it can do on its own unless the role's PIM policy asks for approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EligibleRoleAssignmentRow {
    /// Instance resource id (`{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{name}`).
    pub id: String,
    /// Scope: `/`, a management group, a subscription, a resource group or a resource.
    pub scope: String,
    /// Object id of the eligible principal.
    pub principal_id: String,
    /// `User`, `Group`, `ServicePrincipal` or `ForeignGroup`.
    pub principal_type: Option<String>,
    /// Full role definition id; its last segment is the GUID.
    pub role_definition_id: String,
    /// ABAC condition, when the eligibility has one (empty strings read as none).
    #[serde(deserialize_with = "empty_as_none")]
    pub condition: Option<String>,
    /// `Direct`, `Group` or `Inherited`.
    pub member_type: Option<String>,
    /// `Provisioned` for an eligibility in force; other values are requests in flight.
    pub status: Option<String>,
    /// When the eligibility starts.
    pub start_date_time: Option<String>,
    /// When it ends; none for a permanent eligibility.
    pub end_date_time: Option<String>,
    /// The role eligibility schedule this instance belongs to.
    pub role_eligibility_schedule_id: Option<String>,
    /// When it was created.
    pub created_on: Option<String>,
}

impl EligibleRoleAssignmentRow {
    /// True when the eligibility is in force (`status` `Provisioned`, or none reported).
    pub fn is_provisioned(&self) -> bool {
        self.status
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case("Provisioned"))
    }

    /// The assignment the principal would hold once it activates the role: the same id, scope,
    /// principal, role and condition, so [`RoleAssignmentRow`]-based resolution applies to it.
    pub fn as_assignment(&self) -> RoleAssignmentRow {
        RoleAssignmentRow {
            id: self.id.clone(),
            scope: self.scope.clone(),
            principal_id: self.principal_id.clone(),
            principal_type: self.principal_type.clone(),
            role_definition_id: self.role_definition_id.clone(),
            condition: self.condition.clone(),
            created_on: self.created_on.clone(),
        }
    }
}

impl IdentityResourceRow {
    /// The user-assigned identities attached to this resource.
    pub fn attached_identities(&self) -> impl Iterator<Item = &str> {
        self.user_assigned_identities
            .iter()
            .flat_map(|m| m.keys())
            .map(String::as_str)
    }
}

/// A federated identity credential as the snapshot stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FederatedCredential {
    /// Resource id.
    pub id: String,
    /// Credential name (what `az identity federated-credential delete --name` takes).
    pub name: String,
    /// The external token issuer.
    pub issuer: String,
    /// The external subject.
    pub subject: Option<String>,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// The flexible claims-matching expression, when the credential uses one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims_matching_expression: Option<serde_json::Value>,
}
