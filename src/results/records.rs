//! The JSON documents a run publishes besides its NDJSON files: the manifest, the latest
//! pointer and the scan status.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::graph::client::GraphStatsSnapshot;

/// Version of the manifest, latest-pointer and status documents.
pub const RESULTS_SCHEMA_VERSION: &str = "1.3.0";

/// Final outcome of a run, and the states before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunState {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker is collecting or writing.
    Running,
    /// Everything was collected and written.
    Complete,
    /// Written, but some data could not be collected; see the manifest's errors.
    Partial,
    /// Stopped before its results could be trusted.
    Failed,
}

impl RunState {
    /// True once the run can no longer change.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Complete | Self::Partial | Self::Failed)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// The nightly timer.
    Timer,
    /// `POST /api/scans`.
    Http,
    /// `mi-assess assess` on a workstation.
    Cli,
    /// `mi-assess assess --demo`.
    Demo,
    /// `mi-assess assess --from-snapshot`: an offline replay.
    Replay,
}

/// Counts in the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounts {
    /// Managed identities found.
    pub identities: usize,
    /// Of which system-assigned.
    pub system_assigned: usize,
    /// Of which user-assigned.
    pub user_assigned: usize,
    /// Credential-bearing application and Legacy service principals (null when they could not be listed).
    #[serde(default)]
    pub credential_service_principals: Option<usize>,
    /// Findings written.
    pub findings: usize,
    /// Findings per severity.
    #[serde(default)]
    pub findings_by_severity: SeverityCounts,
    /// Findings marked suppressed (accepted risk).
    #[serde(default)]
    pub suppressed: usize,
    /// Findings not suppressed, per severity: what `--fail-on` gates on.
    #[serde(default)]
    pub active_by_severity: SeverityCounts,
    /// New findings since the previous complete run that are not suppressed, per severity: what
    /// `--fail-on-new` gates on.
    #[serde(default)]
    pub new_by_severity: SeverityCounts,
    /// Changes since the previous complete run.
    #[serde(default)]
    pub changes: crate::changes::ChangeCounts,
}

impl RunCounts {
    /// Counts a chunk of the assessment: its identity records and findings.
    pub fn add(
        &mut self,
        identities: &[crate::assess::IdentityRecord],
        findings: &[crate::rules::Finding],
    ) {
        use crate::model::IdentityKind;
        self.identities += identities.len();
        for record in identities {
            match record.kind {
                IdentityKind::SystemAssigned => self.system_assigned += 1,
                IdentityKind::UserAssigned => self.user_assigned += 1,
            }
        }
        self.findings += findings.len();
        for finding in findings {
            self.findings_by_severity.add(finding.severity);
            self.suppressed += usize::from(finding.suppressed);
            if !finding.suppressed {
                self.active_by_severity.add(finding.severity);
            }
        }
    }
}

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeverityCounts {
    /// Critical findings.
    pub critical: usize,
    /// High findings.
    pub high: usize,
    /// Medium findings.
    pub medium: usize,
    /// Low findings.
    pub low: usize,
    /// Informational findings.
    pub info: usize,
}

impl SeverityCounts {
    /// Counts findings by severity.
    pub fn of(findings: &[crate::rules::Finding]) -> Self {
        let mut counts = Self::default();
        for finding in findings {
            counts.add(finding.severity);
        }
        counts
    }

    /// Findings at `severity` or above.
    pub fn at_or_above(&self, severity: crate::model::Severity) -> usize {
        use crate::model::Severity;
        [
            (Severity::Critical, self.critical),
            (Severity::High, self.high),
            (Severity::Medium, self.medium),
            (Severity::Low, self.low),
            (Severity::Info, self.info),
        ]
        .into_iter()
        .filter(|(s, _)| *s >= severity)
        .map(|(_, n)| n)
        .sum()
    }

