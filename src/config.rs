//! Runtime configuration: every endpoint and knob, read once from the environment.
//!
//! The Function App's app settings arrive as environment variables. Every endpoint (Graph, Azure
//! Resource Manager, results container) comes from here with a production default, so sovereign
//! clouds and tests need no special code paths. The token endpoint is read by `azure_identity` itself from
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
/// App setting: Azure Resource Manager base URL (default `https://management.azure.com`).
pub const ARM_ENDPOINT_VAR: &str = "MI_ASSESS_ARM_ENDPOINT";
/// App setting: whether the Azure plane is read, and whether missing access makes a run partial:
/// `required`, `optional` (default) or `off`.
pub const AZURE_PLANE_VAR: &str = "MI_ASSESS_AZURE_PLANE";
/// App setting: federated-credential issuers to trust, comma-separated (empty:
/// [`DEFAULT_FIC_ALLOWED_ISSUERS`]). The OIDC issuers of AKS clusters in the tenant are always
/// trusted.
pub const FIC_ALLOWED_ISSUERS_VAR: &str = "MI_ASSESS_FIC_ALLOWED_ISSUERS";
/// Set by the Functions host: the loopback port to listen on.
pub const HANDLER_PORT_VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// The largest Graph or ARM response body read, in MiB.
pub const MAX_RESPONSE_MB_VAR: &str = "MI_ASSESS_MAX_RESPONSE_MB";
/// The most pages one Graph or ARM listing follows.
pub const MAX_PAGES_VAR: &str = "MI_ASSESS_MAX_PAGES";
/// The longest validity of a client secret before SP-CRED-002 calls it long-lived, by
/// default: ScubaGear MS.AAD.5.6 sets 180 days for secrets.
pub const DEFAULT_MAX_SECRET_DAYS: u32 = 180;
/// The longest validity of a certificate before SP-CRED-002 calls it long-lived, by default.
pub const DEFAULT_MAX_CERTIFICATE_DAYS: u32 = 365;
/// Longest client-secret validity, in days, before it counts as long-lived (SP-CRED-002).
pub const MAX_SECRET_DAYS_VAR: &str = "MI_ASSESS_MAX_SECRET_DAYS";
/// Longest certificate validity, in days, before it counts as long-lived (SP-CRED-002).
pub const MAX_CERTIFICATE_DAYS_VAR: &str = "MI_ASSESS_MAX_CERTIFICATE_DAYS";
/// App setting: the Log Analytics workspace (its id, a GUID) whose logs show what each identity
/// used; unset: the usage plane is off.
pub const LOG_ANALYTICS_WORKSPACE_ID_VAR: &str = "MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID";
/// App setting: how many days of the workspace's logs the usage plane reads (default 30).
pub const USAGE_WINDOW_DAYS_VAR: &str = "MI_ASSESS_USAGE_WINDOW_DAYS";
/// App setting: the Log Analytics query API's base URL.
pub const LOG_ANALYTICS_ENDPOINT_VAR: &str = "MI_ASSESS_LOG_ANALYTICS_ENDPOINT";
/// The public cloud's Log Analytics query API.
pub const DEFAULT_LOG_ANALYTICS_ENDPOINT: &str = "https://api.loganalytics.azure.com";
/// The usage window by default.
pub const DEFAULT_USAGE_WINDOW_DAYS: u32 = 30;
/// The longest usage window: a workspace keeps logs interactive for at most two years.
pub const MAX_USAGE_WINDOW_DAYS: u32 = 730;
/// Longest acceptance in `suppressions.json`, in days from the run: an entry that expires later
/// is rejected (default 365).
pub const SUPPRESSION_MAX_DAYS_VAR: &str = "MI_ASSESS_SUPPRESSION_MAX_DAYS";
/// Longest acceptance in `suppressions.json` by default: a year, then it is renewed.
pub const DEFAULT_SUPPRESSION_MAX_DAYS: u32 = 365;
/// How long the single-identity endpoint may work, in seconds (at most 60).
pub const IDENTITY_TIMEOUT_VAR: &str = "MI_ASSESS_IDENTITY_TIMEOUT";
/// The single-identity endpoint's deadline by default, and its ceiling.
pub const MAX_IDENTITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest a run may take before it stops itself (`hh:mm:ss` or seconds).
pub const RUN_TIMEOUT_VAR: &str = "MI_ASSESS_RUN_TIMEOUT";
/// A run's deadline by default: two minutes under host.json's `functionTimeout` (30 minutes),
/// which leaves time to write the `failed` manifest and release the lock before the host
/// cancels the invocation.
pub const DEFAULT_RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(28 * 60);
/// Production Graph endpoint.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
/// Production Azure Resource Manager endpoint.
pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";
/// GitHub Actions' OIDC issuer.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// Amazon Cognito's OIDC issuer (AWS workloads), as Azure Policy's issuer-type policy names it.
pub const AWS_COGNITO_ISSUER: &str = "https://cognito-identity.amazonaws.com";
/// Google's OIDC issuer (GCP workloads), as Azure Policy's issuer-type policy names it.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Federated-credential issuers trusted when `MI_ASSESS_FIC_ALLOWED_ISSUERS` is empty: the
/// issuer types of Azure Policy's built-in initiative "Managed Identity Federated Credentials
/// should be of approved types from approved federation sources" (policy 2571b7c3-3056-4a61-
/// b00a-9bc5232234f5: GitHub, AWS, GCP by exact issuer; AKS by host, which the rules add for
/// this tenant's clusters).
pub const DEFAULT_FIC_ALLOWED_ISSUERS: [&str; 3] =
    [GITHUB_ACTIONS_ISSUER, AWS_COGNITO_ISSUER, GOOGLE_ISSUER];

