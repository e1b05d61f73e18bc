//! The Azure plane resolved for assessment: role assignments by principal, role definitions by
//! GUID and what their actions allow, scope containment (management groups through each
//! subscription's ancestor chain), and the tier of each Azure role
//! ([`crate::classification::Classifier::azure_role`] for built-in roles, the role's own
//! actions for custom ones), the deployment storage of Flex Consumption function apps and the
//! storage accounts behind it, and Azure RBAC PIM eligibilities by principal. No I/O here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::ArmResourceId;
use super::principals::{GroupRef, ResolvedGroup};
use crate::classification::{Classifier, Tier};
use crate::snapshot::azure::{
    AzureSnapshot, EligibleRoleAssignmentRow, FederatedCredentialsResult, IdentityResourceRow,
    RoleAssignmentRow, RoleDefinitionRow, StorageAccountRow, SubscriptionRow,
    UserAssignedIdentityRow,
};

/// Owner.
pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
/// Contributor.
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
/// User Access Administrator.
pub const USER_ACCESS_ADMINISTRATOR: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
/// Role Based Access Control Administrator.
pub const RBAC_ADMINISTRATOR: &str = "f58310d9-a9f6-439a-9e8d-f62e7b41a168";
/// Managed Identity Operator (can attach user-assigned identities to resources).
pub const MANAGED_IDENTITY_OPERATOR: &str = "f1a07417-d97a-45cb-824c-7a7467783830";
/// Managed Identity Contributor (can manage user-assigned identities and their credentials).
pub const MANAGED_IDENTITY_CONTRIBUTOR: &str = "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59";

/// The action that creates role assignments (grants access).
pub const ROLE_ASSIGNMENT_WRITE: &str = "Microsoft.Authorization/roleAssignments/write";
/// The action that adds a federated credential to a user-assigned identity.
pub const FEDERATED_CREDENTIAL_WRITE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write";
/// The action that attaches a user-assigned identity to a resource.
pub const IDENTITY_ASSIGN: &str = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";

/// What an Azure RBAC scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScopeKind {
    /// A single resource (or a child resource).
    Resource,
    /// A resource group.
    ResourceGroup,
    /// A subscription.
    Subscription,
    /// A management group (the tenant root group included).
    ManagementGroup,
    /// `/`: the whole tenant.
    Root,
}

impl ScopeKind {
    /// Classifies a role-assignment scope.
    pub fn of(scope: &str) -> Self {
        let segments: Vec<&str> = scope
            .trim()
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let is = |i: usize, name: &str| {
            segments
                .get(i)
                .is_some_and(|s| s.eq_ignore_ascii_case(name))
        };
        match segments.len() {
            0 => Self::Root,
            4 if is(0, "providers")
                && is(1, "Microsoft.Management")
                && is(2, "managementGroups") =>
            {
                Self::ManagementGroup
            }
            2 if is(0, "subscriptions") => Self::Subscription,
            4 if is(0, "subscriptions") && is(2, "resourceGroups") => Self::ResourceGroup,
            _ => Self::Resource,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resource => "resource",
            Self::ResourceGroup => "resourceGroup",
            Self::Subscription => "subscription",
            Self::ManagementGroup => "managementGroup",
            Self::Root => "root",
        }
    }
}

/// The management group a `/providers/Microsoft.Management/managementGroups/{name}` scope names.
pub fn management_group_of(scope: &str) -> Option<&str> {
    (ScopeKind::of(scope) == ScopeKind::ManagementGroup)
        .then(|| scope.trim().trim_matches('/').rsplit('/').next())
        .flatten()
}

