//! Request handlers of the Graph simulator: the Graph v1.0 paths mi-assess reads, JSON `$batch`,
//! and the managed-identity token endpoint. Behaviour follows
//! `../shared/reference/microsoft-graph.md`: `$select` validation and projection, equality
//! `$filter`s, `$top` limits, opaque skip tokens in `@odata.nextLink`, Graph error bodies,
//! resource-unit charges from the published cost table, and 403 for missing permissions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::token::{audience_and_expiry, is_unexpired, mint};
use super::{SimState, TokenRequest};

/// An entity type the simulator serves: its name in `$metadata`, its properties (for `$select`
/// validation), its base RU cost, and the data set name used for permission denials.
#[derive(Debug, Clone, Copy)]
struct Entity {
    name: &'static str,
    properties: &'static [&'static str],
    base_cost: u64,
    dataset: &'static str,
}

const SERVICE_PRINCIPAL: Entity = Entity {
    name: "servicePrincipal",
    properties: &[
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
    ],
    base_cost: 1,
    dataset: "servicePrincipals",
};
const APPLICATION: Entity = Entity {
    name: "application",
    properties: &[
        "id",
        "deletedDateTime",
        "appId",
        "appRoles",
        "createdDateTime",
        "description",
        "displayName",
        "identifierUris",
        "keyCredentials",
        "passwordCredentials",
        "publisherDomain",
        "requiredResourceAccess",
        "signInAudience",
        "tags",
        "uniqueName",
        "web",
        "api",
        "info",
        "notes",
        "owners",
    ],
    base_cost: 2,
    dataset: "applications",
};
const APP_ROLE_ASSIGNMENT: Entity = Entity {
    name: "appRoleAssignment",
    properties: &[
        "id",
        "deletedDateTime",
        "appRoleId",
        "createdDateTime",
        "principalDisplayName",
        "principalId",
        "principalType",
        "resourceDisplayName",
        "resourceId",
    ],
    base_cost: 2,
    dataset: "appRoleAssignments",
};
const DIRECTORY_OBJECT: Entity = Entity {
    name: "directoryObject",
    properties: &["id", "deletedDateTime"],
    base_cost: 1,
    dataset: "memberships",
};
const ROLE_DEFINITION: Entity = Entity {
    name: "unifiedRoleDefinition",
    properties: &[
        "id",
        "description",
        "displayName",
        "isBuiltIn",
        "isEnabled",
        "resourceScopes",
        "rolePermissions",
        "templateId",
        "version",
    ],
    base_cost: 1,
    dataset: "roleDefinitions",
};
const ROLE_ASSIGNMENT: Entity = Entity {
    name: "unifiedRoleAssignment",
    properties: &[
        "id",
        "appScopeId",
        "condition",
        "directoryScopeId",
        "principalId",
        "principalOrganizationId",
        "roleDefinitionId",
        "resourceScope",
    ],
    base_cost: 1,
    dataset: "roleAssignments",
};
const SCHEDULE_PROPERTIES: &[&str] = &[
    "id",
    "appScopeId",
    "createdDateTime",
    "createdUsing",
    "directoryScopeId",
    "modifiedDateTime",
    "principalId",
    "roleDefinitionId",
    "status",
    "memberType",
    "scheduleInfo",
    "assignmentType",
];
const ELIGIBILITY_SCHEDULE: Entity = Entity {
    name: "unifiedRoleEligibilitySchedule",
    properties: SCHEDULE_PROPERTIES,
    base_cost: 1,
    dataset: "roleEligibilitySchedules",
};
const ASSIGNMENT_SCHEDULE: Entity = Entity {
    name: "unifiedRoleAssignmentSchedule",
    properties: SCHEDULE_PROPERTIES,
    base_cost: 1,
    dataset: "roleAssignmentSchedules",
};
const OAUTH2_GRANT: Entity = Entity {
    name: "oAuth2PermissionGrant",
    properties: &[
        "id",
        "clientId",
        "consentType",
        "principalId",
        "resourceId",
        "scope",
    ],
    base_cost: 2,
    dataset: "delegatedGrants",
};

/// Properties of the directory-object types a directory-object collection can hold (users,
/// service principals, groups, applications): Graph accepts a `$select` of any of them there,
/// and a type without one returns it as null.
const DIRECTORY_OBJECT_PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "displayName",
    "appId",
    "servicePrincipalType",
    "userType",
    "userPrincipalName",
    "mail",
    "accountEnabled",
    "isAssignableToRole",
    "securityEnabled",
    "mailEnabled",
    "groupTypes",
];
const GROUP: Entity = Entity {
    name: "group",
    properties: &[
        "id",
        "deletedDateTime",
        "displayName",
        "description",
        "groupTypes",
        "isAssignableToRole",
        "mail",
        "mailEnabled",
        "membershipRule",
        "securityEnabled",
        "visibility",
    ],
    base_cost: 1,
    dataset: "groupOwnership",
};
/// Owners of applications and service principals; what a principal owns.
const OWNERS: Entity = Entity {
    name: "directoryObject",
    properties: DIRECTORY_OBJECT_PROPERTIES,
    base_cost: 1,
    dataset: "ownership",
};
/// Owners of groups.
const GROUP_OWNERS: Entity = Entity {
    dataset: "groupOwnership",
    ..OWNERS
};
/// `GET /groups/{id}/transitiveMembers`: 5 RU.
const TRANSITIVE_MEMBERS: Entity = Entity {
    name: "directoryObject",
    properties: DIRECTORY_OBJECT_PROPERTIES,
    base_cost: 5,
    dataset: "groupMemberCounts",
};
/// `POST /directoryObjects/getByIds`: 5 RU, 2 with `$select`.
const GET_BY_IDS: Entity = Entity {
    name: "directoryObject",
    properties: DIRECTORY_OBJECT_PROPERTIES,
    base_cost: 5,
    dataset: "directoryObjects",
};

