//! Run-to-run changes: what appeared, disappeared or changed severity since the previous
//! complete run of the same tenant. A pure function of this run's findings (which may come a
//! chunk at a time) and a compact [`Baseline`] of the previous run's.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::Severity;
use crate::rules::Finding;

/// Version of the change record format.
pub const CHANGE_SCHEMA_VERSION: &str = "1.1.0";

/// What happened to a finding between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeType {
    /// Present now, absent from the previous complete run (or there was none).
    New,
    /// Present in the previous complete run, absent now.
    Resolved,
    /// Present in both, with a different severity (and the same suppression state).
    SeverityChanged,
    /// Present in both, suppressed in one and active in the other: an acceptance that was
    /// added, or one that was removed or ran out (the finding is active again).
    SuppressionChanged,
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
    /// `new`, `resolved`, `severityChanged` or `suppressionChanged`.
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
    /// Findings suppressed or re-activated since the previous run.
    #[serde(default)]
    pub suppression_changed: usize,
}

/// The previous complete run of the tenant, reduced to what a comparison needs: per finding id,
/// the rule, the subject, the title and the state. Its findings are read line by line, so the
/// evidence and remediation of the previous run are never held.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Its run id.
    pub run_id: Uuid,
    /// When it finished.
    pub finished_at: OffsetDateTime,
    findings: HashMap<String, PreviousFinding>,
}

/// The fields of a previous finding a change record repeats.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreviousFinding {
    rule_id: String,
    identity_id: String,
    identity_name: String,
    title: String,
    severity: Severity,
    #[serde(default)]
    suppressed: bool,
}

/// A line of a previous `findings.ndjson`: the compared fields and the id; the rest is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PreviousLine {
    finding_id: String,
    #[serde(flatten)]
    finding: PreviousFinding,
}

impl Baseline {
    /// A baseline of the run `run_id`, finished at `finished_at`, with no findings yet.
    pub fn new(run_id: Uuid, finished_at: OffsetDateTime) -> Self {
        Self {
            run_id,
            finished_at,
            findings: HashMap::new(),
        }
    }

    /// Adds the findings of a `findings.ndjson` body (blank lines are skipped).
    pub fn read_ndjson(&mut self, body: &[u8]) -> Result<(), serde_json::Error> {
        for line in body.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let PreviousLine {
                finding_id,
                finding,
            } = serde_json::from_slice(line)?;
            self.findings.insert(finding_id, finding);
        }
        Ok(())
    }

    /// Number of findings in the previous run.
    pub fn len(&self) -> usize {
        self.findings.len()
    }

    /// True when the previous run had no findings.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }
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

/// Compares a run's findings with the baseline as they come, a chunk at a time (`None` on a
/// tenant's first run: everything is new). It remembers only the ids it has seen, so it can say
/// at the end which of the baseline's findings are gone.
#[derive(Debug)]
pub struct Comparison<'a> {
    baseline: Option<&'a Baseline>,
    run: CurrentRun<'a>,
    seen: HashSet<String>,
}

impl<'a> Comparison<'a> {
    /// Starts comparing this run against `baseline`.
    pub fn new(baseline: Option<&'a Baseline>, run: CurrentRun<'a>) -> Self {
        Self {
            baseline,
            run,
            seen: HashSet::new(),
        }
    }

    /// The `new`, `severityChanged` and `suppressionChanged` events among these findings, in their order (a finding id
    /// seen before in this run is not reported again).
    pub fn compare(&mut self, findings: &[Finding]) -> Vec<Change> {
        let mut changes = Vec::new();
        for now in findings {
            if !self.seen.insert(now.finding_id.clone()) {
                continue;
            }
            let after = Some(FindingState {
                severity: now.severity,
                suppressed: now.suppressed,
            });
            let then = self.baseline.and_then(|b| b.findings.get(&now.finding_id));
            let (change_type, before) = match then {
                None => (ChangeType::New, None),
                // A flip of the suppression wins over a severity change: it is what decides
                // whether the finding counts (the states say both).
                Some(then) if then.suppressed != now.suppressed => {
                    (ChangeType::SuppressionChanged, Some(then.state()))
                }
                Some(then) if then.severity != now.severity => {
                    (ChangeType::SeverityChanged, Some(then.state()))
                }
                Some(_) => continue,
            };
            changes.push(self.change(
                change_type,
                &now.finding_id,
                Subject {
                    rule_id: &now.rule_id,
                    identity_id: &now.identity_id,
                    identity_name: &now.identity_name,
                    title: &now.title,
                },
                before,
                after,
            ));
        }
        changes
    }

