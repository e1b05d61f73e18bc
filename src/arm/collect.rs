//! Azure-plane collection: the Resource Graph queries, the PIM eligibilities of every readable
//! subscription, the federated credentials of every user-assigned identity, and an Entra
//! existence check for role-assignment principals, read into the snapshot's [`AzureSnapshot`].
//! All I/O of the Azure plane lives here.
//!
//! Permission model: **Reader (Azure RBAC) at management-group scope** and nothing more (Reader
//! covers Resource Graph, role assignments and definitions, and
//! `…/federatedIdentityCredentials/read`). The existence check of role-assignment principals,
//! and what each one is, are Graph calls (`crate::collect::principals`: `POST
//! /directoryObjects/getByIds`, Directory.Read.All).
//!
//! Without ARM access (401 or 403 on the first query, no token for the ARM scope, or no readable
//! subscription) the run goes on with the Graph assessment: the Azure data set is unknown, and
//! one gap names the Azure plane with the Reader permission. That gap makes the run `partial`
//! only when the plane is `required` ([`AzurePlaneMode`]): ARM access was configured, so its
//! absence is a fault. An `optional` plane is best effort: when the first query fails for any
//! other reason (ARM unreachable), it is skipped the same way, after one retry. Any failure once
//! access is established is a real gap and always counts.
//!
//! Past Resource Graph's subscription limit (10,000 per query, said by
//! [`SUBSCRIPTION_LIMIT_HEADER`] on the probe), every query runs on batches of subscriptions in
//! turn ([`Coverage::Batches`]), from the full list of `GET /subscriptions`. When that list
//! cannot be read, or a batch still hits the limit, the run is partial and says why.
//!
//! Two data sets are read on their own, so that losing one leaves the rest of the plane known:
//! the deployment storage accounts (a Resource Graph join, `queries::STORAGE_ACCOUNTS`) and the
//! PIM eligibilities. A tenant without the Entra ID P2 (or Governance) licence answers the PIM
//! read with 400 `AadPremiumLicenseRequired`: the eligibilities are not applicable
//! ([`Dataset::NotApplicable`]) and the gap says why, but it does **not** make the run partial. Without the licence PIM for Azure resources
//! is unavailable, so no eligibility can be activated and nothing the assessment could act on
//! is missing; counting it would make every run of an unlicensed tenant partial, for ever,
//! which would hide real gaps and trip `partial`-based gates. Any other failure of the PIM read
//! (403, 5xx after retries, a malformed page) is a real gap and counts.

use std::collections::BTreeSet;

use super::{
    ArmClient, ArmError, AzurePlane, Coverage, FederatedCredentialListing,
    SUBSCRIPTION_LIMIT_HEADER, queries,
};
use crate::config::{AZURE_PLANE_VAR, AzurePlaneMode};
use crate::graph::GraphClient;
use crate::snapshot::azure::{
    AzureSnapshot, EligibleRoleAssignmentRow, FederatedCredentialsResult,
    IdentityFederatedCredentials, PrincipalLookup, StorageAccountRow, SubscriptionRow,
};
use crate::snapshot::{AZURE_PERMISSION, CollectionGap, Dataset, DatasetName};

/// Ids per `directoryObjects/getByIds` request (Graph's limit).
pub const GET_BY_IDS_LIMIT: usize = 1000;
/// Federated-credential lists in flight at once (the client also paces them per second and
/// subscription).
const CREDENTIAL_CONCURRENCY: usize = 8;
/// PIM eligibility lists (one per subscription) in flight at once.
const ELIGIBILITY_CONCURRENCY: usize = 4;
/// Retries of the access probe when the plane is optional (best effort: skip quickly).
const OPTIONAL_PROBE_RETRIES: u32 = 1;

