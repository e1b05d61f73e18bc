//! Collection: the Graph calls that build a [`TenantSnapshot`]. All I/O of an assessment lives
//! here; nothing in this module judges what it reads.
//!
//! Plan (read-only; Application.Read.All, GroupMember.Read.All, RoleManagement.Read.Directory,
//! plus Directory.Read.All for delegated grants, user owners and role-assignment principals):
//! 1. paged lists: managed identities, application service principals and applications (both
//!    with their owners expanded), groups with their owners (see [`ownership`]), role
//!    definitions, active role assignments, PIM eligibility and assignment schedules, delegated
//!    grants (filtered to collected clients);
//! 2. per principal, in JSON `$batch`es of 20: `appRoleAssignments`, `transitiveMemberOf`; the
//!    principals are the managed identities, the credential-bearing service principals and the
//!    service principals they control through ownership;
//! 3. once per referenced resource, in `$batch`: the resource's `appRoles`;
//! 4. the Azure plane through Azure Resource Manager (`crate::arm::collect`), and the principals
//!    of its role assignments through `directoryObjects/getByIds` ([`principals`]).
//!
//! The managed-identity list is required; anything else that fails becomes a
//! [`Dataset::Unknown`] plus a [`CollectionGap`], and the run is `partial` (except Azure-plane
//! gaps the configuration allows, see `crate::arm::collect`). A list answered with a licence
//! error code (`AadPremiumLicenseRequired`) is [`Dataset::NotApplicable`] instead: the tenant
//! does not have that data, and the run stays complete.

use crate::progress::Phase;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[cfg(test)]
mod collection_tests;
pub mod ownership;
pub mod principals;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::arm::AzurePlane;
use crate::graph::{GraphClient, GraphError};
use crate::snapshot::graph::{
    APP_ROLE_ASSIGNMENT_SELECT, APPLICATION_SELECT, AppRoleAssignment, Application,
    DirectoryObject, MANAGED_IDENTITY_GET_SELECT, MANAGED_IDENTITY_SELECT, MANAGED_IDENTITY_TYPE,
    OAUTH2_GRANT_SELECT, OAuth2PermissionGrant, RESOURCE_SERVICE_PRINCIPAL_SELECT,
    ROLE_ASSIGNMENT_SCHEDULE_SELECT, ROLE_ASSIGNMENT_SELECT, ROLE_DEFINITION_SELECT,
    ROLE_SCHEDULE_SELECT, ResourceServicePrincipal, RoleAssignment, RoleDefinition,
    SERVICE_PRINCIPAL_SELECT, ServicePrincipal,
};
use crate::snapshot::{
    AssessmentSettings, CollectionGap, CredentialServicePrincipal, Dataset, DatasetName,
    GROUP_READ_PERMISSION, Ownership, PrincipalData, SNAPSHOT_SCHEMA_VERSION, ScannerIdentity,
    TenantSnapshot,
};
use ownership::WithOwners;

/// `$batch` requests in flight at once.
pub const BATCH_CONCURRENCY: usize = 4;

/// Why collection stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A Graph call failed while collecting one data set.
    #[error("collecting {what}: {source}")]
    Graph {
        /// The data set, e.g. "managed identities".
        what: &'static str,
        /// The underlying failure.
        #[source]
        source: GraphError,
    },
    /// The scanner's token carries no tenant id.
    #[error("the Graph access token carries no tenant id (tid claim)")]
    UnknownTenant,
    /// The token's tenant id is not a GUID, so it cannot name the tenant's results.
    #[error("the Graph access token's tenant id (tid claim) is not a GUID: {0:?}")]
    InvalidTenant(String),
}

/// The tenant id as results paths use it: a GUID in lower-case hyphenated form. Anything else
/// (a path segment, `..`, a 100 KB string) never shapes a blob path.
pub fn tenant_path_id(tid: &str) -> Result<String, CollectError> {
    uuid::Uuid::try_parse(tid.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| CollectError::InvalidTenant(tid.chars().take(64).collect()))
}

impl CollectError {
    fn graph(what: &'static str) -> impl FnOnce(GraphError) -> Self {
        move |source| Self::Graph { what, source }
    }
}

