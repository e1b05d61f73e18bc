//! The simulator's Log Analytics query API (`POST /v1/workspaces/{id}/query`), faithful to what
//! the API documents: the `{"query", "timespan"}` body, `tables[{name, columns, rows}]`
//! answers with datetimes as RFC 3339 strings, 400 `BadArgumentError` / `SemanticError` /
//! `SEM0100` for a table the workspace lacks, 403 `InsufficientAccessError` without access, and
//! HTTP 200 with a `PartialError` when a result passes the row limit.
//!
//! It answers mi-assess's three queries (told apart by their first line, see
//! `crate::usage`) by aggregating its events the way their `summarize` does, over the request's
//! window: the events are stored as days before now, so the demo's evidence stays current.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::SimState;
use super::token::{audience_and_expiry, is_unexpired};

/// A simulated workspace and the events in its tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimWorkspace {
    /// The workspace id (a GUID).
    pub workspace_id: String,
    /// The tables the workspace has; a query of another answers 400 (no diagnostic setting).
    pub tables: Vec<String>,
    /// The scanner may not query it: 403 `InsufficientAccessError`.
    #[serde(default)]
    pub denied: bool,
    /// The most rows one answer holds; past it the answer is cut, with a `PartialError`.
    #[serde(default)]
    pub row_limit: Option<usize>,
    /// Managed identities' sign-ins.
    #[serde(default)]
    pub sign_ins: Vec<SimSignIn>,
    /// Graph requests.
    #[serde(default)]
    pub graph_requests: Vec<SimGraphRequest>,
    /// ARM operations.
    #[serde(default)]
    pub arm_operations: Vec<SimArmOperation>,
}

/// Sign-ins of a service principal to a resource, `days_ago` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimSignIn {
    /// Object id.
    pub service_principal_id: String,
    /// Resource display name.
    pub resource: String,
    /// When, in days before now (one sign-in each).
    pub days_ago: Vec<f64>,
}

/// Graph requests of a service principal to one URI, `days_ago` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimGraphRequest {
    /// Object id.
    pub service_principal_id: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// The full request URI, as the activity log records it.
    pub uri: String,
    /// When, in days before now.
    pub days_ago: Vec<f64>,
}

/// ARM operations of a caller, `days_ago` each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimArmOperation {
    /// The caller's object id.
    pub caller: String,
    /// `OperationNameValue`.
    pub operation: String,
    /// When, in days before now.
    pub days_ago: Vec<f64>,
}

/// Where the simulator serves the query API, below its base URL; also its token audience.
pub const AUDIENCE_PATH: &str = "/loganalytics";

#[derive(Deserialize)]
pub(super) struct QueryBody {
    query: String,
    #[serde(default)]
    timespan: Option<String>,
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `start/end` (RFC 3339) or an ISO 8601 duration in days (`P30D`) ending now.
fn window(timespan: Option<&str>, now: OffsetDateTime) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let parse =
        |t: &str| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok();
    match timespan {
        None => Some((OffsetDateTime::UNIX_EPOCH, now)),
        Some(span) => match span.split_once('/') {
            Some((start, end)) => Some((parse(start)?, parse(end)?)),
            None => {
                let days: i64 = span.strip_prefix('P')?.strip_suffix('D')?.parse().ok()?;
                Some((now - time::Duration::days(days), now))
            }
        },
    }
}

