//! One handler per function folder: what each function does with its envelope.
//!
//! HTTP functions always succeed as invocations and carry their outcome in the `res` output
//! (400, 404, 202, …). Timer and queue functions fail the invocation (HTTP 500 to the host) when
//! the run failed, so the host's retry policy or poison queue applies.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::protocol::{HttpRequestData, HttpResponseOut, InvokeRequest, InvokeResponse};
use super::{FunctionName, HandlerState, host_error};
use crate::collect::CollectError;
use crate::pipeline::{Queued, RunRequest};
use crate::results::records::{FailureReason, Trigger};
use crate::results::{RunState, ScanStatus};

/// Binding names, as in each function.json.
pub mod bindings {
    /// Timer trigger of `nightly-assessment`.
    pub const TIMER: &str = "timer";
    /// HTTP trigger of `scans` and `identity`.
    pub const REQUEST: &str = "req";
    /// HTTP output of `scans` and `identity`.
    pub const RESPONSE: &str = "res";
    /// Queue output of `scans` and queue trigger of `scan-worker`.
    pub const SCAN_REQUEST: &str = "scanRequest";
}

/// One invocation from the host.
#[derive(Debug)]
pub struct Invocation {
    /// Function folder name from the path.
    pub function: String,
    /// `X-Azure-Functions-InvocationId`.
    pub invocation_id: Option<String>,
    /// The decoded envelope.
    pub envelope: InvokeRequest,
}

/// The message `scans` enqueues for `scan-worker`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanRequestMessage {
    /// The run to perform.
    pub run_id: Uuid,
    /// When it was requested.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
}

/// Routes an invocation to its function.
pub(super) async fn dispatch(state: &HandlerState, invocation: Invocation) -> Response {
    let function = match invocation.function.parse::<FunctionName>() {
        Ok(function) => function,
        Err(unknown) => {
            return host_error(
                StatusCode::NOT_FOUND,
                "UnknownFunction",
                unknown.to_string(),
            );
        }
    };
    let result = match function {
        FunctionName::Nightly => nightly(state, &invocation).await,
        FunctionName::Scans => scans(state, &invocation).await,
        FunctionName::Identity => identity(state, &invocation).await,
        FunctionName::ScanWorker => scan_worker(state, &invocation).await,
        FunctionName::ScanWorkerPoison => scan_worker_poison(state, &invocation).await,
    };
    match result {
        Ok(response) => axum::Json(response).into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// Why an invocation failed, as the host should see it.
#[derive(Debug)]
enum Failure {
    /// The envelope is malformed for this function (4xx; retrying cannot help).
    BadEnvelope(String),
    /// The work failed (500; the host may retry).
    Failed(String),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::BadEnvelope(message) => {
                tracing::warn!(error = %message, "invocation rejected");
                host_error(StatusCode::BAD_REQUEST, "MalformedInvocation", message)
            }
            Self::Failed(message) => {
                // Logs in the reply are dropped on failure; stderr reaches Application Insights.
                tracing::error!(error = %message, "invocation failed");
                host_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InvocationFailed",
                    message,
                )
            }
        }
    }
}

