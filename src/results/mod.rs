//! Results: where a run's files go, what the manifest, latest pointer and scan status say, and
//! the stores (Blob Storage, local directory) that hold them.
//!
//! Layout inside the results container (or the local output directory):
//!
//! ```text
//! runs/{tenantId}/{yyyy}/{mm}/{dd}/{runId}/identities.ndjson
//! runs/{tenantId}/{yyyy}/{mm}/{dd}/{runId}/findings.ndjson
//! runs/{tenantId}/{yyyy}/{mm}/{dd}/{runId}/snapshot.json.gz
//! runs/{tenantId}/{yyyy}/{mm}/{dd}/{runId}/manifest.json      (written last)
//! latest/{tenantId}.json                                       (newest complete run)
//! scans/{runId}.json                                           (state of a run, any trigger)
//! locks/{tenantId}.lock                                        (leased while a run is in progress)
//! suppressions.json                                            (accepted risks, maintained by people)
//! ```

pub mod records;
pub mod store;

pub use records::{LatestPointer, Manifest, RunState, ScanStatus};
pub use store::{BlobStore, Chunks, LocalStore, Lock, LockAttempt, ResultStore, StoreError};

use time::OffsetDateTime;
use uuid::Uuid;

/// Media type of NDJSON files.
pub const NDJSON: &str = "application/x-ndjson";
/// Media type of JSON documents.
pub const JSON: &str = "application/json";
/// Media type of the HTML report.
pub const HTML: &str = "text/html; charset=utf-8";
/// Media type of gzip files.
pub const GZIP: &str = "application/gzip";
/// Media type of CSV files (RFC 4180, with the header row).
pub const CSV: &str = "text/csv; charset=utf-8; header=present";

/// File names inside a run folder.
pub mod files {
    /// One managed identity per line.
    pub const IDENTITIES: &str = "identities.ndjson";
    /// One finding per line.
    pub const FINDINGS: &str = "findings.ndjson";
    /// Change events since the previous complete run.
    pub const CHANGES: &str = "changes.ndjson";
    /// The privilege graph in BloodHound CE's OpenGraph format.
    pub const ATTACK_GRAPH: &str = "attack-graph.json";
    /// The self-contained HTML report.
    pub const REPORT: &str = "report.html";
    /// The tenant snapshot the run assessed (replay it with `--from-snapshot`).
    pub const SNAPSHOT: &str = "snapshot.json.gz";
    /// One row per finding, RFC 4180 (`crate::export::csv`).
    pub const FINDINGS_CSV: &str = "findings.csv";
    /// One OCSF Detection Finding event per finding (`crate::export::ocsf`).
    pub const FINDINGS_OCSF: &str = "findings.ocsf.json";
    /// The run's manifest, written last.
    pub const MANIFEST: &str = "manifest.json";
}

/// `runs/{tenantId}/{yyyy}/{mm}/{dd}/{runId}` for a run that started at `started_at`.
pub fn run_prefix(tenant_id: &str, started_at: OffsetDateTime, run_id: Uuid) -> String {
    format!(
        "runs/{tenant_id}/{:04}/{:02}/{:02}/{run_id}",
        started_at.year(),
        u8::from(started_at.month()),
        started_at.day()
    )
}

/// `latest/{tenantId}.json`.
pub fn latest_path(tenant_id: &str) -> String {
    format!("latest/{tenant_id}.json")
}

/// `locks/{tenantId}.lock`: leased while a run of that tenant is in progress.
pub fn lock_path(tenant_id: &str) -> String {
    format!("locks/{tenant_id}.lock")
}

/// `locks/{tenantId}.queue.lock`: leased for the moment a request is queued, so concurrent
/// requests for one tenant queue one run between them.
pub fn queue_lock_path(tenant_id: &str) -> String {
    format!("locks/{tenant_id}.queue.lock")
}

/// `scans/tenants/{tenantId}.json`: the run most recently queued for a tenant.
pub fn queued_pointer_path(tenant_id: &str) -> String {
    format!("scans/tenants/{tenant_id}.json")
}

/// `scans/{runId}.json`.
pub fn status_path(run_id: Uuid) -> String {
    format!("scans/{run_id}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_prefix_is_date_partitioned() {
        let at = time::macros::datetime!(2026-03-07 02:00 UTC);
        let id = Uuid::nil();
        assert_eq!(
            run_prefix("t", at, id),
            "runs/t/2026/03/07/00000000-0000-0000-0000-000000000000"
        );
    }
}
