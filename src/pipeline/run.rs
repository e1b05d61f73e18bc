//! The [`Scanner`]: one run in order. Who and where (the scanner's token), one run per tenant
//! (the lock, renewed while the run works), the inputs besides Graph, collection, then the
//! [`Publisher`]. Also the single-identity assessment and run status reads.

use crate::progress::{Phase, Progress};
use crate::usage::{self, UsagePlane};
use std::sync::Arc;

use time::OffsetDateTime;
use tracing::Instrument;
use uuid::Uuid;

use std::time::Duration;

use super::{Busy, IdentityAssessment, Publisher, RunOutcome, RunRequest, StatusReadError};
use crate::arm::AzurePlane;
use crate::assess::assess;
use crate::collect::{self, CollectError};
use crate::config::{DEFAULT_RUN_TIMEOUT, RUN_TIMEOUT_VAR};
use crate::graph::GraphClient;
use crate::results::records::{FailureReason, RunError, RunStage, Trigger};
use crate::results::{self, LockAttempt, Manifest, ResultStore, RunState, ScanStatus, StoreError};
use crate::snapshot::{AssessmentSettings, ScannerIdentity};

/// How long a request waits for the tenant's queue lock before it gives up (503).
const QUEUE_LOCK_WAIT: Duration = Duration::from_secs(15);
/// A run still `queued` after this long lost its message: requests no longer join it.
const QUEUED_RUN_STALE_AFTER: time::Duration = time::Duration::hours(1);

/// What [`Scanner::queue_run`] did.
#[derive(Debug, Clone)]
pub enum Queued {
    /// A new run was queued; its message still has to be sent.
    New(ScanStatus),
    /// A run of the tenant was already queued: the request joins it.
    Existing(ScanStatus),
}

/// `scans/tenants/{tenantId}.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueuedPointer {
    run_id: Uuid,
}

