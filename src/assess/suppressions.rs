//! Applying accepted risk: `suppressions.json` validated entry by entry against the rule
//! catalogue, and the findings an active entry covers marked suppressed. A bad entry is
//! rejected with its problem and the others still apply; only a file that is not a
//! `{"suppressions": [...]}` document at all applies nothing. Marking is pure: "now" is the
//! snapshot's collection time, so replays give the same result. The entries themselves are
//! snapshot data ([`crate::snapshot::suppressions`]); an expired one raises `SUPP-001`
//! (`crate::rules`).

use time::{Duration, OffsetDateTime};

use crate::model::AppliedSuppression;
use crate::rules::Finding;
use crate::snapshot::suppressions::{RejectedSuppression, Suppression, SuppressionScope};

/// Why `suppressions.json` was not used at all.
#[derive(Debug, thiserror::Error)]
#[error(
    "suppressions.json is not a {{\"suppressions\": [...]}} document, so no suppression was applied: {0}"
)]
pub struct MalformedSuppressions(pub String);

/// The entries of a `suppressions.json`, sorted into those that apply and those that do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedSuppressions {
    /// Valid entries, expired ones included (they raise `SUPP-001`).
    pub accepted: Vec<Suppression>,
    /// Entries that were skipped, with the problem of each.
    pub rejected: Vec<RejectedSuppression>,
}

/// Parses the file and validates each entry on its own, at `now`: an entry must cover exactly
/// one thing (a `findingId`; or a known `ruleId` alone, with an `identityId`, or with a
/// `displayName` glob), give a reason, and expire at most `max_days` after `now`.
pub fn parse(
    bytes: &[u8],
    now: OffsetDateTime,
    max_days: u32,
) -> Result<ParsedSuppressions, MalformedSuppressions> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entries {
        suppressions: Vec<serde_json::Value>,
    }
    let file: Entries =
        serde_json::from_slice(bytes).map_err(|e| MalformedSuppressions(e.to_string()))?;
    let mut parsed = ParsedSuppressions::default();
    for (entry, value) in file.suppressions.into_iter().enumerate() {
        let checked = serde_json::from_value::<Suppression>(value)
            .map_err(|e| e.to_string())
            .and_then(|s| validate(s, now, max_days));
        match checked {
            Ok(s) => parsed.accepted.push(s),
            Err(problem) => parsed.rejected.push(RejectedSuppression { entry, problem }),
        }
    }
    Ok(parsed)
}

fn validate(s: Suppression, now: OffsetDateTime, max_days: u32) -> Result<Suppression, String> {
    let named = [&s.finding_id, &s.identity_id, &s.display_name]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if named > 1 {
        return Err(
            "it names more than one of findingId, identityId and displayName; give one".into(),
        );
    }
    match &s.rule_id {
        Some(rule) if crate::rules::rule(rule).is_none() => {
            return Err(format!(
                "unknown rule id {rule:?} (mi-assess rules lists them)"
            ));
        }
        None if s.finding_id.is_none() => {
            return Err("it names no ruleId (only a findingId entry may omit it)".into());
        }
        _ => {}
    }
    for (field, value) in [("findingId", &s.finding_id), ("identityId", &s.identity_id)] {
        if let Some(id) = value
            && uuid::Uuid::parse_str(id.trim()).is_err()
        {
            return Err(format!("{field} {id:?} is not a GUID"));
        }
    }
    if let Some(glob) = &s.display_name {
        if glob.trim().is_empty() {
            return Err("displayName is empty (leave it out to cover every identity)".into());
        }
        glob::Pattern::new(glob).map_err(|e| format!("displayName {glob:?} is not a glob: {e}"))?;
    }
    if s.reason.trim().is_empty() {
        return Err("the reason is empty".into());
    }
    let latest = now + Duration::days(i64::from(max_days));
    if s.expires > latest {
        return Err(format!(
            "it expires more than {max_days} days from now; accept a risk for at most that long and renew it (MI_ASSESS_SUPPRESSION_MAX_DAYS)"
        ));
    }
    Ok(s)
}

