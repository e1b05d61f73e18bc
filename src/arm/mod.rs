//! Azure Resource Manager: a small client for the two ARM APIs the Azure-plane assessment reads,
//! the KQL queries it sends, and the collection that turns their answers into the snapshot's
//! Azure data set (`collect`).
//!
//! - **Azure Resource Graph**: `POST {arm}/providers/Microsoft.ResourceGraph/resources`
//!   (api-version [`RESOURCE_GRAPH_API_VERSION`]) with `{query, options: {$top, $skipToken,
//!   resultFormat: "objectArray"}}`. No `subscriptions` or `managementGroups` are sent, so every
//!   query covers every subscription the scanner can read (tenant scope). Pages are followed with
//!   `$skipToken`; a result Resource Graph reports as truncated without a token is an error.
//!   A tenant-scope query covers the first 10,000 subscriptions only, and says so with
//!   [`SUBSCRIPTION_LIMIT_HEADER`]. Past it, [`Coverage::Batches`] runs each query again on
//!   batches of [`RESOURCE_GRAPH_SUBSCRIPTION_BATCH`] subscriptions in turn (the `subscriptions`
//!   field, as Resource Graph's troubleshooting guide says), the subscriptions coming from
//!   `GET {arm}/subscriptions` (api-version [`SUBSCRIPTIONS_API_VERSION`], `nextLink` paging,
//!   no limit); the tenant-scope answer still gives the rows outside any subscription
//!   (management-group role assignments and role definitions), and rows are merged by id.
//! - **Azure RBAC PIM eligibility**: `GET {arm}/subscriptions/{id}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances`
//!   (api-version [`ELIGIBILITY_API_VERSION`]), no `$filter`, so each answer holds the
//!   eligibilities at, above and below the subscription; `nextLink` paging. Resource Graph has
//!   no table for them. A tenant without the Entra ID P2 (or Governance) licence answers 400
//!   `AadPremiumLicenseRequired` ([`ArmError::is_licence_required`]).
//! - **Federated identity credentials**: `GET {arm}{identityId}/federatedIdentityCredentials`
//!   (api-version [`FEDERATED_CREDENTIALS_API_VERSION`]), paced to
//!   [`FEDERATED_CREDENTIAL_REQUESTS_PER_SECOND`] per subscription (ARM throttles reads per
//!   subscription and principal), `nextLink` paging. 404 (the identity is gone)
//!   and 405 (federated credentials not supported for it) are an answer, not an error.
//!
//! Throttling: 429 and transient 5xx are retried with the same policy and HTTP layer as Graph
//! ([`crate::http::RetryPolicy`], [`crate::http`]), waiting `Retry-After`, else Resource Graph's
//! `x-ms-user-quota-resets-after`, else exponential backoff. When a response says
//! `x-ms-user-quota-remaining: 0`, the next request waits for the quota to reset.
//!
//! Security: the bearer token (scope `{arm}/.default`) is only sent to the configured ARM scheme,
//! host and port; a `nextLink` anywhere else is refused before any request. Tokens stay in
//! `SecretString` and never reach logs or errors.

pub mod collect;
pub mod model;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{TokenError, TokenSource};
use crate::config::AzurePlaneMode;
use crate::http::{self, Attempt, Limits, Method, RetryPolicy, ServiceError};
use crate::resolve::ArmResourceId;
use crate::snapshot::azure::{EligibleRoleAssignmentRow, FederatedCredential};
use model::{
    EligibilityInstancePage, FederatedCredentialPage, QueryOptions, QueryRequest, QueryResponse,
    SubscriptionListPage,
};

