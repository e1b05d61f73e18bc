//! The custom-handler server the Functions host talks to.
//!
//! `protocol` holds the wire types; `functions` holds one handler per function folder; this
//! module binds `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT`, answers the readiness probe at
//! `GET /`, and routes `POST /{functionName}` envelopes to the handlers. Malformed or
//! oversized envelopes get a 4xx JSON error; a failed invocation gets a 500 JSON error so the
//! host applies its retry semantics.
//!
//! Cold starts count on Functions, so the server listens before its clients exist:
//! [`Application::bind_pending`] answers `GET /` at once while the HTTP clients (whose TLS roots
//! take most of the start-up) are built, and invocations wait for the [`StateSender`].

pub mod functions;
pub mod protocol;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use serde_json::json;
use tokio::net::TcpListener;

use crate::pipeline::Scanner;
use protocol::InvokeRequest;

/// Largest invocation envelope accepted (host envelopes are a few KiB).
pub const MAX_ENVELOPE_BYTES: usize = 1024 * 1024;
/// How much of an oversized envelope is read and discarded so the sender can still read the
/// 413 reply; beyond this the connection is dropped.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// The functions the handler serves, named exactly as their folders in `functions/`; the host
/// POSTs to `/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionName {
    /// `nightly-assessment`: the timer-triggered full assessment.
    Nightly,
    /// `scans`: `POST /api/scans` and `GET /api/scans/{runId}`.
    Scans,
    /// `identity`: `GET /api/identities/{objectId}`.
    Identity,
    /// `scan-worker`: the queue-triggered worker for on-demand scans.
    ScanWorker,
    /// `scan-worker-poison`: marks scans whose message reached the poison queue failed.
    ScanWorkerPoison,
}

impl FunctionName {
    /// Every function the handler dispatches on.
    pub const ALL: [Self; 5] = [
        Self::Nightly,
        Self::Scans,
        Self::Identity,
        Self::ScanWorker,
        Self::ScanWorkerPoison,
    ];

    /// The folder name in `functions/`, which is the path the host POSTs to.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nightly => "nightly-assessment",
            Self::Scans => "scans",
            Self::Identity => "identity",
            Self::ScanWorker => "scan-worker",
            Self::ScanWorkerPoison => "scan-worker-poison",
        }
    }
}

impl std::fmt::Display for FunctionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host invoked a function this handler does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no function named {name:?}; known: {}", FunctionName::ALL.map(FunctionName::as_str).join(", "))]
pub struct UnknownFunction {
    /// The name the host used (its first 64 characters).
    pub name: String,
}

impl std::str::FromStr for FunctionName {
    type Err = UnknownFunction;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or_else(|| UnknownFunction {
                // Quoted back in the reply: never more than a short prefix.
                name: name.chars().take(64).collect(),
            })
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct HandlerState {
    /// Runs assessments and reads results.
    pub scanner: Scanner,
    /// How long `GET /api/identities/{objectId}` may work before it answers 504 (at most
    /// [`crate::config::MAX_IDENTITY_TIMEOUT`]: the platform cuts HTTP replies at 230 s).
    pub identity_timeout: std::time::Duration,
}

/// A bound custom-handler server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
}

/// The handlers' state as invocations see it: `None` until start-up has built it.
type PendingState = tokio::sync::watch::Receiver<Option<Arc<HandlerState>>>;

/// Gives a server bound with [`Application::bind_pending`] its state.
#[derive(Debug)]
pub struct StateSender(tokio::sync::watch::Sender<Option<Arc<HandlerState>>>);

impl StateSender {
    /// Invocations waiting for the state, and every later one, proceed with `state`.
    pub fn ready(&self, state: HandlerState) {
        self.0.send_replace(Some(Arc::new(state)));
    }
}

impl Application {
    /// Binds `127.0.0.1:port` (0 picks a free port) now; invocations wait until the returned
    /// [`StateSender`] provides the state (and fail with 503 if it is dropped without one).
    /// `GET /` answers at once.
    pub async fn bind_pending(port: u16) -> std::io::Result<(Self, StateSender)> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
        let (sender, receiver) = tokio::sync::watch::channel(None);
        Ok((
            Self {
                listener,
                router: router(receiver),
            },
            StateSender(sender),
        ))
    }

    /// The bound port.
    pub fn port(&self) -> std::io::Result<u16> {
        Ok(self.listener.local_addr()?.port())
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down");
}

/// The handler's routes.
fn router(state: PendingState) -> Router {
    Router::new()
        .route("/", get(ready))
        .route("/{function}", post(invoke).fallback(method_not_allowed))
        .fallback(not_found)
        .with_state(state)
}

