//! The tenant snapshot: everything collection read from Graph, as one serialisable value.
//!
//! Assessment is a pure function of this snapshot (plus the settings recorded in it), so any
//! run can be replayed offline from the `snapshot.json.gz` it wrote. The snapshot holds raw
//! Graph objects and Azure Resource Graph rows (`azure`, see [`azure`]), not
//! conclusions. Data that could not be read is [`Dataset::Unknown`], never an empty list, and
//! every such gap is listed in `gaps`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub mod azure;
pub mod graph;
pub mod ownership;
pub mod suppressions;
pub mod usage;

use azure::AzureSnapshot;
use graph::{
    AppRoleAssignment, DirectoryObject, OAuth2PermissionGrant, ResourceServicePrincipal,
    RoleAssignment, RoleDefinition, ServicePrincipal,
};
pub use ownership::{OwnedObject, Ownership};

/// Version of the snapshot format.
pub const SNAPSHOT_SCHEMA_VERSION: &str = "1.0.0";

/// Data that was either read, or could not be read (and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Dataset<T> {
    /// Read completely.
    Collected {
        /// The data.
        items: T,
    },
    /// Not read; the assessment must not treat it as empty.
    Unknown {
        /// Why it could not be read.
        reason: String,
    },
    /// Does not exist in this tenant, as the service said with an error code (e.g. PIM lists
    /// in a tenant without the Entra ID P2 licence answer `AadPremiumLicenseRequired`): the
    /// checks that need it cannot apply, and the run is not partial for it.
    NotApplicable {
        /// Why it does not apply, with the service's answer.
        reason: String,
    },
}

impl<T> Dataset<T> {
    /// The data, when it was collected.
    pub fn known(&self) -> Option<&T> {
        match self {
            Self::Collected { items } => Some(items),
            Self::Unknown { .. } | Self::NotApplicable { .. } => None,
        }
    }

    /// True when the data could not be read.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown { .. })
    }

    /// True when the data does not exist in this tenant ([`Self::NotApplicable`]).
    pub fn is_not_applicable(&self) -> bool {
        matches!(self, Self::NotApplicable { .. })
    }
}

impl<T: Default> Default for Dataset<T> {
    fn default() -> Self {
        Self::Collected {
            items: T::default(),
        }
    }
}

/// The least-privileged Graph permission that reads groups in full (`isAssignableToRole`,
/// `securityEnabled`); without it Graph returns them with limited information.
pub const GROUP_READ_PERMISSION: &str = "GroupMember.Read.All";

/// The Azure RBAC permission the Azure plane needs.
pub const AZURE_PERMISSION: &str = "Reader (Azure RBAC) at management-group scope";

/// A data set collection reads (or a resolved view of one), by its wire name, with the
/// permission whose absence explains a 401 or 403 on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DatasetName {
    /// Application service principals that hold credentials.
    ApplicationServicePrincipals,
    /// Application registrations and their credentials.
    Applications,
    /// Directory role definitions.
    RoleDefinitions,
    /// Active directory role assignments.
    RoleAssignments,
    /// PIM eligibility schedules.
    RoleEligibilitySchedules,
    /// PIM active assignment schedules.
    RoleAssignmentSchedules,
    /// Delegated permission grants.
    DelegatedGrants,
    /// A principal's app role assignments (application permissions).
    AppRoleAssignments,
    /// A principal's transitive memberships.
    Memberships,
    /// The `appRoles` of the resources that assignments name.
    ResourceAppRoles,
    /// The existence check of role-assignment principals (`getByIds`).
    DirectoryObjects,
    /// A principal's directory roles, resolved from role assignments and schedules.
    DirectoryRoles,
    /// The Azure plane as a whole.
    Azure,
    /// Readable subscriptions (Resource Graph).
    AzureSubscriptions,
    /// Azure RBAC role assignments (Resource Graph); also a principal's resolved Azure roles.
    AzureRoleAssignments,
    /// Azure role definitions (Resource Graph).
    AzureRoleDefinitions,
    /// User-assigned identity resources (Resource Graph).
    UserAssignedIdentities,
    /// Resources with an `identity` block (Resource Graph).
    IdentityResources,
    /// The federated identity credentials of user-assigned identities.
    FederatedIdentityCredentials,
    /// Owners of applications and service principals (`owners`, expanded on their lists or
    /// read per object).
    Ownership,
    /// Owners of groups (`groups?$expand=owners`, or `/groups/{id}/owners`).
    GroupOwnership,
    /// Member counts of groups holding Azure roles (`/groups/{id}/transitiveMembers`).
    GroupMemberCounts,
    /// The storage accounts of function apps' deployment storage (Resource Graph).
    StorageAccounts,
    /// Azure RBAC PIM eligibility (role eligibility schedule instances, per subscription).
    AzureEligibleRoleAssignments,
    /// Managed identities' sign-ins (Log Analytics, `AADManagedIdentitySignInLogs`).
    UsageSignIns,
    /// Graph requests by service principal (Log Analytics, `MicrosoftGraphActivityLogs`).
    UsageGraphActivity,
    /// ARM operations by caller (Log Analytics, `AzureActivity`).
    UsageArmActivity,
}

