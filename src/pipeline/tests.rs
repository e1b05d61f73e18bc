//! Publishing against a store that fails on purpose, and the baseline read across chunks.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use time::OffsetDateTime;

use super::*;
use crate::results::records::RESULTS_SCHEMA_VERSION;
use crate::results::{
    self, LatestPointer, LocalStore, Lock, LockAttempt, NDJSON, ResultStore, RunState, ScanStatus,
    files,
};
use crate::snapshot::{AssessmentSettings, ScannerIdentity, TenantSnapshot};

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
        ownership: Default::default(),
        azure: crate::snapshot::azure::not_collected("not read in this test"),
        usage: None,
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
        .publish(
            manifest,
            prefix,
            &snapshot,
            &mut status,
            &crate::progress::Progress::new(),
        )
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