    /// The `resolved` events: the baseline's findings not seen in this run, by finding id. Call
    /// it after every chunk has been compared.
    pub fn resolved(&self) -> Vec<Change> {
        let Some(baseline) = self.baseline else {
            return Vec::new();
        };
        let mut gone: Vec<(&String, &PreviousFinding)> = baseline
            .findings
            .iter()
            .filter(|(id, _)| !self.seen.contains(*id))
            .collect();
        gone.sort_by(|a, b| a.0.cmp(b.0));
        gone.into_iter()
            .map(|(id, then)| {
                self.change(
                    ChangeType::Resolved,
                    id,
                    Subject {
                        rule_id: &then.rule_id,
                        identity_id: &then.identity_id,
                        identity_name: &then.identity_name,
                        title: &then.title,
                    },
                    Some(then.state()),
                    None,
                )
            })
            .collect()
    }

    fn change(
        &self,
        change_type: ChangeType,
        finding_id: &str,
        about: Subject<'_>,
        before: Option<FindingState>,
        after: Option<FindingState>,
    ) -> Change {
        Change {
            schema_version: CHANGE_SCHEMA_VERSION.to_owned(),
            change_type,
            finding_id: finding_id.to_owned(),
            rule_id: about.rule_id.to_owned(),
            identity_id: about.identity_id.to_owned(),
            identity_name: about.identity_name.to_owned(),
            title: about.title.to_owned(),
            before,
            after,
            tenant_id: self.run.tenant_id.to_owned(),
            run_id: self.run.run_id,
            detected_at: self.run.detected_at,
            previous_run_id: self.baseline.map(|b| b.run_id),
            previous_run_at: self.baseline.map(|b| b.finished_at),
        }
    }
}

impl PreviousFinding {
    fn state(&self) -> FindingState {
        FindingState {
            severity: self.severity,
            suppressed: self.suppressed,
        }
    }
}

/// What a change is about (from the newer side).
struct Subject<'a> {
    rule_id: &'a str,
    identity_id: &'a str,
    identity_name: &'a str,
    title: &'a str,
}

/// The change events of a run whose findings come in chunks: each chunk's `new` and
/// `severityChanged` events as the chunk comes, then the `resolved` ones.
pub fn stream<'a>(
    chunks: impl Iterator<Item = Vec<Finding>> + Send + 'a,
    baseline: Option<&'a Baseline>,
    run: CurrentRun<'a>,
) -> impl Iterator<Item = Vec<Change>> + Send + 'a {
    let mut comparison = Comparison::new(baseline, run);
    let mut chunks = chunks.fuse();
    let mut finished = false;
    std::iter::from_fn(move || {
        if finished {
            return None;
        }
        match chunks.next() {
            Some(findings) => Some(comparison.compare(&findings)),
            None => {
                finished = true;
                Some(comparison.resolved())
            }
        }
    })
}

/// Counts changes by type.
pub fn count(changes: &[Change]) -> ChangeCounts {
    let mut counts = ChangeCounts::default();
    counts.add(changes);
    counts
}

impl ChangeCounts {
    /// Adds these changes to the counts.
    pub fn add(&mut self, changes: &[Change]) {
        for change in changes {
            match change.change_type {
                ChangeType::New => self.new += 1,
                ChangeType::Resolved => self.resolved += 1,
                ChangeType::SeverityChanged => self.severity_changed += 1,
                ChangeType::SuppressionChanged => self.suppression_changed += 1,
            }
        }
    }

