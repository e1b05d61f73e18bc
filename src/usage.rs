//! The usage plane (optional; off unless `MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID` is set): what
//! each identity actually did over the last `MI_ASSESS_USAGE_WINDOW_DAYS`, read from the Log
//! Analytics workspace where Entra ID and Azure send their logs, through the query API
//! (`POST {endpoint}/v1/workspaces/{id}/query`, token audience `https://api.loganalytics.io`
//! in the public cloud: [`crate::config::UsageSettings::scope`]).
//!
//! Every query aggregates in the workspace (`summarize`), never pulls raw rows: sign-ins per
//! identity and resource, Graph requests per identity, method and path, ARM operations per
//! caller. A result the API cuts at its limits (500,000 rows, about 100 MB: HTTP 200 with a
//! `PartialError`) is asked again in halves of the window, down to [`MIN_SLICE`]; what still
//! does not fit is recorded as truncated. A table the workspace lacks (`SemanticError`: failed
//! to resolve the table) makes that evidence not applicable, naming the diagnostic setting to
//! enable; no access is a gap that names the role. Neither makes a run partial.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use crate::auth::TokenSource;
use crate::http::{self, Attempt, Method, RetryPolicy};
use crate::permission_map::uri_template;
use crate::snapshot::usage::{
    ArmOperationRow, GraphRequestRow, SignInRow, USAGE_PERMISSION, UsageCost, UsageSnapshot,
};
use crate::snapshot::{CollectionGap, Dataset, DatasetName};

/// The largest answer read: the API returns at most about 100 MB of raw data.
const MAX_RESPONSE_BYTES: usize = 128 * 1024 * 1024;
/// How much later than the window's start a table's first row may be, for the table to count as
/// covering the window.
const COVERAGE_SLACK_DAYS: i64 = 2;

/// The earliest row of `evidence`'s table in the window (the first line names it, for logs and
/// for the simulator).
fn earliest_query(evidence: Evidence) -> String {
    format!(
        "// mi-assess: earliest\n{}\n| summarize first = min(TimeGenerated)",
        evidence.table()
    )
}

/// The shortest window slice a cut result is split into before it counts as truncated.
pub const MIN_SLICE: Duration = Duration::from_secs(3600);
/// How long the workspace may run one query (the API's maximum, `Prefer: wait=600`).
const QUERY_WAIT_SECONDS: u32 = 600;

/// Successful sign-ins per identity and resource. The first line names the query, for logs and
/// for the simulator.
pub const SIGN_INS_QUERY: &str = "// mi-assess: sign-ins
AADManagedIdentitySignInLogs
| where ResultType == \"0\"
| summarize signIns = count(), lastSeen = max(TimeGenerated) by ServicePrincipalId, ResourceDisplayName";

