//! Serde shapes of the Graph resources mi-assess reads.
//!
//! Every field is optional or defaulted so that documented payloads, trimmed `$select`
//! responses and future additions all parse; unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// The `$select` list used for every service principal mi-assess reads.
pub const SERVICE_PRINCIPAL_SELECT: &str = "id,appId,displayName,servicePrincipalType,alternativeNames,accountEnabled,appOwnerOrganizationId,servicePrincipalNames,tags,passwordCredentials,keyCredentials";

/// `servicePrincipalType` of managed identities.
pub const MANAGED_IDENTITY_TYPE: &str = "ManagedIdentity";

/// A Microsoft Entra service principal (`#microsoft.graph.servicePrincipal`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id (equals ARM `principalId` for managed identities).
    #[serde(default)]
    pub id: String,
    /// Application (client) id (equals ARM `clientId` for managed identities).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Display name: the resource name (system-assigned) or identity name (user-assigned).
    #[serde(default)]
    pub display_name: Option<String>,
    /// `Application`, `ManagedIdentity`, `Legacy`, …
    #[serde(default)]
    pub service_principal_type: Option<String>,
    /// For managed identities: `isExplicit=…` and the ARM resource id.
    #[serde(default)]
    pub alternative_names: Vec<String>,
    /// Whether sign-in is enabled.
    #[serde(default)]
    pub account_enabled: Option<bool>,
    /// Tenant that owns the backing application (null for managed identities).
    #[serde(default)]
    pub app_owner_organization_id: Option<String>,
    /// Service principal names.
    #[serde(default)]
    pub service_principal_names: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Client secrets (metadata only; Graph never returns secret values here).
    #[serde(default)]
    pub password_credentials: Vec<Credential>,
    /// Certificates.
    #[serde(default)]
    pub key_credentials: Vec<Credential>,
}

impl ServicePrincipal {
    /// True for `servicePrincipalType eq 'ManagedIdentity'`.
    pub fn is_managed_identity(&self) -> bool {
        self.service_principal_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(MANAGED_IDENTITY_TYPE))
    }
}

/// Metadata of a password or key credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// Credential id.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Friendly name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Start of validity (ISO 8601).
    #[serde(default)]
    pub start_date_time: Option<String>,
    /// End of validity (ISO 8601).
    #[serde(default)]
    pub end_date_time: Option<String>,
}
