//! Rules on service principals that still authenticate with secrets or certificates: the
//! "move to managed identities" candidates. Never applied to managed identities, which cannot
//! hold customer-managed credentials or owners.

use serde_json::json;

use super::{Finding, Rule, Scope, az_rest};
use crate::classification::Tier;
use crate::model::Severity;
use crate::model::{CredentialHome, CredentialKind, Timestamp};
use crate::resolve::TenantView;
use crate::resolve::principals::{PrincipalView, ResolvedCredential};

/// SP-CRED-001.
pub(super) const MOVE_TO_MANAGED_IDENTITY: Rule = Rule {
    id: "SP-CRED-001",
    title: "Service principal authenticates with a secret or certificate; move it to a managed identity",
    applies_to: "application and Legacy service principals owned by this tenant",
    severity: "critical when it holds ControlPlane permissions or roles; medium otherwise; low when every credential it holds has expired (it cannot authenticate: remove the dead credentials)",
    severities: &[Severity::Critical, Severity::Medium, Severity::Low],
    rationale: "A secret or certificate can be copied and used from anywhere until it expires, and secrets leak through code, pipelines and config. Managed identities and workload identity federation remove the secret entirely. The guidance asks to move such service principals to managed identities.",
    remediation: "Pick the replacement: a system-assigned managed identity when the workload runs on one Azure resource; a user-assigned managed identity when several resources share it or its permissions must exist before the resource; workload identity federation when it runs outside Azure (GitHub Actions, other clouds, on-premises Kubernetes). Grant the replacement the same (or fewer) permissions, switch the workload, then delete the credential.",
    references: &[
        "Securing managed identities in Microsoft Entra ID: move to managed identities",
        "Prowler entra_service_principal_no_secrets_for_permanent_tier0_roles; Maester MT.1027",
        "Workload identity federation (learn.microsoft.com/entra/workload-id/workload-identity-federation)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: move_to_managed_identity,
};

fn credential_summary(c: &ResolvedCredential) -> serde_json::Value {
    json!({"kind": c.kind, "home": c.home, "keyId": c.key_id, "displayName": c.display_name, "start": c.start, "end": c.end})
}

fn delete_credential(
    view: &TenantView<'_>,
    subject: &PrincipalView,
    c: &ResolvedCredential,
) -> String {
    let app_id = subject.app_id.as_deref().unwrap_or("<appId>");
    let key_id = c.key_id.as_deref().unwrap_or("<keyId>");
    match (c.home, c.kind) {
        (CredentialHome::Application, _) => {
            format!("az ad app credential delete --id {app_id} --key-id {key_id}")
        }
        (CredentialHome::ServicePrincipal, CredentialKind::Password) => format!(
            "{} --body '{{\"keyId\":\"{key_id}\"}}'",
            az_rest(
                "POST",
                view.graph(),
                &format!("/servicePrincipals/{}/removePassword", subject.id)
            )
        ),
        (CredentialHome::ServicePrincipal, _) => {
            format!("az ad sp credential delete --id {app_id} --key-id {key_id} --cert")
        }
    }
}

fn move_to_managed_identity(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &MOVE_TO_MANAGED_IDENTITY;
    let mut out = Vec::new();
    for subject in view
        .service_principals
        .iter()
        .filter(|s| !s.is_managed_identity())
    {
        if subject.credentials.is_empty() {
            continue;
        }
        let live = subject
            .credentials
            .iter()
            .filter(|c| !is_expired(c, view.snapshot.collected_at))
            .count();
        let tier = subject.tier();
        if live == 0 {
            out.push(dead_credentials(view, subject));
            continue;
        }
        let severity = if tier == Some(Tier::ControlPlane) {
            Severity::Critical
        } else {
            Severity::Medium
        };
        let permissions: Vec<serde_json::Value> = subject
            .app_roles
            .iter()
            .flatten()
            .map(|r| json!({"permission": r.permission, "resourceName": r.resource_name, "tier": r.tier, "appRoleId": r.app_role_id, "resourceId": r.resource_id}))
            .collect();
        let roles: Vec<serde_json::Value> = subject
            .directory_roles
            .iter()
            .flatten()
            .map(|r| json!({"role": r.role_name, "state": r.state, "scope": r.directory_scope_id, "tier": r.tier}))
            .collect();
        let grants: Vec<String> = subject
            .app_roles
            .iter()
            .flatten()
            .map(|r| {
                format!(
                    "{} --body '{{\"principalId\":\"<new identity object id>\",\"resourceId\":\"{}\",\"appRoleId\":\"{}\"}}'",
                    az_rest("POST", view.graph(), "/servicePrincipals/<new identity object id>/appRoleAssignments"),
                    r.resource_id,
                    r.app_role_id
                )
            })
            .collect();
        let deletes: Vec<String> = subject
            .credentials
            .iter()
            .map(|c| delete_credential(view, subject, c))
            .collect();
        let app_id = subject.app_id.as_deref().unwrap_or("<appId>");
        let remediation = format!(
            "1. Choose the replacement. Runs on one Azure resource: enable its system-assigned identity (e.g. az webapp identity assign / az vm identity assign). Shared by several resources: az identity create -g <rg> -n <name> and attach it. Runs outside Azure: az ad app federated-credential create --id {app_id} --parameters '{{\"name\":\"<name>\",\"issuer\":\"<issuer, e.g. https://token.actions.githubusercontent.com>\",\"subject\":\"<subject, e.g. repo:org/repo:environment:prod>\",\"audiences\":[\"api://AzureADTokenExchange\"]}}'. \
             2. Re-grant only the permissions the workload uses{}. \
             3. Switch the workload, then delete the credential(s): {}.",
            if grants.is_empty() {
                String::new()
            } else {
                format!(": {}", grants.join("; "))
            },
            deletes.join("; ")
        );
        out.push(rule.finding(
            severity,
            subject,
            "credentials",
            format!(
                "{} authenticates with {live} credential(s){}",
                subject.display_name,
                if severity == Severity::Critical { " and holds ControlPlane privileges" } else { "" }
            ),
            json!({
                "appId": subject.app_id,
                "credentials": subject.credentials.iter().map(credential_summary).collect::<Vec<_>>(),
                "permissions": permissions,
                "directoryRoles": roles,
                "tier": tier,
            }),
            remediation,
        ));
    }
    out
}

/// True when the credential's end date has passed at collection time.
fn is_expired(c: &ResolvedCredential, now: time::OffsetDateTime) -> bool {
    c.end
        .as_ref()
        .and_then(Timestamp::value)
        .is_some_and(|e| e < now)
}

/// SP-CRED-001 for a service principal whose every credential has expired: it cannot
/// authenticate, so there is nothing to move; the dead credentials are hygiene.
fn dead_credentials(view: &TenantView<'_>, subject: &PrincipalView) -> Finding {
    let deletes: Vec<String> = subject
        .credentials
        .iter()
        .map(|c| delete_credential(view, subject, c))
        .collect();
    MOVE_TO_MANAGED_IDENTITY.finding(
        Severity::Low,
        subject,
        "credentials",
        format!(
            "{} holds only expired credentials ({}): it cannot authenticate",
            subject.display_name,
            subject.credentials.len()
        ),
        json!({
            "appId": subject.app_id,
            "credentials": subject.credentials.iter().map(credential_summary).collect::<Vec<_>>(),
            "allExpired": true,
            "tier": subject.tier(),
        }),
        format!(
            "Remove the dead credential(s); if the workload is to sign in again, give it a managed identity or federation instead of a new secret: {}",
            deletes.join("; ")
        ),
    )
}

/// SP-CRED-002.
pub(super) const CREDENTIAL_HYGIENE: Rule = Rule {
    id: "SP-CRED-002",
    title: "Service principal credential is expired or long-lived",
    applies_to: "application and Legacy service principals owned by this tenant",
    severity: "medium for a client secret valid for more than 180 days or a certificate valid for more than 365 days (MI_ASSESS_MAX_SECRET_DAYS, MI_ASSESS_MAX_CERTIFICATE_DAYS); low for an expired credential beside live ones (a principal whose every credential expired is one SP-CRED-001 finding)",
    severities: &[Severity::Medium, Severity::Low],
    rationale: "A long-lived secret stays usable long after it leaks; ScubaGear and Entra recommendations cap secret lifetimes. An expired credential is dead weight that hides which credentials are really in use.",
    remediation: "Delete the credential; if the workload still needs one, move it to a managed identity or federation (SP-CRED-001), or at least issue a credential that lives no longer than 180 days.",
    references: &[
        "ScubaGear MS.AAD.5.6/5.7; Entra recommendations staleAppCreds; Prowler entra_app_registration_client_secret_unused",
        "Entra app management policies: passwordLifetime and asymmetricKeyLifetime restrictions (learn.microsoft.com/graph/api/resources/applicationauthenticationmethodpolicy)",
    ],
    scope: Scope::Subjects,
    retired: None,
    check: credential_hygiene,
};

fn credential_hygiene(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &CREDENTIAL_HYGIENE;
    let now = view.snapshot.collected_at;
    let mut out = Vec::new();
    let settings = &view.snapshot.settings;
    for subject in view
        .service_principals
        .iter()
        .filter(|s| !s.is_managed_identity())
    {
        // Every credential expired: one SP-CRED-001 finding says so.
        if subject.credentials.iter().all(|c| is_expired(c, now)) {
            continue;
        }
        for credential in &subject.credentials {
            let start = credential.start.as_ref().and_then(Timestamp::value);
            let end = credential.end.as_ref().and_then(Timestamp::value);
            let expired = end.is_some_and(|e| e < now);
            let lifetime_days = match (start, end) {
                (Some(s), Some(e)) => Some((e - s).whole_days()),
                _ => None,
            };
            let max_days = if credential.kind == CredentialKind::Password {
                settings.max_secret_days
            } else {
                settings.max_certificate_days
            };
            let long_lived = lifetime_days.is_some_and(|d| d > i64::from(max_days));
            let (severity, problem) = match (expired, long_lived) {
                (true, _) => (Severity::Low, "an expired".to_owned()),
                (false, true) => (
                    Severity::Medium,
                    format!("a {}-day", lifetime_days.unwrap_or_default()),
                ),
                (false, false) => continue,
            };
            let mut evidence = credential_summary(credential);
            evidence["expired"] = json!(expired);
            evidence["lifetimeDays"] = json!(lifetime_days);
            evidence["maxLifetimeDays"] = json!(max_days);
            out.push(rule.finding(
                severity,
                subject,
                credential.key_id.as_deref().unwrap_or("unknown-key"),
                format!(
                    "{} holds {} {}",
                    subject.display_name,
                    problem,
                    if credential.kind == CredentialKind::Password {
                        "client secret"
                    } else {
                        "certificate"
                    }
                ),
                evidence,
                format!(
                    "Delete it: {}",
                    delete_credential(view, subject, credential)
                ),
            ));
        }
    }
    out
}
