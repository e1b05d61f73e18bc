//! SUPP-001: an accepted risk whose acceptance has run out.

use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::{Finding, Rule, Scope};
use crate::model::Severity;
use crate::model::SubjectKind;
use crate::resolve::TenantView;
use crate::resolve::principals::PrincipalView;
use crate::snapshot::suppressions::{Suppression, SuppressionScope};

/// SUPP-001.
pub(super) const EXPIRED_SUPPRESSION: Rule = Rule {
    id: "SUPP-001",
    title: "A suppression in suppressions.json has expired",
    applies_to: "entries of suppressions.json in the results container",
    severity: "info",
    severities: &[Severity::Info],
    rationale: "An accepted risk is accepted for a time. Once the expiry passes the suppression stops applying, so the underlying finding is reported again; this finding says why it came back so the owner can renew the acceptance or fix the risk.",
    remediation: "Fix the underlying finding, or renew the entry in suppressions.json with a new expiry and a current reason.",
    references: &["mi-assess docs/output.md, Suppressions (accepted risk)"],
    scope: Scope::Tenant,
    retired: None,
    check: expired_suppressions,
};

fn expired_suppressions(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &EXPIRED_SUPPRESSION;
    let now = view.snapshot.collected_at;
    let scanner = &view.snapshot.scanner;
    let scanner_id = scanner
        .object_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::nil().to_string());
    let mut out = Vec::new();
    for entry in view
        .snapshot
        .settings
        .suppressions
        .iter()
        .filter(|s| s.expires <= now)
    {
        // An entry about one identity is reported against it; any other against the scanner,
        // which reads suppressions.json.
        let subject_id = entry.identity_id.as_deref().unwrap_or(&scanner_id);
        let found = view.subject(subject_id);
        let known = found.as_ref();
        let mut fallback = PrincipalView::known_only_by_id(
            subject_id,
            if entry.identity_id.is_some() {
                subject_id
            } else {
                "mi-assess scanner"
            },
            SubjectKind::ServicePrincipal,
        );
        if entry.identity_id.is_none() {
            fallback.app_id = scanner.app_id.clone();
        }
        let subject = known.unwrap_or(&fallback);
        let expires = entry.expires.format(&Rfc3339).unwrap_or_default();
        let covers = match entry.scope() {
            SuppressionScope::Identity => format!("{} for {}", entry.rule(), subject.display_name),
            _ => entry.describe(),
        };
        // Identity entries keep the key they always had, so their finding ids stay stable.
        let key = match entry.scope() {
            SuppressionScope::Identity => format!("{}:{}", entry.rule(), expires),
            scope => format!("{}:{}:{}", scope.as_str(), entry.describe(), expires),
        };
        let locator = match (&entry.finding_id, &entry.identity_id, &entry.display_name) {
            (Some(id), _, _) => format!("findingId {id}"),
            (_, Some(id), _) => format!("ruleId {}, identityId {id}", entry.rule()),
            (_, _, Some(glob)) => format!("ruleId {}, displayName {glob}", entry.rule()),
            _ => format!("ruleId {}", entry.rule()),
        };
        out.push(rule.finding(
            Severity::Info,
            subject,
            &key,
            format!("The suppression of {covers} expired on {expires}"),
            evidence(entry, &expires, entry.identity_id.is_some() && known.is_some()),
            match entry.scope() {
                SuppressionScope::Identity => format!(
                    "Fix the {} finding for {}, or renew its entry in suppressions.json ({locator}) with a new expiry.",
                    entry.rule(),
                    subject.display_name
                ),
                _ => format!(
                    "Fix the findings it accepted ({covers}), or renew its entry in suppressions.json ({locator}) with a new expiry."
                ),
            },
        ));
    }
    out
}

/// The entry as evidence: the fields it names (absent ones left out) and whether its identity
/// is in the tenant.
fn evidence(entry: &Suppression, expires: &str, identity_found: bool) -> serde_json::Value {
    let mut evidence = json!({
        "suppressedRuleId": entry.rule_id,
        "scope": entry.scope(),
        "reason": entry.reason,
        "expires": expires,
        "approvedBy": entry.approved_by,
        "identityFound": identity_found,
    });
    for (field, value) in [
        ("identityId", &entry.identity_id),
        ("displayName", &entry.display_name),
        ("findingId", &entry.finding_id),
    ] {
        if let Some(value) = value {
            evidence[field] = json!(value);
        }
    }
    evidence
}