/// The KQL's coarse path: query dropped, lower-cased, GUIDs as `{id}`.
fn kql_path(uri: &str) -> String {
    let path = uri
        .split('?')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    path.split('/')
        .map(|segment| {
            if uuid::Uuid::parse_str(segment).is_ok() {
                "{id}".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `POST /v1/workspaces/{id}/query`.
pub(super) async fn query(
    State(state): State<Arc<SimState>>,
    Path(workspace_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<QueryBody>,
) -> Response {
    // The query API has its own audience (the simulator's `/loganalytics`): a Graph or ARM
    // token is refused, as the real API refuses a token for another resource.
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"code": "AuthenticationFailed", "message": "Authentication failed. The 'Authorization' header is missing."}}),
        );
    };
    match audience_and_expiry(token) {
        Some((aud, exp))
            if aud.trim_end_matches('/')
                == format!("{}{AUDIENCE_PATH}", state.graph_resource())
                && is_unexpired(exp) => {}
        Some((aud, _))
            if aud.trim_end_matches('/')
                != format!("{}{AUDIENCE_PATH}", state.graph_resource()) =>
        {
            return error(
                StatusCode::FORBIDDEN,
                json!({"error": {"code": "InvalidAuthenticationTokenAudience", "message": "The access token has been obtained for wrong audience or resource."}}),
            );
        }
        _ => {
            return error(
                StatusCode::FORBIDDEN,
                json!({"error": {"code": "InvalidAuthenticationToken", "message": "The access token is invalid."}}),
            );
        }
    }
    let data = state.tenant();
    let Some(workspace) = data
        .tenant()
        .log_analytics
        .as_ref()
        .filter(|w| w.workspace_id.eq_ignore_ascii_case(&workspace_id))
    else {
        return error(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "WorkspaceNotFoundError", "message": format!("The workspace could not be found: {workspace_id}")}}),
        );
    };
    if workspace.denied {
        return error(
            StatusCode::FORBIDDEN,
            json!({"error": {"message": "The provided credentials have insufficient access to perform the requested operation", "code": "InsufficientAccessError"}}),
        );
    }
    let kind = body
        .query
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let table = body
        .query
        .lines()
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !workspace.tables.iter().any(|t| t == &table) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
                "innererror": {"code": "SemanticError", "message": "A semantic error occurred.",
                    "innererror": {"code": "SEM0100", "message": format!("'where' operator: Failed to resolve table or column expression named '{table}'")}}}}),
        );
    }
    let now = OffsetDateTime::now_utc();
    let Some((start, end)) = window(body.timespan.as_deref(), now) else {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
                "innererror": {"code": "InvalidTimespan", "message": "The timespan is not valid"}}}),
        );
    };
    // Each entry's events sit 97 minutes (times its position, within a day) further back, so
    // entries given the same day do not share one instant, as real logs do not.
    let at = |days: f64, entry: usize| {
        let spread = (entry as f64 * 97.0 * 60.0) % 86_400.0;
        now - time::Duration::seconds_f64(days * 86_400.0 + spread)
    };
    let within = |t: OffsetDateTime| t >= start && t < end;
    let (columns, mut rows): (Vec<(&str, &str)>, Vec<Vec<Value>>) = match kind.as_str() {
        "// mi-assess: earliest" => {
            let days: Vec<&[f64]> = match table.as_str() {
                "AADManagedIdentitySignInLogs" => workspace
                    .sign_ins
                    .iter()
                    .map(|s| s.days_ago.as_slice())
                    .collect(),
                "MicrosoftGraphActivityLogs" => workspace
                    .graph_requests
                    .iter()
                    .map(|r| r.days_ago.as_slice())
                    .collect(),
                _ => workspace
                    .arm_operations
                    .iter()
                    .map(|o| o.days_ago.as_slice())
                    .collect(),
            };
            let times = days
                .iter()
                .enumerate()
                .flat_map(|(entry, days)| days.iter().map(move |d| at(*d, entry)));
            let first = times.into_iter().filter(|t| within(*t)).min();
            (
                vec![("first", "datetime")],
                vec![vec![first.map_or(Value::Null, |t| json!(rfc3339(t)))]],
            )
        }
        "// mi-assess: sign-ins" => {
            let mut groups: BTreeMap<(String, String), (u64, OffsetDateTime)> = BTreeMap::new();
            for (entry, s) in workspace.sign_ins.iter().enumerate() {
                for t in s
                    .days_ago
                    .iter()
                    .map(|d| at(*d, entry))
                    .filter(|t| within(*t))
                {
                    let entry = groups
                        .entry((s.service_principal_id.clone(), s.resource.clone()))
                        .or_insert((0, t));
                    entry.0 += 1;
                    entry.1 = entry.1.max(t);
                }
            }
            (
                vec![
                    ("ServicePrincipalId", "string"),
                    ("ResourceDisplayName", "string"),
                    ("signIns", "long"),
                    ("lastSeen", "datetime"),
                ],
                groups
                    .into_iter()
                    .map(|((id, resource), (n, last))| {
                        vec![json!(id), json!(resource), json!(n), json!(rfc3339(last))]
                    })
                    .collect(),
            )
        }
        "// mi-assess: graph-requests" => {
            let mut groups: BTreeMap<
                (String, String, String),
                (u64, OffsetDateTime, OffsetDateTime),
            > = BTreeMap::new();
            for (entry, r) in workspace.graph_requests.iter().enumerate() {
                for t in r
                    .days_ago
                    .iter()
                    .map(|d| at(*d, entry))
                    .filter(|t| within(*t))
                {
                    let entry = groups
                        .entry((
                            r.service_principal_id.clone(),
                            r.method.clone(),
                            kql_path(&r.uri),
                        ))
                        .or_insert((0, t, t));
                    entry.0 += 1;
                    entry.1 = entry.1.min(t);
                    entry.2 = entry.2.max(t);
                }
            }
            (
                vec![
                    ("ServicePrincipalId", "string"),
                    ("RequestMethod", "string"),
                    ("path", "string"),
                    ("requests", "long"),
                    ("firstSeen", "datetime"),
                    ("lastSeen", "datetime"),
                ],
                groups
                    .into_iter()
                    .map(|((id, method, path), (n, first, last))| {
                        vec![
                            json!(id),
                            json!(method),
                            json!(path),
                            json!(n),
                            json!(rfc3339(first)),
                            json!(rfc3339(last)),
                        ]
                    })
                    .collect(),
            )
        }
        "// mi-assess: arm-operations" => {
            let mut groups: BTreeMap<(String, String), (u64, OffsetDateTime)> = BTreeMap::new();
            for (entry, o) in workspace.arm_operations.iter().enumerate() {
                for t in o
                    .days_ago
                    .iter()
                    .map(|d| at(*d, entry))
                    .filter(|t| within(*t))
                {
                    let entry = groups
                        .entry((o.caller.clone(), o.operation.clone()))
                        .or_insert((0, t));
                    entry.0 += 1;
                    entry.1 = entry.1.max(t);
                }
            }
            (
                vec![
                    ("caller", "string"),
                    ("OperationNameValue", "string"),
                    ("operations", "long"),
                    ("lastSeen", "datetime"),
                ],
                groups
                    .into_iter()
                    .map(|((caller, op), (n, last))| {
                        vec![json!(caller), json!(op), json!(n), json!(rfc3339(last))]
                    })
                    .collect(),
            )
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
                    "innererror": {"code": "SyntaxError", "message": "Syntax Error"}}}),
            );
        }
    };
    let mut answer = json!({});
    if let Some(limit) = workspace.row_limit
        && rows.len() > limit
    {
        rows.truncate(limit);
        answer["error"] = json!({"code": "PartialError", "message": "There were some errors when processing your query.",
            "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the server.",
                "innererror": {"code": "-2133196797", "message": format!("Query result set has exceeded the internal record count limit {limit} (E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)"), "severity": 2, "severityName": "Error"}}]});
    }
    answer["tables"] = json!([{
        "name": "PrimaryResult",
        "columns": columns.iter().map(|(name, kind)| json!({"name": name, "type": kind})).collect::<Vec<_>>(),
        "rows": rows,
    }]);
    (StatusCode::OK, Json(answer)).into_response()
}
