//! Request handlers of the simulator's Azure Resource Manager endpoints. (Graph's
//! `POST /v1.0/directoryObjects/getByIds`, which the Azure-plane collection uses, is served by
//! `graph_api`; its requests are counted here, as [`RunningSimulator::get_by_ids_requests`].)
//!
//! ARM is served on the simulator's own origin, under `/providers/…` and `/subscriptions/…`, so
//! one base URL is both `MI_ASSESS_GRAPH_ENDPOINT` and `MI_ASSESS_ARM_ENDPOINT`. Tokens carry
//! `aud` = the requested resource, and the ARM handlers check that it equals the simulator's ARM
//! resource, which is the same base URL as its Graph resource: a Graph token is therefore also
//! accepted by ARM here, unlike in Azure. That is acceptable for a loopback simulator; the
//! client side still asks for `{arm}/.default` separately.
//!
//! - `POST /providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01`: answers the
//!   queries in `crate::arm::queries` by identity (no KQL is parsed), with `$top`/`$skipToken`
//!   paging, quota headers, optional 429s, and 403 when the tenant model denies ARM.
//!   A request's `subscriptions` restricts it to those; `SimArm::subscription_limit` cuts a
//!   query over more subscriptions and sets `x-ms-tenant-subscription-limit-hit: true`.
//! - `GET /subscriptions?api-version=2022-12-01`: every subscription, `nextLink` paging.
//! - `GET /subscriptions/…/userAssignedIdentities/{name}/federatedIdentityCredentials`: the
//!   credential list with `nextLink` paging, 404 for unknown identities and the configured
//!   404/405 answers.
//! - `GET /subscriptions/{id}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`:
//!   the PIM eligibilities at, above and below the subscription (`$filter=atScope()`: at and
//!   above only), `nextLink` paging, 404 for a subscription the tenant does not have, and the
//!   configured 400 `AadPremiumLicenseRequired` / 403 answers.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::token::{audience_and_expiry, is_unexpired};
use super::{RunningSimulator, SimState};
use crate::arm::{
    ELIGIBILITY_API_VERSION, FEDERATED_CREDENTIALS_API_VERSION, LICENCE_REQUIRED_CODE,
    RESOURCE_GRAPH_API_VERSION, RESOURCE_GRAPH_PAGE_SIZE, SUBSCRIPTIONS_API_VERSION,
};
use crate::simulator::tenant::SimTenant;

/// ARM-side counters of a running simulator.
#[derive(Debug, Default)]
pub(crate) struct ArmSimState {
    requests: AtomicU64,
    /// `directoryObjects/getByIds` requests (served by `graph_api`).
    pub(crate) graph_requests: AtomicU64,
    log: Mutex<Vec<String>>,
}

impl ArmSimState {
    fn record(&self, entry: String) -> u64 {
        if let Ok(mut log) = self.log.lock() {
            log.push(entry);
        }
        self.requests.fetch_add(1, Ordering::Relaxed)
    }
}

impl RunningSimulator {
    /// Base URL to use as `MI_ASSESS_ARM_ENDPOINT` (the same origin as Graph).
    pub fn arm_endpoint(&self) -> &url::Url {
        &self.state.base_url
    }

    /// ARM requests served so far (Resource Graph and federated credentials).
    pub fn arm_requests(&self) -> u64 {
        self.state.arm.requests.load(Ordering::Relaxed)
    }

    /// Every ARM request served: `resourceGraph <first line of the query> <skipToken>` or the
    /// credential list path.
    pub fn arm_request_log(&self) -> Vec<String> {
        self.state
            .arm
            .log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// `directoryObjects/getByIds` requests served so far.
    pub fn get_by_ids_requests(&self) -> u64 {
        self.state.arm.graph_requests.load(Ordering::Relaxed)
    }
}

/// An ARM-shaped error response.
fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response();
    response.headers_mut().insert(
        "x-ms-request-id",
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(HeaderValue::from_static("0")),
    );
    response
}

