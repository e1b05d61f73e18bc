//! One assessment run from start to finish: collect, assess, write, publish.
//!
//! The ordering guarantees live here. Data files are written first (`identities.ndjson`,
//! `findings.ndjson`, `snapshot.json.gz`), `manifest.json` last, and `latest/{tenantId}.json`
//! only after a `complete` manifest. A run that fails midway writes a `failed` manifest (when its
//! tenant is known), never moves `latest`, and records its state in `scans/{runId}.json` so any
//! instance can report it. A run that could not see everything is `partial`, never `complete`.
//!
//! Memory beyond the collected snapshot stays bounded: the assessment is walked a chunk of
//! subjects at a time ([`Assessor::chunks`]), once for the counts and the report's selection and
//! once per file, and every file is streamed as it is produced.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::arm::AzurePlane;
use crate::assess::IdentityRecord;
use crate::assess::{Assessment, Assessor, CHUNK_SUBJECTS, assess};
use crate::changes::{self, Baseline, Comparison, CurrentRun};
use crate::collect::{self, CollectError};
use crate::graph::GraphClient;
use crate::report::{Selection, Totals};
use crate::results::records::{FileEntry, RESULTS_SCHEMA_VERSION, RunCounts, RunError, Trigger};
use crate::results::store::LOCK_TTL_SECONDS;
use crate::results::{
    self, GZIP, HTML, JSON, LatestPointer, Manifest, NDJSON, ResultStore, RunState, ScanStatus,
    StoreError, files,
};
use crate::results::{Chunks, Lock, LockAttempt};
use crate::snapshot::{AssessmentSettings, ScannerIdentity, TenantSnapshot};

/// Asks for one run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The run id (chosen by whoever accepted the request).
    pub run_id: Uuid,
    /// What started it.
    pub trigger: Trigger,
    /// The host's invocation id, for correlation.
    pub invocation_id: Option<String>,
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The manifest (also written to the store when the tenant was known).
    pub manifest: Manifest,
    /// The run folder, when the tenant was known.
    pub prefix: Option<String>,
    /// The most severe identities and findings, when the run got as far as assessing.
    pub highlights: Option<crate::summary::Highlights>,
}

/// The answer for one identity: its record, its findings, and what could not be read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityAssessment {
    /// The identity record (the same shape as a line of identities.ndjson).
    #[serde(flatten)]
    pub identity: IdentityRecord,
    /// Its findings.
    pub findings: Vec<crate::rules::Finding>,
    /// Data that could not be collected.
    pub skipped: Vec<crate::snapshot::CollectionGap>,
}

/// Runs assessments against one Graph endpoint and one result store.
#[derive(Debug, Clone)]
pub struct Scanner {
    graph: GraphClient,
    azure: AzurePlane,
    publisher: Publisher,
    settings: AssessmentSettings,
}

impl Scanner {
    /// A scanner reading `graph` and writing to `store`.
    pub fn new(
        graph: GraphClient,
        store: Arc<dyn ResultStore>,
        settings: AssessmentSettings,
    ) -> Self {
        Self {
            graph,
            azure: AzurePlane::off(),
            publisher: Publisher { store },
            settings,
        }
    }

    /// Reads the Azure plane as `azure` says (a new scanner has it off).
    pub fn with_azure(mut self, azure: AzurePlane) -> Self {
        self.azure = azure;
        self
    }

    /// The Azure plane configuration.
    pub fn azure(&self) -> &AzurePlane {
        &self.azure
    }

    /// The result store.
    pub fn store(&self) -> &Arc<dyn ResultStore> {
        &self.publisher.store
    }

    /// The Graph client.
    pub fn graph(&self) -> &GraphClient {
        &self.graph
    }

