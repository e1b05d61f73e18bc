//! What the CLI prints after a run: as text, a header, tables of the most severe identities
//! and findings that fit the terminal's width (comfy-table; long names end in `…`, and narrow
//! terminals drop the less important columns first), and the totals; as JSON
//! ([`SummaryDocument`], `schemas/cli-summary.schema.json`), the run's outcome and its top
//! findings in one document, for piping. The [`Highlights`] are chosen from what the report
//! details.

use std::fmt::Write as _;

use comfy_table::{Cell, ColumnConstraint, ContentArrangement, Row, Table, Width};
use serde::Serialize;

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

/// Width used when the terminal's is not known (output piped to a file or a CI log).
pub const DEFAULT_WIDTH: usize = 120;

/// A column of a summary table: its header, the fewest characters it needs, its rank (lower
/// ranks are kept first when the width runs out), and how it shares the width.
struct Column {
    header: &'static str,
    min_width: usize,
    rank: u8,
    fit: Fit,
}

/// How a column takes its width.
#[derive(Clone, Copy)]
enum Fit {
    /// As wide as its longest cell (short, fixed vocabularies: kinds, tiers, severities).
    Content,
    /// At most this many characters.
    AtMost(u16),
    /// Whatever the others leave (names, titles): cut with `…` when that is not enough.
    Rest,
}