/// Reads the Azure plane. `known_principals` are the (lower-case) object ids collection already
/// read from Graph: managed identities and credential-bearing service principals, whose
/// existence needs no check. Failures become gaps; the result is never an error of the run.
pub async fn collect_azure(
    plane: &AzurePlane,
    graph: &GraphClient,
    known_principals: &BTreeSet<String>,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<AzureSnapshot> {
    let Some(arm) = plane.client() else {
        let reason = format!(
            "the Azure plane is turned off ({AZURE_PLANE_VAR}=off): Azure RBAC, user-assigned identities and federated credentials were not assessed"
        );
        tracing::info!("{reason}");
        gaps.push(CollectionGap {
            dataset: DatasetName::Azure,
            principals: 0,
            status: None,
            reason: reason.clone(),
            needs_permission: None,
            affects_status: false,
            not_applicable: false,
        });
        return Dataset::Unknown { reason };
    };
    let required = plane.mode() == AzurePlaneMode::Required;

    // 1. Subscriptions: the access probe. An optional plane is best effort: the probe retries
    // once, and any failure (no access, or ARM unreachable) skips the plane without making the
    // run partial.
    let probe = if required {
        arm.clone()
    } else {
        arm.with_retry(crate::http::RetryPolicy {
            max_retries: OPTIONAL_PROBE_RETRIES,
            ..crate::http::RetryPolicy::default()
        })
    };
    let subscriptions = match probe
        .resource_graph_rows(queries::SUBSCRIPTIONS, &Coverage::Tenant)
        .await
    {
        Ok(rows) if rows.is_empty() => {
            return no_access(
                gaps,
                required,
                None,
                "the scanner can read no Azure subscription (Resource Graph returned none)".into(),
                true,
            );
        }
        Ok(rows) => rows,
        Err(e) if e.is_access_denied() => {
            return no_access(
                gaps,
                required,
                e.status(),
                format!("no access to Azure Resource Manager: {e}"),
                true,
            );
        }
        Err(e) if !required => {
            return no_access(
                gaps,
                false,
                e.status(),
                format!("Azure Resource Manager could not be read: {e}"),
                false,
            );
        }
        Err(e) => return failed(gaps, DatasetName::AzureSubscriptions, &e),
    };

    // 2. Past the subscription limit, every query runs on batches of subscriptions in turn.
    let (coverage, subscriptions, mut uncovered) = match coverage(arm, subscriptions).await {
        Ok(covered) => covered,
        Err(e) => return failed(gaps, DatasetName::AzureSubscriptions, &e),
    };

    // 3. One query per data set.
    let role_assignments = match arm
        .resource_graph_rows(queries::ROLE_ASSIGNMENTS, &coverage)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::AzureRoleAssignments, &e),
    };
    let role_definitions = match arm
        .resource_graph_rows(queries::ROLE_DEFINITIONS, &coverage)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::AzureRoleDefinitions, &e),
    };
    let user_assigned_identities: Vec<crate::snapshot::azure::UserAssignedIdentityRow> = match arm
        .resource_graph_rows(queries::USER_ASSIGNED_IDENTITIES, &coverage)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::UserAssignedIdentities, &e),
    };
    let identity_resources = match arm
        .resource_graph_rows(queries::IDENTITY_RESOURCES, &coverage)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::IdentityResources, &e),
    };
    let storage_accounts = collect_storage_accounts(arm, &coverage, gaps).await;
    let eligible_role_assignments = collect_eligibility(arm, &subscriptions, gaps).await;
    tracing::info!(
        subscriptions = subscriptions.len(),
        role_assignments = role_assignments.len(),
        user_assigned_identities = user_assigned_identities.len(),
        identity_resources = identity_resources.len(),
        eligible_role_assignments = eligible_role_assignments.known().map(Vec::len),
        "collected the Azure plane"
    );

    // 4. Federated credentials, per user-assigned identity.
    let identity_ids: Vec<String> = user_assigned_identities
        .iter()
        .map(|u| u.id.clone())
        .collect();
    let federated_credentials = collect_federated_credentials(arm, &identity_ids, gaps).await;
    let issuer_storage_accounts =
        collect_issuer_storage_accounts(arm, &coverage, &federated_credentials, gaps).await;

    let mut snapshot = AzureSnapshot {
        arm_endpoint: arm.endpoint().as_str().trim_end_matches('/').to_owned(),
        subscriptions,
        role_assignments,
        role_definitions,
        user_assigned_identities,
        identity_resources,
        storage_accounts,
        eligible_role_assignments,
        federated_credentials,
        issuer_storage_accounts,
        principal_lookup: Dataset::default(),
    };

    // 5. Do the principals of role assignments still exist in Entra?
    snapshot.principal_lookup = lookup_principals(graph, &snapshot, known_principals, gaps).await;
    if uncovered.is_none() && coverage == Coverage::Tenant && arm.subscription_limit_hit() {
        uncovered = Some(format!(
            "a tenant-scope query answered {SUBSCRIPTION_LIMIT_HEADER}: true after the subscription list had answered without it, so the queries were not batched"
        ));
    }
    let over = arm.batches_over_limit();
    if uncovered.is_none() && over > 0 {
        uncovered = Some(format!(
            "{over} queries on a batch of at most {} subscriptions still answered {SUBSCRIPTION_LIMIT_HEADER}: true",
            arm.subscription_batch()
        ));
    }
    if let Some(why) = uncovered {
        gaps.push(subscription_limit_gap(snapshot.subscriptions.len(), &why));
    }
    Dataset::Collected { items: snapshot }
}

/// The coverage of the run's queries, given the probe's rows: tenant scope while Resource Graph
/// covers every subscription; otherwise batches of the subscriptions `GET /subscriptions`
/// lists, with the subscription rows read again over them. The third value is why some
/// subscriptions stay uncovered (the list could not be read), if any; an error is a failure of
/// the batched subscription query itself.
async fn coverage(
    arm: &ArmClient,
    probed: Vec<SubscriptionRow>,
) -> Result<(Coverage, Vec<SubscriptionRow>, Option<String>), ArmError> {
    if !arm.subscription_limit_hit() {
        return Ok((Coverage::Tenant, probed, None));
    }
    let ids = match arm.subscription_ids().await {
        Ok(ids) => ids,
        Err(e) => {
            let why = format!(
                "the full subscription list (GET /subscriptions) could not be read to query in batches: {e}"
            );
            return Ok((Coverage::Tenant, probed, Some(why)));
        }
    };
    let coverage = Coverage::batches_of(&ids, arm.subscription_batch());
    let batches = ids.len().div_ceil(arm.subscription_batch());
    tracing::info!(
        listed = ids.len(),
        first_query = probed.len(),
        batches,
        "Resource Graph hit its subscription limit; querying the subscriptions in batches"
    );
    let subscriptions = arm
        .resource_graph_rows(queries::SUBSCRIPTIONS, &coverage)
        .await?;
    Ok((coverage, subscriptions, None))
}

