//! The shared vocabulary every layer speaks: severities, the kinds of subject and identity, how a
//! role or credential is held, and the suppression a finding carries. A leaf: it imports no
//! other module of the crate.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; no action required.
    Info,
    /// Hygiene.
    Low,
    /// Fix in the normal course of work.
    Medium,
    /// Fix soon: a significant privilege or exposure.
    High,
    /// Fix now: a path to tenant takeover.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// System-assigned identities live and die with their resource; user-assigned ones are
/// standalone resources that can outlive everything that uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentityKind {
    /// Created with, and deleted with, one Azure resource.
    SystemAssigned,
    /// A standalone `Microsoft.ManagedIdentity/userAssignedIdentities` resource.
    UserAssigned,
}

impl IdentityKind {
    /// The wire name (`systemAssigned` / `userAssigned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemAssigned => "systemAssigned",
            Self::UserAssigned => "userAssigned",
        }
    }
}

/// What kind of principal a view describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubjectKind {
    /// A system-assigned managed identity.
    SystemAssigned,
    /// A user-assigned managed identity.
    UserAssigned,
    /// An application service principal (not a managed identity).
    ServicePrincipal,
}

impl SubjectKind {
    /// The wire name (`systemAssigned`, `userAssigned` or `servicePrincipal`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemAssigned => "systemAssigned",
            Self::UserAssigned => "userAssigned",
            Self::ServicePrincipal => "servicePrincipal",
        }
    }
}

impl From<IdentityKind> for SubjectKind {
    fn from(kind: IdentityKind) -> Self {
        match kind {
            IdentityKind::SystemAssigned => Self::SystemAssigned,
            IdentityKind::UserAssigned => Self::UserAssigned,
        }
    }
}

/// How a directory role is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoleState {
    /// Active now (permanent or activated through PIM).
    Active,
    /// Eligible through PIM; can be activated.
    Eligible,
}

/// Where a credential lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialHome {
    /// On the application registration.
    Application,
    /// On the service principal object itself.
    ServicePrincipal,
}

/// The suppression recorded on a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedSuppression {
    /// Why the risk is accepted.
    pub reason: String,
    /// When the acceptance ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Who accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// What the entry covers: one finding, a rule for one identity, for identities whose
    /// name matches a glob, or for every identity (absent from records before finding 1.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<SuppressionScope>,
}

/// What an entry of `suppressions.json` covers, from the fields it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SuppressionScope {
    /// One finding (`findingId`).
    Finding,
    /// A rule for one identity (`ruleId` and `identityId`).
    Identity,
    /// A rule for the identities whose display name matches a glob (`ruleId` and `displayName`).
    DisplayName,
    /// A rule for every identity (`ruleId` alone).
    Rule,
}

impl SuppressionScope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finding => "finding",
            Self::Identity => "identity",
            Self::DisplayName => "displayName",
            Self::Rule => "rule",
        }
    }
}

/// What kind of secret a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// A client secret (`passwordCredentials`).
    Password,
    /// A certificate (`keyCredentials`).
    Certificate,
}

/// A point in time as a service wrote it, parsed once where it is read. It serialises as the
/// original text, so records and replays keep Graph's exact spelling; [`Timestamp::value`] is
/// `None` when the text is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    text: String,
    value: Option<OffsetDateTime>,
}

impl Timestamp {
    /// Parses `text` as RFC 3339, keeping the text whatever the outcome.
    pub fn parse(text: impl Into<String>) -> Self {
        let text = text.into();
        let value = OffsetDateTime::parse(&text, &Rfc3339).ok();
        Self { text, value }
    }

    /// The instant, when the text is valid RFC 3339.
    pub fn value(&self) -> Option<OffsetDateTime> {
        self.value
    }

    /// The text as it was read.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<&str> for Timestamp {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::parse)
    }
}

/// A Graph call as the `az rest` command that makes it (remediation text). The URL is
/// single-quoted: Graph paths such as `…/members/{id}/$ref` hold a `$` that bash, zsh and
/// PowerShell would expand inside double quotes.
pub fn az_rest(method: &str, graph: &str, path: &str) -> String {
    format!(
        "az rest --method {method} --url {}",
        shell_quote(&format!("{graph}/v1.0{path}"))
    )
}

/// A value single-quoted for bash and zsh: nothing inside expands; a `'` becomes `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}
