//! SUPP-001: an accepted risk whose acceptance has run out.

use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::{Finding, Rule, Scope};
use crate::model::Severity;
use crate::model::SubjectKind;
use crate::resolve::TenantView;
use crate::resolve::principals::PrincipalView;

/// SUPP-001.
pub(super) const EXPIRED_SUPPRESSION: Rule = Rule {
    id: "SUPP-001",
    title: "A suppression in suppressions.json has expired",
    applies_to: "entries of suppressions.json in the results container",
    severity: "info",
    severities: &[Severity::Info],
    rationale: "An accepted risk is accepted for a time. Once the expiry passes the suppression stops applying, so the underlying finding is reported again; this finding says why it came back so the owner can renew the acceptance or fix the risk.",
    remediation: "Fix the underlying finding, or renew the entry in suppressions.json with a new expiry and a current reason.",
    references: &["mi-assess README, Suppressions"],
    scope: Scope::Tenant,
    retired: None,
    check: expired_suppressions,
};

fn expired_suppressions(view: &TenantView<'_>) -> Vec<Finding> {
    let rule = &EXPIRED_SUPPRESSION;
    let now = view.snapshot.collected_at;
    let mut out = Vec::new();
    for entry in view
        .snapshot
        .settings
        .suppressions
        .iter()
        .filter(|s| s.expires <= now)
    {
        let found = view.subject(&entry.identity_id);
        let known = found.as_ref();
        let fallback = PrincipalView::known_only_by_id(
            &entry.identity_id,
            &entry.identity_id,
            SubjectKind::ServicePrincipal,
        );
        let subject = known.unwrap_or(&fallback);
        let expires = entry.expires.format(&Rfc3339).unwrap_or_default();
        out.push(rule.finding(
            Severity::Info,
            subject,
            &format!("{}:{}", entry.rule_id, expires),
            format!("The suppression of {} for {} expired on {}", entry.rule_id, subject.display_name, expires),
            json!({
                "suppressedRuleId": entry.rule_id,
                "identityId": entry.identity_id,
                "reason": entry.reason,
                "expires": expires,
                "approvedBy": entry.approved_by,
                "identityFound": known.is_some(),
            }),
            format!(
                "Fix the {} finding for {}, or renew its entry in suppressions.json (ruleId {}, identityId {}) with a new expiry.",
                entry.rule_id, subject.display_name, entry.rule_id, entry.identity_id
            ),
        ));
    }
    out
}