/// The gap when Resource Graph covered only the first 10,000 subscriptions and batching could
/// not cover the rest (`why`): the run is partial, whatever the Azure-plane mode, because data
/// the scanner may read was not read.
fn subscription_limit_gap(subscriptions: usize, why: &str) -> CollectionGap {
    let reason = format!(
        "Resource Graph answered {SUBSCRIPTION_LIMIT_HEADER}: true: the scanner can read more subscriptions than one query covers (the first 10,000), and {why}; {subscriptions} subscriptions were assessed and the rest may not have been. Give the scanner Microsoft.Resources/subscriptions/read on every subscription (Reader at the root management group does), or scope its Reader assignment to management groups of at most 10,000 subscriptions each and run one deployment per group"
    );
    tracing::warn!(
        subscriptions,
        why,
        "Resource Graph hit its subscription limit"
    );
    CollectionGap {
        dataset: DatasetName::AzureSubscriptions,
        principals: 0,
        status: None,
        reason,
        needs_permission: None,
        affects_status: true,
        not_applicable: false,
    }
}

fn no_access(
    gaps: &mut Vec<CollectionGap>,
    required: bool,
    status: Option<u16>,
    reason: String,
    permission: bool,
) -> Dataset<AzureSnapshot> {
    let reason = if required {
        reason
    } else {
        format!(
            "{reason}; the run stays complete because {AZURE_PLANE_VAR} is optional (set it to required once the Reader assignment is deployed)"
        )
    };
    tracing::warn!(required, "{reason}");
    gaps.push(CollectionGap {
        dataset: DatasetName::Azure,
        principals: 0,
        status,
        reason: reason.clone(),
        needs_permission: permission.then(|| AZURE_PERMISSION.into()),
        affects_status: required,
        not_applicable: false,
    });
    Dataset::Unknown { reason }
}

fn failed(
    gaps: &mut Vec<CollectionGap>,
    dataset: DatasetName,
    error: &ArmError,
) -> Dataset<AzureSnapshot> {
    let reason = format!("{dataset} could not be read, so the Azure plane is unknown: {error}");
    tracing::warn!(%dataset, error = %error, "Azure-plane collection failed");
    gaps.push(CollectionGap {
        dataset,
        principals: 0,
        status: error.status(),
        reason: reason.clone(),
        needs_permission: error
            .is_access_denied()
            .then(|| AZURE_PERMISSION.to_owned()),
        affects_status: true,
        not_applicable: false,
    });
    Dataset::Unknown { reason }
}