    /// Counts one more finding of `severity`.
    pub fn add(&mut self, severity: crate::model::Severity) {
        use crate::model::Severity;
        match severity {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }

    /// All findings counted.
    pub fn total(&self) -> usize {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

/// Where in a run a problem happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStage {
    /// Reading the scanner's own token (who and which tenant).
    Auth,
    /// Taking the tenant's lock.
    Lock,
    /// Reading Graph and ARM.
    Collect,
    /// The run as a whole: cancelled, past its deadline, or given up by the queue.
    Run,
    /// Writing results.
    Write,
}

impl RunStage {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Lock => "lock",
            Self::Collect => "collect",
            Self::Run => "run",
            Self::Write => "write",
        }
    }
}

impl std::fmt::Display for RunStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for RunStage {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a run ended `failed` without finishing its own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureReason {
    /// The invocation running it was cancelled: the host's `functionTimeout`, a scale-in, or a
    /// caller that went away.
    Cancelled,
    /// Its process died: a later run of the tenant found it still `running` after its lease
    /// expired.
    Abandoned,
    /// It ran past `MI_ASSESS_RUN_TIMEOUT`.
    Deadline,
    /// Its queue message was moved to the poison queue.
    Poison,
    /// The queue's last delivery of its message could not run it.
    AttemptsExhausted,
}

impl FailureReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
            Self::Deadline => "deadline",
            Self::Poison => "poison",
            Self::AttemptsExhausted => "attemptsExhausted",
        }
    }
}

/// One problem a run met.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// Where it happened.
    pub stage: RunStage,
    /// What happened.
    pub message: String,
}

/// A file the run wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Name inside the run folder.
    pub name: String,
    /// Media type.
    pub content_type: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Records (lines) for NDJSON files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

/// `manifest.json`: the last file of every run; its presence with `status: complete` is the
/// signal that the run's other files are whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Version of this document's format.
    pub schema_version: String,
    /// Tenant scanned (empty only if the run failed before it was known).
    pub tenant_id: String,
    /// Run id.
    pub run_id: Uuid,
    /// What started the run.
    pub trigger: Trigger,
    /// The Functions host invocation that ran it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// Start time.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// End time.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// When the assessed data was collected (a replay's is its snapshot's); absent when the
    /// run failed before it assessed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub collected_at: Option<OffsetDateTime>,
    /// `complete`, `partial` or `failed`.
    pub status: RunState,
    /// Counts.
    pub counts: RunCounts,
    /// What Graph was asked and what it cost.
    pub graph: GraphStatsSnapshot,
    /// Files written before the manifest.
    pub files: Vec<FileEntry>,
    /// Problems, in the order they happened.
    pub errors: Vec<RunError>,
    /// Data that could not be collected (the reason the run is `partial`).
    #[serde(default)]
    pub skipped: Vec<crate::snapshot::CollectionGap>,
    /// Checks that could not apply because their data does not exist in this tenant (a
    /// licence it lacks), one per data set; they never make the run partial.
    #[serde(default)]
    pub not_applicable: Vec<NotApplicableCheck>,
    /// Problems that did not stop or degrade collection, e.g. a malformed suppressions.json.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The previous complete run the changes compare against.
    #[serde(default)]
    pub previous_run_id: Option<Uuid>,
    /// What the usage plane read and cost; absent when it is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ManifestUsage>,
    /// Why the run failed without finishing, when that is what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// The mi-assess version that produced the run.
    pub tool_version: String,
}

/// The usage plane in a manifest: where it read, over which window, at what cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestUsage {
    /// The workspace.
    pub workspace_id: String,
    /// The window, in days.
    pub window_days: u32,
    /// Queries sent (window slices included).
    pub queries: u64,
    /// Rows read.
    pub rows: u64,
    /// Milliseconds it took.
    pub milliseconds: u64,
    /// Results still cut at the query API's limit.
    pub truncated: usize,
}

/// Checks that could not apply in this tenant, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotApplicableCheck {
    /// The data set that does not exist, e.g. `roleEligibilitySchedules`.
    pub dataset: crate::snapshot::DatasetName,
    /// What the assessment checks with it (and so could not check here).
    pub checks: String,
    /// Why, with the service's answer.
    pub reason: String,
}

