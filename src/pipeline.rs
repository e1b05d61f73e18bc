//! One assessment run from start to finish: collect, assess, write, publish.
//!
//! The ordering guarantees live here. Data files are written first (`identities.ndjson`,
//! `findings.ndjson`, `snapshot.json.gz`), `manifest.json` last, and `latest/{tenantId}.json`
//! only after a `complete` manifest. A run that fails midway writes a `failed` manifest (when its
//! tenant is known), never moves `latest`, and records its state in `scans/{runId}.json` so any
//! instance can report it. A run that could not see everything is `partial`, never `complete`.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::assess::{Assessment, assess};
use crate::collect::{self, CollectError};
use crate::graph::GraphClient;
use crate::inventory::{IdentityKind, IdentityRecord};
use crate::results::records::{
    FileEntry, RESULTS_SCHEMA_VERSION, RunCounts, RunError, SeverityCounts, Trigger,
};
use crate::results::{
    self, GZIP, JSON, LatestPointer, Manifest, NDJSON, ResultStore, RunState, ScanStatus,
    StoreError, files,
};
use crate::snapshot::{AssessmentSettings, TenantSnapshot};

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
    /// The assessment, when collection succeeded.
    pub assessment: Option<Assessment>,
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
            publisher: Publisher { store },
            settings,
        }
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

    /// Runs a full assessment. Failures become a `failed` run, not an `Err`; only the outcome's
    /// manifest says how it went.
    pub async fn run(&self, request: &RunRequest) -> RunOutcome {
        let span = tracing::info_span!(
            "run",
            run_id = %request.run_id,
            invocation_id = request.invocation_id.as_deref().unwrap_or("")
        );
        self.run_in_span(request).instrument(span).await
    }

    async fn run_in_span(&self, request: &RunRequest) -> RunOutcome {
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
        status.state = RunState::Running;
        status.error = None;
        self.publisher.write_status_logged(&mut status).await;

        // 1. Who and where: the tenant comes from the scanner's own token.
        let (tenant_id, scanner_identity) = match collect::whoami(&self.graph).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "run failed before the tenant was known");
                manifest.errors.push(RunError {
                    stage: "auth".into(),
                    message: e.to_string(),
                });
                return self
                    .publisher
                    .finish_failed(manifest, None, &mut status)
                    .await;
            }
        };
        let prefix = results::run_prefix(&tenant_id, started_at, request.run_id);
        manifest.tenant_id = tenant_id.clone();
        status.tenant_id = Some(tenant_id.clone());
        status.results_prefix = Some(prefix.clone());
        self.publisher.write_status_logged(&mut status).await;
        tracing::info!(tenant_id = %tenant_id, prefix = %prefix, "run started");

        // 2. Collect.
        let snapshot = match collect::collect_tenant_as(
            &self.graph,
            tenant_id,
            scanner_identity,
            self.settings.clone(),
        )
        .await
        {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::error!(error = %e, "collection failed");
                manifest.errors.push(RunError {
                    stage: "collect".into(),
                    message: e.to_string(),
                });
                manifest.graph = self.graph.stats().snapshot();
                return self
                    .publisher
                    .finish_failed(manifest, Some(prefix), &mut status)
                    .await;
            }
        };
        manifest.graph = self.graph.stats().snapshot();

        // 3. Assess (pure) and publish.
        let assessment = assess(&snapshot);
        self.publisher
            .publish(manifest, prefix, &snapshot, assessment, &mut status)
            .await
    }
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

    /// Writes the data files, the manifest (last) and, for a complete run, `latest/`.
    pub async fn publish(
        &self,
        mut manifest: Manifest,
        prefix: String,
        snapshot: &TenantSnapshot,
        assessment: Assessment,
        status: &mut ScanStatus,
    ) -> RunOutcome {
        manifest.counts = RunCounts {
            identities: assessment.identities.len(),
            system_assigned: assessment.count_kind(IdentityKind::SystemAssigned),
            user_assigned: assessment.count_kind(IdentityKind::UserAssigned),
            credential_service_principals: snapshot
                .credential_service_principals
                .known()
                .map(Vec::len),
            findings: assessment.findings.len(),
            findings_by_severity: SeverityCounts::of(&assessment.findings),
        };
        manifest.skipped = snapshot.gaps.clone();
        let run_id = manifest.run_id.to_string();
        let metadata = [
            ("runId", run_id.as_str()),
            ("schemaVersion", RESULTS_SCHEMA_VERSION),
        ];
        let writes = [
            (files::IDENTITIES, NDJSON, ndjson(&assessment.identities)),
            (files::FINDINGS, NDJSON, ndjson(&assessment.findings)),
            (files::SNAPSHOT, GZIP, gzip_json(snapshot)),
        ];
        for (name, content_type, serialised) in writes {
            let path = format!("{prefix}/{name}");
            let written = match serialised {
                Ok((body, records)) => {
                    let entry = FileEntry {
                        name: name.to_owned(),
                        content_type: content_type.to_owned(),
                        bytes: body.len() as u64,
                        records,
                    };
                    self.store
                        .put(&path, body, content_type, &metadata)
                        .await
                        .map(|()| entry)
                }
                Err(e) => Err(e),
            };
            match written {
                Ok(entry) => manifest.files.push(entry),
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

        manifest.status = if snapshot.gaps.is_empty() {
            RunState::Complete
        } else {
            RunState::Partial
        };
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
                assessment: Some(assessment),
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
            for gap in &manifest.skipped {
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
            assessment: Some(assessment),
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
            assessment: None,
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

/// Serialises records as NDJSON: one compact JSON document per line.
pub fn ndjson<T: Serialize>(records: &[T]) -> Result<(Bytes, Option<u64>), StoreError> {
    let mut out = Vec::with_capacity(records.len() * 256);
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(serialise_error)?;
        out.push(b'\n');
    }
    Ok((Bytes::from(out), Some(records.len() as u64)))
}

/// Serialises a value as gzip-compressed JSON.
pub fn gzip_json<T: Serialize>(value: &T) -> Result<(Bytes, Option<u64>), StoreError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut encoder, value).map_err(serialise_error)?;
    encoder
        .flush()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    let bytes = encoder
        .finish()
        .map_err(|e| serialise_error(serde_json::Error::io(e)))?;
    Ok((Bytes::from(bytes), None))
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