/// One setting, as the documentation lists it (docs/configuration.md is generated from
/// [`settings`]; a test keeps them equal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDoc {
    /// The app setting (environment variable).
    pub name: &'static str,
    /// Its default, as Markdown.
    pub default: String,
    /// What it does, as Markdown.
    pub description: &'static str,
}

/// `value` as Markdown code.
fn code(value: &str) -> String {
    format!("`{value}`")
}

/// `hh:mm:ss`.
fn hms(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Every app setting mi-assess and its Functions host read, in the order the documentation
/// lists them, with defaults taken from the code.
pub fn settings() -> Vec<SettingDoc> {
    vec![
        SettingDoc {
            name: "MI_ASSESS_SCHEDULE",
            default: r#"`0 0 2 * * *`"#.to_owned(),
            description: r#"When `nightly-assessment` runs: a 6-field NCRONTAB expression (with seconds), UTC. Read by the Functions host, not by the handler."#,
        },
        SettingDoc {
            name: "MI_ASSESS_GRAPH_ENDPOINT",
            default: code(DEFAULT_GRAPH_ENDPOINT),
            description: r#"Microsoft Graph base URL. Use `https://graph.microsoft.us` (US Gov L4), `https://dod-graph.microsoft.us` (US Gov L5, DoD) or `https://microsoftgraph.chinacloudapi.cn` (China, 21Vianet). The token scope follows it (`{endpoint}/.default`)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_ARM_ENDPOINT",
            default: code(DEFAULT_ARM_ENDPOINT),
            description: r#"Azure Resource Manager base URL for the Azure plane. Use `https://management.usgovcloudapi.net` (US Gov) or `https://management.chinacloudapi.cn` (China, 21Vianet). The token scope follows it (`{endpoint}/.default`)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_AZURE_PLANE",
            default: code(AzurePlaneMode::default().as_str()),
            description: r#"`required`: ARM access is expected, so a run without it is `partial`. `optional`: read the Azure plane when the scanner has access; without access the run stays `complete` and the manifest lists the Azure plane under `skipped`. `off`: never call ARM. See [azure-plane.md](azure-plane.md#without-arm-access-and-when-the-run-is-partial)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_RESULTS_URL",
            default:
                r#"none (required by `serve`; the Bicep sets the deployment's results container)"#
                    .to_owned(),
            description: r#"The results container, e.g. `https://<account>.blob.core.windows.net/results`; the URL must name the container. `assess` writes there too when it is set and `--out` is not given."#,
        },
        SettingDoc {
            name: "MI_ASSESS_IDENTITY_CLIENT_ID",
            default: r#"empty: the system-assigned identity"#.to_owned(),
            description: r#"Client id of a user-assigned identity to run as. The Bicep takes it from `userAssignedIdentityResourceId`."#,
        },
        SettingDoc {
            name: "MI_ASSESS_PRIVILEGED_GROUPS",
            default: r#"empty"#.to_owned(),
            description: r#"Comma-separated object ids of extra groups whose members count as privileged."#,
        },
        SettingDoc {
            name: "MI_ASSESS_FIC_ALLOWED_ISSUERS",
            default: format!(
                "empty: {}",
                DEFAULT_FIC_ALLOWED_ISSUERS.map(code).join(", ")
            ),
            description: r#"Federated-credential issuers to trust, comma-separated https URLs. The defaults are the issuer types of Azure Policy's built-in initiative for federated credentials (GitHub, AWS, GCP; AKS by host); a value replaces them. The OIDC issuers of AKS clusters in the tenant (`*.oic.prod-aks.azure.com/{this tenant}/…`) are always trusted. Well-known SaaS issuers (Terraform Cloud, GitLab, CircleCI, Azure DevOps) are not trusted by default; on an identity that is not privileged they are `medium`."#,
        },
        SettingDoc {
            name: "MI_ASSESS_LOG",
            default: r#"`info`"#.to_owned(),
            description: r#"`tracing` filter, e.g. `info,mi_assess=debug`."#,
        },
        SettingDoc {
            name: "MI_ASSESS_RUN_TIMEOUT",
            default: code(&hms(DEFAULT_RUN_TIMEOUT)),
            description: r#"A run's deadline, as `hh:mm:ss` or seconds; keep it under host.json's `functionTimeout` (30 minutes). Past it the run stops, writes a `failed` manifest with `failureReason: deadline` and releases the tenant lock."#,
        },
        SettingDoc {
            name: "MI_ASSESS_IDENTITY_TIMEOUT",
            default: code(&MAX_IDENTITY_TIMEOUT.as_secs().to_string()),
            description: r#"Seconds `GET /api/identities/{objectId}` may work before it answers `504 IdentityDeadline` (at most 60)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_MAX_RESPONSE_MB",
            default: code(
                &(crate::http::Limits::default().max_response_bytes / (1024 * 1024)).to_string(),
            ),
            description: r#"The largest Graph or ARM response body read, in MiB, checked as it streams in."#,
        },
        SettingDoc {
            name: "MI_ASSESS_MAX_PAGES",
            default: code(&crate::http::Limits::default().max_pages.to_string()),
            description: r#"The most pages one Graph or ARM listing follows; a `nextLink` that repeats a page already read ends the listing at once. Either is an error, never a short list."#,
        },
        SettingDoc {
            name: "MI_ASSESS_MAX_SECRET_DAYS",
            default: code(&DEFAULT_MAX_SECRET_DAYS.to_string()),
            description: r#"Longest client-secret validity, in days, before `SP-CRED-002` calls it long-lived (ScubaGear MS.AAD.5.6)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_MAX_CERTIFICATE_DAYS",
            default: code(&DEFAULT_MAX_CERTIFICATE_DAYS.to_string()),
            description: r#"Longest certificate validity, in days, before `SP-CRED-002` calls it long-lived."#,
        },
        SettingDoc {
            name: "MI_ASSESS_SUPPRESSION_MAX_DAYS",
            default: code(&DEFAULT_SUPPRESSION_MAX_DAYS.to_string()),
            description: r#"Longest acceptance in `suppressions.json`, in days from the run: an entry that expires later is skipped and reported."#,
        },
        SettingDoc {
            name: "MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID",
            default: r#"empty: the usage plane is off"#.to_owned(),
            description: r#"The Log Analytics workspace (its workspace id, a GUID) where Microsoft Entra ID sends `ManagedIdentitySignInLogs` and `MicrosoftGraphActivityLogs`, and Azure its activity log: the usage plane reads what each identity used there (`MI-USE-*` rules, identity records' `usage`). The scanner needs Log Analytics Reader on it (the Bicep's `logAnalyticsWorkspaceResourceId` grants it). See [usage.md](usage.md)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_USAGE_WINDOW_DAYS",
            default: code(&DEFAULT_USAGE_WINDOW_DAYS.to_string()),
            description: r#"Days of logs the usage plane reads, at most 730 (and what is older than the workspace keeps is simply not there)."#,
        },
        SettingDoc {
            name: "MI_ASSESS_LOG_ANALYTICS_ENDPOINT",
            default: code(DEFAULT_LOG_ANALYTICS_ENDPOINT),
            description: r#"The Log Analytics query API. Use `https://api.loganalytics.us` (US Government) or `https://api.loganalytics.azure.cn` (China). The token audience is `https://api.loganalytics.io` for the default endpoint, `{endpoint}` otherwise."#,
        },
    ]
}

/// The settings as the Markdown table of docs/configuration.md (`mi-assess settings --markdown`).
pub fn settings_markdown() -> String {
    let mut out = String::from("| Setting | Default | What it does |\n|---|---|---|\n");
    for s in settings() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            s.name, s.default, s.description
        ));
    }
    out
}

