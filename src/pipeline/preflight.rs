//! Before a workstation run: every configured endpoint (the token source, Graph, ARM, the
//! results store) is checked once, all at the same time, within [`BUDGET`], so a mistyped URL
//! or a missing role fails in seconds, not after minutes of retries. A failure names the
//! endpoint, the cause (DNS, connection refused, TLS, a timeout, 401 or 403 with the role or
//! permission that is missing) and the setting to fix.
//!
//! Each probe is the cheapest real call of its service with the scanner's own token: one
//! service principal from Graph (what `Application.Read.All` allows), the subscription list
//! from ARM, the container's properties from Blob Storage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use secrecy::ExposeSecret as _;
use url::Url;

use crate::auth::TokenSource;
use crate::config::AzurePlaneMode;

/// How long all the checks together may take.
pub const BUDGET: Duration = Duration::from_secs(10);
/// The Blob service version the container probe speaks.
const BLOB_API_VERSION: &str = "2021-12-02";
/// The token scope of Blob Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// What to check.
#[derive(Debug, Clone)]
pub struct Targets {
    /// Microsoft Graph's base URL (`MI_ASSESS_GRAPH_ENDPOINT`).
    pub graph: Url,
    /// Azure Resource Manager's base URL (`MI_ASSESS_ARM_ENDPOINT`).
    pub arm: Url,
    /// Whether ARM is read, and whether missing access matters.
    pub azure_plane: AzurePlaneMode,
    /// Where results go.
    pub results: ResultsTarget,
    /// Where the Graph and ARM tokens come from, for messages: the managed-identity endpoint,
    /// or the developer tools.
    pub token_source: String,
    /// Where the results store's token comes from (the same, except for `--demo
    /// --results-url`, whose Graph is simulated but whose storage is real).
    pub store_token_source: String,
}

/// The results store to check.
#[derive(Debug, Clone)]
pub enum ResultsTarget {
    /// A Blob Storage container, and the setting or flag that named it.
    Blob {
        /// The container URL.
        url: Url,
        /// `--results-url` or `MI_ASSESS_RESULTS_URL`.
        setting: &'static str,
    },
    /// A local directory (`--out`).
    Local(PathBuf),
}

/// Why an endpoint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens at the address.
    ConnectionRefused,
    /// The TLS handshake failed (a proxy, a wrong host, an untrusted certificate).
    Tls(String),
    /// No answer within the budget.
    Timeout,
    /// The service answered with an error status; `hint` says what it means here.
    Status {
        /// The HTTP status.
        status: u16,
        /// The service's error code, when it gave one.
        code: Option<String>,
        /// What to do.
        hint: String,
    },
    /// No token could be obtained.
    Token(String),
    /// Anything else, with its message.
    Other(String),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns => write!(f, "the host name does not resolve (DNS)"),
            Self::ConnectionRefused => write!(f, "connection refused: nothing is listening there"),
            Self::Tls(message) => write!(f, "the TLS handshake failed: {message}"),
            Self::Timeout => write!(f, "no answer within {} s", BUDGET.as_secs()),
            Self::Status { status, code, hint } => match code {
                Some(code) => write!(f, "HTTP {status} {code}: {hint}"),
                None => write!(f, "HTTP {status}: {hint}"),
            },
            Self::Token(message) => write!(f, "no token: {message}"),
            Self::Other(message) => write!(f, "{message}"),
        }
    }
}

/// One endpoint that failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What it is: `Microsoft Graph`, `Azure Resource Manager`, `results store`, `token`.
    pub endpoint: &'static str,
    /// Where it is.
    pub location: String,
    /// Why it failed.
    pub cause: Cause,
    /// The setting (or flag) to fix.
    pub setting: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {}: {} (check {})",
            self.endpoint, self.location, self.cause, self.setting
        )
    }
}

/// Every endpoint that failed, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|f| format!("preflight: {f}")).collect::<Vec<_>>().join("\n"))]
pub struct PreflightError(pub Vec<Failure>);