/// Resource Graph API version.
pub const RESOURCE_GRAPH_API_VERSION: &str = "2022-10-01";
/// Managed Identity API version for federated identity credentials (GA since 2023-01-31, and
/// available in the sovereign clouds).
pub const FEDERATED_CREDENTIALS_API_VERSION: &str = "2023-01-31";
/// Authorization API version for role eligibility schedule instances (PIM for Azure resources,
/// GA since 2020-10-01).
pub const ELIGIBILITY_API_VERSION: &str = "2020-10-01";
pub use crate::http::LICENCE_REQUIRED_CODE;
/// Subscriptions API version (`GET /subscriptions`, Subscriptions - List).
pub const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";
/// Rows per Resource Graph page (the service maximum).
pub const RESOURCE_GRAPH_PAGE_SIZE: u32 = 1000;
/// Subscriptions per Resource Graph query when the tenant has more than one query covers
/// (Resource Graph's troubleshooting guide batches 1,000 at a time).
pub const RESOURCE_GRAPH_SUBSCRIPTION_BATCH: usize = 1000;
/// Federated-credential list calls per second and subscription, at most (ARM's token bucket
/// refills 25 reads per second per subscription and principal, with a burst of 250; this
/// leaves room for everything else).
pub const FEDERATED_CREDENTIAL_REQUESTS_PER_SECOND: u32 = 10;
/// Pages of one Resource Graph query, at most (a runaway-token guard: 5 million rows).
const MAX_PAGES: usize = 5_000;

/// The KQL queries of the Azure-plane collection, one per data set. Each projects `id` (Resource
/// Graph pages only queries that return it) and exactly the columns of its row type in
/// [`model`]. The simulator answers these strings by identity, so change them together with
/// `src/simulator/arm_api.rs`.
pub mod queries {
    /// The subscriptions the scanner can read, with their management-group ancestry. Used to
    /// probe access, to decide which management group contains what, and to know which
    /// subscriptions were readable at all.
    pub const SUBSCRIPTIONS: &str = "resourcecontainers\n\
| where type =~ 'microsoft.resources/subscriptions'\n\
| project id, subscriptionId, name, state = tostring(properties.state), managementGroupAncestorsChain = properties.managementGroupAncestorsChain, tenantId, managedByTenants = properties.managedByTenants";

    /// Every Azure RBAC role assignment visible to the scanner (management group, subscription,
    /// resource group and resource scope).
    pub const ROLE_ASSIGNMENTS: &str = "authorizationresources\n\
| where type =~ 'microsoft.authorization/roleassignments'\n\
| project id, scope = tostring(properties.scope), principalId = tostring(properties.principalId), principalType = tostring(properties.principalType), roleDefinitionId = tostring(properties.roleDefinitionId), condition = tostring(properties.condition), createdOn = tostring(properties.createdOn)";

    /// Every role definition (built-in and custom) with its permissions.
    pub const ROLE_DEFINITIONS: &str = "authorizationresources\n\
| where type =~ 'microsoft.authorization/roledefinitions'\n\
| project id, roleName = tostring(properties.roleName), roleType = tostring(properties.type), permissions = properties.permissions, assignableScopes = properties.assignableScopes";

    /// Every user-assigned managed identity resource.
    pub const USER_ASSIGNED_IDENTITIES: &str = "resources\n\
| where type =~ 'microsoft.managedidentity/userassignedidentities'\n\
| project id, name, subscriptionId, resourceGroup, location, tags, principalId = tostring(properties.principalId), clientId = tostring(properties.clientId)";

    /// Every resource with a managed identity (its `identity` block), plus every AKS cluster
    /// (whose OIDC issuer URL feeds the federated-credential allowlist even without one). Flex
    /// Consumption function apps also give their deployment storage: the blob container URL
    /// (`functionAppConfig.deployment.storage.value`) and how the app authenticates to it.
    pub const IDENTITY_RESOURCES: &str = "resources\n\
| where (isnotnull(identity) and tostring(identity.type) !~ 'None') or type =~ 'microsoft.containerservice/managedclusters'\n\
| project id, name, type, subscriptionId, resourceGroup, identityType = tostring(identity.type), principalId = tostring(identity.principalId), userAssignedIdentities = identity.userAssignedIdentities, oidcIssuerUrl = tostring(properties.oidcIssuerProfile.issuerURL), deploymentStorage = tostring(properties.functionAppConfig.deployment.storage.value), deploymentStorageAuthentication = tostring(properties.functionAppConfig.deployment.storage.authentication.type)";