/// The lower-case GUID at the end of a role definition id.
pub fn role_guid(role_definition_id: &str) -> String {
    role_definition_id
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// ARM action matching: case-insensitive, `*` matches any run of characters, and a `/*/`
/// segment may also match no segment at all (so `…/userAssignedIdentities/*/assign/action`
/// covers `…/userAssignedIdentities/assign/action`).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    let action = action.trim().to_ascii_lowercase();
    glob(pattern.as_bytes(), action.as_bytes())
        || (pattern.contains("/*/")
            && glob(pattern.replace("/*/", "/").as_bytes(), action.as_bytes()))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last star.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

impl RoleDefinitionRow {
    /// True when the role allows the control-plane `action`: some permission block lists it in
    /// `actions` (wildcards included) and does not exclude it in `notActions`.
    pub fn allows(&self, action: &str) -> bool {
        self.permissions.iter().any(|p| {
            p.actions.iter().any(|a| action_matches(a, action))
                && !p.not_actions.iter().any(|n| action_matches(n, action))
        })
    }

    /// The action patterns that allow `action` (for evidence).
    pub fn granting_patterns(&self, action: &str) -> Vec<String> {
        self.permissions
            .iter()
            .filter(|p| !p.not_actions.iter().any(|n| action_matches(n, action)))
            .flat_map(|p| p.actions.iter())
            .filter(|a| action_matches(a, action))
            .cloned()
            .collect()
    }

    /// The data-action patterns that allow the data-plane `action` (for evidence).
    pub fn granting_data_patterns(&self, action: &str) -> Vec<String> {
        self.permissions
            .iter()
            .filter(|p| !p.not_data_actions.iter().any(|n| action_matches(n, action)))
            .flat_map(|p| p.data_actions.iter())
            .filter(|a| action_matches(a, action))
            .cloned()
            .collect()
    }

    /// True for a custom role.
    pub fn is_custom(&self) -> bool {
        self.role_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("CustomRole"))
    }

    /// The tier of a role judged by its own actions: ControlPlane when it can grant access or
    /// take over identities, ManagementPlane when it can change anything, UserAccess when it
    /// only reads.
    pub fn tier_by_actions(&self) -> Tier {
        let control = [
            ROLE_ASSIGNMENT_WRITE,
            "Microsoft.Authorization/roleDefinitions/write",
            FEDERATED_CREDENTIAL_WRITE,
            IDENTITY_ASSIGN,
        ];
        if control.iter().any(|a| self.allows(a)) {
            return Tier::ControlPlane;
        }
        let changes = self.permissions.iter().any(|p| {
            p.actions
                .iter()
                .chain(p.data_actions.iter())
                .any(|a| !a.trim().to_ascii_lowercase().ends_with("/read"))
        });
        if changes {
            Tier::ManagementPlane
        } else {
            Tier::UserAccess
        }
    }
}

/// An Azure role the principal holds, directly or through a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAzureRole {
    /// Role assignment id (what `az role assignment delete --ids` takes).
    pub assignment_id: String,
    /// Role definition id as the assignment names it.
    pub role_definition_id: String,
    /// Role name.
    pub role_name: String,
    /// `BuiltInRole` or `CustomRole`; null when the definition was not found.
    pub role_type: Option<String>,
    /// The assignment's scope.
    pub scope: String,
    /// What the scope is.
    pub scope_kind: ScopeKind,
    /// Enterprise Access Model tier.
    pub tier: Tier,
    /// False when the tier comes from the role's actions (custom roles) or a fallback, not from
    /// the classification data.
    pub classified: bool,
    /// The classification's privileged label, or ControlPlane tier.
    pub is_privileged: bool,
    /// The ABAC condition that constrains the assignment, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The group the role is held through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group: Option<GroupRef>,
}

impl ResolvedAzureRole {
    /// The lower-case GUID of the role definition.
    pub fn role_guid(&self) -> String {
        role_guid(&self.role_definition_id)
    }
}

/// An AKS cluster and its OIDC issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksCluster<'a> {
    /// Resource id.
    pub id: &'a str,
    /// Issuer URL, as the cluster reports it.
    pub issuer: &'a str,
}

/// Where a Flex Consumption function app runs its package from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStorage<'a> {
    /// The function app's resource id.
    pub app_id: &'a str,
    /// The container URL as the app names it (`functionAppConfig.deployment.storage.value`).
    pub container_url: &'a str,
    /// The storage account name: the first label of the URL's host, lower case.
    pub account_name: String,
    /// The blob container: the URL's first path segment.
    pub container: String,
    /// The storage account's resource id, when the account is among the collected ones
    /// (matched on its blob endpoint, else on its name). None: it is in a subscription the
    /// scanner cannot read, in another tenant, or the storage accounts are unknown.
    pub storage_account_id: Option<&'a str>,
    /// How the app authenticates to the container, as ARM reports it.
    pub authentication: Option<&'a str>,
}

impl DeploymentStorage<'_> {
    /// The container's resource id (what a role assignment scoped to the container names),
    /// when the account is known.
    pub fn container_id(&self) -> Option<String> {
        self.storage_account_id.map(|account| {
            format!(
                "{}/blobServices/default/containers/{}",
                account.trim_end_matches('/'),
                self.container
            )
        })
    }
}

