//! The readable summary the CLI prints after a run: a header, a table of identities and totals,
//! and the [`Highlights`] it shows, chosen from what the report details.

use std::fmt::Write as _;

use crate::assess::{IdentityRecord, order};
use crate::report::ReportInput;
use crate::results::Manifest;
use crate::rules::Finding;

/// Rows shown before the table is cut short.
pub const MAX_ROWS: usize = 40;

/// What a person should see first: the most severe identities and findings of a run (the
/// summary the CLI prints). The complete lists are the run's NDJSON files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Highlights {
    /// Managed identities, most severe first (at most [`Highlights::LIMIT`]).
    pub identities: Vec<IdentityRecord>,
    /// Findings, most severe first (at most [`Highlights::LIMIT`]).
    pub findings: Vec<Finding>,
}

impl Highlights {
    /// Entries kept of each list.
    pub const LIMIT: usize = MAX_ROWS;

    /// The first entries of what the report details.
    pub fn of(report: &ReportInput<'_>) -> Self {
        let mut identities: Vec<&IdentityRecord> = report.identities.iter().collect();
        identities.sort_by_cached_key(|r| order::SubjectRank::of_record(r));
        let mut findings: Vec<&Finding> = report.findings.iter().collect();
        findings.sort_by(|a, b| order::most_severe_first(a, b));
        Self {
            identities: identities.into_iter().take(Self::LIMIT).cloned().collect(),
            findings: findings.into_iter().take(Self::LIMIT).cloned().collect(),
        }
    }
}

/// Renders the run summary as plain text: the manifest's header and totals, and the highlights
/// when the run got as far as assessing.
pub fn render(m: &Manifest, highlights: Option<&Highlights>, location: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "mi-assess run {}", m.run_id);
    let _ = writeln!(
        out,
        "  tenant   {}",
        if m.tenant_id.is_empty() {
            "(unknown)"
        } else {
            &m.tenant_id
        }
    );
    let _ = writeln!(out, "  status   {}", m.status.as_str());
    let _ = writeln!(out, "  results  {location}");
    if m.files
        .iter()
        .any(|f| f.name == crate::results::files::REPORT)
    {
        let _ = writeln!(
            out,
            "  report   {location}/{}",
            crate::results::files::REPORT
        );
    }
    for warning in &m.warnings {
        let _ = writeln!(out, "  warning  {warning}");
    }
    let _ = writeln!(
        out,
        "  graph    {} requests, {} resource units, {} throttled",
        m.graph.requests, m.graph.resource_units, m.graph.throttled
    );
    for error in &m.errors {
        let _ = writeln!(out, "  error    {}: {}", error.stage, error.message);
    }
    for gap in &m.skipped {
        let _ = writeln!(
            out,
            "  skipped  {}: {}{}",
            gap.dataset,
            gap.reason,
            gap.needs_permission
                .as_deref()
                .map(|p| format!(" (grant {p})"))
                .unwrap_or_default()
        );
    }
    if let Some(highlights) = highlights {
        let headers = [
            "KIND",
            "NAME",
            "RESOURCE TYPE",
            "RESOURCE GROUP",
            "ENABLED",
            "TIER",
            "WORST",
        ];
        let rows: Vec<[String; 7]> = highlights
            .identities
            .iter()
            .map(|i| {
                [
                    i.kind.as_str().to_owned(),
                    i.display_name.clone().unwrap_or_else(|| i.id.clone()),
                    i.resource_type.clone().unwrap_or_else(|| "-".into()),
                    i.resource_group
                        .clone()
                        .or_else(|| i.management_group.as_ref().map(|mg| format!("(mg) {mg}")))
                        .unwrap_or_else(|| "-".into()),
                    match i.account_enabled {
                        Some(true) => "yes".into(),
                        Some(false) => "no".into(),
                        None => "?".into(),
                    },
                    i.tier.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                    i.highest_severity
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let _ = writeln!(out);
        out.push_str(&table(&headers, rows.iter()));
        if m.counts.identities > rows.len() {
            let _ = writeln!(
                out,
                "… and {} more (see identities.ndjson)",
                m.counts.identities - rows.len()
            );
        }
        if !highlights.findings.is_empty() {
            let headers = ["SEVERITY", "RULE", "FINDING"];
            let rows: Vec<[String; 3]> = highlights
                .findings
                .iter()
                .map(|f| {
                    [
                        f.severity.as_str().to_owned(),
                        f.rule_id.clone(),
                        f.title.clone(),
                    ]
                })
                .collect();
            let _ = writeln!(out);
            out.push_str(&table(&headers, rows.iter()));
            if m.counts.findings > rows.len() {
                let _ = writeln!(
                    out,
                    "… and {} more (see findings.ndjson)",
                    m.counts.findings - rows.len()
                );
            }
        }
        let by = m.counts.findings_by_severity;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} managed identities: {} system-assigned, {} user-assigned; {} credential-bearing service principals",
            m.counts.identities,
            m.counts.system_assigned,
            m.counts.user_assigned,
            m.counts
                .credential_service_principals
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unknown".into()),
        );
        let _ = writeln!(
            out,
            "{} findings: {} critical, {} high, {} medium, {} low, {} info ({} suppressed); changes: {} new, {} resolved, {} severity changed, {} suppression changed",
            m.counts.findings,
            by.critical,
            by.high,
            by.medium,
            by.low,
            by.info,
            m.counts.suppressed,
            m.counts.changes.new,
            m.counts.changes.resolved,
            m.counts.changes.severity_changed,
            m.counts.changes.suppression_changed
        );
    }
    out
}

/// Left-aligned columns separated by two spaces.
fn table<'a, const N: usize>(
    headers: &[&str; N],
    rows: impl Iterator<Item = &'a [String; N]> + Clone,
) -> String {
    let mut widths: [usize; N] = headers.map(|h| h.chars().count());
    for row in rows.clone() {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths.iter()).enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}
