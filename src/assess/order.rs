//! The one ordering of findings (most severe first, then rule id, subject name and finding id)
//! and of subjects ([`SubjectRank`]: worst finding first, then finding count, tier, name, id). The
//! assessment, the report and the run's highlights all sort with these.

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;

use super::IdentityRecord;
use crate::classification::Tier;
use crate::model::Severity;
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

/// The one order of subjects (identities and other principals): worst finding first, then
/// most findings, highest tier, name (without case) and id. The report lists subjects in it
/// and the run's highlights show identities in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SubjectRank {
    highest: Reverse<Option<Severity>>,
    findings: Reverse<usize>,
    tier: Reverse<Option<Tier>>,
    name: String,
    /// Object id of the subject.
    pub id: String,
}

impl SubjectRank {
    /// The rank of a subject from its worst severity, finding count, tier, name and id.
    pub fn new(
        highest: Option<Severity>,
        findings: usize,
        tier: Option<Tier>,
        name: &str,
        id: &str,
    ) -> Self {
        Self {
            highest: Reverse(highest),
            findings: Reverse(findings),
            tier: Reverse(tier),
            name: name.to_lowercase(),
            id: id.to_owned(),
        }
    }

    /// The rank of an identity record.
    pub fn of_record(record: &IdentityRecord) -> Self {
        Self::new(
            record.highest_severity,
            record.finding_count,
            record.tier,
            record.display_name.as_deref().unwrap_or_default(),
            &record.id,
        )
    }
}
