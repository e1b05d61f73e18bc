//! `findings.ocsf.json`: a JSON array of OCSF 1.5.0 Detection Finding events (class 2004), one
//! per finding, as Prowler writes them, for Security Lake, Sentinel and other SIEM pipelines.
//!
//! Detection Finding rather than Compliance Finding (2003): mi-assess's rules are its own
//! posture checks, not controls scored against a named framework, and 2003 requires a
//! `compliance` object (control, standards) that a rule would have to invent; 2004 also carries
//! `cloud` and `resources`, and it is what Prowler and SIEM ingestion expect.
//!
//! Mapping: `finding_info.uid` is the stable `findingId`, `finding_info.analytic` the rule;
//! `severity_id` follows the severity; `status_id` is 3 (Suppressed, with the reason in
//! `status_detail`) for a suppressed finding, else 1 (New); `activity_id` is 1 (Create) for a
//! finding new in this run, else 2 (Update). `resources` holds the identity (its object id) and,
//! when it has one, its ARM resource; `cloud.account` the subscription. Times are epoch
//! milliseconds. What OCSF has no field for (the rule id, the remediation commands, the
//! suppression, the tier) is under `unmapped`.

use serde_json::{Value, json};

use super::{ExportError, Row, RunContext};
use crate::model::Severity;

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.5.0";
/// Detection Finding.
const CLASS_UID: u32 = 2004;
/// Findings.
const CATEGORY_UID: u32 = 2;

/// Encodes rows batch by batch into one JSON array; [`Encoder::finish`] closes it.
#[derive(Debug, Default)]
pub struct Encoder {
    written: usize,
}