/// The active entries, ready to match findings: built once per assessment.
#[derive(Debug, Default)]
pub struct Matcher<'a> {
    active: Vec<(&'a Suppression, Option<glob::Pattern>)>,
}

/// Display-name globs ignore case, as Entra's own name search does.
const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl<'a> Matcher<'a> {
    /// The entries of `suppressions` that have not expired at `now`, most specific first (a
    /// finding, an identity, a name, a rule), so a finding names the narrowest acceptance.
    pub fn new(suppressions: &'a [Suppression], now: OffsetDateTime) -> Self {
        let mut active: Vec<(&Suppression, Option<glob::Pattern>)> = suppressions
            .iter()
            .filter(|s| s.expires > now)
            .map(|s| {
                (
                    s,
                    s.display_name
                        .as_deref()
                        .and_then(|g| glob::Pattern::new(g).ok()),
                )
            })
            .collect();
        active.sort_by_key(|(s, _)| s.scope() as u8);
        Self { active }
    }

    /// The entry that covers `finding`, if one does.
    pub fn covering(&self, finding: &Finding) -> Option<&'a Suppression> {
        let same = |a: &Option<String>, b: &str| {
            a.as_deref()
                .is_none_or(|a| a.trim().eq_ignore_ascii_case(b))
        };
        self.active
            .iter()
            .find(|(s, glob)| {
                same(&s.rule_id, &finding.rule_id)
                    && match s.scope() {
                        SuppressionScope::Finding => same(&s.finding_id, &finding.finding_id),
                        SuppressionScope::Identity => same(&s.identity_id, &finding.identity_id),
                        SuppressionScope::DisplayName => glob
                            .as_ref()
                            .is_some_and(|g| g.matches_with(&finding.identity_name, GLOB_OPTIONS)),
                        SuppressionScope::Rule => true,
                    }
            })
            .map(|(s, _)| *s)
    }

    /// Marks the findings an active entry covers. Expired entries are reported by rule
    /// `SUPP-001` instead.
    pub fn mark(&self, findings: &mut [Finding]) {
        if self.active.is_empty() {
            return;
        }
        for finding in findings.iter_mut() {
            if let Some(s) = self.covering(finding) {
                finding.suppressed = true;
                finding.suppression = Some(AppliedSuppression {
                    reason: s.reason.clone(),
                    expires: s.expires,
                    approved_by: s.approved_by.clone(),
                    scope: Some(s.scope()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 0:00 UTC);
    const MI: &str = "1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b03";

    fn parse_entries(entries: &str) -> ParsedSuppressions {
        parse(
            format!(r#"{{"suppressions": [{entries}]}}"#).as_bytes(),
            NOW,
            crate::config::DEFAULT_SUPPRESSION_MAX_DAYS,
        )
        .unwrap()
    }

    fn finding(rule: &str, identity_id: &str, name: &str, finding_id: &str) -> Finding {
        Finding {
            schema_version: crate::rules::FINDING_SCHEMA_VERSION.into(),
            finding_id: finding_id.into(),
            rule_id: rule.into(),
            severity: crate::model::Severity::High,
            title: "t".into(),
            identity_id: identity_id.into(),
            identity_name: name.into(),
            identity_kind: crate::model::SubjectKind::SystemAssigned,
            tier: None,
            evidence: serde_json::json!({}),
            remediation: "r".into(),
            remediation_commands: Vec::new(),
            suppressed: false,
            suppression: None,
        }
    }

    /// One bad entry among good ones is skipped with its position and problem; the rest apply.
    #[test]
    fn a_bad_entry_is_rejected_on_its_own() {
        let parsed = parse_entries(&format!(
            r#"{{"ruleId": "MI-GRAPH-002", "identityId": "{MI}", "reason": "ok", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "NOPE-001", "identityId": "{MI}", "reason": "x", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "identityId": "{MI}", "reason": " ", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "reason": "x", "expires": "2099-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "identityId": "not-a-guid", "reason": "x", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "identityId": "{MI}", "displayName": "a*", "reason": "x", "expires": "2027-01-01T00:00:00Z"}},
               {{"identityId": "{MI}", "reason": "x", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "displayName": "[", "reason": "x", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "identityID": "{MI}", "reason": "x", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "reason": "rule-wide", "expires": "2027-01-01T00:00:00Z"}}"#
        ));
        assert_eq!(parsed.accepted.len(), 2, "{parsed:#?}");
        let problems: Vec<(usize, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.entry, r.problem.as_str()))
            .collect();
        let expect = [
            (1, "unknown rule id"),
            (2, "reason is empty"),
            (3, "more than 365 days"),
            (4, "not a GUID"),
            (5, "more than one of"),
            (6, "names no ruleId"),
            (7, "not a glob"),
            (8, "unknown field `identityID`"),
        ];
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        for ((entry, problem), (want_entry, want)) in problems.iter().zip(expect) {
            assert_eq!(*entry, want_entry);
            assert!(problem.contains(want), "entry {entry}: {problem}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_suppression_document_applies_nothing() {
        assert!(parse(b"[]", NOW, 365).is_err());
        assert!(parse(br#"{"suppressions": {}}"#, NOW, 365).is_err());
        assert!(parse(br#"{"suppressions": [], "extra": 1}"#, NOW, 365).is_err());
    }

    #[test]
    fn the_maximum_is_configurable() {
        let entry = format!(
            r#"{{"suppressions": [{{"ruleId": "MI-GRAPH-002", "identityId": "{MI}", "reason": "x", "expires": "2027-03-01T00:00:00Z"}}]}}"#
        );
        assert_eq!(parse(entry.as_bytes(), NOW, 30).unwrap().rejected.len(), 1);
        assert_eq!(parse(entry.as_bytes(), NOW, 120).unwrap().accepted.len(), 1);
    }

    /// Rule-wide, glob (case-insensitive) and finding-id entries each cover what they name, and
    /// an identity entry only its identity; the narrowest active entry is the one applied.
    #[test]
    fn each_scope_covers_what_it_names() {
        let other = "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a08";
        let fid = "bcc972c1-295a-5489-8d4d-d5a9db443054";
        let parsed = parse_entries(&format!(
            r#"{{"ruleId": "MI-HYG-001", "reason": "rule-wide", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "displayName": "test-*", "reason": "glob", "expires": "2027-01-01T00:00:00Z"}},
               {{"findingId": "{fid}", "reason": "one", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-002", "identityId": "{MI}", "reason": "identity", "expires": "2027-01-01T00:00:00Z"}},
               {{"ruleId": "MI-GRAPH-001", "reason": "expired", "expires": "2026-01-01T00:00:00Z"}}"#
        ));
        assert!(parsed.rejected.is_empty(), "{parsed:#?}");
        let matcher = Matcher::new(&parsed.accepted, NOW);
        let reason = |f: Finding| matcher.covering(&f).map(|s| s.reason.as_str());
        assert_eq!(
            reason(finding("MI-HYG-001", other, "anything", "x")),
            Some("rule-wide")
        );
        assert_eq!(
            reason(finding("MI-GRAPH-002", other, "TEST-etl", "x")),
            Some("glob")
        );
        assert_eq!(
            reason(finding("MI-GRAPH-002", other, "prod-etl", "x")),
            None
        );
        assert_eq!(
            reason(finding("MI-GRAPH-002", MI, "prod-etl", "x")),
            Some("identity")
        );
        assert_eq!(
            reason(finding("MI-GRAPH-002", MI, "test-etl", "x")),
            Some("identity"),
            "narrowest first"
        );
        assert_eq!(reason(finding("MI-AZ-001", other, "x", fid)), Some("one"));
        assert_eq!(
            reason(finding("MI-GRAPH-001", other, "x", "y")),
            None,
            "expired"
        );

        let mut findings = vec![finding("MI-GRAPH-002", other, "test-a", "x")];
        matcher.mark(&mut findings);
        assert!(findings[0].suppressed);
        assert_eq!(
            findings[0].suppression.as_ref().and_then(|s| s.scope),
            Some(SuppressionScope::DisplayName)
        );
    }
}