/// The scanner's tenant and identity, from the claims of its Graph token.
pub async fn whoami(graph: &GraphClient) -> Result<(String, ScannerIdentity), CollectError> {
    let claims = graph
        .tokens()
        .claims()
        .await
        .map_err(|e| CollectError::graph("the scanner identity")(e.into()))?;
    let tenant_id = tenant_path_id(claims.tid.as_deref().ok_or(CollectError::UnknownTenant)?)?;
    Ok((
        tenant_id,
        ScannerIdentity {
            object_id: claims.oid,
            app_id: claims.appid,
            roles: claims.roles,
        },
    ))
}

/// Path and query that lists every managed identity, 999 per page.
pub fn managed_identity_list_query() -> String {
    format!(
        "servicePrincipals?$filter=servicePrincipalType eq '{MANAGED_IDENTITY_TYPE}'&$select={MANAGED_IDENTITY_SELECT}&$top=999"
    )
}

fn gap(dataset: DatasetName, principals: usize, error: &GraphError) -> CollectionGap {
    let status = error.status();
    let licence = error.is_licence_required();
    CollectionGap {
        dataset,
        principals,
        status,
        reason: if licence {
            format!(
                "{dataset} does not exist in this tenant: it needs a licence the tenant lacks ({error}); the checks that need it cannot apply, and the run is not partial for it"
            )
        } else {
            error.to_string()
        },
        needs_permission: matches!(status, Some(401 | 403))
            .then(|| dataset.permission().to_owned()),
        affects_status: !licence,
        not_applicable: licence,
    }
}

/// The data set a failed read leaves: not applicable for a licence the tenant lacks (the gap
/// says so), otherwise unknown.
fn failed<T>(gap: &CollectionGap) -> Dataset<T> {
    let reason = gap.reason.clone();
    if gap.not_applicable {
        Dataset::NotApplicable { reason }
    } else {
        Dataset::Unknown { reason }
    }
}

