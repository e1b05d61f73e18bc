//! The Graph HTTP client: bearer auth, `$select`-friendly GETs, `@odata.nextLink` paging,
//! JSON `$batch`, throttling (the pacer) and transient-fault retries, and request / resource-unit
//! accounting. Requests, retry timing, decoding and link checks are the shared [`crate::http`]
//! layer's; what is Graph's own is here.
//!
//! Security: a token is only ever sent to the configured Graph scheme, host and port. A
//! `@odata.nextLink` that points anywhere else is refused before any request is made.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{TokenError, TokenSource};
use crate::config::{MAX_PAGES_VAR, MAX_RESPONSE_MB_VAR};
use crate::http::RetryPolicy;
use crate::http::{self, Attempt, Limits, Method, ServiceError, backoff};
use crate::progress::Progress;

/// The API version segment mi-assess uses.
pub const API_VERSION: &str = "v1.0";

/// Why a Graph call failed. Callers branch on the variant (not found, forbidden, …).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// No token could be obtained.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Graph answered with an error status after any retries.
    #[error("graph returned {status} for {url}: {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Graph error code, e.g. `Authorization_RequestDenied`.
        code: String,
        /// Graph error message.
        message: String,
        /// The request URL (never carries a token).
        url: String,
    },
    /// The connection failed after any retries.
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The request URL.
        url: String,
        /// The transport error text.
        message: String,
    },
    /// The response was not the JSON Graph documents (truncated, malformed, wrong shape).
    #[error("malformed response from {url}: {message}")]
    Malformed {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The response was larger than the configured limit; reading it again cannot help.
    #[error(
        "the response from {url} is larger than the {limit}-byte limit ({MAX_RESPONSE_MB_VAR})"
    )]
    TooLarge {
        /// The request URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// Paging did not end: a nextLink repeated a page this listing already read, or the
    /// listing reached its page cap.
    #[error("paging of {url} did not end: {reason}")]
    EndlessPaging {
        /// The listing's first URL.
        url: String,
        /// Which limit it hit.
        reason: String,
    },
    /// `@odata.nextLink` pointed away from the configured Graph endpoint.
    #[error(
        "refusing to follow @odata.nextLink to {link}: it is not on the configured Graph endpoint {expected}"
    )]
    ForeignNextLink {
        /// The link Graph (or something pretending to be Graph) returned.
        link: String,
        /// The configured endpoint.
        expected: String,
    },
}

impl From<http::Error> for GraphError {
    fn from(error: http::Error) -> Self {
        match error {
            http::Error::Transport { url, message } => Self::Transport { url, message },
            http::Error::Status {
                url, status, body, ..
            } => {
                let (code, message) = ServiceError::from_body(&body).into_parts(status);
                Self::Status {
                    status: status.as_u16(),
                    code,
                    message,
                    url,
                }
            }
            http::Error::Malformed { url, message } => Self::Malformed { url, message },
            http::Error::TooLarge { url, limit } => Self::TooLarge { url, limit },
            http::Error::ForeignLink { link, expected } => Self::ForeignNextLink { link, expected },
        }
    }
}

impl GraphError {
    /// The HTTP status, for errors that carry one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when Graph said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True when the scanner lacks a permission for this call.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// True when the data sits behind a licence the tenant lacks: 400 with the code
    /// [`http::LICENCE_REQUIRED_CODE`], never inferred from a message.
    pub fn is_licence_required(&self) -> bool {
        matches!(self, Self::Status { status: 400, code, .. } if code.eq_ignore_ascii_case(http::LICENCE_REQUIRED_CODE))
    }
}

/// Counters for one client: what the run cost Graph.
#[derive(Debug, Default)]
pub struct GraphStats {
    requests: AtomicU64,
    resource_units: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
}

/// A copy of [`GraphStats`] at one moment, for manifests and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphStatsSnapshot {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Resource units Graph reported in `x-ms-resource-unit`.
    pub resource_units: u64,
    /// 429 responses received.
    pub throttled: u64,
    /// Retries made.
    pub retries: u64,
}