/// Graph's default and maximum page sizes for directory objects.
const DEFAULT_PAGE_SIZE: usize = 100;
/// The page size once `$expand` is used on directory objects, whatever `$top` asks: "$expand on
/// directory objects: returns a maximum of 100 objects" (Graph known issue 13635).
const EXPAND_PAGE_SIZE: usize = 100;
/// "`$expand` typically returns a maximum of 20 items for the expanded relationship and has no
/// @odata.nextLink" (`concepts/query-parameters.md`).
const EXPAND_ITEMS: usize = 20;
/// Graph's limit on ids per `getByIds` request.
const GET_BY_IDS_LIMIT: usize = 1000;
const MAX_PAGE_SIZE: usize = 999;
/// Graph's limit on requests in one JSON batch.
const MAX_BATCH: usize = 20;

/// A response before it is rendered, so `$batch` can embed it.
#[derive(Debug)]
pub(super) struct SimResponse {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl SimResponse {
    fn ok(body: Value, resource_units: u64) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![
                ("x-ms-resource-unit", resource_units.to_string()),
                ("request-id", uuid::Uuid::new_v4().to_string()),
            ],
            body,
        }
    }

    fn error(status: StatusCode, code: &str, message: &str) -> Self {
        Self {
            status,
            headers: vec![("request-id", uuid::Uuid::new_v4().to_string())],
            body: json!({
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
            }),
        }
    }

    /// An injected failure, shaped like Graph's, with a fractional `Retry-After`.
    fn injected(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let code = if status == StatusCode::TOO_MANY_REQUESTS {
            "TooManyRequests"
        } else {
            "serviceUnavailable"
        };
        let mut response = Self::error(status, code, "Injected failure from the Graph simulator.");
        response.headers.push(("retry-after", "0.05".to_owned()));
        response
    }

    fn charged(self, state: &SimState) -> Self {
        if let Some((_, ru)) = self
            .headers
            .iter()
            .find(|(k, _)| *k == "x-ms-resource-unit")
        {
            state
                .resource_units
                .fetch_add(ru.parse().unwrap_or(0), Ordering::Relaxed);
        }
        self
    }

    fn batch_entry(self, id: &str) -> Value {
        let mut headers: Map<String, Value> = self
            .headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        headers.insert("Content-Type".into(), Value::from("application/json"));
        json!({ "id": id, "status": self.status.as_u16(), "headers": headers, "body": self.body })
    }
}

impl IntoResponse for SimResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            HeaderValue::from_static(
                "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
            ),
        );
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

type SimResult<T> = Result<T, SimResponse>;

/// Checks the bearer token: present, minted for this Graph endpoint, unexpired.
fn authorise(state: &SimState, headers: &HeaderMap) -> SimResult<()> {
    let unauthorised = |message: &str| {
        SimResponse::error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorised("Access token is empty."))?;
    match audience_and_expiry(token) {
        Some((aud, exp))
            if aud.trim_end_matches('/') == state.graph_resource() && is_unexpired(exp) =>
        {
            Ok(())
        }
        Some((_, exp)) if !is_unexpired(exp) => Err(unauthorised(
            "Lifetime validation failed, the token is expired.",
        )),
        Some(_) => Err(unauthorised(
            "Access token validation failure. Invalid audience.",
        )),
        None => Err(unauthorised("IDX14100: JWT is not well formed.")),
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

/// `$select` → validated property names.
fn parse_select(query: &Query, entity: Entity) -> SimResult<Option<Vec<String>>> {
    let Some(select) = query.get("$select") else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    for field in select.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match entity
            .properties
            .iter()
            .find(|p| p.eq_ignore_ascii_case(field))
        {
            Some(name) => fields.push((*name).to_owned()),
            None => {
                return Err(SimResponse::error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!(
                        "Could not find a property named '{field}' on type 'microsoft.graph.{}'.",
                        entity.name
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
            if let Some(kind) = object.get("@odata.type") {
                out.insert("@odata.type".into(), kind.clone());
            }
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

/// `$filter`: the simulator supports the `property eq 'value'` filters mi-assess sends.
fn parse_filter(query: &Query, entity: Entity) -> SimResult<Option<(String, String)>> {
    let Some(filter) = query.get("$filter") else {
        return Ok(None);
    };
    let unsupported = || {
        SimResponse::error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query.",
        )
    };
    let (left, right) = filter.split_once(" eq ").ok_or_else(unsupported)?;
    let property = left.trim();
    let value = right
        .trim()
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    if !entity
        .properties
        .iter()
        .any(|p| p.eq_ignore_ascii_case(property))
    {
        return Err(unsupported());
    }
    Ok(Some((property.to_owned(), value.to_owned())))
}

fn parse_top(query: &Query) -> SimResult<usize> {
    match query.get("$top") {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            _ => Err(SimResponse::error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!(
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

/// RU cost: the base cost, minus one with `$select`, plus one with `$expand`, minus one with a
/// `$top` under 20; never below one.
fn cost(entity: Entity, query: &Query) -> u64 {
    let select = i64::from(query.get("$select").is_some());
    let expand = i64::from(query.get("$expand").is_some());
    let small_top = i64::from(
        query
            .get("$top")
            .and_then(|t| t.trim().parse::<usize>().ok())
            .is_some_and(|t| t < 20),
    );
    let base = i64::try_from(entity.base_cost).unwrap_or(i64::MAX);
    u64::try_from((base - select + expand - small_top).max(1)).unwrap_or(1)
}

/// Request headers that change how Graph answers.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RequestHeaders {
    /// `ConsistencyLevel: eventual`, which advanced queries (`$count` on directory objects)
    /// need.
    eventual: bool,
}

impl RequestHeaders {
    fn from_http(headers: &HeaderMap) -> Self {
        Self {
            eventual: headers
                .get("consistencylevel")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("eventual")),
        }
    }

    fn from_batch(request: &Value) -> Self {
        let eventual = request
            .get("headers")
            .and_then(Value::as_object)
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("ConsistencyLevel"))
            })
            .and_then(|(_, v)| v.as_str())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        Self { eventual }
    }
}

/// Expands a relationship of each listed object: returns the related objects of one.
type Expander<'a> = &'a dyn Fn(&Value) -> Vec<Value>;

/// `$expand=owners` or `$expand=owners($select=…)`: the nested `$select`, validated. An
/// expansion of anything else, or where the collection has no such relationship, is refused
/// the way Graph refuses it.
fn parse_expand(
    query: &Query,
    entity: Entity,
    can_expand: bool,
) -> SimResult<Option<Option<Vec<String>>>> {
    let Some(expand) = query.get("$expand") else {
        return Ok(None);
    };
    let (name, options) = match expand.split_once('(') {
        Some((name, rest)) => (name.trim(), rest.strip_suffix(')').unwrap_or(rest)),
        None => (expand.trim(), ""),
    };
    if !can_expand || !name.eq_ignore_ascii_case("owners") {
        return Err(SimResponse::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Could not find a property named '{name}' on type 'microsoft.graph.{}'.",
                entity.name
            ),
        ));
    }
    let mut nested = None;
    for option in options.split(';').map(str::trim).filter(|o| !o.is_empty()) {
        match option.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("$select") => {
                let inner = Query {
                    pairs: vec![("$select".to_owned(), value.to_owned())],
                };
                nested = parse_select(&inner, OWNERS)?;
            }
            _ => {
                return Err(SimResponse::error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("Query option '{option}' is not supported inside $expand."),
                ));
            }
        }
    }
    Ok(Some(nested))
}

fn str_field<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.as_str())
}

