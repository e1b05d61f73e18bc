//! Assessment: a pure function from a [`TenantSnapshot`] to the records and findings a run
//! publishes. No I/O happens here, so every run can be replayed offline.

use crate::inventory::{IdentityKind, IdentityRecord};
use crate::snapshot::TenantSnapshot;

/// What one assessment produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// One record per managed identity, sorted by object id.
    pub identities: Vec<IdentityRecord>,
}

impl Assessment {
    /// Number of identities of one kind.
    pub fn count_kind(&self, kind: IdentityKind) -> usize {
        self.identities.iter().filter(|i| i.kind == kind).count()
    }
}

/// Assesses a snapshot.
pub fn assess(snapshot: &TenantSnapshot) -> Assessment {
    let mut identities: Vec<IdentityRecord> = snapshot
        .managed_identities
        .iter()
        .map(IdentityRecord::from_service_principal)
        .collect();
    identities.sort_by(|a, b| a.id.cmp(&b.id));
    Assessment { identities }
}