async fn ready() -> &'static str {
    "mi-assess ready"
}

/// A JSON error reply to the host itself (not an HTTP output binding).
pub(crate) fn host_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

async fn not_found() -> Response {
    host_error(
        StatusCode::NOT_FOUND,
        "UnknownRoute",
        "the handler serves GET / and POST /{functionName}",
    )
}

async fn method_not_allowed() -> Response {
    host_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "invocations are POST /{functionName}",
    )
}

async fn invoke(
    State(pending): State<PendingState>,
    Path(function): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let mut pending = pending;
    let state = match pending.wait_for(Option::is_some).await {
        Ok(ready) => ready.as_ref().map(Arc::clone),
        Err(_) => None,
    };
    let Some(state) = state else {
        return host_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "HandlerNotReady",
            "the handler could not start; its log says why",
        );
    };
    let invocation_id = headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let span = tracing::info_span!(
        "invocation",
        function = %function,
        invocation_id = invocation_id.as_deref().unwrap_or("")
    );
    let body = match read_envelope(request.into_body()).await {
        Ok(bytes) => bytes,
        Err(EnvelopeReadError::TooLarge) => {
            return host_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "EnvelopeTooLarge",
                format!("invocation envelopes are limited to {MAX_ENVELOPE_BYTES} bytes"),
            );
        }
        Err(EnvelopeReadError::Unreadable(e)) => {
            return host_error(
                StatusCode::BAD_REQUEST,
                "UnreadableBody",
                format!("could not read the body: {e}"),
            );
        }
    };
    let envelope = match InvokeRequest::from_slice(&body) {
        Ok(envelope) => envelope,
        Err(e) => {
            let _guard = span.enter();
            tracing::warn!(error = %e, "rejected a malformed invocation envelope");
            return host_error(StatusCode::BAD_REQUEST, "MalformedEnvelope", e.to_string());
        }
    };
    let context = functions::Invocation {
        function: function.clone(),
        invocation_id,
        envelope,
    };
    use tracing::Instrument;
    functions::dispatch(&state, context).instrument(span).await
}

enum EnvelopeReadError {
    TooLarge,
    Unreadable(axum::Error),
}

/// Reads an envelope of at most [`MAX_ENVELOPE_BYTES`]. An oversized body is drained (up to
/// [`DRAIN_LIMIT_BYTES`]) before the 413 is sent, so a sender that writes the whole body
/// before reading still gets the answer instead of a broken pipe.
async fn read_envelope(body: Body) -> Result<Bytes, EnvelopeReadError> {
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(EnvelopeReadError::Unreadable)?;
        seen += chunk.len();
        if seen <= MAX_ENVELOPE_BYTES {
            buffer.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT_BYTES {
            break;
        }
    }
    if seen > MAX_ENVELOPE_BYTES {
        Err(EnvelopeReadError::TooLarge)
    } else {
        Ok(Bytes::from(buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Function names parse to what the handler serves; an unknown one is quoted back short.
    #[test]
    fn function_names_parse_and_unknown_ones_are_quoted_short() {
        for function in FunctionName::ALL {
            assert_eq!(function.as_str().parse::<FunctionName>(), Ok(function));
        }
        let long = "f".repeat(100_000);
        let unknown = long.parse::<FunctionName>().expect_err("unknown");
        assert!(
            unknown.to_string().len() < 200,
            "{}",
            unknown.to_string().len()
        );
        assert!(unknown.to_string().contains("scan-worker-poison"));
    }

    /// The probe is answered before the handler's clients exist; an invocation waits for them,
    /// and gets a 503 (not a hang) when start-up gives up.
    #[tokio::test]
    async fn the_probe_answers_while_start_up_is_pending() {
        let (app, state) = Application::bind_pending(0).await.expect("binds");
        let base = format!("http://127.0.0.1:{}", app.port().expect("port"));
        let server = tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::new();
        let probe = client.get(format!("{base}/")).send().await.expect("probe");
        assert_eq!(probe.status(), reqwest::StatusCode::OK);

        let invocation = tokio::spawn({
            let client = client.clone();
            let url = format!("{base}/{}", FunctionName::Scans);
            async move { client.post(url).body("{}").send().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            !invocation.is_finished(),
            "the invocation waits for start-up"
        );
        drop(state);
        let answer = invocation.await.expect("joins").expect("answered");
        assert_eq!(answer.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["code"], "HandlerNotReady");
        server.abort();
    }
}
