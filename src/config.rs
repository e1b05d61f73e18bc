//! Runtime configuration: every endpoint and knob, read once from the environment.
//!
//! The Function App's app settings arrive as environment variables. Every endpoint (Graph,
//! results container) comes from here with a production default, so sovereign clouds and tests
//! need no special code paths. The token endpoint is read by `azure_identity` itself from
//! `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`.

use url::Url;

/// App setting: Microsoft Graph base URL (default `https://graph.microsoft.com`).
pub const GRAPH_ENDPOINT_VAR: &str = "MI_ASSESS_GRAPH_ENDPOINT";
/// App setting: the results container URL, `https://{account}.blob.core.windows.net/{container}`.
pub const RESULTS_URL_VAR: &str = "MI_ASSESS_RESULTS_URL";
/// App setting: client id of a user-assigned identity to run as (unset: system-assigned).
pub const IDENTITY_CLIENT_ID_VAR: &str = "MI_ASSESS_IDENTITY_CLIENT_ID";
/// App setting: extra group object ids to treat as privileged, comma-separated.
pub const PRIVILEGED_GROUPS_VAR: &str = "MI_ASSESS_PRIVILEGED_GROUPS";
/// App setting: `tracing` filter directives (default `info`).
pub const LOG_VAR: &str = "MI_ASSESS_LOG";
/// Set by the Functions host: the loopback port to listen on.
pub const HANDLER_PORT_VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// Production Graph endpoint.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The value is not a URL.
    #[error("{name} is not a valid URL ({value:?}): {source}")]
    InvalidUrl {
        /// Setting name.
        name: String,
        /// The offending value.
        value: String,
        /// Parser error.
        source: url::ParseError,
    },
    /// The URL is structurally wrong for its purpose.
    #[error("{name} is not usable ({value:?}): {reason}")]
    UnusableUrl {
        /// Setting name.
        name: String,
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A required setting is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A list entry is not a GUID.
    #[error("{name} must be a comma-separated list of object ids; {value:?} is not a GUID")]
    InvalidGuid {
        /// Setting name.
        name: &'static str,
        /// The offending entry.
        value: String,
    },
    /// The port is not a number.
    #[error("{HANDLER_PORT_VAR} is not a TCP port: {0:?}")]
    InvalidPort(String),
}

/// Everything the scanner needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Graph base URL without the version segment, e.g. `https://graph.microsoft.us`.
    pub graph_endpoint: Url,
    /// The results container, when results go to Blob Storage.
    pub results_url: Option<Url>,
    /// Client id of the user-assigned identity to authenticate as, if any.
    pub identity_client_id: Option<String>,
    /// Group object ids the organisation declares privileged.
    pub privileged_groups: Vec<String>,
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (the environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let graph_endpoint = parse_service_url(
            GRAPH_ENDPOINT_VAR,
            &non_empty(GRAPH_ENDPOINT_VAR).unwrap_or_else(|| DEFAULT_GRAPH_ENDPOINT.to_owned()),
        )?;
        let results_url = non_empty(RESULTS_URL_VAR)
            .map(|v| parse_results_url(RESULTS_URL_VAR, &v))
            .transpose()?;
        let privileged_groups = non_empty(PRIVILEGED_GROUPS_VAR)
            .map(|raw| parse_guid_list(PRIVILEGED_GROUPS_VAR, &raw))
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            graph_endpoint,
            results_url,
            identity_client_id: non_empty(IDENTITY_CLIENT_ID_VAR),
            privileged_groups,
        })
    }

    /// The OAuth scope for Graph in this cloud: `{graph endpoint}/.default`.
    pub fn graph_scope(&self) -> String {
        format!(
            "{}/.default",
            self.graph_endpoint.as_str().trim_end_matches('/')
        )
    }
}

/// Parses `a, b,c` into lower-case GUID strings.
pub fn parse_guid_list(name: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            uuid::Uuid::parse_str(s)
                .map(|u| u.to_string())
                .map_err(|_| ConfigError::InvalidGuid {
                    name,
                    value: s.to_owned(),
                })
        })
        .collect()
}

/// Reads `FUNCTIONS_CUSTOMHANDLER_PORT`.
pub fn handler_port() -> Result<u16, ConfigError> {
    let raw =
        std::env::var(HANDLER_PORT_VAR).map_err(|_| ConfigError::Missing(HANDLER_PORT_VAR))?;
    raw.trim()
        .parse()
        .map_err(|_| ConfigError::InvalidPort(raw))
}

/// True for hosts that never leave the machine, where plain http is acceptable.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a service base URL that a bearer token will be sent to: https, or http on loopback.
pub fn parse_service_url(name: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|source| ConfigError::InvalidUrl {
        name: name.to_owned(),
        value: value.to_owned(),
        source,
    })?;
    let unusable = |reason| ConfigError::UnusableUrl {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(unusable(
                "plain http is only allowed for loopback hosts; a token would travel unencrypted",
            ));
        }
        _ => return Err(unusable("the scheme must be https")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(unusable("the URL must not carry a query or fragment"));
    }
    if url.host().is_none() {
        return Err(unusable("the URL has no host"));
    }
    Ok(url)
}

/// Parses the results container URL: a service URL whose path names the container.
pub fn parse_results_url(name: &str, value: &str) -> Result<Url, ConfigError> {
    let mut url = parse_service_url(name, value)?;
    let trimmed = url.path().trim_end_matches('/').to_owned();
    if trimmed.is_empty() {
        return Err(ConfigError::UnusableUrl {
            name: name.to_owned(),
            value: value.to_owned(),
            reason: "the URL must name a container, e.g. https://account.blob.core.windows.net/results",
        });
    }
    url.set_path(&trimmed);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_production() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.graph_endpoint.as_str(), "https://graph.microsoft.com/");
        assert_eq!(s.graph_scope(), "https://graph.microsoft.com/.default");
        assert!(s.results_url.is_none());
        assert!(s.identity_client_id.is_none());
    }

    #[test]
    fn sovereign_graph_endpoint_changes_the_scope() {
        let s = settings(&[(GRAPH_ENDPOINT_VAR, "https://graph.microsoft.us")]).expect("valid");
        assert_eq!(s.graph_scope(), "https://graph.microsoft.us/.default");
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        assert!(settings(&[(GRAPH_ENDPOINT_VAR, "http://graph.example.com")]).is_err());
        assert!(settings(&[(GRAPH_ENDPOINT_VAR, "http://127.0.0.1:8080")]).is_ok());
    }

    #[test]
    fn privileged_groups_are_validated_guids() {
        let s = settings(&[(
            PRIVILEGED_GROUPS_VAR,
            " 0B1E6F7A-2C3D-4E5F-8A9B-1C2D3E4F5A01 ,, ",
        )])
        .expect("valid");
        assert_eq!(
            s.privileged_groups,
            vec!["0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01".to_owned()]
        );
        assert!(settings(&[(PRIVILEGED_GROUPS_VAR, "admins")]).is_err());
    }

    #[test]
    fn results_url_must_name_a_container() {
        assert!(settings(&[(RESULTS_URL_VAR, "https://acct.blob.core.windows.net/")]).is_err());
        let s = settings(&[(
            RESULTS_URL_VAR,
            "https://acct.blob.core.windows.net/results/",
        )])
        .expect("valid");
        assert_eq!(
            s.results_url.map(|u| u.to_string()).as_deref(),
            Some("https://acct.blob.core.windows.net/results")
        );
    }
}