/// Splits a deployment container URL into (blob endpoint `scheme://host/`, account name,
/// container), all lower case; `None` when it is not an absolute URL with a container.
pub fn parse_container_url(url: &str) -> Option<(String, String, String)> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    let account = host.split('.').next().filter(|a| !a.is_empty())?.to_owned();
    let container = parsed
        .path_segments()?
        .find(|s| !s.is_empty())?
        .to_ascii_lowercase();
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some((
        format!("{}://{host}{port}/", parsed.scheme()),
        account,
        container,
    ))
}

/// A blob endpoint normalised for comparison: lower case, one trailing slash.
fn normalise_endpoint(endpoint: &str) -> String {
    format!(
        "{}/",
        endpoint.trim().trim_end_matches('/').to_ascii_lowercase()
    )
}

/// The Azure snapshot, indexed for resolution and rules.
#[derive(Debug, Clone)]
pub struct AzureIndex<'a> {
    /// The data behind the index.
    pub snapshot: &'a AzureSnapshot,
    /// The tenant id (its root management group has the same name).
    tenant_id: String,
    assignments_by_principal: HashMap<String, Vec<&'a RoleAssignmentRow>>,
    definitions: HashMap<String, &'a RoleDefinitionRow>,
    subscriptions: HashMap<String, &'a SubscriptionRow>,
    attached: BTreeSet<String>,
    resources: HashMap<String, &'a IdentityResourceRow>,
    identities_by_id: HashMap<String, &'a UserAssignedIdentityRow>,
    credentials: HashMap<String, &'a FederatedCredentialsResult>,
    eligible_by_principal: HashMap<String, Vec<&'a EligibleRoleAssignmentRow>>,
    storage_by_endpoint: HashMap<String, &'a StorageAccountRow>,
    storage_by_name: HashMap<String, &'a StorageAccountRow>,
    /// The role-assignment principals that live in another tenant
    /// ([`AzureSnapshot::foreign_principals`]), computed once.
    foreign_principals: HashSet<String>,
}

impl<'a> AzureIndex<'a> {
    /// The other tenants behind an Azure scope's subscription (Lighthouse): its owning tenant
    /// when it is delegated to this one, and the tenants that manage it; empty otherwise.
    pub fn other_tenants_of_scope(&self, scope: &str) -> Vec<String> {
        crate::snapshot::azure::subscription_of_scope(scope)
            .and_then(|s| self.subscriptions.get(&s))
            .map(|s| s.other_tenants(&self.tenant_id))
            .unwrap_or_default()
    }

    /// True when the resource or scope sits in a subscription another tenant delegated to
    /// this one (Azure Lighthouse): it is not this tenant's.
    pub fn is_delegated(&self, id: &str) -> bool {
        crate::snapshot::azure::subscription_of_scope(id)
            .and_then(|s| self.subscriptions.get(&s))
            .is_some_and(|s| s.is_delegated_to(&self.tenant_id))
    }

