//! The simulator's identity platform: unsigned JWTs, the App Service managed-identity token
//! endpoint (`IDENTITY_ENDPOINT` protocol, api-version 2019-08-01), and an in-process
//! credential for the demo.
//!
//! Tokens are unsigned (`alg: none`) but carry the claims real consumers check: Azurite's
//! `--oauth basic` mode validates `aud`, `iss`, `iat`, `nbf` and `exp`; the Graph simulator
//! validates `aud` and `exp`.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine as _;
use serde_json::json;

/// The identity tokens are minted for.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenSubject {
    /// Tenant id (`tid`).
    pub tenant_id: String,
    /// Object id (`oid`).
    pub object_id: String,
    /// Application id (`appid`).
    pub app_id: String,
    /// Graph application permissions (`roles`), only put in Graph tokens.
    #[serde(default)]
    pub graph_roles: Vec<String>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `https://graph.microsoft.com/.default` → `https://graph.microsoft.com`.
pub fn resource_from_scope(scope: &str) -> &str {
    scope.trim_end_matches("/.default").trim_end_matches('/')
}

/// Mints an unsigned JWT for `resource`. `graph_resource` decides whether Graph roles go in.
pub fn mint(subject: &TokenSubject, resource: &str, graph_resource: &str) -> (String, u64) {
    let now = now_unix();
    let expires_on = now + 3600;
    let resource = resource.trim_end_matches('/');
    let mut claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", subject.tenant_id),
        "iat": now - 60,
        "nbf": now - 60,
        "exp": expires_on,
        "oid": subject.object_id,
        "sub": subject.object_id,
        "tid": subject.tenant_id,
        "appid": subject.app_id,
        "idtyp": "app",
        "uti": uuid::Uuid::new_v4().simple().to_string(),
    });
    if resource.eq_ignore_ascii_case(graph_resource.trim_end_matches('/')) {
        claims["roles"] = json!(subject.graph_roles);
    }
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "{}.{}.",
        engine.encode(br#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    );
    (token, expires_on)
}

/// Reads `aud` and `exp` from a token minted by [`mint`].
pub fn audience_and_expiry(token: &str) -> Option<(String, u64)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        claims.get("aud")?.as_str()?.to_owned(),
        claims.get("exp")?.as_u64()?,
    ))
}

/// True when `exp` is in the future.
pub fn is_unexpired(exp: u64) -> bool {
    exp > now_unix()
}

/// A credential that mints simulator tokens in-process. The demo uses it, so `--demo` needs no
/// Azure login; tests use it to talk to Azurite directly.
#[derive(Debug, Clone)]
pub struct SimulatorCredential {
    subject: TokenSubject,
    graph_resource: String,
}

impl SimulatorCredential {
    /// A credential for `subject`, whose Graph tokens are for `graph_resource`.
    pub fn new(subject: TokenSubject, graph_resource: impl Into<String>) -> Self {
        Self {
            subject,
            graph_resource: graph_resource.into(),
        }
    }
}

#[async_trait]
impl TokenCredential for SimulatorCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "SimulatorCredential requires exactly one scope",
            ));
        };
        let (token, expires_on) = mint(
            &self.subject,
            resource_from_scope(scope),
            &self.graph_resource,
        );
        let expires_on = time::OffsetDateTime::from_unix_timestamp(expires_on as i64)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        Ok(AccessToken::new(token, expires_on))
    }
}