    /// The storage accounts that some function app's deployment storage names, and only those
    /// (so the row count stays that of the Flex apps, not of every account): the account name
    /// is the first label of the container URL's host, joined (inner, distinct names) with
    /// the accounts' names; `blobEndpoint` lets the caller match the URL exactly.
    pub const STORAGE_ACCOUNTS: &str = "resources\n\
| where type =~ 'microsoft.storage/storageaccounts'\n\
| project id, name = tolower(name), subscriptionId, resourceGroup, blobEndpoint = tostring(properties.primaryEndpoints.blob)\n\
| join kind=inner (resources\n\
    | where type =~ 'microsoft.web/sites' and isnotempty(tostring(properties.functionAppConfig.deployment.storage.value))\n\
    | project name = tolower(tostring(split(tostring(split(tostring(properties.functionAppConfig.deployment.storage.value), '/')[2]), '.')[0]))\n\
    | distinct name) on name\n\
| project id, name, subscriptionId, resourceGroup, blobEndpoint";

    /// The head of [`issuer_storage_accounts`]: everything before the name list.
    pub const ISSUER_STORAGE_ACCOUNTS_HEAD: &str = "resources\n\
| where type =~ 'microsoft.storage/storageaccounts' and name in~ (";

    /// The storage accounts named by federated credentials' issuers (Blob Storage or static
    /// website hosts), by account name: those inside the tenant come back, an account of
    /// another tenant or an unclaimed name does not. Only valid account names (3 to 24
    /// lower-case letters and digits) are sent, so nothing needs escaping.
    pub fn issuer_storage_accounts(names: &[String]) -> String {
        let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        format!(
            "{ISSUER_STORAGE_ACCOUNTS_HEAD}{})\n\
| project id, name = tolower(name), subscriptionId, resourceGroup, blobEndpoint = tostring(properties.primaryEndpoints.blob)",
            list.join(", ")
        )
    }

    /// The account names an [`issuer_storage_accounts`] query asks for, or `None` for any
    /// other query (the simulator answers it).
    pub fn issuer_storage_account_names(query: &str) -> Option<Vec<String>> {
        let rest = query.strip_prefix(ISSUER_STORAGE_ACCOUNTS_HEAD)?;
        let (list, _) = rest.split_once(')')?;
        Some(
            list.split(',')
                .map(|n| n.trim().trim_matches('\'').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        )
    }

    /// All queries, in the order collection sends them.
    pub const ALL: [&str; 6] = [
        SUBSCRIPTIONS,
        ROLE_ASSIGNMENTS,
        ROLE_DEFINITIONS,
        USER_ASSIGNED_IDENTITIES,
        IDENTITY_RESOURCES,
        STORAGE_ACCOUNTS,
    ];
}

/// Why an ARM call failed. Callers branch on [`ArmError::is_access_denied`].
#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// No token could be obtained for the ARM scope.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// ARM answered with an error status after any retries.
    #[error("Azure Resource Manager returned {status} for {url}: {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// ARM error code, e.g. `AuthorizationFailed`.
        code: String,
        /// ARM error message.
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
    /// The response was not what ARM documents (malformed JSON, a truncated result, …).
    #[error("unusable response from {url}: {message}")]
    Malformed {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// A `nextLink` pointed away from the configured ARM endpoint.
    #[error(
        "refusing to follow nextLink to {link}: it is not on the configured ARM endpoint {expected}"
    )]
    ForeignLink {
        /// The link ARM (or something pretending to be ARM) returned.
        link: String,
        /// The configured endpoint.
        expected: String,
    },
    /// The identity id handed to [`ArmClient::federated_credentials`] is not one.
    #[error("{0} is not the resource id of a user-assigned identity")]
    NotAnIdentity(String),
}

