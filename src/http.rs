//! The HTTP layer mi-assess's two API clients share: the Microsoft Graph client
//! ([`crate::graph::client`]) and the Azure Resource Manager client ([`crate::arm`]).
//!
//! It owns, once for both:
//! - the `reqwest` client settings ([`client`]) and the shape of an authenticated JSON request
//!   ([`request`], with a typed [`Method`]);
//! - one attempt: send, read the whole body, and sort the answer into a 2xx body or an [`Error`]
//!   ([`attempt`]);
//! - the retry loop and its timing: which statuses are transient ([`is_retryable`]), the budgets
//!   and waits of a [`RetryPolicy`], exponential [`backoff`], and the hints services give
//!   (`Retry-After` via [`retry_after`] / [`parse_seconds`], Resource Graph's
//!   `x-ms-user-quota-resets-after` via [`parse_hms`]);
//! - decoding a JSON answer with an error that names the URL ([`decode`]);
//! - the same-origin check a paging link must pass before a token follows it ([`checked_link`]).
//!
//! Each client keeps what is its own: authentication, its error type (mapped from [`Error`]),
//! its service's error document, request accounting, and its pacing (Graph's `$batch` and
//! throttling pacer, ARM's Resource Graph paging and quota gates, which hook into [`attempt`]).

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

/// The error code Graph and ARM answer (with 400) for data behind a licence the tenant lacks,
/// e.g. the PIM lists in a tenant without the Entra ID P2 (or Governance) licence.
pub const LICENCE_REQUIRED_CODE: &str = "AadPremiumLicenseRequired";

/// The HTTP method of a request (reqwest's own type; a method is never a string here).
pub use reqwest::Method;

/// The HTTP client both API clients use: bounded connect and request timeouts, no redirects
/// (a token must never follow one), and mi-assess's user agent.
pub fn client() -> reqwest::Result<reqwest::Client> {
    client_with(Duration::from_secs(20), Duration::from_secs(120))
}

/// [`client`] with other timeouts: the check before a run stays within its budget, and the Log
/// Analytics client waits as long as the workspace may run a query.
pub fn client_with(connect: Duration, total: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mi-assess/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How hard to retry throttled and transient failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt for server errors, dropped connections and malformed
    /// responses.
    pub max_retries: u32,
    /// Retries of a request the service throttled (429), counted apart: throttling is the
    /// service asking the client to slow down, not a failure, so a run at the budget must outlast
    /// it. With the growing pause of sustained throttling these span minutes.
    pub max_throttled_retries: u32,
    /// First backoff when the service gives no `Retry-After`.
    pub base_delay: Duration,
    /// Ceiling for any single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            max_throttled_retries: 30,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The retries allowed for one kind of failure: [`Self::max_throttled_retries`] for
    /// throttling, [`Self::max_retries`] for anything else.
    pub fn budget(&self, throttled: bool) -> u32 {
        if throttled {
            self.max_throttled_retries
        } else {
            self.max_retries
        }
    }

    /// The wait before the next retry when `retries` of its kind were made already: the
    /// service's `hint` when it gave one, else [`backoff`]; never more than
    /// [`Self::max_delay`].
    pub fn delay(&self, hint: Option<Duration>, retries: u32) -> Duration {
        hint.unwrap_or_else(|| backoff(self.base_delay, retries))
            .min(self.max_delay)
    }
}

/// True for statuses worth retrying: throttling (429) and transient server errors.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Exponential backoff with full jitter: a random wait in `[base·2^attempt / 2, base·2^attempt]`.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16));
    let random = fastrand::u32(0..1000);
    ceiling / 2 + ceiling / 2 * random / 1000
}

/// Parses a `Retry-After` value in seconds (Graph and ARM send seconds, sometimes fractional).
/// Negative, non-finite and non-numeric values (including HTTP dates) give `None`.
pub fn parse_seconds(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        // Too large for a Duration (`1e30`) is not a hint, not a panic.
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Parses an `hh:mm:ss` duration (`x-ms-user-quota-resets-after`), seconds may be fractional.
pub fn parse_hms(value: &str) -> Option<Duration> {
    let mut parts = value.trim().split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let hours: u64 = h.trim().parse().ok()?;
    let minutes: u64 = m.trim().parse().ok()?;
    let seconds = parse_seconds(s)?;
    let whole = hours
        .checked_mul(3600)?
        .checked_add(minutes.checked_mul(60)?)?;
    Duration::from_secs(whole).checked_add(seconds)
}

/// A response header as text; `None` when it is absent or not visible ASCII.
pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name)?.to_str().ok()
}

