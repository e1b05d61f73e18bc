//! `report.html`: a self-contained HTML report of one run, for people.
//!
//! [`render`] is a pure function of the run's manifest, identities, findings and change events,
//! and of the run's [`Totals`]. In a large run those lists are the part a [`Selection`] picks
//! (the most severe subjects and changes, bounded), while the headline numbers still count the
//! whole run; the NDJSON files stay the complete record.
//! The page it returns is one file that makes no network request: the CSS and a small vanilla
//! script are inline, the severity chart is inline SVG, and a Content-Security-Policy meta tag
//! forbids every external load (`default-src 'none'`; the script is allowed by its SHA-256
//! hash, so even a string that slipped past escaping could not run as script).
//!
//! Every string that comes from the data (display names, evidence, remediation, suppression
//! reasons, error messages) is HTML-escaped: those strings are attacker-influenced, since anyone
//! who can name an Azure resource or a service principal chooses them. The script reads only
//! `data-*` attributes written by this module; no data is ever placed in a script or an event
//! handler.
//!
//! Without JavaScript everything is visible and each identity still opens with a native
//! `<details>` element; the script only adds the filters (severity, rule, kind, text,
//! suppressed) and "expand all".

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use base64::Engine as _;
use time::OffsetDateTime;

use crate::assess::IdentityRecord;
use crate::changes::{Change, ChangeType, FindingState};
use crate::classification::Tier;
use crate::model::{RoleState, Severity, SubjectKind};
use crate::results::records::{Manifest, RunState, SeverityCounts, Trigger};
use crate::rules::Finding;

/// Subjects (identities and other principals) the report details at most: the most severe
/// first. A larger run is still complete in its NDJSON files; a page beyond this size no longer
/// opens in a browser.
pub const MAX_SUBJECTS: usize = 2_000;

/// Change events the report lists at most: the most severe first.
pub const MAX_CHANGES: usize = 1_000;

/// Everything the report shows: one run's published records, or the most severe part of them
/// with the run's totals.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// The run's manifest (tenant, run id, status, counts, gaps, errors).
    pub manifest: &'a Manifest,
    /// The managed identities (`identities.ndjson`).
    pub identities: &'a [IdentityRecord],
    /// All findings, including those about credential-bearing service principals, which have
    /// `identityKind: servicePrincipal` and no identity record (`findings.ndjson`).
    pub findings: &'a [Finding],
    /// Changes since the previous complete run (`changes.ndjson`).
    pub changes: &'a [Change],
    /// Totals of the whole run; larger than the lists above when they are a selection.
    pub totals: &'a Totals,
}

/// The whole run's counts, which the headline numbers and the chart show even when the lists
/// are a selection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Findings by severity.
    pub findings: SeverityCounts,
    /// Suppressed findings by severity.
    pub suppressed: SeverityCounts,
    /// Change events by type.
    pub changes: crate::changes::ChangeCounts,
    /// Subjects the report would list: every managed identity and every other principal that
    /// has a finding.
    pub subjects: usize,
}

impl Totals {
    /// The totals of complete lists.
    pub fn of(identities: &[IdentityRecord], findings: &[Finding], changes: &[Change]) -> Self {
        let mut totals = Self {
            changes: crate::changes::count(changes),
            ..Self::default()
        };
        totals.add(identities, findings);
        totals
    }

    /// Adds a chunk of the assessment (its findings are about its identities, or about
    /// principals no other chunk has findings about).
    pub fn add(&mut self, identities: &[IdentityRecord], findings: &[Finding]) {
        let records: BTreeSet<&str> = identities.iter().map(|r| r.id.as_str()).collect();
        let mut others: BTreeSet<&str> = BTreeSet::new();
        for finding in findings {
            self.findings.add(finding.severity);
            if finding.suppressed {
                self.suppressed.add(finding.severity);
            }
            if !records.contains(finding.identity_id.as_str()) {
                others.insert(finding.identity_id.as_str());
            }
        }
        self.subjects += identities.len() + others.len();
    }
}

/// The order subjects are listed in: most severe first, then most findings, highest tier, name
/// and id. [`Selection`] keeps the first [`MAX_SUBJECTS`] in this order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SubjectRank {
    highest: std::cmp::Reverse<Option<Severity>>,
    findings: std::cmp::Reverse<usize>,
    tier: std::cmp::Reverse<Option<Tier>>,
    name: String,
    id: String,
}

impl SubjectRank {
    fn of(s: &Subject<'_>) -> Self {
        Self {
            highest: std::cmp::Reverse(s.highest()),
            findings: std::cmp::Reverse(s.findings.len()),
            tier: std::cmp::Reverse(s.tier),
            name: s.name.to_lowercase(),
            id: s.id.to_owned(),
        }
    }
}

/// Picks what a bounded report shows from an assessment walked a chunk at a time: the
/// [`MAX_SUBJECTS`] first subjects in report order and the [`MAX_CHANGES`] most severe changes.
/// It holds only ranks and at most that many change events.
#[derive(Debug, Default)]
pub struct Selection {
    subjects: BinaryHeap<SubjectRank>,
    changes: BinaryHeap<RankedChange>,
}

/// A change with its rank: most severe first (the newer side, or the older for a resolved
/// finding), then change type and finding id.
#[derive(Debug, PartialEq, Eq)]
struct RankedChange {
    rank: (Reverse<Option<Severity>>, ChangeType, String),
    change: Change,
}

impl PartialOrd for RankedChange {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RankedChange {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&other.rank)
    }
}

impl Selection {
    /// Ranks a chunk's subjects.
    pub fn add_subjects(&mut self, identities: &[IdentityRecord], findings: &[Finding]) {
        for subject in group_subjects(identities, findings) {
            self.subjects.push(SubjectRank::of(&subject));
            if self.subjects.len() > MAX_SUBJECTS {
                self.subjects.pop();
            }
        }
    }

    /// Offers change events.
    pub fn add_changes(&mut self, changes: Vec<Change>) {
        for change in changes {
            let severity = change
                .after
                .as_ref()
                .or(change.before.as_ref())
                .map(|s| s.severity);
            let rank = (
                Reverse(severity),
                change.change_type,
                change.finding_id.clone(),
            );
            self.changes.push(RankedChange { rank, change });
            if self.changes.len() > MAX_CHANGES {
                self.changes.pop();
            }
        }
    }

    /// The ids of the chosen subjects (lower-case), and the chosen changes in report order.
    pub fn finish(self) -> (BTreeSet<String>, Vec<Change>) {
        let ids = self
            .subjects
            .into_iter()
            .map(|rank| rank.id.to_ascii_lowercase())
            .collect();
        let changes = self
            .changes
            .into_sorted_vec()
            .into_iter()
            .map(|ranked| ranked.change)
            .collect();
        (ids, changes)
    }
}

/// Severities from the most to the least severe, as the report lists them.
const SEVERITIES: [Severity; 5] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
    Severity::Info,
];

/// Renders the report as one self-contained HTML document.
pub fn render(input: &ReportInput<'_>) -> String {
    render_chunks(input).collect()
}

/// The report as a sequence of HTML fragments, produced lazily: the page head and summary, then
/// one fragment per managed identity, then the rest. Writing the chunks as they come keeps memory
/// flat for tenants of tens of thousands of identities.
pub fn render_chunks<'a>(input: &'a ReportInput<'a>) -> impl Iterator<Item = String> + Send + 'a {
    let subjects = group_subjects(input.identities, input.findings);
    let head = render_head(input, &subjects);
    let (identities, others): (Vec<Subject<'a>>, Vec<Subject<'a>>) =
        subjects.into_iter().partition(|s| s.record.is_some());
    let tail = render_tail(input, &identities, &others);
    let rows = identities.into_iter().map(|subject| {
        let mut out = String::with_capacity(4 * 1024);
        render_subject(&mut out, &subject);
        out
    });
    std::iter::once(head)
        .chain(rows)
        .chain(std::iter::once(tail))
}

/// Everything before the first identity row.
fn render_head(input: &ReportInput<'_>, subjects: &[Subject<'_>]) -> String {
    let manifest = input.manifest;
    let script_hash = base64::engine::general_purpose::STANDARD.encode(sha256(SCRIPT.as_bytes()));
    let mut out = String::with_capacity(64 * 1024 + input.changes.len() * 512);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; \
         base-uri 'none'; form-action 'none'\">\n"
    ));
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"generator\" content=\"mi-assess\">\n");
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    out.push_str(&format!(
        "<title>mi-assess report · {} · {}</title>\n",
        esc(display_or(&manifest.tenant_id, "unknown tenant")),
        esc(&format_time(manifest.started_at))
    ));
    out.push_str("<style>\n");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n");

    render_header(&mut out, manifest);
    out.push_str("<main class=\"wrap\">\n");
    render_problems(&mut out, manifest);
    render_overview(&mut out, input);
    let listed: BTreeSet<String> = subjects.iter().map(|s| anchor(s.id)).collect();
    render_changes(&mut out, input.changes, input.totals.changes, &listed);
    render_filters(&mut out, input.findings, subjects);
    if subjects.len() < input.totals.subjects {
        out.push_str(&format!(
            "<div class=\"callout callout-info\" id=\"report-truncated\">This report details the {} most \
             severe of {} subjects ({} managed identities in all). identities.ndjson and findings.ndjson \
             in the same folder hold every record.</div>\n",
            subjects.len(),
            input.totals.subjects,
            input.manifest.counts.identities
        ));
    }
    let identities = subjects.iter().filter(|s| s.record.is_some()).count();
    render_identities_open(&mut out, identities);
    out
}

