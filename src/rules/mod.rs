//! The rule catalogue: stable ids, severities, rationale, remediation, and the pure checks.
//!
//! A rule is a declared unit ([`Rule`]) whose `check` reads a resolved [`TenantView`] and
//! returns findings. Rule ids are an API: never renumber or reuse one. Each finding has a
//! `findingId` that is stable across runs: a UUIDv5 of the rule id, the subject and an
//! evidence key (for example the permission or role it is about).

mod azure;
pub mod commands;
mod credentials;
mod paths;
mod privileges;
mod scanner;
mod suppression;
mod usage;

use serde::{Deserialize, Serialize};

use crate::classification::Tier;
use crate::model::{AppliedSuppression, Severity, SubjectKind};
use crate::resolve::TenantView;
use crate::resolve::principals::PrincipalView;

/// Version of the finding record format.
pub const FINDING_SCHEMA_VERSION: &str = "1.2.0";

/// Namespace of finding ids (UUIDv5).
const FINDING_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6d69_2d61_7373_6573_735f_6669_6e64_696e);

/// One finding: a rule that fired for one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Format version of this record.
    pub schema_version: String,
    /// Stable across runs for the same rule, subject and evidence key.
    pub finding_id: String,
    /// The rule that fired.
    pub rule_id: String,
    /// Severity of this occurrence.
    pub severity: Severity,
    /// One line naming the subject and the problem.
    pub title: String,
    /// Object id of the subject (managed identity or service principal).
    pub identity_id: String,
    /// Display name of the subject.
    pub identity_name: String,
    /// `systemAssigned`, `userAssigned` or `servicePrincipal`.
    pub identity_kind: SubjectKind,
    /// The subject's overall tier, if it holds any privilege.
    pub tier: Option<Tier>,
    /// Structured evidence; its shape is per rule (see docs/rules.md).
    pub evidence: serde_json::Value,
    /// What to do, with the exact call.
    pub remediation: String,
    /// The complete commands of `remediation`, each with the shell it pastes into unchanged
    /// ([`commands::commands_in`]); empty when the remediation gives none.
    #[serde(default)]
    pub remediation_commands: Vec<commands::RemediationCommand>,
    /// True when an active entry of suppressions.json accepts this risk.
    #[serde(default)]
    pub suppressed: bool,
    /// The accepted-risk entry, when suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<AppliedSuppression>,
}

/// What a rule reports about, which decides when a run calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The subjects in the view's `identities` and `service_principals`: the rule runs once per
    /// chunk of subjects, and once more in the tenant pass, whose view holds no subject; there it
    /// reports only about stand-ins no chunk holds (a user-assigned identity whose service
    /// principal Graph did not return). Together the calls cover every subject once.
    Subjects,
    /// The tenant as a whole (the scanner, suppressions.json, Azure role assignments of deleted
    /// principals): the rule runs only in the tenant pass and looks subjects up with
    /// [`TenantView::subject`].
    Tenant,
}

/// A rule in the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable id, e.g. `MI-GRAPH-001`.
    pub id: &'static str,
    /// One-line summary.
    pub title: &'static str,
    /// What it applies to.
    pub applies_to: &'static str,
    /// The severities it can emit, and when.
    pub severity: &'static str,
    /// The severities it can emit, as values: every finding's severity is one of them.
    pub severities: &'static [Severity],
    /// Why it matters.
    pub rationale: &'static str,
    /// How to fix it (each finding carries the exact call).
    pub remediation: &'static str,
    /// Sources.
    pub references: &'static [&'static str],
    /// What the check reports about, which decides how a run calls it.
    pub scope: Scope,
    /// Set when the rule no longer fires: what replaced it. Its id stays in the catalogue and is
    /// never reused.
    pub retired: Option<&'static str>,
    /// The check.
    pub check: fn(&TenantView<'_>) -> Vec<Finding>,
}

impl Rule {
    /// Builds a finding of this rule about `subject`. `key` distinguishes several findings of
    /// the same rule on the same subject (e.g. the permission id) and feeds the finding id.
    pub fn finding(
        &self,
        severity: Severity,
        subject: &PrincipalView,
        key: &str,
        title: String,
        evidence: serde_json::Value,
        remediation: String,
    ) -> Finding {
        debug_assert!(
            self.severities.contains(&severity),
            "{} emitted {severity:?}, which it does not declare",
            self.id
        );
        let id_source = format!(
            "{}|{}|{}",
            self.id,
            subject.id.to_ascii_lowercase(),
            key.to_ascii_lowercase()
        );
        Finding {
            schema_version: FINDING_SCHEMA_VERSION.to_owned(),
            finding_id: uuid::Uuid::new_v5(&FINDING_NAMESPACE, id_source.as_bytes()).to_string(),
            rule_id: self.id.to_owned(),
            severity,
            title,
            identity_id: subject.id.clone(),
            identity_name: subject.display_name.clone(),
            identity_kind: subject.kind,
            tier: subject.tier(),
            evidence,
            remediation_commands: commands::commands_in(&remediation),
            remediation,
            suppressed: false,
            suppression: None,
        }
    }
}

