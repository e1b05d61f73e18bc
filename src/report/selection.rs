//! Which part of a large run the report details: the most severe subjects and change events,
//! picked while the assessment is walked a chunk at a time.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use super::subjects::{group_subjects, rank};
use crate::assess::IdentityRecord;
use crate::assess::order::SubjectRank;
use crate::changes::{Change, ChangeType};
use crate::model::Severity;
use crate::rules::Finding;

/// Subjects (identities and other principals) the report details at most: the most severe
/// first. A larger run is still complete in its NDJSON files; a page beyond this size no longer
/// opens in a browser.
pub const MAX_SUBJECTS: usize = 2_000;

/// Change events the report lists at most: the most severe first.
pub const MAX_CHANGES: usize = 1_000;

/// Picks what a bounded report shows from an assessment walked a chunk at a time: the
/// [`MAX_SUBJECTS`] first subjects in report order and the [`MAX_CHANGES`] most severe changes.
/// It holds only ranks and at most that many change events.
#[derive(Debug, Default)]
pub struct Selection {
    subjects: BinaryHeap<SubjectRank>,
    changes: BinaryHeap<RankedChange>,
}

/// A change with its rank: most severe first (the newer side, or the older for a resolved
/// finding), then change type and finding id.
#[derive(Debug, PartialEq, Eq)]
struct RankedChange {
    rank: (Reverse<Option<Severity>>, ChangeType, String),
    change: Change,
}

impl PartialOrd for RankedChange {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RankedChange {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

impl Selection {
    /// Ranks a chunk's subjects.
    pub fn add_subjects(&mut self, identities: &[IdentityRecord], findings: &[Finding]) {
        for subject in group_subjects(identities, findings) {
            self.subjects.push(rank(&subject));
            if self.subjects.len() > MAX_SUBJECTS {
                self.subjects.pop();
            }
        }
    }

    /// Offers change events.
    pub fn add_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            let severity = change
                .after
                .as_ref()
                .or(change.before.as_ref())
                .map(|s| s.severity);
            let rank = (
                Reverse(severity),
                change.change_type,
                change.finding_id.clone(),
            );
            self.changes.push(RankedChange { rank, change });
            if self.changes.len() > MAX_CHANGES {
                self.changes.pop();
            }
        }
    }

    /// The ids of the chosen subjects (lower-case), and the chosen changes in report order.
    pub fn finish(self) -> (BTreeSet<String>, Vec<Change>) {
        let ids = self
            .subjects
            .into_iter()
            .map(|rank| rank.id.to_ascii_lowercase())
            .collect();
        let changes = self
            .changes
            .into_sorted_vec()
            .into_iter()
            .map(|ranked| ranked.change)
            .collect();
        (ids, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::FindingState;
    use crate::model::SubjectKind;
    use crate::report::test_fixtures::{finding, identity, sample};
    use crate::report::{ReportInput, Totals, render};

    /// A run larger than the report's limits: the selection keeps the most severe subjects and
    /// changes in report order, and the page says how much it leaves to the NDJSON files while
    /// its headline numbers count the whole run.
    #[test]
    fn a_large_run_is_reported_by_its_most_severe_part() {
        let (mut m, _, _, _) = sample();
        let extra = 25;
        let total = MAX_SUBJECTS + extra;
        let identities: Vec<IdentityRecord> = (0..total)
            .map(|i| identity(&format!("id-{i:05}"), &format!("mi-{i:05}")))
            .collect();
        // Every tenth identity has a high finding: those come first.
        let findings: Vec<Finding> = (0..total)
            .step_by(10)
            .map(|i| {
                let mut f = finding(
                    &format!("id-{i:05}"),
                    &format!("mi-{i:05}"),
                    "MI-GRAPH-001",
                    Severity::High,
                    SubjectKind::UserAssigned,
                );
                f.finding_id = format!("f-{i:05}");
                f
            })
            .collect();
        let changes: Vec<Change> = findings
            .iter()
            .map(|f| Change {
                schema_version: "1.0.0".into(),
                change_type: ChangeType::New,
                finding_id: f.finding_id.clone(),
                rule_id: f.rule_id.clone(),
                identity_id: f.identity_id.clone(),
                identity_name: f.identity_name.clone(),
                title: f.title.clone(),
                before: None,
                after: Some(FindingState {
                    severity: f.severity,
                    suppressed: false,
                }),
                tenant_id: "t".into(),
                run_id: m.run_id,
                detected_at: m.started_at,
                previous_run_id: None,
                previous_run_at: None,
            })
            .chain((0..MAX_CHANGES).map(|i| Change {
                schema_version: "1.0.0".into(),
                change_type: ChangeType::Resolved,
                finding_id: format!("gone-{i:05}"),
                rule_id: "MI-HYG-001".into(),
                identity_id: "gone".into(),
                identity_name: "gone".into(),
                title: "resolved".into(),
                before: Some(FindingState {
                    severity: Severity::Low,
                    suppressed: false,
                }),
                after: None,
                tenant_id: "t".into(),
                run_id: m.run_id,
                detected_at: m.started_at,
                previous_run_id: Some(m.run_id),
                previous_run_at: Some(m.started_at),
            }))
            .collect();
        m.counts.identities = total;

        let mut totals = Totals::default();
        let mut selection = Selection::default();
        for (records, chunk_findings) in [
            (&identities[..1_000], &findings[..100]),
            (&identities[1_000..], &findings[100..]),
        ] {
            totals.add(records, chunk_findings);
            selection.add_subjects(records, chunk_findings);
        }
        totals.changes = crate::changes::count(&changes);
        selection.add_changes(changes.clone());
        let (chosen, shown_changes) = selection.finish();
        assert_eq!(totals.subjects, total);
        assert_eq!(chosen.len(), MAX_SUBJECTS);
        assert!(
            findings
                .iter()
                .all(|f| chosen.contains(&f.identity_id.to_ascii_lowercase())),
            "every subject with a finding outranks those without"
        );
        assert_eq!(shown_changes.len(), MAX_CHANGES);
        assert!(
            shown_changes[..findings.len()]
                .iter()
                .all(|c| c.change_type == ChangeType::New),
            "high changes before low ones"
        );

        let shown: Vec<IdentityRecord> = identities
            .iter()
            .filter(|r| chosen.contains(&r.id.to_ascii_lowercase()))
            .cloned()
            .collect();
        let html = render(&ReportInput {
            manifest: &m,
            identities: &shown,
            findings: &findings,
            changes: &shown_changes,
            totals: &totals,
        });
        assert!(html.contains(&format!(
            "This report details the {MAX_SUBJECTS} most severe of {total} subjects"
        )));
        assert!(html.contains(&format!(
            "Showing the {MAX_CHANGES} most severe of {} change events",
            changes.len()
        )));
        assert_eq!(
            html.matches("<details class=\"subject\"").count(),
            MAX_SUBJECTS
        );
        assert!(
            html.contains(&format!(">{}</", findings.len())),
            "headline counts the whole run"
        );
    }
}
