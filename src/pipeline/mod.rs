//! One assessment run from start to finish: collect, assess, write, publish.
//!
//! The ordering guarantees live here. Data files are written first (`identities.ndjson`,
//! `findings.ndjson`, `snapshot.json.gz`), `manifest.json` last, and `latest/{tenantId}.json`
//! only after a `complete` manifest. A run that fails midway writes a `failed` manifest (when its
//! tenant is known), never moves `latest`, and records its state in `scans/{runId}.json` so any
//! instance can report it. A run that could not see everything is `partial`, never `complete`.
//!
//! Memory beyond the collected snapshot stays bounded: the assessment is walked a chunk of
//! subjects at a time ([`crate::assess::Assessor::chunks`]), once for the counts and the
//! report's selection and once per file, and every file is streamed as it is produced.
//!
//! - [`run`]: the [`Scanner`], one run in order (who, lock, inputs, collect, publish);
//! - [`publish`]: the [`Publisher`], which writes a run's files, manifest, `latest/` and status;
//! - [`baseline`]: what a run reads back from the store (the previous run's findings,
//!   `suppressions.json`);
//! - [`encode`]: NDJSON and gzip-JSON bodies, streamed.

pub mod baseline;
pub mod encode;
pub mod preflight;
pub mod publish;
pub mod run;

use serde::Serialize;
use uuid::Uuid;

pub use encode::{NdjsonChunks, gzip_json, ndjson_stream};
pub use publish::Publisher;
pub use run::{Queued, Scanner};

use crate::assess::IdentityRecord;
use crate::results::records::Trigger;
use crate::results::{Manifest, StoreError};

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

impl RunOutcome {
    /// A run that could not even start its work (its task did not run to the end).
    pub fn not_started(request: &RunRequest, message: String) -> Self {
        let mut manifest = Manifest::started(
            request.run_id,
            request.trigger,
            request.invocation_id.clone(),
            time::OffsetDateTime::now_utc(),
        );
        manifest.status = crate::results::RunState::Failed;
        manifest.errors.push(crate::results::records::RunError {
            stage: crate::results::records::RunStage::Run,
            message,
        });
        Self {
            manifest,
            prefix: None,
            highlights: None,
        }
    }
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

/// Another run of the same tenant holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("another run of this tenant is in progress ({})", running_run_id.as_deref().unwrap_or("run id unknown"))]
pub struct Busy {
    /// The run holding the lock, when recorded.
    pub running_run_id: Option<String>,
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

#[cfg(test)]
mod tests;