impl From<http::Error> for ArmError {
    fn from(error: http::Error) -> Self {
        match error {
            http::Error::Transport { url, message } => Self::Transport { url, message },
            http::Error::Status {
                url, status, body, ..
            } => {
                let status = status.as_u16();
                let (code, message) = ServiceError::from_body(&body).into_parts(status);
                Self::Status {
                    status,
                    code,
                    message,
                    url,
                }
            }
            http::Error::Malformed { url, message } => Self::Malformed { url, message },
            http::Error::TooLarge { url, limit } => Self::Malformed {
                url,
                message: format!("the response is larger than the {limit}-byte limit"),
            },
            http::Error::ForeignLink { link, expected } => Self::ForeignLink { link, expected },
        }
    }
}

impl ArmError {
    /// The HTTP status, for errors that carry one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the scanner has no access: 401, 403, or no token for the ARM scope at all.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Self::Token(_)) || matches!(self.status(), Some(401 | 403))
    }

    /// True when ARM refused a PIM read because the tenant lacks the Entra ID P2 (or
    /// Governance) licence: 400 with code [`LICENCE_REQUIRED_CODE`] (its message reads "The
    /// tenant needs an AAD Premium 2 license.").
    pub fn is_licence_required(&self) -> bool {
        matches!(self, Self::Status { status: 400, code, .. } if code.eq_ignore_ascii_case(LICENCE_REQUIRED_CODE))
    }
}

/// Counters for one ARM client and its clones.
#[derive(Debug, Default)]
pub struct ArmStats {
    requests: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
    /// Set when a tenant-scope Resource Graph answer carried [`SUBSCRIPTION_LIMIT_HEADER`]` = true`.
    subscription_limit_hit: AtomicBool,
    /// Answers to a batch of [`Coverage::Batches`] that still carried the header.
    batches_over_limit: AtomicU64,
}

/// The header Resource Graph sets to `true` when the caller can read more subscriptions than
/// one tenant-scope (or management-group) query covers: "the response is limited to the first
/// 10,000 subscriptions" (learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests).
pub const SUBSCRIPTION_LIMIT_HEADER: &str = "x-ms-tenant-subscription-limit-hit";

/// Which subscriptions the Resource Graph queries of a run cover.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Coverage {
    /// One tenant-scope query each: every subscription the scanner can read, while they are
    /// fewer than Resource Graph's subscription limit.
    #[default]
    Tenant,
    /// Past the limit: the tenant-scope query (for rows outside any subscription), then the
    /// same query on each batch of subscription ids in turn.
    Batches(Vec<Vec<String>>),
}

impl Coverage {
    /// Batches of at most `size` (at least 1) of `subscription_ids`.
    pub fn batches_of(subscription_ids: &[String], size: usize) -> Self {
        Self::Batches(
            subscription_ids
                .chunks(size.max(1))
                .map(<[String]>::to_vec)
                .collect(),
        )
    }
}

/// A copy of [`ArmStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmStatsSnapshot {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// 429 responses received.
    pub throttled: u64,
    /// Retries made.
    pub retries: u64,
}

impl ArmStats {
    /// Reads the counters.
    pub fn snapshot(&self) -> ArmStatsSnapshot {
        ArmStatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// What listing one identity's federated credentials gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FederatedCredentialListing {
    /// The credentials (possibly none).
    Listed(Vec<FederatedCredential>),
    /// ARM answered 404 (the identity is gone) or 405 (federated credentials are not supported
    /// for it): nothing to list, and not an error of the run.
    Unavailable {
        /// 404 or 405.
        status: u16,
        /// ARM's explanation.
        reason: String,
    },
}

/// Shared pacing and quota state of a client and its clones.
#[derive(Debug)]
struct Gates {
    /// Earliest moment the next federated-credential call may start, per subscription.
    next_credential_call: Mutex<std::collections::HashMap<String, Instant>>,
    /// Set when Resource Graph said the quota is used up: no request before this moment.
    quota_resets_at: Mutex<Option<Instant>>,
}

/// An Azure Resource Manager client bound to one endpoint and one identity.
#[derive(Debug, Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    endpoint: Url,
    tokens: TokenSource,
    retry: RetryPolicy,
    stats: Arc<ArmStats>,
    gates: Arc<Gates>,
    credential_interval: Duration,
    limits: Limits,
    subscription_batch: usize,
}