    /// Reads the state of a run, if it exists.
    pub async fn status(&self, run_id: Uuid) -> Result<Option<ScanStatus>, StatusReadError> {
        let path = results::status_path(run_id);
        match self.publisher.store.get(&path).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StatusReadError::Corrupt {
                        path,
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Records that a run was accepted and is waiting for a worker.
    pub async fn mark_queued(
        &self,
        run_id: Uuid,
        trigger: Trigger,
    ) -> Result<ScanStatus, StoreError> {
        let status = ScanStatus::queued(run_id, trigger, OffsetDateTime::now_utc());
        self.publisher.write_status(&status).await?;
        Ok(status)
    }

    /// Assesses one managed identity with the same rules as a full run; `Ok(None)` when the id
    /// is not a managed identity.
    pub async fn assess_identity(
        &self,
        object_id: Uuid,
    ) -> Result<Option<IdentityAssessment>, CollectError> {
        let Some(snapshot) =
            collect::collect_identity(&self.graph, object_id, self.settings.clone()).await?
        else {
            return Ok(None);
        };
        let assessment = assess(&snapshot);
        let Some(identity) = assessment.identities.into_iter().next() else {
            return Ok(None);
        };
        let findings = assessment
            .findings
            .into_iter()
            .filter(|f| f.identity_id == identity.id)
            .collect();
        Ok(Some(IdentityAssessment {
            identity,
            findings,
            skipped: snapshot.gaps,
        }))
    }

    /// The tenant the scanner's identity belongs to (from its token).
    pub async fn tenant_id(&self) -> Result<String, CollectError> {
        collect::whoami(&self.graph).await.map(|(tenant, _)| tenant)
    }

    /// The run currently holding the tenant's lock, if any.
    pub async fn running_run(&self, tenant_id: &str) -> Result<Option<String>, StoreError> {
        self.publisher
            .store
            .lock_holder(&results::lock_path(tenant_id))
            .await
    }

    /// Runs a full assessment. Failures become a `failed` run, not an `Err`; only the outcome's
    /// manifest says how it went. `Err(Busy)` when another run of the tenant holds its lock (only
    /// one run per tenant at a time); nothing is written then.
    pub async fn run(&self, request: &RunRequest) -> Result<RunOutcome, Busy> {
        let span = tracing::info_span!(
            "run",
            run_id = %request.run_id,
            invocation_id = request.invocation_id.as_deref().unwrap_or("")
        );
        self.run_in_span(request).instrument(span).await
    }

    async fn run_in_span(&self, request: &RunRequest) -> Result<RunOutcome, Busy> {
        let started_at = OffsetDateTime::now_utc();
        let mut status = match self.status(request.run_id).await {
            Ok(Some(existing)) => existing,
            _ => ScanStatus::queued(request.run_id, request.trigger, started_at),
        };
        let mut manifest = Manifest::started(
            request.run_id,
            request.trigger,
            request.invocation_id.clone(),
            started_at,
        );

        // 1. Who and where: the tenant comes from the scanner's own token.
        let (tenant_id, scanner_identity) = match collect::whoami(&self.graph).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "run failed before the tenant was known");
                manifest.errors.push(RunError {
                    stage: "auth".into(),
                    message: e.to_string(),
                });
                return Ok(self
                    .publisher
                    .finish_failed(manifest, None, &mut status)
                    .await);
            }
        };

        // 2. One run per tenant at a time.
        let run_id = request.run_id.to_string();
        let lock_path = results::lock_path(&tenant_id);
        let lock = match self.publisher.store.try_lock(&lock_path, &run_id).await {
            Ok(LockAttempt::Acquired(lock)) => lock,
            Ok(LockAttempt::Held { holder }) => {
                tracing::warn!(
                    running = holder.as_deref().unwrap_or("unknown"),
                    "another run of this tenant is in progress"
                );
                return Err(Busy {
                    running_run_id: holder,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "could not take the tenant lock");
                manifest.tenant_id = tenant_id;
                manifest.errors.push(RunError {
                    stage: "lock".into(),
                    message: e.to_string(),
                });
                return Ok(self
                    .publisher
                    .finish_failed(manifest, None, &mut status)
                    .await);
            }
        };
        let renewal = self.publisher.keep_alive(lock.clone());
        let outcome = self
            .run_locked(tenant_id, scanner_identity, manifest, &mut status)
            .await;
        renewal.abort();
        if let Err(e) = self.publisher.store.release_lock(&lock).await {
            tracing::warn!(error = %e, "could not release the tenant lock; it expires by itself");
        }
        Ok(outcome)
    }

