//! Ownership collection: who owns which application, service principal and group.
//!
//! Bulk, in Graph resource units: the paged lists collection reads anyway (application service
//! principals, applications) and one list of groups carry `$expand=owners($select=…)`. That
//! costs one RU more per page (and Graph serves at most 100 objects per page once `$expand` is
//! used), against one RU per principal for `ownedObjects` in `$batch`. Graph documents that an
//! expanded directory-object relationship "typically returns a maximum of 20 items … and has no
//! @odata.nextLink", so an object with [`EXPAND_LIMIT`] owners or more may be cut: its owners are
//! read again, paged, from `/{collection}/{id}/owners` in `$batch`.
//!
//! Managed identities' own service principals are not expanded: Graph documents that they "can
//! be granted access and permissions, but can't be updated or modified directly", so they carry
//! no owners, and expanding the largest list would multiply its pages by ten.
//!
//! Permissions: owners of applications and service principals need Application.Read.All; groups
//! and their owners GroupMember.Read.All; full user owners (`userType`) Directory.Read.All (with
//! less, Graph returns them with limited information: type and id only).

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use super::{BATCH_CONCURRENCY, gap, list_dataset};
use crate::graph::GraphClient;
use crate::snapshot::graph::{
    APPLICATION_TYPE, Application, DirectoryObject, EXPAND_LIMIT, GROUP_TYPE, OWNER_SELECT,
    SERVICE_PRINCIPAL_TYPE, ServicePrincipal,
};
use crate::snapshot::{CollectionGap, Dataset, DatasetName, OwnedObject, Ownership};

/// `$expand` of owners with the properties that tell owners apart.
pub fn expand_owners() -> String {
    format!("$expand=owners($select={OWNER_SELECT})")
}

/// `$select` for the group list that ownership reads.
pub const GROUP_SELECT: &str = "id,displayName,isAssignableToRole,securityEnabled";

/// The group list with owners expanded. `$top=999` is accepted; Graph serves 100 per page once
/// `$expand` is used.
pub fn group_list_query() -> String {
    format!("groups?$select={GROUP_SELECT}&{}&$top=999", expand_owners())
}

/// One listed object with the owners `$expand` returned (none when it has none).
#[derive(Debug, Deserialize)]
pub(super) struct WithOwners<T> {
    #[serde(flatten)]
    pub(super) item: T,
    #[serde(default)]
    pub(super) owners: Vec<DirectoryObject>,
}

/// A group as the ownership list reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Group {
    id: String,
    display_name: Option<String>,
    is_assignable_to_role: Option<bool>,
    security_enabled: Option<bool>,
}

/// An owned object before its owners are known to be complete.
#[derive(Debug)]
pub(super) struct Candidate {
    /// `applications`, `servicePrincipals` or `groups`.
    collection: &'static str,
    dataset: DatasetName,
    entry: OwnedObject,
}

/// The owned service principals (from the application service principal list).
pub(super) fn service_principal_candidates(
    listed: &[WithOwners<ServicePrincipal>],
) -> Vec<Candidate> {
    listed
        .iter()
        .filter(|l| !l.owners.is_empty())
        .map(|l| Candidate {
            collection: "servicePrincipals",
            dataset: DatasetName::Ownership,
            entry: OwnedObject {
                object: service_principal_object(&l.item),
                owners: l.owners.clone(),
            },
        })
        .collect()
}

/// The owned applications.
pub(super) fn application_candidates(listed: &[WithOwners<Application>]) -> Vec<Candidate> {
    listed
        .iter()
        .filter(|l| !l.owners.is_empty())
        .map(|l| Candidate {
            collection: "applications",
            dataset: DatasetName::Ownership,
            entry: OwnedObject {
                object: DirectoryObject {
                    odata_type: Some(APPLICATION_TYPE.into()),
                    id: l.item.id.clone(),
                    display_name: l.item.display_name.clone(),
                    app_id: l.item.app_id.clone(),
                    ..Default::default()
                },
                owners: l.owners.clone(),
            },
        })
        .collect()
}

/// A service principal as a directory object.
pub(super) fn service_principal_object(sp: &ServicePrincipal) -> DirectoryObject {
    DirectoryObject {
        odata_type: Some(SERVICE_PRINCIPAL_TYPE.into()),
        id: sp.id.clone(),
        display_name: sp.display_name.clone(),
        app_id: sp.app_id.clone(),
        service_principal_type: sp.service_principal_type.clone(),
        ..Default::default()
    }
}