async fn nightly(state: &HandlerState, invocation: &Invocation) -> Result<InvokeResponse, Failure> {
    let timer = invocation
        .envelope
        .timer(bindings::TIMER)
        .map_err(|e| Failure::BadEnvelope(e.to_string()))?;
    let last = timer.schedule_status.as_ref().and_then(|s| s.last);
    tracing::info!(
        past_due = timer.is_past_due,
        last_run = last
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".into()),
        retry = invocation.envelope.retry_count().unwrap_or(0),
        "nightly assessment triggered"
    );
    // Retries of one timer occurrence carry the same ScheduleStatus, so they get the same run id:
    // a retry re-runs a failed run in place and never duplicates a finished one. The tenant is
    // part of it, so two tenants sharing a results container each run their own occurrence.
    let tenant = state.scanner.tenant_id().await.ok();
    let run_id = timer_run_id(tenant.as_deref(), &timer);
    if let Ok(Some(existing)) = state.scanner.status(run_id).await
        && matches!(existing.state, RunState::Complete | RunState::Partial)
    {
        let line = format!(
            "run {run_id} for this timer occurrence already {}; nothing to do",
            existing.state.as_str()
        );
        tracing::info!("{line}");
        return Ok(InvokeResponse::default().log(line));
    }
    let request = RunRequest {
        run_id,
        trigger: Trigger::Timer,
        invocation_id: invocation.invocation_id.clone(),
    };
    match state.scanner.run(&request).await {
        Ok(outcome) => {
            let line = run_line(&outcome.manifest);
            match outcome.manifest.status {
                RunState::Failed => Err(Failure::Failed(line)),
                _ => Ok(InvokeResponse::default().log(line)),
            }
        }
        Err(busy) => {
            // The timer skips: the running scan covers this occurrence.
            let line = format!("nightly assessment skipped: {busy}");
            tracing::warn!("{line}");
            Ok(InvokeResponse::default().log(line))
        }
    }
}

/// The run id of a timer occurrence for a tenant: a UUIDv5 of the tenant and the schedule
/// status when both are known (stable across the host's retries), a random id otherwise.
fn timer_run_id(tenant: Option<&str>, timer: &super::protocol::TimerInfo) -> Uuid {
    let stamp = |t: Option<time::OffsetDateTime>| {
        t.map(|t| t.unix_timestamp().to_string())
            .unwrap_or_default()
    };
    match (tenant, &timer.schedule_status) {
        (Some(tenant), Some(s)) if s.last.is_some() || s.next.is_some() => {
            let key = format!("timer|{tenant}|{}|{}", stamp(s.last), stamp(s.next));
            Uuid::new_v5(&TIMER_NAMESPACE, key.as_bytes())
        }
        _ => Uuid::new_v4(),
    }
}

/// Namespace of timer run ids.
const TIMER_NAMESPACE: Uuid = Uuid::from_u128(0x6d69_2d61_7373_6573_735f_7469_6d65_7200);

fn run_line(manifest: &crate::results::Manifest) -> String {
    let mut line = format!(
        "run {} {}: {} managed identities ({} system-assigned, {} user-assigned), {} findings, {} Graph requests",
        manifest.run_id,
        manifest.status.as_str(),
        manifest.counts.identities,
        manifest.counts.system_assigned,
        manifest.counts.user_assigned,
        manifest.counts.findings,
        manifest.graph.requests,
    );
    for error in &manifest.errors {
        line.push_str(&format!("; {}: {}", error.stage, error.message));
    }
    line
}

fn http_request(invocation: &Invocation) -> Result<HttpRequestData, Failure> {
    invocation
        .envelope
        .http_request(bindings::REQUEST)
        .map_err(|e| Failure::BadEnvelope(e.to_string()))
}

fn respond(response: HttpResponseOut) -> InvokeResponse {
    InvokeResponse::default().with_http(bindings::RESPONSE, response)
}

fn parse_guid(value: &str, what: &str) -> Result<Uuid, HttpResponseOut> {
    Uuid::parse_str(value.trim()).map_err(|_| {
        HttpResponseOut::error(
            400,
            "InvalidId",
            format!("{what} {:?} is not a GUID", shortened(value)),
        )
    })
}

/// A client's value as a reply may quote it: at most 64 characters, so an oversized value is
/// never echoed back whole.
fn shortened(value: &str) -> String {
    cut_to(value, 64)
}