impl GraphStats {
    /// Reads the counters.
    pub fn snapshot(&self) -> GraphStatsSnapshot {
        GraphStatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            resource_units: self.resource_units.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// One page of a Graph collection. `value` is required: a page without it is malformed, never
/// an empty list.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// The page's items; a page without `value` is malformed, never empty.
    pub value: Vec<T>,
    /// The next page, when there is one.
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// The pages one listing has read: a nextLink seen before, or one page too many, ends it with
/// [`GraphError::EndlessPaging`] instead of a loop that never ends.
#[derive(Debug)]
struct Paging {
    first: String,
    seen: std::collections::HashSet<String>,
    max_pages: usize,
}

impl Paging {
    fn new(first: &str, max_pages: usize) -> Self {
        Self {
            first: first.to_owned(),
            seen: std::collections::HashSet::from([first.to_owned()]),
            max_pages,
        }
    }

    /// Records the next page's link; an error when it cannot be a new page.
    fn follow(&mut self, link: &str) -> Result<(), GraphError> {
        let reason = if !self.seen.insert(link.to_owned()) {
            format!("@odata.nextLink {link} repeats a page this listing already read")
        } else if self.seen.len() > self.max_pages {
            format!("it passed {} pages ({MAX_PAGES_VAR})", self.max_pages)
        } else {
            return Ok(());
        };
        Err(GraphError::EndlessPaging {
            url: self.first.clone(),
            reason,
        })
    }
}

/// A Microsoft Graph client bound to one endpoint and one identity.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    endpoint: Url,
    tokens: TokenSource,
    retry: RetryPolicy,
    stats: Arc<GraphStats>,
    pacer: Arc<Pacer>,
    limits: Limits,
    progress: Progress,
}

impl GraphClient {
    /// The same client with request accounting of its own, for one run: the manifest counts
    /// that run's requests, not the process's. The pacer stays shared, since Graph's budget is
    /// per tenant and app, whoever spends it.
    pub fn for_run(&self) -> Self {
        Self {
            stats: Arc::new(GraphStats::default()),
            progress: Progress::new(),
            ..self.clone()
        }
    }

    /// The same client, reporting what it reads into `progress` (objects listed, `$batch`
    /// requests finished).
    pub fn with_progress(mut self, progress: Progress) -> Self {
        let stats = self.stats.clone();
        progress.measure_cost_with(Arc::new(move || {
            let now = stats.snapshot();
            crate::progress::Cost {
                resource_units: now.resource_units,
                throttled: now.throttled,
            }
        }));
        self.progress = progress;
        self
    }

    /// Where the run this client reads for is.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// A client for `endpoint` (e.g. `https://graph.microsoft.com`), authenticating with `tokens`.
    pub fn new(endpoint: Url, tokens: TokenSource, retry: RetryPolicy) -> anyhow::Result<Self> {
        Ok(Self {
            http: http::client()?,
            endpoint,
            tokens,
            retry,
            stats: Arc::new(GraphStats::default()),
            pacer: Arc::new(Pacer::new(MAX_BATCHES_IN_FLIGHT)),
            limits: Limits::default(),
            progress: Progress::new(),
        })
    }

    /// Bounds responses and listings by `limits` (a new client uses [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The token source (for reading the scanner's own claims).
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// Request counters for this client and its clones.
    pub fn stats(&self) -> &GraphStats {
        &self.stats
    }

    /// Builds `{endpoint}/v1.0/{path_and_query}`.
    pub fn url(&self, path_and_query: &str) -> Result<Url, GraphError> {
        let base = self.endpoint.as_str().trim_end_matches('/');
        let text = format!(
            "{base}/{API_VERSION}/{}",
            path_and_query.trim_start_matches('/')
        );
        Url::parse(&text).map_err(|e| GraphError::Malformed {
            url: text.clone(),
            message: format!("not a URL: {e}"),
        })
    }

    /// GETs one resource and decodes it.
    pub async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, GraphError> {
        let url = self.url(path_and_query)?;
        self.get_url(&url).await
    }

    /// POSTs a JSON body to a read-only action (e.g. `directoryObjects/getByIds`) and decodes
    /// the answer, with the same retries as a GET.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
        body: &serde_json::Value,
    ) -> Result<T, GraphError> {
        let url = self.url(path_and_query)?;
        self.send(Method::POST, &url, Some(body)).await
    }

