//! `findings.csv`: one row per finding, flat columns, RFC 4180 (the `csv` crate quotes every
//! field that needs it; line ends are CRLF). Nested data (evidence, commands) is one column of
//! compact JSON or newline-joined text, so DuckDB, Excel and Power BI read the file as it is.
//!
//! Identity names and titles come from the tenant, and anyone who can name an identity could
//! write `=HYPERLINK(…)`: a text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return is prefixed with `'` (OWASP's advice against CSV injection), so a spreadsheet shows it
//! as text instead of running it.

use serde::Serialize;

use super::{ExportError, Row, RunContext};
use crate::rules::commands::Shell;

/// The columns, in order (the header row).
pub const COLUMNS: [&str; 24] = [
    "findingId",
    "ruleId",
    "severity",
    "title",
    "status",
    "change",
    "identityId",
    "identityName",
    "identityKind",
    "tier",
    "resourceId",
    "resourceType",
    "subscriptionId",
    "resourceGroup",
    "remediation",
    "remediationCommands",
    "suppressionReason",
    "suppressionExpires",
    "suppressionScope",
    "suppressionApprovedBy",
    "evidence",
    "tenantId",
    "runId",
    "detectedAt",
];

/// One row, in [`COLUMNS`] order.
#[derive(Debug, Serialize)]
struct CsvRow<'a> {
    finding_id: &'a str,
    rule_id: &'a str,
    severity: &'static str,
    title: String,
    status: &'static str,
    change: &'static str,
    identity_id: &'a str,
    identity_name: String,
    identity_kind: &'static str,
    tier: &'static str,
    resource_id: &'a str,
    resource_type: &'a str,
    subscription_id: &'a str,
    resource_group: &'a str,
    remediation: String,
    remediation_commands: String,
    suppression_reason: String,
    suppression_expires: String,
    suppression_scope: &'static str,
    suppression_approved_by: String,
    evidence: String,
    tenant_id: &'a str,
    run_id: String,
    detected_at: String,
}

/// Encodes rows batch by batch; the first batch starts with the header row.
#[derive(Debug, Default)]
pub struct Encoder {
    started: bool,
}

impl Encoder {
    /// The CSV text of `rows` (after the header, on the first call, even with no rows).
    pub fn encode(
        &mut self,
        rows: &[Row<'_>],
        run: &RunContext<'_>,
    ) -> Result<Vec<u8>, ExportError> {
        let mut writer = ::csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(::csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(rows.len() * 1024));
        let encode = |e: ::csv::Error| ExportError::Encode(e.to_string());
        if !self.started {
            writer.write_record(COLUMNS).map_err(encode)?;
            self.started = true;
        }
        let detected_at = rfc3339(run.detected_at);
        let run_id = run.run_id.to_string();
        for row in rows {
            writer
                .serialize(record(row, run, &detected_at, &run_id))
                .map_err(encode)?;
        }
        writer
            .into_inner()
            .map_err(|e| ExportError::Encode(e.to_string()))
    }
}

fn record<'a>(row: &Row<'a>, run: &RunContext<'a>, detected_at: &str, run_id: &str) -> CsvRow<'a> {
    let f = row.finding;
    let identity = row.identity;
    let text = |value: Option<&'a String>| value.map_or("", String::as_str);
    let suppression = f.suppression.as_ref();
    CsvRow {
        finding_id: &f.finding_id,
        rule_id: &f.rule_id,
        severity: f.severity.as_str(),
        title: neutralise(&f.title),
        status: if f.suppressed { "suppressed" } else { "active" },
        change: row.change_name(),
        identity_id: &f.identity_id,
        identity_name: neutralise(&f.identity_name),
        identity_kind: f.identity_kind.as_str(),
        tier: f.tier.map_or("", |t| t.as_str()),
        resource_id: text(identity.and_then(|i| i.resource_id.as_ref())),
        resource_type: text(identity.and_then(|i| i.resource_type.as_ref())),
        subscription_id: text(identity.and_then(|i| i.subscription_id.as_ref())),
        resource_group: text(identity.and_then(|i| i.resource_group.as_ref())),
        remediation: neutralise(&f.remediation),
        remediation_commands: f
            .remediation_commands
            .iter()
            .filter(|c| c.shell == Shell::Bash)
            .map(|c| c.command.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        suppression_reason: suppression.map_or_else(String::new, |s| neutralise(&s.reason)),
        suppression_expires: suppression.map_or_else(String::new, |s| rfc3339(s.expires)),
        suppression_scope: suppression.and_then(|s| s.scope).map_or("", |s| s.as_str()),
        suppression_approved_by: suppression
            .and_then(|s| s.approved_by.as_deref())
            .map_or_else(String::new, neutralise),
        evidence: f.evidence.to_string(),
        tenant_id: run.tenant_id,
        run_id: run_id.to_owned(),
        detected_at: detected_at.to_owned(),
    }
}

/// `value`, with a leading `'` when a spreadsheet would read it as a formula.
fn neutralise(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::{context, finding};

    /// The header comes once, quoting follows RFC 4180 (commas, quotes and newlines in a field),
    /// and a formula-looking name is neutralised.
    #[test]
    fn rows_are_rfc4180_with_one_header_and_no_formulas() {
        let mut quoted = finding("MI-GRAPH-001");
        quoted.title = "a, \"quoted\"\ntitle".into();
        quoted.identity_name = "=HYPERLINK(\"http://x\")".into();
        let plain = finding("MI-ORPH-001");
        let row = |f| Row {
            finding: f,
            identity: None,
            change: None,
        };
        let mut encoder = Encoder::default();
        let first = encoder.encode(&[row(&quoted)], &context()).unwrap();
        let second = encoder.encode(&[row(&plain)], &context()).unwrap();
        let text = String::from_utf8([first, second].concat()).unwrap();
        assert!(text.starts_with(&format!("{}\r\n", COLUMNS.join(","))));
        assert_eq!(text.matches("findingId,ruleId").count(), 1);
        assert!(text.contains("\"a, \"\"quoted\"\"\ntitle\""), "{text}");
        assert!(text.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{text}");
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.len() == COLUMNS.len()));
        assert_eq!(&records[0][3], "a, \"quoted\"\ntitle");
        assert_eq!(&records[1][5], "unchanged");
    }

    #[test]
    fn an_empty_run_is_a_header() {
        let text = Encoder::default().encode(&[], &context()).unwrap();
        assert_eq!(text, format!("{}\r\n", COLUMNS.join(",")).into_bytes());
    }
}