/// Every rule, in catalogue order.
pub const RULES: &[Rule] = &[
    privileges::CONTROL_PLANE_PERMISSION,
    privileges::TENANT_WIDE_DATA,
    privileges::DIRECTORY_ROLE,
    privileges::PRIVILEGED_GROUP,
    privileges::PRIVILEGE_THROUGH_GROUP,
    privileges::DELEGATED_GRANTS,
    privileges::DISABLED_BUT_PRIVILEGED,
    credentials::MOVE_TO_MANAGED_IDENTITY,
    credentials::CREDENTIAL_HYGIENE,
    scanner::SCANNER_SELF_CHECK,
    suppression::EXPIRED_SUPPRESSION,
    azure::PRIVILEGED_RBAC_AT_HIGH_SCOPE,
    azure::CUSTOM_ROLE_GRANTS_ACCESS,
    azure::CONTROL_OVER_PRIVILEGED_IDENTITY,
    azure::UNUSED_USER_ASSIGNED_IDENTITY,
    azure::STALE_MANAGED_IDENTITY,
    azure::ORPHANED_ROLE_ASSIGNMENT,
    azure::FEDERATED_CREDENTIAL_INVENTORY,
    azure::UNTRUSTED_ISSUER,
    azure::SELF_HOSTED_ISSUER,
    azure::BROAD_GITHUB_SUBJECT,
    paths::PATH_TO_TIER0,
    paths::WHO_CAN_BECOME,
    paths::CROSS_TENANT_CONTROL,
    paths::BROAD_WRITE_ROLE,
    paths::OWNS_MORE_PRIVILEGED,
    usage::UNUSED_PERMISSION,
    usage::NARROWER_PERMISSION,
    usage::AZURE_ROLE_BROADER_THAN_USE,
    usage::DORMANT_PRIVILEGED_IDENTITY,
];

/// Looks a rule up by id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Runs the rules a view calls for, in catalogue order: every rule in the tenant pass, the
/// subject-scoped ones for a chunk (suppressions are applied by the caller,
/// [`crate::assess::Assessor`]).
pub fn evaluate(view: &TenantView<'_>) -> Vec<Finding> {
    RULES
        .iter()
        .filter(|rule| rule.retired.is_none())
        .filter(|rule| rule.scope == Scope::Subjects || view.is_tenant_pass())
        .flat_map(|rule| (rule.check)(view))
        .collect()
}

/// A severity calibration: what a rule emitted before, what it emits now, and why.
#[derive(Debug)]
pub struct Calibration {
    /// The rule.
    pub rule_id: &'static str,
    /// The case and its severity before.
    pub before: &'static str,
    /// The same case now.
    pub after: &'static str,
    /// The source the new severity follows.
    pub source: &'static str,
}

/// Every severity calibration, in the order they were made (docs/rules.md lists them).
pub const CALIBRATIONS: &[Calibration] = &[
    Calibration {
        rule_id: "SP-CRED-001",
        before: "medium (\"authenticates with 1 credential\") for a service principal whose only credential has expired",
        after: "low, \"holds only expired credentials: it cannot authenticate\", remediation: remove the dead credentials; the title counts live credentials only",
        source: "An expired password or key credential cannot be redeemed for a token (Microsoft identity platform: application credentials); ScubaGear MS.AAD.5.6 treats it as hygiene",
    },
    Calibration {
        rule_id: "SP-CRED-002",
        before: "medium above 365 days for secrets and certificates alike",
        after: "medium above 180 days for a client secret and above 365 days for a certificate, both configurable (MI_ASSESS_MAX_SECRET_DAYS, MI_ASSESS_MAX_CERTIFICATE_DAYS); an expired credential of a principal with no live one is left to SP-CRED-001",
        source: "ScubaGear MS.AAD.5.6 (the baseline the rule cites) and the rule's own remediation: 180 days for secrets; Entra app management policies restrict passwordLifetime and asymmetricKeyLifetime separately",
    },
    Calibration {
        rule_id: "SELF-001",
        before: "high for any excess that is not ControlPlane, including a read-only one such as AuditLog.Read.All",
        after: "follows the most privileged excess: critical ControlPlane; high ManagementPlane that writes (or a directory role); medium ManagementPlane read-only; low UserAccess only",
        source: "The Enterprise Access Model tiers of data/classification (AuditLog.Read.All is ManagementPlane); read access is a step below write access of the same tier, as in EntraOps' tiering of read and write permissions",
    },
    Calibration {
        rule_id: "MI-GRANT-001",
        before: "medium",
        after: "low: inert hygiene",
        source: "Delegated permissions act only in a signed-in user's context (learn.microsoft.com/entra/identity-platform/permissions-consent-overview); a managed identity has no user sign-in, so a delegated grant on it cannot be exercised",
    },
    Calibration {
        rule_id: "MI-FIC-002",
        before: "high for any issuer outside the allowlist, whatever the identity's tier; default allowlist GitHub Actions and Terraform Cloud (plus the tenant's AKS clusters)",
        after: "critical for an unknown issuer (or another tenant's AKS cluster) on a ControlPlane identity; high for a well-known SaaS issuer (Terraform Cloud, GitLab, CircleCI, Azure DevOps) on a ControlPlane identity and for any ManagementPlane identity; medium for an identity that is not privileged. Default allowlist: GitHub Actions, AWS (Cognito), GCP (accounts.google.com), and AKS clusters of this tenant by host and tenant segment",
        source: "Azure Policy initiative 5e4ee281-95a3-442a-bb2a-5ef68cf5181a, policy 2571b7c3-3056-4a61-b00a-9bc5232234f5 \"Managed Identity Federated Credentials should be from allowed issuer types\" (AKS *.oic.prod-aks.azure.com, GitHub, AWS, GCP) and ae62c456-33de-4dc8-b100-7ce9028a7d99 (AKS issuers limited to trusted tenants); the identity's tier per the Enterprise Access Model",
    },
    Calibration {
        rule_id: "MI-FIC-003",
        before: "critical for every issuer on Blob Storage, a static website, App Service or a bare IP",
        after: "a storage-hosted issuer is resolved to its account: outside the tenant or unclaimed stays critical; inside the tenant it follows the identity's tier (high ControlPlane, medium ManagementPlane, low otherwise) and lists who can write to the account; App Service or a bare IP is critical for a privileged identity, high otherwise",
        source: "Azure AD Workload Identity's self-managed cluster guide publishes the issuer on Azure Blob Storage (the documented setup); roadoidc shows the takeover when the publisher is not the organisation",
    },
];

