//! The usage plane, indexed by service principal: the sign-ins, Graph requests and ARM
//! operations of each identity, built once per snapshot for the usage rules and the identity
//! records.

use std::collections::HashMap;

use crate::snapshot::TenantSnapshot;
use crate::snapshot::usage::{ArmOperationRow, GraphRequestRow, SignInRow, UsageSnapshot};

/// What the workspace said, by lower-case object id.
#[derive(Debug, Default)]
pub struct UsageIndex<'a> {
    /// The usage snapshot.
    pub usage: Option<&'a UsageSnapshot>,
    sign_ins: HashMap<String, Vec<&'a SignInRow>>,
    graph: HashMap<String, Vec<&'a GraphRequestRow>>,
    arm: HashMap<String, Vec<&'a ArmOperationRow>>,
}

impl<'a> UsageIndex<'a> {
    /// Indexes the snapshot's usage; `None` when the plane was off.
    pub fn new(snapshot: &'a TenantSnapshot) -> Option<Self> {
        let usage = snapshot.usage.as_ref()?;
        let mut index = Self {
            usage: Some(usage),
            ..Self::default()
        };
        for row in usage.sign_ins.known().into_iter().flatten() {
            index
                .sign_ins
                .entry(row.service_principal_id.to_ascii_lowercase())
                .or_default()
                .push(row);
        }
        for row in usage.graph_requests.known().into_iter().flatten() {
            index
                .graph
                .entry(row.service_principal_id.to_ascii_lowercase())
                .or_default()
                .push(row);
        }
        for row in usage.arm_operations.known().into_iter().flatten() {
            index
                .arm
                .entry(row.caller.to_ascii_lowercase())
                .or_default()
                .push(row);
        }
        Some(index)
    }

    /// The identity's sign-ins, per resource (empty when none, or when unknown: check the
    /// snapshot's data set).
    pub fn sign_ins(&self, id: &str) -> &[&'a SignInRow] {
        self.sign_ins
            .get(&id.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The identity's Graph requests.
    pub fn graph_requests(&self, id: &str) -> &[&'a GraphRequestRow] {
        self.graph
            .get(&id.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The identity's ARM operations.
    pub fn arm_operations(&self, id: &str) -> &[&'a ArmOperationRow] {
        self.arm
            .get(&id.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}