/// Lists every group with its owners; the owned ones become candidates.
pub(super) async fn group_candidates(
    graph: &GraphClient,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Vec<Candidate>> {
    let listed: Dataset<Vec<WithOwners<Group>>> = list_dataset(
        graph,
        DatasetName::GroupOwnership,
        &group_list_query(),
        gaps,
    )
    .await;
    match listed {
        Dataset::Collected { items } => Dataset::Collected {
            items: items
                .into_iter()
                .filter(|l| !l.owners.is_empty())
                .map(|l| Candidate {
                    collection: "groups",
                    dataset: DatasetName::GroupOwnership,
                    entry: OwnedObject {
                        object: DirectoryObject {
                            odata_type: Some(GROUP_TYPE.into()),
                            id: l.item.id,
                            display_name: l.item.display_name,
                            is_assignable_to_role: l.item.is_assignable_to_role,
                            security_enabled: l.item.security_enabled,
                            ..Default::default()
                        },
                        owners: l.owners,
                    },
                })
                .collect(),
        },
        Dataset::Unknown { reason } | Dataset::NotApplicable { reason } => {
            Dataset::Unknown { reason }
        }
    }
}

/// Reads the owners of every candidate whose expanded list may have been cut (at least
/// [`EXPAND_LIMIT`] owners) again, paged, from `/{collection}/{id}/owners`. Any failure makes
/// ownership unknown (a gap names the data set), never a shorter list.
pub(super) async fn complete(
    graph: &GraphClient,
    mut candidates: Vec<Candidate>,
    gaps: &mut Vec<CollectionGap>,
) -> Result<Vec<OwnedObject>, String> {
    let cut: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.entry.owners.len() >= EXPAND_LIMIT)
        .map(|(i, _)| i)
        .collect();
    if !cut.is_empty() {
        let paths: Vec<String> = cut
            .iter()
            .map(|&i| {
                let c = &candidates[i];
                format!(
                    "/{}/{}/owners?$select={OWNER_SELECT}&$top=999",
                    c.collection, c.entry.object.id
                )
            })
            .collect();
        tracing::info!(
            objects = cut.len(),
            "reading owners again where $expand may have cut them"
        );
        let results = graph
            .batch_list::<DirectoryObject>(&paths, BATCH_CONCURRENCY)
            .await;
        let mut failed: Option<(DatasetName, usize, crate::graph::GraphError)> = None;
        for (&i, result) in cut.iter().zip(results) {
            match result {
                Ok(owners) => candidates[i].entry.owners = owners,
                Err(e) => match &mut failed {
                    Some((_, count, _)) => *count += 1,
                    None => failed = Some((candidates[i].dataset, 1, e)),
                },
            }
        }
        if let Some((dataset, count, error)) = failed {
            tracing::warn!(%dataset, objects = count, error = %error, "owners could not be read in full");
            let gap = gap(dataset, 0, &error);
            let reason = format!(
                "the owners of {count} objects with {EXPAND_LIMIT} or more owners could not be read in full: {}",
                gap.reason
            );
            gaps.push(CollectionGap {
                reason: reason.clone(),
                ..gap
            });
            return Err(reason);
        }
    }
    let mut owned: Vec<OwnedObject> = candidates
        .into_iter()
        .map(|c| c.entry)
        .filter(|e| !e.owners.is_empty())
        .collect();
    owned.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    Ok(owned)
}

/// The application service principals by lower-case `appId`, as directory objects.
pub(super) fn by_app_id(
    listed: &[WithOwners<ServicePrincipal>],
) -> HashMap<String, DirectoryObject> {
    listed
        .iter()
        .filter_map(|l| {
            l.item
                .app_id
                .as_ref()
                .map(|a| (a.to_ascii_lowercase(), service_principal_object(&l.item)))
        })
        .collect()
}

/// Puts ownership together: the owned objects, and the service principal of every owned
/// application (by `appId`, from the application service principal list).
pub(super) fn assemble(
    owned: Vec<OwnedObject>,
    service_principals: &HashMap<String, DirectoryObject>,
) -> Ownership {
    let mut application_service_principals: Vec<DirectoryObject> = owned
        .iter()
        .filter(|o| o.object.is_application())
        .filter_map(|o| o.object.app_id.as_ref())
        .filter_map(|a| service_principals.get(&a.to_ascii_lowercase()))
        .cloned()
        .collect();
    application_service_principals.sort_by(|a, b| a.id.cmp(&b.id));
    application_service_principals.dedup_by(|a, b| a.id == b.id);
    Ownership {
        owned,
        application_service_principals,
    }
}

