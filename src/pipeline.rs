//! One assessment run from start to finish: collect, assess, write, publish.
//!
//! The ordering guarantees live here. Data files are written first, `manifest.json` last, and
//! `latest/{tenantId}.json` only after a complete manifest. A run that fails midway writes a
//! `failed` manifest (when its tenant is known), never moves `latest`, and records its state in
//! `scans/{runId}.json` so any instance can report it.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use crate::assess::{Assessment, assess};
use crate::collect;
use crate::graph::{GraphClient, GraphError};
use crate::inventory::{IdentityKind, IdentityRecord};
use crate::results::records::{FileEntry, RESULTS_SCHEMA_VERSION, RunCounts, RunError, Trigger};
use crate::results::{
    self, JSON, LatestPointer, Manifest, NDJSON, ResultStore, RunState, ScanStatus, StoreError,
    files,
};

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

/// Runs assessments against one Graph endpoint and one result store.
#[derive(Debug, Clone)]
pub struct Scanner {
    graph: GraphClient,
    store: Arc<dyn ResultStore>,
}

impl Scanner {
    /// A scanner reading `graph` and writing to `store`.
    pub fn new(graph: GraphClient, store: Arc<dyn ResultStore>) -> Self {
        Self { graph, store }
    }

    /// The result store.
    pub fn store(&self) -> &Arc<dyn ResultStore> {
        &self.store
    }

    /// The Graph client.
    pub fn graph(&self) -> &GraphClient {
        &self.graph
    }