/// Serves one page of a collection with Graph's options and paging.
fn collection(
    state: &SimState,
    path: &str,
    query: &Query,
    entity: Entity,
    items: Vec<&Value>,
) -> SimResult<SimResponse> {
    collection_with(
        state,
        path,
        query,
        RequestHeaders::default(),
        entity,
        items,
        None,
    )
}

/// [`collection`] with the request's headers (`$count` needs `ConsistencyLevel: eventual`) and
/// the collection's `owners` relationship for `$expand`, when it has one.
fn collection_with(
    state: &SimState,
    path: &str,
    query: &Query,
    headers: RequestHeaders,
    entity: Entity,
    items: Vec<&Value>,
    owners: Option<Expander<'_>>,
) -> SimResult<SimResponse> {
    let select = parse_select(query, entity)?;
    let filter = parse_filter(query, entity)?;
    let expand = parse_expand(query, entity, owners.is_some())?;
    let count = match query.get("$count") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") && headers.eventual => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(SimResponse::error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "$count is not currently supported without the ConsistencyLevel header set to eventual.",
            ));
        }
    };
    if expand.is_some() && headers.eventual {
        // "$expand is not currently supported with advanced queries."
        return Err(SimResponse::error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Unsupported Query: $expand is not supported with advanced queries.",
        ));
    }
    let mut top = parse_top(query)?;
    if expand.is_some() {
        top = top.min(EXPAND_PAGE_SIZE);
    }
    let offset = match query.get("$skiptoken") {
        None => 0,
        Some(token) => decode_skiptoken(token).ok_or_else(|| {
            SimResponse::error(
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            )
        })?,
    };
    let faults = state.faults.lock().map(|f| f.clone()).unwrap_or_default();
    if faults
        .fail_pages_from
        .is_some_and(|from| offset / top >= from)
    {
        return Err(SimResponse::injected(faults.status));
    }
    let matching: Vec<&Value> = items
        .into_iter()
        .filter(|item| match &filter {
            None => true,
            Some((property, value)) => {
                str_field(item, property).is_some_and(|v| v.eq_ignore_ascii_case(value))
            }
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(top)
        .map(|o| {
            let mut projected = project(o, select.as_deref());
            if let (Some(nested), Some(owners)) = (&expand, owners) {
                let related: Vec<Value> = owners(o)
                    .iter()
                    .take(EXPAND_ITEMS)
                    .map(|r| project(r, nested.as_deref()))
                    .collect();
                projected["owners"] = Value::Array(related);
            }
            projected
        })
        .collect();
    let mut body = BTreeMap::new();
    let context = match &select {
        Some(fields) => format!(
            "{}v1.0/$metadata#{path}({})",
            state.base_url,
            fields.join(",")
        ),
        None => format!("{}v1.0/$metadata#{path}", state.base_url),
    };
    body.insert("@odata.context".to_owned(), Value::from(context));
    // "The @odata.count property is present only in the first page."
    if count && offset == 0 {
        body.insert("@odata.count".to_owned(), Value::from(matching.len()));
    }
    if offset + top < matching.len() {
        let mut next = state.base_url.clone();
        if let Some(origin) = &faults.next_link_origin {
            next = origin.clone();
        }
        next.set_path(&format!("/v1.0/{path}"));
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
    if faults
        .self_next_link
        .as_deref()
        .is_some_and(|needle| path.contains(needle))
    {
        let mut same = state.base_url.clone();
        same.set_path(&format!("/v1.0/{path}"));
        {
            let mut pairs = same.query_pairs_mut();
            for (k, v) in &query.pairs {
                pairs.append_pair(k, v);
            }
        }
        body.insert("@odata.nextLink".to_owned(), Value::from(same.to_string()));
    }
    if let Some(bytes) = faults.oversized_page_bytes {
        body.insert("@sim.padding".to_owned(), Value::from("x".repeat(bytes)));
    }
    body.insert("value".to_owned(), Value::Array(page));
    Ok(SimResponse::ok(json!(body), cost(entity, query)))
}

fn single(
    state: &SimState,
    query: &Query,
    entity: Entity,
    found: Option<&Value>,
    key: &str,
) -> SimResult<SimResponse> {
    if state
        .faults
        .lock()
        .map(|f| f.fail_object_reads)
        .unwrap_or(false)
    {
        let status = state.faults.lock().map(|f| f.status).unwrap_or(503);
        return Err(SimResponse::injected(status));
    }
    let select = parse_select(query, entity)?;
    let Some(object) = found else {
        return Err(SimResponse::error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
            ),
        ));
    };
    let mut body = project(object, select.as_deref());
    if let Value::Object(map) = &mut body {
        map.insert(
            "@odata.context".into(),
            Value::from(format!(
                "{}v1.0/$metadata#{}s/$entity",
                state.base_url, entity.name
            )),
        );
    }
    Ok(SimResponse::ok(body, cost(entity, query)))
}