/// The columns that fit in `width` in rank order, stopping at the first that does not (so a
/// narrow column of low rank never squeezes a name out), in their own order (indices into
/// `columns`); the first always stays.
fn fitting(columns: &[Column], width: usize) -> Vec<usize> {
    let mut by_rank: Vec<usize> = (0..columns.len()).collect();
    by_rank.sort_by_key(|&i| columns[i].rank);
    let mut chosen = Vec::new();
    let mut used = 0;
    for i in by_rank {
        // Each column takes its content plus one space of padding on either side.
        let needs = columns[i].min_width + 2;
        if !chosen.is_empty() && used + needs > width {
            break;
        }
        used += needs;
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen
}

/// A table of `rows` in the columns that fit `width`, one line per row (longer cells end in
/// `…`).
fn table(columns: &[Column], rows: &[Vec<String>], width: usize) -> String {
    let shown = fitting(columns, width);
    let mut table = Table::new();
    table
        .load_preset(TABLE_STYLE)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(u16::try_from(width).unwrap_or(u16::MAX))
        .set_truncation_indicator("…")
        .set_header(shown.iter().map(|&i| Cell::new(columns[i].header)));
    for (position, &i) in shown.iter().enumerate() {
        if let Some(column) = table.column_mut(position) {
            match columns[i].fit {
                Fit::Content => {
                    column.set_constraint(ColumnConstraint::ContentWidth);
                }
                Fit::AtMost(n) => {
                    column.set_constraint(ColumnConstraint::UpperBoundary(Width::Fixed(n)));
                }
                Fit::Rest => {}
            }
        }
    }
    for cells in rows {
        let mut row = Row::from(shown.iter().map(|&i| Cell::new(&cells[i])));
        row.max_height(1);
        table.add_row(row);
    }
    let mut out = String::new();
    for line in table.lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// No borders; a dashed line under the header.
const TABLE_STYLE: &str = "     -             ";

/// The identity table's columns, in order; the rows of [`identity_cells`] follow it.
const IDENTITY_COLUMNS: [Column; 8] = [
    Column {
        header: "KIND",
        min_width: 14,
        rank: 3,
        fit: Fit::Content,
    },
    Column {
        header: "NAME",
        min_width: 16,
        rank: 0,
        fit: Fit::Rest,
    },
    Column {
        header: "RESOURCE TYPE",
        min_width: 24,
        rank: 6,
        fit: Fit::AtMost(40),
    },
    Column {
        header: "RESOURCE GROUP",
        min_width: 14,
        rank: 5,
        fit: Fit::AtMost(24),
    },
    Column {
        header: "ENABLED",
        min_width: 7,
        rank: 7,
        fit: Fit::Content,
    },
    Column {
        header: "TIER",
        min_width: 15,
        rank: 2,
        fit: Fit::Content,
    },
    Column {
        header: "WORST",
        min_width: 8,
        rank: 1,
        fit: Fit::Content,
    },
    Column {
        header: "FINDINGS",
        min_width: 8,
        rank: 4,
        fit: Fit::Content,
    },
];

fn identity_cells(i: &IdentityRecord) -> Vec<String> {
    vec![
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
        i.finding_count.to_string(),
    ]
}

/// The finding table's columns, in order.
const FINDING_COLUMNS: [Column; 4] = [
    Column {
        header: "SEVERITY",
        min_width: 8,
        rank: 0,
        fit: Fit::Content,
    },
    Column {
        header: "RULE",
        min_width: 11,
        rank: 2,
        fit: Fit::Content,
    },
    Column {
        header: "IDENTITY",
        min_width: 16,
        rank: 3,
        fit: Fit::AtMost(24),
    },
    Column {
        header: "FINDING",
        min_width: 24,
        rank: 1,
        fit: Fit::Rest,
    },
];

/// A suppressed finding's title says so first, whatever the width.
fn finding_cells(f: &Finding) -> Vec<String> {
    vec![
        f.severity.as_str().to_owned(),
        f.rule_id.clone(),
        f.identity_name.clone(),
        if f.suppressed {
            format!("[suppressed] {}", f.title)
        } else {
            f.title.clone()
        },
    ]
}

/// Renders the run summary as plain text for a terminal `width` columns wide: the manifest's
/// header and totals, and the highlights when the run got as far as assessing.
pub fn render(
    m: &Manifest,
    highlights: Option<&Highlights>,
    location: &str,
    width: usize,
) -> String {
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
        let rows: Vec<Vec<String>> = highlights.identities.iter().map(identity_cells).collect();
        let _ = writeln!(out);
        out.push_str(&table(&IDENTITY_COLUMNS, &rows, width));
        if m.counts.identities > rows.len() {
            let _ = writeln!(
                out,
                "… and {} more (see identities.ndjson)",
                m.counts.identities - rows.len()
            );
        }
        if !highlights.findings.is_empty() {
            let rows: Vec<Vec<String>> = highlights.findings.iter().map(finding_cells).collect();
            let _ = writeln!(out);
            out.push_str(&table(&FINDING_COLUMNS, &rows, width));
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

/// Version of the `--format json` document (`schemas/cli-summary.schema.json`).
pub const SUMMARY_SCHEMA_VERSION: &str = "1.0.0";

/// What `mi-assess assess --format json` prints: the run's outcome and its top findings, one
/// JSON document on stdout.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryDocument<'a> {
    /// Format version of this document.
    pub schema_version: &'static str,
    /// The run.
    pub run_id: uuid::Uuid,
    /// The tenant ("" when the run failed before it was known).
    pub tenant_id: &'a str,
    /// `complete`, `partial` or `failed`.
    pub status: &'static str,
    /// The process's exit status: 0, 1, 2 or 3.
    pub exit_code: u8,
    /// Where the run's files are (a directory or a container URL).
    pub results: &'a str,
    /// The report's location, when one was written.
    pub report: Option<String>,
    /// The manifest's counts.
    pub counts: &'a crate::results::records::RunCounts,
    /// What Graph was asked and what it cost.
    pub graph: &'a crate::graph::client::GraphStatsSnapshot,
    /// The gate, when `--fail-on` was given.
    pub gate: Option<GateOutcome>,
    /// The manifest's warnings.
    pub warnings: &'a [String],
    /// The manifest's errors, as `stage: message`.
    pub errors: Vec<String>,
    /// What could not be read, as `dataset: reason`.
    pub skipped: Vec<String>,
    /// The most severe findings (at most [`Highlights::LIMIT`]), suppressed ones marked.
    pub top_findings: Vec<TopFinding<'a>>,
}

/// `--fail-on` and what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateOutcome {
    /// The lowest severity that fails.
    pub fail_on: crate::model::Severity,
    /// Whether only new findings count.
    pub only_new: bool,
    /// How many findings hit it.
    pub hits: usize,
}

/// One finding of [`SummaryDocument::top_findings`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopFinding<'a> {
    /// Stable id.
    pub finding_id: &'a str,
    /// The rule.
    pub rule_id: &'a str,
    /// Severity.
    pub severity: crate::model::Severity,
    /// One line.
    pub title: &'a str,
    /// The subject's object id.
    pub identity_id: &'a str,
    /// The subject's name.
    pub identity_name: &'a str,
    /// Whether an accepted risk covers it (it never trips a gate).
    pub suppressed: bool,
}

/// The `--format json` document of a run.
pub fn document<'a>(
    m: &'a Manifest,
    highlights: Option<&'a Highlights>,
    location: &'a str,
    gate: Option<GateOutcome>,
    exit_code: u8,
) -> SummaryDocument<'a> {
    SummaryDocument {
        schema_version: SUMMARY_SCHEMA_VERSION,
        run_id: m.run_id,
        tenant_id: &m.tenant_id,
        status: m.status.as_str(),
        exit_code,
        results: location,
        report: m
            .files
            .iter()
            .any(|f| f.name == crate::results::files::REPORT)
            .then(|| format!("{location}/{}", crate::results::files::REPORT)),
        counts: &m.counts,
        graph: &m.graph,
        gate,
        warnings: &m.warnings,
        errors: m
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.stage, e.message))
            .collect(),
        skipped: m
            .skipped
            .iter()
            .map(|g| format!("{}: {}", g.dataset, g.reason))
            .collect(),
        top_findings: highlights
            .map(|h| {
                h.findings
                    .iter()
                    .map(|f| TopFinding {
                        finding_id: &f.finding_id,
                        rule_id: &f.rule_id,
                        severity: f.severity,
                        title: &f.title,
                        identity_id: &f.identity_id,
                        identity_name: &f.identity_name,
                        suppressed: f.suppressed,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> [Column; 3] {
        [
            Column {
                header: "A",
                min_width: 10,
                rank: 2,
                fit: Fit::Rest,
            },
            Column {
                header: "B",
                min_width: 10,
                rank: 0,
                fit: Fit::Content,
            },
            Column {
                header: "C",
                min_width: 10,
                rank: 1,
                fit: Fit::AtMost(12),
            },
        ]
    }

    /// The most important columns stay, in their own order; the first always does.
    #[test]
    fn narrow_widths_drop_the_least_important_columns_first() {
        assert_eq!(fitting(&columns(), 100), vec![0, 1, 2]);
        assert_eq!(fitting(&columns(), 24), vec![1, 2]);
        assert_eq!(fitting(&columns(), 12), vec![1]);
        assert_eq!(fitting(&columns(), 3), vec![1]);
    }

    /// A long cell ends in an ellipsis and no line is wider than the table.
    #[test]
    fn long_cells_are_cut_with_an_ellipsis() {
        let rows = vec![vec!["x".repeat(200), "short".into(), "mid".into()]];
        let text = table(&columns(), &rows, 40);
        assert!(text.lines().all(|l| l.chars().count() <= 40), "{text}");
        assert!(text.contains('…'), "{text}");
        assert_eq!(text.lines().count(), 3, "header, rule, one row: {text}");
    }
}
