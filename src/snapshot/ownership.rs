//! Ownership as the snapshot stores it: every application, service principal and group that has
//! at least one owner, with its owners (users, service principals, managed identities). The
//! resolve layer builds "owns" edges from it in both directions: what a managed identity or a
//! credential-bearing service principal owns, and who owns a privileged object.
//!
//! An owned application leads to the identity it runs as through its `appId`:
//! [`Ownership::application_service_principals`] carries the service principal of every owned
//! application (by `appId`), and collection reads the per-principal data (app roles,
//! memberships) of the service principals a collected principal owns or controls through an
//! application, so their privilege is known. Raw data only: what ownership means lives in
//! `crate::resolve`.

use serde::{Deserialize, Serialize};

use super::Dataset;
use super::graph::DirectoryObject;

/// Who owns what in the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Ownership {
    /// Every owned object with at least one owner (objects without owners are left out).
    pub owned: Vec<OwnedObject>,
    /// The service principal (in this tenant) of every owned application, matched by `appId`:
    /// `@odata.type`, `id`, `displayName`, `appId`, `servicePrincipalType`. An owned
    /// application whose `appId` has no entry here has no service principal in this tenant.
    pub application_service_principals: Vec<DirectoryObject>,
}

/// One owned object and its owners.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OwnedObject {
    /// The owned application, service principal or group: `@odata.type`, `id`, `displayName`,
    /// `appId` (applications and service principals), `servicePrincipalType` (service
    /// principals), `isAssignableToRole` and `securityEnabled` (groups).
    pub object: DirectoryObject,
    /// Its owners: `@odata.type`, `id`, `displayName`, `appId` and `servicePrincipalType`
    /// (service principals), `userType` (users). Complete: a list Graph may have cut is read
    /// again in full.
    pub owners: Vec<DirectoryObject>,
}

impl Ownership {
    /// The owned objects one principal owns (case-insensitive id).
    pub fn owned_by<'a>(&'a self, owner_id: &'a str) -> impl Iterator<Item = &'a OwnedObject> {
        self.owned.iter().filter(move |o| {
            o.owners
                .iter()
                .any(|owner| owner.id.eq_ignore_ascii_case(owner_id))
        })
    }

    /// The owners of one object (case-insensitive id); empty when it has none.
    pub fn owners_of(&self, object_id: &str) -> &[DirectoryObject] {
        self.owned
            .iter()
            .find(|o| o.object.id.eq_ignore_ascii_case(object_id))
            .map(|o| o.owners.as_slice())
            .unwrap_or_default()
    }

    /// The service principal of an application, by the application's `appId`.
    pub fn service_principal_of_app(&self, app_id: &str) -> Option<&DirectoryObject> {
        self.application_service_principals.iter().find(|sp| {
            sp.app_id
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(app_id))
        })
    }
}

/// Serde default of `TenantSnapshot::ownership`: snapshots written before ownership existed.
pub fn not_recorded() -> Dataset<Ownership> {
    Dataset::Unknown {
        reason: "this snapshot carries no ownership data".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::TenantSnapshot;

    /// A snapshot written before ownership existed reads as unknown, never as "nobody owns
    /// anything".
    #[test]
    fn old_snapshots_have_unknown_ownership() {
        let old = serde_json::json!({
            "schemaVersion": "1.0.0",
            "tenantId": "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50",
            "collectedAt": "2026-01-01T00:00:00Z",
            "graphEndpoint": "https://graph.microsoft.com",
            "scanner": {},
            "managedIdentities": [],
        });
        let snapshot: TenantSnapshot = serde_json::from_value(old).expect("old snapshot");
        assert_eq!(
            snapshot.ownership,
            Dataset::Unknown {
                reason: "this snapshot carries no ownership data".into()
            }
        );
    }

    #[test]
    fn lookups_ignore_id_case() {
        let owner = DirectoryObject {
            odata_type: Some(crate::snapshot::graph::SERVICE_PRINCIPAL_TYPE.into()),
            id: "AAAA".into(),
            ..Default::default()
        };
        let ownership = Ownership {
            owned: vec![OwnedObject {
                object: DirectoryObject {
                    id: "bbbb".into(),
                    app_id: Some("cccc".into()),
                    ..Default::default()
                },
                owners: vec![owner],
            }],
            application_service_principals: vec![DirectoryObject {
                id: "dddd".into(),
                app_id: Some("CCCC".into()),
                ..Default::default()
            }],
        };
        assert_eq!(ownership.owned_by("aaaa").count(), 1);
        assert_eq!(ownership.owners_of("BBBB").len(), 1);
        assert!(ownership.owners_of("eeee").is_empty());
        assert_eq!(
            ownership
                .service_principal_of_app("cccc")
                .map(|s| s.id.as_str()),
            Some("dddd")
        );
    }
}
