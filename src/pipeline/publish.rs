//! The [`Publisher`]: assesses a snapshot and writes the run's files in order (data files,
//! report, manifest last, `latest/` only after a complete manifest), keeps `scans/{runId}.json`
//! current, and renews the tenant lock while a run holds it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;

use super::RunOutcome;
use super::encode::{Body, gzip_json, json_bytes, json_chunks, ndjson_stream};
use crate::assess::{Assessment, Assessor, CHUNK_SUBJECTS};
use crate::changes::{self, Comparison, CurrentRun};
use crate::progress::{Phase, Progress};
use crate::report::{Selection, Totals};
use crate::results::records::{
    FileEntry, NotApplicableCheck, RESULTS_SCHEMA_VERSION, RunCounts, RunError, RunProgress,
    RunStage,
};
use crate::results::store::LOCK_TTL_SECONDS;
use crate::results::{
    self, Chunks, GZIP, HTML, JSON, LatestPointer, Lock, Manifest, NDJSON, ResultStore, RunState,
    ScanStatus, StoreError, files,
};
use crate::snapshot::TenantSnapshot;

/// How often a running run's `scans/{runId}.json` gets its progress.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Writes a run's files in order and keeps `latest/` and `scans/` consistent.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub(super) store: Arc<dyn ResultStore>,
    /// Whether a complete run moves `latest/` (and so becomes the next run's baseline).
    moves_latest: bool,
    /// The status last written for each unfinished run of this process. Every status write
    /// holds it, so a progress update never lands after (and over) a newer state.
    statuses: Arc<tokio::sync::Mutex<HashMap<uuid::Uuid, ScanStatus>>>,
}

impl Publisher {
    /// A publisher writing to `store`; a complete run moves `latest/`.
    pub fn new(store: Arc<dyn ResultStore>) -> Self {
        Self {
            store,
            moves_latest: true,
            statuses: Arc::default(),
        }
    }

    /// The same publisher, moving `latest/` only when `moves_latest` (a replay does not, unless
    /// asked: its snapshot is older than what `latest/` may point to).
    pub fn moving_latest(self, moves_latest: bool) -> Self {
        Self {
            moves_latest,
            ..self
        }
    }