fn denied(state: &SimState, entity: Entity) -> SimResult<()> {
    if state
        .tenant()
        .denied
        .iter()
        .any(|d| d.eq_ignore_ascii_case(entity.dataset))
    {
        return Err(SimResponse::error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    Ok(())
}

/// The PIM lists of a tenant without the Entra ID P2 (or Governance) licence answer 400 with
/// the licence code.
fn licensed(state: &SimState) -> SimResult<()> {
    if state.tenant().pim_unlicensed {
        return Err(SimResponse::error(
            StatusCode::BAD_REQUEST,
            crate::http::LICENCE_REQUIRED_CODE,
            "The tenant needs an AAD Premium 2 license.",
        ));
    }
    Ok(())
}

fn valid_object_id(id: &str) -> SimResult<()> {
    uuid::Uuid::parse_str(id).map(|_| ()).map_err(|_| {
        SimResponse::error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("Invalid object identifier '{id}'."),
        )
    })
}

/// Routes one GET (also used for each request inside a `$batch`).
pub(super) fn route_get(
    state: &SimState,
    path: &str,
    raw_query: Option<&str>,
    headers: RequestHeaders,
) -> SimResponse {
    state.graph_requests.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut log) = state.request_log.lock() {
        log.push(match raw_query {
            Some(q) => format!("{}?{q}", path.trim_matches('/')),
            None => path.trim_matches('/').to_owned(),
        });
    }
    let query = Query::parse(raw_query);
    let path = path.trim_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let data = state.tenant();
    let tenant = data.tenant();
    let owners_of = |object: &Value| {
        object
            .get("id")
            .and_then(Value::as_str)
            .map(|id| data.owners_of(id))
            .unwrap_or_default()
    };
    // `$expand=owners` reads the owners, which the scanner may be denied.
    let expanding = |entity: Entity| {
        if query.get("$expand").is_some() {
            denied(
                state,
                if entity.name == "group" {
                    GROUP_OWNERS
                } else {
                    OWNERS
                },
            )
        } else {
            Ok(())
        }
    };
    let owners_list = |id: &str, entity: Entity, exists: bool| {
        valid_object_id(id)
            .and_then(|()| denied(state, entity))
            .and_then(|()| {
                if !exists {
                    return Err(not_found(id));
                }
                let owners = data.owners_of(id);
                collection_with(
                    state,
                    path,
                    &query,
                    headers,
                    entity,
                    owners.iter().collect(),
                    None,
                )
            })
    };
    let result = match segments.as_slice() {
        ["servicePrincipals"] => denied(state, SERVICE_PRINCIPAL)
            .and_then(|()| expanding(SERVICE_PRINCIPAL))
            .and_then(|()| {
                collection_with(
                    state,
                    path,
                    &query,
                    headers,
                    SERVICE_PRINCIPAL,
                    tenant.service_principals.iter().collect(),
                    Some(&owners_of),
                )
            }),
        ["servicePrincipals", id, "owners"] => {
            owners_list(id, OWNERS, data.service_principal(id).is_some())
        }
        ["applications", id, "owners"] => owners_list(id, OWNERS, data.application(id).is_some()),
        ["groups", id, "owners"] => owners_list(id, GROUP_OWNERS, data.group(id).is_some()),
        ["servicePrincipals", id, "ownedObjects"] => valid_object_id(id)
            .and_then(|()| denied(state, OWNERS))
            .and_then(|()| {
                data.service_principal(id).ok_or_else(|| not_found(id))?;
                let owned = data.owned_by(id);
                collection_with(
                    state,
                    path,
                    &query,
                    headers,
                    OWNERS,
                    owned.iter().collect(),
                    None,
                )
            }),
        ["groups"] => denied(state, GROUP)
            .and_then(|()| expanding(GROUP))
            .and_then(|()| {
                collection_with(
                    state,
                    path,
                    &query,
                    headers,
                    GROUP,
                    tenant.groups.iter().collect(),
                    Some(&owners_of),
                )
            }),
        ["groups", id, "transitiveMembers"] => valid_object_id(id)
            .and_then(|()| denied(state, TRANSITIVE_MEMBERS))
            .and_then(|()| {
                data.group(id).ok_or_else(|| not_found(id))?;
                let members = data.transitive_members(id);
                collection_with(
                    state,
                    path,
                    &query,
                    headers,
                    TRANSITIVE_MEMBERS,
                    members.iter().collect(),
                    None,
                )
            }),
        [one] if one.starts_with("servicePrincipals(appId=") => {
            let app_id = one
                .trim_start_matches("servicePrincipals(appId=")
                .trim_end_matches(')')
                .trim_matches('\'');
            single(
                state,
                &query,
                SERVICE_PRINCIPAL,
                data.service_principal_by_app_id(app_id),
                app_id,
            )
        }
        ["servicePrincipals", id] => valid_object_id(id).and_then(|()| {
            single(
                state,
                &query,
                SERVICE_PRINCIPAL,
                data.service_principal(id),
                id,
            )
        }),
        ["servicePrincipals", id, "appRoleAssignments"] => valid_object_id(id)
            .and_then(|()| denied(state, APP_ROLE_ASSIGNMENT))
            .and_then(|()| {
                data.service_principal(id).ok_or_else(|| not_found(id))?;
                let items = data.app_role_assignments_of(id);
                collection(state, path, &query, APP_ROLE_ASSIGNMENT, items)
            }),
        ["servicePrincipals", id, "transitiveMemberOf"] => valid_object_id(id)
            .and_then(|()| denied(state, DIRECTORY_OBJECT))
            .and_then(|()| {
                data.service_principal(id).ok_or_else(|| not_found(id))?;
                let owned = data.transitive_member_of(id);
                collection(
                    state,
                    path,
                    &query,
                    DIRECTORY_OBJECT,
                    owned.iter().collect(),
                )
            }),
        ["applications"] => denied(state, APPLICATION)
            .and_then(|()| expanding(APPLICATION))
            .and_then(|()| {
                collection_with(
                    state,
                    path,
                    &query,
                    headers,
                    APPLICATION,
                    tenant.applications.iter().collect(),
                    Some(&owners_of),
                )
            }),
        ["roleManagement", "directory", "roleDefinitions"] => denied(state, ROLE_DEFINITION)
            .and_then(|()| {
                collection(
                    state,
                    path,
                    &query,
                    ROLE_DEFINITION,
                    tenant.role_definitions.iter().collect(),
                )
            }),
        ["roleManagement", "directory", "roleAssignments"] => denied(state, ROLE_ASSIGNMENT)
            .and_then(|()| {
                collection(
                    state,
                    path,
                    &query,
                    ROLE_ASSIGNMENT,
                    tenant.role_assignments.iter().collect(),
                )
            }),
        ["roleManagement", "directory", "roleEligibilitySchedules"] => {
            denied(state, ELIGIBILITY_SCHEDULE)
                .and_then(|()| licensed(state))
                .and_then(|()| {
                    collection(
                        state,
                        path,
                        &query,
                        ELIGIBILITY_SCHEDULE,
                        tenant.role_eligibility_schedules.iter().collect(),
                    )
                })
        }
        ["roleManagement", "directory", "roleAssignmentSchedules"] => {
            denied(state, ASSIGNMENT_SCHEDULE)
                .and_then(|()| licensed(state))
                .and_then(|()| {
                    collection(
                        state,
                        path,
                        &query,
                        ASSIGNMENT_SCHEDULE,
                        tenant.role_assignment_schedules.iter().collect(),
                    )
                })
        }
        ["oauth2PermissionGrants"] => denied(state, OAUTH2_GRANT).and_then(|()| {
            collection(
                state,
                path,
                &query,
                OAUTH2_GRANT,
                tenant.oauth2_permission_grants.iter().collect(),
            )
        }),
        _ => Err(SimResponse::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                segments.last().unwrap_or(&"")
            ),
        )),
    };
    let response = match result {
        Ok(response) | Err(response) => response,
    };
    throttle(state, response).charged(state)
}