/// Graph requests per identity, method and path (query string dropped, GUIDs made `{id}`;
/// the rest of the templating happens here, [`uri_template`]).
pub const GRAPH_QUERY: &str = "// mi-assess: graph-requests
MicrosoftGraphActivityLogs
| where isnotempty(ServicePrincipalId) and ResponseStatusCode < 400
| extend path = tolower(tostring(split(RequestUri, \"?\")[0]))
| extend path = replace_regex(path, @\"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\", \"{id}\")
| summarize requests = count(), firstSeen = min(TimeGenerated), lastSeen = max(TimeGenerated) by ServicePrincipalId, RequestMethod, path";

/// ARM writes and actions per caller: the caller's object id from the token's claims, else
/// `Caller`. The activity log records no reads.
pub const ARM_QUERY: &str = "// mi-assess: arm-operations
AzureActivity
| where CategoryValue == \"Administrative\" and ActivityStatusValue in~ (\"Success\", \"Succeeded\")
| extend caller = tostring(Claims_d[\"http://schemas.microsoft.com/identity/claims/objectidentifier\"])
| extend caller = iff(isempty(caller), Caller, caller)
| summarize operations = count(), lastSeen = max(TimeGenerated) by caller, OperationNameValue";

/// Which evidence a query reads, and what feeds its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// `AADManagedIdentitySignInLogs`.
    SignIns,
    /// `MicrosoftGraphActivityLogs`.
    GraphRequests,
    /// `AzureActivity`.
    ArmOperations,
}

impl Evidence {
    /// The table.
    pub fn table(self) -> &'static str {
        match self {
            Self::SignIns => "AADManagedIdentitySignInLogs",
            Self::GraphRequests => "MicrosoftGraphActivityLogs",
            Self::ArmOperations => "AzureActivity",
        }
    }

    /// The diagnostic setting that sends the table to a workspace.
    pub fn setting(self) -> &'static str {
        match self {
            Self::SignIns => {
                "the Microsoft Entra diagnostic setting category ManagedIdentitySignInLogs"
            }
            Self::GraphRequests => {
                "the Microsoft Entra diagnostic setting category MicrosoftGraphActivityLogs"
            }
            Self::ArmOperations => {
                "the subscriptions' (or management groups') activity log diagnostic setting"
            }
        }
    }

    /// Its data set name, for gaps.
    pub fn dataset(self) -> DatasetName {
        match self {
            Self::SignIns => DatasetName::UsageSignIns,
            Self::GraphRequests => DatasetName::UsageGraphActivity,
            Self::ArmOperations => DatasetName::UsageArmActivity,
        }
    }

    fn query(self) -> &'static str {
        match self {
            Self::SignIns => SIGN_INS_QUERY,
            Self::GraphRequests => GRAPH_QUERY,
            Self::ArmOperations => ARM_QUERY,
        }
    }
}

/// Why a query gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The workspace has no such table: its diagnostic setting is missing.
    #[error("the workspace has no {table} table ({message})")]
    MissingTable {
        /// The table.
        table: &'static str,
        /// The service's message.
        message: String,
    },
    /// The identity may not query the workspace.
    #[error("the query API answered {status} {code}: {message}")]
    Denied {
        /// 401 or 403.
        status: u16,
        /// The service's error code.
        code: String,
        /// The service's message.
        message: String,
    },
    /// The table holds data only from later than the window's start (its diagnostic setting is
    /// newer, or its retention shorter): absence there is no evidence.
    #[error("{0}")]
    Incomplete(String),
    /// Anything else (transport, a malformed or empty answer, a server error after retries).
    #[error("{0}")]
    Failed(String),
}

/// A query's answer: its primary table's columns and rows, and whether the API cut it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryAnswer {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// The `PartialError` the API added when it cut the result, if it did.
    pub partial: Option<String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    tables: Vec<Table>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct Column {
    name: String,
}

/// A client of one workspace's query API.
#[derive(Clone)]
pub struct LogAnalyticsClient {
    http: reqwest::Client,
    query_url: Url,
    workspace_id: String,
    tokens: TokenSource,
    retry: RetryPolicy,
    retries: Arc<AtomicU64>,
}

impl std::fmt::Debug for LogAnalyticsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogAnalyticsClient")
            .field("query_url", &self.query_url.as_str())
            .finish_non_exhaustive()
    }
}

impl LogAnalyticsClient {
    /// A client of `workspace_id` at `endpoint`, with tokens from `tokens` (for the query
    /// API's audience).
    pub fn new(
        endpoint: &Url,
        workspace_id: &str,
        tokens: TokenSource,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let base = endpoint.as_str().trim_end_matches('/');
        let query_url = Url::parse(&format!("{base}/v1/workspaces/{workspace_id}/query"))?;
        // The workspace may run a query for QUERY_WAIT_SECONDS: the client waits a little longer
        // than that, so a slow query is not dropped and run again.
        let http = http::client_with(
            Duration::from_secs(20),
            Duration::from_secs(u64::from(QUERY_WAIT_SECONDS) + 30),
        )?;
        Ok(Self {
            http,
            query_url,
            workspace_id: workspace_id.to_owned(),
            tokens,
            retry,
            retries: Arc::default(),
        })
    }

    /// The workspace.
    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    /// Runs `query` over `[start, end)` once (with retries for throttling and transient
    /// failures).
    pub async fn query(
        &self,
        query: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
        table: &'static str,
    ) -> Result<QueryAnswer, QueryError> {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let body = serde_json::json!({
            "query": query,
            "timespan": format!("{}/{}", rfc3339(start), rfc3339(end)),
        });
        let token: SecretString = self
            .tokens
            .bearer()
            .await
            .map_err(|e| QueryError::Failed(e.to_string()))?;
        let url = &self.query_url;
        let bytes = http::with_retries(&self.retry, &self.retries, "Log Analytics", url, || {
            let request = http::request(&self.http, Method::POST, url, &token, Some(&body))
                .header("Prefer", format!("wait={QUERY_WAIT_SECONDS}"));
            async move {
                match http::attempt(url, request, MAX_RESPONSE_BYTES, |_| {}).await {
                    Ok(bytes) => Attempt::Done(Ok(bytes)),
                    Err(e) => {
                        let (retry, throttled, retry_after) =
                            (e.is_retryable(), e.is_throttled(), e.retry_after());
                        let error = query_error(e, table);
                        if retry {
                            Attempt::Retry {
                                error,
                                throttled,
                                retry_after,
                            }
                        } else {
                            Attempt::Done(Err(error))
                        }
                    }
                }
            }
        })
        .await?;
        parse_answer(&bytes)
    }
}