impl Encoder {
    /// The events of `rows`, opening the array on the first call.
    pub fn encode(
        &mut self,
        rows: &[Row<'_>],
        run: &RunContext<'_>,
    ) -> Result<Vec<u8>, ExportError> {
        let mut out = Vec::with_capacity(rows.len() * 2048 + 2);
        for row in rows {
            out.extend_from_slice(if self.written == 0 { b"[\n" } else { b",\n" });
            serde_json::to_writer(&mut out, &event(row, run))
                .map_err(|e| ExportError::Encode(e.to_string()))?;
            self.written += 1;
        }
        Ok(out)
    }

    /// The end of the array (the whole of it when no row was encoded).
    pub fn finish(&self) -> Vec<u8> {
        if self.written == 0 {
            b"[]\n".to_vec()
        } else {
            b"\n]\n".to_vec()
        }
    }
}

/// OCSF's severity id: 1 Informational … 5 Critical.
fn severity(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// One Detection Finding event.
pub fn event(row: &Row<'_>, run: &RunContext<'_>) -> Value {
    let f = row.finding;
    let rule = crate::rules::rule(&f.rule_id);
    let millis = i64::try_from(run.detected_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let (severity_id, severity_name) = severity(f.severity);
    let (activity_id, activity_name) = match row.change {
        Some(crate::changes::ChangeType::New) => (1, "Create"),
        _ => (2, "Update"),
    };
    let (status_id, status) = if f.suppressed {
        (3, "Suppressed")
    } else {
        (1, "New")
    };
    let identity = row.identity;
    let mut resources = vec![json!({
        "uid": f.identity_id,
        "name": f.identity_name,
        "type": match f.identity_kind {
            crate::model::SubjectKind::ServicePrincipal => "Microsoft Entra ID service principal",
            _ => "Microsoft Entra ID managed identity",
        },
        "labels": [f.identity_kind.as_str()],
        "data": {
            "identityKind": f.identity_kind.as_str(),
            "appId": identity.and_then(|i| i.app_id.as_deref()),
            "tier": f.tier.map(|t| t.as_str()),
        },
    })];
    if let Some(resource_id) = identity.and_then(|i| i.resource_id.as_deref()) {
        let mut resource = json!({
            "uid": resource_id,
            "cloud_partition": "azure",
        });
        if let Some(name) = identity.and_then(|i| i.resource_name.as_deref()) {
            resource["name"] = json!(name);
        }
        if let Some(kind) = identity.and_then(|i| i.resource_type.as_deref()) {
            resource["type"] = json!(kind);
        }
        if let Some(group) = identity.and_then(|i| i.resource_group.as_deref()) {
            resource["group"] = json!({ "name": group });
        }
        resources.push(resource);
    }
    let mut cloud = json!({
        "provider": "Azure",
        "org": { "uid": run.tenant_id },
    });
    if let Some(subscription) = identity.and_then(|i| i.subscription_id.as_deref()) {
        cloud["account"] = json!({
            "uid": subscription,
            "name": subscription,
            "type_id": 99,
            "type": "Azure Subscription",
        });
    }
    let mut event = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("Detection Finding: {activity_name}"),
        "time": millis,
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": status_id,
        "status": status,
        "message": f.title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {
                "uid": "mi-assess",
                "name": "mi-assess",
                "vendor_name": "mi-assess",
                "version": env!("CARGO_PKG_VERSION"),
            },
            "event_code": f.rule_id,
            "tenant_uid": run.tenant_id,
            "correlation_uid": run.run_id.to_string(),
        },
        "finding_info": {
            "uid": f.finding_id,
            "title": f.title,
            "desc": rule.map_or("", |r| r.rationale),
            "types": [f.rule_id],
            "analytic": {
                "uid": f.rule_id,
                "name": rule.map_or(f.rule_id.as_str(), |r| r.title),
                "type_id": 1,
                "type": "Rule",
            },
        },
        "resources": resources,
        "cloud": cloud,
        "remediation": {
            "desc": f.remediation,
            "references": rule.map(|r| r.references.to_vec()).unwrap_or_default(),
        },
        "evidences": [{ "data": f.evidence }],
        "unmapped": {
            "ruleId": f.rule_id,
            "change": row.change_name(),
            "tier": f.tier.map(|t| t.as_str()),
            "remediationCommands": f.remediation_commands,
            "suppression": f.suppression,
            "runId": run.run_id.to_string(),
        },
    });
    if let Some(rule) = rule {
        event["risk_details"] = json!(rule.rationale);
    }
    if let Some(suppression) = &f.suppression {
        event["status_detail"] = json!(suppression.reason);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::{context, finding};

    #[test]
    fn an_event_carries_the_finding_id_severity_status_and_activity() {
        let mut suppressed = finding("MI-GRAPH-001");
        suppressed.suppressed = true;
        suppressed.suppression = Some(crate::model::AppliedSuppression {
            reason: "accepted".into(),
            expires: time::OffsetDateTime::UNIX_EPOCH,
            approved_by: None,
            scope: Some(crate::model::SuppressionScope::Rule),
        });
        let row = Row {
            finding: &suppressed,
            identity: None,
            change: Some(crate::changes::ChangeType::New),
        };
        let e = event(&row, &context());
        assert_eq!(e["finding_info"]["uid"], suppressed.finding_id.as_str());
        assert_eq!(e["class_uid"], 2004);
        assert_eq!(e["type_uid"], 200_401);
        assert_eq!(e["severity_id"], 4);
        assert_eq!(e["status_id"], 3);
        assert_eq!(e["status_detail"], "accepted");
        assert_eq!(e["time"], 1_764_547_200_000_i64);
        assert!(
            e["cloud"].get("account").is_none(),
            "no subscription, no account"
        );
        let unchanged = Row {
            change: None,
            ..row
        };
        assert_eq!(event(&unchanged, &context())["type_uid"], 200_402);
    }

    #[test]
    fn the_array_is_valid_json_however_it_is_batched() {
        let a = finding("MI-GRAPH-001");
        let b = finding("MI-ORPH-001");
        let row = |f| Row {
            finding: f,
            identity: None,
            change: None,
        };
        let mut encoder = Encoder::default();
        let mut out = encoder.encode(&[row(&a)], &context()).unwrap();
        out.extend(encoder.encode(&[], &context()).unwrap());
        out.extend(encoder.encode(&[row(&b)], &context()).unwrap());
        out.extend(encoder.finish());
        let parsed: Vec<Value> = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed.len(), 2);
        let empty = Encoder::default();
        assert_eq!(
            serde_json::from_slice::<Vec<Value>>(&empty.finish())
                .unwrap()
                .len(),
            0
        );
    }
}
