//! Fixtures shared by the report's unit tests: a small run whose data strings try to break
//! out of the HTML.

use super::{ReportInput, Totals, render};
use crate::assess::IdentityRecord;
use crate::changes::{CHANGE_SCHEMA_VERSION, Change, ChangeType, FindingState};
use crate::classification::Tier;
use crate::model::AppliedSuppression;
use crate::model::IdentityKind;
use crate::model::Severity;
use crate::model::SubjectKind;
use crate::results::records::{Manifest, RunState, Trigger};
use crate::rules::Finding;
use serde_json::json;
use uuid::Uuid;

const XSS: &str = "<img src=x onerror=alert(1)>";

pub(super) fn manifest() -> Manifest {
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

pub(super) fn identity(id: &str, name: &str) -> IdentityRecord {
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
        pim: None,
        path_to_tier0: None,
        actors: Default::default(),
        usage: None,
        finding_count: 1,
        highest_severity: Some(Severity::Critical),
    }
}

pub(super) fn finding(
    id: &str,
    name: &str,
    rule: &str,
    severity: Severity,
    kind: SubjectKind,
) -> Finding {
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
        remediation_commands: vec![crate::rules::commands::RemediationCommand {
            shell: crate::rules::commands::Shell::Bash,
            command: "az rest --method DELETE --url 'https://graph.microsoft.com/v1.0/x/$ref' # </code><script>alert(3)</script>".to_owned(),
        }],
        suppressed: false,
        suppression: None,
    }
}

pub(super) fn sample() -> (Manifest, Vec<IdentityRecord>, Vec<Finding>, Vec<Change>) {
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
        scope: None,
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

pub(super) fn render_sample() -> String {
    let (m, identities, findings, changes) = sample();
    render(&ReportInput {
        manifest: &m,
        identities: &identities,
        findings: &findings,
        changes: &changes,
        totals: &Totals::of(&identities, &findings, &changes),
    })
}