/// Everything after the last identity row.
fn render_tail(
    input: &ReportInput<'_>,
    identities: &[Subject<'_>],
    others: &[Subject<'_>],
) -> String {
    let manifest = input.manifest;
    let mut out = String::with_capacity(16 * 1024 + others.len() * 4096);
    render_identities_close(&mut out, identities.len());
    render_other_subjects(&mut out, manifest, others);
    out.push_str("</main>\n");
    out.push_str(&format!(
        "<footer class=\"wrap foot\">Generated by mi-assess {} from run <span class=\"mono\">{}</span> \
         (schema {}). This file is self-contained: it loads nothing from the network.</footer>\n",
        esc(&manifest.tool_version),
        esc(&manifest.run_id.to_string()),
        esc(&manifest.schema_version)
    ));
    out.push_str("<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Subjects: managed identities with their findings, and the other principals findings are about.

/// A principal the report lists, with its findings.
struct Subject<'a> {
    /// The identity record, for managed identities in `identities.ndjson`.
    record: Option<&'a IdentityRecord>,
    /// Object id.
    id: &'a str,
    /// Display name.
    name: &'a str,
    /// Kind of principal.
    kind: SubjectKind,
    /// Tier, from the record or the findings.
    tier: Option<Tier>,
    /// Its findings, most severe first.
    findings: Vec<&'a Finding>,
}

impl Subject<'_> {
    /// The most severe of its findings.
    fn highest(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Pairs findings with identity records; findings about anything else (credential-bearing
/// service principals, or an identity missing from the list) become subjects of their own.
/// Returns the identities first, then the others, each sorted most severe first.
fn group_subjects<'a>(
    identities: &'a [IdentityRecord],
    findings: &'a [Finding],
) -> Vec<Subject<'a>> {
    let mut by_id: BTreeMap<String, Vec<&'a Finding>> = BTreeMap::new();
    for finding in findings {
        by_id
            .entry(finding.identity_id.to_ascii_lowercase())
            .or_default()
            .push(finding);
    }
    let mut subjects: Vec<Subject<'a>> = Vec::with_capacity(identities.len());
    for record in identities {
        let findings = by_id
            .remove(&record.id.to_ascii_lowercase())
            .unwrap_or_default();
        subjects.push(Subject {
            record: Some(record),
            id: &record.id,
            name: record.display_name.as_deref().unwrap_or(""),
            kind: record.kind.into(),
            tier: record.tier,
            findings,
        });
    }
    let mut others: Vec<Subject<'a>> = by_id
        .into_values()
        .filter_map(|findings| {
            let first = *findings.first()?;
            Some(Subject {
                record: None,
                id: &first.identity_id,
                name: &first.identity_name,
                kind: first.identity_kind,
                tier: findings.iter().filter_map(|f| f.tier).max(),
                findings,
            })
        })
        .collect();
    for subject in subjects.iter_mut().chain(others.iter_mut()) {
        subject.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.rule_id.cmp(&b.rule_id))
                .then_with(|| a.title.cmp(&b.title))
        });
    }
    subjects.sort_by_cached_key(SubjectRank::of);
    others.sort_by_cached_key(SubjectRank::of);
    subjects.extend(others);
    subjects
}

// ---------------------------------------------------------------------------------------------
// Sections.

/// The dark banner: tenant, status, run facts.
fn render_header(out: &mut String, m: &Manifest) {
    let status = m.status.as_str();
    out.push_str("<header class=\"top\"><div class=\"wrap\">\n");
    out.push_str("<div class=\"eyebrow\">mi-assess · Managed identity assessment</div>\n");
    out.push_str(&format!(
        "<div class=\"titlebar\"><h1>Tenant <span class=\"mono\" id=\"tenant-id\">{}</span></h1>\
         <span class=\"status status-{status}\" id=\"run-status\">{}</span></div>\n",
        esc(display_or(&m.tenant_id, "unknown")),
        esc(&status_label(m.status))
    ));
    let duration = m.finished_at - m.started_at;
    let facts: [(&str, String, bool); 8] = [
        ("Run id", m.run_id.to_string(), true),
        ("Trigger", trigger_label(m.trigger).to_owned(), false),
        ("Started", format_time(m.started_at), false),
        ("Finished", format_time(m.finished_at), false),
        (
            "Duration",
            format_duration(duration.as_seconds_f64()),
            false,
        ),
        ("Graph requests", m.graph.requests.to_string(), false),
        (
            "Graph resource units",
            m.graph.resource_units.to_string(),
            false,
        ),
        (
            "Throttled · retries",
            format!("{} · {}", m.graph.throttled, m.graph.retries),
            false,
        ),
    ];
    out.push_str("<dl class=\"facts\">");
    for (label, value, mono) in facts {
        out.push_str(&format!(
            "<div{}><dt>{}</dt><dd{}>{}</dd></div>",
            if mono { " class=\"wide\"" } else { "" },
            esc(label),
            if mono { " class=\"mono\"" } else { "" },
            esc(&value)
        ));
    }
    if let Some(invocation) = &m.invocation_id {
        out.push_str(&format!(
            "<div class=\"wide\"><dt>Invocation</dt><dd class=\"mono\">{}</dd></div>",
            esc(invocation)
        ));
    }
    out.push_str("</dl>\n</div></header>\n");
}

/// The status callout, collection gaps and errors, when there are any.
fn render_problems(out: &mut String, m: &Manifest) {
    match m.status {
        RunState::Complete => {}
        RunState::Partial => out.push_str(
            "<div class=\"callout callout-partial\" role=\"alert\"><strong>Partial run.</strong> \
             Some data could not be collected, so findings may be missing. The gaps are listed \
             below.</div>\n",
        ),
        RunState::Failed => out.push_str(
            "<div class=\"callout callout-failed\" role=\"alert\"><strong>Failed run.</strong> \
             The run stopped before its results could be trusted. Do not treat an absent \
             finding as a pass.</div>\n",
        ),
        RunState::Queued | RunState::Running => out.push_str(&format!(
            "<div class=\"callout callout-partial\" role=\"alert\"><strong>Unfinished run \
             ({}).</strong> These results are not final.</div>\n",
            esc(m.status.as_str())
        )),
    }
    if !m.skipped.is_empty() {
        out.push_str(
            "<section class=\"card\" id=\"gaps\"><h2>Data not collected</h2>\
             <p class=\"muted\">What this run could not read, and the permission that would close \
             each gap.</p><div class=\"table-scroll\"><table class=\"grid\"><thead><tr>\
             <th>Data set</th><th>Principals</th><th>HTTP</th><th>Reason</th>\
             <th>Needs permission</th></tr></thead><tbody>\n",
        );
        for gap in &m.skipped {
            out.push_str(&format!(
                "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td>{}</td><td class=\"mono\">{}</td></tr>\n",
                esc(gap.dataset.as_str()),
                if gap.principals == 0 {
                    "tenant-wide".to_owned()
                } else {
                    gap.principals.to_string()
                },
                gap.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "—".to_owned()),
                esc(&if gap.affects_status {
                    gap.reason.clone()
                } else {
                    format!(
                        "{} (allowed by configuration: the run is not partial)",
                        gap.reason
                    )
                }),
                esc(gap.needs_permission.as_deref().unwrap_or("—"))
            ));
        }
        out.push_str("</tbody></table></div></section>\n");
    }
    if !m.errors.is_empty() {
        out.push_str(
            "<section class=\"card\" id=\"errors\"><h2>Errors</h2><div class=\"table-scroll\">\
             <table class=\"grid\"><thead><tr><th>Stage</th><th>Message</th></tr></thead><tbody>\n",
        );
        for error in &m.errors {
            out.push_str(&format!(
                "<tr><td class=\"mono\">{}</td><td>{}</td></tr>\n",
                esc(&error.stage),
                esc(&error.message)
            ));
        }
        out.push_str("</tbody></table></div></section>\n");
    }
}

/// Headline numbers and the severity chart.
fn render_overview(out: &mut String, input: &ReportInput<'_>) {
    let m = input.manifest;
    let counts = &input.totals.findings;
    let suppressed = input.totals.suppressed.total();
    let changes = input.totals.changes;
    out.push_str("<section class=\"overview\" id=\"overview\">\n<div class=\"cards\">\n");
    let identities = input.identities.len().max(m.counts.identities);
    stat_card(
        out,
        "Managed identities",
        &identities.to_string(),
        &format!(
            "{} system-assigned · {} user-assigned",
            m.counts.system_assigned, m.counts.user_assigned
        ),
    );
    stat_card(
        out,
        "Credential-bearing service principals",
        &m.counts
            .credential_service_principals
            .map(|n| n.to_string())
            .unwrap_or_else(|| "?".to_owned()),
        if m.counts.credential_service_principals.is_some() {
            "application service principals holding secrets or certificates"
        } else {
            "could not be listed in this run"
        },
    );
    stat_card(
        out,
        "Findings",
        &counts.total().to_string(),
        &if suppressed == 0 {
            "none suppressed".to_owned()
        } else {
            format!("{suppressed} suppressed (accepted risk)")
        },
    );
    stat_card(
        out,
        "Changes since last run",
        &changes.total().to_string(),
        &format!(
            "{} new · {} resolved · {} severity changed",
            changes.new, changes.resolved, changes.severity_changed
        ),
    );
    out.push_str(
        "</div>\n<div class=\"card chart-card\" id=\"severity\">\n<h2>Findings by severity</h2>\n",
    );
    render_chart(out, counts, &input.totals.suppressed);
    out.push_str(&format!(
        "<p class=\"chart-note\">{} findings in total{}. Fix critical and high first: they are paths \
         to tenant takeover or to broad data access.</p>\n",
        counts.total(),
        if suppressed > 0 {
            format!("; hatched: {suppressed} suppressed as accepted risk")
        } else {
            String::new()
        }
    ));
    out.push_str("</div>\n</section>\n");
}

