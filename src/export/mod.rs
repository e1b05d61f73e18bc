//! Flat exports of a run's findings, for the tools teams already ingest: `findings.csv` (one
//! row per finding, RFC 4180: spreadsheets, Power BI, the AzADServicePrincipalInsights and
//! ScubaGear habit) and `findings.ocsf.json` (OCSF Detection Finding events: Security Lake,
//! Sentinel, most SIEM pipelines). Pure: records in, bytes out.
//!
//! Every run writes both (`crate::pipeline`), and `mi-assess export` writes either from a run
//! folder on disk ([`read_run`]), through the same encoders, so the two never differ.

pub mod csv;
pub mod ocsf;

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::Path;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::assess::IdentityRecord;
use crate::changes::{Change, ChangeType};
use crate::rules::Finding;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `findings.csv`: one row per finding, flat columns.
    Csv,
    /// `findings.ocsf.json`: one OCSF Detection Finding event per finding.
    Ocsf,
}

impl Format {
    /// The file it is written to, in the run folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Csv => crate::results::files::FINDINGS_CSV,
            Self::Ocsf => crate::results::files::FINDINGS_OCSF,
        }
    }
}

/// An export in the making, encoded a batch of rows at a time.
#[derive(Debug)]
pub enum Encoder {
    /// `findings.csv`.
    Csv(csv::Encoder),
    /// `findings.ocsf.json`.
    Ocsf(ocsf::Encoder),
}

impl Encoder {
    /// A new export in `format`.
    pub fn new(format: Format) -> Self {
        match format {
            Format::Csv => Self::Csv(csv::Encoder::default()),
            Format::Ocsf => Self::Ocsf(ocsf::Encoder::default()),
        }
    }

    /// The bytes of the next batch of rows.
    pub fn encode(
        &mut self,
        rows: &[Row<'_>],
        run: &RunContext<'_>,
    ) -> Result<Vec<u8>, ExportError> {
        match self {
            Self::Csv(e) => e.encode(rows, run),
            Self::Ocsf(e) => e.encode(rows, run),
        }
    }

    /// The bytes that end the export: the CSV header when no batch came, the end of the
    /// OCSF array.
    pub fn finish(&mut self, run: &RunContext<'_>) -> Result<Vec<u8>, ExportError> {
        match self {
            Self::Csv(e) => e.encode(&[], run),
            Self::Ocsf(e) => Ok(e.finish()),
        }
    }
}

/// The run a finding belongs to: what each exported row repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunContext<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// The run.
    pub run_id: Uuid,
    /// When the run collected the data the findings come from.
    pub detected_at: OffsetDateTime,
}

/// One finding with what the exports add to it: the managed identity it is about (for its ARM
/// resource), and what changed since the previous complete run.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The finding.
    pub finding: &'a Finding,
    /// Its subject's identity record, when the subject is a managed identity.
    pub identity: Option<&'a IdentityRecord>,
    /// Its change event in this run (`None`: unchanged since the previous complete run).
    pub change: Option<ChangeType>,
}

impl Row<'_> {
    /// `new`, `severityChanged`, `suppressionChanged` or `unchanged`.
    pub fn change_name(&self) -> &'static str {
        match self.change {
            Some(ChangeType::New) => "new",
            Some(ChangeType::SeverityChanged) => "severityChanged",
            Some(ChangeType::SuppressionChanged) => "suppressionChanged",
            Some(ChangeType::Resolved) | None => "unchanged",
        }
    }
}

/// The rows of one batch of findings: each joined with its identity (from `identities`, by
/// object id) and its change (from `changes`, by finding id).
pub fn rows<'a>(
    findings: &'a [Finding],
    identities: &'a HashMap<String, IdentityRecord>,
    changes: &HashMap<String, ChangeType>,
) -> Vec<Row<'a>> {
    findings
        .iter()
        .map(|finding| Row {
            finding,
            identity: identities.get(&finding.identity_id.to_ascii_lowercase()),
            change: changes.get(&finding.finding_id).copied(),
        })
        .collect()
}

/// Identity records by lower-case object id.
pub fn by_id(records: impl IntoIterator<Item = IdentityRecord>) -> HashMap<String, IdentityRecord> {
    records
        .into_iter()
        .map(|r| (r.id.to_ascii_lowercase(), r))
        .collect()
}

/// The change type of each finding id among `changes` (`resolved` ones left out: they are not
/// findings of this run).
pub fn change_types<'a>(
    changes: impl IntoIterator<Item = &'a Change>,
) -> HashMap<String, ChangeType> {
    changes
        .into_iter()
        .filter(|c| c.change_type != ChangeType::Resolved)
        .map(|c| (c.finding_id.clone(), c.change_type))
        .collect()
}