    async fn run_locked(
        &self,
        tenant_id: String,
        scanner_identity: ScannerIdentity,
        mut manifest: Manifest,
        status: &mut ScanStatus,
    ) -> RunOutcome {
        let prefix = results::run_prefix(&tenant_id, manifest.started_at, manifest.run_id);
        manifest.tenant_id = tenant_id.clone();
        status.state = RunState::Running;
        status.error = None;
        status.tenant_id = Some(tenant_id.clone());
        status.results_prefix = Some(prefix.clone());
        self.publisher.write_status_logged(status).await;
        tracing::info!(tenant_id = %tenant_id, prefix = %prefix, "run started");

        // 3. Inputs besides Graph: accepted risks.
        let mut settings = self.settings.clone();
        match self.publisher.read_suppressions().await {
            Ok(found) => settings.suppressions = found,
            Err(warning) => {
                tracing::error!("{warning}");
                manifest.warnings.push(warning);
            }
        }

        // 4. Collect.
        let collected = collect::collect_tenant_as(
            &self.graph,
            &self.azure,
            tenant_id,
            scanner_identity,
            settings,
        )
        .await;
        manifest.graph = self.graph.stats().snapshot();
        crate::telemetry::memory_mark("collected");
        let snapshot = match collected {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::error!(error = %e, "collection failed");
                manifest.errors.push(RunError {
                    stage: "collect".into(),
                    message: e.to_string(),
                });
                return self
                    .publisher
                    .finish_failed(manifest, Some(prefix), status)
                    .await;
            }
        };

        // 5. Assess (pure) and publish.
        self.publisher
            .publish(manifest, prefix, &snapshot, status)
            .await
    }
}

/// Another run of the same tenant holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another run of this tenant is in progress ({})", running_run_id.as_deref().unwrap_or("run id unknown"))]
pub struct Busy {
    /// The run holding the lock, when recorded.
    pub running_run_id: Option<String>,
}

/// Writes a run's files in order and keeps `latest/` and `scans/` consistent.
#[derive(Debug, Clone)]
pub struct Publisher {
    store: Arc<dyn ResultStore>,
}

impl Publisher {
    /// A publisher writing to `store`.
    pub fn new(store: Arc<dyn ResultStore>) -> Self {
        Self { store }
    }