/// The answer of a 2xx: its primary table, and the `PartialError` when the API cut it. An
/// empty body (what the API sends when the request lacked its JSON body) is an error.
pub fn parse_answer(bytes: &[u8]) -> Result<QueryAnswer, QueryError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(QueryError::Failed(
            "the query API answered with an empty body".into(),
        ));
    }
    let answer: Answer = serde_json::from_slice(bytes)
        .map_err(|e| QueryError::Failed(format!("the query API's answer is not JSON: {e}")))?;
    let Some(table) = answer.tables.into_iter().next() else {
        return Err(QueryError::Failed(
            "the query API's answer has no table".into(),
        ));
    };
    let columns: Vec<String> = table.columns.into_iter().map(|c| c.name).collect();
    if let Some(row) = table.rows.iter().find(|r| r.len() != columns.len()) {
        return Err(QueryError::Failed(format!(
            "a row has {} cells for {} columns",
            row.len(),
            columns.len()
        )));
    }
    Ok(QueryAnswer {
        columns,
        rows: table.rows,
        partial: answer.error.map(|e| {
            let message = e.to_string();
            message.chars().take(500).collect()
        }),
    })
}

/// A failed request as a [`QueryError`].
fn query_error(error: http::Error, table: &'static str) -> QueryError {
    match error {
        http::Error::Status { status, body, .. } => classify(status.as_u16(), &body, table),
        http::Error::Transport { url, message } => QueryError::Failed(format!("{url}: {message}")),
        http::Error::Malformed { url, message } => QueryError::Failed(format!("{url}: {message}")),
        http::Error::TooLarge { url, limit } => {
            QueryError::Failed(format!("{url}: the answer is larger than {limit} bytes"))
        }
        http::Error::ForeignLink { link, .. } => QueryError::Failed(format!("a link to {link}")),
    }
}

/// An error status as a [`QueryError`]: a table the workspace lacks, no access, or a failure.
pub fn classify(status: u16, body: &[u8], table: &'static str) -> QueryError {
    let text = String::from_utf8_lossy(body);
    let (code, message) = http::ServiceError::from_body(body).into_parts(status);
    let missing = status == 400
        && (text.contains("SemanticError") || text.contains("SEM0100"))
        && text.contains("Failed to resolve table")
        && text.contains(table);
    if missing {
        return QueryError::MissingTable { table, message };
    }
    match status {
        401 | 403 => QueryError::Denied {
            status,
            code,
            message,
        },
        _ => QueryError::Failed(format!("the query API answered {status} {code}: {message}")),
    }
}

/// The usage plane as configured: off, or a workspace to read over a window.
#[derive(Debug, Clone)]
pub struct UsagePlane {
    client: Option<LogAnalyticsClient>,
    window_days: u32,
}

impl UsagePlane {
    /// No workspace: the snapshot records no usage, and the usage rules stay silent.
    pub fn off() -> Self {
        Self {
            client: None,
            window_days: 0,
        }
    }

    /// Reads `client`'s workspace over the last `window_days` days.
    pub fn new(client: LogAnalyticsClient, window_days: u32) -> Self {
        Self {
            client: Some(client),
            window_days,
        }
    }

    /// Whether a workspace is configured.
    pub fn is_on(&self) -> bool {
        self.client.is_some()
    }
}