/// One headline number.
fn stat_card(out: &mut String, label: &str, value: &str, note: &str) {
    out.push_str(&format!(
        "<div class=\"card stat\"><div class=\"stat-label\">{}</div><div class=\"stat-value\">{}</div>\
         <div class=\"stat-note\">{}</div></div>\n",
        esc(label),
        esc(value),
        esc(note)
    ));
}

/// The inline SVG bar chart of findings per severity; suppressed findings are hatched.
fn render_chart(out: &mut String, counts: &SeverityCounts, suppressed: &SeverityCounts) {
    const LABEL_W: f64 = 92.0;
    const BAR_MAX: f64 = 430.0;
    const ROW_H: f64 = 34.0;
    let rows: Vec<(Severity, usize, usize)> = SEVERITIES
        .iter()
        .map(|&s| (s, severity_count(counts, s), severity_count(suppressed, s)))
        .collect();
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let height = ROW_H * rows.len() as f64 + 8.0;
    let desc = rows
        .iter()
        .map(|(s, n, supp)| {
            if *supp > 0 {
                format!("{}: {n} ({supp} suppressed)", severity_label(*s))
            } else {
                format!("{}: {n}", severity_label(*s))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    out.push_str(&format!(
        "<svg class=\"chart\" viewBox=\"0 0 700 {height}\" width=\"700\" height=\"{height}\" \
         role=\"img\" aria-labelledby=\"chart-title chart-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">Findings by severity</title><desc id=\"chart-desc\">{}</desc>\
         <defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffffff\" \
         fill-opacity=\"0.45\"/><rect width=\"3\" height=\"6\" class=\"hatch-line\"/></pattern></defs>\n",
        esc(&desc)
    ));
    for (i, (severity, n, suppressed)) in rows.iter().enumerate() {
        let y = 4.0 + ROW_H * i as f64;
        let w = if *n == 0 {
            0.0
        } else {
            (BAR_MAX * *n as f64 / max).max(3.0)
        };
        let sw = if *n == 0 {
            0.0
        } else {
            w * *suppressed as f64 / *n as f64
        };
        let sev = severity.as_str();
        out.push_str(&format!(
            "<g class=\"bar sev-{sev}\" data-severity=\"{sev}\" data-count=\"{n}\">\
             <text class=\"bar-label\" x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar-track\" x=\"{LABEL_W}\" y=\"{by}\" width=\"{BAR_MAX}\" height=\"22\" rx=\"4\"/>",
            lx = LABEL_W - 12.0,
            ty = y + 17.0,
            by = y + 2.0,
            label = severity_label(*severity),
        ));
        if w > 0.0 {
            out.push_str(&format!(
                "<rect class=\"bar-fill\" x=\"{LABEL_W}\" y=\"{by}\" width=\"{w:.1}\" height=\"22\" rx=\"4\"/>",
                by = y + 2.0
            ));
        }
        if sw > 0.0 {
            out.push_str(&format!(
                "<rect class=\"bar-suppressed\" x=\"{x:.1}\" y=\"{by}\" width=\"{sw:.1}\" height=\"22\" \
                 fill=\"url(#hatch)\"/>",
                x = LABEL_W + w - sw,
                by = y + 2.0
            ));
        }
        let note = if *suppressed > 0 {
            format!(" <tspan class=\"bar-note\">({suppressed} suppressed)</tspan>")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<text class=\"bar-value\" x=\"{vx:.1}\" y=\"{ty}\">{n}{note}</text></g>\n",
            vx = LABEL_W + w + 8.0,
            ty = y + 18.0
        ));
    }
    out.push_str("</svg>\n");
}

/// Counts of change events and their table.
/// `listed` holds the anchors of the subjects on the page: a change about one of them links to
/// its row.
fn render_changes(
    out: &mut String,
    changes: &[Change],
    counts: crate::changes::ChangeCounts,
    listed: &BTreeSet<String>,
) {
    out.push_str("<section class=\"card\" id=\"changes\">\n<h2>Changes since the last run</h2>\n");
    if changes.is_empty() {
        out.push_str(
            "<p class=\"muted\" id=\"changes-none\">No changes: the findings are the same as in the \
             previous complete run.</p>\n</section>\n",
        );
        return;
    }
    let first_run = changes.iter().all(|c| c.previous_run_id.is_none());
    out.push_str(&format!(
        "<div class=\"change-counts\"><span class=\"pill change-new\">{} new</span>\
         <span class=\"pill change-resolved\">{} resolved</span>\
         <span class=\"pill change-severityChanged\">{} severity changed</span></div>\n",
        counts.new, counts.resolved, counts.severity_changed
    ));
    if first_run {
        out.push_str(
            "<p class=\"muted\" id=\"changes-first-run\">First run for this tenant: everything is \
             new.</p>\n<details class=\"changes-more\"><summary>Show the change events</summary>\n",
        );
    } else if let Some(previous) = changes.iter().find_map(|c| c.previous_run_id) {
        let at = changes
            .iter()
            .find_map(|c| c.previous_run_at)
            .map(format_time)
            .unwrap_or_default();
        out.push_str(&format!(
            "<p class=\"muted\">Compared with run <span class=\"mono\">{}</span>{}.</p>\n",
            esc(&previous.to_string()),
            if at.is_empty() {
                String::new()
            } else {
                format!(", finished {}", esc(&at))
            }
        ));
    }
    out.push_str(
        "<div class=\"table-scroll\"><table class=\"grid changes-table\"><thead><tr><th>Change</th>\
         <th>Severity</th><th>Rule</th><th>Subject</th><th>Finding</th></tr></thead><tbody>\n",
    );
    for change in changes {
        let kind = match change.change_type {
            ChangeType::New => "new",
            ChangeType::Resolved => "resolved",
            ChangeType::SeverityChanged => "severityChanged",
        };
        let name = esc(display_or(&change.identity_name, &change.identity_id));
        let target = anchor(&change.identity_id);
        let subject_cell = if listed.contains(&target) {
            format!("<a href=\"#{target}\">{name}</a>")
        } else {
            name
        };
        out.push_str(&format!(
            "<tr class=\"change-row\" data-change=\"{kind}\"><td><span class=\"pill change-{kind}\">{}</span></td>\
             <td class=\"nowrap\">{}</td><td class=\"mono nowrap\">{}</td>\
             <td>{}</td><td>{}</td></tr>\n",
            change_label(change.change_type),
            change_severity(change.before.as_ref(), change.after.as_ref()),
            esc(&change.rule_id),
            subject_cell,
            esc(&change.title)
        ));
    }
    out.push_str("</tbody></table></div>\n");
    if changes.len() < counts.total() {
        out.push_str(&format!(
            "<p class=\"muted\" id=\"changes-truncated\">Showing the {} most severe of {} change \
             events; changes.ndjson lists them all.</p>\n",
            changes.len(),
            counts.total()
        ));
    }
    if first_run {
        out.push_str("</details>\n");
    }
    out.push_str("</section>\n");
}

/// The before → after severity cell of a change, with suppression state changes.
fn change_severity(before: Option<&FindingState>, after: Option<&FindingState>) -> String {
    let badge = |s: &FindingState| {
        let mut html = severity_badge(s.severity);
        if s.suppressed {
            html.push_str(" <span class=\"tag tag-suppressed\">suppressed</span>");
        }
        html
    };
    match (before, after) {
        (Some(b), Some(a)) => format!("{} <span class=\"arrow\">→</span> {}", badge(b), badge(a)),
        (None, Some(a)) => badge(a),
        (Some(b), None) => format!("<span class=\"was\">{}</span>", badge(b)),
        (None, None) => "—".to_owned(),
    }
}

/// The filter bar (shown only when the script runs).
fn render_filters(out: &mut String, findings: &[Finding], subjects: &[Subject<'_>]) {
    let counts = SeverityCounts::of(findings);
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for finding in findings {
        *rules.entry(finding.rule_id.as_str()).or_default() += 1;
    }
    let kinds: BTreeSet<SubjectKind> = subjects.iter().map(|s| s.kind).collect();
    out.push_str(
        "<form class=\"filters needs-js\" id=\"filters\" role=\"search\" aria-label=\"Filter identities and findings\">\n\
         <fieldset class=\"sev-filter\"><legend>Severity</legend>",
    );
    for severity in SEVERITIES {
        let sev = severity.as_str();
        out.push_str(&format!(
            "<label class=\"chip sev-{sev}\"><input type=\"checkbox\" name=\"severity\" value=\"{sev}\" \
             checked> <span class=\"dot\"></span>{} <span class=\"chip-n\">{}</span></label>",
            severity_label(severity),
            severity_count(&counts, severity)
        ));
    }
    out.push_str("</fieldset>\n<label class=\"field\"><span>Rule</span><select name=\"rule\" id=\"filter-rule\">\
                  <option value=\"\">All rules</option>");
    for (rule, n) in &rules {
        let title = crate::rules::rule(rule).map(|r| r.title).unwrap_or("");
        out.push_str(&format!(
            "<option value=\"{}\">{}{} ({n})</option>",
            esc(rule),
            esc(rule),
            if title.is_empty() {
                String::new()
            } else {
                format!(" · {}", esc(&truncate(title, 48)))
            }
        ));
    }
    out.push_str("</select></label>\n<label class=\"field\"><span>Kind</span><select name=\"kind\" id=\"filter-kind\">\
                  <option value=\"\">All kinds</option>");
    for kind in kinds {
        out.push_str(&format!(
            "<option value=\"{}\">{}</option>",
            subject_kind_str(kind),
            subject_kind_label(kind)
        ));
    }
    out.push_str(
        "</select></label>\n<label class=\"field grow\"><span>Search</span><input type=\"search\" \
         name=\"text\" id=\"filter-text\" placeholder=\"Name, object id, resource…\" autocomplete=\"off\"></label>\n\
         <label class=\"check\"><input type=\"checkbox\" name=\"suppressed\" id=\"filter-suppressed\" checked> \
         Show suppressed</label>\n<div class=\"filter-actions\"><button type=\"reset\">Reset</button>\
         <button type=\"button\" id=\"expand-all\">Expand all</button>\
         <button type=\"button\" id=\"collapse-all\">Collapse all</button></div>\n\
         <div class=\"filter-status\" id=\"filter-status\" aria-live=\"polite\"></div>\n</form>\n",
    );
}

/// The managed identities, one expandable row each.
/// Opens the identities section (rows follow, one fragment each).
fn render_identities_open(out: &mut String, count: usize) {
    out.push_str(&format!(
        "<section class=\"card list\" id=\"identities\"><h2>Managed identities <span class=\"count\">{}</span></h2>\n\
         <p class=\"muted\">Click a row to see its privileges and findings, with the evidence and the exact \
         remediation.</p>\n",
        count
    ));
    if count == 0 {
        out.push_str("<p class=\"empty-state\">No managed identities were found.</p>\n");
        return;
    }
    subject_head(out, "Resource");
}

/// Closes the identities section.
fn render_identities_close(out: &mut String, count: usize) {
    if count > 0 {
        out.push_str(
            "<p class=\"empty-state\" data-empty-for=\"identities\" hidden>No identity matches the filters.</p>\n",
        );
    }
    out.push_str("</section>\n");
}

/// Credential-bearing service principals, and any other subject without an identity record.
fn render_other_subjects(out: &mut String, m: &Manifest, subjects: &[Subject<'_>]) {
    let others: Vec<&Subject<'_>> = subjects.iter().filter(|s| s.record.is_none()).collect();
    // Deleted principals of Azure role assignments (MI-ORPH-003) are service principals too, but
    // not credential-bearing ones.
    let all_service_principals = others.iter().all(|s| {
        s.kind == SubjectKind::ServicePrincipal
            && !s.findings.iter().all(|f| f.rule_id == "MI-ORPH-003")
    });
    let title = if all_service_principals {
        "Credential-bearing service principals"
    } else {
        "Service principals and other subjects"
    };
    out.push_str(&format!(
        "<section class=\"card list\" id=\"service-principals\"><h2>{title} <span class=\"count\">{}</span></h2>\n",
        others.len()
    ));
    let note = match m.counts.credential_service_principals {
        None => {
            "The credential-bearing service principals could not be listed in this run, so none \
                 was assessed."
                .to_owned()
        }
        Some(n) => format!(
            "Application service principals that authenticate with secrets or certificates ({n} in the \
             tenant). They are not managed identities; the findings below say which could move to one."
        ),
    };
    let note = if all_service_principals {
        note
    } else {
        format!(
            "{note} Principals that no longer exist in Entra but still hold Azure role assignments \
             (MI-ORPH-003) are listed here too."
        )
    };
    out.push_str(&format!("<p class=\"muted\">{}</p>\n", esc(&note)));
    if others.is_empty() {
        out.push_str(
            "<p class=\"empty-state\">No findings about service principals.</p>\n</section>\n",
        );
        return;
    }
    subject_head(out, "Type");
    for subject in others {
        render_subject(out, subject);
    }
    out.push_str(
        "<p class=\"empty-state\" data-empty-for=\"service-principals\" hidden>No service principal \
         matches the filters.</p>\n</section>\n",
    );
}

/// The column headings of a subject list.
fn subject_head(out: &mut String, resource: &str) {
    out.push_str(&format!(
        "<div class=\"row row-head\" aria-hidden=\"true\"><span></span><span>Display name</span>\
         <span>Kind</span><span>{}</span><span>Tier</span><span class=\"num\">Findings</span>\
         <span>Highest</span></div>\n",
        esc(resource)
    ));
}

/// One subject: a `<details>` whose summary is the row, and whose body holds its facts,
/// privileges and findings.
fn render_subject(out: &mut String, s: &Subject<'_>) {
    let kind = subject_kind_str(s.kind);
    let highest = s.highest();
    let sevs: BTreeSet<&str> = s.findings.iter().map(|f| f.severity.as_str()).collect();
    let rules: BTreeSet<&str> = s.findings.iter().map(|f| f.rule_id.as_str()).collect();
    let mut search = format!("{} {}", s.name, s.id);
    if let Some(r) = s.record {
        for part in [
            &r.app_id,
            &r.resource_id,
            &r.resource_group,
            &r.management_group,
        ]
        .into_iter()
        .flatten()
        {
            search.push(' ');
            search.push_str(part);
        }
    }
    let suppressed = s.findings.iter().filter(|f| f.suppressed).count();
    out.push_str(&format!(
        "<details class=\"subject\" id=\"{}\" data-kind=\"{kind}\" data-severities=\"{}\" data-rules=\"{}\" \
         data-search=\"{}\" data-findings=\"{}\">\n<summary class=\"row\">",
        anchor(s.id),
        sevs.into_iter().collect::<Vec<_>>().join(" "),
        esc(&rules.into_iter().collect::<Vec<_>>().join(" ")),
        esc(&search.to_lowercase()),
        s.findings.len()
    ));
    // Chevron, name and id.
    let disabled = s.record.is_some_and(|r| r.account_enabled == Some(false));
    out.push_str(&format!(
        "<span class=\"chev\" aria-hidden=\"true\"></span><span class=\"name\"><span class=\"dn\">{}</span>{}\
         <span class=\"oid mono\">{}</span></span>",
        esc(display_or(s.name, "(no display name)")),
        if disabled {
            " <span class=\"tag tag-disabled\">disabled</span>"
        } else {
            ""
        },
        esc(s.id)
    ));
    out.push_str(&format!(
        "<span><span class=\"kind kind-{kind}\">{}</span></span>",
        subject_kind_label(s.kind)
    ));
    // Resource.
    match s.record {
        Some(r) => {
            let scope = match (&r.resource_group, &r.management_group) {
                (Some(rg), _) => format!("rg {rg}"),
                (None, Some(mg)) => format!("mg {mg}"),
                (None, None) => String::new(),
            };
            let type_line = [r.resource_type.as_deref().unwrap_or(""), scope.as_str()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" · ");
            out.push_str(&format!(
                "<span class=\"res\"><span class=\"res-name\">{}</span><span class=\"res-type\">{}</span></span>",
                esc(r.resource_name.as_deref().unwrap_or("—")),
                esc(&type_line)
            ));
        }
        None => out.push_str(&format!(
            "<span class=\"res\"><span class=\"res-name\">{}</span></span>",
            match s.kind {
                SubjectKind::ServicePrincipal => "Application",
                _ => "—",
            }
        )),
    }
    out.push_str(&format!("<span>{}</span>", tier_badge(s.tier)));
    out.push_str(&format!(
        "<span class=\"num\"><span class=\"fcount{}\">{}</span>{}</span>",
        if s.findings.is_empty() { " zero" } else { "" },
        s.findings.len(),
        if suppressed > 0 {
            format!("<span class=\"fsupp\" title=\"suppressed\">{suppressed} supp.</span>")
        } else {
            String::new()
        }
    ));
    out.push_str(&format!(
        "<span>{}</span>",
        highest
            .map(severity_badge)
            .unwrap_or_else(|| "<span class=\"none\">—</span>".to_owned())
    ));
    out.push_str("</summary>\n<div class=\"subject-body\">\n");
    if let Some(r) = s.record {
        render_record_facts(out, r);
    }
    if s.findings.is_empty() {
        out.push_str("<p class=\"no-findings\">No findings.</p>\n");
    } else {
        out.push_str(&format!(
            "<h3 class=\"findings-h\">Findings ({})</h3>\n<div class=\"findings\">\n",
            s.findings.len()
        ));
        for finding in &s.findings {
            render_finding(out, finding);
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n</details>\n");
}

/// The identity's ids, resource and privileges.
fn render_record_facts(out: &mut String, r: &IdentityRecord) {
    out.push_str("<dl class=\"kv\">");
    // (label, value, monospace, full width)
    let mut kv = |label: &str, value: Option<&str>, mono: bool, wide: bool| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!(
                "<div{}><dt>{}</dt><dd{}>{}</dd></div>",
                if wide { " class=\"wide\"" } else { "" },
                esc(label),
                if mono { " class=\"mono\"" } else { "" },
                esc(v)
            ));
        }
    };
    kv("Object id", Some(&r.id), true, false);
    kv("Application id", r.app_id.as_deref(), true, false);
    kv("Subscription", r.subscription_id.as_deref(), true, false);
    kv(
        "Account",
        r.account_enabled
            .map(|e| if e { "enabled" } else { "disabled" }),
        false,
        false,
    );
    kv("ARM resource", r.resource_id.as_deref(), true, true);
    kv(
        "Classification note",
        r.classification_note.as_deref(),
        false,
        true,
    );
    let unknown = r.unknown.join(", ");
    kv("Could not read", Some(&unknown), false, true);
    out.push_str("</dl>\n<div class=\"privs\">\n");

    priv_block(
        out,
        "Application permissions",
        r.app_roles.as_deref(),
        |role| {
            format!(
                "<li><span class=\"mono\">{}</span> <span class=\"muted\">on {}</span> {}</li>",
                esc(role.permission.as_deref().unwrap_or(&role.app_role_id)),
                esc(role.resource_name.as_deref().unwrap_or(&role.resource_id)),
                tier_badge(Some(role.tier))
            )
        },
    );
    priv_block(
        out,
        "Directory roles",
        r.directory_roles.as_deref(),
        |role| {
            let mut html = format!(
                "<li>{} <span class=\"tag\">{}</span>",
                esc(&role.role_name),
                match role.state {
                    RoleState::Active => "active",
                    RoleState::Eligible => "eligible",
                }
            );
            if !role.is_tenant_scope() {
                html.push_str(&format!(
                    " <span class=\"muted\">scope <span class=\"mono\">{}</span></span>",
                    esc(&role.directory_scope_id)
                ));
            }
            if let Some(group) = &role.via_group {
                html.push_str(&format!(
                    " <span class=\"muted\">via group {}</span>",
                    esc(group.display_name.as_deref().unwrap_or(&group.id))
                ));
            }
            html.push_str(&format!(" {}</li>", tier_badge(Some(role.tier))));
            html
        },
    );
    priv_block(
        out,
        "Azure roles",
        r.azure_role_assignments.as_deref(),
        |role| {
            let mut html = format!(
                "<li>{} <span class=\"muted\">{} <span class=\"mono\">{}</span></span>",
                esc(&role.role_name),
                esc(role.scope_kind.as_str()),
                esc(&role.scope)
            );
            if let Some(group) = &role.via_group {
                html.push_str(&format!(
                    " <span class=\"muted\">via group {}</span>",
                    esc(group.display_name.as_deref().unwrap_or(&group.id))
                ));
            }
            html.push_str(&format!(" {}</li>", tier_badge(Some(role.tier))));
            html
        },
    );
    priv_block(out, "Groups", r.groups.as_deref(), |group| {
        let mut html = format!(
            "<li>{}",
            esc(group.display_name.as_deref().unwrap_or(&group.id))
        );
        if !group.privileged_because.is_empty() {
            html.push_str(&format!(
                " <span class=\"tag tag-warn\">privileged</span> <span class=\"muted\">{}</span>",
                esc(&group.privileged_because.join("; "))
            ));
        }
        html.push_str("</li>");
        html
    });
    priv_block(
        out,
        "Delegated grants",
        r.delegated_grants.as_deref(),
        |grant| {
            format!(
                "<li><span class=\"mono\">{}</span> <span class=\"muted\">on {}{}</span></li>",
                esc(&grant.scopes.join(" ")),
                esc(grant.resource_name.as_deref().unwrap_or(&grant.resource_id)),
                grant
                    .consent_type
                    .as_deref()
                    .map(|c| format!(" · {}", esc(c)))
                    .unwrap_or_default()
            )
        },
    );
    out.push_str("</div>\n");
}

/// A list of privileges of one kind; `None` means the data could not be read.
fn priv_block<T>(out: &mut String, title: &str, items: Option<&[T]>, item: impl Fn(&T) -> String) {
    out.push_str(&format!("<div class=\"priv\"><h4>{}</h4>", esc(title)));
    match items {
        None => out.push_str("<p class=\"unknown\">could not be read</p>"),
        Some([]) => out.push_str("<p class=\"muted\">none</p>"),
        Some(items) => {
            out.push_str("<ul>");
            for i in items {
                out.push_str(&item(i));
            }
            out.push_str("</ul>");
        }
    }
    out.push_str("</div>\n");
}

/// One finding: severity, rule, title, suppression, remediation and evidence.
fn render_finding(out: &mut String, f: &Finding) {
    let sev = f.severity.as_str();
    out.push_str(&format!(
        "<article class=\"finding sev-{sev}{}\" data-severity=\"{sev}\" data-rule=\"{}\" data-suppressed=\"{}\">\n",
        if f.suppressed { " is-suppressed" } else { "" },
        esc(&f.rule_id),
        f.suppressed
    ));
    out.push_str(&format!(
        "<header class=\"finding-head\">{} <span class=\"rule mono\">{}</span>{}<h4 class=\"finding-title\">{}</h4></header>\n",
        severity_badge(f.severity),
        esc(&f.rule_id),
        if f.suppressed {
            " <span class=\"tag tag-suppressed\">suppressed</span>"
        } else {
            ""
        },
        esc(&f.title)
    ));
    if f.suppressed {
        out.push_str("<p class=\"suppression\"><strong>Accepted risk.</strong> ");
        match &f.suppression {
            Some(s) => {
                out.push_str(&format!(
                    "Reason: <span class=\"supp-reason\">{}</span>. Expires <span class=\"supp-expires\">{}</span>",
                    esc(&s.reason),
                    esc(&format_time(s.expires))
                ));
                if let Some(by) = &s.approved_by {
                    out.push_str(&format!("; approved by {}", esc(by)));
                }
                out.push('.');
            }
            None => out.push_str("Suppressed by suppressions.json."),
        }
        out.push_str("</p>\n");
    }
    let evidence =
        serde_json::to_string_pretty(&f.evidence).unwrap_or_else(|_| f.evidence.to_string());
    out.push_str(&format!(
        "<div class=\"finding-body\"><div><h5>Remediation</h5><pre class=\"code remediation\"><code>{}</code></pre></div>\
         <div><h5>Evidence</h5><pre class=\"code evidence\"><code>{}</code></pre></div></div>\n\
         <div class=\"finding-id\">Finding id <span class=\"mono\">{}</span>{}</div>\n</article>\n",
        esc(&f.remediation),
        esc(&evidence),
        esc(&f.finding_id),
        crate::rules::rule(&f.rule_id)
            .map(|r| format!(" · {}", esc(r.title)))
            .unwrap_or_default()
    ));
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline have no business in a report.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An element id / fragment for an object id: ASCII letters, digits and `-` only.
fn anchor(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("subject-{safe}")
}

/// `value`, or `fallback` when it is empty.
fn display_or<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.trim().is_empty() {
        fallback
    } else {
        value
    }
}

/// At most `max` characters, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `2026-11-27 14:12:35 UTC`.
fn format_time(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    utc.format(&format).unwrap_or_else(|_| utc.to_string())
}

/// `105 ms`, `4.2 s`, `42 s`, `3 min 20 s`.
fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".to_owned();
    }
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// The status pill text.
fn status_label(state: RunState) -> String {
    let s = state.as_str();
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What started the run, for people.
fn trigger_label(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Timer => "Nightly timer",
        Trigger::Http => "HTTP request (POST /api/scans)",
        Trigger::Cli => "Command line",
        Trigger::Demo => "Demo tenant",
        Trigger::Replay => "Offline replay",
    }
}

/// `Critical`, `High`, …
fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
        Severity::Info => "Info",
    }
}

