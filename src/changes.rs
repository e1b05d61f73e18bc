//! Run-to-run changes: what appeared, disappeared or changed severity since the previous
//! complete run of the same tenant. A pure function of two finding lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rules::{Finding, Severity};

/// Version of the change record format.
pub const CHANGE_SCHEMA_VERSION: &str = "1.0.0";

/// What happened to a finding between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeType {
    /// Present now, absent from the previous complete run (or there was none).
    New,
    /// Present in the previous complete run, absent now.
    Resolved,
    /// Present in both, with a different severity.
    SeverityChanged,
}

/// A finding's state on one side of a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingState {
    /// Severity then.
    pub severity: Severity,
    /// Whether it was suppressed then.
    pub suppressed: bool,
}

/// One line of `changes.ndjson`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Format version of this record.
    pub schema_version: String,
    /// `new`, `resolved` or `severityChanged`.
    pub change_type: ChangeType,
    /// The stable finding id.
    pub finding_id: String,
    /// The rule.
    pub rule_id: String,
    /// The subject's object id.
    pub identity_id: String,
    /// The subject's display name.
    pub identity_name: String,
    /// The finding's title (from the newer side).
    pub title: String,
    /// State in the previous run (`null` for `new`).
    pub before: Option<FindingState>,
    /// State in this run (`null` for `resolved`).
    pub after: Option<FindingState>,
    /// Tenant.
    pub tenant_id: String,
    /// This run.
    pub run_id: Uuid,
    /// When this run collected its data.
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
    /// The previous complete run compared against (`null` on a tenant's first run).
    pub previous_run_id: Option<Uuid>,
    /// When the previous run finished.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_run_at: Option<OffsetDateTime>,
}

/// Counts of each change type, for the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeCounts {
    /// New findings.
    pub new: usize,
    /// Resolved findings.
    pub resolved: usize,
    /// Findings whose severity changed.
    pub severity_changed: usize,
}

/// The run being compared against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline<'a> {
    /// Its run id.
    pub run_id: Uuid,
    /// When it finished.
    pub finished_at: OffsetDateTime,
    /// Its findings.
    pub findings: &'a [Finding],
}

/// This run's identity, for stamping change records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentRun<'a> {
    /// Tenant.
    pub tenant_id: &'a str,
    /// Run id.
    pub run_id: Uuid,
    /// When it collected its data.
    pub detected_at: OffsetDateTime,
}

/// Compares this run's findings with the baseline (`None` on a tenant's first run: everything is
/// new). Sorted by change type, then finding id.
pub fn diff(
    current: &[Finding],
    baseline: Option<Baseline<'_>>,
    run: CurrentRun<'_>,
) -> Vec<Change> {
    let before: BTreeMap<&str, &Finding> = baseline
        .map(|b| {
            b.findings
                .iter()
                .map(|f| (f.finding_id.as_str(), f))
                .collect()
        })
        .unwrap_or_default();
    let after: BTreeMap<&str, &Finding> =
        current.iter().map(|f| (f.finding_id.as_str(), f)).collect();
    let state = |f: &Finding| FindingState {
        severity: f.severity,
        suppressed: f.suppressed,
    };
    let make =
        |change_type, newer: &Finding, before: Option<&Finding>, after: Option<&Finding>| Change {
            schema_version: CHANGE_SCHEMA_VERSION.to_owned(),
            change_type,
            finding_id: newer.finding_id.clone(),
            rule_id: newer.rule_id.clone(),
            identity_id: newer.identity_id.clone(),
            identity_name: newer.identity_name.clone(),
            title: newer.title.clone(),
            before: before.map(state),
            after: after.map(state),
            tenant_id: run.tenant_id.to_owned(),
            run_id: run.run_id,
            detected_at: run.detected_at,
            previous_run_id: baseline.map(|b| b.run_id),
            previous_run_at: baseline.map(|b| b.finished_at),
        };
    let mut changes = Vec::new();
    for (id, now) in &after {
        match before.get(id) {
            None => changes.push(make(ChangeType::New, now, None, Some(now))),
            Some(then) if then.severity != now.severity => changes.push(make(
                ChangeType::SeverityChanged,
                now,
                Some(then),
                Some(now),
            )),
            Some(_) => {}
        }
    }
    for (id, then) in &before {
        if !after.contains_key(id) {
            changes.push(make(ChangeType::Resolved, then, Some(then), None));
        }
    }
    changes.sort_by(|a, b| {
        a.change_type
            .cmp(&b.change_type)
            .then_with(|| a.finding_id.cmp(&b.finding_id))
    });
    changes
}

/// Counts changes by type.
pub fn count(changes: &[Change]) -> ChangeCounts {
    let mut counts = ChangeCounts::default();
    for change in changes {
        match change.change_type {
            ChangeType::New => counts.new += 1,
            ChangeType::Resolved => counts.resolved += 1,
            ChangeType::SeverityChanged => counts.severity_changed += 1,
        }
    }
    counts
}
