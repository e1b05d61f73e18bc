//! Assessment: a pure function from a [`TenantSnapshot`] to the records and findings a run
//! publishes. No I/O happens here, so every run can be replayed offline.
//!
//! The [`Assessor`] is the [`Resolver`] plus the tenant pass: it runs the tenant-scoped rules
//! once, then walks the subjects in the resolver's order a chunk at a time, runs the
//! subject-scoped rules over each chunk, applies `suppressions.json` ([`suppressions`]) and
//! orders the findings ([`order`]). Each managed identity becomes an [`IdentityRecord`].

pub mod order;
pub mod record;
pub mod suppressions;

use std::collections::HashMap;

pub use record::IdentityRecord;

use crate::model::Severity;
use crate::resolve::{Resolver, Subject};
use crate::rules::{self, Finding};
use crate::snapshot::TenantSnapshot;

/// What one assessment produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// One record per managed identity, sorted by object id.
    pub identities: Vec<IdentityRecord>,
    /// Findings, grouped by subject in assessment order, most severe first within a subject.
    pub findings: Vec<Finding>,
}

/// Subjects assessed together in one step of a streamed run. It bounds the memory a run needs
/// beyond the snapshot: one chunk of resolved views, records and findings at a time.
pub const CHUNK_SUBJECTS: usize = 1_000;

/// Assesses a snapshot in one piece (tests, the single-identity endpoint, small tenants).
pub fn assess(snapshot: &TenantSnapshot) -> Assessment {
    let assessor = Assessor::new(snapshot);
    let mut out = Assessment::default();
    for chunk in assessor.chunks(usize::MAX) {
        out.identities.extend(chunk.identities);
        out.findings.extend(chunk.findings);
    }
    out
}

/// What one chunk of subjects produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssessedChunk {
    /// Records of the chunk's managed identities, by object id.
    pub identities: Vec<IdentityRecord>,
    /// Findings about the chunk's subjects, grouped by subject (in chunk order), in
    /// [`order::most_severe_first`] within a subject.
    pub findings: Vec<Finding>,
}

/// The assessment of one snapshot, produced a chunk of subjects at a time.
///
/// Building it resolves the snapshot ([`Resolver::new`]) and runs the tenant-scoped rules once.
/// [`Assessor::chunks`] then resolves and assesses the subjects in the resolver's fixed order,
/// so a streamed run can walk the same assessment several times without holding it whole.
#[derive(Debug)]
pub struct Assessor<'a> {
    resolver: Resolver<'a>,
    /// Tenant-scoped findings about assessed subjects, by subject position.
    tenant_findings: HashMap<usize, Vec<Finding>>,
    /// Tenant-scoped findings about anything else (deleted principals, unknown ids).
    leftover: Vec<Finding>,
    /// The active entries of `suppressions.json`.
    suppressions: suppressions::Matcher<'a>,
}

impl<'a> Assessor<'a> {
    /// Resolves `snapshot` and runs the tenant-scoped rules.
    pub fn new(snapshot: &'a TenantSnapshot) -> Self {
        let resolver = Resolver::new(snapshot);
        let suppressions =
            suppressions::Matcher::new(&snapshot.settings.suppressions, snapshot.collected_at);
        let mut tenant = rules::evaluate(&resolver.view(None));
        suppressions.mark(&mut tenant);
        let mut tenant_findings: HashMap<usize, Vec<Finding>> = HashMap::new();
        let mut leftover = Vec::new();
        for finding in tenant {
            match resolver.position(&finding.identity_id) {
                Some(position) => tenant_findings.entry(position).or_default().push(finding),
                None => leftover.push(finding),
            }
        }
        order::sort_by_subject_id(&mut leftover);
        Self {
            resolver,
            tenant_findings,
            leftover,
            suppressions,
        }
    }

    /// The resolver behind the assessment.
    pub fn resolver(&self) -> &Resolver<'a> {
        &self.resolver
    }

    /// The assessment, `size` subjects at a time; tenant-wide findings about no assessed subject
    /// come last, in a chunk of their own. Every walk yields the same chunks.
    pub fn chunks(&self, size: usize) -> impl Iterator<Item = AssessedChunk> + Send + '_ {
        let size = size.max(1);
        let count = self.resolver.subjects().len();
        let leftover = (!self.leftover.is_empty()).then(|| AssessedChunk {
            identities: Vec::new(),
            findings: self.leftover.clone(),
        });
        (0..count)
            .step_by(size)
            .map(move |start| self.chunk(start, (start + size).min(count)))
            .chain(leftover)
    }

    fn chunk(&self, start: usize, end: usize) -> AssessedChunk {
        let subjects = &self.resolver.subjects()[start..end];
        let mut identities = Vec::new();
        let mut service_principals = Vec::new();
        for subject in subjects {
            let view = self.resolver.resolve(*subject);
            match subject {
                Subject::Identity(_) => identities.push(view),
                Subject::Credential(_) => service_principals.push(view),
            }
        }
        let view = self.resolver.view(Some((identities, service_principals)));
        let mut findings = rules::evaluate(&view);
        self.suppressions.mark(&mut findings);
        for position in start..end {
            if let Some(tenant) = self.tenant_findings.get(&position) {
                findings.extend(tenant.iter().cloned());
            }
        }
        order::sort_by_subject_position(&mut findings, subjects);
        let pim = self.resolver.snapshot().pim_licence();
        // Finding count and worst severity per subject, in one pass.
        let mut per_subject: HashMap<&str, (usize, Option<Severity>)> = HashMap::new();
        for finding in &findings {
            let entry = per_subject.entry(finding.identity_id.as_str()).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(Some(finding.severity));
        }
        let records = view
            .identities
            .into_iter()
            .zip(subjects.iter())
            .filter_map(|(view, subject)| match subject {
                Subject::Identity(sp) => Some((view, sp)),
                Subject::Credential(_) => None,
            })
            .map(|(view, sp)| {
                let mut record = IdentityRecord::from_service_principal(sp);
                let (count, highest) = per_subject.get(sp.id.as_str()).copied().unwrap_or_default();
                record.attach(view, count, highest);
                record.pim = pim;
                let paths = self.resolver.paths();
                record.path_to_tier0 = paths.path_to_tier0(&sp.id);
                record.actors = paths.actors(&sp.id);
                record.usage = self
                    .resolver
                    .usage()
                    .and_then(|index| record::IdentityUsage::of(index, &sp.id));
                record
            })
            .collect();
        drop(per_subject);
        AssessedChunk {
            identities: records,
            findings,
        }
    }
}