/// Where the usage plane reads: a Log Analytics workspace, over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSettings {
    /// The workspace id (a GUID: the workspace's customer id, not its ARM id).
    pub workspace_id: String,
    /// Days of logs to read.
    pub window_days: u32,
    /// The query API's base URL.
    pub endpoint: Url,
}

impl UsageSettings {
    /// The query API's token scope: `https://api.loganalytics.io/.default` for the public
    /// cloud (whose `.azure.com` endpoint takes that audience), `{endpoint}/.default` elsewhere.
    pub fn scope(&self) -> String {
        let base = self.endpoint.as_str().trim_end_matches('/');
        if base.eq_ignore_ascii_case(DEFAULT_LOG_ANALYTICS_ENDPOINT) {
            "https://api.loganalytics.io/.default".to_owned()
        } else {
            format!("{base}/.default")
        }
    }
}

/// Whether the Azure plane (Azure RBAC, user-assigned identities, federated credentials) is read,
/// and what missing access means for the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AzurePlaneMode {
    /// Read it; ARM access is expected, so missing access makes the run `partial`.
    Required,
    /// Read it when the scanner has access; without access the run stays `complete` and the
    /// manifest lists the Azure plane under `skipped` (the default: the management-group Reader
    /// assignment is an optional deployment step).
    #[default]
    Optional,
    /// Do not call ARM at all; the Azure data is unknown and the manifest says why.
    Off,
}

