//! The principals of Azure role assignments, resolved in bulk through
//! `POST /directoryObjects/getByIds` (Directory.Read.All; up to 1,000 ids a request; 2 RU with
//! `$select`, 5 without): users (with `userType`, so guests are known), groups, service
//! principals (with `servicePrincipalType` and `appId`), and which of them no longer exist.
//!
//! No `types` is sent, so every directory object type is searched and an id Graph does not
//! return really is gone. Only the ids of assignments to a service principal or an unknown
//! principal type are *checked* for existence (what MI-ORPH-003 reads, unchanged); users,
//! groups, foreign groups and devices are *resolved* for their name and type only, and one Graph
//! does not return stays unknown.
//!
//! The groups among them hold Azure roles, so their transitive member count says how many
//! principals those roles reach: `GET /groups/{id}/transitiveMembers?$count=true&$top=1&$select=id`
//! with `ConsistencyLevel: eventual` (an advanced query: `$count` on directory objects needs the
//! header), in `$batch`. `transitiveMembers` costs 5 RU, less one for `$select` and one for
//! `$top` under 20: 3 RU per group, for those groups only.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::BATCH_CONCURRENCY;
use crate::arm::collect::GET_BY_IDS_LIMIT;
use crate::graph::GraphClient;
use crate::snapshot::azure::{PrincipalLookup, RoleAssignmentRow};
use crate::snapshot::graph::DirectoryObject;
use crate::snapshot::{CollectionGap, Dataset, DatasetName};

/// `$select` of `getByIds`: what tells the principal types apart, as each type has it.
pub const PRINCIPAL_SELECT: &str =
    "id,displayName,userType,appId,servicePrincipalType,isAssignableToRole,securityEnabled";

/// The header `$count` on directory objects needs.
pub const EVENTUAL: (&str, &str) = ("ConsistencyLevel", "eventual");

#[derive(Debug, Deserialize)]
struct ObjectsPage {
    value: Vec<DirectoryObject>,
}

#[derive(Debug, Deserialize)]
struct CountPage {
    #[serde(rename = "@odata.count")]
    count: Option<u64>,
}

/// Principal ids of role assignments that are resolved for their name and type but never
/// called deleted: every valid GUID of an assignment to a user, group, foreign group or device
/// that is neither known nor in `checked`.
pub fn principals_to_resolve(
    assignments: &[RoleAssignmentRow],
    checked: &[String],
    known_principals: &BTreeSet<String>,
) -> Vec<String> {
    let checked: BTreeSet<&str> = checked.iter().map(String::as_str).collect();
    let ids: BTreeSet<String> = assignments
        .iter()
        .map(|a| a.principal_id.trim().to_ascii_lowercase())
        .filter(|id| {
            uuid::Uuid::parse_str(id).is_ok()
                && !known_principals.contains(id)
                && !checked.contains(id.as_str())
        })
        .collect();
    ids.into_iter().collect()
}