/// Runs assessments against one Graph endpoint and one result store.
#[derive(Debug, Clone)]
pub struct Scanner {
    graph: GraphClient,
    azure: AzurePlane,
    usage: UsagePlane,
    publisher: Publisher,
    settings: AssessmentSettings,
    run_timeout: Duration,
    /// Where runs report their progress (a new one per run when unset).
    progress: Option<Progress>,
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
            usage: UsagePlane::off(),
            publisher: Publisher::new(store),
            settings,
            run_timeout: DEFAULT_RUN_TIMEOUT,
            progress: None,
        }
    }

    /// Stops runs that take longer than `timeout` (a new scanner uses [`DEFAULT_RUN_TIMEOUT`]).
    pub fn with_run_timeout(mut self, timeout: Duration) -> Self {
        self.run_timeout = timeout;
        self
    }

    /// Reports every run's progress into `progress` (the CLI draws it); without it each run
    /// gets its own, which only its `scans/{runId}.json` shows.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Reads what identities used from `usage`'s workspace (a new scanner has it off).
    pub fn with_usage(mut self, usage: UsagePlane) -> Self {
        self.usage = usage;
        self
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

    /// Queues a run of `tenant_id` requested over HTTP, unless one is already queued: one queued
    /// run per tenant, however many requests arrive at once. The decision is taken under the
    /// tenant's queue lock, so concurrent requests (on any instance) see each other.
    pub async fn queue_run(&self, tenant_id: &str) -> Result<Queued, StoreError> {
        // Joining a run that is already queued needs no lock: the locked path would join it
        // too. Only a request that may have to queue a run waits for the lock, so a burst of
        // requests does not poll the lock while the first one queues.
        if let Some(existing) = self.queued_existing(tenant_id).await? {
            return Ok(Queued::Existing(existing));
        }
        let store = &self.publisher.store;
        let lock_path = results::queue_lock_path(tenant_id);
        let holder = Uuid::new_v4().to_string();
        let started = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(20);
        let lock = loop {
            match store.try_lock(&lock_path, &holder).await? {
                LockAttempt::Acquired(lock) => break lock,
                LockAttempt::Held { .. } if started.elapsed() < QUEUE_LOCK_WAIT => {
                    let jitter =
                        Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64));
                    tokio::time::sleep(backoff + jitter).await;
                    backoff = (backoff * 2).min(Duration::from_millis(400));
                }
                LockAttempt::Held { .. } => {
                    return Err(StoreError::Io {
                        operation: "queue",
                        path: lock_path,
                        message: format!(
                            "the tenant's queue lock stayed busy for {} s",
                            QUEUE_LOCK_WAIT.as_secs()
                        ),
                    });
                }
            }
        };
        let decided = self.queue_run_locked(tenant_id).await;
        if let Err(e) = store.release_lock(&lock).await {
            tracing::warn!(error = %e, "could not release the queue lock; it expires by itself");
        }
        decided
    }

    /// The tenant's queued run, when its pointer names one that is still queued and fresh.
    async fn queued_existing(&self, tenant_id: &str) -> Result<Option<ScanStatus>, StoreError> {
        let pointer_path = results::queued_pointer_path(tenant_id);
        let now = OffsetDateTime::now_utc();
        if let Some(bytes) = self.publisher.store.get(&pointer_path).await?
            && let Ok(pointer) = serde_json::from_slice::<QueuedPointer>(&bytes)
            && let Ok(Some(existing)) = self.status(pointer.run_id).await
            && existing.state == RunState::Queued
            && now - existing.requested_at < QUEUED_RUN_STALE_AFTER
        {
            return Ok(Some(existing));
        }
        Ok(None)
    }

    async fn queue_run_locked(&self, tenant_id: &str) -> Result<Queued, StoreError> {
        let store = &self.publisher.store;
        let pointer_path = results::queued_pointer_path(tenant_id);
        let now = OffsetDateTime::now_utc();
        if let Some(existing) = self.queued_existing(tenant_id).await? {
            return Ok(Queued::Existing(existing));
        }
        let mut status = ScanStatus::queued(Uuid::new_v4(), Trigger::Http, now);
        status.tenant_id = Some(tenant_id.to_owned());
        self.publisher.write_status(&status).await?;
        let pointer = serde_json::to_vec(&QueuedPointer {
            run_id: status.run_id,
        })
        .map_err(|e| StoreError::Io {
            operation: "queue",
            path: pointer_path.clone(),
            message: e.to_string(),
        })?;
        store
            .put(&pointer_path, pointer.into(), results::JSON, &[])
            .await?;
        Ok(Queued::New(status))
    }

    /// Marks a run that has not finished `failed` with `reason` (a queue that gave up on its
    /// message); a finished run is left as it is. Returns the status as it now reads.
    pub async fn mark_failed(
        &self,
        run_id: Uuid,
        trigger: Trigger,
        reason: FailureReason,
        message: String,
    ) -> Result<ScanStatus, StatusReadError> {
        let mut status = match self.status(run_id).await? {
            Some(status) if status.state.is_finished() => return Ok(status),
            Some(status) => status,
            None => ScanStatus::queued(run_id, trigger, OffsetDateTime::now_utc()),
        };
        status.state = RunState::Failed;
        status.failure_reason = Some(reason);
        status.error = Some(message);
        status.updated_at = OffsetDateTime::now_utc();
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
    ///
    /// The run works in a task of its own, which owns everything it spawns. When the caller
    /// stops waiting (the host cancelled the invocation and its connection dropped), the run
    /// stops its requests, records itself `failed` with reason `cancelled` and releases the
    /// tenant's lock; past [`Scanner::with_run_timeout`] it does the same with reason
    /// `deadline`.
    pub async fn run(&self, request: &RunRequest) -> Result<RunOutcome, Busy> {
        // A workstation run has no invocation id: the field stays out of its log lines.
        let span = tracing::info_span!(
            "run",
            run_id = %request.run_id,
            invocation_id = tracing::field::Empty
        );
        if let Some(invocation_id) = &request.invocation_id {
            span.record("invocation_id", invocation_id.as_str());
        }
        let scanner = self.clone();
        let owned = request.clone();
        // Dropping `caller` (this future dropped mid-run) is the run's cancellation signal.
        let (caller, cancelled) = tokio::sync::oneshot::channel::<std::convert::Infallible>();
        let task = tokio::spawn(
            async move { scanner.run_in_span(&owned, cancelled).await }.instrument(span),
        );
        let joined = task.await;
        drop(caller);
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Ok(RunOutcome::not_started(request, e.to_string())),
        }
    }

    async fn run_in_span(
        &self,
        request: &RunRequest,
        cancelled: tokio::sync::oneshot::Receiver<std::convert::Infallible>,
    ) -> Result<RunOutcome, Busy> {
        let deadline = tokio::time::Instant::now() + self.run_timeout;
        let started_at = OffsetDateTime::now_utc();
        // This run's own accounting: a long-lived process serves many runs.
        let progress = self.progress.clone().unwrap_or_default();
        let graph = self.graph.for_run().with_progress(progress.clone());
        let azure = self.azure.for_run();
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
        let (tenant_id, scanner_identity) = match collect::whoami(&graph).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "run failed before the tenant was known");
                manifest.errors.push(RunError {
                    stage: RunStage::Auth,
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
                    stage: RunStage::Lock,
                    message: e.to_string(),
                });
                return Ok(self
                    .publisher
                    .finish_failed(manifest, None, &mut status)
                    .await);
            }
        };
        // Everything the run spawns lives in `helpers`, which aborts them when dropped: on
        // return, error, panic or cancellation alike.
        let mut helpers = tokio::task::JoinSet::new();
        helpers.spawn(self.publisher.keep_alive(lock.clone()));
        helpers.spawn(
            self.publisher
                .clone()
                .report_progress(request.run_id, progress),
        );
        if let Some(previous) = lock.previous_holder.as_deref()
            && previous != run_id
            && let Some(warning) = self.mark_abandoned(previous).await
        {
            manifest.warnings.push(warning);
        }

        let prefix = results::run_prefix(&tenant_id, manifest.started_at, manifest.run_id);
        let stopped = tokio::select! {
            outcome = self.run_locked(
                &graph,
                &azure,
                tenant_id.clone(),
                scanner_identity,
                manifest.clone(),
                prefix.clone(),
                &mut status,
            ) => Err(outcome),
            _ = cancelled => Ok(FailureReason::Cancelled),
            () = tokio::time::sleep_until(deadline) => Ok(FailureReason::Deadline),
        };
        let outcome = match stopped {
            Err(outcome) => outcome,
            Ok(reason) => {
                let message = match reason {
                    FailureReason::Deadline => format!(
                        "the run passed its deadline of {} s ({RUN_TIMEOUT_VAR}) and was stopped",
                        self.run_timeout.as_secs()
                    ),
                    _ => "the invocation running it was cancelled (the host's functionTimeout, \
                          a scale-in, or the caller went away)"
                        .to_owned(),
                };
                tracing::error!(reason = reason.as_str(), "{message}");
                manifest.tenant_id = tenant_id;
                manifest.graph = graph.stats().snapshot();
                manifest.failure_reason = Some(reason);
                manifest.errors.push(RunError {
                    stage: RunStage::Run,
                    message,
                });
                status.failure_reason = Some(reason);
                self.publisher
                    .finish_failed(manifest, Some(prefix), &mut status)
                    .await
            }
        };
        drop(helpers);
        if let Err(e) = self.publisher.store.release_lock(&lock).await {
            tracing::warn!(error = %e, "could not release the tenant lock; it expires by itself");
        }
        Ok(outcome)
    }

    /// Marks a run `failed` with reason `abandoned` when its status still says it is working:
    /// its lease ran out instead of being released, so its process died. Returns the warning
    /// for this run's manifest.
    async fn mark_abandoned(&self, previous: &str) -> Option<String> {
        let previous = previous.parse::<Uuid>().ok()?;
        let mut status = match self.status(previous).await {
            Ok(Some(status)) if !status.state.is_finished() => status,
            _ => return None,
        };
        status.state = RunState::Failed;
        status.failure_reason = Some(FailureReason::Abandoned);
        status.error = Some(
            "abandoned: its lease on the tenant lock expired while it was still running (its \
             process stopped); a later run marked it failed"
                .to_owned(),
        );
        self.publisher.write_status_logged(&mut status).await;
        let warning = format!(
            "run {previous} was still marked {} but its lease had expired: marked failed (abandoned)",
            RunState::Running.as_str()
        );
        tracing::warn!("{warning}");
        Some(warning)
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_locked(
        &self,
        graph: &GraphClient,
        azure: &AzurePlane,
        tenant_id: String,
        scanner_identity: ScannerIdentity,
        mut manifest: Manifest,
        prefix: String,
        status: &mut ScanStatus,
    ) -> RunOutcome {
        manifest.tenant_id = tenant_id.clone();
        status.state = RunState::Running;
        status.error = None;
        status.tenant_id = Some(tenant_id.clone());
        status.results_prefix = Some(prefix.clone());
        self.publisher.write_status_logged(status).await;
        tracing::info!(tenant_id = %tenant_id, prefix = %prefix, "run started");

        // 3. Inputs besides Graph: accepted risks.
        let mut settings = self.settings.clone();
        match self
            .publisher
            .read_suppressions(OffsetDateTime::now_utc(), settings.suppression_max_days)
            .await
        {
            Ok(found) => {
                settings.suppressions = found.accepted;
                settings.rejected_suppressions = found.rejected;
            }
            Err(warning) => {
                tracing::error!("{warning}");
                manifest.warnings.push(warning);
            }
        }

        // 4. Collect.
        let collected =
            collect::collect_tenant(graph, azure, tenant_id, scanner_identity, settings).await;
        manifest.graph = graph.stats().snapshot();
        crate::telemetry::memory_mark("collected");
        let mut snapshot = match collected {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::error!(error = %e, "collection failed");
                manifest.errors.push(RunError {
                    stage: RunStage::Collect,
                    message: e.to_string(),
                });
                return self
                    .publisher
                    .finish_failed(manifest, Some(prefix), status)
                    .await;
            }
        };

        // 5. What the identities were seen using, when a workspace is configured.
        if self.usage.is_on() {
            graph.progress().enter(Phase::ReadingUsage, None);
            snapshot.usage =
                usage::collect_usage(&self.usage, snapshot.collected_at, &mut snapshot.gaps).await;
        }

        // 6. Assess (pure) and publish.
        self.publisher
            .publish(manifest, prefix, &snapshot, status, graph.progress())
            .await
    }
}