/// Lists a tenant-wide data set; a failure becomes a gap and an unknown data set.
async fn list_dataset<T: serde::de::DeserializeOwned>(
    graph: &GraphClient,
    dataset: DatasetName,
    path: &str,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<T>> {
    match graph.list::<T>(path).await {
        Ok(items) => {
            tracing::info!(%dataset, count = items.len(), "collected");
            Dataset::Collected { items }
        }
        Err(e) => {
            tracing::warn!(%dataset, error = %e, "could not collect");
            let gap = gap(dataset, 0, &e);
            let data = failed(&gap);
            gaps.push(gap);
            data
        }
    }
}

/// Reads the whole tenant into a snapshot, for a scanner whose tenant and identity are known.
/// The Azure plane is read last ([`crate::arm::collect::collect_azure`]), as `azure` allows.
pub async fn collect_tenant(
    graph: &GraphClient,
    azure: &AzurePlane,
    tenant_id: String,
    scanner: ScannerIdentity,
    settings: AssessmentSettings,
) -> Result<TenantSnapshot, CollectError> {
    let mut gaps = Vec::new();

    // 1. Managed identities: required.
    graph.progress().enter(Phase::ListingIdentities, None);
    let managed_identities: Vec<ServicePrincipal> = graph
        .list(&managed_identity_list_query())
        .await
        .map_err(CollectError::graph("managed identities"))?;
    tracing::info!(
        count = managed_identities.len(),
        "listed managed identities"
    );

    // 2. Credential-bearing application service principals owned by this tenant, and who owns
    // which application, service principal and group. The group list pages on its own, beside.
    let mut group_gaps = Vec::new();
    graph.progress().enter(Phase::ListingApplications, None);
    let ((credential_service_principals, ownership), groups) = futures::join!(
        collect_credential_service_principals(graph, &tenant_id, &mut gaps),
        ownership::group_candidates(graph, &mut group_gaps),
    );
    gaps.append(&mut group_gaps);
    let ownership = finish_ownership(graph, ownership, groups, &mut gaps).await;

    // 3. Per-principal data in $batch: managed identities, credential-bearing service
    // principals, and the service principals they control through ownership.
    let mut principal_ids: Vec<String> =
        managed_identities.iter().map(|sp| sp.id.clone()).collect();
    if let Some(creds) = credential_service_principals.known() {
        principal_ids.extend(creds.iter().map(|c| c.service_principal.id.clone()));
    }
    principal_ids.sort();
    principal_ids.dedup();
    // Collected principals whose existence needs no check on the Azure side.
    let known_principals: BTreeSet<String> = principal_ids
        .iter()
        .map(|id| id.to_ascii_lowercase())
        .collect();
    let mut data_ids = principal_ids.clone();
    if let Dataset::Collected { items } = &ownership {
        let controlled = ownership::controlled_service_principals(items, &known_principals);
        if !controlled.is_empty() {
            tracing::info!(
                count = controlled.len(),
                "service principals controlled through ownership"
            );
        }
        data_ids.extend(controlled);
        data_ids.sort();
        data_ids.dedup();
    }
    let principals = collect_principal_data(graph, &data_ids, &mut gaps).await;

    // 4. The app roles of every resource those principals hold roles on.
    graph.progress().enter(Phase::ReadingDirectory, None);
    let resource_ids: BTreeSet<String> = principals
        .values()
        .filter_map(|p| p.app_role_assignments.known())
        .flatten()
        .map(|a| a.resource_id.clone())
        .collect();
    let resources = collect_resources(graph, &resource_ids, &mut gaps).await;

    // 5. Directory roles, tenant-wide.
    let role_definitions: Dataset<Vec<RoleDefinition>> = list_dataset(
        graph,
        DatasetName::RoleDefinitions,
        &format!("roleManagement/directory/roleDefinitions?$select={ROLE_DEFINITION_SELECT}"),
        &mut gaps,
    )
    .await;
    let role_assignments: Dataset<Vec<RoleAssignment>> = list_dataset(
        graph,
        DatasetName::RoleAssignments,
        &format!("roleManagement/directory/roleAssignments?$select={ROLE_ASSIGNMENT_SELECT}"),
        &mut gaps,
    )
    .await;
    let role_eligibility_schedules: Dataset<Vec<RoleAssignment>> = list_dataset(
        graph,
        DatasetName::RoleEligibilitySchedules,
        &format!(
            "roleManagement/directory/roleEligibilitySchedules?$select={ROLE_SCHEDULE_SELECT}"
        ),
        &mut gaps,
    )
    .await;
    let role_assignment_schedules: Dataset<Vec<RoleAssignment>> = list_dataset(
        graph,
        DatasetName::RoleAssignmentSchedules,
        &format!("roleManagement/directory/roleAssignmentSchedules?$select={ROLE_ASSIGNMENT_SCHEDULE_SELECT}"),
        &mut gaps,
    )
    .await;

    // 6. Delegated grants, kept only for the collected principals.
    let client_ids: BTreeSet<&str> = data_ids.iter().map(String::as_str).collect();
    let delegated_grants = match list_dataset::<OAuth2PermissionGrant>(
        graph,
        DatasetName::DelegatedGrants,
        &format!("oauth2PermissionGrants?$select={OAUTH2_GRANT_SELECT}"),
        &mut gaps,
    )
    .await
    {
        Dataset::Collected { items } => Dataset::Collected {
            items: items
                .into_iter()
                .filter(|g| client_ids.contains(g.client_id.as_str()))
                .collect(),
        },
        unknown => unknown,
    };

    // 7. The Azure plane: RBAC, user-assigned identities, federated credentials. The principals
    // read above (managed identities, credential-bearing service principals) surely exist.
    graph.progress().enter(Phase::ReadingAzure, None);
    let azure =
        crate::arm::collect::collect_azure(azure, graph, &known_principals, &mut gaps).await;

    Ok(TenantSnapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION.to_owned(),
        tenant_id,
        collected_at: OffsetDateTime::now_utc(),
        graph_endpoint: graph.endpoint().as_str().trim_end_matches('/').to_owned(),
        scanner,
        settings,
        managed_identities,
        credential_service_principals,
        principals,
        resources,
        role_definitions,
        role_assignments,
        role_eligibility_schedules,
        role_assignment_schedules,
        delegated_grants,
        ownership,
        azure,
        usage: None,
        gaps,
    })
}