    /// All changes.
    pub fn total(&self) -> usize {
        self.new + self.resolved + self.severity_changed + self.suppression_changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SubjectKind;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            schema_version: "1.0.0".into(),
            finding_id: id.into(),
            rule_id: "MI-GRAPH-001".into(),
            severity,
            title: format!("title {id}"),
            identity_id: "subject".into(),
            identity_name: "name".into(),
            identity_kind: SubjectKind::UserAssigned,
            tier: None,
            evidence: serde_json::json!({"big": "evidence is never kept"}),
            remediation: "fix".into(),
            remediation_commands: Vec::new(),
            suppressed: false,
            suppression: None,
        }
    }

    /// All changes between a run's findings and the baseline, in one piece: `new` and
    /// `severityChanged` in the order of `current`, then `resolved` by finding id.
    fn diff(current: &[Finding], baseline: Option<&Baseline>, run: CurrentRun<'_>) -> Vec<Change> {
        let mut comparison = Comparison::new(baseline, run);
        let mut changes = comparison.compare(current);
        changes.extend(comparison.resolved());
        changes
    }

    fn run() -> CurrentRun<'static> {
        CurrentRun {
            tenant_id: "t",
            run_id: Uuid::from_u128(2),
            detected_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn kinds(changes: &[Change]) -> Vec<(ChangeType, String)> {
        changes
            .iter()
            .map(|c| (c.change_type, c.finding_id.clone()))
            .collect()
    }

    #[test]
    fn chunked_comparison_finds_new_changed_and_resolved_once() {
        let previous = [
            finding("a", Severity::High),
            finding("b", Severity::Low),
            finding("gone-2", Severity::Info),
            finding("gone-1", Severity::Critical),
        ];
        let body: Vec<u8> = previous
            .iter()
            .flat_map(|f| {
                let mut line = serde_json::to_vec(f).expect("serialises");
                line.push(b'\n');
                line
            })
            .chain(b"\n".iter().copied())
            .collect();
        let mut baseline = Baseline::new(Uuid::from_u128(1), OffsetDateTime::UNIX_EPOCH);
        baseline.read_ndjson(&body).expect("parses");
        assert_eq!(baseline.len(), 4);

        let now = [
            finding("a", Severity::High),
            finding("b", Severity::Medium),
            finding("c", Severity::Low),
            finding("c", Severity::Low),
        ];
        let whole = diff(&now, Some(&baseline), run());
        assert_eq!(
            kinds(&whole),
            vec![
                (ChangeType::SeverityChanged, "b".to_owned()),
                (ChangeType::New, "c".to_owned()),
                (ChangeType::Resolved, "gone-1".to_owned()),
                (ChangeType::Resolved, "gone-2".to_owned()),
            ]
        );
        let changed = &whole[0];
        assert_eq!(
            changed.before.as_ref().map(|s| s.severity),
            Some(Severity::Low)
        );
        assert_eq!(
            changed.after.as_ref().map(|s| s.severity),
            Some(Severity::Medium)
        );
        assert_eq!(
            whole[2].title, "title gone-1",
            "resolved events come from the baseline"
        );
        assert_eq!(whole[2].previous_run_id, Some(Uuid::from_u128(1)));

        // The same events however the findings are chunked.
        for size in 1..=now.len() {
            let chunks: Vec<Vec<Finding>> = now.chunks(size).map(<[Finding]>::to_vec).collect();
            let streamed: Vec<Change> = stream(chunks.into_iter(), Some(&baseline), run())
                .flatten()
                .collect();
            assert_eq!(streamed, whole, "chunks of {size}");
        }
        assert_eq!(
            count(&whole),
            ChangeCounts {
                new: 1,
                resolved: 2,
                severity_changed: 1,
                suppression_changed: 0,
            }
        );
    }

    /// A finding whose acceptance is added, or removed (or ran out), is a `suppressionChanged`
    /// event, even when its severity moved too; an unchanged suppressed finding is no event.
    #[test]
    fn suppression_flips_are_their_own_events() {
        let suppressed = |id: &str, severity| {
            let mut f = finding(id, severity);
            f.suppressed = true;
            f
        };
        let previous = [
            suppressed("reactivated", Severity::High),
            finding("accepted", Severity::High),
            suppressed("still", Severity::High),
            suppressed("moved", Severity::Low),
        ];
        let mut baseline = Baseline::new(Uuid::from_u128(1), OffsetDateTime::UNIX_EPOCH);
        for f in &previous {
            baseline
                .read_ndjson(&serde_json::to_vec(f).expect("serialises"))
                .expect("parses");
        }
        let now = [
            finding("reactivated", Severity::High),
            suppressed("accepted", Severity::High),
            suppressed("still", Severity::High),
            finding("moved", Severity::Critical),
        ];
        let changes = diff(&now, Some(&baseline), run());
        assert_eq!(
            kinds(&changes),
            vec![
                (ChangeType::SuppressionChanged, "reactivated".to_owned()),
                (ChangeType::SuppressionChanged, "accepted".to_owned()),
                (ChangeType::SuppressionChanged, "moved".to_owned()),
            ]
        );
        let moved = &changes[2];
        assert_eq!(
            (moved.before.clone(), moved.after.clone()),
            (
                Some(FindingState {
                    severity: Severity::Low,
                    suppressed: true
                }),
                Some(FindingState {
                    severity: Severity::Critical,
                    suppressed: false
                })
            )
        );
        assert_eq!(count(&changes).suppression_changed, 3);
    }

    #[test]
    fn first_run_reports_everything_as_new_and_a_corrupt_baseline_is_an_error() {
        let now = [finding("a", Severity::High)];
        let changes = diff(&now, None, run());
        assert_eq!(kinds(&changes), vec![(ChangeType::New, "a".to_owned())]);
        assert_eq!(changes[0].previous_run_id, None);
        let mut baseline = Baseline::new(Uuid::from_u128(1), OffsetDateTime::UNIX_EPOCH);
        assert!(baseline.read_ndjson(b"{\"findingId\": 1}\n").is_err());
    }
}
