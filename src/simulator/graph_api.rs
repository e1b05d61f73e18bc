//! Request handlers of the Graph simulator: the Graph v1.0 paths mi-assess reads and the
//! managed-identity token endpoint. Behaviour follows `../shared/reference/microsoft-graph.md`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::token::{audience_and_expiry, is_unexpired, mint};
use super::{SimState, TokenRequest};

/// servicePrincipal properties in the v1.0 schema (CSDL), for `$select` validation.
const SERVICE_PRINCIPAL_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "accountEnabled",
    "addIns",
    "alternativeNames",
    "appDescription",
    "appDisplayName",
    "appId",
    "applicationTemplateId",
    "appOwnerOrganizationId",
    "appRoleAssignmentRequired",
    "appRoles",
    "customSecurityAttributes",
    "description",
    "disabledByMicrosoftStatus",
    "displayName",
    "homepage",
    "info",
    "isDisabled",
    "keyCredentials",
    "loginUrl",
    "logoutUrl",
    "notes",
    "notificationEmailAddresses",
    "oauth2PermissionScopes",
    "passwordCredentials",
    "preferredSingleSignOnMode",
    "preferredTokenSigningKeyThumbprint",
    "replyUrls",
    "resourceSpecificApplicationPermissions",
    "samlSingleSignOnSettings",
    "servicePrincipalNames",
    "servicePrincipalType",
    "signInAudience",
    "tags",
    "tokenEncryptionKeyId",
    "verifiedPublisher",
];

/// Graph's default and maximum page sizes for directory objects.
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 999;

/// A Graph-shaped error response.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                "request-id": uuid::Uuid::new_v4().to_string(),
                "client-request-id": uuid::Uuid::new_v4().to_string(),
            }
        }
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A Graph error not yet rendered: small enough to return in a `Result`.
#[derive(Debug)]
struct GraphFault {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl GraphFault {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for GraphFault {
    fn into_response(self) -> Response {
        graph_error(self.status, self.code, &self.message)
    }
}

fn graph_json(state: &SimState, body: Value, resource_units: u64) -> Response {
    state
        .resource_units
        .fetch_add(resource_units, Ordering::Relaxed);
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
    );
    headers.insert("x-ms-resource-unit", HeaderValue::from(resource_units));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("request-id", id);
    }
    response
}

/// Injected failure, shaped like Graph's.
fn injected_failure(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code = if status == StatusCode::TOO_MANY_REQUESTS {
        "TooManyRequests"
    } else {
        "serviceUnavailable"
    };
    let mut response = graph_error(status, code, "Injected failure from the Graph simulator.");
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("0.05"));
    response
}

/// Checks the bearer token: present, minted for this Graph endpoint, unexpired.
fn authorise(state: &SimState, headers: &HeaderMap) -> Result<(), GraphFault> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            GraphFault::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )
        })?;
    match audience_and_expiry(token) {
        Some((aud, exp))
            if aud.trim_end_matches('/') == state.graph_resource() && is_unexpired(exp) =>
        {
            Ok(())
        }
        Some((_, exp)) if !is_unexpired(exp) => Err(GraphFault::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )),
        Some(_) => Err(GraphFault::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        )),
        None => Err(GraphFault::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed.",
        )),
    }
}

/// OData query options of one request.
#[derive(Debug, Default)]
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self { pairs }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// `$select` → the list of properties, validated against the schema.
fn parse_select(query: &Query) -> Result<Option<Vec<String>>, GraphFault> {
    let Some(select) = query.get("$select") else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    for field in select.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let known = SERVICE_PRINCIPAL_PROPERTIES
            .iter()
            .find(|p| p.eq_ignore_ascii_case(field));
        match known {
            Some(name) => fields.push((*name).to_owned()),
            None => {
                return Err(GraphFault::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "Could not find a property named '{field}' on type 'microsoft.graph.servicePrincipal'."
                    ),
                ));
            }
        }
    }
    Ok(Some(fields))
}

fn project(object: &Value, select: Option<&[String]>) -> Value {
    match select {
        None => object.clone(),
        Some(fields) => {
            let mut out = Map::new();
            for field in fields {
                out.insert(
                    field.clone(),
                    object.get(field).cloned().unwrap_or(Value::Null),
                );
            }
            Value::Object(out)
        }
    }
}

/// `$filter`: the simulator supports the equality filters mi-assess sends.
fn parse_filter(query: &Query) -> Result<Option<(String, String)>, GraphFault> {
    let Some(filter) = query.get("$filter") else {
        return Ok(None);
    };
    let unsupported = || {
        GraphFault::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )
    };
    let (left, right) = filter.split_once(" eq ").ok_or_else(unsupported)?;
    let property = left.trim();
    let value = right.trim();
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    if !["servicePrincipalType", "appId", "displayName"]
        .iter()
        .any(|p| p.eq_ignore_ascii_case(property))
    {
        return Err(unsupported());
    }
    Ok(Some((property.to_owned(), value.to_owned())))
}

fn parse_top(query: &Query) -> Result<usize, GraphFault> {
    match query.get("$top") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(GraphFault::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!(
                    "Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive."
                ),
            )),
        },
    }
}

fn encode_skiptoken(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("sim-offset:{offset}"))
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("sim-offset:")?
        .parse()
        .ok()
}