/// A coloured severity badge.
fn severity_badge(severity: Severity) -> String {
    format!(
        "<span class=\"sev sev-{}\">{}</span>",
        severity.as_str(),
        severity_label(severity)
    )
}

/// The count of one severity.
fn severity_count(counts: &SeverityCounts, severity: Severity) -> usize {
    match severity {
        Severity::Critical => counts.critical,
        Severity::High => counts.high,
        Severity::Medium => counts.medium,
        Severity::Low => counts.low,
        Severity::Info => counts.info,
    }
}

/// The tier badge (Enterprise Access Model), or a dash.
fn tier_badge(tier: Option<Tier>) -> String {
    match tier {
        Some(t) => {
            let (short, long) = match t {
                Tier::ControlPlane => ("Tier 0", "Control plane"),
                Tier::ManagementPlane => ("Tier 1", "Management plane"),
                Tier::UserAccess => ("Tier 2", "User access"),
            };
            format!(
                "<span class=\"tier tier-{}\" title=\"{long}\"><b>{short}</b> {long}</span>",
                t.as_str()
            )
        }
        None => "<span class=\"none\">—</span>".to_owned(),
    }
}

/// The wire name of a subject kind.
fn subject_kind_str(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::SystemAssigned => "systemAssigned",
        SubjectKind::UserAssigned => "userAssigned",
        SubjectKind::ServicePrincipal => "servicePrincipal",
    }
}