/// Applies random faults and Graph's token bucket to one (possibly batched) request.
fn throttle(state: &SimState, response: SimResponse) -> SimResponse {
    if state.roll(state.options.faults.throttle) {
        return SimResponse::injected(429);
    }
    if state.roll(state.options.faults.unavailable) {
        return SimResponse::injected(503);
    }
    if response.status != StatusCode::OK {
        return response;
    }
    let Some(bucket) = &state.bucket else {
        return response;
    };
    let cost: f64 = response
        .headers
        .iter()
        .find(|(k, _)| *k == "x-ms-resource-unit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1.0);
    let taken = match bucket.lock() {
        Ok(mut bucket) => bucket.take(cost),
        Err(_) => Ok(0.0),
    };
    match taken {
        Ok(usage) => {
            let mut response = response;
            if usage >= 0.8 {
                response
                    .headers
                    .push(("x-ms-throttle-limit-percentage", format!("{usage:.2}")));
            }
            response
        }
        Err(wait) => {
            state.throttled.fetch_add(1, Ordering::Relaxed);
            let mut response = SimResponse::error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests; resource unit limit exceeded.",
            );
            response
                .headers
                .push(("retry-after", format!("{:.3}", wait.max(0.001))));
            response.headers.push((
                "x-ms-throttle-scope",
                "Tenant_Application/ReadWrite/sim/sim".to_owned(),
            ));
            response.headers.push((
                "x-ms-throttle-information",
                "ResourceUnitLimitExceeded".to_owned(),
            ));
            response
        }
    }
}