impl DatasetName {
    /// The wire name, e.g. `roleEligibilitySchedules`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApplicationServicePrincipals => "applicationServicePrincipals",
            Self::Applications => "applications",
            Self::RoleDefinitions => "roleDefinitions",
            Self::RoleAssignments => "roleAssignments",
            Self::RoleEligibilitySchedules => "roleEligibilitySchedules",
            Self::RoleAssignmentSchedules => "roleAssignmentSchedules",
            Self::DelegatedGrants => "delegatedGrants",
            Self::AppRoleAssignments => "appRoleAssignments",
            Self::Memberships => "memberships",
            Self::ResourceAppRoles => "resourceAppRoles",
            Self::DirectoryObjects => "directoryObjects",
            Self::DirectoryRoles => "directoryRoles",
            Self::Azure => "azure",
            Self::AzureSubscriptions => "azureSubscriptions",
            Self::AzureRoleAssignments => "azureRoleAssignments",
            Self::AzureRoleDefinitions => "azureRoleDefinitions",
            Self::UserAssignedIdentities => "userAssignedIdentities",
            Self::IdentityResources => "identityResources",
            Self::FederatedIdentityCredentials => "federatedIdentityCredentials",
            Self::Ownership => "ownership",
            Self::GroupOwnership => "groupOwnership",
            Self::GroupMemberCounts => "groupMemberCounts",
            Self::StorageAccounts => "storageAccounts",
            Self::AzureEligibleRoleAssignments => "azureEligibleRoleAssignments",
            Self::UsageSignIns => "usageSignIns",
            Self::UsageGraphActivity => "usageGraphActivity",
            Self::UsageArmActivity => "usageArmActivity",
        }
    }

    /// The permission that reads it.
    pub fn permission(self) -> &'static str {
        match self {
            Self::DelegatedGrants | Self::DirectoryObjects => "Directory.Read.All",
            Self::RoleDefinitions
            | Self::RoleAssignments
            | Self::RoleEligibilitySchedules
            | Self::RoleAssignmentSchedules
            | Self::DirectoryRoles => "RoleManagement.Read.Directory",
            Self::GroupOwnership | Self::GroupMemberCounts => GROUP_READ_PERMISSION,
            // A service principal's transitiveMemberOf needs only Application.Read.All; reading
            // the groups in it in full needs GROUP_READ_PERMISSION as well.
            Self::Memberships
            | Self::ApplicationServicePrincipals
            | Self::Applications
            | Self::AppRoleAssignments
            | Self::ResourceAppRoles
            | Self::Ownership => "Application.Read.All",
            Self::Azure
            | Self::AzureSubscriptions
            | Self::AzureRoleAssignments
            | Self::AzureRoleDefinitions
            | Self::UserAssignedIdentities
            | Self::IdentityResources
            | Self::FederatedIdentityCredentials
            | Self::StorageAccounts
            | Self::AzureEligibleRoleAssignments => AZURE_PERMISSION,
            Self::UsageSignIns | Self::UsageGraphActivity | Self::UsageArmActivity => {
                usage::USAGE_PERMISSION
            }
        }
    }

    /// What the assessment checks with this data set: what cannot apply when it does not
    /// exist in the tenant ([`Dataset::NotApplicable`]), for the manifest and the report.
    pub fn checks(self) -> &'static str {
        match self {
            Self::RoleEligibilitySchedules => {
                "directory roles eligible through PIM (MI-ROLE-001, MI-GROUP-001, MI-PATH-001, MI-PATH-002)"
            }
            Self::RoleAssignmentSchedules => {
                "time-bound PIM activations of directory roles (MI-ROLE-001)"
            }
            Self::AzureEligibleRoleAssignments => {
                "Azure roles eligible through PIM for Azure resources (MI-AZ-001, MI-PATH-001, MI-PATH-002)"
            }
            Self::ApplicationServicePrincipals | Self::Applications => {
                "service principals that should move to managed identities (SP-CRED-001, SP-CRED-002)"
            }
            Self::RoleDefinitions | Self::RoleAssignments | Self::DirectoryRoles => {
                "directory roles (MI-ROLE-001, MI-PATH-001)"
            }
            Self::DelegatedGrants => "delegated permission grants (MI-GRANT-001)",
            Self::AppRoleAssignments | Self::ResourceAppRoles => {
                "application permissions (MI-GRAPH-001, MI-GRAPH-002, MI-PATH-001)"
            }
            Self::Memberships => "group memberships (MI-GROUP-001, MI-ROLE-001, MI-PATH-001)",
            Self::DirectoryObjects => "orphaned Azure role assignments (MI-ORPH-003)",
            Self::Ownership | Self::GroupOwnership => {
                "owners who can take an identity over (MI-OWN-001, MI-PATH-002)"
            }
            Self::GroupMemberCounts => "how many principals a group passes an Azure role to",
            Self::Azure
            | Self::AzureSubscriptions
            | Self::AzureRoleAssignments
            | Self::AzureRoleDefinitions
            | Self::UserAssignedIdentities
            | Self::IdentityResources
            | Self::StorageAccounts => "the Azure plane (MI-AZ-*, MI-ORPH-*, MI-PATH-002)",
            Self::FederatedIdentityCredentials => "federated identity credentials (MI-FIC-*)",
            Self::UsageSignIns => "dormant privileged identities (MI-USE-004)",
            Self::UsageGraphActivity => {
                "unused and broader-than-needed Graph permissions (MI-USE-001, MI-USE-002)"
            }
            Self::UsageArmActivity => "Azure roles broader than their use (MI-USE-003)",
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DatasetName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One thing collection could not see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionGap {
    /// The data set, e.g. `roleEligibilitySchedules` or `appRoleAssignments`.
    pub dataset: DatasetName,
    /// How many principals it affects (for per-principal data), or 0 for tenant-wide data.
    pub principals: usize,
    /// The HTTP status Graph answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong.
    pub reason: String,
    /// The permission that would close the gap, when it is a permission problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_permission: Option<String>,
    /// Whether the gap makes the run `partial`. False only for data the configuration says may
    /// be missing: the Azure plane when `MI_ASSESS_AZURE_PLANE` is `optional` (no ARM access) or
    /// `off`.
    #[serde(default = "affects_status_default")]
    pub affects_status: bool,
    /// True when the data does not exist in this tenant (a licence the tenant lacks, detected
    /// from the service's error code): the checks it feeds cannot apply
    /// ([`DatasetName::checks`]); never affects the status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_applicable: bool,
}

fn affects_status_default() -> bool {
    true
}

pub use crate::config::{DEFAULT_MAX_CERTIFICATE_DAYS, DEFAULT_MAX_SECRET_DAYS};

fn default_max_secret_days() -> u32 {
    DEFAULT_MAX_SECRET_DAYS
}

fn default_suppression_max_days() -> u32 {
    crate::config::DEFAULT_SUPPRESSION_MAX_DAYS
}

fn default_max_certificate_days() -> u32 {
    DEFAULT_MAX_CERTIFICATE_DAYS
}

/// Inputs besides Graph data that change the assessment; recorded so replays match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentSettings {
    /// Group object ids the customer declares privileged (`MI_ASSESS_PRIVILEGED_GROUPS`).
    #[serde(default)]
    pub privileged_group_ids: Vec<String>,
    /// Accepted risks read from `suppressions.json` at the start of the run.
    #[serde(default)]
    pub suppressions: Vec<suppressions::Suppression>,
    /// Entries of `suppressions.json` that were not applied, with the problem of each: the run
    /// applies the others and reports these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_suppressions: Vec<suppressions::RejectedSuppression>,
    /// Trusted federated-credential issuers (`MI_ASSESS_FIC_ALLOWED_ISSUERS`, or its defaults;
    /// empty: the defaults). The OIDC issuers of AKS clusters in the snapshot are added to it.
    #[serde(default)]
    pub fic_allowed_issuers: Vec<String>,
    /// Longest client-secret validity, in days, before SP-CRED-002 calls it long-lived
    /// (`MI_ASSESS_MAX_SECRET_DAYS`; snapshots written before it existed read the default).
    #[serde(default = "default_max_secret_days")]
    pub max_secret_days: u32,
    /// Longest certificate validity, in days (`MI_ASSESS_MAX_CERTIFICATE_DAYS`).
    #[serde(default = "default_max_certificate_days")]
    pub max_certificate_days: u32,
    /// Longest acceptance in `suppressions.json`, in days from the run
    /// (`MI_ASSESS_SUPPRESSION_MAX_DAYS`): later expiries were rejected.
    #[serde(default = "default_suppression_max_days")]
    pub suppression_max_days: u32,
}