/// `text` cut to `max` characters, with an ellipsis when it was longer.
fn cut_to(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What a reply says about an upstream failure: never the token endpoint's raw answer (it goes
/// to the log), and at most a few hundred characters of anything else.
fn upstream_message(e: &CollectError) -> String {
    if let CollectError::Graph {
        source: crate::graph::GraphError::Token(_),
        ..
    } = e
    {
        return "the scanner could not get a Graph token; the handler's log has the token endpoint's answer".to_owned();
    }
    cut_to(&e.to_string(), 500)
}

/// `POST /api/scans` and `GET /api/scans/{runId}`.
async fn scans(state: &HandlerState, invocation: &Invocation) -> Result<InvokeResponse, Failure> {
    let req = http_request(invocation)?;
    match (req.method(), req.param("runId")) {
        (Some(Method::POST), None) => start_scan(state, &req).await,
        (Some(Method::GET), Some(run_id)) => Ok(respond(scan_status(state, run_id).await)),
        (Some(Method::GET), None) => Ok(respond(HttpResponseOut::error(
            400,
            "RunIdRequired",
            "GET needs a run id: /api/scans/{runId}; start a scan with POST /api/scans",
        ))),
        _ => Ok(respond(
            HttpResponseOut::error(
                405,
                "MethodNotAllowed",
                "use POST /api/scans or GET /api/scans/{runId}",
            )
            .header(
                "Allow",
                if req.param("runId").is_some() {
                    "GET"
                } else {
                    "POST"
                },
            ),
        )),
    }
}

async fn start_scan(
    state: &HandlerState,
    req: &HttpRequestData,
) -> Result<InvokeResponse, Failure> {
    // One run per tenant at a time: refuse while one is in progress.
    let tenant_id = match state.scanner.tenant_id().await {
        Ok(tenant_id) => tenant_id,
        Err(e) => {
            // The token endpoint's own answer goes to the log, never into the reply.
            tracing::error!(error = %e, "no Graph token; no scan was queued");
            return Ok(respond(HttpResponseOut::error(
                503,
                "IdentityUnavailable",
                "the scanner could not get a Graph token, so no scan was queued; the handler's log has the token endpoint's answer",
            )));
        }
    };
    match state.scanner.running_run(&tenant_id).await {
        Ok(Some(running)) => {
            let body = json!({
                "error": {
                    "code": "ScanInProgress",
                    "message": format!("a scan of tenant {tenant_id} is already running"),
                },
                "runningRunId": running,
                "statusUrl": running.parse::<Uuid>().ok().map(|id| status_url(&req.url, id)),
            });
            return Ok(respond(HttpResponseOut::json(409, &body)));
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the tenant lock; queuing anyway"),
    }
    // One queued run per tenant: a request while one waits joins it.
    let status = match state.scanner.queue_run(&tenant_id).await {
        Ok(Queued::New(status)) => status,
        Ok(Queued::Existing(queued)) => {
            let status_url = status_url(&req.url, queued.run_id);
            let body = json!({
                "runId": queued.run_id,
                "state": RunState::Queued,
                "statusUrl": status_url,
                "requestedAt": queued.requested_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "deduplicated": true,
            });
            tracing::info!(run_id = %queued.run_id, "a scan of this tenant is already queued; joined it");
            return Ok(respond(
                HttpResponseOut::json(202, &body).header("Location", status_url),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record a queued scan");
            return Ok(respond(HttpResponseOut::error(
                503,
                "ResultsUnavailable",
                format!("the results store cannot be written, so the scan was not started: {e}"),
            )));
        }
    };
    let run_id = status.run_id;
    let status_url = status_url(&req.url, run_id);
    let message = ScanRequestMessage {
        run_id,
        requested_at: status.requested_at,
    };
    let message = serde_json::to_value(&message).map_err(|e| Failure::Failed(e.to_string()))?;
    let body = json!({
        "runId": run_id,
        "state": RunState::Queued,
        "statusUrl": status_url,
        "requestedAt": status.requested_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    });
    tracing::info!(run_id = %run_id, "scan queued");
    Ok(InvokeResponse::default()
        .with_http(
            bindings::RESPONSE,
            HttpResponseOut::json(202, &body).header("Location", status_url.clone()),
        )
        .with_queue_message(bindings::SCAN_REQUEST, message)
        .log(format!("scan {run_id} queued")))
}

/// `https://app/api/scans?code=…` → `https://app/api/scans/{runId}` (the key is not echoed).
fn status_url(request_url: &str, run_id: Uuid) -> String {
    match url::Url::parse(request_url) {
        Ok(mut url) => {
            url.set_query(None);
            url.set_fragment(None);
            let path = format!("{}/{run_id}", url.path().trim_end_matches('/'));
            url.set_path(&path);
            url.to_string()
        }
        Err(_) => format!("/api/scans/{run_id}"),
    }
}

async fn scan_status(state: &HandlerState, run_id: &str) -> HttpResponseOut {
    let run_id = match parse_guid(run_id, "run id") {
        Ok(id) => id,
        Err(response) => return response,
    };
    match state.scanner.status(run_id).await {
        Ok(Some(status)) => HttpResponseOut::json(200, &status_body(state, &status)),
        Ok(None) => {
            HttpResponseOut::error(404, "RunNotFound", format!("no scan with run id {run_id}"))
        }
        Err(e) => HttpResponseOut::error(503, "ResultsUnavailable", e.to_string()),
    }
}

fn status_body(state: &HandlerState, status: &ScanStatus) -> serde_json::Value {
    let mut body = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if status.state.is_finished() {
        let store = state.scanner.store();
        if let Some(prefix) = &status.results_prefix {
            body["resultsLocation"] = json!(store.location(prefix));
        }
        if let Some(manifest) = &status.manifest {
            body["manifestLocation"] = json!(store.location(manifest));
        }
    }
    body
}

/// `GET /api/identities/{objectId}`.
async fn identity(
    state: &HandlerState,
    invocation: &Invocation,
) -> Result<InvokeResponse, Failure> {
    let req = http_request(invocation)?;
    if req.method() != Some(Method::GET) {
        return Ok(respond(
            HttpResponseOut::error(
                405,
                "MethodNotAllowed",
                "use GET /api/identities/{objectId}",
            )
            .header("Allow", "GET"),
        ));
    }
    let Some(raw_id) = req.param("objectId") else {
        return Ok(respond(HttpResponseOut::error(
            400,
            "ObjectIdRequired",
            "the route is /api/identities/{objectId}",
        )));
    };
    let object_id = match parse_guid(raw_id, "object id") {
        Ok(id) => id,
        Err(response) => return Ok(respond(response)),
    };
    let assessed = tokio::time::timeout(
        state.identity_timeout,
        state.scanner.assess_identity(object_id),
    )
    .await;
    let Ok(assessed) = assessed else {
        return Ok(respond(HttpResponseOut::error(
            504,
            "IdentityDeadline",
            format!(
                "assessing {object_id} took longer than {} s, so it was stopped (Graph is slow or throttling); try again later",
                state.identity_timeout.as_secs()
            ),
        )));
    };
    let response = match assessed {
        Ok(Some(record)) => HttpResponseOut::json(200, &record),
        Ok(None) => HttpResponseOut::error(
            404,
            "NotAManagedIdentity",
            format!("{object_id} is not the object id of a managed identity in this tenant"),
        ),
        Err(CollectError::Graph { source, .. }) if source.is_forbidden() => HttpResponseOut::error(
            502,
            "GraphForbidden",
            format!("the scanner's identity lacks a Graph permission: {source}"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "the single-identity assessment failed");
            HttpResponseOut::error(502, "GraphUnavailable", upstream_message(&e))
        }
    };
    Ok(respond(response))
}

/// The message `scans` put on the queue, as the host delivers it to a queue trigger.
fn scan_message(invocation: &Invocation) -> Result<ScanRequestMessage, Failure> {
    invocation
        .envelope
        .queue_json(bindings::SCAN_REQUEST)
        .map_err(|e| Failure::BadEnvelope(e.to_string()))
}

/// The queue worker behind `POST /api/scans`.
async fn scan_worker(
    state: &HandlerState,
    invocation: &Invocation,
) -> Result<InvokeResponse, Failure> {
    let message = scan_message(invocation)?;
    let dequeue_count = invocation.envelope.metadata_string("DequeueCount");
    // The host's last delivery (host.json maxDequeueCount) must not leave the run `queued`.
    let last_attempt = dequeue_count
        .as_deref()
        .and_then(|c| c.trim().parse::<u32>().ok())
        .is_some_and(|c| c >= MAX_DEQUEUE_COUNT);
    // A redelivered message for a run that already produced results must not run it again.
    if let Ok(Some(status)) = state.scanner.status(message.run_id).await
        && matches!(status.state, RunState::Complete | RunState::Partial)
    {
        let line = format!(
            "scan {} already {}; nothing to do",
            message.run_id,
            status.state.as_str()
        );
        tracing::info!(run_id = %message.run_id, "{line}");
        return Ok(InvokeResponse::default().log(line));
    }
    tracing::info!(run_id = %message.run_id, dequeue_count = dequeue_count.as_deref().unwrap_or("?"), "scan worker started");
    let request = RunRequest {
        run_id: message.run_id,
        trigger: Trigger::Http,
        invocation_id: invocation.invocation_id.clone(),
    };
    match state.scanner.run(&request).await {
        Ok(outcome) => {
            let line = run_line(&outcome.manifest);
            match outcome.manifest.status {
                RunState::Failed => Err(Failure::Failed(line)),
                _ => Ok(InvokeResponse::default().log(line)),
            }
        }
        Err(busy) if last_attempt => {
            let line = format!(
                "scan {} never started: {busy} through all {MAX_DEQUEUE_COUNT} deliveries of its message",
                message.run_id
            );
            if let Err(e) = state
                .scanner
                .mark_failed(
                    message.run_id,
                    Trigger::Http,
                    FailureReason::AttemptsExhausted,
                    line.clone(),
                )
                .await
            {
                tracing::error!(error = %e, "could not mark the scan failed");
            }
            Err(Failure::Failed(line))
        }
        // Fail the invocation so the queue redelivers the message after the visibility timeout.
        Err(busy) => Err(Failure::Failed(format!(
            "scan {} not started yet: {busy}",
            message.run_id
        ))),
    }
}

/// `scan-worker-poison`: the host moved a scan's message to the poison queue after its last
/// delivery failed. The run is marked `failed` with reason `poison`, so
/// `GET /api/scans/{runId}` never says `queued` for a scan nobody will run.
async fn scan_worker_poison(
    state: &HandlerState,
    invocation: &Invocation,
) -> Result<InvokeResponse, Failure> {
    let message = scan_message(invocation)?;
    let status = state
        .scanner
        .mark_failed(
            message.run_id,
            Trigger::Http,
            FailureReason::Poison,
            "its queue message was moved to the poison queue after its last delivery failed"
                .to_owned(),
        )
        .await
        .map_err(|e| {
            Failure::Failed(format!(
                "could not mark scan {} failed: {e}",
                message.run_id
            ))
        })?;
    let line = format!("scan {} is {}", message.run_id, status.state.as_str());
    tracing::warn!(run_id = %message.run_id, "{line}");
    Ok(InvokeResponse::default().log(line))
}

/// host.json's `extensions.queues.maxDequeueCount`: deliveries of a message before the host
/// moves it to the poison queue (an infra test keeps the two equal).
pub const MAX_DEQUEUE_COUNT: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_url_drops_the_function_key() {
        let id = Uuid::nil();
        assert_eq!(
            status_url("https://app.azurewebsites.net/api/scans?code=secret", id),
            format!("https://app.azurewebsites.net/api/scans/{id}")
        );
        assert_eq!(status_url("not a url", id), format!("/api/scans/{id}"));
    }
}