/// Latency, then the HTTP-level faults: a dropped connection or a truncated body.
async fn deliver(state: &SimState, response: Response) -> Response {
    if !state.options.latency.is_zero() {
        tokio::time::sleep(state.options.latency).await;
    }
    if state.roll(state.options.faults.reset) {
        let (parts, _) = response.into_parts();
        let broken = futures::stream::iter(vec![
            Ok(axum::body::Bytes::from_static(b"{\"value\":[")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            )),
        ]);
        return Response::from_parts(parts, axum::body::Body::from_stream(broken));
    }
    if state.roll(state.options.faults.malformed) {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let cut = bytes.slice(..bytes.len() / 2);
        let mut parts = parts;
        parts.headers.remove("content-length");
        return Response::from_parts(parts, axum::body::Body::from(cut));
    }
    response
}

fn not_found(id: &str) -> SimResponse {
    SimResponse::error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// `GET /v1.0/{*path}`.
pub(super) async fn graph_get(
    State(state): State<Arc<SimState>>,
    Path(path): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(denied) = authorise(&state, &headers) {
        return denied.into_response();
    }
    let response = route_get(
        &state,
        &path,
        raw_query.as_deref(),
        RequestHeaders::from_http(&headers),
    )
    .into_response();
    deliver(&state, response).await
}

/// `POST /v1.0/directoryObjects/getByIds`.
pub(super) async fn graph_get_by_ids(
    State(state): State<Arc<SimState>>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = authorise(&state, &headers) {
        return denied.into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let response = get_by_ids(&state, raw_query.as_deref(), &request).into_response();
    deliver(&state, response).await
}

/// `directoryObjects/getByIds` (also inside `$batch`): the directory objects among `ids` (at
/// most 1,000), of the `types` asked for (every type when there is none), with `$select`.
/// Users the scanner cannot read in full come back with limited information.
pub(super) fn get_by_ids(
    state: &SimState,
    raw_query: Option<&str>,
    request: &Value,
) -> SimResponse {
    state.graph_requests.fetch_add(1, Ordering::Relaxed);
    state.arm.graph_requests.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut log) = state.request_log.lock() {
        log.push(match raw_query {
            Some(q) => format!("directoryObjects/getByIds?{q}"),
            None => "directoryObjects/getByIds".to_owned(),
        });
    }
    let query = Query::parse(raw_query);
    let data = state.tenant();
    let result = denied(state, GET_BY_IDS).and_then(|()| {
        let select = parse_select(&query, GET_BY_IDS)?;
        let bad = |message: &str| {
            SimResponse::error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
        };
        let ids = request
            .get("ids")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("ids is required."))?;
        if ids.len() > GET_BY_IDS_LIMIT {
            return Err(bad("Too many ids: at most 1000 per request."));
        }
        let types: Option<Vec<String>> = match request.get("types") {
            None | Some(Value::Null) => None,
            Some(Value::Array(types)) => Some(
                types
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| {
                        format!(
                            "#microsoft.graph.{}",
                            t.trim().trim_start_matches("microsoft.graph.")
                        )
                        .to_ascii_lowercase()
                    })
                    .collect(),
            ),
            Some(_) => return Err(bad("types must be a collection of strings.")),
        };
        let found: Vec<Value> = ids
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|id| data.directory_object(id))
            .filter(|o| match &types {
                None => true,
                Some(types) => o
                    .get("@odata.type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| types.contains(&t.to_ascii_lowercase())),
            })
            .map(|o| project(&o, select.as_deref()))
            .collect();
        // "5 (2 with $select)" in the published cost table.
        let units = if select.is_some() {
            2
        } else {
            GET_BY_IDS.base_cost
        };
        Ok(SimResponse::ok(
            json!({
                "@odata.context": format!("{}v1.0/$metadata#directoryObjects", state.base_url),
                "value": found,
            }),
            units,
        ))
    });
    let response = match result {
        Ok(response) | Err(response) => response,
    };
    throttle(state, response).charged(state)
}