impl AzurePlaneMode {
    /// The setting's value: `required`, `optional` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::Off => "off",
        }
    }
}

impl std::str::FromStr for AzurePlaneMode {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "required" => Ok(Self::Required),
            "optional" | "" => Ok(Self::Optional),
            "off" => Ok(Self::Off),
            _ => Err(ConfigError::InvalidChoice {
                name: AZURE_PLANE_VAR,
                value: value.to_owned(),
                allowed: "required, optional or off",
            }),
        }
    }
}

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
    /// A count setting is not a whole number above zero.
    #[error("{name} must be a whole number above zero; {value:?} is not")]
    InvalidNumber {
        /// Setting name.
        name: &'static str,
        /// The offending value.
        value: String,
    },
    /// A duration setting is not `hh:mm:ss` or a number of seconds, or is zero.
    #[error("{name} must be a duration as hh:mm:ss or seconds, above zero; {value:?} is not")]
    InvalidDuration {
        /// Setting name.
        name: &'static str,
        /// The offending value.
        value: String,
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
    /// A setting with a fixed set of values has another one.
    #[error("{name} must be {allowed}, not {value:?}")]
    InvalidChoice {
        /// Setting name.
        name: &'static str,
        /// The offending value.
        value: String,
        /// The values it may take.
        allowed: &'static str,
    },
    /// A list entry is not an https URL (or an http URL on loopback).
    #[error("{name} must be a comma-separated list of issuer URLs; {value:?} is not one")]
    InvalidIssuer {
        /// Setting name.
        name: &'static str,
        /// The offending entry.
        value: String,
    },
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
    /// Azure Resource Manager base URL, e.g. `https://management.usgovcloudapi.net`.
    pub arm_endpoint: Url,
    /// Whether and how the Azure plane is read.
    pub azure_plane: AzurePlaneMode,
    /// Trusted federated-credential issuers (the configured list, or the defaults).
    pub fic_allowed_issuers: Vec<String>,
    /// Longest client-secret validity, in days, before it counts as long-lived.
    pub max_secret_days: u32,
    /// Longest certificate validity, in days, before it counts as long-lived.
    pub max_certificate_days: u32,
    /// Longest acceptance in `suppressions.json`, in days from the run.
    pub suppression_max_days: u32,
    /// The usage plane's workspace, when one is configured.
    pub usage: Option<UsageSettings>,
    /// How long a run may take before it stops itself.
    pub run_timeout: std::time::Duration,
    /// How long the single-identity endpoint may work before it answers 504.
    pub identity_timeout: std::time::Duration,
    /// What one response or listing may cost at most.
    pub limits: crate::http::Limits,
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
        let arm_endpoint = parse_service_url(
            ARM_ENDPOINT_VAR,
            &non_empty(ARM_ENDPOINT_VAR).unwrap_or_else(|| DEFAULT_ARM_ENDPOINT.to_owned()),
        )?;
        let azure_plane = non_empty(AZURE_PLANE_VAR)
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or_default();
        let days =
            |name: &'static str, default: u32| -> Result<u32, ConfigError> {
                match non_empty(name) {
                    None => Ok(default),
                    Some(raw) => parse_positive(name, &raw)?.try_into().map_err(|_| {
                        ConfigError::InvalidNumber {
                            name,
                            value: raw.clone(),
                        }
                    }),
                }
            };
        let fic_allowed_issuers = match non_empty(FIC_ALLOWED_ISSUERS_VAR) {
            Some(raw) => parse_issuer_list(FIC_ALLOWED_ISSUERS_VAR, &raw)?,
            None => Vec::new(),
        };
        let fic_allowed_issuers = if fic_allowed_issuers.is_empty() {
            DEFAULT_FIC_ALLOWED_ISSUERS.map(str::to_owned).to_vec()
        } else {
            fic_allowed_issuers
        };
        Ok(Self {
            graph_endpoint,
            results_url,
            identity_client_id: non_empty(IDENTITY_CLIENT_ID_VAR),
            privileged_groups,
            arm_endpoint,
            azure_plane,
            fic_allowed_issuers,
            max_secret_days: days(MAX_SECRET_DAYS_VAR, DEFAULT_MAX_SECRET_DAYS)?,
            max_certificate_days: days(MAX_CERTIFICATE_DAYS_VAR, DEFAULT_MAX_CERTIFICATE_DAYS)?,
            suppression_max_days: days(SUPPRESSION_MAX_DAYS_VAR, DEFAULT_SUPPRESSION_MAX_DAYS)?,
            usage: match non_empty(LOG_ANALYTICS_WORKSPACE_ID_VAR) {
                None => None,
                Some(workspace) => {
                    let workspace_id = uuid::Uuid::parse_str(&workspace)
                        .map_err(|_| ConfigError::InvalidGuid {
                            name: LOG_ANALYTICS_WORKSPACE_ID_VAR,
                            value: workspace.clone(),
                        })?
                        .to_string();
                    let window_days = days(USAGE_WINDOW_DAYS_VAR, DEFAULT_USAGE_WINDOW_DAYS)?;
                    if window_days > MAX_USAGE_WINDOW_DAYS {
                        return Err(ConfigError::InvalidChoice {
                            name: USAGE_WINDOW_DAYS_VAR,
                            value: window_days.to_string(),
                            allowed: "at most 730 days (the longest interactive retention)",
                        });
                    }
                    Some(UsageSettings {
                        workspace_id,
                        window_days,
                        endpoint: parse_service_url(
                            LOG_ANALYTICS_ENDPOINT_VAR,
                            &non_empty(LOG_ANALYTICS_ENDPOINT_VAR)
                                .unwrap_or_else(|| DEFAULT_LOG_ANALYTICS_ENDPOINT.to_owned()),
                        )?,
                    })
                }
            },
            limits: {
                let defaults = crate::http::Limits::default();
                crate::http::Limits {
                    max_response_bytes: non_empty(MAX_RESPONSE_MB_VAR)
                        .map(|v| parse_positive(MAX_RESPONSE_MB_VAR, &v))
                        .transpose()?
                        .map_or(defaults.max_response_bytes, |mb| {
                            mb.saturating_mul(1024 * 1024)
                        }),
                    max_pages: non_empty(MAX_PAGES_VAR)
                        .map(|v| parse_positive(MAX_PAGES_VAR, &v))
                        .transpose()?
                        .unwrap_or(defaults.max_pages),
                }
            },
            identity_timeout: non_empty(IDENTITY_TIMEOUT_VAR)
                .map(|v| parse_duration(IDENTITY_TIMEOUT_VAR, &v))
                .transpose()?
                .map_or(MAX_IDENTITY_TIMEOUT, |d| d.min(MAX_IDENTITY_TIMEOUT)),
            run_timeout: non_empty(RUN_TIMEOUT_VAR)
                .map(|v| parse_duration(RUN_TIMEOUT_VAR, &v))
                .transpose()?
                .unwrap_or(DEFAULT_RUN_TIMEOUT),
        })
    }

    /// The OAuth scope for Graph in this cloud: `{graph endpoint}/.default`.
    pub fn graph_scope(&self) -> String {
        format!(
            "{}/.default",
            self.graph_endpoint.as_str().trim_end_matches('/')
        )
    }

    /// The OAuth scope for Azure Resource Manager in this cloud: `{arm endpoint}/.default`.
    pub fn arm_scope(&self) -> String {
        format!(
            "{}/.default",
            self.arm_endpoint.as_str().trim_end_matches('/')
        )
    }
}