impl Default for AssessmentSettings {
    fn default() -> Self {
        Self {
            privileged_group_ids: Vec::new(),
            suppressions: Vec::new(),
            rejected_suppressions: Vec::new(),
            fic_allowed_issuers: Vec::new(),
            max_secret_days: DEFAULT_MAX_SECRET_DAYS,
            max_certificate_days: DEFAULT_MAX_CERTIFICATE_DAYS,
            suppression_max_days: default_suppression_max_days(),
        }
    }
}

/// Per-principal data (managed identities and credential-bearing service principals).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalData {
    /// App roles granted to the principal (application permissions), on every resource.
    pub app_role_assignments: Dataset<Vec<AppRoleAssignment>>,
    /// Transitive memberships: groups, directory roles, administrative units.
    pub memberships: Dataset<Vec<DirectoryObject>>,
}

/// Everything collected about one tenant in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSnapshot {
    /// Format version of this document.
    pub schema_version: String,
    /// The tenant that was scanned.
    pub tenant_id: String,
    /// When collection finished.
    #[serde(with = "time::serde::rfc3339")]
    pub collected_at: OffsetDateTime,
    /// The Graph endpoint that was read (remediation commands use it).
    pub graph_endpoint: String,
    /// The scanner's own identity, from its token.
    pub scanner: ScannerIdentity,
    /// Settings that change the assessment.
    #[serde(default)]
    pub settings: AssessmentSettings,
    /// Every service principal with `servicePrincipalType eq 'ManagedIdentity'`.
    pub managed_identities: Vec<ServicePrincipal>,
    /// Application service principals owned by this tenant that hold credentials (on the service
    /// principal or on its application).
    #[serde(default)]
    pub credential_service_principals: Dataset<Vec<CredentialServicePrincipal>>,
    /// Per-principal data, keyed by object id.
    #[serde(default)]
    pub principals: BTreeMap<String, PrincipalData>,
    /// Resource service principals referenced by app role assignments, with their app roles.
    #[serde(default)]
    pub resources: Vec<ResourceServicePrincipal>,
    /// Directory role definitions.
    #[serde(default)]
    pub role_definitions: Dataset<Vec<RoleDefinition>>,
    /// Active directory role assignments (all principals; groups included).
    #[serde(default)]
    pub role_assignments: Dataset<Vec<RoleAssignment>>,
    /// PIM eligibility schedules.
    #[serde(default)]
    pub role_eligibility_schedules: Dataset<Vec<RoleAssignment>>,
    /// PIM active assignment schedules.
    #[serde(default)]
    pub role_assignment_schedules: Dataset<Vec<RoleAssignment>>,
    /// Delegated permission grants whose client is one of the collected principals.
    #[serde(default)]
    pub delegated_grants: Dataset<Vec<OAuth2PermissionGrant>>,
    /// Who owns which application, service principal and group (every owned object with at
    /// least one owner); unknown when it could not be read completely, and in snapshots written
    /// before it existed, never "nobody owns anything".
    #[serde(default = "ownership::not_recorded")]
    pub ownership: Dataset<Ownership>,
    /// The Azure plane (Azure RBAC, user-assigned identities, federated credentials); unknown
    /// when ARM was off or not readable, and in snapshots written before it existed.
    #[serde(default = "azure::not_recorded")]
    pub azure: Dataset<AzureSnapshot>,
    /// What the identities were seen using (Log Analytics), when the usage plane is configured;
    /// absent otherwise, and in snapshots written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<usage::UsageSnapshot>,
    /// What could not be collected.
    #[serde(default)]
    pub gaps: Vec<CollectionGap>,
}

