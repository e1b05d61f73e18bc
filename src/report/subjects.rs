//! The subjects of a report: each principal findings are about, with its findings, and the
//! order subjects are listed in.

use std::collections::BTreeMap;

use crate::assess::IdentityRecord;
use crate::assess::order::{self, SubjectRank};
use crate::classification::Tier;
use crate::model::Severity;
use crate::model::SubjectKind;
use crate::rules::Finding;

/// A principal the report lists, with its findings.
pub(super) struct Subject<'a> {
    /// The identity record, for managed identities in `identities.ndjson`.
    pub(super) record: Option<&'a IdentityRecord>,
    /// Object id.
    pub(super) id: &'a str,
    /// Display name.
    pub(super) name: &'a str,
    /// Kind of principal.
    pub(super) kind: SubjectKind,
    /// Tier, from the record or the findings.
    pub(super) tier: Option<Tier>,
    /// Its findings, most severe first.
    pub(super) findings: Vec<&'a Finding>,
}

impl Subject<'_> {
    /// The most severe of its findings.
    pub(super) fn highest(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Pairs findings with identity records; findings about anything else (credential-bearing
/// service principals, or an identity missing from the list) become subjects of their own.
/// Returns the identities first, then the others, each sorted most severe first.
pub(super) fn group_subjects<'a>(
    identities: &'a [IdentityRecord],
    findings: &'a [Finding],
) -> Vec<Subject<'a>> {
    let mut by_id: BTreeMap<String, Vec<&'a Finding>> = BTreeMap::new();
    for finding in findings {
        by_id
            .entry(finding.identity_id.to_ascii_lowercase())
            .or_default()
            .push(finding);
    }
    let mut subjects: Vec<Subject<'a>> = Vec::with_capacity(identities.len());
    for record in identities {
        let findings = by_id
            .remove(&record.id.to_ascii_lowercase())
            .unwrap_or_default();
        subjects.push(Subject {
            record: Some(record),
            id: &record.id,
            name: record.display_name.as_deref().unwrap_or(""),
            kind: record.kind.into(),
            tier: record.tier,
            findings,
        });
    }
    let mut others: Vec<Subject<'a>> = by_id
        .into_values()
        .filter_map(|findings| {
            let first = *findings.first()?;
            Some(Subject {
                record: None,
                id: &first.identity_id,
                name: &first.identity_name,
                kind: first.identity_kind,
                tier: findings.iter().filter_map(|f| f.tier).max(),
                findings,
            })
        })
        .collect();
    for subject in subjects.iter_mut().chain(others.iter_mut()) {
        subject
            .findings
            .sort_by(|a, b| order::most_severe_first(a, b));
    }
    subjects.sort_by_cached_key(rank);
    others.sort_by_cached_key(rank);
    subjects.extend(others);
    subjects
}

/// The order subjects are listed in ([`order::SubjectRank`]). [`Selection`](super::Selection)
/// keeps the first [`MAX_SUBJECTS`](super::MAX_SUBJECTS) in this order.
pub(super) fn rank(s: &Subject<'_>) -> SubjectRank {
    SubjectRank::new(s.highest(), s.findings.len(), s.tier, s.name, s.id)
}