    /// Reads the state of a run, if it exists.
    pub async fn status(&self, run_id: Uuid) -> Result<Option<ScanStatus>, StatusReadError> {
        let path = results::status_path(run_id);
        match self.store.get(&path).await? {
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
        self.write_status(&status).await?;
        Ok(status)
    }

    /// Assesses one managed identity; `Ok(None)` when the id is not a managed identity.
    pub async fn assess_identity(
        &self,
        object_id: Uuid,
    ) -> Result<Option<IdentityRecord>, GraphError> {
        let sp = collect::fetch_managed_identity(&self.graph, object_id).await?;
        Ok(sp.as_ref().map(IdentityRecord::from_service_principal))
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
        let mut manifest = Manifest {
            schema_version: RESULTS_SCHEMA_VERSION.to_owned(),
            tenant_id: String::new(),
            run_id: request.run_id,
            trigger: request.trigger,
            invocation_id: request.invocation_id.clone(),
            started_at,
            finished_at: started_at,
            status: RunState::Running,
            counts: RunCounts::default(),
            graph: Default::default(),
            files: Vec::new(),
            errors: Vec::new(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        status.state = RunState::Running;
        self.write_status_logged(&mut status).await;

        // 1. Who and where: the tenant comes from the scanner's own token.
        let (tenant_id, scanner_identity) = match collect::whoami(&self.graph).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "run failed before the tenant was known");
                manifest.errors.push(RunError {
                    stage: "auth".into(),
                    message: e.to_string(),
                });
                return self.finish_failed(manifest, None, &mut status).await;
            }
        };
        let prefix = results::run_prefix(&tenant_id, started_at, request.run_id);
        manifest.tenant_id = tenant_id.clone();
        status.tenant_id = Some(tenant_id.clone());
        status.results_prefix = Some(prefix.clone());
        self.write_status_logged(&mut status).await;
        tracing::info!(tenant_id = %tenant_id, prefix = %prefix, "run started");

        // 2. Collect.
        let snapshot =
            match collect::collect_tenant_as(&self.graph, tenant_id, scanner_identity).await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    tracing::error!(error = %e, "collection failed");
                    manifest.errors.push(RunError {
                        stage: "collect".into(),
                        message: e.to_string(),
                    });
                    manifest.graph = self.graph.stats().snapshot();
                    return self
                        .finish_failed(manifest, Some(prefix), &mut status)
                        .await;
                }
            };

        // 3. Assess (pure).
        let assessment = assess(&snapshot);
        manifest.counts = RunCounts {
            identities: assessment.identities.len(),
            system_assigned: assessment.count_kind(IdentityKind::SystemAssigned),
            user_assigned: assessment.count_kind(IdentityKind::UserAssigned),
            findings: 0,
        };
        manifest.graph = self.graph.stats().snapshot();

        // 4. Write the data files, then the manifest, then latest.
        let run_id = request.run_id.to_string();
        let metadata = [
            ("runId", run_id.as_str()),
            ("schemaVersion", RESULTS_SCHEMA_VERSION),
        ];
        let no_findings: [IdentityRecord; 0] = [];
        let writes = [
            (files::IDENTITIES, ndjson(&assessment.identities)),
            (files::FINDINGS, ndjson(&no_findings)),
        ];
        for (name, serialised) in writes {
            let path = format!("{prefix}/{name}");
            let (body, records) = match serialised {
                Ok(done) => done,
                Err(e) => {
                    manifest.errors.push(RunError {
                        stage: "write".into(),
                        message: e.to_string(),
                    });
                    return self
                        .finish_failed(manifest, Some(prefix), &mut status)
                        .await;
                }
            };
            let entry = FileEntry {
                name: name.to_owned(),
                content_type: NDJSON.to_owned(),
                bytes: body.len() as u64,
                records: Some(records),
            };
            if let Err(e) = self.store.put(&path, body, NDJSON, &metadata).await {
                tracing::error!(error = %e, "writing results failed");
                manifest.errors.push(RunError {
                    stage: "write".into(),
                    message: e.to_string(),
                });
                return self
                    .finish_failed(manifest, Some(prefix), &mut status)
                    .await;
            }
            manifest.files.push(entry);
        }

        manifest.status = RunState::Complete;
        manifest.finished_at = OffsetDateTime::now_utc();
        let manifest_path = format!("{prefix}/{}", files::MANIFEST);
        let written = match json_bytes(&manifest) {
            Ok(body) => self.store.put(&manifest_path, body, JSON, &metadata).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "writing the manifest failed");
            manifest.status = RunState::Failed;
            manifest.errors.push(RunError {
                stage: "write".into(),
                message: e.to_string(),
            });
            status.state = RunState::Failed;
            status.error = Some(e.to_string());
            self.write_status_logged(&mut status).await;
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
                run_id: request.run_id,
                prefix: prefix.clone(),
                manifest: manifest_path,
                finished_at: manifest.finished_at,
            };
            let written = match json_bytes(&latest) {
                Ok(body) => {
                    self.store
                        .put(
                            &results::latest_path(&manifest.tenant_id),
                            body,
                            JSON,
                            &metadata,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                // The run itself is whole; only the pointer is stale. Say so loudly.
                tracing::error!(error = %e, "updating the latest pointer failed");
                status.error = Some(format!(
                    "results are complete but latest/ was not updated: {e}"
                ));
            }
        }
        status.state = manifest.status;
        self.write_status_logged(&mut status).await;
        tracing::info!(
            status = manifest.status.as_str(),
            identities = manifest.counts.identities,
            graph_requests = manifest.graph.requests,
            "run finished"
        );
        RunOutcome {
            manifest,
            prefix: Some(prefix),
            assessment: Some(assessment),
        }
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
            let written = match json_bytes(&manifest) {
                Ok(body) => self.store.put(&path, body, JSON, &metadata).await,
                Err(e) => Err(e),
            };
            match written {
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
        let body = json_bytes(status)?;
        self.store
            .put(&results::status_path(status.run_id), body, JSON, &metadata)
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
pub fn ndjson<T: Serialize>(records: &[T]) -> Result<(Bytes, u64), StoreError> {
    let mut out = Vec::with_capacity(records.len() * 256);
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(serialise_error)?;
        out.push(b'\n');
    }
    Ok((Bytes::from(out), records.len() as u64))
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