    /// Renews a held lock every third of its lifetime, for as long as the future is polled (the
    /// run spawns it into the set of helpers it owns).
    pub(super) fn keep_alive(&self, lock: Lock) -> impl Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        async move {
            let every =
                std::time::Duration::from_secs(u64::from(LOCK_TTL_SECONDS.unsigned_abs()) / 3);
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = store.renew_lock(&lock).await {
                    tracing::warn!(error = %e, "could not renew the tenant lock");
                }
            }
        }
    }

    /// Writes one file and describes it for the manifest.
    async fn write_body(
        &self,
        path: &str,
        name: &str,
        content_type: &str,
        body: Body<'_>,
        metadata: &[(&str, &str)],
    ) -> Result<FileEntry, StoreError> {
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (records, result) = match body {
            Body::Whole(serialised) => {
                let bytes = serialised?;
                counter.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                (
                    None,
                    self.store.put(path, bytes, content_type, metadata).await,
                )
            }
            Body::Stream(chunks) => {
                let counted = counter.clone();
                let iter = chunks.inspect(move |chunk| {
                    if let Ok(bytes) = chunk {
                        counted.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                });
                (
                    None,
                    self.store
                        .put_chunks(path, Box::new(iter), content_type, metadata)
                        .await,
                )
            }
            Body::Ndjson(chunks) => {
                let records = chunks.records;
                let counted = counter.clone();
                let iter = chunks.inspect(move |chunk| {
                    if let Ok(bytes) = chunk {
                        counted.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                });
                (
                    Some(records),
                    self.store
                        .put_chunks(path, Box::new(iter), content_type, metadata)
                        .await,
                )
            }
        };
        result?;
        Ok(FileEntry {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes: counter.load(std::sync::atomic::Ordering::Relaxed),
            records,
        })
    }

    /// Assesses the snapshot and writes the data files, the report, the manifest (last) and,
    /// for a complete run, `latest/`.
    ///
    /// Memory stays bounded beyond the snapshot: the assessment is walked a chunk of
    /// [`CHUNK_SUBJECTS`] subjects at a time, once for the totals and the report's selection and
    /// once per file, so no file's records are ever held whole.
    pub async fn publish(
        &self,
        mut manifest: Manifest,
        prefix: String,
        snapshot: &TenantSnapshot,
        status: &mut ScanStatus,
        progress: &Progress,
    ) -> RunOutcome {
        let assessor = Assessor::new(snapshot);
        let subjects = assessor.resolver().subjects().len() as u64;
        progress.enter(Phase::Publishing, Some(subjects));
        crate::telemetry::memory_mark("indexed");
        manifest.collected_at = Some(snapshot.collected_at);
        manifest.usage = snapshot
            .usage
            .as_ref()
            .map(|u| crate::results::records::ManifestUsage {
                workspace_id: u.workspace_id.clone(),
                window_days: u.window_days,
                queries: u.cost.queries,
                rows: u.cost.rows,
                milliseconds: u.cost.milliseconds,
                truncated: u.truncated.len(),
            });
        // Entries of suppressions.json that were skipped (recorded in the snapshot, so a
        // replay reports them too).
        // Usage results the query API cut even in one-hour slices: their rules stayed silent.
        for cut in snapshot.usage.iter().flat_map(|u| &u.truncated) {
            let warning = format!(
                "the usage plane's result was cut at the Log Analytics query API's limit even in one-hour slices, so the usage rules that read it were left out: {cut}"
            );
            tracing::warn!("{warning}");
            manifest.warnings.push(warning);
        }
        for rejected in &snapshot.settings.rejected_suppressions {
            let warning = format!(
                "suppressions.json entry {} was skipped (the others apply): {}",
                rejected.entry, rejected.problem
            );
            tracing::warn!("{warning}");
            manifest.warnings.push(warning);
        }

        // Changes since the previous complete run of this tenant.
        let baseline = match self.read_baseline(&snapshot.tenant_id).await {
            Ok(found) => found,
            Err(warning) => {
                tracing::error!("{warning}");
                manifest.warnings.push(warning);
                None
            }
        };
        manifest.previous_run_id = baseline.as_ref().map(|b| b.run_id);
        let run = CurrentRun {
            tenant_id: &snapshot.tenant_id,
            run_id: manifest.run_id,
            detected_at: snapshot.collected_at,
        };

        // First walk: the counts, and what the report details.
        let mut counts = RunCounts {
            credential_service_principals: snapshot
                .credential_service_principals
                .known()
                .map(Vec::len),
            ..RunCounts::default()
        };
        let mut totals = Totals::default();
        let mut selection = Selection::default();
        let mut comparison = Comparison::new(baseline.as_ref(), run);
        let mut assessed = 0;
        for chunk in assessor.chunks(CHUNK_SUBJECTS) {
            let step = (CHUNK_SUBJECTS as u64).min(subjects - assessed);
            assessed += step;
            progress.advance(step);
            counts.add(&chunk.identities, &chunk.findings);
            totals.add(&chunk.identities, &chunk.findings);
            selection.add_subjects(&chunk.identities, &chunk.findings);
            let changes = comparison.compare(&chunk.findings);
            for change in &changes {
                // New findings, and findings whose acceptance was removed or ran out: both are
                // risks that were not active in the previous run.
                let newly_active = matches!(
                    change.change_type,
                    changes::ChangeType::New | changes::ChangeType::SuppressionChanged
                );
                if newly_active && let Some(state) = change.after.as_ref().filter(|s| !s.suppressed)
                {
                    counts.new_by_severity.add(state.severity);
                }
            }
            totals.changes.add(&changes);
            selection.add_changes(changes);
        }
        let resolved = comparison.resolved();
        totals.changes.add(&resolved);
        selection.add_changes(resolved);
        drop(comparison);
        counts.changes = totals.changes;
        manifest.counts = counts;
        manifest.skipped = snapshot.gaps.clone();
        manifest.not_applicable = NotApplicableCheck::from_gaps(&snapshot.gaps);
        crate::telemetry::memory_mark("counted");

        let run_id = manifest.run_id.to_string();
        let metadata = [
            ("runId", run_id.as_str()),
            ("schemaVersion", RESULTS_SCHEMA_VERSION),
        ];
        let identities = ndjson_stream(
            manifest.counts.identities as u64,
            assessor.chunks(CHUNK_SUBJECTS).map(|c| c.identities),
        );
        let findings = ndjson_stream(
            manifest.counts.findings as u64,
            assessor.chunks(CHUNK_SUBJECTS).map(|c| c.findings),
        );
        let changes = ndjson_stream(
            manifest.counts.changes.total() as u64,
            changes::stream(
                assessor.chunks(CHUNK_SUBJECTS).map(|c| c.findings),
                baseline.as_ref(),
                run,
            ),
        );
        let attack_graph = json_chunks(crate::opengraph::chunks(assessor.resolver()));
        let export_context = crate::export::RunContext {
            tenant_id: &snapshot.tenant_id,
            run_id: manifest.run_id,
            detected_at: snapshot.collected_at,
        };
        let csv = export_chunks(
            &assessor,
            baseline.as_ref(),
            run,
            export_context,
            crate::export::Format::Csv,
        );
        let ocsf = export_chunks(
            &assessor,
            baseline.as_ref(),
            run,
            export_context,
            crate::export::Format::Ocsf,
        );
        let writes: [(&str, &str, Body<'_>); 7] = [
            (files::IDENTITIES, NDJSON, Body::Ndjson(identities)),
            (files::FINDINGS, NDJSON, Body::Ndjson(findings)),
            (files::CHANGES, NDJSON, Body::Ndjson(changes)),
            (files::FINDINGS_CSV, results::CSV, Body::Stream(csv)),
            (files::FINDINGS_OCSF, JSON, Body::Stream(ocsf)),
            (files::ATTACK_GRAPH, JSON, Body::Stream(attack_graph)),
            (files::SNAPSHOT, GZIP, Body::Whole(gzip_json(snapshot))),
        ];
        for (name, content_type, body) in writes {
            let path = format!("{prefix}/{name}");
            match self
                .write_body(&path, name, content_type, body, &metadata)
                .await
            {
                Ok(entry) => {
                    crate::telemetry::memory_mark(name);
                    manifest.files.push(entry);
                }
                Err(e) => {
                    tracing::error!(error = %e, "writing results failed");
                    manifest.errors.push(RunError {
                        stage: RunStage::Write,
                        message: e.to_string(),
                    });
                    return self.finish_failed(manifest, Some(prefix), status).await;
                }
            }
        }

        // Gaps the configuration allows (an optional Azure plane without access) stay listed
        // in `skipped` but do not make the run partial.
        manifest.status = if snapshot.gaps.iter().any(|g| g.affects_status) {
            RunState::Partial
        } else {
            RunState::Complete
        };
        manifest.finished_at = OffsetDateTime::now_utc();

        // The human-readable report, rendered from exactly what was written above: the most
        // severe subjects in detail, with the run's totals.
        let (chosen, shown_changes) = selection.finish();
        let mut shown = Assessment::default();
        for chunk in assessor.chunks(CHUNK_SUBJECTS) {
            shown.identities.extend(
                chunk
                    .identities
                    .into_iter()
                    .filter(|r| chosen.contains(&r.id.to_ascii_lowercase())),
            );
            shown.findings.extend(
                chunk
                    .findings
                    .into_iter()
                    .filter(|f| chosen.contains(&f.identity_id.to_ascii_lowercase())),
            );
        }
        drop(chosen);
        let report_manifest = manifest.clone();
        let report_input = crate::report::ReportInput {
            manifest: &report_manifest,
            identities: &shown.identities,
            findings: &shown.findings,
            changes: &shown_changes,
            totals: &totals,
        };
        let html: Chunks<'_> = Box::new(
            crate::report::render_chunks(&report_input).map(|fragment| Ok(Bytes::from(fragment))),
        );
        let report_path = format!("{prefix}/{}", files::REPORT);
        let written = self
            .write_body(
                &report_path,
                files::REPORT,
                HTML,
                Body::Stream(html),
                &metadata,
            )
            .await;
        crate::telemetry::memory_mark(files::REPORT);
        let highlights = crate::summary::Highlights::of(&report_input);
        drop(shown);
        match written {
            Ok(entry) => manifest.files.push(entry),
            Err(e) => {
                tracing::error!(error = %e, "writing the report failed");
                manifest.errors.push(RunError {
                    stage: RunStage::Write,
                    message: e.to_string(),
                });
                return self.finish_failed(manifest, Some(prefix), status).await;
            }
        }
        manifest.finished_at = OffsetDateTime::now_utc();
        let manifest_path = format!("{prefix}/{}", files::MANIFEST);
        if let Err(e) = self.put_json(&manifest_path, &manifest, &metadata).await {
            tracing::error!(error = %e, "writing the manifest failed");
            manifest.status = RunState::Failed;
            manifest.errors.push(RunError {
                stage: RunStage::Write,
                message: e.to_string(),
            });
            status.state = RunState::Failed;
            status.error = Some(e.to_string());
            self.write_status_logged(status).await;
            return RunOutcome {
                manifest,
                prefix: Some(prefix),
                highlights: Some(highlights),
            };
        }
        status.manifest = Some(manifest_path.clone());

        if manifest.status == RunState::Complete && !self.moves_latest {
            tracing::info!("latest/ left as it was: this run is not a baseline");
        } else if manifest.status == RunState::Complete {
            let latest = LatestPointer {
                schema_version: RESULTS_SCHEMA_VERSION.to_owned(),
                tenant_id: manifest.tenant_id.clone(),
                run_id: manifest.run_id,
                prefix: prefix.clone(),
                manifest: manifest_path,
                finished_at: manifest.finished_at,
            };
            if let Err(e) = self
                .put_json(
                    &results::latest_path(&manifest.tenant_id),
                    &latest,
                    &metadata,
                )
                .await
            {
                // The run itself is whole; only the pointer is stale. Say so loudly.
                tracing::error!(error = %e, "updating the latest pointer failed");
                status.error = Some(format!(
                    "results are complete but latest/ was not updated: {e}"
                ));
            }
        } else {
            for gap in manifest.skipped.iter().filter(|g| g.affects_status) {
                tracing::warn!(dataset = %gap.dataset, reason = %gap.reason, "run is partial");
            }
        }
        status.state = manifest.status;
        self.write_status_logged(status).await;
        tracing::info!(
            status = manifest.status.as_str(),
            identities = manifest.counts.identities,
            findings = manifest.counts.findings,
            graph_requests = manifest.graph.requests,
            "run finished"
        );
        RunOutcome {
            manifest,
            prefix: Some(prefix),
            highlights: Some(highlights),
        }
    }

    pub(super) async fn put_json<T: Serialize>(
        &self,
        path: &str,
        value: &T,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let body = json_bytes(value)?;
        self.store.put(path, body, JSON, metadata).await
    }

    pub(super) async fn finish_failed(
        &self,
        mut manifest: Manifest,
        prefix: Option<String>,
        status: &mut ScanStatus,
    ) -> RunOutcome {
        manifest.status = RunState::Failed;
        manifest.finished_at = OffsetDateTime::now_utc();
        if let Some(prefix) = &prefix {
            let path = format!("{prefix}/{}", files::MANIFEST);
            let run_id = manifest.run_id.to_string();
            let metadata = [
                ("runId", run_id.as_str()),
                ("schemaVersion", RESULTS_SCHEMA_VERSION),
            ];
            match self.put_json(&path, &manifest, &metadata).await {
                Ok(()) => status.manifest = Some(path),
                Err(e) => tracing::error!(error = %e, "writing the failed manifest failed"),
            }
        }
        status.state = RunState::Failed;
        status.error = manifest
            .errors
            .last()
            .map(|e| format!("{}: {}", e.stage, e.message));
        self.write_status_logged(status).await;
        RunOutcome {
            manifest,
            prefix,
            highlights: None,
        }
    }

    pub(super) async fn write_status(&self, status: &ScanStatus) -> Result<(), StoreError> {
        let mut statuses = self.statuses.lock().await;
        self.put_status(status).await?;
        if status.state.is_finished() {
            statuses.remove(&status.run_id);
        } else {
            statuses.insert(status.run_id, status.clone());
        }
        Ok(())
    }

    async fn put_status(&self, status: &ScanStatus) -> Result<(), StoreError> {
        let run_id = status.run_id.to_string();
        let metadata = [
            ("runId", run_id.as_str()),
            ("schemaVersion", RESULTS_SCHEMA_VERSION),
        ];
        self.put_json(&results::status_path(status.run_id), status, &metadata)
            .await
    }

    /// Copies the run's progress into its `scans/{runId}.json` every [`PROGRESS_EVERY`], for as
    /// long as the future is polled (the run spawns it into the helpers it owns).
    pub(super) async fn report_progress(self, run_id: uuid::Uuid, progress: Progress) {
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            self.write_progress(run_id, RunProgress::from(&progress.now()))
                .await;
        }
    }

    /// Records where a running run is in its `scans/{runId}.json`, on top of the status last
    /// written for it; nothing once the run has finished (or before it has started).
    pub(super) async fn write_progress(&self, run_id: uuid::Uuid, progress: RunProgress) {
        let mut statuses = self.statuses.lock().await;
        let Some(status) = statuses.get_mut(&run_id) else {
            return;
        };
        if status.state != RunState::Running || status.progress.as_ref() == Some(&progress) {
            return;
        }
        status.progress = Some(progress);
        status.updated_at = OffsetDateTime::now_utc();
        if let Err(e) = self.put_status(status).await {
            tracing::debug!(error = %e, "could not record the run's progress");
        }
    }

    pub(super) async fn write_status_logged(&self, status: &mut ScanStatus) {
        status.updated_at = OffsetDateTime::now_utc();
        if let Err(e) = self.write_status(status).await {
            tracing::warn!(error = %e, state = status.state.as_str(), "could not record the run state");
        }
    }
}