/// `POST /v1.0/$batch`: up to 20 GETs (and `directoryObjects/getByIds` POSTs, whose `body`
/// needs a `Content-Type` header), answered in a different order than asked.
pub(super) async fn graph_batch(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(denied) = authorise(&state, &headers) {
        return denied.into_response();
    }
    let bad = |message: &str| {
        SimResponse::error(StatusCode::BAD_REQUEST, "BadRequest", message).into_response()
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad("Invalid batch payload format.");
    };
    let Some(requests) = request.get("requests").and_then(Value::as_array) else {
        return bad("Invalid batch payload format.");
    };
    if requests.is_empty() || requests.len() > MAX_BATCH {
        return bad(&format!(
            "Invalid batch payload: the number of requests must be between 1 and {MAX_BATCH}."
        ));
    }
    let mut ids = BTreeSet::new();
    for r in requests {
        let Some(id) = r.get("id").and_then(Value::as_str) else {
            return bad("Every batch request needs an id.");
        };
        if !ids.insert(id.to_owned()) {
            return bad(&format!(
                "Batch request ids must be unique: '{id}' repeats."
            ));
        }
    }
    let mut responses: Vec<Value> = requests
        .iter()
        .map(|r| {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
            let method = r.get("method").and_then(Value::as_str).unwrap_or_default();
            let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
            let relative = url.trim_start_matches('/');
            let (path, query) = match relative.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (relative, None),
            };
            if method.eq_ignore_ascii_case("POST")
                && path
                    .trim_matches('/')
                    .eq_ignore_ascii_case("directoryObjects/getByIds")
            {
                let typed = r
                    .get("headers")
                    .and_then(Value::as_object)
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("Content-Type")));
                if !typed {
                    return SimResponse::error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "A request with a body needs a Content-Type header.",
                    )
                    .batch_entry(id);
                }
                let body = r.get("body").cloned().unwrap_or(Value::Null);
                return get_by_ids(&state, query, &body).batch_entry(id);
            }
            if !method.eq_ignore_ascii_case("GET") {
                return SimResponse::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "BadRequest",
                    "The simulator batches GETs and getByIds only.",
                )
                .batch_entry(id);
            }
            route_get(&state, path, query, RequestHeaders::from_batch(r)).batch_entry(id)
        })
        .collect();
    // "Responses may come back in any order."
    responses.reverse();
    let duplicate = state
        .faults
        .lock()
        .map(|f| f.duplicate_batch_ids)
        .unwrap_or(false);
    if duplicate && responses.len() > 1 {
        let first_id = responses[0]["id"].clone();
        responses[1]["id"] = first_id;
    }
    let response = (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({ "responses": responses }).to_string(),
    )
        .into_response();
    deliver(&state, response).await
}