/// Why a run folder could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file of the run could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A record of the run is not what mi-assess writes.
    #[error("{path} line {line} is not a mi-assess record: {source}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line (1 for whole documents).
        line: usize,
        /// The cause.
        source: serde_json::Error,
    },
    /// The run never assessed anything, so there is nothing to export.
    #[error("{0} has no findings.ndjson: the run failed before it assessed (see its manifest)")]
    NotAssessed(String),
    /// Encoding the export failed.
    #[error("encoding the export: {0}")]
    Encode(String),
}

/// What `mi-assess export` reads from a run folder: its manifest's context, its identities,
/// its change events and its findings.
#[derive(Debug)]
pub struct RunFolder {
    /// The tenant.
    pub tenant_id: String,
    /// The run.
    pub run_id: Uuid,
    /// When the run collected its data.
    pub detected_at: OffsetDateTime,
    /// Identity records by lower-case object id.
    pub identities: HashMap<String, IdentityRecord>,
    /// Change type by finding id.
    pub changes: HashMap<String, ChangeType>,
    /// The findings, in file order.
    pub findings: Vec<Finding>,
}

impl RunFolder {
    /// The context each row repeats.
    pub fn context(&self) -> RunContext<'_> {
        RunContext {
            tenant_id: &self.tenant_id,
            run_id: self.run_id,
            detected_at: self.detected_at,
        }
    }

    /// The run's export in `format`.
    pub fn export(&self, format: Format) -> Result<Vec<u8>, ExportError> {
        let rows = rows(&self.findings, &self.identities, &self.changes);
        let context = self.context();
        let mut encoder = Encoder::new(format);
        let mut out = encoder.encode(&rows, &context)?;
        out.extend(encoder.finish(&context)?);
        Ok(out)
    }
}

/// Reads a run folder written by mi-assess (`runs/{tenantId}/…/{runId}`).
pub fn read_run(dir: &Path) -> Result<RunFolder, ExportError> {
    let path_of = |name: &str| dir.join(name);
    let read = |name: &str| {
        std::fs::read(path_of(name)).map_err(|source| ExportError::Read {
            path: path_of(name).display().to_string(),
            source,
        })
    };
    let manifest: crate::results::Manifest =
        serde_json::from_slice(&read(crate::results::files::MANIFEST)?).map_err(|source| {
            ExportError::Parse {
                path: path_of(crate::results::files::MANIFEST)
                    .display()
                    .to_string(),
                line: 1,
                source,
            }
        })?;
    if !path_of(crate::results::files::FINDINGS).is_file() {
        return Err(ExportError::NotAssessed(dir.display().to_string()));
    }
    let identities = by_id(ndjson::<IdentityRecord>(&path_of(
        crate::results::files::IDENTITIES,
    ))?);
    let changes: Vec<Change> = if path_of(crate::results::files::CHANGES).is_file() {
        ndjson(&path_of(crate::results::files::CHANGES))?
    } else {
        Vec::new()
    };
    Ok(RunFolder {
        tenant_id: manifest.tenant_id.clone(),
        run_id: manifest.run_id,
        detected_at: manifest.collected_at.unwrap_or(manifest.started_at),
        identities,
        changes: change_types(&changes),
        findings: ndjson(&path_of(crate::results::files::FINDINGS))?,
    })
}

/// Every record of an NDJSON file (blank lines skipped).
fn ndjson<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, ExportError> {
    let file = std::fs::File::open(path).map_err(|source| ExportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ExportError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line).map_err(|source| ExportError::Parse {
                path: path.display().to_string(),
                line: index + 1,
                source,
            })?,
        );
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run on 2025-12-01.
    pub(crate) fn context() -> RunContext<'static> {
        RunContext {
            tenant_id: "7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50",
            run_id: Uuid::nil(),
            detected_at: time::macros::datetime!(2025-12-01 0:00 UTC),
        }
    }

    /// A high finding of `rule` about a system-assigned identity.
    pub(crate) fn finding(rule: &str) -> Finding {
        Finding {
            schema_version: crate::rules::FINDING_SCHEMA_VERSION.into(),
            finding_id: format!("00000000-0000-5000-8000-{:012}", rule.len()),
            rule_id: rule.into(),
            severity: crate::model::Severity::High,
            title: format!("{rule} fired"),
            identity_id: "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a01".into(),
            identity_name: "func-payroll-sync".into(),
            identity_kind: crate::model::SubjectKind::SystemAssigned,
            tier: None,
            evidence: serde_json::json!({"why": "test"}),
            remediation: "fix it".into(),
            remediation_commands: Vec::new(),
            suppressed: false,
            suppression: None,
        }
    }
}