/// Ownership as the lists read it: the owned applications and service principals (before the
/// groups and the owners `$expand` may have cut are added) and the application service
/// principals by `appId`; `Err` with the reason when the lists could not be read.
type ListedOwnership = Result<
    (
        Vec<ownership::Candidate>,
        HashMap<String, crate::snapshot::graph::DirectoryObject>,
    ),
    String,
>;

/// The `servicePrincipalType`s whose principals can hold credentials of their own: apps, and
/// `Legacy` principals (created before app registrations, or by legacy tooling).
pub const CREDENTIAL_SERVICE_PRINCIPAL_TYPES: [&str; 2] = ["Application", "Legacy"];

/// Lists application (and Legacy) service principals and applications (owners expanded): the
/// credential-bearing service principals owned by this tenant, and the owned ones.
async fn collect_credential_service_principals(
    graph: &GraphClient,
    tenant_id: &str,
    gaps: &mut Vec<CollectionGap>,
) -> (Dataset<Vec<CredentialServicePrincipal>>, ListedOwnership) {
    let expand = ownership::expand_owners();
    // `Legacy` service principals (created before app registrations, or by legacy tooling) can
    // hold credentials too; Graph filters one type per `eq`, so each type is its own list.
    let mut service_principals: Dataset<Vec<WithOwners<ServicePrincipal>>> =
        Dataset::Collected { items: Vec::new() };
    for kind in CREDENTIAL_SERVICE_PRINCIPAL_TYPES {
        let listed: Dataset<Vec<WithOwners<ServicePrincipal>>> = list_dataset(
            graph,
            DatasetName::ApplicationServicePrincipals,
            &format!("servicePrincipals?$filter=servicePrincipalType eq '{kind}'&$select={SERVICE_PRINCIPAL_SELECT}&{expand}&$top=999"),
            gaps,
        )
        .await;
        match (&mut service_principals, listed) {
            (Dataset::Collected { items }, Dataset::Collected { items: more }) => {
                items.extend(more)
            }
            (_, failed) => {
                service_principals = failed;
                break;
            }
        }
    }
    let applications: Dataset<Vec<WithOwners<Application>>> = list_dataset(
        graph,
        DatasetName::Applications,
        &format!("applications?$select={APPLICATION_SELECT}&{expand}&$top=999"),
        gaps,
    )
    .await;
    let (Some(service_principals), Some(applications)) =
        (service_principals.known(), applications.known())
    else {
        let reason = "application service principals or applications could not be listed";
        let ownership_reason = format!("{reason}, so their owners are unknown");
        gaps.push(CollectionGap {
            dataset: DatasetName::Ownership,
            principals: 0,
            status: None,
            reason: ownership_reason.clone(),
            needs_permission: None,
            affects_status: true,
            not_applicable: false,
        });
        return (
            Dataset::Unknown {
                reason: reason.into(),
            },
            Err(ownership_reason),
        );
    };
    let mut candidates = ownership::service_principal_candidates(service_principals);
    candidates.extend(ownership::application_candidates(applications));
    let owners = Ok((candidates, ownership::by_app_id(service_principals)));
    let apps_by_app_id: HashMap<String, &Application> = applications
        .iter()
        .filter_map(|a| {
            a.item
                .app_id
                .as_ref()
                .map(|id| (id.to_ascii_lowercase(), &a.item))
        })
        .collect();
    let items = service_principals
        .iter()
        .map(|l| &l.item)
        .filter(|sp| {
            // A Legacy principal has no application in another tenant: its credentials are
            // this tenant's whatever its (often null) owner organisation.
            sp.is_legacy()
                || sp
                    .app_owner_organization_id
                    .as_deref()
                    .is_some_and(|owner| owner.eq_ignore_ascii_case(tenant_id))
        })
        .filter_map(|sp| {
            let app = sp
                .app_id
                .as_ref()
                .and_then(|id| apps_by_app_id.get(&id.to_ascii_lowercase()).copied());
            let entry = CredentialServicePrincipal {
                service_principal: sp.clone(),
                application_id: app.map(|a| a.id.clone()),
                application_password_credentials: app
                    .map(|a| a.password_credentials.clone())
                    .unwrap_or_default(),
                application_key_credentials: app
                    .map(|a| a.key_credentials.clone())
                    .unwrap_or_default(),
            };
            let has_credentials = !sp.password_credentials.is_empty()
                || !sp.key_credentials.is_empty()
                || !entry.application_password_credentials.is_empty()
                || !entry.application_key_credentials.is_empty();
            has_credentials.then_some(entry)
        })
        .collect::<Vec<_>>();
    tracing::info!(
        count = items.len(),
        "found credential-bearing service principals"
    );
    (Dataset::Collected { items }, owners)
}