    /// Renews a held lock in the background until the returned task is aborted.
    fn keep_alive(&self, lock: Lock) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        tokio::spawn(async move {
            let every =
                std::time::Duration::from_secs(u64::from(LOCK_TTL_SECONDS.unsigned_abs()) / 3);
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = store.renew_lock(&lock).await {
                    tracing::warn!(error = %e, "could not renew the tenant lock");
                }
            }
        })
    }

    /// Reads `suppressions.json` from the store root; a malformed file is a warning (the run
    /// goes on without suppressions), a missing one is no suppressions.
    pub async fn read_suppressions(
        &self,
    ) -> Result<Vec<crate::snapshot::suppressions::Suppression>, String> {
        match self
            .store
            .get(crate::snapshot::suppressions::SUPPRESSIONS_FILE)
            .await
        {
            Ok(None) => Ok(Vec::new()),
            Ok(Some(bytes)) => {
                crate::assess::suppressions::parse(&bytes).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!(
                "suppressions.json could not be read, so no suppression was applied: {e}"
            )),
        }
    }

    /// The newest complete run of the tenant, reduced to what change tracking needs, if there is
    /// one.
    async fn read_baseline(&self, tenant_id: &str) -> Result<Option<Baseline>, String> {
        let unreadable = |what: &str, e: &dyn std::fmt::Display| {
            format!(
                "the previous run's {what} could not be read, so every finding is reported as new: {e}"
            )
        };
        let Some(bytes) = self
            .store
            .get(&results::latest_path(tenant_id))
            .await
            .map_err(|e| unreadable("latest pointer", &e))?
        else {
            return Ok(None);
        };
        let pointer: LatestPointer =
            serde_json::from_slice(&bytes).map_err(|e| unreadable("latest pointer", &e))?;
        let path = format!("{}/{}", pointer.prefix, files::FINDINGS);
        let mut body = self
            .store
            .get_stream(&path)
            .await
            .map_err(|e| unreadable("findings", &e))?
            .ok_or_else(|| unreadable("findings", &"the file is missing"))?;
        // Line by line as the file arrives: only a chunk and the compact baseline are held.
        let mut baseline = Baseline::new(pointer.run_id, pointer.finished_at);
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            pending.extend_from_slice(&chunk.map_err(|e| unreadable("findings", &e))?);
            if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
                baseline
                    .read_ndjson(&pending[..end])
                    .map_err(|e| unreadable("findings", &e))?;
                pending.drain(..=end);
            }
        }
        baseline
            .read_ndjson(&pending)
            .map_err(|e| unreadable("findings", &e))?;
        Ok(Some(baseline))
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
    ) -> RunOutcome {
        let assessor = Assessor::new(snapshot);
        crate::telemetry::memory_mark("indexed");

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
        for chunk in assessor.chunks(CHUNK_SUBJECTS) {
            counts.add(&chunk.identities, &chunk.findings);
            totals.add(&chunk.identities, &chunk.findings);
            selection.add_subjects(&chunk.identities, &chunk.findings);
            let changes = comparison.compare(&chunk.findings);
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
        let writes: [(&str, &str, Body<'_>); 4] = [
            (files::IDENTITIES, NDJSON, Body::Ndjson(identities)),
            (files::FINDINGS, NDJSON, Body::Ndjson(findings)),
            (files::CHANGES, NDJSON, Body::Ndjson(changes)),
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
                        stage: "write".into(),
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
                    stage: "write".into(),
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
                stage: "write".into(),
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

        if manifest.status == RunState::Complete {
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

    async fn put_json<T: Serialize>(
        &self,
        path: &str,
        value: &T,
        metadata: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let body = json_bytes(value)?;
        self.store.put(path, body, JSON, metadata).await
    }

    async fn finish_failed(
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

    async fn write_status(&self, status: &ScanStatus) -> Result<(), StoreError> {
        let run_id = status.run_id.to_string();
        let metadata = [
            ("runId", run_id.as_str()),
            ("schemaVersion", RESULTS_SCHEMA_VERSION),
        ];
        self.put_json(&results::status_path(status.run_id), status, &metadata)
            .await
    }

    async fn write_status_logged(&self, status: &mut ScanStatus) {
        status.updated_at = OffsetDateTime::now_utc();
        if let Err(e) = self.write_status(status).await {
            tracing::warn!(error = %e, state = status.state.as_str(), "could not record the run state");
        }
    }
}

/// Reading a run's state failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusReadError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The status document is not valid.
    #[error("status document {path} is corrupt: {message}")]
    Corrupt {
        /// Its path.
        path: String,
        /// Parser error.
        message: String,
    },
}

/// A file body: produced whole, or streamed as NDJSON chunks.
enum Body<'a> {
    Whole(Result<Bytes, StoreError>),
    Ndjson(NdjsonChunks<'a>),
    Stream(Chunks<'a>),
}

/// NDJSON serialised lazily, one batch of records (an assessment chunk) at a time.
pub struct NdjsonChunks<'a> {
    remaining: Box<dyn Iterator<Item = Result<Vec<u8>, serde_json::Error>> + Send + 'a>,
    /// How many records the file holds.
    pub records: u64,
}

impl std::fmt::Debug for NdjsonChunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonChunks")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl Iterator for NdjsonChunks<'_> {
    type Item = Result<Bytes, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.remaining
            .next()
            .map(|chunk| chunk.map(Bytes::from).map_err(serialise_error))
    }
}

/// Serialises batches of records as NDJSON as they are produced, one upload chunk per batch;
/// `records` is how many they hold in all (for the manifest).
pub fn ndjson_stream<'a, B, T>(
    records: u64,
    batches: impl Iterator<Item = B> + Send + 'a,
) -> NdjsonChunks<'a>
where
    B: IntoIterator<Item = T>,
    T: Serialize,
{
    let chunks = batches.map(|batch| {
        let mut out = Vec::with_capacity(64 * 1024);
        for record in batch {
            serde_json::to_writer(&mut out, &record)?;
            out.push(b'\n');
        }
        Ok(out)
    });
    NdjsonChunks {
        remaining: Box::new(chunks),
        records,
    }
}

/// Serialises a value as gzip-compressed JSON.
pub fn gzip_json<T: Serialize>(value: &T) -> Result<Bytes, StoreError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // serde_json writes token by token; unbuffered, each tiny write costs the encoder a pass
    // over its whole output buffer (at 50,000 identities that was seconds of memset).
    let mut buffered = std::io::BufWriter::with_capacity(256 * 1024, &mut encoder);
    serde_json::to_writer(&mut buffered, value).map_err(serialise_error)?;
    buffered
        .flush()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    drop(buffered);
    encoder
        .flush()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    let bytes = encoder
        .finish()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    Ok(Bytes::from(bytes))
}

