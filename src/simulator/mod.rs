//! A Microsoft Graph simulator that serves a [`SimTenant`] over loopback HTTP.
//!
//! It implements the Graph endpoints mi-assess calls with Graph's documented behaviour
//! (`../shared/reference/microsoft-graph.md`): bearer-token checks, `$select` projection,
//! `$top` limits and `@odata.nextLink` paging with opaque skip tokens, Graph's error bodies,
//! `x-ms-resource-unit` accounting, and `Retry-After` on throttling. It also serves the App
//! Service managed-identity token endpoint, so the real `ManagedIdentityCredential` can be
//! pointed at it, and the Azure Resource Manager endpoints of the Azure-plane assessment
//! (`arm_api`, on the same origin). `--demo`, the tests and the benchmark all use it.

pub mod arm;
mod arm_api;
pub mod estate;
mod graph_api;
mod index;
pub mod loganalytics;
pub mod tenant;
pub mod token;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use url::Url;

pub use index::SimData;
pub use tenant::SimTenant;
pub use token::{SimulatorCredential, TokenSubject};

/// Faults to inject, changeable while the simulator runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Fail every collection page at or after this zero-based page index with `status`
    /// (a persistent outage in the middle of a paged listing).
    pub fail_pages_from: Option<usize>,
    /// Fail every request for a single object with `status`.
    pub fail_object_reads: bool,
    /// HTTP status used for injected failures.
    pub status: u16,
    /// An origin (scheme, host, port) to put in `@odata.nextLink` instead of the simulator's
    /// own: a hostile link that must never receive a token.
    pub next_link_origin: Option<url::Url>,
    /// Collections whose path contains this answer with an `@odata.nextLink` to the very page
    /// just served: a listing that never ends unless the client notices (on the
    /// managed-identity list, `servicePrincipals`; inside `$batch`, `appRoleAssignments`).
    pub self_next_link: Option<String>,
    /// Pad every collection page with this many bytes: a page larger than any client should
    /// read whole.
    pub oversized_page_bytes: Option<usize>,
    /// `$batch` answers carry one request id twice (and lose another).
    pub duplicate_batch_ids: bool,
    /// The managed-identity token endpoint refuses every request (403) with this message in
    /// its body, which must never reach an API reply.
    pub token_error: Option<String>,
}

/// Graph's resource-unit budget per app and tenant, by tenant size (RU per 10 seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantSize {
    /// Under 50 users: 3,500 RU per 10 s.
    Small,
    /// 50–500 users: 5,000 RU per 10 s.
    Medium,
    /// Over 500 users: 8,000 RU per 10 s.
    Large,
}

impl TenantSize {
    /// The budget in resource units per 10 seconds.
    pub fn ru_per_10s(self) -> f64 {
        match self {
            Self::Small => 3_500.0,
            Self::Medium => 5_000.0,
            Self::Large => 8_000.0,
        }
    }
}

/// Random faults, as fractions of requests (0.0–1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    /// 429 with a `Retry-After` (per request, inside `$batch` too).
    pub throttle: f64,
    /// 503 (per request, inside `$batch` too).
    pub unavailable: f64,
    /// The connection drops in the middle of the response body.
    pub reset: f64,
    /// A 200 whose JSON body is cut short.
    pub malformed: f64,
}

/// How realistic the simulator is.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Enforce Graph's token-bucket throttling at this tenant size (`None`: unlimited).
    pub budget: Option<TenantSize>,
    /// Added to every HTTP response (a `$batch` counts once).
    pub latency: std::time::Duration,
    /// Random faults.
    pub faults: FaultRates,
    /// Seed of the fault generator, so fault runs are repeatable.
    pub seed: u64,
}

/// Graph's token bucket: `capacity` RU, refilled continuously at `capacity / 10 s`.
#[derive(Debug)]
pub(crate) struct Bucket {
    capacity: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl Bucket {
    fn new(size: TenantSize) -> Self {
        Self {
            capacity: size.ru_per_10s(),
            tokens: size.ru_per_10s(),
            last: std::time::Instant::now(),
        }
    }

    /// Takes `cost` RU: `Ok(usage)` (0.0–1.0 of the budget in use) or `Err(seconds to wait)`.
    pub(crate) fn take(&mut self, cost: f64) -> Result<f64, f64> {
        let rate = self.capacity / 10.0;
        let now = std::time::Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(self.capacity);
        self.last = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(1.0 - self.tokens / self.capacity)
        } else {
            Err((cost - self.tokens) / rate)
        }
    }
}

/// One request the token endpoint served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `resource` query parameter.
    pub resource: String,
    /// `client_id` query parameter, for user-assigned identities.
    pub client_id: Option<String>,
}

/// Shared state of a running simulator.
#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) tenant: RwLock<Arc<SimData>>,
    pub(crate) base_url: Url,
    pub(crate) identity_header: String,
    pub(crate) faults: Mutex<FaultPlan>,
    pub(crate) graph_requests: AtomicU64,
    pub(crate) resource_units: AtomicU64,
    pub(crate) token_requests: Mutex<Vec<TokenRequest>>,
    pub(crate) issued_tokens: Mutex<Vec<String>>,
    pub(crate) request_log: Mutex<Vec<String>>,
    pub(crate) options: SimOptions,
    pub(crate) bucket: Option<Mutex<Bucket>>,
    pub(crate) rng: Mutex<fastrand::Rng>,
    pub(crate) throttled: AtomicU64,
    pub(crate) faults_injected: AtomicU64,
    pub(crate) arm: arm_api::ArmSimState,
}