/// Whether the tenant has PIM, as an identity record shows it (`pim: {licensed: false}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PimLicence {
    /// False when a PIM list answered that the tenant lacks the Entra ID P2 (or Governance)
    /// licence: no role can be eligible, and the PIM checks do not apply.
    pub licensed: bool,
}

impl TenantSnapshot {
    /// Whether the tenant has PIM: unlicensed when any PIM list (directory schedules, Azure
    /// eligibility) said so by its error code; licensed when the directory schedules were
    /// read; `None` when neither is known.
    pub fn pim_licence(&self) -> Option<PimLicence> {
        let azure_eligibility = self.azure.known().map(|a| &a.eligible_role_assignments);
        let unlicensed = self.role_eligibility_schedules.is_not_applicable()
            || self.role_assignment_schedules.is_not_applicable()
            || azure_eligibility.is_some_and(Dataset::is_not_applicable);
        if unlicensed {
            return Some(PimLicence { licensed: false });
        }
        let read = self.role_eligibility_schedules.known().is_some()
            || azure_eligibility.is_some_and(|d| d.known().is_some());
        read.then_some(PimLicence { licensed: true })
    }
}

/// A credential-bearing application service principal and where its credentials live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialServicePrincipal {
    /// The service principal (its own `passwordCredentials`/`keyCredentials` are credentials
    /// added to the service principal object).
    pub service_principal: ServicePrincipal,
    /// Object id of the backing application registration, when it is in this tenant.
    #[serde(default)]
    pub application_id: Option<String>,
    /// Secrets on the application registration.
    #[serde(default)]
    pub application_password_credentials: Vec<graph::Credential>,
    /// Certificates on the application registration.
    #[serde(default)]
    pub application_key_credentials: Vec<graph::Credential>,
}

/// Who ran the scan, as its own token describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScannerIdentity {
    /// Object id (`oid`).
    pub object_id: Option<String>,
    /// Application id (`appid`).
    pub app_id: Option<String>,
    /// Graph application permissions in the token (`roles`).
    #[serde(default)]
    pub roles: Vec<String>,
}