fn json_bytes<T: Serialize>(value: &T) -> Result<Bytes, StoreError> {
    serde_json::to_vec_pretty(value)
        .map(Bytes::from)
        .map_err(serialise_error)
}

fn serialise_error(e: serde_json::Error) -> StoreError {
    StoreError::Io {
        operation: "serialise",
        path: String::new(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::LocalStore;
    use async_trait::async_trait;

    /// A local store whose writes to one file always fail (after the SDK's retries, in real life).
    #[derive(Debug)]
    struct FailingStore {
        inner: LocalStore,
        fail_suffix: &'static str,
    }

    impl FailingStore {
        fn check(&self, path: &str) -> Result<(), StoreError> {
            if path.ends_with(self.fail_suffix) {
                return Err(StoreError::Io {
                    operation: "write",
                    path: path.to_owned(),
                    message: "injected: 503 ServerBusy after 8 retries".into(),
                });
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ResultStore for FailingStore {
        async fn put(
            &self,
            path: &str,
            body: Bytes,
            content_type: &str,
            metadata: &[(&str, &str)],
        ) -> Result<(), StoreError> {
            self.check(path)?;
            self.inner.put(path, body, content_type, metadata).await
        }
        async fn get(&self, path: &str) -> Result<Option<Bytes>, StoreError> {
            self.inner.get(path).await
        }
        fn location(&self, path: &str) -> String {
            self.inner.location(path)
        }
        async fn put_chunks(
            &self,
            path: &str,
            chunks: results::Chunks<'_>,
            content_type: &str,
            metadata: &[(&str, &str)],
        ) -> Result<(), StoreError> {
            self.check(path)?;
            self.inner
                .put_chunks(path, chunks, content_type, metadata)
                .await
        }
        async fn try_lock(&self, path: &str, holder: &str) -> Result<LockAttempt, StoreError> {
            self.inner.try_lock(path, holder).await
        }
        async fn renew_lock(&self, lock: &Lock) -> Result<(), StoreError> {
            self.inner.renew_lock(lock).await
        }
        async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
            self.inner.release_lock(lock).await
        }
        async fn lock_holder(&self, path: &str) -> Result<Option<String>, StoreError> {
            self.inner.lock_holder(path).await
        }
    }

    fn snapshot() -> TenantSnapshot {
        TenantSnapshot {
            schema_version: "1.0.0".into(),
            tenant_id: "t1".into(),
            collected_at: OffsetDateTime::now_utc(),
            graph_endpoint: "https://graph.microsoft.com".into(),
            scanner: ScannerIdentity::default(),
            settings: AssessmentSettings::default(),
            managed_identities: Vec::new(),
            credential_service_principals: Default::default(),
            principals: Default::default(),
            resources: Vec::new(),
            role_definitions: Default::default(),
            role_assignments: Default::default(),
            role_eligibility_schedules: Default::default(),
            role_assignment_schedules: Default::default(),
            delegated_grants: Default::default(),
            azure: crate::snapshot::azure::not_collected("not read in this test"),
            gaps: Vec::new(),
        }
    }

    /// The previous run's findings are read line by line across chunk boundaries (a local file
    /// arrives 1 MiB at a time), keeping every finding and rejecting a corrupt line.
    #[tokio::test]
    async fn the_baseline_is_read_line_by_line_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ResultStore> = Arc::new(LocalStore::new(dir.path()));
        let publisher = Publisher::new(store.clone());
        let run_id = Uuid::from_u128(7);
        let pointer = LatestPointer {
            schema_version: RESULTS_SCHEMA_VERSION.to_owned(),
            tenant_id: "t1".into(),
            run_id,
            prefix: "runs/t1/previous".into(),
            manifest: "runs/t1/previous/manifest.json".into(),
            finished_at: OffsetDateTime::UNIX_EPOCH,
        };
        let put = |path: String, body: Vec<u8>| {
            let store = store.clone();
            async move {
                store
                    .put(&path, Bytes::from(body), NDJSON, &[])
                    .await
                    .expect("write");
            }
        };
        put(
            results::latest_path("t1"),
            serde_json::to_vec(&pointer).expect("serialises"),
        )
        .await;
        let finding = |i: usize| {
            serde_json::json!({
                "findingId": format!("finding-{i:05}"),
                "ruleId": "MI-GRAPH-001",
                "identityId": "subject",
                "identityName": "name",
                "title": "title",
                "severity": "high",
                "evidence": {"padding": "x".repeat(700)},
            })
        };
        let lines: Vec<u8> = (0..3_000)
            .flat_map(|i| {
                let mut line = serde_json::to_vec(&finding(i)).expect("serialises");
                line.push(b'\n');
                line
            })
            .collect();
        assert!(lines.len() > 2 * 1024 * 1024, "spans several chunks");
        let path = format!("runs/t1/previous/{}", files::FINDINGS);
        put(path.clone(), lines.clone()).await;
        let baseline = publisher
            .read_baseline("t1")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(baseline.len(), 3_000);
        assert_eq!(baseline.run_id, run_id);

        let mut corrupt = lines;
        corrupt.extend_from_slice(b"{\"findingId\": \"half a line");
        put(path, corrupt).await;
        let error = publisher.read_baseline("t1").await.expect_err("corrupt");
        assert!(
            error.contains("every finding is reported as new"),
            "{error}"
        );
    }

    async fn publish(store: Arc<dyn ResultStore>) -> RunOutcome {
        let run_id = Uuid::new_v4();
        let started = OffsetDateTime::now_utc();
        let manifest = Manifest::started(run_id, Trigger::Cli, None, started);
        let prefix = results::run_prefix("t1", started, run_id);
        let mut status = ScanStatus::queued(run_id, Trigger::Cli, started);
        let snapshot = snapshot();
        Publisher::new(store)
            .publish(manifest, prefix, &snapshot, &mut status)
            .await
    }

    #[tokio::test]
    async fn a_write_that_ultimately_fails_fails_the_run_and_keeps_latest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = publish(Arc::new(LocalStore::new(dir.path()))).await;
        assert_eq!(good.manifest.status, RunState::Complete);
        let latest_before = LocalStore::new(dir.path())
            .get("latest/t1.json")
            .await
            .expect("read");

        for fail_suffix in ["findings.ndjson", "report.html", "manifest.json"] {
            let store = Arc::new(FailingStore {
                inner: LocalStore::new(dir.path()),
                fail_suffix,
            });
            let outcome = publish(store).await;
            assert_eq!(outcome.manifest.status, RunState::Failed, "{fail_suffix}");
            assert!(
                outcome
                    .manifest
                    .errors
                    .iter()
                    .any(|e| e.stage == "write" && e.message.contains("injected")),
                "{fail_suffix}: the manifest says why"
            );
            let latest_after = LocalStore::new(dir.path())
                .get("latest/t1.json")
                .await
                .expect("read");
            assert_eq!(
                latest_before, latest_after,
                "{fail_suffix}: latest is untouched"
            );
            if fail_suffix != "manifest.json" {
                let written = LocalStore::new(dir.path())
                    .get(&format!(
                        "{}/manifest.json",
                        outcome.prefix.as_deref().expect("prefix")
                    ))
                    .await
                    .expect("read")
                    .expect("a failed manifest is written");
                assert!(String::from_utf8_lossy(&written).contains("\"failed\""));
            }
        }
    }
}