/// A subject kind, for people.
fn subject_kind_label(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::SystemAssigned => "System-assigned",
        SubjectKind::UserAssigned => "User-assigned",
        SubjectKind::ServicePrincipal => "Service principal",
    }
}

/// A change type, for people.
fn change_label(change: ChangeType) -> &'static str {
    match change {
        ChangeType::New => "New",
        ChangeType::Resolved => "Resolved",
        ChangeType::SeverityChanged => "Severity changed",
    }
}

/// SHA-256 (FIPS 180-4), for the script's Content-Security-Policy hash.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (slot, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *slot = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(v);
        }
    }
    let mut digest = [0u8; 32];
    for (chunk, v) in digest.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    digest
}

// ---------------------------------------------------------------------------------------------
// The page's CSS and script. Both are constants: no data is ever interpolated into them.

/// The stylesheet.
const CSS: &str = r#"
:root{--bg:#f3f5f8;--card:#fff;--ink:#18212f;--muted:#5b6778;--line:#e2e7ee;--line2:#eef1f5;--accent:#1d4ed8;
--critical:#9f1239;--high:#dc2626;--medium:#ea580c;--low:#ca8a04;--info:#64748b;
--mono:ui-monospace,"SFMono-Regular","Cascadia Mono",Menlo,Consolas,"Liberation Mono","DejaVu Sans Mono",monospace}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Liberation Sans","DejaVu Sans",sans-serif;color:var(--ink);background:var(--bg);-webkit-text-size-adjust:100%}
body{margin:0}
.wrap{max-width:1280px;margin:0 auto;padding:0 28px}
.mono{font-family:var(--mono);font-size:.92em}
.muted{color:var(--muted)}
.num{text-align:right;font-variant-numeric:tabular-nums}
.nowrap{white-space:nowrap}
h2{font-size:17px;margin:0 0 6px;font-weight:650;letter-spacing:-.01em}
h2 .count{display:inline-block;margin-left:6px;padding:0 8px;border-radius:10px;background:var(--line2);color:var(--muted);font-size:12px;font-weight:600;vertical-align:2px}
p{margin:0 0 10px}
header.top{background:linear-gradient(180deg,#0b1324,#111c33);color:#dbe3ef;padding:26px 0 22px;margin-bottom:22px;border-bottom:3px solid #1d4ed8}
.eyebrow{text-transform:uppercase;letter-spacing:.09em;font-size:11.5px;color:#8fa3c0;font-weight:650}
.titlebar{display:flex;align-items:center;gap:14px;flex-wrap:wrap;margin:6px 0 16px}
.titlebar h1{margin:0;font-size:23px;font-weight:650;color:#fff;letter-spacing:-.01em}
.titlebar h1 .mono{font-size:.86em;color:#e8eefb}
.status{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:700;font-size:12.5px;letter-spacing:.04em;text-transform:uppercase}
.status-complete{background:#dcfce7;color:#14532d}
.status-partial{background:#fbbf24;color:#3b2300;box-shadow:0 0 0 3px rgba(251,191,36,.35)}
.status-failed{background:#ef4444;color:#fff;box-shadow:0 0 0 3px rgba(239,68,68,.35)}
.status-running,.status-queued{background:#93c5fd;color:#0b2a5b}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px 26px;margin:0}
.facts .wide{grid-column:span 2}
.facts div{min-width:0}
.facts dt{font-size:11px;text-transform:uppercase;letter-spacing:.07em;color:#8fa3c0;font-weight:600}
.facts dd{margin:2px 0 0;color:#f1f5fb;font-weight:500;overflow-wrap:anywhere}
.callout{border-radius:8px;padding:12px 16px;margin:0 0 18px;border:1px solid;font-size:14.5px}
.callout-partial{background:#fffbeb;border-color:#f59e0b;color:#78350f}
.callout-failed{background:#fef2f2;border-color:#ef4444;color:#7f1d1d}
.callout-info{background:#eff6ff;border-color:#93c5fd;color:#1e3a8a}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.overview{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.35fr);gap:18px;margin-bottom:0}
.cards{display:grid;grid-template-columns:1fr 1fr;gap:18px;margin-bottom:18px}
.cards .card{margin:0}
.stat-label{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.05em}
.stat-value{font-size:30px;font-weight:700;letter-spacing:-.02em;margin:4px 0 2px;font-variant-numeric:tabular-nums}
.stat-note{font-size:12.5px;color:var(--muted)}
.chart-card h2{margin-bottom:10px}
.chart{width:100%;max-width:820px;height:auto;display:block}
.chart-note{font-size:12.5px;color:var(--muted);margin:10px 0 0}
.bar-label{font-size:13px;font-weight:600;fill:#334155}
.bar-value{font-size:13px;font-weight:700;fill:#18212f}
.bar-note{font-weight:500;fill:#64748b}
.bar-track{fill:#f1f4f8}
.hatch-line{fill:#ffffff;fill-opacity:.55}
.sev-critical .bar-fill{fill:var(--critical)}.sev-high .bar-fill{fill:var(--high)}.sev-medium .bar-fill{fill:var(--medium)}.sev-low .bar-fill{fill:var(--low)}.sev-info .bar-fill{fill:var(--info)}
.sev{display:inline-block;min-width:64px;text-align:center;padding:1px 8px;border-radius:4px;font-size:11.5px;font-weight:700;letter-spacing:.03em;text-transform:uppercase;color:#fff;line-height:1.6}
.sev.sev-critical{background:var(--critical)}.sev.sev-high{background:var(--high)}.sev.sev-medium{background:var(--medium)}.sev.sev-low{background:var(--low)}.sev.sev-info{background:var(--info)}
.tier{display:inline-block;font-size:12px;padding:1px 7px;border-radius:4px;border:1px solid;white-space:nowrap}
.tier b{font-weight:700}
.tier-controlPlane{color:#7f1d1d;background:#fef2f2;border-color:#fecaca}
.tier-managementPlane{color:#7c2d12;background:#fff7ed;border-color:#fed7aa}
.tier-userAccess{color:#334155;background:#f8fafc;border-color:#e2e8f0}
.kind{display:inline-block;font-size:12px;padding:1px 8px;border-radius:999px;font-weight:600;white-space:nowrap}
.kind-systemAssigned{background:#e0ecff;color:#1e3a8a}
.kind-userAssigned{background:#ede9fe;color:#4c1d95}
.kind-servicePrincipal{background:#fde68a;color:#713f12}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:4px;background:var(--line2);color:#475569;font-weight:600;vertical-align:1px}
.tag-suppressed{background:#e0e7ff;color:#3730a3}
.tag-disabled{background:#f1f5f9;color:#64748b;border:1px dashed #94a3b8}
.tag-warn{background:#fee2e2;color:#991b1b}
.none{color:#a0aab8}
.pill{display:inline-block;white-space:nowrap;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:650;margin-right:6px}
.change-new{background:#fee2e2;color:#991b1b}
.change-resolved{background:#dcfce7;color:#166534}
.change-severityChanged{background:#fef3c7;color:#92400e}
.change-counts{margin:4px 0 10px}
.arrow{color:var(--muted);margin:0 2px}
.was{opacity:.65}
.changes-more>summary{cursor:pointer;color:var(--accent);font-weight:600;margin:4px 0 8px}
.table-scroll{overflow-x:auto}
table.grid{border-collapse:collapse;width:100%;font-size:13.5px}
table.grid th{text-align:left;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:650;border-bottom:1px solid var(--line);padding:6px 10px}
table.grid td{border-bottom:1px solid var(--line2);padding:7px 10px;vertical-align:top}
table.grid tr:last-child td{border-bottom:0}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.filters{display:flex;flex-wrap:wrap;align-items:flex-end;gap:12px 16px;background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 16px;margin:0 0 18px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
html:not(.js) .needs-js{display:none}
.filters fieldset{border:0;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.filters legend,.field>span{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:650;margin-bottom:4px;padding:0}
.field{display:flex;flex-direction:column}
.field.grow{flex:1 1 200px}
.filters select,.filters input[type=search]{font:inherit;font-size:13px;padding:5px 8px;border:1px solid #cbd3df;border-radius:6px;background:#fff;color:var(--ink);min-height:32px;max-width:330px}
.filters input[type=search]{max-width:none;width:100%}
.chip{display:inline-flex;align-items:center;gap:5px;border:1px solid #cbd3df;border-radius:999px;padding:3px 10px 3px 8px;font-size:12.5px;font-weight:600;cursor:pointer;user-select:none;background:#fff}
.chip input{margin:0;accent-color:#334155}
.chip .dot{width:9px;height:9px;border-radius:50%;display:inline-block}
.chip.sev-critical .dot{background:var(--critical)}.chip.sev-high .dot{background:var(--high)}.chip.sev-medium .dot{background:var(--medium)}.chip.sev-low .dot{background:var(--low)}.chip.sev-info .dot{background:var(--info)}
.chip-n{color:var(--muted);font-weight:500}
.chip:has(input:not(:checked)){opacity:.5;background:#f6f7f9}
.check{display:inline-flex;align-items:center;gap:6px;font-size:13px;min-height:32px}
.filter-actions{display:flex;gap:6px}
.filter-actions button{font:inherit;font-size:12.5px;font-weight:600;padding:5px 11px;border-radius:6px;border:1px solid #cbd3df;background:#f8fafc;color:#1f2937;cursor:pointer;min-height:32px}
.filter-actions button:hover{background:#eef2f7}
.filter-status{flex-basis:100%;font-size:12.5px;color:var(--muted)}
.list{padding-bottom:8px}
.row{display:grid;grid-template-columns:18px minmax(170px,1.5fr) 128px minmax(170px,1.6fr) 190px 74px 96px;gap:12px;align-items:center;padding:9px 10px}
.row-head{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:650;border-bottom:1px solid var(--line);padding-top:4px;padding-bottom:6px;margin-top:8px}
details.subject{border-bottom:1px solid var(--line2)}
details.subject:last-of-type{border-bottom:0}
details.subject>summary{list-style:none;cursor:pointer;border-radius:6px}
details.subject>summary::-webkit-details-marker{display:none}
details.subject>summary:hover{background:#f6f8fb}
details.subject>summary:focus-visible{outline:2px solid var(--accent);outline-offset:1px}
details.subject[open]>summary{background:#eef3fb}
.chev{width:0;height:0;border-left:6px solid #7b8798;border-top:5px solid transparent;border-bottom:5px solid transparent;transition:transform .12s;justify-self:center}
details[open]>summary .chev{transform:rotate(90deg)}
.name{display:flex;flex-direction:column;min-width:0}
.name .dn{font-weight:650;overflow-wrap:anywhere}
.oid{color:#8591a3;font-size:11.5px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.res{display:flex;flex-direction:column;min-width:0}
.res-name{overflow-wrap:anywhere}
.res-type{font-size:12px;color:var(--muted);overflow-wrap:anywhere}
.fcount{font-weight:700;font-size:15px}
.fcount.zero{color:#a0aab8;font-weight:500}
.fsupp{display:block;font-size:11px;color:#4338ca}
.subject-body{padding:6px 16px 18px 40px;border-left:3px solid #c7d6f0;margin:0 0 10px 14px}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:6px 22px;margin:8px 0 12px}
.kv dt{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600}
.kv dd{margin:0;overflow-wrap:anywhere}
.kv .wide{grid-column:1/-1}
.privs{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px 22px;margin-bottom:8px}
.priv h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:#334155}
.priv ul{margin:0;padding-left:16px}
.priv li{margin:2px 0}
.priv p{margin:0}
.unknown{color:#b45309;font-style:italic}
.findings-h{font-size:13px;text-transform:uppercase;letter-spacing:.05em;color:#334155;margin:14px 0 8px}
.no-findings{color:var(--muted);font-style:italic;margin-top:8px}
.finding{border:1px solid var(--line);border-left:4px solid var(--info);border-radius:8px;padding:12px 14px;margin:0 0 12px;background:#fff}
.finding.sev-critical{border-left-color:var(--critical)}.finding.sev-high{border-left-color:var(--high)}.finding.sev-medium{border-left-color:var(--medium)}.finding.sev-low{border-left-color:var(--low)}
.finding.is-suppressed{background:repeating-linear-gradient(135deg,#fafbfd 0 10px,#f3f5f9 10px 20px);border-style:dashed;border-left-style:solid}
.finding.is-suppressed .finding-title{color:#556070}
.finding-head{display:flex;flex-wrap:wrap;align-items:center;gap:8px}
.finding-head .rule{color:#334155;font-weight:600}
.finding-title{flex-basis:100%;margin:4px 0 0;font-size:14.5px;font-weight:600;overflow-wrap:anywhere}
.suppression{margin:8px 0 0;padding:7px 10px;border-radius:6px;background:#eef2ff;color:#312e81;font-size:13px;border:1px solid #c7d2fe}
.finding-body{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:14px;margin-top:10px}
.finding-body h5{margin:0 0 4px;font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
pre.code{margin:0;background:#0f172a;color:#e2e8f0;border-radius:6px;padding:10px 12px;font:12.5px/1.5 var(--mono);white-space:pre-wrap;overflow-wrap:anywhere;max-height:360px;overflow:auto}
pre.evidence{background:#f6f8fb;color:#1f2937;border:1px solid var(--line)}
.finding-id{margin-top:8px;font-size:11.5px;color:#8591a3}
.empty-state{color:var(--muted);font-style:italic;padding:10px}
.foot{color:var(--muted);font-size:12px;padding-top:4px;padding-bottom:36px}
@media (max-width:1000px){.overview{grid-template-columns:1fr}.row{grid-template-columns:18px 1fr 120px 1fr;}.row>:nth-child(5),.row>:nth-child(6){display:none}.finding-body{grid-template-columns:1fr}}
@media print{.filters{display:none}header.top{background:#fff;color:#000;border-bottom:2px solid #000}.titlebar h1,.facts dd{color:#000}.card{box-shadow:none}pre.code{max-height:none}}
"#;

/// The page's script: filters and expand/collapse. It reads only `data-*` attributes.
const SCRIPT: &str = r#"
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var form = document.getElementById('filters');
  if (!form) { return; }
  var subjects = Array.prototype.slice.call(document.querySelectorAll('details.subject'));
  var status = document.getElementById('filter-status');
  function apply() {
    var sevs = {};
    var allSevs = true;
    Array.prototype.forEach.call(form.querySelectorAll('input[name="severity"]'), function (box) {
      if (box.checked) { sevs[box.value] = true; } else { allSevs = false; }
    });
    var rule = form.elements.rule.value;
    var kind = form.elements.kind.value;
    var text = form.elements.text.value.trim().toLowerCase();
    var showSuppressed = form.elements.suppressed.checked;
    var findingFilter = !allSevs || rule !== '' || !showSuppressed;
    var shown = {}; var total = {};
    subjects.forEach(function (subject) {
      var visibleFindings = 0;
      Array.prototype.forEach.call(subject.querySelectorAll('.finding'), function (f) {
        var ok = sevs[f.getAttribute('data-severity')] === true &&
          (rule === '' || f.getAttribute('data-rule') === rule) &&
          (showSuppressed || f.getAttribute('data-suppressed') !== 'true');
        f.hidden = !ok;
        if (ok) { visibleFindings += 1; }
      });
      var ok = (kind === '' || subject.getAttribute('data-kind') === kind) &&
        (text === '' || (subject.getAttribute('data-search') || '').indexOf(text) !== -1) &&
        (!findingFilter || visibleFindings > 0);
      subject.hidden = !ok;
      var list = subject.closest('section');
      var key = list ? list.id : '';
      total[key] = (total[key] || 0) + 1;
      if (ok) { shown[key] = (shown[key] || 0) + 1; }
    });
    var parts = [];
    Object.keys(total).forEach(function (key) {
      var n = shown[key] || 0;
      var empty = document.querySelector('[data-empty-for="' + key + '"]');
      if (empty) { empty.hidden = n !== 0; }
      var label = key === 'identities' ? 'identities' : 'service principals';
      parts.push('Showing ' + n + ' of ' + total[key] + ' ' + label);
    });
    if (status) { status.textContent = parts.join(' \u00b7 '); }
  }
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  form.addEventListener('reset', function () { window.setTimeout(apply, 0); });
  function setAll(open) {
    subjects.forEach(function (s) { if (!s.hidden) { s.open = open; } });
  }
  var expand = document.getElementById('expand-all');
  var collapse = document.getElementById('collapse-all');
  if (expand) { expand.addEventListener('click', function () { setAll(true); }); }
  if (collapse) { collapse.addEventListener('click', function () { setAll(false); }); }
  function openTarget() {
    var id = window.location.hash.slice(1);
    if (!id) { return; }
    var target = document.getElementById(id);
    if (target && target.tagName === 'DETAILS') { target.hidden = false; target.open = true; target.scrollIntoView(); }
  }
  window.addEventListener('hashchange', openTarget);
  apply();
  openTarget();
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::{CHANGE_SCHEMA_VERSION, FindingState};
    use crate::model::AppliedSuppression;
    use crate::model::IdentityKind;
    use crate::results::records::{RunError, Trigger};
    use serde_json::json;
    use uuid::Uuid;

    const XSS: &str = "<img src=x onerror=alert(1)>";

    fn manifest() -> Manifest {
        let mut m = Manifest::started(
            Uuid::from_u128(0x1234),
            Trigger::Demo,
            None,
            time::macros::datetime!(2026-11-27 14:12:35 UTC),
        );
        m.tenant_id = "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50".to_owned();
        m.finished_at = time::macros::datetime!(2026-11-27 14:12:37 UTC);
        m.status = RunState::Complete;
        m
    }

    fn identity(id: &str, name: &str) -> IdentityRecord {
        IdentityRecord {
            schema_version: "1.0.0".to_owned(),
            id: id.to_owned(),
            app_id: Some("app-1".to_owned()),
            display_name: Some(name.to_owned()),
            kind: IdentityKind::UserAssigned,
            account_enabled: Some(true),
            resource_id: Some(format!(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            )),
            subscription_id: Some("s".to_owned()),
            resource_group: Some("rg".to_owned()),
            management_group: None,
            resource_type: Some("Microsoft.ManagedIdentity/userAssignedIdentities".to_owned()),
            resource_name: Some(name.to_owned()),
            classification_note: None,
            tier: Some(Tier::ControlPlane),
            app_roles: Some(Vec::new()),
            groups: None,
            directory_roles: Some(Vec::new()),
            delegated_grants: Some(Vec::new()),
            azure_role_assignments: Some(Vec::new()),
            unknown: Vec::new(),
            finding_count: 1,
            highest_severity: Some(Severity::Critical),
        }
    }

    fn finding(id: &str, name: &str, rule: &str, severity: Severity, kind: SubjectKind) -> Finding {
        Finding {
            schema_version: "1.0.0".to_owned(),
            finding_id: format!("f-{id}-{rule}"),
            rule_id: rule.to_owned(),
            severity,
            title: format!("{name} holds something"),
            identity_id: id.to_owned(),
            identity_name: name.to_owned(),
            identity_kind: kind,
            tier: Some(Tier::ControlPlane),
            evidence: json!({"permission": "RoleManagement.ReadWrite.Directory", "note": "</script><script>alert(2)</script>"}),
            remediation: "Remove the grant: az rest --method DELETE --url \"https://graph.microsoft.com/v1.0/x\" && echo '<b>'"
                .to_owned(),
            suppressed: false,
            suppression: None,
        }
    }

    fn sample() -> (Manifest, Vec<IdentityRecord>, Vec<Finding>, Vec<Change>) {
        let m = manifest();
        let identities = vec![identity("id-1", XSS), identity("id-2", "id-mail-archiver")];
        let mut suppressed = finding(
            "id-2",
            "id-mail-archiver",
            "MI-GRAPH-002",
            Severity::High,
            SubjectKind::UserAssigned,
        );
        suppressed.suppressed = true;
        suppressed.suppression = Some(AppliedSuppression {
            reason: "archive mailbox export approved by CISO".to_owned(),
            expires: time::macros::datetime!(2099-01-01 0:00 UTC),
            approved_by: None,
        });
        let findings = vec![
            finding(
                "id-1",
                XSS,
                "MI-GRAPH-001",
                Severity::Critical,
                SubjectKind::UserAssigned,
            ),
            suppressed,
            finding(
                "sp-1",
                "legacy-sync",
                "SP-CRED-001",
                Severity::Medium,
                SubjectKind::ServicePrincipal,
            ),
        ];
        let changes = vec![Change {
            schema_version: CHANGE_SCHEMA_VERSION.to_owned(),
            change_type: ChangeType::SeverityChanged,
            finding_id: "f-id-1-MI-GRAPH-001".to_owned(),
            rule_id: "MI-GRAPH-001".to_owned(),
            identity_id: "id-1".to_owned(),
            identity_name: XSS.to_owned(),
            title: format!("{XSS} holds something"),
            before: Some(FindingState {
                severity: Severity::High,
                suppressed: false,
            }),
            after: Some(FindingState {
                severity: Severity::Critical,
                suppressed: false,
            }),
            tenant_id: m.tenant_id.clone(),
            run_id: m.run_id,
            detected_at: m.started_at,
            previous_run_id: Some(Uuid::from_u128(0x99)),
            previous_run_at: Some(m.started_at),
        }];
        (m, identities, findings, changes)
    }

    fn render_sample() -> String {
        let (m, identities, findings, changes) = sample();
        render(&ReportInput {
            manifest: &m,
            identities: &identities,
            findings: &findings,
            changes: &changes,
            totals: &Totals::of(&identities, &findings, &changes),
        })
    }

    #[test]
    fn escapes_every_data_string() {
        let html = render_sample();
        assert!(
            !html.contains("<img"),
            "a raw <img> tag from the data reached the page"
        );
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(
            !html.contains("<script><"),
            "evidence reached the page unescaped"
        );
        assert!(!html.contains("alert(2)</script>"));
        assert!(html.contains("&lt;/script&gt;&lt;script&gt;alert(2)"));
        assert!(html.contains("echo &#39;&lt;b&gt;&#39;"));
        // Exactly one script element: the report's own.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(!html.contains("onerror=alert(1)>"));
    }

    #[test]
    fn loads_nothing_from_outside() {
        let html = render_sample();
        for needle in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "url(http",
            "url(\"http",
            "url('http",
            "@import",
            "src=\"//",
            "href=\"//",
        ] {
            assert!(!html.contains(needle), "external load {needle:?} found");
        }
        assert!(html.contains("http-equiv=\"Content-Security-Policy\""));
        assert!(html.contains("default-src 'none'"));
        let hash = base64::engine::general_purpose::STANDARD.encode(sha256(SCRIPT.as_bytes()));
        assert!(html.contains(&format!("script-src 'sha256-{hash}'")));
        assert!(
            html.contains(&format!("<script>{SCRIPT}</script>")),
            "the hashed script must be embedded byte for byte"
        );
    }

    #[test]
    fn sha256_matches_known_vectors() {
        let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn renders_severity_counts_in_the_chart() {
        let html = render_sample();
        for (sev, n) in [
            ("critical", 1),
            ("high", 1),
            ("medium", 1),
            ("low", 0),
            ("info", 0),
        ] {
            assert!(
                html.contains(&format!("data-severity=\"{sev}\" data-count=\"{n}\"")),
                "chart bar for {sev} should count {n}"
            );
        }
        assert!(html.contains("<desc id=\"chart-desc\">Critical: 1, High: 1 (1 suppressed), Medium: 1, Low: 0, Info: 0</desc>"));
    }

    #[test]
    fn marks_suppressed_findings_with_reason_and_expiry() {
        let html = render_sample();
        assert!(html.contains("class=\"finding sev-high is-suppressed\""));
        assert!(html.contains("data-suppressed=\"true\""));
        assert!(html.contains("archive mailbox export approved by CISO"));
        assert!(html.contains("2099-01-01 00:00:00 UTC"));
    }

    #[test]
    fn lists_service_principals_and_changes_separately() {
        let html = render_sample();
        let sp_section = html
            .find("id=\"service-principals\"")
            .expect("service principal section");
        let sp = html.find("legacy-sync").expect("service principal listed");
        assert!(sp > sp_section);
        assert!(html.contains("data-kind=\"servicePrincipal\""));
        assert!(html.contains("data-change=\"severityChanged\""));
        assert!(html.contains("Compared with run"));
    }

    #[test]
    fn highlights_a_partial_run_and_its_gaps() {
        let (mut m, identities, findings, changes) = sample();
        m.status = RunState::Partial;
        m.skipped.push(crate::snapshot::CollectionGap {
            dataset: crate::snapshot::DatasetName::RoleEligibilitySchedules,
            principals: 0,
            status: Some(403),
            reason: "<b>forbidden</b>".to_owned(),
            needs_permission: Some("RoleManagement.Read.Directory".to_owned()),
            affects_status: true,
        });
        m.errors.push(RunError {
            stage: "collect".to_owned(),
            message: "Graph said <no>".to_owned(),
        });
        let html = render(&ReportInput {
            manifest: &m,
            identities: &identities,
            findings: &findings,
            changes: &changes,
            totals: &Totals::of(&identities, &findings, &changes),
        });
        assert!(html.contains("status status-partial"));
        assert!(html.contains("callout-partial"));
        assert!(html.contains("roleEligibilitySchedules"));
        assert!(html.contains("&lt;b&gt;forbidden&lt;/b&gt;"));
        assert!(html.contains("Graph said &lt;no&gt;"));
    }

    #[test]
    fn first_run_says_everything_is_new() {
        let (m, identities, findings, mut changes) = sample();
        for c in &mut changes {
            c.change_type = ChangeType::New;
            c.before = None;
            c.previous_run_id = None;
            c.previous_run_at = None;
        }
        let html = render(&ReportInput {
            manifest: &m,
            identities: &identities,
            findings: &findings,
            changes: &changes,
            totals: &Totals::of(&identities, &findings, &changes),
        });
        assert!(html.contains("First run for this tenant: everything is new."));
    }

    /// A run larger than the report's limits: the selection keeps the most severe subjects and
    /// changes in report order, and the page says how much it leaves to the NDJSON files while
    /// its headline numbers count the whole run.
    #[test]
    fn a_large_run_is_reported_by_its_most_severe_part() {
        let (mut m, _, _, _) = sample();
        let extra = 25;
        let total = MAX_SUBJECTS + extra;
        let identities: Vec<IdentityRecord> = (0..total)
            .map(|i| identity(&format!("id-{i:05}"), &format!("mi-{i:05}")))
            .collect();
        // Every tenth identity has a high finding: those come first.
        let findings: Vec<Finding> = (0..total)
            .step_by(10)
            .map(|i| {
                let mut f = finding(
                    &format!("id-{i:05}"),
                    &format!("mi-{i:05}"),
                    "MI-GRAPH-001",
                    Severity::High,
                    SubjectKind::UserAssigned,
                );
                f.finding_id = format!("f-{i:05}");
                f
            })
            .collect();
        let changes: Vec<Change> = findings
            .iter()
            .map(|f| Change {
                schema_version: "1.0.0".into(),
                change_type: ChangeType::New,
                finding_id: f.finding_id.clone(),
                rule_id: f.rule_id.clone(),
                identity_id: f.identity_id.clone(),
                identity_name: f.identity_name.clone(),
                title: f.title.clone(),
                before: None,
                after: Some(FindingState {
                    severity: f.severity,
                    suppressed: false,
                }),
                tenant_id: "t".into(),
                run_id: m.run_id,
                detected_at: m.started_at,
                previous_run_id: None,
                previous_run_at: None,
            })
            .chain((0..MAX_CHANGES).map(|i| Change {
                schema_version: "1.0.0".into(),
                change_type: ChangeType::Resolved,
                finding_id: format!("gone-{i:05}"),
                rule_id: "MI-HYG-001".into(),
                identity_id: "gone".into(),
                identity_name: "gone".into(),
                title: "resolved".into(),
                before: Some(FindingState {
                    severity: Severity::Low,
                    suppressed: false,
                }),
                after: None,
                tenant_id: "t".into(),
                run_id: m.run_id,
                detected_at: m.started_at,
                previous_run_id: Some(m.run_id),
                previous_run_at: Some(m.started_at),
            }))
            .collect();
        m.counts.identities = total;

        let mut totals = Totals::default();
        let mut selection = Selection::default();
        for (records, chunk_findings) in [
            (&identities[..1_000], &findings[..100]),
            (&identities[1_000..], &findings[100..]),
        ] {
            totals.add(records, chunk_findings);
            selection.add_subjects(records, chunk_findings);
        }
        totals.changes = crate::changes::count(&changes);
        selection.add_changes(changes.clone());
        let (chosen, shown_changes) = selection.finish();
        assert_eq!(totals.subjects, total);
        assert_eq!(chosen.len(), MAX_SUBJECTS);
        assert!(
            findings
                .iter()
                .all(|f| chosen.contains(&f.identity_id.to_ascii_lowercase())),
            "every subject with a finding outranks those without"
        );
        assert_eq!(shown_changes.len(), MAX_CHANGES);
        assert!(
            shown_changes[..findings.len()]
                .iter()
                .all(|c| c.change_type == ChangeType::New),
            "high changes before low ones"
        );

        let shown: Vec<IdentityRecord> = identities
            .iter()
            .filter(|r| chosen.contains(&r.id.to_ascii_lowercase()))
            .cloned()
            .collect();
        let html = render(&ReportInput {
            manifest: &m,
            identities: &shown,
            findings: &findings,
            changes: &shown_changes,
            totals: &totals,
        });
        assert!(html.contains(&format!(
            "This report details the {MAX_SUBJECTS} most severe of {total} subjects"
        )));
        assert!(html.contains(&format!(
            "Showing the {MAX_CHANGES} most severe of {} change events",
            changes.len()
        )));
        assert_eq!(
            html.matches("<details class=\"subject\"").count(),
            MAX_SUBJECTS
        );
        assert!(
            html.contains(&format!(">{}</", findings.len())),
            "headline counts the whole run"
        );
    }

    #[test]
    fn an_empty_run_renders() {
        let mut m = manifest();
        m.tenant_id = String::new();
        m.status = RunState::Failed;
        let html = render(&ReportInput {
            manifest: &m,
            identities: &[],
            findings: &[],
            changes: &[],
            totals: &Totals::of(&[], &[], &[]),
        });
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(html.contains("status status-failed"));
        assert!(html.contains("No managed identities were found."));
        assert!(html.contains("id=\"changes\""));
        assert!(html.contains("data-severity=\"critical\" data-count=\"0\""));
    }
}
