//! The one ordering of findings (most severe first, then rule id, subject name and finding id)
//! and of identity records (worst finding first, then finding count, name and id). The
//! assessment, the report and the run's highlights all sort with these.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::IdentityRecord;
use crate::resolve::Subject;
use crate::rules::Finding;

/// Most severe first, then rule id, then subject name, then finding id.
pub fn most_severe_first(a: &Finding, b: &Finding) -> Ordering {
    b.severity
        .cmp(&a.severity)
        .then_with(|| a.rule_id.cmp(&b.rule_id))
        .then_with(|| a.identity_name.cmp(&b.identity_name))
        .then_with(|| a.finding_id.cmp(&b.finding_id))
}

/// Sorts findings by subject id, then [`most_severe_first`].
pub fn sort_by_subject_id(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.identity_id
            .cmp(&b.identity_id)
            .then_with(|| most_severe_first(a, b))
    });
}

/// Groups findings by subject in the order of `subjects`, then [`most_severe_first`].
pub fn sort_by_subject_position(findings: &mut [Finding], subjects: &[Subject<'_>]) {
    let position: HashMap<&str, usize> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id(), i))
        .collect();
    findings.sort_by(|a, b| {
        let pa = position.get(a.identity_id.as_str()).copied();
        let pb = position.get(b.identity_id.as_str()).copied();
        pa.cmp(&pb).then_with(|| most_severe_first(a, b))
    });
}

/// Identity records, worst finding first, then most findings, then display name, then id.
pub fn most_severe_identity_first(a: &IdentityRecord, b: &IdentityRecord) -> Ordering {
    b.highest_severity
        .cmp(&a.highest_severity)
        .then_with(|| b.finding_count.cmp(&a.finding_count))
        .then_with(|| a.display_name.cmp(&b.display_name))
        .then_with(|| a.id.cmp(&b.id))
}