/// Anything outside `/v1.0/` and `/msi/token`.
pub(super) async fn unknown_segment() -> Response {
    SimResponse::error(StatusCode::NOT_FOUND, "BadRequest", "Invalid version.").into_response()
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
    if let Some(message) = state.faults.lock().ok().and_then(|f| f.token_error.clone()) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"statusCode": 403, "message": message})),
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
    let (token, expires_on) = mint(&state.tenant().scanner, resource, &state.graph_resource());
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
        "client_id": client_id.unwrap_or_else(|| state.tenant().scanner.app_id.clone()),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::{RunningSimulator, SimTenant};

    const LEGACY_SYNC_APP: &str = "6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c02";
    const GUEST: &str = "a7b8c9d0-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
    const OPERATORS: &str = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e02";
    const FUNC_PAYROLL_SYNC: &str = "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01";

    fn ru(response: &SimResponse) -> Option<&str> {
        response
            .headers
            .iter()
            .find(|(k, _)| *k == "x-ms-resource-unit")
            .map(|(_, v)| v.as_str())
    }

    async fn demo_with_many_owners() -> RunningSimulator {
        let mut tenant = SimTenant::demo().expect("demo");
        let many: Vec<String> = (0..25)
            .map(|u| format!("00000000-0000-4000-8000-{u:012x}"))
            .collect();
        for id in &many {
            tenant
                .users
                .push(json!({"id": id, "displayName": "u", "userType": "Member"}));
        }
        tenant.owners.insert(LEGACY_SYNC_APP.into(), many);
        RunningSimulator::start(tenant).await.expect("simulator")
    }

    /// `$expand` on directory objects: at most 20 related items and no nextLink for them, 100
    /// objects a page whatever `$top` asks, one RU more; the nested `$select` is validated.
    #[tokio::test]
    async fn expand_cuts_at_twenty_and_pages_at_a_hundred() {
        let sim = demo_with_many_owners().await;
        let state = &sim.state;
        let response = route_get(
            state,
            "applications",
            Some("$select=id,appId&$expand=owners($select=id,userType)&$top=999"),
            RequestHeaders::default(),
        );
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        let app = response.body["value"]
            .as_array()
            .and_then(|v| v.iter().find(|a| a["id"] == LEGACY_SYNC_APP))
            .expect("listed");
        assert_eq!(app["owners"].as_array().map(Vec::len), Some(20));
        assert!(app.get("owners@odata.nextLink").is_none());
        assert_eq!(app["owners"][0]["@odata.type"], "#microsoft.graph.user");
        assert!(
            app["owners"][0].get("displayName").is_none(),
            "nested $select"
        );
        assert_eq!(ru(&response), Some("2"), "2 base, -1 $select, +1 $expand");

        let bad = route_get(
            state,
            "applications",
            Some("$expand=owners($select=id,nonsense)"),
            RequestHeaders::default(),
        );
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let bad = route_get(
            state,
            "applications",
            Some("$expand=appRoles"),
            RequestHeaders::default(),
        );
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        let big = RunningSimulator::start(SimTenant::generated(4_000, 3))
            .await
            .expect("simulator");
        let page = route_get(
            &big.state,
            "applications",
            Some("$select=id&$expand=owners&$top=999"),
            RequestHeaders::default(),
        );
        assert_eq!(page.body["value"].as_array().map(Vec::len), Some(100));
        assert!(page.body.get("@odata.nextLink").is_some());
        let plain = route_get(
            &big.state,
            "applications",
            Some("$select=id&$top=999"),
            RequestHeaders::default(),
        );
        assert_eq!(plain.body["value"].as_array().map(Vec::len), Some(200));
    }

    /// Per-object owners page with `$top` and a nextLink; an unknown object is 404.
    #[tokio::test]
    async fn owners_are_paged_per_object() {
        let sim = demo_with_many_owners().await;
        let path = format!("applications/{LEGACY_SYNC_APP}/owners");
        let page = route_get(
            &sim.state,
            &path,
            Some("$select=id,displayName,userType&$top=10"),
            RequestHeaders::default(),
        );
        assert_eq!(page.body["value"].as_array().map(Vec::len), Some(10));
        assert!(page.body.get("@odata.nextLink").is_some());
        assert_eq!(ru(&page), Some("1"));
        let missing = route_get(
            &sim.state,
            "groups/00000000-0000-4000-8000-00000000ffff/owners",
            None,
            RequestHeaders::default(),
        );
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let demo = RunningSimulator::start(SimTenant::demo().expect("demo"))
            .await
            .expect("simulator");
        let owned = route_get(
            &demo.state,
            &format!("servicePrincipals/{FUNC_PAYROLL_SYNC}/ownedObjects"),
            None,
            RequestHeaders::default(),
        );
        assert_eq!(owned.body["value"][0]["id"], LEGACY_SYNC_APP);
        assert_eq!(
            owned.body["value"][0]["@odata.type"],
            "#microsoft.graph.application"
        );
    }

    /// getByIds: every type without `types`, only those asked for with it, `$select` projected
    /// (2 RU instead of 5); users with limited information when the scanner cannot read them.
    #[tokio::test]
    async fn get_by_ids_filters_by_type_and_selects() {
        let sim = RunningSimulator::start(SimTenant::demo().expect("demo"))
            .await
            .expect("simulator");
        let ids = json!({"ids": [GUEST, OPERATORS, FUNC_PAYROLL_SYNC, "00000000-0000-4000-8000-00000000ffff"]});
        let all = get_by_ids(&sim.state, None, &ids);
        assert_eq!(all.body["value"].as_array().map(Vec::len), Some(3));
        assert_eq!(ru(&all), Some("5"));
        let mut typed = ids.clone();
        typed["types"] = json!(["user", "group"]);
        let selected = get_by_ids(&sim.state, Some("$select=id,userType"), &typed);
        let value = selected.body["value"].as_array().expect("value");
        assert_eq!(value.len(), 2);
        let guest = value.iter().find(|o| o["id"] == GUEST).expect("guest");
        assert_eq!(guest["userType"], "Guest");
        assert_eq!(guest["@odata.type"], "#microsoft.graph.user");
        assert!(guest.get("displayName").is_none());
        assert_eq!(ru(&selected), Some("2"));
        let bad = get_by_ids(&sim.state, Some("$select=nonsense"), &ids);
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);

        // Without a permission that reads users: type and id only.
        sim.update_tenant(|t| t.scanner.graph_roles.retain(|r| r != "Directory.Read.All"));
        let limited = get_by_ids(&sim.state, None, &json!({"ids": [GUEST]}));
        assert_eq!(
            limited.body["value"][0],
            json!({"@odata.type": "#microsoft.graph.user", "id": GUEST})
        );
    }

    /// `$count` on directory objects needs `ConsistencyLevel: eventual`, and `$expand` is not
    /// allowed with it.
    #[tokio::test]
    async fn count_needs_eventual_consistency() {
        let sim = RunningSimulator::start(SimTenant::demo().expect("demo"))
            .await
            .expect("simulator");
        let path = format!("groups/{OPERATORS}/transitiveMembers");
        let query = Some("$count=true&$top=1&$select=id");
        let refused = route_get(&sim.state, &path, query, RequestHeaders::default());
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let eventual = RequestHeaders { eventual: true };
        let counted = route_get(&sim.state, &path, query, eventual);
        assert_eq!(counted.body["@odata.count"], 1);
        assert_eq!(ru(&counted), Some("3"), "5 base, -1 $select, -1 $top < 20");
        let expand = route_get(
            &sim.state,
            "groups",
            Some("$expand=owners&$count=true"),
            eventual,
        );
        assert_eq!(expand.status, StatusCode::BAD_REQUEST);
    }

    /// Inside `$batch`: a getByIds POST (its body needs a `Content-Type`) and a `$count` GET
    /// with its `ConsistencyLevel` header.
    #[tokio::test]
    async fn batch_serves_get_by_ids_and_inner_headers() {
        let sim = RunningSimulator::start(SimTenant::demo().expect("demo"))
            .await
            .expect("simulator");
        let (token, _) = mint(
            &sim.state.tenant().scanner,
            &sim.state.graph_resource(),
            &sim.state.graph_resource(),
        );
        let body = json!({"requests": [
            {"id": "1", "method": "POST", "url": "/directoryObjects/getByIds?$select=id,userType",
             "headers": {"Content-Type": "application/json"}, "body": {"ids": [GUEST]}},
            {"id": "2", "method": "POST", "url": "/directoryObjects/getByIds", "body": {"ids": [GUEST]}},
            {"id": "3", "method": "GET", "url": format!("/groups/{OPERATORS}/transitiveMembers?$count=true&$top=1&$select=id"),
             "headers": {"ConsistencyLevel": "eventual"}},
        ]});
        let answer: Value = reqwest::Client::new()
            .post(format!("{}v1.0/$batch", sim.graph_endpoint()))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let by_id = |id: &str| {
            answer["responses"]
                .as_array()
                .and_then(|r| r.iter().find(|e| e["id"] == id))
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(by_id("1")["status"], 200);
        assert_eq!(by_id("1")["body"]["value"][0]["userType"], "Guest");
        assert_eq!(by_id("2")["status"], 400, "no Content-Type");
        assert_eq!(by_id("3")["status"], 200);
        assert_eq!(by_id("3")["body"]["@odata.count"], 1);
    }
}