impl NotApplicableCheck {
    /// The checks each not-applicable gap leaves out, in the gaps' order.
    pub fn from_gaps(gaps: &[crate::snapshot::CollectionGap]) -> Vec<Self> {
        gaps.iter()
            .filter(|g| g.not_applicable)
            .map(|g| Self {
                dataset: g.dataset,
                checks: g.dataset.checks().to_owned(),
                reason: g.reason.clone(),
            })
            .collect()
    }
}

impl Manifest {
    /// The manifest of a run that has just started.
    pub fn started(
        run_id: Uuid,
        trigger: Trigger,
        invocation_id: Option<String>,
        started_at: OffsetDateTime,
    ) -> Self {
        Self {
            schema_version: RESULTS_SCHEMA_VERSION.to_owned(),
            tenant_id: String::new(),
            run_id,
            trigger,
            invocation_id,
            started_at,
            finished_at: started_at,
            collected_at: None,
            status: RunState::Running,
            counts: RunCounts::default(),
            graph: Default::default(),
            files: Vec::new(),
            errors: Vec::new(),
            skipped: Vec::new(),
            not_applicable: Vec::new(),
            warnings: Vec::new(),
            previous_run_id: None,
            usage: None,
            failure_reason: None,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// `latest/{tenantId}.json`: where the newest complete run of a tenant is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestPointer {
    /// Version of this document's format.
    pub schema_version: String,
    /// Tenant.
    pub tenant_id: String,
    /// Run id of the newest complete run.
    pub run_id: Uuid,
    /// Path of the run folder inside the container.
    pub prefix: String,
    /// Path of its manifest.
    pub manifest: String,
    /// When that run finished.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

/// `scans/{runId}.json`: the state of one run, readable by any instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanStatus {
    /// Version of this document's format.
    pub schema_version: String,
    /// Run id.
    pub run_id: Uuid,
    /// Current state.
    pub state: RunState,
    /// What started the run.
    pub trigger: Trigger,
    /// When the run was requested.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// When this document was last written.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Tenant, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Run folder, once results exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_prefix: Option<String>,
    /// Manifest path, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// Why the run failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the run failed without finishing, when that is what happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// Where the run was when this was written (kept current while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<RunProgress>,
}

/// Where a run is: `scans/{runId}.json`'s `progress`, and what the CLI shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    /// The phase.
    pub phase: crate::progress::Phase,
    /// Its place, from 1.
    pub phase_number: usize,
    /// How many phases a run has.
    pub phases: usize,
    /// What the phase does, for people.
    pub label: String,
    /// Done in this phase.
    pub done: u64,
    /// To do in this phase; null when not known yet.
    pub total: Option<u64>,
    /// What `done` and `total` count: `objects`, `principals`, `requests` or `subjects`.
    pub unit: String,
    /// Resource units Graph charged so far.
    pub resource_units: u64,
    /// Throttled (429) responses so far.
    pub throttled: u64,
    /// Seconds since the run started.
    pub elapsed_seconds: u64,
    /// Seconds the phase still needs at its rate so far; null when it cannot be told.
    pub eta_seconds: Option<u64>,
}

impl From<&crate::progress::ProgressNow> for RunProgress {
    fn from(now: &crate::progress::ProgressNow) -> Self {
        Self {
            phase: now.phase,
            phase_number: now.phase.number(),
            phases: crate::progress::Phase::ALL.len(),
            label: now.phase.label().to_owned(),
            done: now.done,
            total: now.total,
            unit: now.phase.unit().to_owned(),
            resource_units: now.cost.resource_units,
            throttled: now.cost.throttled,
            elapsed_seconds: now.elapsed.as_secs(),
            eta_seconds: now.eta().map(|d| d.as_secs()),
        }
    }
}

impl ScanStatus {
    /// A freshly queued run.
    pub fn queued(run_id: Uuid, trigger: Trigger, now: OffsetDateTime) -> Self {
        Self {
            schema_version: RESULTS_SCHEMA_VERSION.to_owned(),
            run_id,
            state: RunState::Queued,
            trigger,
            requested_at: now,
            updated_at: now,
            tenant_id: None,
            results_prefix: None,
            manifest: None,
            error: None,
            failure_reason: None,
            progress: None,
        }
    }
}