/// Checks every target at the same time, within [`BUDGET`] (an endpoint that has not answered
/// by then fails with [`Cause::Timeout`]).
pub async fn check(
    targets: &Targets,
    credential: Arc<dyn TokenCredential>,
    store_credential: Arc<dyn TokenCredential>,
) -> Result<(), PreflightError> {
    let client = match probe_client() {
        Ok(client) => client,
        Err(e) => {
            return Err(PreflightError(vec![Failure {
                endpoint: "HTTP client",
                location: "this machine".into(),
                cause: Cause::Other(e.to_string()),
                setting: "the machine's TLS roots".into(),
            }]));
        }
    };
    let graph = within(graph_probe(&client, targets, credential.clone()));
    let arm = within(arm_probe(&client, targets, credential.clone()));
    let results = within(results_probe(&client, targets, store_credential));
    let (graph, arm, results) = futures::join!(graph, arm, results);
    let mut failures = Vec::new();
    if let Err(cause) = graph {
        failures.push(graph_failure(targets, cause));
    }
    if let Err(cause) = arm {
        failures.push(Failure {
            endpoint: "Azure Resource Manager",
            location: targets.arm.to_string(),
            setting: setting_for(
                &cause,
                crate::config::ARM_ENDPOINT_VAR,
                &targets.token_source,
            ),
            cause,
        });
    }
    if let Err(cause) = results {
        let (location, setting) = match &targets.results {
            ResultsTarget::Blob { url, setting } => (url.to_string(), (*setting).to_owned()),
            ResultsTarget::Local(dir) => (dir.display().to_string(), "--out".to_owned()),
        };
        failures.push(Failure {
            endpoint: "results store",
            setting: match cause {
                Cause::Token(_) | Cause::Status { status: 401, .. } => {
                    targets.store_token_source.clone()
                }
                _ => setting,
            },
            location,
            cause,
        });
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PreflightError(failures))
    }
}

/// The probe's result, or [`Cause::Timeout`] once the budget has passed.
async fn within(probe: impl Future<Output = Result<(), Cause>>) -> Result<(), Cause> {
    tokio::time::timeout(BUDGET, probe)
        .await
        .unwrap_or(Err(Cause::Timeout))
}

fn graph_failure(targets: &Targets, cause: Cause) -> Failure {
    Failure {
        endpoint: "Microsoft Graph",
        location: targets.graph.to_string(),
        setting: setting_for(
            &cause,
            crate::config::GRAPH_ENDPOINT_VAR,
            &targets.token_source,
        ),
        cause,
    }
}

/// A token failure is fixed where the token comes from; a 403 by a grant; anything else by
/// the endpoint's setting.
fn setting_for(cause: &Cause, endpoint_setting: &str, token_source: &str) -> String {
    match cause {
        Cause::Token(_) | Cause::Status { status: 401, .. } => token_source.to_owned(),
        Cause::Status { status: 403, .. } => {
            "the scanner's role assignments (docs/permissions.md)".to_owned()
        }
        _ => endpoint_setting.to_owned(),
    }
}

/// The probes' HTTP client: [`crate::http::client`]'s, with a connect timeout inside the budget.
fn probe_client() -> reqwest::Result<reqwest::Client> {
    crate::http::client_with(Duration::from_secs(5), BUDGET)
}

async fn bearer(
    credential: Arc<dyn TokenCredential>,
    scope: String,
) -> Result<secrecy::SecretString, Cause> {
    TokenSource::new(credential, scope)
        .bearer()
        .await
        .map_err(|e| Cause::Token(e.message))
}

/// `GET /v1.0/servicePrincipals?$top=1&$select=id`: reachable, and the scanner may list
/// service principals (Application.Read.All).
async fn graph_probe(
    client: &reqwest::Client,
    targets: &Targets,
    credential: Arc<dyn TokenCredential>,
) -> Result<(), Cause> {
    let base = targets.graph.as_str().trim_end_matches('/');
    let token = bearer(credential, format!("{base}/.default")).await?;
    let url = format!("{base}/v1.0/servicePrincipals?$top=1&$select=id");
    let response = send(client.get(url).bearer_auth(token.expose_secret())).await?;
    expect_success(response, |status| match status {
        403 => "the scanner lacks the Graph application permission Application.Read.All (grant it: scripts/grant-graph-roles.sh)".into(),
        401 => "Graph refused the token: it is for another cloud or tenant, or expired".into(),
        _ => "Graph did not answer as Graph does".into(),
    })
    .await
}