/// Parses a whole number above zero.
pub fn parse_positive(name: &'static str, raw: &str) -> Result<usize, ConfigError> {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ConfigError::InvalidNumber {
            name,
            value: raw.trim().to_owned(),
        })
}

/// Parses a duration given as `hh:mm:ss` (host.json's format) or whole seconds; zero is refused.
pub fn parse_duration(name: &'static str, raw: &str) -> Result<std::time::Duration, ConfigError> {
    let raw = raw.trim();
    let parsed = if raw.contains(':') {
        crate::http::parse_hms(raw)
    } else {
        raw.parse::<u64>().ok().map(std::time::Duration::from_secs)
    };
    parsed
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConfigError::InvalidDuration {
            name,
            value: raw.to_owned(),
        })
}

/// Parses `https://a, https://b/` into issuer URLs without a trailing slash. Each must be an
/// https URL (http only on loopback, for tests).
pub fn parse_issuer_list(name: &'static str, raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let invalid = || ConfigError::InvalidIssuer {
                name,
                value: s.to_owned(),
            };
            let url = Url::parse(s).map_err(|_| invalid())?;
            let secure = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
            if !secure || url.host().is_none() {
                return Err(invalid());
            }
            Ok(s.trim_end_matches('/').to_owned())
        })
        .collect()
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
        value: redacted(value),
        source,
    })?;
    let unusable = |reason| ConfigError::UnusableUrl {
        name: name.to_owned(),
        value: redacted(value),
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

/// A URL as errors and logs may show it: without its query and fragment, where a SAS
/// signature (`sig=`) or any other secret would travel.
pub fn redacted(value: &str) -> String {
    match value.find(['?', '#']) {
        Some(at) => format!("{}?<redacted>", &value[..at]),
        None => value.to_owned(),
    }
}

/// Parses the results container URL: a service URL whose path names the container.
pub fn parse_results_url(name: &str, value: &str) -> Result<Url, ConfigError> {
    let mut url = parse_service_url(name, value)?;
    let trimmed = url.path().trim_end_matches('/').to_owned();
    if trimmed.is_empty() {
        return Err(ConfigError::UnusableUrl {
            name: name.to_owned(),
            value: redacted(value),
            reason: "the URL must name a container, e.g. https://account.blob.core.windows.net/results",
        });
    }
    url.set_path(&trimmed);
    Ok(url)
}

#[cfg(test)]
mod tests {

    /// docs/configuration.md's settings table is generated from [`settings`], and every
    /// `MI_ASSESS_*` name the configuration reads is in it.
    #[test]
    fn the_documented_settings_are_the_code_settings() {
        let docs = include_str!("../docs/configuration.md");
        let begin = "<!-- settings-table:begin -->\n";
        let end = "<!-- settings-table:end -->";
        let start = docs.find(begin).expect("begin marker") + begin.len();
        let stop = docs.find(end).expect("end marker");
        assert!(
            docs[start..stop] == settings_markdown(),
            "docs/configuration.md's settings table is stale: replace it with `cargo run -- settings --markdown`"
        );
        let listed: Vec<&str> = super::settings().iter().map(|s| s.name).collect();
        let source = include_str!("config.rs");
        for literal in source.split('"').filter(|t| {
            t.len() > "MI_ASSESS_".len()
                && t.starts_with("MI_ASSESS_")
                && t.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        }) {
            assert!(
                listed.contains(&literal),
                "{literal} is read but not documented"
            );
        }
    }

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
        assert_eq!(s.arm_endpoint.as_str(), "https://management.azure.com/");
        assert_eq!(s.arm_scope(), "https://management.azure.com/.default");
        assert_eq!(s.azure_plane, AzurePlaneMode::Optional);
        assert_eq!(
            s.fic_allowed_issuers,
            vec![
                "https://token.actions.githubusercontent.com".to_owned(),
                "https://cognito-identity.amazonaws.com".to_owned(),
                "https://accounts.google.com".to_owned()
            ]
        );
    }

    #[test]
    fn sovereign_arm_endpoint_changes_the_arm_scope() {
        let s = settings(&[(ARM_ENDPOINT_VAR, "https://management.usgovcloudapi.net/")])
            .expect("valid");
        assert_eq!(
            s.arm_scope(),
            "https://management.usgovcloudapi.net/.default"
        );
        assert!(settings(&[(ARM_ENDPOINT_VAR, "http://management.example.com")]).is_err());
        assert!(settings(&[(ARM_ENDPOINT_VAR, "http://127.0.0.1:9000")]).is_ok());
    }

    #[test]
    fn azure_plane_mode_is_one_of_three() {
        for (raw, mode) in [
            ("required", AzurePlaneMode::Required),
            (" Optional ", AzurePlaneMode::Optional),
            ("OFF", AzurePlaneMode::Off),
        ] {
            assert_eq!(
                settings(&[(AZURE_PLANE_VAR, raw)])
                    .expect("valid")
                    .azure_plane,
                mode
            );
        }
        let err = settings(&[(AZURE_PLANE_VAR, "sometimes")]).expect_err("invalid");
        assert!(
            err.to_string().contains("required, optional or off"),
            "{err}"
        );
    }

    #[test]
    fn credential_lifetimes_default_to_the_baseline_and_must_be_whole_days() {
        let s = settings(&[]).expect("valid");
        assert_eq!((s.max_secret_days, s.max_certificate_days), (180, 365));
        let s = settings(&[
            (MAX_SECRET_DAYS_VAR, "90"),
            (MAX_CERTIFICATE_DAYS_VAR, "730"),
        ])
        .expect("valid");
        assert_eq!((s.max_secret_days, s.max_certificate_days), (90, 730));
        for bad in ["0", "-5", "half a year", "99999999999"] {
            assert!(settings(&[(MAX_SECRET_DAYS_VAR, bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn fic_allowed_issuers_replace_the_defaults_and_are_urls() {
        let s = settings(&[(
            FIC_ALLOWED_ISSUERS_VAR,
            " https://gitlab.example.com/ ,, https://token.actions.githubusercontent.com",
        )])
        .expect("valid");
        assert_eq!(
            s.fic_allowed_issuers,
            vec![
                "https://gitlab.example.com".to_owned(),
                "https://token.actions.githubusercontent.com".to_owned()
            ]
        );
        assert!(settings(&[(FIC_ALLOWED_ISSUERS_VAR, "gitlab.example.com")]).is_err());
        assert!(settings(&[(FIC_ALLOWED_ISSUERS_VAR, "http://gitlab.example.com")]).is_err());
        let blank = settings(&[(FIC_ALLOWED_ISSUERS_VAR, " , ")]).expect("valid");
        assert_eq!(
            blank.fic_allowed_issuers.len(),
            3,
            "blank means the defaults"
        );
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