/// Looks up `checked` (existence) and `resolved` (name and type) in `getByIds`, then counts the
/// members of the groups among them. A failed lookup makes the whole data set unknown (never
/// "deleted"); a failed count only leaves that group uncounted, with a gap.
pub async fn lookup(
    graph: &GraphClient,
    checked: Vec<String>,
    resolved: Vec<String>,
    gaps: &mut Vec<CollectionGap>,
) -> Dataset<PrincipalLookup> {
    let all: Vec<&String> = checked.iter().chain(resolved.iter()).collect();
    let mut found = Vec::new();
    for chunk in all.chunks(GET_BY_IDS_LIMIT) {
        let body = serde_json::json!({ "ids": chunk });
        match graph
            .post::<ObjectsPage>(
                &format!("directoryObjects/getByIds?$select={PRINCIPAL_SELECT}"),
                &body,
            )
            .await
        {
            Ok(page) => found.extend(page.value),
            Err(e) => {
                let status = e.status();
                tracing::warn!(error = %e, "role-assignment principals could not be looked up");
                let reason = format!(
                    "whether the principals of {} Azure role assignments still exist, and what they are, could not be checked: {e}",
                    all.len()
                );
                gaps.push(CollectionGap {
                    dataset: DatasetName::DirectoryObjects,
                    principals: all.len(),
                    status,
                    reason: reason.clone(),
                    needs_permission: matches!(status, Some(401 | 403))
                        .then(|| DatasetName::DirectoryObjects.permission().to_owned()),
                    affects_status: true,
                    not_applicable: false,
                });
                return Dataset::Unknown { reason };
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let group_member_counts = count_members(graph, &found, gaps).await;
    Dataset::Collected {
        items: PrincipalLookup {
            checked,
            found,
            resolved,
            group_member_counts,
        },
    }
}

/// The transitive member counts of the groups among `found`.
async fn count_members(
    graph: &GraphClient,
    found: &[DirectoryObject],
    gaps: &mut Vec<CollectionGap>,
) -> BTreeMap<String, u64> {
    let groups: Vec<String> = found
        .iter()
        .filter(|o| o.is_group())
        .map(|g| g.id.to_ascii_lowercase())
        .collect();
    let paths: Vec<String> = groups
        .iter()
        .map(|id| format!("/groups/{id}/transitiveMembers?$count=true&$top=1&$select=id"))
        .collect();
    let mut counts = BTreeMap::new();
    let mut failed = 0usize;
    let mut last_error = None;
    for (id, result) in groups.into_iter().zip(
        graph
            .batch_get_with::<CountPage>(&paths, &[EVENTUAL], BATCH_CONCURRENCY)
            .await,
    ) {
        match result {
            Ok(CountPage { count: Some(n) }) => {
                counts.insert(id, n);
            }
            Ok(CountPage { count: None }) => {
                failed += 1;
                last_error = Some(format!("Graph returned no @odata.count for group {id}"));
            }
            Err(e) => {
                failed += 1;
                last_error = Some(e.to_string());
                if matches!(e.status(), Some(401 | 403)) {
                    last_error = Some(format!("{e} (needs GroupMember.Read.All)"));
                }
            }
        }
    }
    if let Some(error) = last_error {
        tracing::warn!(groups = failed, %error, "member counts of groups holding Azure roles could not be read");
        gaps.push(CollectionGap {
            dataset: DatasetName::GroupMemberCounts,
            principals: failed,
            status: None,
            reason: format!(
                "the member counts of {failed} groups holding Azure roles could not be read: {error}"
            ),
            needs_permission: error
                .contains("needs GroupMember.Read.All")
                .then(|| DatasetName::GroupMemberCounts.permission().to_owned()),
            affects_status: true,
            not_applicable: false,
        });
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_principal_is_resolved_once() {
        let row = |id: &str, kind: &str| RoleAssignmentRow {
            principal_id: id.into(),
            principal_type: Some(kind.into()),
            ..Default::default()
        };
        let assignments = vec![
            row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01", "User"),
            row("0B1E6F7A-2C3D-4E5F-8A9B-1C2D3E4F5A01", "User"),
            row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a02", "Group"),
            row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a03", "ForeignGroup"),
            row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a04", "ServicePrincipal"),
            row("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a05", "ServicePrincipal"),
            row("not-a-guid", "User"),
        ];
        let checked = vec!["0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a04".to_owned()];
        let known: BTreeSet<String> = ["0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a05".to_owned()].into();
        assert_eq!(
            principals_to_resolve(&assignments, &checked, &known),
            vec![
                "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01".to_owned(),
                "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a02".to_owned(),
                "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a03".to_owned(),
            ]
        );
    }

    /// Only checked ids are ever deleted: a resolved user or group Graph did not return stays
    /// unknown (MI-ORPH-003 reads `is_deleted`).
    #[test]
    fn only_checked_principals_can_be_deleted() {
        let lookup = PrincipalLookup {
            checked: vec!["0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a04".into()],
            resolved: vec!["0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01".into()],
            ..Default::default()
        };
        assert!(lookup.is_deleted("0B1E6F7A-2C3D-4E5F-8A9B-1C2D3E4F5A04"));
        assert!(!lookup.is_deleted("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01"));
        assert!(
            lookup
                .object("0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01")
                .is_none()
        );
    }
}