    /// The tenant the index is for (lower case).
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// Indexes `snapshot` for the tenant `tenant_id`.
    pub fn new(snapshot: &'a AzureSnapshot, tenant_id: &str) -> Self {
        let mut assignments_by_principal: HashMap<String, Vec<&RoleAssignmentRow>> = HashMap::new();
        for a in &snapshot.role_assignments {
            assignments_by_principal
                .entry(a.principal_id.to_ascii_lowercase())
                .or_default()
                .push(a);
        }
        let mut eligible_by_principal: HashMap<String, Vec<&EligibleRoleAssignmentRow>> =
            HashMap::new();
        for e in snapshot
            .eligible_role_assignments
            .known()
            .into_iter()
            .flatten()
        {
            eligible_by_principal
                .entry(e.principal_id.to_ascii_lowercase())
                .or_default()
                .push(e);
        }
        let accounts: &[StorageAccountRow] = snapshot
            .storage_accounts
            .known()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut definitions = HashMap::new();
        for d in &snapshot.role_definitions {
            // A GUID can repeat (the same custom role listed per assignable scope); keep one.
            definitions.entry(role_guid(&d.id)).or_insert(d);
        }
        Self {
            snapshot,
            tenant_id: tenant_id.to_ascii_lowercase(),
            assignments_by_principal,
            definitions,
            subscriptions: snapshot
                .subscriptions
                .iter()
                .map(|s| (s.subscription_id.to_ascii_lowercase(), s))
                .collect(),
            attached: snapshot
                .identity_resources
                .iter()
                .flat_map(IdentityResourceRow::attached_identities)
                .map(normalise_id)
                .collect(),
            resources: snapshot
                .identity_resources
                .iter()
                .map(|r| (normalise_id(&r.id), r))
                .collect(),
            identities_by_id: snapshot
                .user_assigned_identities
                .iter()
                .map(|u| (normalise_id(&u.id), u))
                .collect(),
            credentials: snapshot
                .federated_credentials
                .iter()
                .map(|f| (normalise_id(&f.identity_id), &f.result))
                .collect(),
            eligible_by_principal,
            storage_by_endpoint: accounts
                .iter()
                .filter_map(|a| {
                    a.blob_endpoint
                        .as_deref()
                        .map(|e| (normalise_endpoint(e), a))
                })
                .collect(),
            storage_by_name: accounts
                .iter()
                .map(|a| (a.name.trim().to_ascii_lowercase(), a))
                .collect(),
            foreign_principals: snapshot.foreign_principals(tenant_id),
        }
    }

    /// True when some role-assignment principal lives in another tenant (Lighthouse, a
    /// foreign group): without one, no identity can be controlled across tenants.
    pub fn has_foreign_principals(&self) -> bool {
        !self.foreign_principals.is_empty()
    }

    /// The role-assignment principals that were looked up, not found, and are not foreign:
    /// the only ones ever called deleted (MI-ORPH-003).
    pub fn deleted_principals(&self) -> HashSet<String> {
        self.snapshot.deleted_principals(&self.foreign_principals)
    }