/// The response's `Retry-After`, when it is a number of seconds ([`parse_seconds`]).
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    header(response, "retry-after").and_then(parse_seconds)
}

/// A request to `url` with the bearer `token`, asking for JSON; `body`, when given, is sent as
/// JSON. Callers add their own headers.
pub fn request(
    client: &reqwest::Client,
    method: Method,
    url: &Url,
    token: &SecretString,
    body: Option<&serde_json::Value>,
) -> reqwest::RequestBuilder {
    let request = client
        .request(method, url.clone())
        .bearer_auth(token.expose_secret())
        .header("Accept", "application/json");
    match body {
        Some(json) => request.json(json),
        None => request,
    }
}

/// Why a request gave no usable answer. Each client maps it into its own error type, and turns
/// [`Error::Status`]'s body into its service's error code and message.
#[derive(Debug)]
pub enum Error {
    /// The connection failed, or the body could not be read.
    Transport {
        /// The request URL (never carries a token).
        url: String,
        /// The transport error and its sources.
        message: String,
    },
    /// The service answered with a status other than 2xx.
    Status {
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// The response body (the service's error document, if any).
        body: Bytes,
        /// The `Retry-After` the service sent, in seconds ([`parse_seconds`]).
        retry_after: Option<Duration>,
    },
    /// The body was not the JSON expected ([`decode`]).
    Malformed {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The response body was larger than [`Limits::max_response_bytes`].
    TooLarge {
        /// The request URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A paging link pointed away from the configured endpoint ([`checked_link`]).
    ForeignLink {
        /// The link the service (or something pretending to be it) returned.
        link: String,
        /// The configured endpoint.
        expected: String,
    },
}

impl Error {
    /// The HTTP status, for [`Error::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(status.as_u16()),
            _ => None,
        }
    }

    /// True when the service throttled the request (429).
    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    /// True when another attempt may succeed: a transport failure, or a status
    /// [`is_retryable`] says is transient.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => is_retryable(status.as_u16()),
            Self::Malformed { .. } | Self::TooLarge { .. } | Self::ForeignLink { .. } => false,
        }
    }

    /// The `Retry-After` of an [`Error::Status`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What one listing or one response may cost at most, so hostile or broken answers end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest response body read, checked as it streams in (before parsing).
    pub max_response_bytes: usize,
    /// The most pages one listing follows before it is an error.
    pub max_pages: usize,
}

impl Default for Limits {
    /// 64 MiB per response (a 999-object page of service principals is a few MiB) and 100,000
    /// pages per listing (about 100 million objects at 999 per page).
    fn default() -> Self {
        Self {
            max_response_bytes: 64 * 1024 * 1024,
            max_pages: 100_000,
        }
    }
}

/// Sends `request` (to `url`) once and reads the whole answer: the body of a 2xx, else
/// [`Error::Status`] with the body and `Retry-After`, or [`Error::Transport`] when the
/// connection or the body read failed. `inspect` sees the response head as soon as it arrives,
/// before the body is read, for accounting and pacing headers.
pub async fn attempt(
    url: &Url,
    request: reqwest::RequestBuilder,
    max_bytes: usize,
    inspect: impl FnOnce(&reqwest::Response),
) -> Result<Bytes, Error> {
    let transport = |e: &reqwest::Error, what: &str| Error::Transport {
        url: url.to_string(),
        message: format!("{what}{}", error_chain(e)),
    };
    let mut response = request.send().await.map_err(|e| transport(&e, ""))?;
    inspect(&response);
    let status = response.status();
    let retry_after = retry_after(&response);
    let too_large = || Error::TooLarge {
        url: url.to_string(),
        limit: max_bytes,
    };
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(too_large());
    }
    // Streamed, so an endless or oversized body stops at the limit, never in memory whole.
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport(&e, "reading the body: "))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    if status.is_success() {
        Ok(body)
    } else {
        Err(Error::Status {
            url: url.to_string(),
            status,
            body,
            retry_after,
        })
    }
}

/// What one try of a request gave, for [`with_retries`].
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// Final: the answer, or an error not worth retrying.
    Done(Result<T, E>),
    /// Worth another try.
    Retry {
        /// Why this try failed (returned once the budget is spent).
        error: E,
        /// The service throttled the request: counts against the throttling budget.
        throttled: bool,
        /// How long to wait before the next try, when the service (or the client's pacing)
        /// says; else [`backoff`].
        retry_after: Option<Duration>,
    },
}