/// The deployment storage accounts; a failure is a gap of this data set alone.
async fn collect_storage_accounts(
    arm: &ArmClient,
    coverage: &Coverage,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<StorageAccountRow>> {
    storage_accounts(
        arm,
        coverage,
        queries::STORAGE_ACCOUNTS,
        "the storage accounts of function apps' deployment storage",
        gaps,
    )
    .await
}

/// The rows of a storage-account query; a failure is a gap of the storage accounts alone,
/// saying which accounts (`what`) could not be read.
async fn storage_accounts(
    arm: &ArmClient,
    coverage: &Coverage,
    query: &str,
    what: &str,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<StorageAccountRow>> {
    match arm.resource_graph_rows(query, coverage).await {
        Ok(rows) => Dataset::Collected { items: rows },
        Err(e) => {
            let reason = format!("{what} could not be read: {e}");
            tracing::warn!(error = %e, "{what} could not be read");
            gaps.push(CollectionGap {
                dataset: DatasetName::StorageAccounts,
                principals: 0,
                status: e.status(),
                reason: reason.clone(),
                needs_permission: e.is_access_denied().then(|| AZURE_PERMISSION.to_owned()),
                affects_status: true,
                not_applicable: false,
            });
            Dataset::Unknown { reason }
        }
    }
}

/// The storage accounts inside the tenant that Blob-hosted federated-credential issuers name,
/// in one Resource Graph query (none when no issuer is hosted there).
async fn collect_issuer_storage_accounts(
    arm: &ArmClient,
    coverage: &Coverage,
    credentials: &[IdentityFederatedCredentials],
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<StorageAccountRow>> {
    let names: BTreeSet<String> = credentials
        .iter()
        .filter_map(|c| c.result.known())
        .flatten()
        .filter_map(|c| crate::snapshot::azure::issuer_storage_account(&c.issuer))
        .collect();
    if names.is_empty() {
        return Dataset::Collected { items: Vec::new() };
    }
    let names: Vec<String> = names.into_iter().collect();
    storage_accounts(
        arm,
        coverage,
        &queries::issuer_storage_accounts(&names),
        "the storage accounts of Blob-hosted federated-credential issuers",
        gaps,
    )
    .await
}

/// The PIM eligibilities of every readable subscription (each list holds those at, above and
/// below it), one list per subscription, duplicates (management-group and root eligibilities
/// come back from every subscription under them) merged by id. The first subscription is read
/// alone: an unlicensed tenant answers it with `AadPremiumLicenseRequired`, and the others are
/// not asked.
pub async fn collect_eligibility(
    arm: &ArmClient,
    subscriptions: &[SubscriptionRow],
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<EligibleRoleAssignmentRow>> {
    use futures::StreamExt as _;
    let ids: Vec<String> = subscriptions
        .iter()
        .map(|s| s.subscription_id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .collect();
    let Some((first, rest)) = ids.split_first() else {
        return Dataset::Collected { items: Vec::new() };
    };
    let first_result = arm.eligible_role_assignments(first).await;
    let licence_missing = matches!(&first_result, Err(e) if e.is_licence_required());
    let mut results = vec![(first.clone(), first_result)];
    if !licence_missing {
        let rest: Vec<(String, Result<Vec<EligibleRoleAssignmentRow>, ArmError>)> =
            futures::stream::iter(rest.to_vec())
                .map(|id| async move {
                    let result = arm.eligible_role_assignments(&id).await;
                    (id, result)
                })
                .buffered(ELIGIBILITY_CONCURRENCY)
                .collect()
                .await;
        results.extend(rest);
    }
    let mut rows: Vec<EligibleRoleAssignmentRow> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut failures: Vec<(String, ArmError)> = Vec::new();
    for (subscription, result) in results {
        match result {
            Ok(page) => {
                for row in page {
                    if seen.insert(row.id.to_ascii_lowercase()) {
                        rows.push(row);
                    }
                }
            }
            Err(e) => failures.push((subscription, e)),
        }
    }
    if failures.is_empty() {
        return Dataset::Collected { items: rows };
    }
    let licence = failures.iter().all(|(_, e)| e.is_licence_required());
    let (subscription, error) = &failures[0];
    let reason = if licence {
        format!(
            "Azure PIM eligibility was not read: the tenant has no Microsoft Entra ID P2 (or Governance) licence, so PIM for Azure resources is unavailable and no role can be activated ({error}); the run is not partial for it"
        )
    } else {
        format!(
            "Azure PIM eligibility could not be read in {} of {} subscriptions (first: {subscription}): {error}",
            failures.len(),
            ids.len()
        )
    };
    tracing::warn!(licence, failures = failures.len(), error = %error, "Azure PIM eligibility not collected");
    gaps.push(CollectionGap {
        dataset: DatasetName::AzureEligibleRoleAssignments,
        principals: 0,
        status: error.status(),
        reason: reason.clone(),
        needs_permission: error
            .is_access_denied()
            .then(|| AZURE_PERMISSION.to_owned()),
        affects_status: !licence,
        not_applicable: licence,
    });
    if licence {
        Dataset::NotApplicable { reason }
    } else {
        Dataset::Unknown { reason }
    }
}

async fn collect_federated_credentials(
    arm: &ArmClient,
    identity_ids: &[String],
    gaps: &mut Vec<CollectionGap>,
) -> Vec<IdentityFederatedCredentials> {
    use futures::StreamExt as _;
    // Pacing is per subscription: take the subscriptions in turn, so the lists in flight are
    // paced by different gates, then put the answers back in collection order.
    let order = interleave_by_subscription(identity_ids);
    let mut answered: Vec<(usize, String, Result<FederatedCredentialListing, ArmError>)> =
        futures::stream::iter(order)
            .map(|i| {
                let id = identity_ids[i].clone();
                async move {
                    let result = arm.federated_credentials(&id).await;
                    (i, id, result)
                }
            })
            .buffered(CREDENTIAL_CONCURRENCY)
            .collect()
            .await;
    answered.sort_by_key(|(i, ..)| *i);
    let results: Vec<(String, Result<FederatedCredentialListing, ArmError>)> = answered
        .into_iter()
        .map(|(_, id, result)| (id, result))
        .collect();
    let mut failures = 0usize;
    let mut last_error: Option<ArmError> = None;
    let out = results
        .into_iter()
        .map(|(identity_id, result)| {
            let result = match result {
                Ok(FederatedCredentialListing::Listed(credentials)) => {
                    FederatedCredentialsResult::Listed { credentials }
                }
                Ok(FederatedCredentialListing::Unavailable { status, reason }) => {
                    tracing::info!(identity = %identity_id, status, "federated credentials unavailable for this identity");
                    FederatedCredentialsResult::Unavailable {
                        http_status: status,
                        reason,
                    }
                }
                Err(e) => {
                    failures += 1;
                    let failed = FederatedCredentialsResult::Failed {
                        http_status: e.status(),
                        reason: e.to_string(),
                    };
                    last_error = Some(e);
                    failed
                }
            };
            IdentityFederatedCredentials {
                identity_id,
                result,
            }
        })
        .collect();
    if let Some(error) = last_error {
        tracing::warn!(identities = failures, error = %error, "federated credentials could not be listed");
        gaps.push(CollectionGap {
            dataset: DatasetName::FederatedIdentityCredentials,
            principals: failures,
            status: error.status(),
            reason: error.to_string(),
            needs_permission: error
                .is_access_denied()
                .then(|| AZURE_PERMISSION.to_owned()),
            affects_status: true,
            not_applicable: false,
        });
    }
    out
}

/// Indexes of `ids` taking their subscriptions in turn: the first identity of each
/// subscription, then the second of each, and so on (subscriptions in order of appearance).
fn interleave_by_subscription(ids: &[String]) -> Vec<usize> {
    let mut queues: Vec<(String, std::collections::VecDeque<usize>)> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let subscription = crate::resolve::ArmResourceId::parse(id)
            .and_then(|r| r.subscription_id)
            .unwrap_or_default()
            .to_ascii_lowercase();
        match queues.iter_mut().find(|(s, _)| *s == subscription) {
            Some((_, queue)) => queue.push_back(i),
            None => queues.push((subscription, std::collections::VecDeque::from([i]))),
        }
    }
    let mut out = Vec::with_capacity(ids.len());
    while out.len() < ids.len() {
        for (_, queue) in &mut queues {
            if let Some(i) = queue.pop_front() {
                out.push(i);
            }
        }
    }
    out
}

/// Role-assignment principals to a service principal (or of unknown type) that collection did
/// not read already: their existence is unknown until Graph is asked.
pub fn principals_to_check(
    snapshot: &AzureSnapshot,
    known_principals: &BTreeSet<String>,
) -> Vec<String> {
    let ids: BTreeSet<String> = snapshot
        .role_assignments
        .iter()
        .filter(|a| {
            matches!(
                a.principal_type
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                None | Some("" | "serviceprincipal" | "unknown")
            )
        })
        .map(|a| a.principal_id.trim().to_ascii_lowercase())
        .filter(|id| uuid::Uuid::parse_str(id).is_ok() && !known_principals.contains(id))
        .collect();
    ids.into_iter().collect()
}

async fn lookup_principals(
    graph: &GraphClient,
    snapshot: &AzureSnapshot,
    known_principals: &BTreeSet<String>,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<PrincipalLookup> {
    let checked = principals_to_check(snapshot, known_principals);
    let resolved = crate::collect::principals::principals_to_resolve(
        &snapshot.role_assignments,
        &checked,
        known_principals,
    );
    crate::collect::principals::lookup(graph, checked, resolved, gaps).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenSource;
    use crate::http::RetryPolicy;
    use crate::simulator::{RunningSimulator, SimTenant};
    use crate::snapshot::azure::RoleAssignmentRow;
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    fn quick() -> RetryPolicy {
        RetryPolicy {
            max_retries: 4,
            max_throttled_retries: 4,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(1),
        }
    }

    /// Graph and ARM clients against a simulator, the way `cli.rs` builds them.
    fn clients(sim: &RunningSimulator, mode: AzurePlaneMode) -> (GraphClient, AzurePlane) {
        let credential = Arc::new(sim.credential());
        let base = sim.graph_endpoint().as_str().trim_end_matches('/');
        let graph = GraphClient::new(
            sim.graph_endpoint().clone(),
            TokenSource::new(credential.clone(), format!("{base}/.default")),
            quick(),
        )
        .expect("graph client");
        let arm = ArmClient::new(
            sim.arm_endpoint().clone(),
            TokenSource::new(credential, format!("{base}/.default")),
            quick(),
        )
        .expect("arm client");
        (graph, AzurePlane::new(mode, arm))
    }

    /// The demo's managed identities and credential-bearing service principals.
    fn demo_known() -> BTreeSet<String> {
        SimTenant::demo()
            .expect("demo")
            .service_principals
            .iter()
            .filter(|sp| {
                sp["servicePrincipalType"] == "ManagedIdentity"
                    || sp["displayName"] == "hr-export-connector"
                    || sp["displayName"] == "legacy-directory-sync"
            })
            .filter_map(|sp| sp["id"].as_str().map(str::to_ascii_lowercase))
            .collect()
    }

    #[tokio::test]
    async fn collects_every_page_through_throttling_and_404_405() {
        let mut tenant = SimTenant::demo().expect("demo");
        tenant.arm.page_size = Some(2);
        tenant.arm.throttle_first = 2;
        let gone = tenant.arm.user_assigned_identities[1]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        tenant
            .arm
            .federated_credential_status
            .insert(gone.clone(), 404);
        let expected_assignments = tenant.arm.role_assignments.len();
        let sim = RunningSimulator::start(tenant).await.expect("simulator");
        let (graph, plane) = clients(&sim, AzurePlaneMode::Required);
        let mut gaps = Vec::new();
        let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
        assert!(gaps.is_empty(), "{gaps:?}");
        let azure = azure.known().expect("collected");
        assert_eq!(azure.role_assignments.len(), expected_assignments);
        assert_eq!(azure.user_assigned_identities.len(), 5);
        assert_eq!(azure.subscriptions.len(), 4);
        // Two-row pages: every query is paged with $skipToken.
        let log = sim.arm_request_log();
        assert!(
            log.iter()
                .filter(|l| l.starts_with("resourceGraph ") && !l.ends_with(" -"))
                .count()
                >= 10,
            "{log:?}"
        );
        let stats = plane.client().expect("client").stats().snapshot();
        assert_eq!(
            stats.throttled, 2,
            "the first two queries were throttled and retried"
        );
        // The GitHub identity's three credentials come in two pages (nextLink followed).
        let github = azure
            .federated_credentials
            .iter()
            .find(|f| f.identity_id.ends_with("/id-github-deploy"))
            .expect("listed");
        assert_eq!(github.result.known().map(<[_]>::len), Some(3));
        let statuses: Vec<Option<u16>> = azure
            .federated_credentials
            .iter()
            .map(|f| match &f.result {
                FederatedCredentialsResult::Unavailable { http_status, .. } => Some(*http_status),
                _ => None,
            })
            .collect();
        assert!(
            statuses.contains(&Some(404)) && statuses.contains(&Some(405)),
            "{statuses:?}"
        );
        // Three unknown service principals were looked up in one request; two are not in the
        // directory: one is gone, the other belongs to the tenant that delegated its
        // subscription (the assessment calls it foreign, see deleted_principals).
        let lookup = azure.principal_lookup.known().expect("looked up");
        assert_eq!(lookup.checked.len(), 3);
        assert!(lookup.is_deleted("e5f0a1b2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"));
        assert!(!lookup.is_deleted("5f7c0bd6-0d67-4b8d-9a53-000000000005"));
        assert_eq!(sim.get_by_ids_requests(), 1);
    }

    /// An eligibility instance as ARM returns it.
    fn eligibility(name: &str, scope: &str, principal: &str, role: &str) -> serde_json::Value {
        serde_json::json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/{name}"),
            "name": name,
            "type": "Microsoft.Authorization/roleEligibilityScheduleInstances",
            "properties": {
                "scope": scope,
                "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                "principalId": principal,
                "principalType": "User",
                "status": "Provisioned",
                "memberType": "Direct",
                "startDateTime": "2025-01-01T00:00:00Z",
                "condition": ""
            }
        })
    }

    #[tokio::test]
    async fn deployment_storage_and_pim_eligibility_are_collected() {
        let mut tenant = SimTenant::demo().expect("demo");
        tenant.arm.page_size = Some(2);
        let sub = "2b9e6c41-8f3a-4d7e-b5c2-9a1f0e8d7c63";
        let user = "a7b8c9d0-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
        let owner = crate::resolve::azure::OWNER;
        tenant.arm.eligible_role_assignments = vec![
            // Under the root management group: every subscription's list returns it.
            eligibility(
                "e-root",
                "/providers/Microsoft.Management/managementGroups/mg-contoso-root",
                user,
                owner,
            ),
            eligibility("e-sub", &format!("/subscriptions/{sub}"), user, owner),
            eligibility(
                "e-rg-1",
                &format!("/subscriptions/{sub}/resourceGroups/rg-payroll"),
                user,
                owner,
            ),
            eligibility(
                "e-rg-2",
                &format!("/subscriptions/{sub}/resourceGroups/rg-crm"),
                user,
                owner,
            ),
            // Under no readable subscription: no list returns it.
            eligibility(
                "e-elsewhere",
                "/providers/Microsoft.Management/managementGroups/mg-other",
                user,
                owner,
            ),
        ];
        let sim = RunningSimulator::start(tenant).await.expect("simulator");
        let (graph, plane) = clients(&sim, AzurePlaneMode::Required);
        let mut gaps = Vec::new();
        let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
        assert!(gaps.is_empty(), "{gaps:?}");
        let azure = azure.known().expect("collected");
        let accounts = azure.storage_accounts.known().expect("storage accounts");
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].name, "stmiassessdeploy");
        let app = azure
            .identity_resources
            .iter()
            .find(|r| r.name.as_deref() == Some("func-mi-assess"))
            .expect("the scanner's app");
        assert_eq!(
            app.deployment_storage.as_deref(),
            Some("https://stmiassessdeploy.blob.core.windows.net/app-package-mi-assess")
        );
        let eligible = azure
            .eligible_role_assignments
            .known()
            .expect("eligibility");
        let mut names: Vec<&str> = eligible
            .iter()
            .filter_map(|e| e.id.rsplit('/').next())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["e-rg-1", "e-rg-2", "e-root", "e-sub"],
            "merged across subscriptions, nothing outside them"
        );
        // One list per subscription, the finance one in two pages of two.
        let lists: Vec<String> = sim
            .arm_request_log()
            .into_iter()
            .filter(|l| l.ends_with("/roleEligibilityScheduleInstances"))
            .collect();
        assert_eq!(lists.len(), 4 + 1, "{lists:?}");
        let index =
            crate::resolve::azure::AzureIndex::new(azure, "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50");
        let storage = index
            .deployment_storage(&app.id)
            .expect("deployment storage");
        assert_eq!(storage.storage_account_id, Some(accounts[0].id.as_str()));
        assert_eq!(storage.container, "app-package-mi-assess");
        assert_eq!(index.eligible_assignments_of(user).len(), 4);
    }

    /// Resource Graph's subscription cap is said only in a header: a run that met it is
    /// partial with the reason, whatever the Azure-plane mode; one that did not has no gap.
    /// A run of the demo's Azure plane with Resource Graph's subscription limit at `limit` and
    /// `batch` subscriptions per batch query: the snapshot, its gaps and the ARM request log.
    async fn capped_run(
        limit: Option<usize>,
        batch: usize,
        list_status: Option<u16>,
    ) -> (AzureSnapshot, Vec<CollectionGap>, Vec<String>) {
        let mut tenant = SimTenant::demo().expect("demo");
        tenant.arm.subscription_limit = limit;
        tenant.arm.subscription_list_status = list_status;
        tenant.arm.page_size = Some(2);
        let sim = RunningSimulator::start(tenant).await.expect("simulator");
        let (graph, plane) = clients(&sim, AzurePlaneMode::Optional);
        let plane = AzurePlane::new(
            plane.mode(),
            plane
                .client()
                .expect("client")
                .clone()
                .with_subscription_batch(batch),
        );
        let mut gaps = Vec::new();
        let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
        let azure = azure.known().expect("what was read is kept").clone();
        (azure, gaps, sim.arm_request_log())
    }

    /// Every list of the snapshot as a set of its rows' JSON: the data, whatever the order.
    fn rows_by_id(azure: &AzureSnapshot) -> BTreeMap<String, BTreeSet<String>> {
        let json = serde_json::to_value(azure).expect("serialises");
        json.as_object()
            .expect("an object")
            .iter()
            .filter_map(|(key, value)| {
                let rows = value.get("items").unwrap_or(value).as_array()?;
                Some((key.clone(), rows.iter().map(|r| r.to_string()).collect()))
            })
            .collect()
    }

    #[tokio::test]
    async fn past_the_subscription_limit_every_subscription_is_queried_in_batches() {
        let (whole, gaps, _) = capped_run(None, 1000, None).await;
        assert!(gaps.is_empty(), "{gaps:?}");
        assert_eq!(whole.subscriptions.len(), 4);
        // The demo's 4 subscriptions, 2 per query at most, in batches of 2: nothing is lost.
        let (batched, gaps, log) = capped_run(Some(2), 2, None).await;
        assert!(gaps.is_empty(), "every subscription is covered: {gaps:?}");
        assert_eq!(rows_by_id(&batched), rows_by_id(&whole));
        assert_eq!(
            batched.role_assignments.len(),
            whole.role_assignments.len(),
            "merged by id, no duplicates"
        );
        assert!(
            log.iter().any(|l| l == "/subscriptions"),
            "the full list was read: {log:?}"
        );
        // The tenant-scope query alone misses rows of the last two subscriptions.
        let tenant_only = log
            .iter()
            .filter(|l| l.starts_with("resourceGraph authorizationresources"))
            .count();
        assert!(tenant_only > 2, "role queries ran per batch too: {log:?}");
    }

    #[tokio::test]
    async fn the_subscription_limit_makes_the_run_partial_when_batches_cannot_cover_it() {
        // The full list cannot be read: what the first query covered is kept, and the run is
        // partial with the reason.
        let (azure, gaps, _) = capped_run(Some(2), 2, Some(500)).await;
        assert_eq!(azure.subscriptions.len(), 2, "the first 2 only");
        let capped: Vec<&CollectionGap> = gaps
            .iter()
            .filter(|g| g.reason.contains(SUBSCRIPTION_LIMIT_HEADER))
            .collect();
        assert_eq!(capped.len(), 1, "{gaps:?}");
        assert_eq!(capped[0].dataset, DatasetName::AzureSubscriptions);
        assert!(
            capped[0].affects_status,
            "an optional plane still saw only part"
        );
        assert!(
            capped[0].reason.contains("GET /subscriptions")
                && capped[0].reason.contains("2 subscriptions were assessed"),
            "{}",
            capped[0].reason
        );
        // A batch larger than the limit still hits it: partial, saying so.
        let (azure, gaps, _) = capped_run(Some(2), 3, None).await;
        assert_eq!(
            azure.subscriptions.len(),
            3,
            "two of the first batch's three, and the last"
        );
        let capped: Vec<&CollectionGap> = gaps
            .iter()
            .filter(|g| g.reason.contains(SUBSCRIPTION_LIMIT_HEADER))
            .collect();
        assert_eq!(capped.len(), 1, "{gaps:?}");
        assert!(
            capped[0]
                .reason
                .contains("on a batch of at most 3 subscriptions"),
            "{}",
            capped[0].reason
        );
    }

    #[tokio::test]
    async fn an_unlicensed_tenant_leaves_eligibility_not_applicable_without_making_the_run_partial()
    {
        for (status, affects, permission) in
            [(400, false, false), (403, true, true), (503, true, false)]
        {
            let mut tenant = SimTenant::demo().expect("demo");
            tenant.arm.eligibility_status = Some(status);
            let sim = RunningSimulator::start(tenant).await.expect("simulator");
            let (graph, plane) = clients(&sim, AzurePlaneMode::Required);
            let mut gaps = Vec::new();
            let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
            let azure = azure.known().expect("the rest of the plane is known");
            assert_eq!(
                azure.eligible_role_assignments.is_not_applicable(),
                status == 400,
                "{status}"
            );
            assert_eq!(
                azure.eligible_role_assignments.is_unknown(),
                status != 400,
                "{status}"
            );
            assert!(azure.storage_accounts.known().is_some());
            assert_eq!(gaps.len(), 1, "{status}: {gaps:?}");
            let gap = &gaps[0];
            assert_eq!(gap.dataset, DatasetName::AzureEligibleRoleAssignments);
            assert_eq!(gap.status, Some(status));
            assert_eq!(gap.affects_status, affects, "{status}");
            assert_eq!(gap.not_applicable, status == 400, "{status}");
            assert_eq!(gap.needs_permission.is_some(), permission, "{status}");
            let lists = sim
                .arm_request_log()
                .iter()
                .filter(|l| l.ends_with("/roleEligibilityScheduleInstances"))
                .count();
            if status == 400 {
                assert!(gap.reason.contains("P2"), "{}", gap.reason);
                assert_eq!(lists, 1, "an unlicensed tenant is asked once");
            } else {
                assert!(
                    gap.reason.contains("4 of 4 subscriptions"),
                    "{}",
                    gap.reason
                );
            }
        }
    }

    #[tokio::test]
    async fn a_failed_storage_account_query_is_a_gap_of_its_own() {
        let mut tenant = SimTenant::demo().expect("demo");
        tenant.arm.rejected_queries = vec![queries::STORAGE_ACCOUNTS.to_owned()];
        let sim = RunningSimulator::start(tenant).await.expect("simulator");
        let (graph, plane) = clients(&sim, AzurePlaneMode::Optional);
        let mut gaps = Vec::new();
        let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
        let azure = azure.known().expect("the rest of the plane is known");
        assert!(azure.storage_accounts.is_unknown());
        assert!(!azure.identity_resources.is_empty());
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].dataset, DatasetName::StorageAccounts);
        assert_eq!(gaps[0].status, Some(400));
        assert!(
            gaps[0].affects_status,
            "a failure once access is established counts"
        );
    }

    #[tokio::test]
    async fn a_next_link_to_another_origin_is_refused_and_recorded_per_identity() {
        let mut tenant = SimTenant::demo().expect("demo");
        tenant.arm.page_size = Some(2);
        let sim = RunningSimulator::start(tenant).await.expect("simulator");
        sim.set_faults(crate::simulator::FaultPlan {
            next_link_origin: Some(url::Url::parse("http://127.0.0.1:9").expect("url")),
            ..Default::default()
        });
        let (graph, plane) = clients(&sim, AzurePlaneMode::Required);
        let mut gaps = Vec::new();
        let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
        let azure = azure.known().expect("the rest is collected");
        let github = azure
            .federated_credentials
            .iter()
            .find(|f| f.identity_id.ends_with("/id-github-deploy"))
            .expect("listed");
        assert!(
            matches!(&github.result, FederatedCredentialsResult::Failed { reason, .. } if reason.contains("refusing to follow nextLink")),
            "{:?}",
            github.result
        );
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].dataset, "federatedIdentityCredentials");
        assert_eq!(gaps[0].principals, 1);
        assert!(gaps[0].affects_status);
    }

    #[tokio::test]
    async fn without_access_the_plane_is_unknown_and_the_mode_decides_the_status() {
        let mut tenant = SimTenant::demo().expect("demo");
        tenant.arm.denied = true;
        let sim = RunningSimulator::start(tenant).await.expect("simulator");
        for (mode, affects) in [
            (AzurePlaneMode::Optional, false),
            (AzurePlaneMode::Required, true),
        ] {
            let (graph, plane) = clients(&sim, mode);
            let mut gaps = Vec::new();
            let azure = collect_azure(&plane, &graph, &demo_known(), &mut gaps).await;
            assert!(azure.is_unknown());
            assert_eq!(gaps.len(), 1, "{gaps:?}");
            assert_eq!(gaps[0].dataset, DatasetName::Azure);
            assert_eq!(gaps[0].status, Some(403));
            assert_eq!(gaps[0].needs_permission.as_deref(), Some(AZURE_PERMISSION));
            assert_eq!(gaps[0].affects_status, affects, "{mode:?}");
        }
        // Off: no ARM request at all, an informational gap.
        let before = sim.arm_requests();
        let (graph, _) = clients(&sim, AzurePlaneMode::Off);
        let mut gaps = Vec::new();
        let azure = collect_azure(&AzurePlane::off(), &graph, &demo_known(), &mut gaps).await;
        assert!(azure.is_unknown());
        assert!(!gaps[0].affects_status && gaps[0].needs_permission.is_none());
        assert_eq!(sim.arm_requests(), before);
    }

    #[tokio::test]
    async fn an_unreachable_arm_skips_an_optional_plane_quickly_and_fails_a_required_one() {
        let sim = RunningSimulator::start(SimTenant::demo().expect("demo"))
            .await
            .expect("simulator");
        let credential = Arc::new(sim.credential());
        let base = sim.graph_endpoint().as_str().trim_end_matches('/');
        let (graph, _) = clients(&sim, AzurePlaneMode::Optional);
        // Nothing listens on port 9.
        let dead = ArmClient::new(
            url::Url::parse("http://127.0.0.1:9").expect("url"),
            TokenSource::new(credential, format!("{base}/.default")),
            quick(),
        )
        .expect("arm client");
        for (mode, affects) in [
            (AzurePlaneMode::Optional, false),
            (AzurePlaneMode::Required, true),
        ] {
            let plane = AzurePlane::new(mode, dead.clone());
            let mut gaps = Vec::new();
            let started = std::time::Instant::now();
            assert!(
                collect_azure(&plane, &graph, &demo_known(), &mut gaps)
                    .await
                    .is_unknown()
            );
            assert_eq!(gaps.len(), 1, "{gaps:?}");
            assert_eq!(gaps[0].affects_status, affects, "{mode:?}");
            assert!(
                gaps[0].needs_permission.is_none(),
                "not a permission problem"
            );
            if mode == AzurePlaneMode::Optional {
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "{:?}",
                    started.elapsed()
                );
            }
        }
    }

    #[tokio::test]
    async fn a_tenant_with_no_readable_subscription_counts_as_no_access() {
        let sim = RunningSimulator::start(SimTenant::generated(3, 1))
            .await
            .expect("simulator");
        let (graph, plane) = clients(&sim, AzurePlaneMode::Optional);
        let mut gaps = Vec::new();
        assert!(
            collect_azure(&plane, &graph, &BTreeSet::new(), &mut gaps)
                .await
                .is_unknown()
        );
        assert_eq!(gaps.len(), 1);
        assert!(!gaps[0].affects_status);
        assert!(
            gaps[0].reason.contains("no Azure subscription"),
            "{}",
            gaps[0].reason
        );
    }

    #[test]
    fn credential_lists_take_the_subscriptions_in_turn() {
        let id = |s: &str, n: usize| {
            format!(
                "/subscriptions/{s}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u{n}"
            )
        };
        let ids = vec![
            id("a", 0),
            id("a", 1),
            id("a", 2),
            id("B", 3),
            id("b", 4),
            id("c", 5),
        ];
        assert_eq!(interleave_by_subscription(&ids), [0, 3, 5, 1, 4, 2]);
        assert!(interleave_by_subscription(&[]).is_empty());
    }

    #[test]
    fn only_unknown_service_principals_are_checked() {
        let row = |id: &str, kind: Option<&str>| RoleAssignmentRow {
            id: format!("ra-{id}"),
            principal_id: id.into(),
            principal_type: kind.map(str::to_owned),
            ..Default::default()
        };
        let snapshot = AzureSnapshot {
            role_assignments: vec![
                row(
                    "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01",
                    Some("ServicePrincipal"),
                ),
                row(
                    "0B1E6F7A-2C3D-4E5F-8A9B-1C2D3E4F5A02",
                    Some("ServicePrincipal"),
                ),
                row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a02", Some("Unknown")),
                row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a03", Some("User")),
                row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a04", Some("Group")),
                row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a05", None),
                row("not-a-guid", Some("ServicePrincipal")),
            ],
            ..Default::default()
        };
        let known: BTreeSet<String> = ["0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01".to_owned()].into();
        assert_eq!(
            principals_to_check(&snapshot, &known),
            vec![
                "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a02".to_owned(),
                "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a05".to_owned()
            ]
        );
    }
}
