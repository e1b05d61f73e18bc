//! Azure-plane collection: the Resource Graph queries, the federated credentials of every
//! user-assigned identity, and an Entra existence check for role-assignment principals, read
//! into the snapshot's [`AzureSnapshot`]. All I/O of the Azure plane lives here.
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

use std::collections::BTreeSet;

use super::{ArmClient, ArmError, AzurePlane, FederatedCredentialListing, queries};
use crate::config::{AZURE_PLANE_VAR, AzurePlaneMode};
use crate::graph::GraphClient;
use crate::snapshot::azure::{
    AzureSnapshot, FederatedCredentialsResult, IdentityFederatedCredentials, PrincipalLookup,
};
use crate::snapshot::{AZURE_PERMISSION, CollectionGap, Dataset, DatasetName};

/// Ids per `directoryObjects/getByIds` request (Graph's limit).
pub const GET_BY_IDS_LIMIT: usize = 1000;
/// Federated-credential lists in flight at once (the client also paces them per second).
const CREDENTIAL_CONCURRENCY: usize = 4;
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
    let subscriptions = match probe.resource_graph_rows(queries::SUBSCRIPTIONS).await {
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

    // 2. One query per data set.
    let role_assignments = match arm.resource_graph_rows(queries::ROLE_ASSIGNMENTS).await {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::AzureRoleAssignments, &e),
    };
    let role_definitions = match arm.resource_graph_rows(queries::ROLE_DEFINITIONS).await {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::AzureRoleDefinitions, &e),
    };
    let user_assigned_identities: Vec<crate::snapshot::azure::UserAssignedIdentityRow> = match arm
        .resource_graph_rows(queries::USER_ASSIGNED_IDENTITIES)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::UserAssignedIdentities, &e),
    };
    let identity_resources = match arm.resource_graph_rows(queries::IDENTITY_RESOURCES).await {
        Ok(rows) => rows,
        Err(e) => return failed(gaps, DatasetName::IdentityResources, &e),
    };
    tracing::info!(
        subscriptions = subscriptions.len(),
        role_assignments = role_assignments.len(),
        user_assigned_identities = user_assigned_identities.len(),
        "collected the Azure plane"
    );

    // 3. Federated credentials, per user-assigned identity.
    let identity_ids: Vec<String> = user_assigned_identities
        .iter()
        .map(|u| u.id.clone())
        .collect();
    let federated_credentials = collect_federated_credentials(arm, &identity_ids, gaps).await;

    let mut snapshot = AzureSnapshot {
        arm_endpoint: arm.endpoint().as_str().trim_end_matches('/').to_owned(),
        subscriptions,
        role_assignments,
        role_definitions,
        user_assigned_identities,
        identity_resources,
        federated_credentials,
        principal_lookup: Dataset::default(),
    };

    // 4. Do the principals of role assignments still exist in Entra?
    snapshot.principal_lookup = lookup_principals(graph, &snapshot, known_principals, gaps).await;
    Dataset::Collected { items: snapshot }
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
    });
    Dataset::Unknown { reason }
}

async fn collect_federated_credentials(
    arm: &ArmClient,
    identity_ids: &[String],
    gaps: &mut Vec<CollectionGap>,
) -> Vec<IdentityFederatedCredentials> {
    use futures::StreamExt as _;
    let results: Vec<(String, Result<FederatedCredentialListing, ArmError>)> =
        futures::stream::iter(identity_ids.iter().cloned())
            .map(|id| async move {
                let result = arm.federated_credentials(&id).await;
                (id, result)
            })
            .buffered(CREDENTIAL_CONCURRENCY)
            .collect()
            .await;
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
        });
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
        assert_eq!(azure.subscriptions.len(), 3);
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
        // Two unknown service principals were looked up in one request; one is gone.
        let lookup = azure.principal_lookup.known().expect("looked up");
        assert_eq!(lookup.checked.len(), 2);
        assert!(lookup.is_deleted("e5f0a1b2-3c4d-4e5f-8a6b-7c8d9e0f1a2b"));
        assert!(!lookup.is_deleted("5f7c0bd6-0d67-4b8d-9a53-000000000005"));
        assert_eq!(sim.get_by_ids_requests(), 1);
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