impl SimState {
    /// Rolls the dice for one fault kind.
    pub(crate) fn roll(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let hit = self.rng.lock().map(|mut r| r.f64() < rate).unwrap_or(false);
        if hit {
            self.faults_injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

impl SimState {
    /// The tenant as it is now, indexed (tests may change it between requests).
    pub(crate) fn tenant(&self) -> Arc<SimData> {
        match self.tenant.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The Graph resource (token audience) of this simulator: its base URL without a slash.
    pub(crate) fn graph_resource(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_owned()
    }
}

/// A simulator serving on loopback until dropped.
#[derive(Debug)]
pub struct RunningSimulator {
    state: Arc<SimState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RunningSimulator {
    /// Starts serving `tenant` on `127.0.0.1` on an ephemeral port.
    pub async fn start(tenant: SimTenant) -> std::io::Result<Self> {
        Self::start_on(
            tenant,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            SimOptions::default(),
        )
        .await
    }

    /// Starts serving `tenant` on `127.0.0.1` with throttling, latency and faults.
    pub async fn start_with(tenant: SimTenant, options: SimOptions) -> std::io::Result<Self> {
        Self::start_on(tenant, SocketAddr::from(([127, 0, 0, 1], 0)), options).await
    }

    /// Starts serving `tenant` on `addr`.
    pub async fn start_on(
        tenant: SimTenant,
        addr: SocketAddr,
        options: SimOptions,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let base_url = Url::parse(&format!("http://{local}"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let state = Arc::new(SimState {
            tenant: RwLock::new(Arc::new(SimData::new(tenant))),
            base_url,
            identity_header: uuid::Uuid::new_v4().to_string(),
            faults: Mutex::new(FaultPlan::default()),
            graph_requests: AtomicU64::new(0),
            resource_units: AtomicU64::new(0),
            token_requests: Mutex::new(Vec::new()),
            issued_tokens: Mutex::new(Vec::new()),
            request_log: Mutex::new(Vec::new()),
            bucket: options.budget.map(|size| Mutex::new(Bucket::new(size))),
            rng: Mutex::new(fastrand::Rng::with_seed(options.seed)),
            options,
            throttled: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            arm: arm_api::ArmSimState::default(),
        });
        let app = Router::new()
            .route("/msi/token", get(graph_api::msi_token))
            .route("/v1.0/$batch", axum::routing::post(graph_api::graph_batch))
            .route(
                "/v1.0/directoryObjects/getByIds",
                axum::routing::post(graph_api::graph_get_by_ids),
            )
            .route(
                "/providers/Microsoft.ResourceGraph/resources",
                axum::routing::post(arm_api::resource_graph),
            )
            .route(
                "/loganalytics/v1/workspaces/{workspace}/query",
                axum::routing::post(loganalytics::query),
            )
            .route("/subscriptions", get(arm_api::subscription_list))
            .route("/subscriptions/{*path}", get(arm_api::arm_get))
            .route("/v1.0/{*path}", get(graph_api::graph_get))
            .fallback(graph_api::unknown_segment)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "graph simulator stopped");
            }
        });
        Ok(Self { state, task })
    }

    /// Base URL to use as `MI_ASSESS_GRAPH_ENDPOINT`.
    pub fn graph_endpoint(&self) -> &Url {
        &self.state.base_url
    }

    /// Base URL to use as `MI_ASSESS_LOG_ANALYTICS_ENDPOINT` (its token audience is its own).
    pub fn log_analytics_endpoint(&self) -> String {
        format!(
            "{}{}",
            self.state.base_url.as_str().trim_end_matches('/'),
            loganalytics::AUDIENCE_PATH
        )
    }

    /// URL to use as `IDENTITY_ENDPOINT`.
    pub fn identity_endpoint(&self) -> String {
        format!("{}msi/token", self.state.base_url)
    }

    /// Value to use as `IDENTITY_HEADER`.
    pub fn identity_header(&self) -> &str {
        &self.state.identity_header
    }

    /// The tenant being served.
    pub fn tenant(&self) -> Arc<SimData> {
        self.state.tenant()
    }

    /// Changes the tenant, e.g. to grant or revoke something between two runs.
    pub fn update_tenant(&self, change: impl FnOnce(&mut SimTenant)) {
        let mut next = self.state.tenant().tenant().clone();
        change(&mut next);
        if let Ok(mut guard) = self.state.tenant.write() {
            *guard = Arc::new(SimData::new(next));
        }
    }

    /// A credential that mints this simulator's tokens in-process.
    pub fn credential(&self) -> SimulatorCredential {
        SimulatorCredential::new(
            self.state.tenant().scanner.clone(),
            self.state.graph_resource(),
        )
    }

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        if let Ok(mut faults) = self.state.faults.lock() {
            *faults = plan;
        }
    }

    /// Graph requests served so far (token requests excluded).
    pub fn graph_requests(&self) -> u64 {
        self.state.graph_requests.load(Ordering::Relaxed)
    }

    /// Resource units charged so far.
    pub fn resource_units(&self) -> u64 {
        self.state.resource_units.load(Ordering::Relaxed)
    }

    /// 429 responses sent because the token bucket was empty.
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::Relaxed)
    }

    /// Random faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.state.faults_injected.load(Ordering::Relaxed)
    }

    /// Requests the token endpoint served.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state
            .token_requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Every Graph request served, as `path?query` relative to `/v1.0/` (batched ones included).
    pub fn request_log(&self) -> Vec<String> {
        self.state
            .request_log
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Every token the token endpoint issued (for leak checks in tests).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state
            .issued_tokens
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}