/// The catalogue as Markdown (docs/rules.md is generated from this).
pub fn catalogue_markdown() -> String {
    let mut out = String::from(
        "# mi-assess rule catalogue\n\n\
         Generated by `mi-assess rules --markdown` from `src/rules/`; do not edit by hand.\n\
         Rule ids are stable: a rule is never renumbered, and a retired id is never reused.\n\
         Every finding carries a `findingId` that stays the same across runs for the same rule, subject\n\
         and evidence, plus the exact call that fixes it.\n\n\
         | Id | Title | Applies to | Severity |\n|---|---|---|---|\n",
    );
    for rule in RULES {
        out.push_str(&format!(
            "| [{id}](#{anchor}) | {title} | {applies} | {severity} |\n",
            id = rule.id,
            anchor = rule.id.to_ascii_lowercase(),
            title = match rule.retired {
                Some(_) => format!("*Retired.* {}", rule.title),
                None => rule.title.to_owned(),
            },
            applies = rule.applies_to,
            severity = rule.severity,
        ));
    }
    for rule in RULES {
        out.push_str(&format!(
            "\n## {id}\n\n**{title}**\n\n{retired}- Applies to: {applies}\n- Severity: {severity}\n- Emits: {severities}\n\n\
             **Why it matters.** {rationale}\n\n**How to fix it.** {remediation}\n",
            retired = rule
                .retired
                .map(|r| format!("- **Retired:** {r}\n"))
                .unwrap_or_default(),
            id = rule.id,
            title = rule.title,
            applies = rule.applies_to,
            severity = rule.severity,
            severities = rule
                .severities
                .iter()
                .map(|s| format!("`{}`", s.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            rationale = rule.rationale,
            remediation = rule.remediation,
        ));
        if !rule.references.is_empty() {
            out.push_str("\n**Sources.**\n\n");
            for reference in rule.references {
                out.push_str(&format!("- {reference}\n"));
            }
        }
    }
    out.push_str(
        "\n## Severity calibrations\n\nSeverities a rule used to emit and what it emits now, with the source each follows.\n\n\
         | Rule | Before | After | Source |\n|---|---|---|---|\n",
    );
    for c in CALIBRATIONS {
        out.push_str(&format!(
            "| [{id}](#{anchor}) | {before} | {after} | {source} |\n",
            id = c.rule_id,
            anchor = c.rule_id.to_ascii_lowercase(),
            before = c.before,
            after = c.after,
            source = c.source,
        ));
    }
    out
}

/// The catalogue as plain text for the terminal.
pub fn catalogue_text() -> String {
    let mut out = String::new();
    for rule in RULES {
        out.push_str(&format!(
            "{id}  {title}\n{retired}    applies to: {applies}\n    severity:   {severity}\n    why:        {rationale}\n    fix:        {remediation}\n\n",
            id = rule.id,
            title = rule.title,
            retired = rule
                .retired
                .map(|r| format!("    retired:    {r}\n"))
                .unwrap_or_default(),
            applies = rule.applies_to,
            severity = rule.severity,
            rationale = rule.rationale,
            remediation = rule.remediation,
        ));
    }
    out
}

pub(crate) use crate::model::az_rest;

#[cfg(test)]
mod azure_tests;
#[cfg(test)]
mod paths_tests;
#[cfg(test)]
mod tests;
