//! `report.html`: a self-contained HTML report of one run, for people.
//!
//! This module owns the report: what goes into it ([`ReportInput`], [`Totals`]), which part of a
//! large run it details ([`Selection`], in `selection`), and the page itself ([`render`],
//! [`render_chunks`], in `html`, with its stylesheet and script in `report.css` and
//! `report.js`). `subjects` groups findings by the principal they are about and ranks those
//! subjects.
//!
//! [`render`] is a pure function of the run's manifest, identities, findings and change events,
//! and of the run's [`Totals`]. In a large run those lists are the part a [`Selection`] picks
//! (the most severe subjects and changes, bounded), while the headline numbers still count the
//! whole run; the NDJSON files stay the complete record.
//! The page it returns is one file that makes no network request: the CSS and a small vanilla
//! script are inline, the severity chart is inline SVG, and a Content-Security-Policy meta tag
//! forbids every external load (`default-src 'none'`; the script is allowed by its SHA-256
//! hash, so even a string that slipped past escaping could not run as script).
//!
//! Every string that comes from the data (display names, evidence, remediation, suppression
//! reasons, error messages) is HTML-escaped: those strings are attacker-influenced, since anyone
//! who can name an Azure resource or a service principal chooses them. The script reads only
//! `data-*` attributes written by this module; no data is ever placed in a script or an event
//! handler.
//!
//! Without JavaScript everything is visible and each identity still opens with a native
//! `<details>` element; the script only adds the filters (severity, rule, kind, text,
//! suppressed) and "expand all".

mod html;
mod selection;
mod subjects;
#[cfg(test)]
mod test_fixtures;

use std::collections::BTreeSet;

use crate::assess::IdentityRecord;
use crate::changes::Change;
use crate::resolve::paths::PathToTier0;
use crate::results::records::{Manifest, SeverityCounts};
use crate::rules::Finding;

pub use html::esc;
pub use selection::{MAX_CHANGES, MAX_SUBJECTS, Selection};
use subjects::{Subject, group_subjects};

/// Everything the report shows: one run's published records, or the most severe part of them
/// with the run's totals.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// The run's manifest (tenant, run id, status, counts, gaps, errors).
    pub manifest: &'a Manifest,
    /// The managed identities (`identities.ndjson`).
    pub identities: &'a [IdentityRecord],
    /// All findings, including those about credential-bearing service principals, which have
    /// `identityKind: servicePrincipal` and no identity record (`findings.ndjson`).
    pub findings: &'a [Finding],
    /// Changes since the previous complete run (`changes.ndjson`).
    pub changes: &'a [Change],
    /// Totals of the whole run; larger than the lists above when they are a selection.
    pub totals: &'a Totals,
}

/// The whole run's counts, which the headline numbers and the chart show even when the lists
/// are a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Findings by severity.
    pub findings: SeverityCounts,
    /// Suppressed findings by severity.
    pub suppressed: SeverityCounts,
    /// Change events by type.
    pub changes: crate::changes::ChangeCounts,
    /// Subjects the report would list: every managed identity and every other principal that
    /// has a finding.
    pub subjects: usize,
    /// The shortest escalation paths to Tier-0 of the whole run (paths through another
    /// identity), shortest first, at most [`MAX_ATTACK_PATHS`].
    pub attack_paths: Vec<AttackPath>,
}

/// How many attack paths the report lists.
pub const MAX_ATTACK_PATHS: usize = 25;

/// An identity's path to Tier-0, as the report's "Attack paths" section lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackPath {
    /// The identity's object id.
    pub identity_id: String,
    /// Its display name.
    pub identity_name: String,
    /// The path.
    pub path: PathToTier0,
}

impl Totals {
    /// The totals of complete lists.
    pub fn of(identities: &[IdentityRecord], findings: &[Finding], changes: &[Change]) -> Self {
        let mut totals = Self {
            changes: crate::changes::count(changes),
            ..Self::default()
        };
        totals.add(identities, findings);
        totals
    }

    /// Adds a chunk of the assessment (its findings are about its identities, or about
    /// principals no other chunk has findings about).
    pub fn add(&mut self, identities: &[IdentityRecord], findings: &[Finding]) {
        let records: BTreeSet<&str> = identities.iter().map(|r| r.id.as_str()).collect();
        let mut others: BTreeSet<&str> = BTreeSet::new();
        for finding in findings {
            self.findings.add(finding.severity);
            if finding.suppressed {
                self.suppressed.add(finding.severity);
            }
            if !records.contains(finding.identity_id.as_str()) {
                others.insert(finding.identity_id.as_str());
            }
        }
        self.subjects += identities.len() + others.len();
        for record in identities {
            let Some(path) = record.path_to_tier0.as_ref().filter(|p| p.is_escalation()) else {
                continue;
            };
            self.attack_paths.push(AttackPath {
                identity_id: record.id.clone(),
                identity_name: record
                    .display_name
                    .clone()
                    .unwrap_or_else(|| record.id.clone()),
                path: path.clone(),
            });
        }
        // Shortest first, then most severe, then by name: the same list however the run is
        // chunked.
        self.attack_paths.sort_by(|a, b| {
            a.path
                .hops
                .len()
                .cmp(&b.path.hops.len())
                .then(b.path.severity.cmp(&a.path.severity))
                .then_with(|| a.identity_name.cmp(&b.identity_name))
                .then_with(|| a.identity_id.cmp(&b.identity_id))
        });
        self.attack_paths.truncate(MAX_ATTACK_PATHS);
    }
}

/// Renders the report as one self-contained HTML document.
pub fn render(input: &ReportInput<'_>) -> String {
    render_chunks(input).collect()
}

/// The report as a sequence of HTML fragments, produced lazily: the page head and summary, then
/// one fragment per managed identity, then the rest. Writing the chunks as they come keeps memory
/// flat for tenants of tens of thousands of identities.
pub fn render_chunks<'a>(input: &'a ReportInput<'a>) -> impl Iterator<Item = String> + Send + 'a {
    let subjects = group_subjects(input.identities, input.findings);
    let head = html::render_head(input, &subjects);
    let (identities, others): (Vec<Subject<'a>>, Vec<Subject<'a>>) =
        subjects.into_iter().partition(|s| s.record.is_some());
    let tail = html::render_tail(input, &identities, &others);
    let rows = identities.into_iter().map(|subject| {
        let mut out = String::with_capacity(4 * 1024);
        html::render_subject(&mut out, &subject);
        out
    });
    std::iter::once(head)
        .chain(rows)
        .chain(std::iter::once(tail))
}