    /// GETs a whole collection, following `@odata.nextLink` to the end.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let first = self.url(path_and_query)?;
        let mut paging = Paging::new(first.as_str(), self.limits.max_pages);
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let page: Page<T> = self.get_url(&url).await?;
            self.progress.advance(page.value.len() as u64);
            items.extend(page.value);
            if let Some(link) = page.next_link {
                let url = http::checked_link(&link, &self.endpoint)?;
                paging.follow(url.as_str())?;
                next = Some(url);
            }
        }
        // Growth by doubling leaves up to half the capacity unused; a run holds these lists
        // until it ends.
        items.shrink_to_fit();
        Ok(items)
    }

    /// Reads many collections through JSON `$batch` (20 requests per batch, several batches
    /// in flight). `paths` are relative to the version segment, e.g.
    /// `/servicePrincipals/{id}/appRoleAssignments?$select=…`. Each result is the whole
    /// collection (inner `@odata.nextLink`s are followed in later batches) or that request's
    /// error. Inner 429s and 5xx are retried after their own `Retry-After`.
    pub async fn batch_list<T: DeserializeOwned>(
        &self,
        paths: &[String],
        concurrency: usize,
    ) -> Vec<Result<Vec<T>, GraphError>> {
        let convert = |values: Vec<serde_json::Value>, path: &str| {
            values
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<T>, _>>()
                .map_err(|e| GraphError::Malformed {
                    url: path.to_owned(),
                    message: e.to_string(),
                })
        };
        self.batch_values(paths, concurrency, BatchMode::Collection, &[], &convert)
            .await
    }

    /// Reads many single objects through JSON `$batch`; see [`Self::batch_list`].
    pub async fn batch_get<T: DeserializeOwned>(
        &self,
        paths: &[String],
        concurrency: usize,
    ) -> Vec<Result<T, GraphError>> {
        self.batch_get_with(paths, &[], concurrency).await
    }

    /// [`Self::batch_get`] with request headers on every inner request, e.g.
    /// `ConsistencyLevel: eventual` for `$count` on directory objects. A whole response body
    /// (its `@odata.count` too) is one object: no `@odata.nextLink` is followed.
    pub async fn batch_get_with<T: DeserializeOwned>(
        &self,
        paths: &[String],
        headers: &[(&str, &str)],
        concurrency: usize,
    ) -> Vec<Result<T, GraphError>> {
        let convert = |mut values: Vec<serde_json::Value>, path: &str| {
            let value = values.pop().unwrap_or_default();
            serde_json::from_value(value).map_err(|e| GraphError::Malformed {
                url: path.to_owned(),
                message: e.to_string(),
            })
        };
        self.batch_values(paths, concurrency, BatchMode::Object, headers, &convert)
            .await
    }

    /// The `$batch` engine. Each request's items are converted to their type (`convert`) as soon
    /// as its last page arrives, so raw JSON never accumulates for the whole tenant.
    async fn batch_values<R>(
        &self,
        paths: &[String],
        concurrency: usize,
        mode: BatchMode,
        headers: &[(&str, &str)],
        convert: &Converter<R>,
    ) -> Vec<Result<R, GraphError>> {
        let headers: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        type T = serde_json::Value;
        let mut results: Vec<Option<Result<R, GraphError>>> = paths.iter().map(|_| None).collect();
        let mut collected: Vec<Vec<T>> = paths.iter().map(|_| Vec::new()).collect();
        let mut pending: Vec<BatchItem> = paths
            .iter()
            .enumerate()
            .map(|(key, path)| BatchItem {
                key,
                path: path.clone(),
                attempt: 0,
                throttled: 0,
            })
            .collect();
        pending.reverse();
        let batch_url = match self.url("$batch") {
            Ok(url) => url,
            Err(e) => {
                let message = e.to_string();
                return paths
                    .iter()
                    .map(|p| {
                        Err(GraphError::Malformed {
                            url: p.clone(),
                            message: message.clone(),
                        })
                    })
                    .collect();
            }
        };
        let mut in_flight = futures::stream::FuturesUnordered::new();
        // The pages each request has followed, once it has a second one.
        let mut paging: HashMap<usize, Paging> = HashMap::new();
        // Items waiting out a backoff (5xx or a malformed response), with the time they are due.
        let mut delayed: Vec<(tokio::time::Instant, BatchItem)> = Vec::new();
        loop {
            let now = tokio::time::Instant::now();
            let (due, later): (Vec<_>, Vec<_>) = delayed.drain(..).partition(|(at, _)| *at <= now);
            delayed = later;
            pending.extend(due.into_iter().map(|(_, item)| item));
            while in_flight.len() < self.pacer.limit().min(concurrency.max(1))
                && !pending.is_empty()
            {
                let take = BATCH_LIMIT.min(pending.len());
                let chunk = pending.split_off(pending.len() - take);
                in_flight.push(self.send_batch(&batch_url, chunk, &headers));
            }
            let outcomes = if in_flight.is_empty() {
                match delayed.iter().map(|(at, _)| *at).min() {
                    Some(at) => {
                        tokio::time::sleep_until(at).await;
                        continue;
                    }
                    None => break,
                }
            } else {
                match futures::StreamExt::next(&mut in_flight).await {
                    Some(outcomes) => outcomes,
                    None => continue,
                }
            };
            // The requests these outcomes may finish, to count the ones they do.
            let open: Vec<usize> = outcomes
                .iter()
                .map(BatchOutcome::key)
                .filter(|key| results[*key].is_none())
                .collect();
            for outcome in outcomes {
                match outcome {
                    BatchOutcome::Page {
                        key,
                        value,
                        next: _,
                    } if mode == BatchMode::Object => {
                        results[key] = Some(convert(vec![value], &paths[key]));
                    }
                    BatchOutcome::Page { key, value, next } => {
                        match serde_json::from_value::<Page<T>>(value) {
                            Ok(page) => {
                                collected[key].extend(page.value);
                                let next_path = page.next_link.map(|link| {
                                    let path = self.relative_next_link(&link)?;
                                    paging
                                        .entry(key)
                                        .or_insert_with(|| {
                                            Paging::new(&paths[key], self.limits.max_pages)
                                        })
                                        .follow(&path)?;
                                    Ok(path)
                                });
                                match next_path {
                                    None => {
                                        results[key] = Some(convert(
                                            std::mem::take(&mut collected[key]),
                                            &paths[key],
                                        ));
                                    }
                                    Some(Ok(path)) => pending.push(BatchItem {
                                        key,
                                        path,
                                        attempt: 0,
                                        throttled: 0,
                                    }),
                                    Some(Err(e)) => results[key] = Some(Err(e)),
                                }
                            }
                            // A page without `value` is malformed: an error, never a short list.
                            Err(e) => {
                                let error = GraphError::Malformed {
                                    url: next.path.clone(),
                                    message: e.to_string(),
                                };
                                self.retry_later(
                                    next,
                                    None,
                                    error,
                                    &mut delayed,
                                    &mut pending,
                                    &mut results,
                                );
                            }
                        }
                    }
                    BatchOutcome::Retry {
                        item,
                        retry_after,
                        error,
                    } => self.retry_later(
                        item,
                        retry_after,
                        error,
                        &mut delayed,
                        &mut pending,
                        &mut results,
                    ),
                    BatchOutcome::Failed { key, error } => results[key] = Some(Err(error)),
                }
            }
            let finished = open.iter().filter(|key| results[**key].is_some()).count();
            self.progress.advance(finished as u64);
        }
        results
            .into_iter()
            .zip(paths)
            .map(|(r, p)| {
                r.unwrap_or_else(|| {
                    Err(GraphError::Malformed {
                        url: p.clone(),
                        message: "no response was recorded".into(),
                    })
                })
            })
            .collect()
    }

    /// Schedules one batched request again: a throttled one as soon as the pacer allows when the
    /// throttling was general (the pacer already paused every sender for the `Retry-After`),
    /// otherwise after its own `Retry-After`; others after a backoff. Gives up after the retry
    /// budget.
    fn retry_later<R>(
        &self,
        item: BatchItem,
        retry_after: Option<Duration>,
        error: GraphError,
        delayed: &mut Vec<(tokio::time::Instant, BatchItem)>,
        pending: &mut Vec<BatchItem>,
        results: &mut [Option<Result<R, GraphError>>],
    ) {
        let throttled = error.status() == Some(429);
        let used = if throttled {
            item.throttled
        } else {
            item.attempt
        };
        if used >= self.retry.budget(throttled) {
            results[item.key] = Some(Err(error));
            return;
        }
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        let next = BatchItem {
            attempt: item.attempt + u32::from(!throttled),
            throttled: item.throttled + u32::from(throttled),
            ..item
        };
        if throttled && retry_after.is_none() {
            // The pacer already paused every sender for the Retry-After.
            pending.push(next);
        } else {
            let delay = self
                .retry
                .delay(retry_after, next.attempt.saturating_sub(1));
            delayed.push((tokio::time::Instant::now() + delay, next));
        }
    }

    /// Sends one `$batch` of at most 20 GETs and sorts the inner responses.
    async fn send_batch(
        &self,
        batch_url: &Url,
        items: Vec<BatchItem>,
        headers: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<BatchOutcome> {
        let requests: Vec<serde_json::Value> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let mut request = serde_json::json!({ "id": i.to_string(), "method": Method::GET.as_str(), "url": item.path });
                if !headers.is_empty() {
                    request["headers"] = serde_json::Value::Object(headers.clone());
                }
                request
            })
            .collect();
        let body = serde_json::json!({ "requests": requests });
        let sent_in = self.pacer.window();
        let response: Result<BatchResponse, GraphError> =
            self.send(Method::POST, batch_url, Some(&body)).await;
        let response = match response {
            Ok(r) => r,
            Err(error) => {
                // The batch itself failed after retries: every request in it failed the same way.
                let message = error.to_string();
                return items
                    .into_iter()
                    .map(|item| BatchOutcome::Failed {
                        key: item.key,
                        error: GraphError::Transport {
                            url: item.path,
                            message: message.clone(),
                        },
                    })
                    .collect();
            }
        };
        let Some(mut by_id) = response.by_id() else {
            // Which answer is which request's is unknowable: the batch is malformed, and every
            // request in it is retried (and marked unknown when the retries run out).
            return items
                .into_iter()
                .map(|item| BatchOutcome::Retry {
                    error: GraphError::Malformed {
                        url: item.path.clone(),
                        message: "the $batch response answers one request id twice".into(),
                    },
                    item,
                    retry_after: None,
                })
                .collect();
        };
        let mut outcomes = Vec::with_capacity(items.len());
        let mut throttled: Vec<(Duration, bool)> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let Some(inner) = by_id.remove(&i.to_string()) else {
                outcomes.push(BatchOutcome::Retry {
                    error: GraphError::Malformed {
                        url: item.path.clone(),
                        message: "the $batch response has no entry for this request".into(),
                    },
                    item,
                    retry_after: None,
                });
                continue;
            };
            if let Some(ru) = inner
                .header("x-ms-resource-unit")
                .and_then(|v| v.parse::<f64>().ok())
            {
                self.stats
                    .resource_units
                    .fetch_add(ru.round() as u64, Ordering::Relaxed);
            }
            let status = inner.status;
            if (200..300).contains(&status) {
                self.pacer.observe(
                    inner
                        .header("x-ms-throttle-limit-percentage")
                        .and_then(|v| v.parse::<f64>().ok()),
                );
                outcomes.push(BatchOutcome::Page {
                    key: item.key,
                    value: inner.body,
                    next: item,
                });
                continue;
            }
            let (code, message) = ServiceError::from_value(inner.body.clone()).into_parts(status);
            let error = GraphError::Status {
                status,
                code,
                message,
                url: item.path.clone(),
            };
            let retry_after = inner
                .header("retry-after")
                .and_then(|v| http::parse_seconds(&v));
            if status == 429 {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                let wait = retry_after.unwrap_or_else(|| backoff(self.retry.base_delay, 0));
                // Graph names the budget on its 429s (`x-ms-throttle-scope`, e.g.
                // Tenant_Application/…, and `x-ms-throttle-information`).
                let budget = inner.header("x-ms-throttle-scope").is_some()
                    || inner.header("x-ms-throttle-information").is_some();
                throttled.push((wait, budget));
            }
            let retryable = http::is_retryable(status);
            if retryable {
                outcomes.push(BatchOutcome::Retry {
                    item,
                    retry_after,
                    error,
                });
            } else {
                outcomes.push(BatchOutcome::Failed {
                    key: item.key,
                    error,
                });
            }
        }
        // The budget running out (Graph says so, or half the batch or more is throttled)
        // concerns every sender: all pause and the pacer backs off. Other throttling (Graph also
        // throttles "under an important load") concerns only the throttled requests: each waits
        // out its own Retry-After, and longer (exponential backoff) each time it is throttled
        // again.
        if !throttled.is_empty() {
            let general = throttled.len() * 2 >= outcomes.len()
                || throttled.iter().any(|(_, budget)| *budget);
            if general {
                let wait = throttled
                    .iter()
                    .map(|(wait, _)| *wait)
                    .max()
                    .unwrap_or_default();
                self.pacer.throttled(wait, sent_in);
            }
            for outcome in &mut outcomes {
                if let BatchOutcome::Retry {
                    item,
                    error,
                    retry_after,
                } = outcome
                    && error.status() == Some(429)
                {
                    *retry_after = if general {
                        None
                    } else {
                        let asked = retry_after.unwrap_or_default();
                        let again = match item.throttled {
                            0 => Duration::ZERO,
                            n => backoff(self.retry.base_delay, n - 1),
                        };
                        Some(asked.max(again))
                    };
                }
            }
        }
        outcomes
    }

    /// Turns an absolute `@odata.nextLink` into a path relative to the version segment, after
    /// checking it points at the configured endpoint.
    fn relative_next_link(&self, link: &str) -> Result<String, GraphError> {
        let url = http::checked_link(link, &self.endpoint)?;
        let prefix = format!("/{API_VERSION}");
        let path = url.path().strip_prefix(&prefix).unwrap_or(url.path());
        Ok(match url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        })
    }

    async fn get_url<T: DeserializeOwned>(&self, url: &Url) -> Result<T, GraphError> {
        self.send(Method::GET, url, None).await
    }

    /// Sends one request, retrying throttling and transient failures, and decodes the response.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, GraphError> {
        let method = &method;
        http::with_retries(&self.retry, &self.stats.retries, "graph", url, move || {
            self.send_once(method, url, body)
        })
        .await
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Attempt<T, GraphError> {
        let token = match self.tokens.bearer().await {
            Ok(token) => token,
            Err(e) => return Attempt::Done(Err(e.into())),
        };
        let sent_in = self.pacer.wait().await;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let request = http::request(&self.http, method.clone(), url, &token, body)
            .header("x-ms-throttle-priority", "Low");
        let answer = http::attempt(url, request, self.limits.max_response_bytes, |response| {
            if let Some(ru) = header_f64(response, "x-ms-resource-unit") {
                self.stats
                    .resource_units
                    .fetch_add(ru.round() as u64, Ordering::Relaxed);
            }
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                self.pacer.throttled(
                    http::retry_after(response)
                        .unwrap_or_else(|| backoff(self.retry.base_delay, 0)),
                    sent_in,
                );
            } else {
                self.pacer
                    .observe(header_f64(response, "x-ms-throttle-limit-percentage"));
            }
        })
        .await;
        // A 2xx whose body is truncated or not JSON is a failed attempt, never data.
        let error = match answer.and_then(|bytes| http::decode(url, &bytes)) {
            Ok(value) => return Attempt::Done(Ok(value)),
            Err(error) => error,
        };
        let throttled = error.is_throttled();
        if throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if error.is_retryable() || matches!(error, http::Error::Malformed { .. }) {
            // Throttled: the pacer has paused every sender for the Retry-After.
            let retry_after = if throttled {
                Some(Duration::ZERO)
            } else {
                error.retry_after()
            };
            Attempt::Retry {
                retry_after,
                throttled,
                error: error.into(),
            }
        } else {
            Attempt::Done(Err(error.into()))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchMode {
    Collection,
    Object,
}

/// Turns the items of one batched request into their final type.
type Converter<R> = dyn Fn(Vec<serde_json::Value>, &str) -> Result<R, GraphError> + Sync;

/// Upper bound on `$batch` requests in flight; the pacer adapts below it.
pub const MAX_BATCHES_IN_FLIGHT: usize = 16;

/// Keeps the client under Graph's resource-unit budget, which is shared by every request of
/// this app in this tenant. Throttling of the budget (see `send_batch` for how it is told from
/// other 429s) pauses *every* sender until its `Retry-After` (the bucket refills meanwhile),
/// longer while it persists, and halves the number of batches in flight, once per window: the 429s of
/// requests sent before the last decrease are answers to the load that decrease already took
/// back, so they extend the pause but do not halve again (as TCP reduces once per window).
/// `x-ms-throttle-limit-percentage` (sent from 80% of the budget upwards) stops growth near the
/// limit; otherwise the concurrency grows by one every few successes (additive increase,
/// multiplicative decrease).
#[derive(Debug)]
struct Pacer {
    state: std::sync::Mutex<PacerState>,
}

#[derive(Debug)]
struct PacerState {
    paused_until: Option<tokio::time::Instant>,
    limit: usize,
    max: usize,
    successes: u32,
    /// Counts decreases; a request remembers the window it was sent in.
    window: u64,
    /// Decreases in a row, each within [`SUSTAINED_WITHIN`] of the last.
    streak: u32,
    last_decrease: Option<tokio::time::Instant>,
}

/// Decreases this close together mean throttling persists past a backoff.
const SUSTAINED_WITHIN: Duration = Duration::from_secs(2);
/// The least pause once throttling persists; it doubles with each further decrease.
const SUSTAINED_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause the pacer imposes beyond what Graph asked for.
const SUSTAINED_PAUSE_MAX: Duration = Duration::from_secs(10);

impl Pacer {
    fn new(max: usize) -> Self {
        Self {
            state: std::sync::Mutex::new(PacerState {
                paused_until: None,
                limit: 4.min(max),
                max,
                successes: 0,
                window: 0,
                streak: 0,
                last_decrease: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Batches allowed in flight now.
    fn limit(&self) -> usize {
        self.lock().limit
    }

    /// The window a request sent now belongs to.
    fn window(&self) -> u64 {
        self.lock().window
    }

    /// Waits out a pause caused by throttling; returns the window the request is sent in.
    async fn wait(&self) -> u64 {
        loop {
            let (until, window) = {
                let state = self.lock();
                (state.paused_until, state.window)
            };
            match until {
                Some(at) if at > tokio::time::Instant::now() => tokio::time::sleep_until(at).await,
                _ => return window,
            }
        }
    }

    /// Graph throttled a request sent in window `sent_in`: pause everyone, and back off unless
    /// a decrease since that request was sent already has. While throttling persists (decreases
    /// in a row, each soon after the last) the pause is at least [`SUSTAINED_PAUSE`], doubling
    /// each time: Graph keeps counting usage while it throttles, and a `Retry-After` computed for
    /// one request says nothing of the others waiting ("avoid immediate retries").
    fn throttled(&self, retry_after: Duration, sent_in: u64) {
        let mut state = self.lock();
        let now = tokio::time::Instant::now();
        state.successes = 0;
        if sent_in >= state.window {
            state.limit = (state.limit / 2).max(1);
            state.window += 1;
            state.streak = match state.last_decrease {
                Some(at) if now.duration_since(at) <= SUSTAINED_WITHIN => state.streak + 1,
                _ => 1,
            };
            state.last_decrease = Some(now);
        }
        let floor = match state.streak {
            0 | 1 => Duration::ZERO,
            n => SUSTAINED_PAUSE
                .saturating_mul(1 << (n - 2).min(16))
                .min(SUSTAINED_PAUSE_MAX),
        };
        let until = now + retry_after.max(floor);
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A request succeeded; `pressure` is `x-ms-throttle-limit-percentage` when Graph sent it.
    fn observe(&self, pressure: Option<f64>) {
        let mut state = self.lock();
        match pressure {
            Some(p) if p >= 0.95 => {
                state.limit = state.limit.saturating_sub(1).max(1);
                state.successes = 0;
            }
            Some(p) if p >= 0.8 => state.successes = 0,
            _ => {
                state.successes += 1;
                if state.successes >= 4 && state.limit < state.max {
                    state.limit += 1;
                    state.successes = 0;
                }
            }
        }
    }
}

/// Graph's limit on requests per JSON batch.
pub const BATCH_LIMIT: usize = 20;

#[derive(Debug, Clone)]
struct BatchItem {
    key: usize,
    path: String,
    /// Retries spent on failures.
    attempt: u32,
    /// Retries spent on throttling.
    throttled: u32,
}

enum BatchOutcome {
    Page {
        key: usize,
        value: serde_json::Value,
        next: BatchItem,
    },
    Retry {
        item: BatchItem,
        retry_after: Option<Duration>,
        error: GraphError,
    },
    Failed {
        key: usize,
        error: GraphError,
    },
}

impl BatchOutcome {
    /// The request it answers.
    fn key(&self) -> usize {
        match self {
            Self::Page { key, .. } | Self::Failed { key, .. } => *key,
            Self::Retry { item, .. } => item.key,
        }
    }
}

/// A JSON `$batch` reply: one inner response per request, in any order.
#[derive(Debug, Deserialize)]
pub struct BatchResponse {
    responses: Vec<BatchInnerResponse>,
}

impl BatchResponse {
    /// The inner responses by request id; `None` when one id is answered twice, which makes
    /// the whole reply malformed (which answer is whose is unknowable).
    fn by_id(self) -> Option<HashMap<String, BatchInnerResponse>> {
        let mut by_id = HashMap::with_capacity(self.responses.len());
        for inner in self.responses {
            if by_id.insert(inner.id.clone(), inner).is_some() {
                return None;
            }
        }
        Some(by_id)
    }
}

/// Decodes a Graph collection page exactly as listings do (a fuzz target's entry point).
pub fn decode_page(url: &Url, bytes: &[u8]) -> Result<Page<serde_json::Value>, GraphError> {
    Ok(http::decode(url, bytes)?)
}

/// Decodes a `$batch` reply exactly as the `$batch` engine does, and indexes it by request id
/// (a fuzz target's entry point): the ids answered and their statuses, sorted by id.
pub fn decode_batch(url: &Url, bytes: &[u8]) -> Result<Vec<(String, u16)>, GraphError> {
    let response: BatchResponse = http::decode(url, bytes)?;
    let by_id = response.by_id().ok_or_else(|| GraphError::Malformed {
        url: url.to_string(),
        message: "the $batch response answers one request id twice".into(),
    })?;
    let mut answered: Vec<(String, u16)> =
        by_id.into_iter().map(|(id, r)| (id, r.status)).collect();
    answered.sort();
    Ok(answered)
}

#[derive(Debug, Deserialize)]
struct BatchInnerResponse {
    id: String,
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    body: serde_json::Value,
}

impl BatchInnerResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| match v {
                serde_json::Value::String(s) => Some(s.trim().to_owned()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }
}

fn header_f64(response: &reqwest::Response, name: &str) -> Option<f64> {
    http::header(response, name)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Additive increase; one halving per window however many 429s answer the load of that
    /// window; every 429 extends the shared pause.
    #[tokio::test]
    async fn the_pacer_halves_once_per_window_and_pauses_everyone() {
        let pacer = Pacer::new(MAX_BATCHES_IN_FLIGHT);
        assert_eq!(pacer.limit(), 4);
        for _ in 0..100 {
            pacer.observe(None);
        }
        assert_eq!(pacer.limit(), MAX_BATCHES_IN_FLIGHT, "grows to the cap");
        pacer.observe(Some(0.97));
        assert_eq!(
            pacer.limit(),
            MAX_BATCHES_IN_FLIGHT - 1,
            "near the limit: one less"
        );

        let window = pacer.wait().await;
        // Sixteen requests of the same window all come back throttled.
        for _ in 0..16 {
            pacer.throttled(Duration::from_millis(50), window);
        }
        assert_eq!(
            pacer.limit(),
            (MAX_BATCHES_IN_FLIGHT - 1) / 2,
            "halved once"
        );
        let start = tokio::time::Instant::now();
        let next = pacer.wait().await;
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "everyone paused"
        );
        assert!(next > window);
        // A request sent after the decrease is throttled too: that is new evidence.
        pacer.throttled(Duration::from_secs_f64(0.25), next);
        assert_eq!(pacer.limit(), (MAX_BATCHES_IN_FLIGHT - 1) / 4);
        let start = tokio::time::Instant::now();
        pacer.wait().await;
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "fractional Retry-After"
        );
        // Throttling that persists: the pause outgrows a tiny Retry-After, doubling.
        let start = tokio::time::Instant::now();
        pacer.throttled(Duration::from_millis(1), pacer.window());
        pacer.wait().await;
        assert!(
            start.elapsed() >= SUSTAINED_PAUSE * 2,
            "third decrease in a row: at least 200 ms, waited {:?}",
            start.elapsed()
        );
        for _ in 0..10 {
            pacer.throttled(Duration::ZERO, pacer.window());
        }
        assert_eq!(pacer.limit(), 1, "never below one");
        let until = pacer.lock().paused_until.expect("paused");
        assert!(until.duration_since(tokio::time::Instant::now()) <= SUSTAINED_PAUSE_MAX);
    }
}