impl ArmClient {
    /// A client for `endpoint` (e.g. `https://management.azure.com`), authenticating with
    /// `tokens` (scope `{endpoint}/.default`).
    pub fn new(endpoint: Url, tokens: TokenSource, retry: RetryPolicy) -> anyhow::Result<Self> {
        Ok(Self {
            http: http::client()?,
            endpoint,
            tokens,
            retry,
            stats: Arc::new(ArmStats::default()),
            gates: Arc::new(Gates {
                next_credential_call: Mutex::new(std::collections::HashMap::new()),
                quota_resets_at: Mutex::new(None),
            }),
            credential_interval: Duration::from_secs(1) / FEDERATED_CREDENTIAL_REQUESTS_PER_SECOND,
            subscription_batch: RESOURCE_GRAPH_SUBSCRIPTION_BATCH,
            limits: Limits::default(),
        })
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Bounds responses and listings by `limits` (a new client uses [`Limits::default`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same client with another number of subscriptions per batch query
    /// ([`Coverage::Batches`]; default [`RESOURCE_GRAPH_SUBSCRIPTION_BATCH`]).
    pub fn with_subscription_batch(mut self, size: usize) -> Self {
        self.subscription_batch = size.max(1);
        self
    }

    /// Subscriptions per batch query past the subscription limit.
    pub fn subscription_batch(&self) -> usize {
        self.subscription_batch
    }

    /// The same client (counters, pacing and quota shared) with another retry policy.
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        Self {
            retry,
            ..self.clone()
        }
    }

    /// True once a Resource Graph answer of this run said it covered only the first 10,000
    /// subscriptions ([`SUBSCRIPTION_LIMIT_HEADER`]).
    pub fn subscription_limit_hit(&self) -> bool {
        self.stats.subscription_limit_hit.load(Ordering::Relaxed)
    }

    /// How many batch queries of [`Coverage::Batches`] still said the subscription limit was
    /// hit (their batch was not covered whole).
    pub fn batches_over_limit(&self) -> u64 {
        self.stats.batches_over_limit.load(Ordering::Relaxed)
    }

    /// Request counters for this client and its clones.
    pub fn stats(&self) -> &ArmStats {
        &self.stats
    }

    /// Runs one KQL query at tenant scope and returns all rows, following `$skipToken` to the
    /// last page. An answer with [`SUBSCRIPTION_LIMIT_HEADER`] sets
    /// [`Self::subscription_limit_hit`].
    pub async fn resource_graph(&self, query: &str) -> Result<Vec<serde_json::Value>, ArmError> {
        let (rows, limit_hit) = self.resource_graph_on(query, None).await?;
        if limit_hit {
            self.stats
                .subscription_limit_hit
                .store(true, Ordering::Relaxed);
        }
        Ok(rows)
    }

    /// Runs one KQL query over `coverage`: at tenant scope, or at tenant scope and then on
    /// each batch of subscriptions in turn, rows merged by `id` (every query projects it).
    pub async fn resource_graph_over(
        &self,
        query: &str,
        coverage: &Coverage,
    ) -> Result<Vec<serde_json::Value>, ArmError> {
        let mut rows = self.resource_graph(query).await?;
        let Coverage::Batches(batches) = coverage else {
            return Ok(rows);
        };
        let row_id = |row: &serde_json::Value| {
            row.get("id")
                .and_then(serde_json::Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        let mut seen: std::collections::HashSet<String> = rows.iter().filter_map(row_id).collect();
        for batch in batches {
            let (batch_rows, limit_hit) = self.resource_graph_on(query, Some(batch)).await?;
            if limit_hit {
                self.stats
                    .batches_over_limit
                    .fetch_add(1, Ordering::Relaxed);
            }
            rows.extend(
                batch_rows
                    .into_iter()
                    .filter(|row| row_id(row).is_none_or(|id| seen.insert(id))),
            );
        }
        Ok(rows)
    }

    /// Every subscription the scanner can read (`GET /subscriptions`, no subscription limit),
    /// by id, following `nextLink` on the configured endpoint only.
    pub async fn subscription_ids(&self) -> Result<Vec<String>, ArmError> {
        let mut next = Some(self.url(&["subscriptions"], SUBSCRIPTIONS_API_VERSION)?);
        let mut ids = Vec::new();
        let mut links_seen = std::collections::HashSet::new();
        while let Some(url) = next.take() {
            let page: SubscriptionListPage =
                http::decode(&url, &self.send(Method::GET, &url, None, None).await?)?;
            ids.extend(page.value.into_iter().map(|s| s.subscription_id));
            next = self.next_page(page.next_link, &mut links_seen)?;
        }
        Ok(ids)
    }

    /// One query on `subscriptions` (tenant scope when `None`): its rows, and whether an
    /// answer said the subscription limit was hit.
    async fn resource_graph_on(
        &self,
        query: &str,
        subscriptions: Option<&[String]>,
    ) -> Result<(Vec<serde_json::Value>, bool), ArmError> {
        let limit_hit = AtomicBool::new(false);
        let url = self.url(
            &["providers", "Microsoft.ResourceGraph", "resources"],
            RESOURCE_GRAPH_API_VERSION,
        )?;
        let mut rows = Vec::new();
        let mut skip_token: Option<String> = None;
        let mut tokens_seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES.min(self.limits.max_pages) {
            let body = serde_json::to_value(QueryRequest {
                query,
                subscriptions,
                options: QueryOptions {
                    top: RESOURCE_GRAPH_PAGE_SIZE,
                    skip_token: skip_token.as_deref(),
                    result_format: "objectArray",
                },
            })
            .map_err(|e| ArmError::Malformed {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            let page: QueryResponse = http::decode(
                &url,
                &self
                    .send(Method::POST, &url, Some(&body), Some(&limit_hit))
                    .await?,
            )?;
            let next = page.skip_token.clone().filter(|t| !t.is_empty());
            if page.is_truncated() && next.is_none() {
                return Err(ArmError::Malformed {
                    url: url.to_string(),
                    message: format!(
                        "Resource Graph truncated the result ({} of {} rows) without a $skipToken",
                        rows.len() + page.data.len(),
                        page.total_records
                    ),
                });
            }
            rows.extend(page.data);
            match next {
                Some(token) if !tokens_seen.insert(token.clone()) => {
                    return Err(ArmError::Malformed {
                        url: url.to_string(),
                        message: "Resource Graph repeated a $skipToken this query already used"
                            .into(),
                    });
                }
                Some(token) => skip_token = Some(token),
                None => return Ok((rows, limit_hit.into_inner())),
            }
        }
        Err(ArmError::Malformed {
            url: url.to_string(),
            message: format!("more than {MAX_PAGES} pages; stopping"),
        })
    }

    /// [`Self::resource_graph_over`], each row decoded as `T`.
    pub async fn resource_graph_rows<T: DeserializeOwned>(
        &self,
        query: &str,
        coverage: &Coverage,
    ) -> Result<Vec<T>, ArmError> {
        self.resource_graph_over(query, coverage)
            .await?
            .into_iter()
            .map(|row| {
                serde_json::from_value(row).map_err(|e| ArmError::Malformed {
                    url: format!(
                        "{}providers/Microsoft.ResourceGraph/resources",
                        self.endpoint
                    ),
                    message: format!("a row does not match the query's columns: {e}"),
                })
            })
            .collect()
    }

    /// Lists the federated identity credentials of one user-assigned identity, paced to at most
    /// [`FEDERATED_CREDENTIAL_REQUESTS_PER_SECOND`] calls per second in its subscription
    /// across clones.
    pub async fn federated_credentials(
        &self,
        identity_id: &str,
    ) -> Result<FederatedCredentialListing, ArmError> {
        let parsed = ArmResourceId::parse(identity_id)
            .filter(|r| {
                r.is_user_assigned_identity()
                    && r.subscription_id.is_some()
                    && r.resource_group.is_some()
            })
            .ok_or_else(|| ArmError::NotAnIdentity(identity_id.to_owned()))?;
        let mut segments: Vec<&str> = parsed.id.trim_matches('/').split('/').collect();
        segments.push("federatedIdentityCredentials");
        let mut next = Some(self.url(&segments, FEDERATED_CREDENTIALS_API_VERSION)?);
        let mut credentials = Vec::new();
        let mut links_seen = std::collections::HashSet::new();
        let subscription = parsed
            .subscription_id
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        while let Some(url) = next.take() {
            self.pace_credential_call(&subscription).await;
            let bytes = match self.send(Method::GET, &url, None, None).await {
                Ok(bytes) => bytes,
                Err(ArmError::Status {
                    status: status @ (404 | 405),
                    code,
                    message,
                    ..
                }) => {
                    return Ok(FederatedCredentialListing::Unavailable {
                        status,
                        reason: format!("{code}: {message}"),
                    });
                }
                Err(e) => return Err(e),
            };
            let page: FederatedCredentialPage = http::decode(&url, &bytes)?;
            credentials.extend(page.value.into_iter().map(FederatedCredential::from));
            next = self.next_page(page.next_link, &mut links_seen)?;
        }
        Ok(FederatedCredentialListing::Listed(credentials))
    }

    /// The page a `nextLink` names, on the configured endpoint only; `None` at the end. A link
    /// to a page already read, or past the page cap, ends the listing as malformed.
    fn next_page(
        &self,
        link: Option<String>,
        seen: &mut std::collections::HashSet<String>,
    ) -> Result<Option<url::Url>, ArmError> {
        let Some(link) = link.filter(|l| !l.is_empty()) else {
            return Ok(None);
        };
        let url = http::checked_link(&link, &self.endpoint)?;
        if !seen.insert(url.to_string()) || seen.len() > self.limits.max_pages {
            return Err(ArmError::Malformed {
                url: url.to_string(),
                message: "the nextLink repeats a page already read, or the listing passed its \
                          page cap"
                    .into(),
            });
        }
        Ok(Some(url))
    }

    /// Lists the Azure RBAC PIM eligibilities that apply in one subscription: the role
    /// eligibility schedule instances at, above (management groups, `/`) and below (resource
    /// groups, resources) it, following `nextLink` on the configured endpoint only.
    pub async fn eligible_role_assignments(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<EligibleRoleAssignmentRow>, ArmError> {
        let subscription = subscription_id.trim();
        if uuid::Uuid::parse_str(subscription).is_err() {
            return Err(ArmError::Malformed {
                url: self.endpoint.to_string(),
                message: format!("{subscription:.64} is not a subscription id"),
            });
        }
        let mut next = Some(self.url(
            &[
                "subscriptions",
                subscription,
                "providers",
                "Microsoft.Authorization",
                "roleEligibilityScheduleInstances",
            ],
            ELIGIBILITY_API_VERSION,
        )?);
        let mut rows = Vec::new();
        let mut links_seen = std::collections::HashSet::new();
        while let Some(url) = next.take() {
            let page: EligibilityInstancePage =
                http::decode(&url, &self.send(Method::GET, &url, None, None).await?)?;
            rows.extend(page.value.into_iter().map(EligibleRoleAssignmentRow::from));
            next = self.next_page(page.next_link, &mut links_seen)?;
        }
        Ok(rows)
    }

    /// `{endpoint}/{segments…}?api-version={version}`, each segment percent-encoded.
    fn url(&self, segments: &[&str], api_version: &str) -> Result<Url, ArmError> {
        let mut url = self.endpoint.clone();
        {
            let mut path = url.path_segments_mut().map_err(|()| ArmError::Malformed {
                url: self.endpoint.to_string(),
                message: "the ARM endpoint cannot carry a path".into(),
            })?;
            path.pop_if_empty();
            path.extend(segments.iter().filter(|s| !s.is_empty()));
        }
        url.query_pairs_mut()
            .clear()
            .append_pair("api-version", api_version);
        Ok(url)
    }

    async fn pace_credential_call(&self, subscription: &str) {
        let wait = {
            let mut gates = match self.gates.next_credential_call.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let now = Instant::now();
            let next = gates.entry(subscription.to_owned()).or_insert(now);
            let slot = (*next).max(now);
            *next = slot + self.credential_interval;
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    async fn wait_for_quota(&self) {
        let until = match self.gates.quota_resets_at.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                let wait = (until - now).min(self.retry.max_delay);
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "Resource Graph quota used up; waiting for it to reset"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Sends one request, retrying throttling and transient failures. `limit_hit` is set when
    /// an answer carries [`SUBSCRIPTION_LIMIT_HEADER`]` = true`.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        limit_hit: Option<&AtomicBool>,
    ) -> Result<Bytes, ArmError> {
        let method = &method;
        http::with_retries(
            &self.retry,
            &self.stats.retries,
            "ARM",
            url,
            move || async move {
                self.wait_for_quota().await;
                self.send_once(method, url, body, limit_hit).await
            },
        )
        .await
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        limit_hit: Option<&AtomicBool>,
    ) -> Attempt<Bytes, ArmError> {
        let token = match self.tokens.bearer().await {
            Ok(token) => token,
            Err(e) => return Attempt::Done(Err(e.into())),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let request = http::request(&self.http, method.clone(), url, &token, body);
        let mut quota_reset = None;
        let answer = http::attempt(url, request, self.limits.max_response_bytes, |response| {
            if let Some(flag) = limit_hit
                && http::header(response, SUBSCRIPTION_LIMIT_HEADER)
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            {
                flag.store(true, Ordering::Relaxed);
            }
            quota_reset =
                http::header(response, "x-ms-user-quota-resets-after").and_then(http::parse_hms);
            let quota_left = http::header(response, "x-ms-user-quota-remaining")
                .and_then(|v| v.trim().parse::<i64>().ok());
            if let (Some(0), Some(reset)) = (quota_left, quota_reset)
                && let Ok(mut gate) = self.gates.quota_resets_at.lock()
            {
                *gate = Some(Instant::now() + reset);
            }
        })
        .await;
        let error = match answer {
            Ok(bytes) => return Attempt::Done(Ok(bytes)),
            Err(error) => error,
        };
        let throttled = error.is_throttled();
        if throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if error.is_retryable() {
            Attempt::Retry {
                retry_after: error.retry_after().or(quota_reset.filter(|_| throttled)),
                throttled,
                error: error.into(),
            }
        } else {
            Attempt::Done(Err(error.into()))
        }
    }
}

/// The Azure plane as configured for a run: whether to read it, whether missing access makes
/// the run partial, and the client to read it with.
#[derive(Debug, Clone)]
pub struct AzurePlane {
    mode: AzurePlaneMode,
    client: Option<ArmClient>,
}

impl AzurePlane {
    /// The same plane with a client whose request accounting is its own, for one run (the
    /// quota gates stay shared).
    pub fn for_run(&self) -> Self {
        Self {
            mode: self.mode,
            client: self.client.as_ref().map(|c| ArmClient {
                stats: Arc::new(ArmStats::default()),
                ..c.clone()
            }),
        }
    }

    /// Not read at all: the Azure data is unknown and the manifest says it was turned off.
    pub fn off() -> Self {
        Self {
            mode: AzurePlaneMode::Off,
            client: None,
        }
    }

    /// Read with `client`; `mode` decides whether missing access makes the run partial.
    pub fn new(mode: AzurePlaneMode, client: ArmClient) -> Self {
        match mode {
            AzurePlaneMode::Off => Self::off(),
            _ => Self {
                mode,
                client: Some(client),
            },
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> AzurePlaneMode {
        self.mode
    }

    /// The client, unless the plane is off.
    pub fn client(&self) -> Option<&ArmClient> {
        self.client.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_project_an_id_column() {
        for query in queries::ALL {
            assert!(query.contains("| project id,"), "{query}");
        }
    }
}