    /// Where the function app `app_id` runs its package from: its Flex Consumption deployment
    /// storage container and, when collected, the storage account holding it. `None` when the
    /// app is not among the identity resources or has no deployment storage (or an unusable
    /// URL).
    pub fn deployment_storage(&self, app_id: &str) -> Option<DeploymentStorage<'a>> {
        let app = self.resource(app_id)?;
        self.deployment_storage_of(app)
    }

    /// [`Self::deployment_storage`] of a resource row.
    pub fn deployment_storage_of(
        &self,
        app: &'a IdentityResourceRow,
    ) -> Option<DeploymentStorage<'a>> {
        let url = app.deployment_storage.as_deref()?;
        let (endpoint, account_name, container) = parse_container_url(url)?;
        let account = self
            .storage_by_endpoint
            .get(&endpoint)
            .or_else(|| self.storage_by_name.get(&account_name))
            .copied();
        Some(DeploymentStorage {
            app_id: &app.id,
            container_url: url,
            account_name,
            container,
            storage_account_id: account.map(|a| a.id.as_str()),
            authentication: app.deployment_storage_authentication.as_deref(),
        })
    }

    /// The function apps whose deployment storage is in the storage account
    /// `storage_account_id`: whoever can write that account's blobs chooses the code they run.
    pub fn apps_deploying_from(&self, storage_account_id: &str) -> Vec<DeploymentStorage<'a>> {
        let wanted = normalise_id(storage_account_id);
        self.snapshot
            .identity_resources
            .iter()
            .filter(|r| r.deployment_storage.is_some())
            .filter_map(|r| self.deployment_storage_of(r))
            .filter(|d| {
                d.storage_account_id
                    .is_some_and(|id| normalise_id(id) == wanted)
            })
            .collect()
    }

    /// True when the PIM eligibilities were collected (see [`Self::eligible_assignments_of`]).
    pub fn eligibility_known(&self) -> bool {
        !self.snapshot.eligible_role_assignments.is_unknown()
    }

    /// The Azure RBAC PIM eligibilities of `principal_id` (held directly, not through a group),
    /// in force or not ([`EligibleRoleAssignmentRow::is_provisioned`]). Empty when there are
    /// none, and when they are unknown ([`Self::eligibility_known`] tells the two apart).
    pub fn eligible_assignments_of(&self, principal_id: &str) -> &[&'a EligibleRoleAssignmentRow] {
        self.eligible_by_principal
            .get(&principal_id.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A role definition by GUID or full id.
    pub fn definition(&self, role_definition_id: &str) -> Option<&'a RoleDefinitionRow> {
        self.definitions
            .get(&role_guid(role_definition_id))
            .copied()
    }

    /// Role assignments held directly by `principal_id`.
    pub fn assignments_of(&self, principal_id: &str) -> &[&'a RoleAssignmentRow] {
        self.assignments_by_principal
            .get(&principal_id.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// True when the subscription was readable.
    pub fn subscription_readable(&self, subscription_id: &str) -> bool {
        self.subscriptions
            .contains_key(&subscription_id.to_ascii_lowercase())
    }

    /// The display name of a readable subscription.
    pub fn subscription_name(&self, subscription_id: &str) -> Option<&'a str> {
        self.subscriptions
            .get(&subscription_id.to_ascii_lowercase())
            .and_then(|s| s.name.as_deref())
    }

    /// True when the management group is the tenant root group (named after the tenant id).
    pub fn is_tenant_root_group(&self, management_group: &str) -> bool {
        management_group.eq_ignore_ascii_case(&self.tenant_id)
    }

    /// True when some resource lists the user-assigned identity in its `identity` block.
    pub fn is_attached(&self, identity_id: &str) -> bool {
        self.attached.contains(&normalise_id(identity_id))
    }

    /// A resource with an identity block, by id.
    pub fn resource(&self, id: &str) -> Option<&'a IdentityResourceRow> {
        self.resources.get(&normalise_id(id)).copied()
    }

    /// A user-assigned identity resource, by id.
    pub fn user_assigned_identity(&self, id: &str) -> Option<&'a UserAssignedIdentityRow> {
        self.identities_by_id.get(&normalise_id(id)).copied()
    }

    /// What listing the identity's federated credentials gave; `None` when it was not listed.
    pub fn federated_credentials(
        &self,
        identity_id: &str,
    ) -> Option<&'a FederatedCredentialsResult> {
        self.credentials.get(&normalise_id(identity_id)).copied()
    }

    /// AKS clusters that publish an OIDC issuer.
    pub fn aks_clusters(&self) -> Vec<AksCluster<'a>> {
        self.snapshot
            .identity_resources
            .iter()
            // A cluster of a subscription another tenant delegated here is that tenant's.
            .filter(|r| !self.is_delegated(&r.id))
            .filter(|r| {
                r.resource_type.as_deref().is_some_and(|t| {
                    t.eq_ignore_ascii_case("Microsoft.ContainerService/managedClusters")
                })
            })
            .filter_map(|r| {
                let issuer = r
                    .oidc_issuer_url
                    .as_deref()
                    .filter(|i| !i.trim().is_empty())?;
                Some(AksCluster { id: &r.id, issuer })
            })
            .collect()
    }

    /// True when `scope` covers the resource `resource_id` (or is that resource). Management
    /// groups cover the subscriptions whose ancestor chain names them; the tenant root group
    /// and `/` cover everything.
    pub fn scope_contains(&self, scope: &str, resource_id: &str) -> bool {
        match ScopeKind::of(scope) {
            ScopeKind::Root => true,
            ScopeKind::ManagementGroup => {
                let Some(group) = management_group_of(scope) else {
                    return false;
                };
                if group.eq_ignore_ascii_case(&self.tenant_id) {
                    return true;
                }
                let Some(subscription) =
                    ArmResourceId::parse(resource_id).and_then(|r| r.subscription_id)
                else {
                    return false;
                };
                self.subscriptions
                    .get(&subscription.to_ascii_lowercase())
                    .is_some_and(|s| {
                        s.management_group_ancestors_chain
                            .iter()
                            .any(|mg| mg.name.eq_ignore_ascii_case(group))
                    })
            }
            _ => {
                let scope = normalise_id(scope);
                let id = normalise_id(resource_id);
                id == scope || id.starts_with(&format!("{scope}/"))
            }
        }
    }

    /// The Azure roles of a principal: its own assignments plus those of its groups.
    pub fn roles_of(
        &self,
        classifier: &Classifier,
        principal_id: &str,
        groups: Option<&[ResolvedGroup]>,
    ) -> Vec<ResolvedAzureRole> {
        let mut out: Vec<ResolvedAzureRole> = self
            .assignments_of(principal_id)
            .iter()
            .map(|a| self.resolve(classifier, a, None))
            .collect();
        for group in groups.unwrap_or_default() {
            for a in self.assignments_of(&group.id) {
                let via = GroupRef {
                    id: group.id.clone(),
                    display_name: group.display_name.clone(),
                };
                out.push(self.resolve(classifier, a, Some(via)));
            }
        }
        // One entry per assignment and path.
        let mut seen = BTreeMap::new();
        for role in out {
            let key = (
                role.assignment_id.to_ascii_lowercase(),
                role.via_group.as_ref().map(|g| g.id.to_ascii_lowercase()),
            );
            seen.entry(key).or_insert(role);
        }
        seen.into_values().collect()
    }

    /// Names and tiers one role assignment.
    pub fn resolve(
        &self,
        classifier: &Classifier,
        assignment: &RoleAssignmentRow,
        via_group: Option<GroupRef>,
    ) -> ResolvedAzureRole {
        let definition = self.definition(&assignment.role_definition_id);
        let class = classifier.azure_role(&assignment.role_definition_id);
        let (tier, classified) = match (class, definition) {
            (Some(c), _) => (c.tiering.tier, c.tiering.classified),
            (None, Some(d)) => (d.tier_by_actions(), false),
            // Neither classified nor defined: never assumed harmless.
            (None, None) => (Tier::ManagementPlane, false),
        };
        let role_name = class
            .map(|c| c.name.to_owned())
            .or_else(|| definition.and_then(|d| d.role_name.clone()))
            .unwrap_or_else(|| role_guid(&assignment.role_definition_id));
        ResolvedAzureRole {
            assignment_id: assignment.id.clone(),
            role_definition_id: assignment.role_definition_id.clone(),
            role_name,
            role_type: definition
                .and_then(|d| d.role_type.clone())
                .or_else(|| class.map(|_| "BuiltInRole".to_owned())),
            scope: assignment.scope.clone(),
            scope_kind: ScopeKind::of(&assignment.scope),
            tier,
            classified,
            is_privileged: class.is_some_and(|c| c.is_privileged) || tier == Tier::ControlPlane,
            condition: assignment
                .condition
                .clone()
                .filter(|c| !c.trim().is_empty()),
            via_group,
        }
    }

    /// True when the role lets its holder take over user-assigned identities in its scope: add a
    /// federated credential to them, or attach them to a resource the holder controls. Managed
    /// Identity Operator and Contributor always can; other roles by their actions; without a
    /// definition, Owner and Contributor are assumed to (their `*` covers both actions).
    pub fn controls_identities(&self, role_definition_id: &str) -> bool {
        let guid = role_guid(role_definition_id);
        if [MANAGED_IDENTITY_OPERATOR, MANAGED_IDENTITY_CONTRIBUTOR].contains(&guid.as_str()) {
            return true;
        }
        match self.definition(role_definition_id) {
            Some(d) if !d.permissions.is_empty() => {
                d.allows(FEDERATED_CREDENTIAL_WRITE) || d.allows(IDENTITY_ASSIGN)
            }
            _ => [OWNER, CONTRIBUTOR].contains(&guid.as_str()),
        }
    }
}