/// `GET /v1.0/{*path}`.
pub(super) async fn graph_get(
    State(state): State<Arc<SimState>>,
    Path(path): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    state.graph_requests.fetch_add(1, Ordering::Relaxed);
    if let Err(denied) = authorise(&state, &headers) {
        return denied.into_response();
    }
    let query = Query::parse(raw_query.as_deref());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["servicePrincipals"] => list_service_principals(&state, &query),
        [one] if one.starts_with("servicePrincipals(appId=") => {
            let app_id = one
                .trim_start_matches("servicePrincipals(appId=")
                .trim_end_matches(')')
                .trim_matches('\'');
            get_service_principal(
                &state,
                &query,
                state.tenant.service_principal_by_app_id(app_id),
                app_id,
            )
        }
        ["servicePrincipals", id] => {
            if uuid::Uuid::parse_str(id).is_err() {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!("Invalid object identifier '{id}'."),
                );
            }
            get_service_principal(&state, &query, state.tenant.service_principal(id), id)
        }
        _ => graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segments.first().unwrap_or(&"")
            ),
        ),
    }
}

fn get_service_principal(
    state: &SimState,
    query: &Query,
    found: Option<&Value>,
    key: &str,
) -> Response {
    if state
        .faults
        .lock()
        .map(|f| f.fail_object_reads)
        .unwrap_or(false)
    {
        let status = state.faults.lock().map(|f| f.status).unwrap_or(503);
        return injected_failure(status);
    }
    let select = match parse_select(query) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    match found {
        Some(sp) => {
            let mut body = project(sp, select.as_deref());
            if let Value::Object(map) = &mut body {
                map.insert(
                    "@odata.context".into(),
                    Value::from(format!(
                        "{}v1.0/$metadata#servicePrincipals/$entity",
                        state.base_url
                    )),
                );
            }
            graph_json(state, body, 1)
        }
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        ),
    }
}

fn list_service_principals(state: &SimState, query: &Query) -> Response {
    let select = match parse_select(query) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let filter = match parse_filter(query) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let top = match parse_top(query) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let offset = match query.get("$skiptoken") {
        None => 0,
        Some(token) => match decode_skiptoken(token) {
            Some(offset) => offset,
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included in your request.",
                );
            }
        },
    };
    let faults = state.faults.lock().map(|f| f.clone()).unwrap_or_default();
    if faults
        .fail_pages_from
        .is_some_and(|from| offset / top >= from)
    {
        return injected_failure(faults.status);
    }
    let matching: Vec<&Value> = state
        .tenant
        .service_principals
        .iter()
        .filter(|sp| match &filter {
            None => true,
            Some((property, value)) => sp
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(property)))
                .and_then(|(_, v)| v.as_str())
                .is_some_and(|v| v.eq_ignore_ascii_case(value)),
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(top)
        .map(|sp| project(sp, select.as_deref()))
        .collect();
    let context = match &select {
        Some(fields) => format!(
            "{}v1.0/$metadata#servicePrincipals({})",
            state.base_url,
            fields.join(",")
        ),
        None => format!("{}v1.0/$metadata#servicePrincipals", state.base_url),
    };
    let mut body = BTreeMap::new();
    body.insert("@odata.context".to_owned(), Value::from(context));
    if offset + top < matching.len() {
        let mut next = state.base_url.clone();
        if let Some(host) = &faults.next_link_host {
            let _ = next.set_host(Some(host));
        }
        next.set_path("/v1.0/servicePrincipals");
        {
            let mut pairs = next.query_pairs_mut();
            for (k, v) in &query.pairs {
                if !k.eq_ignore_ascii_case("$skiptoken") {
                    pairs.append_pair(k, v);
                }
            }
            pairs.append_pair("$skiptoken", &encode_skiptoken(offset + top));
        }
        body.insert("@odata.nextLink".to_owned(), Value::from(next.to_string()));
    }
    body.insert("value".to_owned(), Value::Array(page));
    // List cost 1; $select takes 1 off; the minimum is 1.
    graph_json(state, json!(body), 1)
}

/// Anything outside `/v1.0/` and `/msi/token`.
pub(super) async fn unknown_segment() -> Response {
    graph_error(StatusCode::NOT_FOUND, "BadRequest", "Invalid version.")
}

/// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT`, api-version 2019-08-01).
pub(super) async fn msi_token(
    State(state): State<Arc<SimState>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let header_ok = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == state.identity_header);
    if !header_ok {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"statusCode": 401, "message": "Unauthorized: missing or wrong X-IDENTITY-HEADER"})),
        )
            .into_response();
    }
    let query = Query::parse(raw_query.as_deref());
    if query.get("api-version") != Some("2019-08-01") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"statusCode": 400, "message": "api-version must be 2019-08-01"})),
        )
            .into_response();
    }
    let Some(resource) = query.get("resource").filter(|r| !r.is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"statusCode": 400, "message": "resource is required"})),
        )
            .into_response();
    };
    let client_id = query.get("client_id").map(str::to_owned);
    let (token, expires_on) = mint(&state.tenant.scanner, resource, &state.graph_resource());
    if let Ok(mut log) = state.token_requests.lock() {
        log.push(TokenRequest {
            resource: resource.to_owned(),
            client_id: client_id.clone(),
        });
    }
    if let Ok(mut issued) = state.issued_tokens.lock() {
        issued.push(token.clone());
    }
    axum::Json(json!({
        "access_token": token,
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": client_id.unwrap_or_else(|| state.tenant.scanner.app_id.clone()),
    }))
    .into_response()
}