/// Completes ownership: adds the owned groups, reads again the owners `$expand` may have cut,
/// and links owned applications to their service principals. Unknown when any part is.
async fn finish_ownership(
    graph: &GraphClient,
    listed: ListedOwnership,
    groups: Dataset<Vec<ownership::Candidate>>,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Ownership> {
    let (mut candidates, service_principals) = match listed {
        Ok(listed) => listed,
        Err(reason) => return Dataset::Unknown { reason },
    };
    match groups {
        Dataset::Collected { items } => candidates.extend(items),
        Dataset::Unknown { reason } | Dataset::NotApplicable { reason } => {
            return Dataset::Unknown {
                reason: format!("groups and their owners could not be listed: {reason}"),
            };
        }
    }
    match ownership::complete(graph, candidates, gaps).await {
        Ok(owned) => {
            let ownership = ownership::assemble(owned, &service_principals);
            tracing::info!(owned = ownership.owned.len(), "collected ownership");
            Dataset::Collected { items: ownership }
        }
        Err(reason) => Dataset::Unknown { reason },
    }
}

/// Why a principal's memberships are unknown when Graph returned its groups with limited
/// information.
const LIMITED_GROUPS_REASON: &str = "Graph returned the groups in transitiveMemberOf with limited information (type and id only: the scanner may not read groups), so whether they are role-assignable or privileged is unknown";

async fn collect_principal_data(
    graph: &GraphClient,
    principal_ids: &[String],
    gaps: &mut Vec<CollectionGap>,
) -> BTreeMap<String, PrincipalData> {
    let assignment_paths: Vec<String> = principal_ids
        .iter()
        .map(|id| format!("/servicePrincipals/{id}/appRoleAssignments?$select={APP_ROLE_ASSIGNMENT_SELECT}&$top=999"))
        .collect();
    // transitiveMemberOf returns groups, directory roles and administrative units; a $select of
    // derived-type properties is not reliable there, and it would not lower the cost below 1 RU.
    let membership_paths: Vec<String> = principal_ids
        .iter()
        .map(|id| format!("/servicePrincipals/{id}/transitiveMemberOf?$top=999"))
        .collect();
    let principals = Some(principal_ids.len() as u64);
    graph
        .progress()
        .enter(Phase::ReadingAssignments, principals);
    let assignments = graph
        .batch_list::<AppRoleAssignment>(&assignment_paths, BATCH_CONCURRENCY)
        .await;
    graph
        .progress()
        .enter(Phase::ReadingMemberships, principals);
    let memberships = graph
        .batch_list::<DirectoryObject>(&membership_paths, BATCH_CONCURRENCY)
        .await;
    let mut failures: HashMap<DatasetName, (usize, GraphError)> = HashMap::new();
    let mut limited = 0;
    let mut out = BTreeMap::new();
    for ((id, assignments), memberships) in principal_ids.iter().zip(assignments).zip(memberships) {
        let mut memberships = to_dataset(DatasetName::Memberships, memberships, &mut failures);
        if memberships
            .known()
            .is_some_and(|objects| objects.iter().any(DirectoryObject::is_limited_group))
        {
            limited += 1;
            memberships = Dataset::Unknown {
                reason: LIMITED_GROUPS_REASON.to_owned(),
            };
        }
        let data = PrincipalData {
            app_role_assignments: to_dataset(
                DatasetName::AppRoleAssignments,
                assignments,
                &mut failures,
            ),
            memberships,
        };
        out.insert(id.clone(), data);
    }
    for (dataset, (count, error)) in failures {
        tracing::warn!(%dataset, principals = count, error = %error, "per-principal data could not be collected");
        gaps.push(gap(dataset, count, &error));
    }
    if limited > 0 {
        tracing::warn!(
            principals = limited,
            "group memberships came back with limited information"
        );
        gaps.push(CollectionGap {
            dataset: DatasetName::Memberships,
            principals: limited,
            status: None,
            reason: LIMITED_GROUPS_REASON.to_owned(),
            needs_permission: Some(GROUP_READ_PERMISSION.to_owned()),
            affects_status: true,
            not_applicable: false,
        });
    }
    gaps.sort_by(|a, b| a.dataset.as_str().cmp(b.dataset.as_str()));
    out
}

/// Turns one per-principal result into a data set, counting failures per data set.
fn to_dataset<T>(
    dataset: DatasetName,
    result: Result<Vec<T>, GraphError>,
    failures: &mut HashMap<DatasetName, (usize, GraphError)>,
) -> Dataset<Vec<T>> {
    match result {
        Ok(items) => Dataset::Collected { items },
        Err(e) => {
            let reason = e.to_string();
            failures.entry(dataset).or_insert((0, e)).0 += 1;
            Dataset::Unknown { reason }
        }
    }
}

async fn collect_resources(
    graph: &GraphClient,
    resource_ids: &BTreeSet<String>,
    gaps: &mut Vec<CollectionGap>,
) -> Vec<ResourceServicePrincipal> {
    let ids: Vec<&String> = resource_ids.iter().collect();
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/servicePrincipals/{id}?$select={RESOURCE_SERVICE_PRINCIPAL_SELECT}"))
        .collect();
    let mut resources = Vec::new();
    let mut failed = 0usize;
    let mut last_error = None;
    for result in graph
        .batch_get::<ResourceServicePrincipal>(&paths, BATCH_CONCURRENCY)
        .await
    {
        match result {
            Ok(resource) => resources.push(resource),
            Err(e) => {
                failed += 1;
                last_error = Some(e);
            }
        }
    }
    if let Some(error) = last_error {
        gaps.push(CollectionGap {
            principals: failed,
            ..gap(DatasetName::ResourceAppRoles, failed, &error)
        });
    }
    resources.sort_by(|a, b| a.id.cmp(&b.id));
    resources
}

/// Reads what is needed to assess one managed identity: the identity, its per-principal data,
/// the roles held by it or its groups (filtered by principal), its delegated grants, and the
/// resources it holds roles on. `Ok(None)` when the id is not a managed identity.
pub async fn collect_identity(
    graph: &GraphClient,
    object_id: Uuid,
    settings: AssessmentSettings,
) -> Result<Option<TenantSnapshot>, CollectError> {
    let Some(identity) = fetch_managed_identity(graph, object_id)
        .await
        .map_err(CollectError::graph("the managed identity"))?
    else {
        return Ok(None);
    };
    let (tenant_id, scanner) = whoami(graph).await?;
    let mut gaps = Vec::new();
    let ids = vec![identity.id.clone()];
    // What the identity owns, and the service principals it controls through that.
    let ownership = ownership::owned_by_one(graph, &identity.id, &mut gaps).await;
    let mut data_ids = ids.clone();
    if let Some(owned) = ownership.known() {
        let me: BTreeSet<String> = [identity.id.to_ascii_lowercase()].into();
        data_ids.extend(ownership::controlled_service_principals(owned, &me));
    }
    let principals = collect_principal_data(graph, &data_ids, &mut gaps).await;
    let resource_ids: BTreeSet<String> = principals
        .values()
        .filter_map(|p| p.app_role_assignments.known())
        .flatten()
        .map(|a| a.resource_id.clone())
        .collect();
    let resources = collect_resources(graph, &resource_ids, &mut gaps).await;
    // Roles can be held directly or through any group the identity is in.
    let mut holders = ids.clone();
    if let Some(memberships) = principals
        .get(&identity.id)
        .and_then(|p| p.memberships.known())
    {
        holders.extend(
            memberships
                .iter()
                .filter(|o| o.is_group())
                .map(|g| g.id.clone()),
        );
    }
    let role_definitions = list_dataset(
        graph,
        DatasetName::RoleDefinitions,
        &format!("roleManagement/directory/roleDefinitions?$select={ROLE_DEFINITION_SELECT}"),
        &mut gaps,
    )
    .await;
    let filtered = |collection: &str, select: &str| -> Vec<String> {
        holders
            .iter()
            .map(|h| format!("/roleManagement/directory/{collection}?$filter=principalId eq '{h}'&$select={select}"))
            .collect()
    };
    let role_assignments = batch_dataset(
        graph,
        DatasetName::RoleAssignments,
        &filtered("roleAssignments", ROLE_ASSIGNMENT_SELECT),
        &mut gaps,
    )
    .await;
    let role_eligibility_schedules = batch_dataset(
        graph,
        DatasetName::RoleEligibilitySchedules,
        &filtered("roleEligibilitySchedules", ROLE_SCHEDULE_SELECT),
        &mut gaps,
    )
    .await;
    let role_assignment_schedules = batch_dataset(
        graph,
        DatasetName::RoleAssignmentSchedules,
        &filtered("roleAssignmentSchedules", ROLE_ASSIGNMENT_SCHEDULE_SELECT),
        &mut gaps,
    )
    .await;
    let delegated_grants = list_dataset(
        graph,
        DatasetName::DelegatedGrants,
        &format!(
            "oauth2PermissionGrants?$filter=clientId eq '{}'&$select={OAUTH2_GRANT_SELECT}",
            identity.id
        ),
        &mut gaps,
    )
    .await;
    Ok(Some(TenantSnapshot {
        schema_version: SNAPSHOT_SCHEMA_VERSION.to_owned(),
        tenant_id,
        collected_at: OffsetDateTime::now_utc(),
        graph_endpoint: graph.endpoint().as_str().trim_end_matches('/').to_owned(),
        scanner,
        settings,
        managed_identities: vec![identity],
        credential_service_principals: Dataset::Collected { items: Vec::new() },
        principals,
        resources,
        role_definitions,
        role_assignments,
        role_eligibility_schedules,
        role_assignment_schedules,
        delegated_grants,
        ownership,
        // The single-identity answer reads Graph only; its Azure roles are unknown, not none.
        azure: crate::snapshot::azure::not_collected(
            "the single-identity assessment reads Graph only; Azure roles are assessed in full runs",
        ),
        usage: None,
        gaps,
    }))
}

/// Several filtered lists of one data set, merged; any failure makes the whole set unknown.
async fn batch_dataset<T: serde::de::DeserializeOwned>(
    graph: &GraphClient,
    dataset: DatasetName,
    paths: &[String],
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<T>> {
    let mut items = Vec::new();
    for result in graph.batch_list::<T>(paths, BATCH_CONCURRENCY).await {
        match result {
            Ok(found) => items.extend(found),
            Err(e) => {
                let gap = gap(dataset, 0, &e);
                let data = failed(&gap);
                gaps.push(gap);
                return data;
            }
        }
    }
    Dataset::Collected { items }
}

/// Reads one service principal and returns it only if it is a managed identity.
pub async fn fetch_managed_identity(
    graph: &GraphClient,
    object_id: Uuid,
) -> Result<Option<ServicePrincipal>, GraphError> {
    let path = format!("servicePrincipals/{object_id}?$select={MANAGED_IDENTITY_GET_SELECT}");
    match graph.get::<ServicePrincipal>(&path).await {
        Ok(sp) if sp.is_managed_identity() => Ok(Some(sp)),
        Ok(_) => Ok(None),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a GUID names a tenant's results; it is normalised, and anything else is refused
    /// (shortened in the message).
    #[test]
    fn tenant_ids_that_shape_paths_must_be_guids() {
        assert_eq!(
            tenant_path_id("7F3C2A91-5D4E-4B8F-A1C6-3E9D8B7A6F50").unwrap(),
            "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50"
        );
        for bad in [
            "../../latest",
            "contoso.onmicrosoft.com",
            "",
            "7f3c2a91/5d4e",
        ] {
            assert!(
                matches!(tenant_path_id(bad), Err(CollectError::InvalidTenant(_))),
                "{bad}"
            );
        }
        let long = "x".repeat(100_000);
        let Err(CollectError::InvalidTenant(shown)) = tenant_path_id(&long) else {
            panic!("refused")
        };
        assert_eq!(shown.len(), 64);
    }
}
