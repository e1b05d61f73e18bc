//! The usage plane as data: what each service principal was seen doing in the Log Analytics
//! workspace where Entra ID and Azure send their logs, aggregated in the workspace over a window
//! (`MI_ASSESS_USAGE_WINDOW_DAYS`): its sign-ins per resource, its Graph requests per method
//! and path template, and its ARM operations. Collected by `crate::usage`; the usage rules read
//! it. A table the workspace does not have is not applicable (the diagnostic setting that feeds
//! it is missing), never empty.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Dataset;

/// The Azure role that reads a workspace's logs.
pub const USAGE_PERMISSION: &str = "Log Analytics Reader on the workspace (Azure RBAC)";

/// What the workspace said about the identities over the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageSnapshot {
    /// The workspace (its id, a GUID).
    pub workspace_id: String,
    /// The window's length, in days.
    pub window_days: u32,
    /// Where the window starts.
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    /// Where it ends (the collection time).
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
    /// Successful sign-ins per identity and resource (`AADManagedIdentitySignInLogs`).
    pub sign_ins: Dataset<Vec<SignInRow>>,
    /// Graph requests per identity, method and path template (`MicrosoftGraphActivityLogs`).
    pub graph_requests: Dataset<Vec<GraphRequestRow>>,
    /// ARM operations per caller (`AzureActivity`).
    pub arm_operations: Dataset<Vec<ArmOperationRow>>,
    /// Results the query API cut at its row or size limit even after the window was split:
    /// what they lack is unknown, and the rules that read them say so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
    /// What reading it cost.
    #[serde(default)]
    pub cost: UsageCost,
}

/// What the usage plane cost a run: queries sent (window slices included), rows read, time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageCost {
    /// Queries sent, retries not counted.
    pub queries: u64,
    /// Rows the answers held.
    pub rows: u64,
    /// Milliseconds from the first query to the last answer.
    pub milliseconds: u64,
}

/// Sign-ins of one service principal to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInRow {
    /// The service principal's object id.
    pub service_principal_id: String,
    /// The resource signed in to (its display name).
    pub resource: String,
    /// Successful sign-ins in the window.
    pub count: u64,
    /// The latest.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// Graph requests of one service principal to one method and path template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphRequestRow {
    /// The service principal's object id.
    pub service_principal_id: String,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path template (`crate::permission_map::uri_template`).
    pub path: String,
    /// Requests in the window.
    pub count: u64,
    /// The first.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    /// The latest.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// ARM operations of one caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmOperationRow {
    /// The caller's object id.
    pub caller: String,
    /// The operation, e.g. `Microsoft.Storage/storageAccounts/write`.
    pub operation: String,
    /// Operations in the window.
    pub count: u64,
    /// The latest.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}