/// The service principals a collected principal controls through ownership: those it owns, and
/// those of the applications it owns. Their per-principal data is read too, so what an owner
/// can become is known.
pub(super) fn controlled_service_principals(
    ownership: &Ownership,
    collected: &BTreeSet<String>,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for entry in &ownership.owned {
        let owned_by_collected = entry
            .owners
            .iter()
            .any(|o| collected.contains(&o.id.to_ascii_lowercase()));
        if !owned_by_collected {
            continue;
        }
        if entry.object.is_service_principal() {
            out.insert(entry.object.id.clone());
        } else if entry.object.is_application()
            && let Some(sp) = entry
                .object
                .app_id
                .as_deref()
                .and_then(|a| ownership.service_principal_of_app(a))
        {
            out.insert(sp.id.clone());
        }
    }
    out.into_iter()
        .filter(|id| !collected.contains(&id.to_ascii_lowercase()))
        .collect()
}

/// The `$select` of `ownedObjects`: what tells the owned types apart.
const OWNED_SELECT: &str =
    "id,displayName,appId,servicePrincipalType,isAssignableToRole,securityEnabled";

/// The single-identity snapshot's ownership: what one principal owns
/// (`/servicePrincipals/{id}/ownedObjects`, Application.Read.All), each owned application,
/// service principal and group with all its owners, and the service principals of the owned
/// applications. Unknown (with a gap) when any of it could not be read.
pub(super) async fn owned_by_one(
    graph: &GraphClient,
    principal_id: &str,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<Ownership> {
    let owned: Dataset<Vec<DirectoryObject>> = list_dataset(
        graph,
        DatasetName::Ownership,
        &format!("servicePrincipals/{principal_id}/ownedObjects?$select={OWNED_SELECT}&$top=999"),
        gaps,
    )
    .await;
    let owned = match owned {
        Dataset::Collected { items } => items,
        Dataset::Unknown { reason } | Dataset::NotApplicable { reason } => {
            return Dataset::Unknown { reason };
        }
    };
    let collection = |o: &DirectoryObject| {
        if o.is_application() {
            Some(("applications", DatasetName::Ownership))
        } else if o.is_service_principal() {
            Some(("servicePrincipals", DatasetName::Ownership))
        } else if o.is_group() {
            Some(("groups", DatasetName::GroupOwnership))
        } else {
            None
        }
    };
    // Every owner list is read in full: mark each candidate as possibly cut.
    let candidates: Vec<Candidate> = owned
        .iter()
        .filter_map(|o| {
            collection(o).map(|(collection, dataset)| Candidate {
                collection,
                dataset,
                entry: OwnedObject {
                    object: o.clone(),
                    owners: Vec::new(),
                },
            })
        })
        .collect();
    let paths: Vec<String> = candidates
        .iter()
        .map(|c| {
            format!(
                "/{}/{}/owners?$select={OWNER_SELECT}&$top=999",
                c.collection, c.entry.object.id
            )
        })
        .collect();
    let mut entries = Vec::new();
    for (candidate, result) in candidates.into_iter().zip(
        graph
            .batch_list::<DirectoryObject>(&paths, BATCH_CONCURRENCY)
            .await,
    ) {
        match result {
            Ok(owners) => entries.push(OwnedObject {
                owners,
                ..candidate.entry
            }),
            Err(e) => {
                let gap = gap(candidate.dataset, 1, &e);
                let reason = gap.reason.clone();
                gaps.push(gap);
                return Dataset::Unknown { reason };
            }
        }
    }
    // The owned applications' service principals, by appId (404: none in this tenant).
    let app_ids: Vec<String> = entries
        .iter()
        .filter(|e| e.object.is_application())
        .filter_map(|e| e.object.app_id.clone())
        .collect();
    let sp_paths: Vec<String> = app_ids
        .iter()
        .map(|a| {
            format!(
                "/servicePrincipals(appId='{a}')?$select=id,appId,displayName,servicePrincipalType"
            )
        })
        .collect();
    let mut service_principals = HashMap::new();
    for (app_id, result) in app_ids.iter().zip(
        graph
            .batch_get::<ServicePrincipal>(&sp_paths, BATCH_CONCURRENCY)
            .await,
    ) {
        match result {
            Ok(sp) => {
                service_principals
                    .insert(app_id.to_ascii_lowercase(), service_principal_object(&sp));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                let gap = gap(DatasetName::Ownership, 1, &e);
                let reason = gap.reason.clone();
                gaps.push(gap);
                return Dataset::Unknown { reason };
            }
        }
    }
    let mut owned: Vec<OwnedObject> = entries
        .into_iter()
        .filter(|e| !e.owners.is_empty())
        .collect();
    owned.sort_by(|a, b| a.object.id.cmp(&b.object.id));
    Dataset::Collected {
        items: assemble(owned, &service_principals),
    }
}