/// A run's export in `format`, encoded one assessment chunk at a time: each chunk's findings
/// joined with its identity records and with its change events against `baseline`.
fn export_chunks<'a>(
    assessor: &'a Assessor<'a>,
    baseline: Option<&'a changes::Baseline>,
    run: CurrentRun<'a>,
    context: crate::export::RunContext<'a>,
    format: crate::export::Format,
) -> Chunks<'a> {
    let mut encoder = crate::export::Encoder::new(format);
    let mut comparison = Comparison::new(baseline, run);
    let mut chunks = assessor.chunks(CHUNK_SUBJECTS).fuse();
    let mut finished = false;
    let pieces = std::iter::from_fn(move || {
        if finished {
            return None;
        }
        let Some(chunk) = chunks.next() else {
            finished = true;
            return Some(encoder.finish(&context));
        };
        let identities = crate::export::by_id(chunk.identities);
        let changes = crate::export::change_types(&comparison.compare(&chunk.findings));
        let rows = crate::export::rows(&chunk.findings, &identities, &changes);
        Some(encoder.encode(&rows, &context))
    });
    Box::new(pieces.map(|piece| {
        piece.map(Bytes::from).map_err(|e| StoreError::Io {
            operation: "export",
            path: String::new(),
            message: e.to_string(),
        })
    }))
}