/// Checks the bearer token: present, for this simulator's ARM resource, unexpired.
fn authorise(
    state: &SimState,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str, &'static str)> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or((
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ))?;
    match audience_and_expiry(token) {
        Some((aud, exp))
            if aud.trim_end_matches('/') == state.graph_resource() && is_unexpired(exp) =>
        {
            Ok(())
        }
        Some((_, exp)) if !is_unexpired(exp) => Err((
            StatusCode::UNAUTHORIZED,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        )),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource.",
        )),
    }
}

/// The 400 ARM answers when `api-version` is not `expected`, or `None` when it is.
fn wrong_api_version(raw: Option<&str>, expected: &str) -> Option<Response> {
    (query_param(raw, "api-version").as_deref() != Some(expected)).then(|| {
        arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            &format!("The api-version must be {expected}."),
        )
    })
}

fn query_param(raw: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.into_owned())
}

fn encode_offset(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("arm-offset:{offset}"))
}

fn decode_offset(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("arm-offset:")?
        .parse()
        .ok()
}

/// `POST /providers/Microsoft.ResourceGraph/resources`.
pub(super) async fn resource_graph(
    State(state): State<Arc<SimState>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err((status, code, message)) = authorise(&state, &headers) {
        return arm_error(status, code, message);
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let query = request
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let options = request.get("options").cloned().unwrap_or(Value::Null);
    let skip_token = options
        .get("$skipToken")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let served = state.arm.record(format!(
        "resourceGraph {} {}",
        query.lines().next().unwrap_or_default(),
        skip_token.as_deref().unwrap_or("-")
    ));
    if let Some(wrong) = wrong_api_version(raw_query.as_deref(), RESOURCE_GRAPH_API_VERSION) {
        return wrong;
    }
    let data = state.tenant();
    let tenant: &SimTenant = &data;
    if tenant.arm.denied {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            "The client does not have authorization to perform action 'Microsoft.ResourceGraph/resources/read'.",
        );
    }
    if (served as usize) < tenant.arm.throttle_first {
        let mut response = arm_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimiting",
            "Please provide below info when asking for support: timestamp, correlationId. Too many requests.",
        );
        let h = response.headers_mut();
        h.insert("x-ms-user-quota-remaining", HeaderValue::from_static("0"));
        h.insert(
            "x-ms-user-quota-resets-after",
            HeaderValue::from_static("00:00:00.05"),
        );
        return response;
    }
    if options.get("resultFormat").and_then(Value::as_str) != Some("objectArray") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The simulator answers resultFormat objectArray only.",
        );
    }
    if tenant.arm.rejected_queries.iter().any(|q| q == query) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Please provide below info when asking for support: timestamp, correlationId. The query is invalid.",
        );
    }
    if tenant.arm.rows(query).is_none() {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidQuery",
            "The simulator answers only the Resource Graph queries mi-assess sends (crate::arm::queries).",
        );
    }
    let offset = match skip_token.as_deref().map(decode_offset) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidSkipToken",
                "The $skipToken is not valid.",
            );
        }
    };
    let top = options
        .get("$top")
        .and_then(Value::as_u64)
        .map(|t| t as usize)
        .unwrap_or(100)
        .clamp(1, RESOURCE_GRAPH_PAGE_SIZE as usize)
        .min(tenant.arm.page_size.unwrap_or(usize::MAX).max(1));
    let subscriptions: Option<Vec<String>> = request.get("subscriptions").map(|list| {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    let Some((total, page, limit_hit)) =
        tenant
            .arm
            .page(query, subscriptions.as_deref(), offset, top)
    else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidQuery",
            "The simulator answers only the Resource Graph queries mi-assess sends (crate::arm::queries).",
        );
    };
    let mut answer = json!({
        "totalRecords": total,
        "count": page.len(),
        "data": page,
        "facets": [],
        "resultTruncated": "false",
    });
    if offset + top < total {
        answer["$skipToken"] = Value::from(encode_offset(offset + top));
    }
    let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
    let h = response.headers_mut();
    h.insert("x-ms-user-quota-remaining", HeaderValue::from_static("14"));
    h.insert(
        "x-ms-user-quota-resets-after",
        HeaderValue::from_static("00:00:05"),
    );
    if limit_hit {
        h.insert(
            crate::arm::SUBSCRIPTION_LIMIT_HEADER,
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Subscriptions per `GET /subscriptions` page (ARM pages the list; the size is not documented).
const SUBSCRIPTION_LIST_PAGE_SIZE: usize = 100;

/// `GET /subscriptions?api-version=2022-12-01` (Subscriptions - List): every subscription of the
/// tenant model, whatever Resource Graph's subscription limit, with `nextLink` paging.
pub(super) async fn subscription_list(
    State(state): State<Arc<SimState>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err((status, code, message)) = authorise(&state, &headers) {
        return arm_error(status, code, message);
    }
    state.arm.record("/subscriptions".to_owned());
    let raw_query = raw_query.as_deref();
    if let Some(wrong) = wrong_api_version(raw_query, SUBSCRIPTIONS_API_VERSION) {
        return wrong;
    }
    let data = state.tenant();
    let tenant: &SimTenant = &data;
    if tenant.arm.denied {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            "The client does not have authorization to perform action 'Microsoft.Resources/subscriptions/read'.",
        );
    }
    if let Some(status) = tenant.arm.subscription_list_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return arm_error(
            status,
            "InternalServerError",
            "Encountered internal server error.",
        );
    }
    let offset = match query_param(raw_query, "$skiptoken").map(|t| decode_offset(&t)) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidSkipToken",
                "Bad $skiptoken.",
            );
        }
    };
    let all = tenant.arm.subscription_list();
    let top = tenant
        .arm
        .page_size
        .unwrap_or(SUBSCRIPTION_LIST_PAGE_SIZE)
        .clamp(1, SUBSCRIPTION_LIST_PAGE_SIZE);
    let page: Vec<Value> = all.iter().skip(offset).take(top).cloned().collect();
    let mut answer = json!({ "value": page });
    if offset + top < all.len() {
        let mut next = state.base_url.clone();
        next.set_path("/subscriptions");
        next.query_pairs_mut()
            .append_pair("api-version", SUBSCRIPTIONS_API_VERSION)
            .append_pair("$skiptoken", &encode_offset(offset + top));
        answer["nextLink"] = Value::from(next.to_string());
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

const CREDENTIALS_SUFFIX: &str = "/federatedIdentityCredentials";
const ELIGIBILITY_SUFFIX: &str =
    "/providers/microsoft.authorization/roleeligibilityscheduleinstances";
/// Eligibility instances per page (ARM pages these lists; the exact size is not documented).
const ELIGIBILITY_PAGE_SIZE: usize = 100;

/// `GET /subscriptions/{id}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`.
fn eligibility_list(
    state: &SimState,
    tenant: &SimTenant,
    path: &str,
    subscription: &str,
    raw_query: Option<&str>,
) -> Response {
    if let Some(wrong) = wrong_api_version(raw_query, ELIGIBILITY_API_VERSION) {
        return wrong;
    }
    if tenant.arm.denied || tenant.arm.eligibility_status == Some(403) {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            "The client does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/read'.",
        );
    }
    match tenant.arm.eligibility_status {
        Some(400) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                LICENCE_REQUIRED_CODE,
                "The tenant needs an AAD Premium 2 license.",
            );
        }
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return arm_error(
                status,
                "InternalServerError",
                "Encountered internal server error.",
            );
        }
        None => {}
    }
    if tenant.arm.ancestors_of(subscription).is_none() {
        return arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{subscription}' could not be found."),
        );
    }
    let at_scope_only = match query_param(raw_query, "$filter") {
        None => false,
        Some(f) if f.trim().eq_ignore_ascii_case("atScope()") => true,
        Some(_) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The simulator answers no $filter or $filter=atScope() only.",
            );
        }
    };
    let all = tenant.arm.eligibilities_for(subscription, at_scope_only);
    let offset = match query_param(raw_query, "$skiptoken") {
        None => 0,
        Some(token) => match decode_offset(&token) {
            Some(offset) => offset,
            None => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "Bad $skiptoken.",
                );
            }
        },
    };
    let top = tenant
        .arm
        .page_size
        .unwrap_or(ELIGIBILITY_PAGE_SIZE)
        .clamp(1, ELIGIBILITY_PAGE_SIZE);
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(top)
        .map(|v| (*v).clone())
        .collect();
    let mut answer = json!({ "value": page });
    if offset + top < all.len() {
        let mut next = state
            .faults
            .lock()
            .ok()
            .and_then(|f| f.next_link_origin.clone())
            .unwrap_or_else(|| state.base_url.clone());
        next.set_path(path);
        next.query_pairs_mut()
            .append_pair("api-version", ELIGIBILITY_API_VERSION)
            .append_pair("$skiptoken", &encode_offset(offset + top));
        if at_scope_only {
            next.query_pairs_mut().append_pair("$filter", "atScope()");
        }
        answer["nextLink"] = Value::from(next.to_string());
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// `GET /subscriptions/{*path}`: the federated credential list of a user-assigned identity.
pub(super) async fn arm_get(
    State(state): State<Arc<SimState>>,
    Path(path): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err((status, code, message)) = authorise(&state, &headers) {
        return arm_error(status, code, message);
    }
    let path = format!("/subscriptions/{}", path.trim_end_matches('/'));
    state.arm.record(path.clone());
    let lower = path.to_ascii_lowercase();
    if let Some(subscription) = lower
        .strip_suffix(ELIGIBILITY_SUFFIX)
        .and_then(|p| p.strip_prefix("/subscriptions/"))
        .filter(|s| !s.contains('/'))
    {
        let data = state.tenant();
        return eligibility_list(&state, &data, &path, subscription, raw_query.as_deref());
    }
    let Some(identity_id) = path.strip_suffix(CREDENTIALS_SUFFIX).filter(|id| {
        id.to_ascii_lowercase()
            .contains("/providers/microsoft.managedidentity/userassignedidentities/")
    }) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidResourceType",
            "The simulator serves federated identity credential and PIM eligibility lists only.",
        );
    };
    if let Some(wrong) = wrong_api_version(raw_query.as_deref(), FEDERATED_CREDENTIALS_API_VERSION)
    {
        return wrong;
    }
    let data = state.tenant();
    let tenant: &SimTenant = &data;
    if tenant.arm.denied {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            "The client does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read'.",
        );
    }
    match tenant.arm.credential_status(identity_id) {
        Some(405) => {
            return arm_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "FederatedIdentityCredentialsNotSupported",
                "Federated identity credentials are not supported for this identity's region.",
            );
        }
        Some(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
            return arm_error(status, "ResourceNotFound", "The Resource was not found.");
        }
        None => {}
    }
    if !tenant.arm.has_identity(identity_id) {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource '{identity_id}' was not found."),
        );
    }
    let all = tenant.arm.credentials_of(identity_id);
    let offset = match query_param(raw_query.as_deref(), "$skiptoken") {
        None => 0,
        Some(token) => match decode_offset(&token) {
            Some(offset) => offset,
            None => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "Bad $skiptoken.",
                );
            }
        },
    };
    let top = tenant.arm.page_size.unwrap_or(100).max(1);
    let page: Vec<Value> = all.iter().skip(offset).take(top).cloned().collect();
    let mut answer = json!({ "value": page });
    if offset + top < all.len() {
        // A hostile origin, when the fault plan asks for one (the link must never be followed).
        let mut next = state
            .faults
            .lock()
            .ok()
            .and_then(|f| f.next_link_origin.clone())
            .unwrap_or_else(|| state.base_url.clone());
        next.set_path(&path);
        next.query_pairs_mut()
            .append_pair("api-version", FEDERATED_CREDENTIALS_API_VERSION)
            .append_pair("$skiptoken", &encode_offset(offset + top));
        answer["nextLink"] = Value::from(next.to_string());
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}