/// `GET /subscriptions`: reachable, and (when the Azure plane is required) readable. With an
/// optional plane, a 401 or 403 passes: the run then lists the Azure plane under `skipped`.
async fn arm_probe(
    client: &reqwest::Client,
    targets: &Targets,
    credential: Arc<dyn TokenCredential>,
) -> Result<(), Cause> {
    if targets.azure_plane == AzurePlaneMode::Off {
        return Ok(());
    }
    let base = targets.arm.as_str().trim_end_matches('/');
    let token = match bearer(credential, format!("{base}/.default")).await {
        Err(_) if targets.azure_plane == AzurePlaneMode::Optional => return Ok(()),
        other => other?,
    };
    let url = format!(
        "{base}/subscriptions?api-version={}",
        crate::arm::SUBSCRIPTIONS_API_VERSION
    );
    let response = send(client.get(url).bearer_auth(token.expose_secret())).await?;
    let denied = matches!(response.status().as_u16(), 401 | 403);
    if denied && targets.azure_plane == AzurePlaneMode::Optional {
        return Ok(());
    }
    expect_success(response, |status| match status {
        403 | 401 => format!("ARM refused the scanner; grant it Reader on the management groups or subscriptions to assess, or set {}=optional", crate::config::AZURE_PLANE_VAR),
        _ => "ARM did not answer as ARM does".into(),
    })
    .await
}

/// The container's properties (Blob) or a writable directory (local).
async fn results_probe(
    client: &reqwest::Client,
    targets: &Targets,
    credential: Arc<dyn TokenCredential>,
) -> Result<(), Cause> {
    match &targets.results {
        ResultsTarget::Local(dir) => {
            let probe = dir.join(".mi-assess-preflight");
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&probe, b"ok"))
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| Cause::Other(format!("cannot write there: {e}")))
        }
        ResultsTarget::Blob { url, .. } => {
            let token = bearer(credential, STORAGE_SCOPE.to_owned()).await?;
            let mut probe = url.clone();
            probe.set_query(Some("restype=container"));
            let response = send(
                client
                    .get(probe)
                    .bearer_auth(token.expose_secret())
                    .header("x-ms-version", BLOB_API_VERSION),
            )
            .await?;
            expect_success(response, |status| match status {
                404 => "the container does not exist: the URL must name an existing container (https://<account>.blob.core.windows.net/<container>)".into(),
                403 => "the identity may not use the container: grant it Storage Blob Data Contributor on the container or its account".into(),
                401 => "Storage refused the token".into(),
                _ => "the URL does not answer as Blob Storage does".into(),
            })
            .await
        }
    }
}

async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, Cause> {
    request.send().await.map_err(|e| classify(&e))
}

/// Success, or the status with the service's error code and what it means here.
async fn expect_success(
    response: reqwest::Response,
    hint: impl FnOnce(u16) -> String,
) -> Result<(), Cause> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return Ok(());
    }
    let header_code = crate::http::header(&response, "x-ms-error-code").map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    let code = header_code.or_else(|| {
        let (code, _) = crate::http::ServiceError::from_body(&body).into_parts("");
        (!code.is_empty()).then_some(code)
    });
    Err(Cause::Status {
        status,
        code,
        hint: hint(status),
    })
}

/// The cause of a failed request, from its error chain.
pub fn classify(error: &reqwest::Error) -> Cause {
    if error.is_timeout() {
        return Cause::Timeout;
    }
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Cause::ConnectionRefused;
        }
        chain.push(e.to_string());
        source = e.source();
    }
    let text = chain.join(": ");
    let lower = text.to_ascii_lowercase();
    if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
    {
        Cause::Dns
    } else if lower.contains("connection refused") {
        Cause::ConnectionRefused
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        Cause::Tls(chain.last().cloned().unwrap_or(text))
    } else if error.is_timeout() || lower.contains("timed out") {
        Cause::Timeout
    } else {
        Cause::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection and an unresolvable name are told apart, each within the budget.
    #[tokio::test]
    async fn refused_and_dns_failures_are_named() {
        let client = probe_client().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let refused = send(client.get(format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert_eq!(refused, Cause::ConnectionRefused);
        let dns = send(client.get("http://no-such-host.invalid/"))
            .await
            .unwrap_err();
        assert_eq!(dns, Cause::Dns, "{dns}");
    }

    #[test]
    fn a_failure_names_the_endpoint_cause_and_setting() {
        let failure = Failure {
            endpoint: "results store",
            location: "https://acct.blob.core.windows.net/results".into(),
            cause: Cause::Status {
                status: 403,
                code: Some("AuthorizationPermissionMismatch".into()),
                hint: "grant it Storage Blob Data Contributor".into(),
            },
            setting: "--results-url".into(),
        };
        assert_eq!(
            failure.to_string(),
            "results store at https://acct.blob.core.windows.net/results: HTTP 403 AuthorizationPermissionMismatch: grant it Storage Blob Data Contributor (check --results-url)"
        );
    }
}