/// Lower case, no trailing slash: ARM ids compare case-insensitively.
pub fn normalise_id(id: &str) -> String {
    id.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// An issuer URL normalised for comparison: scheme and host lower case, no trailing slash.
pub fn normalise_issuer(issuer: &str) -> String {
    let trimmed = issuer.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{}{}",
                url.scheme(),
                url.host_str().unwrap_or_default().to_ascii_lowercase(),
                port,
                url.path().trim_end_matches('/')
            )
        }
        Err(_) => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::azure::{ManagementGroupRef, RolePermission};

    #[test]
    fn scope_kinds() {
        for (scope, kind) in [
            ("/", ScopeKind::Root),
            ("", ScopeKind::Root),
            (
                "/providers/Microsoft.Management/managementGroups/mg1",
                ScopeKind::ManagementGroup,
            ),
            ("/subscriptions/s", ScopeKind::Subscription),
            (
                "/subscriptions/s/resourcegroups/rg",
                ScopeKind::ResourceGroup,
            ),
            (
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a",
                ScopeKind::Resource,
            ),
        ] {
            assert_eq!(ScopeKind::of(scope), kind, "{scope}");
        }
        assert_eq!(
            management_group_of("/providers/Microsoft.Management/managementGroups/mg1"),
            Some("mg1")
        );
        assert_eq!(management_group_of("/subscriptions/s"), None);
    }

    #[test]
    fn actions_match_with_wildcards_and_not_actions() {
        assert!(action_matches("*", ROLE_ASSIGNMENT_WRITE));
        assert!(action_matches("*/write", ROLE_ASSIGNMENT_WRITE));
        assert!(action_matches(
            "microsoft.authorization/*",
            ROLE_ASSIGNMENT_WRITE
        ));
        assert!(!action_matches("*/read", ROLE_ASSIGNMENT_WRITE));
        assert!(!action_matches(
            "Microsoft.Authorization/*/read",
            ROLE_ASSIGNMENT_WRITE
        ));
        assert!(action_matches(
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            IDENTITY_ASSIGN
        ));
        let role = |actions: &[&str], not: &[&str]| RoleDefinitionRow {
            id: "x".into(),
            role_type: Some("CustomRole".into()),
            permissions: vec![RolePermission {
                actions: actions.iter().map(|s| (*s).to_owned()).collect(),
                not_actions: not.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(role(&["*"], &[]).allows(ROLE_ASSIGNMENT_WRITE));
        assert!(!role(&["*"], &["Microsoft.Authorization/*/Write"]).allows(ROLE_ASSIGNMENT_WRITE));
        assert_eq!(role(&["*"], &[]).tier_by_actions(), Tier::ControlPlane);
        assert_eq!(
            role(&["Microsoft.Web/sites/*"], &[]).tier_by_actions(),
            Tier::ManagementPlane
        );
        assert_eq!(role(&["*/read"], &[]).tier_by_actions(), Tier::UserAccess);
        assert_eq!(
            role(&["*", "Microsoft.Authorization/*/write"], &[])
                .granting_patterns(ROLE_ASSIGNMENT_WRITE),
            vec!["*".to_owned(), "Microsoft.Authorization/*/write".to_owned()]
        );
    }

    #[test]
    fn management_groups_contain_their_subscriptions() {
        let snapshot = AzureSnapshot {
            subscriptions: vec![SubscriptionRow {
                id: "/subscriptions/s1".into(),
                subscription_id: "S1".into(),
                management_group_ancestors_chain: vec![
                    ManagementGroupRef {
                        name: "mg-platform".into(),
                        display_name: None,
                    },
                    ManagementGroupRef {
                        name: "tenant".into(),
                        display_name: None,
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let index = AzureIndex::new(&snapshot, "TENANT");
        let uami = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u";
        assert!(index.scope_contains("/", uami));
        assert!(index.scope_contains(
            "/providers/Microsoft.Management/managementGroups/MG-Platform",
            uami
        ));
        assert!(index.scope_contains(
            "/providers/Microsoft.Management/managementGroups/tenant",
            uami
        ));
        assert!(!index.scope_contains(
            "/providers/Microsoft.Management/managementGroups/other",
            uami
        ));
        assert!(index.scope_contains("/subscriptions/S1/resourcegroups/RG", uami));
        assert!(!index.scope_contains("/subscriptions/s1/resourceGroups/rg2", uami));
        assert!(!index.scope_contains("/subscriptions/s1/resourceGroups/r", uami));
        assert!(index.subscription_readable("s1"));
        assert!(!index.subscription_readable("s2"));
    }

    fn flex_app(id: &str, url: Option<&str>) -> IdentityResourceRow {
        IdentityResourceRow {
            id: id.into(),
            resource_type: Some("microsoft.web/sites".into()),
            deployment_storage: url.map(str::to_owned),
            deployment_storage_authentication: Some("systemassignedidentity".into()),
            ..Default::default()
        }
    }

    fn account(id: &str, name: &str, endpoint: Option<&str>) -> StorageAccountRow {
        StorageAccountRow {
            id: id.into(),
            name: name.into(),
            blob_endpoint: endpoint.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn deployment_storage_names_the_account_and_container() {
        let st = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stdeploy";
        let other = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stother";
        let snapshot = AzureSnapshot {
            identity_resources: vec![
                flex_app(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-a",
                    Some("https://StDeploy.blob.core.windows.net/app-package-a/"),
                ),
                // Matched by name: the endpoint differs (a DNS-zone endpoint).
                flex_app(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-b",
                    Some("https://stother.z12.blob.storage.azure.net/pkg"),
                ),
                // An account the scanner cannot see.
                flex_app(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-c",
                    Some("https://stelsewhere.blob.core.windows.net/pkg"),
                ),
                flex_app(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/web",
                    None,
                ),
                flex_app(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/bad",
                    Some("not a url"),
                ),
            ],
            storage_accounts: crate::snapshot::Dataset::Collected {
                items: vec![
                    account(
                        st,
                        "stdeploy",
                        Some("https://stdeploy.blob.core.windows.net/"),
                    ),
                    account(
                        other,
                        "stother",
                        Some("https://stother.blob.core.windows.net/"),
                    ),
                ],
            },
            ..Default::default()
        };
        let index = AzureIndex::new(&snapshot, "t");
        let a = index
            .deployment_storage(
                "/subscriptions/S1/resourcegroups/RG/providers/Microsoft.Web/sites/FUNC-A",
            )
            .expect("func-a has deployment storage");
        assert_eq!(a.storage_account_id, Some(st));
        assert_eq!(a.account_name, "stdeploy");
        assert_eq!(a.container, "app-package-a");
        assert_eq!(a.authentication, Some("systemassignedidentity"));
        assert_eq!(
            a.container_id().as_deref(),
            Some(format!("{st}/blobServices/default/containers/app-package-a").as_str())
        );
        let b = index
            .deployment_storage(
                "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-b",
            )
            .expect("func-b");
        assert_eq!(b.storage_account_id, Some(other));
        let c = index
            .deployment_storage(
                "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-c",
            )
            .expect("func-c");
        assert_eq!(
            (c.storage_account_id, c.account_name.as_str()),
            (None, "stelsewhere")
        );
        assert!(
            index
                .deployment_storage(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/web"
                )
                .is_none()
        );
        assert!(
            index
                .deployment_storage(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/bad"
                )
                .is_none()
        );
        assert!(
            index
                .deployment_storage(
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/gone"
                )
                .is_none()
        );
        let from: Vec<&str> = index
            .apps_deploying_from(&st.to_ascii_uppercase())
            .iter()
            .map(|d| d.app_id)
            .collect();
        assert_eq!(
            from,
            ["/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-a"]
        );
        // Storage accounts unknown: the app still names its account, without an id.
        let unknown = AzureSnapshot {
            storage_accounts: crate::snapshot::azure::storage_accounts_not_recorded(),
            ..snapshot.clone()
        };
        let index = AzureIndex::new(&unknown, "t");
        let a = index
            .deployment_storage(
                "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Web/sites/func-a",
            )
            .expect("func-a");
        assert_eq!(
            (a.storage_account_id, a.account_name.as_str()),
            (None, "stdeploy")
        );
    }

    #[test]
    fn eligibilities_are_indexed_by_principal_and_unknown_is_told_apart() {
        let row = |id: &str, principal: &str| EligibleRoleAssignmentRow {
            id: id.into(),
            principal_id: principal.into(),
            scope: "/subscriptions/s1".into(),
            role_definition_id: format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{OWNER}"
            ),
            ..Default::default()
        };
        let snapshot = AzureSnapshot {
            eligible_role_assignments: crate::snapshot::Dataset::Collected {
                items: vec![row("e1", "P1"), row("e2", "p1"), row("e3", "p2")],
            },
            ..Default::default()
        };
        let index = AzureIndex::new(&snapshot, "t");
        assert!(index.eligibility_known());
        assert_eq!(index.eligible_assignments_of("p1").len(), 2);
        assert_eq!(index.eligible_assignments_of("P2")[0].id, "e3");
        assert!(index.eligible_assignments_of("p3").is_empty());
        let unknown = AzureSnapshot::default();
        let unknown = AzureSnapshot {
            eligible_role_assignments: crate::snapshot::azure::eligible_not_recorded(),
            ..unknown
        };
        let index = AzureIndex::new(&unknown, "t");
        assert!(!index.eligibility_known());
        assert!(index.eligible_assignments_of("p1").is_empty());
    }

    #[test]
    fn issuers_compare_without_case_or_trailing_slash() {
        assert_eq!(
            normalise_issuer("HTTPS://Token.Actions.GitHubUserContent.com/"),
            "https://token.actions.githubusercontent.com"
        );
        assert_eq!(
            normalise_issuer("https://westeurope.oic.prod-aks.azure.com/T/C/"),
            "https://westeurope.oic.prod-aks.azure.com/T/C"
        );
    }
}
