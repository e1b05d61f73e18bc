//! Directory role assignments and PIM schedules indexed by principal.

use std::collections::HashMap;

use super::by_lowercase_id;
use crate::model::RoleState;
use crate::snapshot::graph::RoleAssignment;
use crate::snapshot::{Dataset, TenantSnapshot};

/// Directory role assignments and schedules indexed by principal.
#[derive(Debug, Default)]
pub(super) struct RoleIndex<'a> {
    pub(super) active: Option<HashMap<String, Vec<&'a RoleAssignment>>>,
    pub(super) eligible: Option<HashMap<String, Vec<&'a RoleAssignment>>>,
}

impl<'a> RoleIndex<'a> {
    pub(super) fn new(snapshot: &'a TenantSnapshot) -> Self {
        let index = |data: &'a Dataset<Vec<RoleAssignment>>| {
            data.known()
                .map(|items| by_lowercase_id(items, |a| &a.principal_id))
        };
        Self {
            active: index(&snapshot.role_assignments),
            eligible: index(&snapshot.role_eligibility_schedules),
        }
    }

    /// True when a principal (a group) holds any role, active or eligible.
    pub(super) fn holds_role(&self, principal_id: &str) -> Vec<(RoleState, &'a RoleAssignment)> {
        let key = principal_id.to_ascii_lowercase();
        let mut out = Vec::new();
        for (state, map) in [
            (RoleState::Active, &self.active),
            (RoleState::Eligible, &self.eligible),
        ] {
            if let Some(found) = map.as_ref().and_then(|m| m.get(&key)) {
                out.extend(found.iter().map(|a| (state, *a)));
            }
        }
        out
    }
}
