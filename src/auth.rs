//! Who the scanner is: credential selection and the claims of its own tokens.
//!
//! In Azure the scanner authenticates as the Function App's managed identity through
//! `azure_identity::ManagedIdentityCredential`, which reads `IDENTITY_ENDPOINT` and
//! `IDENTITY_HEADER`. On a workstation without those variables it uses the developer-tools
//! credential (Azure CLI, then azd), or, for a user logged in to several tenants who names one
//! (`assess --tenant`), the Azure CLI credential for that tenant. Tokens stay inside `azure_core::credentials::Secret` or
//! `secrecy::SecretString` and are never formatted into logs.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, DeveloperToolsCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Environment variable the Functions platform sets to the local token endpoint.
pub const IDENTITY_ENDPOINT_VAR: &str = "IDENTITY_ENDPOINT";
/// Environment variable the Functions platform sets to the token endpoint's SSRF header value.
pub const IDENTITY_HEADER_VAR: &str = "IDENTITY_HEADER";

/// Which kind of credential was chosen, for logs and the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// The managed identity of the hosting resource.
    ManagedIdentity,
    /// Azure CLI or Azure Developer CLI login.
    DeveloperTools,
    /// A credential supplied by the caller (the demo's simulated tenant).
    Supplied,
}

impl CredentialKind {
    /// Where its tokens come from, in words: what to fix when none comes.
    pub fn source(self) -> &'static str {
        match self {
            Self::ManagedIdentity => {
                "the managed identity (IDENTITY_ENDPOINT, MI_ASSESS_IDENTITY_CLIENT_ID)"
            }
            Self::DeveloperTools => "your Azure CLI or azd login (az login, --tenant)",
            Self::Supplied => "the demo's simulated token endpoint",
        }
    }
}

/// Picks the credential: the managed identity whenever the platform's token endpoint variables
/// are set (also in the CLI), otherwise the developer-tools credential.
pub fn credential_from_env(
    user_assigned_client_id: Option<&str>,
    tenant: Option<&str>,
) -> anyhow::Result<(Arc<dyn TokenCredential>, CredentialKind)> {
    let has = |name: &str| std::env::var(name).map(|v| !v.is_empty()).unwrap_or(false);
    if has(IDENTITY_ENDPOINT_VAR) && has(IDENTITY_HEADER_VAR) {
        // A managed identity lives in one tenant: a `tenant` is checked against its token.
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: user_assigned_client_id
                .map(|id| UserAssignedId::ClientId(id.to_owned())),
            ..Default::default()
        };
        let credential = ManagedIdentityCredential::new(Some(options))
            .map_err(|e| anyhow::anyhow!("cannot create the managed identity credential: {e}"))?;
        Ok((credential, CredentialKind::ManagedIdentity))
    } else if let Some(tenant) = tenant {
        let options = AzureCliCredentialOptions {
            tenant_id: Some(tenant.to_owned()),
            ..Default::default()
        };
        let credential = AzureCliCredential::new(Some(options)).map_err(|e| {
            anyhow::anyhow!("cannot use the Azure CLI login for tenant {tenant}: {e}")
        })?;
        Ok((credential, CredentialKind::DeveloperTools))
    } else {
        let credential = DeveloperToolsCredential::new(None)
            .map_err(|e| anyhow::anyhow!("cannot create the developer-tools credential: {e}"))?;
        Ok((credential, CredentialKind::DeveloperTools))
    }
}

/// Checks that `credential`'s tokens for `scope` are issued by `tenant` (a tenant id; a domain
/// name is not compared), so a workstation login never assesses the wrong tenant.
pub async fn ensure_tenant(
    credential: Arc<dyn TokenCredential>,
    scope: &str,
    tenant: &str,
) -> anyhow::Result<()> {
    let claims = TokenSource::new(credential, scope)
        .claims()
        .await
        .map_err(|e| anyhow::anyhow!("checking the tenant of your login: {e}"))?;
    let Some(tid) = claims.tid else {
        anyhow::bail!(
            "your token names no tenant (tid), so it cannot be checked against --tenant {tenant}"
        );
    };
    if uuid::Uuid::parse_str(tenant).is_ok() && !tid.eq_ignore_ascii_case(tenant) {
        anyhow::bail!(
            "your token is for tenant {tid}, not --tenant {tenant}: log in there (az login --tenant {tenant}), or, with a managed identity, run in that tenant"
        );
    }
    Ok(())
}

/// A failure to obtain a token.
#[derive(Debug, thiserror::Error)]
#[error("could not get a token for {scope}: {message}")]
pub struct TokenError {
    /// The scope that was requested.
    pub scope: String,
    /// The credential's error text (never contains a token).
    pub message: String,
}

/// Fetches bearer tokens for one scope from a credential (which caches them).
#[derive(Clone)]
pub struct TokenSource {
    credential: Arc<dyn TokenCredential>,
    scope: String,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A token source for `scope`, e.g. `https://graph.microsoft.com/.default`.
    pub fn new(credential: Arc<dyn TokenCredential>, scope: impl Into<String>) -> Self {
        Self {
            credential,
            scope: scope.into(),
        }
    }

    /// Returns a bearer token, wrapped so it cannot be logged by accident.
    pub async fn bearer(&self) -> Result<SecretString, TokenError> {
        let token = self
            .credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map_err(|e| TokenError {
                scope: self.scope.clone(),
                message: e.to_string(),
            })?;
        Ok(SecretString::from(token.token.secret().to_owned()))
    }

    /// Reads the unverified claims of the current token (who the scanner is, which tenant).
    pub async fn claims(&self) -> Result<TokenClaims, TokenError> {
        let token = self.bearer().await?;
        TokenClaims::from_jwt(token.expose_secret()).map_err(|message| TokenError {
            scope: self.scope.clone(),
            message,
        })
    }
}

/// The claims mi-assess reads from its own access token.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TokenClaims {
    /// Tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// Object id of the calling identity (the scanner's service principal).
    #[serde(default)]
    pub oid: Option<String>,
    /// Application (client) id of the caller.
    #[serde(default)]
    pub appid: Option<String>,
    /// App roles granted to the caller (application permissions).
    #[serde(default)]
    pub roles: Vec<String>,
}

impl TokenClaims {
    /// Decodes the payload segment of a JWT without verifying it. The token came straight from
    /// the identity platform over a trusted channel; this only reads what it says about us.
    pub fn from_jwt(token: &str) -> Result<Self, String> {
        let payload = token
            .split('.')
            .nth(1)
            .ok_or_else(|| "the access token is not a JWT".to_owned())?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| format!("the access token payload is not base64url: {e}"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("the access token payload is not JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"tid":"t-1","oid":"o-1","roles":["Application.Read.All"]}"#);
        let claims =
            TokenClaims::from_jwt(&format!("eyJhbGciOiJub25lIn0.{payload}.")).expect("decodes");
        assert_eq!(claims.tid.as_deref(), Some("t-1"));
        assert_eq!(claims.oid.as_deref(), Some("o-1"));
        assert_eq!(claims.roles, vec!["Application.Read.All".to_owned()]);
        assert!(TokenClaims::from_jwt("opaque").is_err());
    }
}