/// Runs `send` until it is [`Attempt::Done`] or `policy`'s budget for the kind of failure is
/// spent, waiting [`RetryPolicy::delay`] between tries. Each retry is counted in `retries` and
/// logged at debug level as a retry of a `service` request to `url`.
pub async fn with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    retries: &AtomicU64,
    service: &str,
    url: &Url,
    mut send: F,
) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T, E>>,
{
    let mut attempt = 0u32;
    let mut throttled = 0u32;
    loop {
        let (error, was_throttled, retry_after) = match send().await {
            Attempt::Done(result) => return result,
            Attempt::Retry {
                error,
                throttled,
                retry_after,
            } => (error, throttled, retry_after),
        };
        // Throttling has its own, larger budget (see `RetryPolicy`).
        let used = if was_throttled {
            &mut throttled
        } else {
            &mut attempt
        };
        if *used >= policy.budget(was_throttled) {
            return Err(error);
        }
        let delay = policy.delay(retry_after, *used);
        *used += 1;
        retries.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(url = %url, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying {service} request");
        tokio::time::sleep(delay).await;
    }
}

/// Decodes a JSON answer; a body that is not the expected JSON (truncated, malformed, wrong
/// shape) is [`Error::Malformed`], naming `url`.
pub fn decode<T: DeserializeOwned>(url: &Url, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
        url: url.to_string(),
        message: e.to_string(),
    })
}

/// Parses a paging link (`@odata.nextLink`, `nextLink`) and accepts it only on `endpoint`'s
/// origin ([`same_origin`]), so a token never follows it elsewhere. Anything else, an unparsable
/// link included, is [`Error::ForeignLink`].
pub fn checked_link(link: &str, endpoint: &Url) -> Result<Url, Error> {
    match Url::parse(link) {
        Ok(url) if same_origin(&url, endpoint) => Ok(url),
        _ => Err(Error::ForeignLink {
            link: link.to_owned(),
            expected: endpoint.to_string(),
        }),
    }
}

/// True when `url` has the same scheme, host and port as `endpoint` and carries no credentials.
pub fn same_origin(url: &Url, endpoint: &Url) -> bool {
    url.scheme() == endpoint.scheme()
        && url.host_str().map(str::to_ascii_lowercase)
            == endpoint.host_str().map(str::to_ascii_lowercase)
        && url.port_or_known_default() == endpoint.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
}

/// An error and all its sources, joined with `: ` (reqwest hides the useful part in sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let base = Duration::from_millis(100);
        for attempt in 0..5 {
            let d = backoff(base, attempt);
            let ceiling = base * (1 << attempt);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn retry_hints_parse() {
        assert_eq!(parse_seconds("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_seconds(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_hms("00:00:03"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_hms("01:02:03.5"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_hms("3"), None);
        assert_eq!(parse_hms("00:00:00:01"), None);
        assert!(is_retryable(429) && is_retryable(503) && !is_retryable(403));
    }

    #[test]
    fn links_must_stay_on_the_arm_origin() {
        let arm = Url::parse("https://management.azure.com").expect("url");
        for (link, ok) in [
            ("https://management.azure.com/subscriptions/s?x=1", true),
            ("https://MANAGEMENT.azure.com:443/a", true),
            ("https://management.azure.com.evil.example/a", false),
            ("http://management.azure.com/a", false),
            ("https://user@management.azure.com/a", false),
            ("https://management.azure.com:8443/a", false),
        ] {
            assert_eq!(
                same_origin(&Url::parse(link).expect("url"), &arm),
                ok,
                "{link}"
            );
        }
    }
}

/// The `{"error": {"code", "message"}}` document Graph and ARM answer a failed request with.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: ServiceError,
}

/// A service's own account of a failed request: its error code and message.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceError {
    /// The service's error code, e.g. `Authorization_RequestDenied`; empty when it sent none.
    #[serde(default)]
    pub code: String,
    /// The service's message.
    #[serde(default)]
    pub message: String,
}

impl ServiceError {
    /// Reads the error document in a response body; empty when the body is not one.
    pub fn from_body(body: &[u8]) -> Self {
        serde_json::from_slice::<ErrorBody>(body)
            .unwrap_or_default()
            .error
    }

    /// Reads the error document of a `$batch` inner response; empty when it is not one.
    pub fn from_value(body: serde_json::Value) -> Self {
        serde_json::from_value::<ErrorBody>(body)
            .unwrap_or_default()
            .error
    }

    /// The code and message, with `fallback` as the code when the service sent none.
    pub fn into_parts(self, fallback: impl Display) -> (String, String) {
        let code = if self.code.is_empty() {
            fallback.to_string()
        } else {
            self.code
        };
        (code, self.message)
    }
}