/// What the workspace says about the tenant's identities over the window ending `now`, or
/// `None` when the plane is off. Gaps are never ones that make a run partial.
pub async fn collect_usage(
    plane: &UsagePlane,
    now: OffsetDateTime,
    gaps: &mut Vec<CollectionGap>,
) -> Option<UsageSnapshot> {
    let client = plane.client.as_ref()?;
    let started = std::time::Instant::now();
    let start = now - time::Duration::days(i64::from(plane.window_days));
    let mut truncated = Vec::new();
    let (sign_ins, graph, arm) = futures::join!(
        read(client, Evidence::SignIns, start, now),
        read(client, Evidence::GraphRequests, start, now),
        read(client, Evidence::ArmOperations, start, now),
    );
    let mut cost = UsageCost {
        milliseconds: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        ..UsageCost::default()
    };
    for (queries, rows) in [&sign_ins, &graph, &arm]
        .into_iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(answer, _, queries)| (*queries, answer.rows.len() as u64))
    {
        cost.queries += queries;
        cost.rows += rows;
    }
    let sign_ins = dataset(
        Evidence::SignIns,
        sign_ins,
        gaps,
        &mut truncated,
        sign_in_rows,
    );
    let graph_requests = dataset(
        Evidence::GraphRequests,
        graph,
        gaps,
        &mut truncated,
        graph_rows,
    );
    let arm_operations = dataset(Evidence::ArmOperations, arm, gaps, &mut truncated, arm_rows);
    tracing::info!(
        workspace = client.workspace_id(),
        days = plane.window_days,
        sign_ins = sign_ins.known().map(Vec::len),
        graph_requests = graph_requests.known().map(Vec::len),
        arm_operations = arm_operations.known().map(Vec::len),
        "read the usage plane"
    );
    Some(UsageSnapshot {
        workspace_id: client.workspace_id().to_owned(),
        window_days: plane.window_days,
        window_start: start,
        window_end: now,
        sign_ins,
        graph_requests,
        arm_operations,
        truncated,
        cost,
    })
}

/// The rows of one evidence over `[start, end)`: asked whole, then in halves while the API
/// cuts the answer, down to [`MIN_SLICE`]. Returns the rows and, when a slice was still cut,
/// the slice.
async fn read(
    client: &LogAnalyticsClient,
    evidence: Evidence,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> Result<(QueryAnswer, Vec<String>, u64), QueryError> {
    // First, whether the table covers the window: a table whose first row is later than its
    // start (a diagnostic setting turned on last week, a shorter retention) cannot tell that
    // an identity did nothing.
    let earliest = client
        .query(&earliest_query(evidence), start, end, evidence.table())
        .await?;
    let first = earliest
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(|value| moment(value).ok());
    let covered_from = start + time::Duration::days(COVERAGE_SLACK_DAYS);
    match first {
        Some(first) if first <= covered_from => {}
        Some(first) => {
            return Err(QueryError::Incomplete(format!(
                "{} holds data only since {first} and the window starts {start}: absence there is no evidence (enable {} long enough before, or shorten MI_ASSESS_USAGE_WINDOW_DAYS)",
                evidence.table(),
                evidence.setting()
            )));
        }
        None => {
            return Err(QueryError::Incomplete(format!(
                "{} holds no data in the window: absence there is no evidence (check {})",
                evidence.table(),
                evidence.setting()
            )));
        }
    }
    let mut slices = vec![(start, end)];
    let mut queries = 1;
    let mut whole = QueryAnswer::default();
    let mut cut = Vec::new();
    while let Some((from, to)) = slices.pop() {
        let answer = client
            .query(evidence.query(), from, to, evidence.table())
            .await?;
        queries += 1;
        let length = to - from;
        if answer.partial.is_some()
            && length > time::Duration::try_from(MIN_SLICE).unwrap_or_default() * 2
        {
            let middle = from + length / 2;
            slices.push((middle, to));
            slices.push((from, middle));
            continue;
        }
        if let Some(partial) = &answer.partial {
            cut.push(format!(
                "{} from {from} to {to}: {partial}",
                evidence.table()
            ));
        }
        if whole.columns.is_empty() {
            whole.columns = answer.columns.clone();
        }
        if whole.columns != answer.columns {
            return Err(QueryError::Failed(format!(
                "{}: the answers of two slices of the window have different columns",
                evidence.table()
            )));
        }
        whole.rows.extend(answer.rows);
    }
    Ok((whole, cut, queries))
}

/// One evidence as a data set: the rows merged by key (the same key may come from several
/// slices), not applicable when the table is missing, unknown (with a gap) otherwise.
fn dataset<T>(
    evidence: Evidence,
    read: Result<(QueryAnswer, Vec<String>, u64), QueryError>,
    gaps: &mut Vec<CollectionGap>,
    truncated: &mut Vec<String>,
    rows: fn(&QueryAnswer) -> Result<Vec<T>, String>,
) -> Dataset<Vec<T>> {
    let gap = |reason: String, status: Option<u16>, permission: Option<&str>, not_applicable| {
        CollectionGap {
            dataset: evidence.dataset(),
            principals: 0,
            status,
            reason,
            needs_permission: permission.map(str::to_owned),
            affects_status: false,
            not_applicable,
        }
    };
    match read {
        Ok((answer, cut, _)) => match rows(&answer) {
            Ok(items) => {
                truncated.extend(cut);
                Dataset::Collected { items }
            }
            Err(problem) => {
                let reason = format!("{}: {problem}", evidence.table());
                gaps.push(gap(reason.clone(), None, None, false));
                Dataset::Unknown { reason }
            }
        },
        Err(QueryError::MissingTable { table, .. }) => {
            let reason = format!(
                "the workspace has no {table} table: enable {} to send it there",
                evidence.setting()
            );
            gaps.push(gap(reason.clone(), Some(400), None, true));
            Dataset::NotApplicable { reason }
        }
        Err(QueryError::Incomplete(reason)) => {
            gaps.push(gap(reason.clone(), None, None, false));
            Dataset::Unknown { reason }
        }
        Err(e @ QueryError::Denied { status, .. }) => {
            let reason = format!("{}: {e}", evidence.table());
            gaps.push(gap(
                reason.clone(),
                Some(status),
                Some(USAGE_PERMISSION),
                false,
            ));
            Dataset::Unknown { reason }
        }
        Err(e) => {
            let reason = format!("{}: {e}", evidence.table());
            gaps.push(gap(reason.clone(), None, None, false));
            Dataset::Unknown { reason }
        }
    }
}

/// A column's index, by name.
fn column(answer: &QueryAnswer, name: &str) -> Result<usize, String> {
    answer
        .columns
        .iter()
        .position(|c| c == name)
        .ok_or_else(|| format!("the answer has no {name} column"))
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn count(value: &serde_json::Value) -> u64 {
    match value {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn moment(value: &serde_json::Value) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(&text(value), &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{value} is not a time: {e}"))
}

fn sign_in_rows(answer: &QueryAnswer) -> Result<Vec<SignInRow>, String> {
    let (id, resource, n, last) = (
        column(answer, "ServicePrincipalId")?,
        column(answer, "ResourceDisplayName")?,
        column(answer, "signIns")?,
        column(answer, "lastSeen")?,
    );
    let mut merged: HashMap<(String, String), SignInRow> = HashMap::new();
    for row in &answer.rows {
        let key = (text(&row[id]).to_ascii_lowercase(), text(&row[resource]));
        let (count, last_seen) = (count(&row[n]), moment(&row[last])?);
        let entry = merged.entry(key.clone()).or_insert(SignInRow {
            service_principal_id: key.0.clone(),
            resource: key.1.clone(),
            count: 0,
            last_seen,
        });
        entry.count += count;
        entry.last_seen = entry.last_seen.max(last_seen);
    }
    let mut rows: Vec<SignInRow> = merged.into_values().collect();
    rows.sort_by(|a, b| {
        (&a.service_principal_id, &a.resource).cmp(&(&b.service_principal_id, &b.resource))
    });
    Ok(rows)
}

fn graph_rows(answer: &QueryAnswer) -> Result<Vec<GraphRequestRow>, String> {
    let (id, method, path, n, first, last) = (
        column(answer, "ServicePrincipalId")?,
        column(answer, "RequestMethod")?,
        column(answer, "path")?,
        column(answer, "requests")?,
        column(answer, "firstSeen")?,
        column(answer, "lastSeen")?,
    );
    let mut merged: HashMap<(String, String, String), GraphRequestRow> = HashMap::new();
    for row in &answer.rows {
        let key = (
            text(&row[id]).to_ascii_lowercase(),
            text(&row[method]).to_ascii_uppercase(),
            uri_template(&text(&row[path])),
        );
        let (count, first_seen, last_seen) =
            (count(&row[n]), moment(&row[first])?, moment(&row[last])?);
        let entry = merged.entry(key.clone()).or_insert(GraphRequestRow {
            service_principal_id: key.0.clone(),
            method: key.1.clone(),
            path: key.2.clone(),
            count: 0,
            first_seen,
            last_seen,
        });
        entry.count += count;
        entry.first_seen = entry.first_seen.min(first_seen);
        entry.last_seen = entry.last_seen.max(last_seen);
    }
    let mut rows: Vec<GraphRequestRow> = merged.into_values().collect();
    rows.sort_by(|a, b| {
        (&a.service_principal_id, &a.path, &a.method).cmp(&(
            &b.service_principal_id,
            &b.path,
            &b.method,
        ))
    });
    Ok(rows)
}

fn arm_rows(answer: &QueryAnswer) -> Result<Vec<ArmOperationRow>, String> {
    let (caller, operation, n, last) = (
        column(answer, "caller")?,
        column(answer, "OperationNameValue")?,
        column(answer, "operations")?,
        column(answer, "lastSeen")?,
    );
    let mut merged: HashMap<(String, String), ArmOperationRow> = HashMap::new();
    for row in &answer.rows {
        let key = (
            text(&row[caller]).to_ascii_lowercase(),
            text(&row[operation]),
        );
        let (count, last_seen) = (count(&row[n]), moment(&row[last])?);
        let entry = merged.entry(key.clone()).or_insert(ArmOperationRow {
            caller: key.0.clone(),
            operation: key.1.clone(),
            count: 0,
            last_seen,
        });
        entry.count += count;
        entry.last_seen = entry.last_seen.max(last_seen);
    }
    let mut rows: Vec<ArmOperationRow> = merged.into_values().collect();
    rows.sort_by(|a, b| (&a.caller, &a.operation).cmp(&(&b.caller, &b.operation)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_no_access_and_a_cut_answer_are_told_apart() {
        let missing = br#"{"error":{"message":"The request had some invalid properties","code":"BadArgumentError","innererror":{"code":"SemanticError","message":"A semantic error occurred.","innererror":{"code":"SEM0100","message":"'where' operator: Failed to resolve table or column expression named 'MicrosoftGraphActivityLogs'"}}}}"#;
        assert!(matches!(
            classify(400, missing, "MicrosoftGraphActivityLogs"),
            QueryError::MissingTable { .. }
        ));
        let denied = br#"{"error":{"message":"The provided credentials have insufficient access to perform the requested operation","code":"InsufficientAccessError"}}"#;
        match classify(403, denied, "AzureActivity") {
            QueryError::Denied { status, code, .. } => {
                assert_eq!((status, code.as_str()), (403, "InsufficientAccessError"))
            }
            other => panic!("{other:?}"),
        }
        let cut = br#"{"tables":[{"name":"PrimaryResult","columns":[{"name":"a","type":"long"}],"rows":[[1]]}],"error":{"code":"PartialError","message":"There were some errors when processing your query.","details":[{"code":"EngineError","innererror":{"code":"-2133196797","message":"Query result set has exceeded the internal data size limit 64000000 (E_QUERY_RESULT_SET_TOO_LARGE)"}}]}}"#;
        let answer = parse_answer(cut).unwrap();
        assert_eq!(answer.rows.len(), 1);
        assert!(
            answer
                .partial
                .unwrap()
                .contains("E_QUERY_RESULT_SET_TOO_LARGE")
        );
        assert!(parse_answer(b"").is_err(), "an empty 200 is an error");
        assert!(parse_answer(br#"{"tables":[{"name":"PrimaryResult","columns":[{"name":"a","type":"long"}],"rows":[[1,2]]}]}"#).is_err());
    }

    #[test]
    fn rows_from_several_slices_merge_by_key() {
        let answer = QueryAnswer {
            columns: [
                "ServicePrincipalId",
                "RequestMethod",
                "path",
                "requests",
                "firstSeen",
                "lastSeen",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: vec![
                serde_json::json!([
                    "ABC",
                    "get",
                    "https://graph.microsoft.com/v1.0/users/x@contoso.com/messages",
                    3,
                    "2026-11-01T00:00:00Z",
                    "2026-11-02T00:00:00Z"
                ]),
                serde_json::json!([
                    "abc",
                    "GET",
                    "/v1.0/users/{id}/messages",
                    "2",
                    "2026-10-30T00:00:00Z",
                    "2026-11-05T00:00:00Z"
                ]),
            ]
            .into_iter()
            .map(|r| r.as_array().unwrap().clone())
            .collect(),
            partial: None,
        };
        let rows = graph_rows(&answer).unwrap();
        assert_eq!(rows.len(), 1, "{rows:#?}");
        assert_eq!(rows[0].count, 5);
        assert_eq!(rows[0].path, "/users/{id}/messages");
        assert_eq!(rows[0].first_seen.day(), 30);
        assert_eq!(rows[0].last_seen.day(), 5);
    }
}
