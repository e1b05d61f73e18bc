//! The Azure plane end to end: the real binary reads ARM and Resource Graph from the simulator
//! (same origin as Graph), every Azure rule fires on the demo tenant, and without ARM access the
//! run goes on with its Graph findings intact, `partial` only when the plane is `required`.

use std::collections::BTreeSet;

use mi_assess::results::ResultStore as _;
use serde_json::{Value, json};

use crate::support::*;

/// The Azure-plane rules, each of which must fire on the demo tenant.
const AZURE_RULES: [&str; 14] = [
    "MI-AZ-001",
    "MI-AZ-002",
    "MI-AZ-003",
    "MI-AZ-004",
    "MI-PATH-001",
    "MI-PATH-002",
    "MI-XT-001",
    "MI-ORPH-001",
    "MI-ORPH-002",
    "MI-ORPH-003",
    "MI-FIC-001",
    "MI-FIC-002",
    "MI-FIC-003",
    "MI-FIC-004",
];

fn is_azure_rule(rule: &str) -> bool {
    AZURE_RULES.contains(&rule)
}

/// One nightly run through the handler; returns the run's manifest, findings and identities.
async fn run(
    handler: &Handler,
    store: &mi_assess::results::BlobStore,
) -> (Value, Vec<Value>, Vec<Value>, String) {
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200, "{reply}");
    let run_id = last_started_run(&handler.output());
    let status = read_json(store, &format!("scans/{run_id}.json"))
        .await
        .expect("scan status");
    let manifest = read_json(store, status["manifest"].as_str().expect("manifest path"))
        .await
        .expect("manifest");
    let prefix = status["resultsPrefix"].as_str().unwrap().to_owned();
    let lines = |bytes: bytes::Bytes| -> Vec<Value> {
        std::str::from_utf8(&bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let findings = lines(
        store
            .get(&format!("{prefix}/findings.ndjson"))
            .await
            .unwrap()
            .unwrap(),
    );
    let identities = lines(
        store
            .get(&format!("{prefix}/identities.ndjson"))
            .await
            .unwrap()
            .unwrap(),
    );
    (manifest, findings, identities, run_id)
}

fn graph_findings(findings: &[Value]) -> BTreeSet<(String, String, String)> {
    findings
        .iter()
        .filter(|f| !is_azure_rule(f["ruleId"].as_str().unwrap()))
        .map(|f| {
            (
                f["ruleId"].as_str().unwrap().to_owned(),
                f["findingId"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn identity<'a>(identities: &'a [Value], name: &str) -> &'a Value {
    identities
        .iter()
        .find(|i| i["displayName"] == name)
        .unwrap_or_else(|| panic!("{name} in identities.ndjson"))
}

#[tokio::test]
async fn the_demo_azure_plane_fires_every_rule_and_denied_access_keeps_graph_findings() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let tenant = sim.tenant().tenant_id.clone();

    // 1. With ARM access: every Azure rule fires, with evidence.
    let (manifest, findings, identities, run_id) = run(&handler, &store).await;
    assert_eq!(manifest["status"], "complete", "{manifest}");
    assert_eq!(manifest["skipped"], json!([]));
    for rule in AZURE_RULES {
        assert!(
            findings.iter().any(|f| f["ruleId"] == rule),
            "{rule} does not fire on the demo tenant"
        );
    }
    let control = findings
        .iter()
        .find(|f| f["ruleId"] == "MI-AZ-003")
        .unwrap();
    assert_eq!(control["identityName"], "func-payroll-sync");
    assert!(control["evidence"]["targets"][0]["name"].is_string());
    assert_eq!(
        control["evidence"]["targetCount"], 2,
        "one finding for both targets"
    );
    let payroll = identity(&identities, "func-payroll-sync");
    assert_eq!(
        payroll["azureRoleAssignments"][0]["roleName"],
        "Managed Identity Operator"
    );
    assert_eq!(
        payroll["azureRoleAssignments"][0]["scopeKind"],
        "resourceGroup"
    );
    let kubelet = identity(&identities, "id-aks-prod-kubelet");
    assert_eq!(
        kubelet["azureRoleAssignments"][0]["viaGroup"]["displayName"],
        "sg-platform-operators"
    );
    assert_eq!(kubelet["tier"], "controlPlane", "Azure raises the tier");
    // Contributor over a subscription through a group: once a Tier-0 identity without a
    // finding, now a broad write role and a list of who can act as it.
    let kubelet_rules: Vec<&str> = findings
        .iter()
        .filter(|f| f["identityName"] == "id-aks-prod-kubelet")
        .map(|f| f["ruleId"].as_str().unwrap_or_default())
        .collect();
    assert!(kubelet_rules.contains(&"MI-AZ-004"), "{kubelet_rules:?}");
    assert!(kubelet_rules.contains(&"MI-PATH-002"), "{kubelet_rules:?}");
    // The escalation: Log Analytics Contributor at mg-contoso-root carries
    // virtualMachines/extensions/*, so deploy-diagnostics-to-la runs code on vm-build-agent-01,
    // whose group holds Application Administrator.
    let path = findings
        .iter()
        .find(|f| f["ruleId"] == "MI-PATH-001" && f["identityName"] == "deploy-diagnostics-to-la")
        .expect("the escalation through vm-build-agent-01 is reported");
    assert_eq!(path["severity"], "critical");
    let hops = path["evidence"]["hops"].as_array().unwrap();
    let chain: Vec<(&str, &str)> = hops
        .iter()
        .map(|h| {
            (
                h["edge"].as_str().unwrap(),
                h["to"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        [
            ("canExecuteAs", "vm-build-agent-01"),
            ("memberOf", "sg-tier0-app-admins"),
            ("holdsDirectoryRole", "Application Administrator"),
        ]
    );
    assert_eq!(hops[0]["evidence"]["roleName"], "Log Analytics Contributor");
    assert_eq!(
        hops[0]["evidence"]["grantedBy"],
        "Microsoft.Compute/virtualMachines/extensions/*"
    );
    let diagnostics = identity(&identities, "deploy-diagnostics-to-la");
    assert_eq!(diagnostics["pathToTier0"]["hops"], path["evidence"]["hops"]);
    // The hijackable scanner: the custom role's Microsoft.Web/sites/* lets id-github-deploy
    // deploy to the scanner's own function app.
    let scanner = findings
        .iter()
        .find(|f| f["ruleId"] == "MI-PATH-002" && f["identityName"] == "func-mi-assess")
        .expect("who can become the scanner is reported");
    assert_eq!(scanner["evidence"]["isScanner"], true);
    let actors = scanner["evidence"]["actors"].as_array().unwrap();
    let github = actors
        .iter()
        .find(|a| a["principal"]["name"] == "id-github-deploy")
        .expect("id-github-deploy can act as the scanner");
    assert_eq!(github["control"]["roleName"], "Contoso Deployment Operator");
    assert_eq!(github["control"]["grantedBy"], "Microsoft.Web/sites/*");
    let record = identity(&identities, "func-mi-assess");
    assert_eq!(record["actors"]["count"], actors.len());
    // Seven Resource Graph queries (the six of queries::ALL and the storage accounts the
    // Blob-hosted issuers name), one PIM eligibility list per subscription, one credential
    // list per user-assigned identity, one lookup.
    let log = sim.arm_request_log();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("resourceGraph "))
            .count(),
        7,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.ends_with("/roleEligibilityScheduleInstances"))
            .count(),
        4,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.ends_with("/federatedIdentityCredentials"))
            .count(),
        5
    );
    assert_eq!(sim.get_by_ids_requests(), 1);
    let latest = read_json(&store, &format!("latest/{tenant}.json"))
        .await
        .unwrap();
    let prefix = latest["prefix"].as_str().unwrap().to_owned();
    save_contract_samples(&store, "azure-plane", &prefix, &tenant, &run_id).await;

    // 2. ARM access revoked, plane optional (the default): complete, the gap is listed, the
    //    Graph findings are untouched, and the Azure data is null, never empty.
    sim.update_tenant(|t| t.arm.denied = true);
    let (denied, denied_findings, denied_identities, denied_run) = run(&handler, &store).await;
    assert_eq!(denied["status"], "complete", "{denied}");
    let skipped = denied["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["dataset"], "azure");
    assert_eq!(skipped[0]["status"], 403);
    assert_eq!(
        skipped[0]["needsPermission"],
        "Reader (Azure RBAC) at management-group scope"
    );
    assert_eq!(skipped[0]["affectsStatus"], false);
    assert!(
        denied_findings
            .iter()
            .all(|f| !is_azure_rule(f["ruleId"].as_str().unwrap()))
    );
    assert_eq!(graph_findings(&denied_findings), graph_findings(&findings));
    let payroll = identity(&denied_identities, "func-payroll-sync");
    assert!(payroll["azureRoleAssignments"].is_null());
    assert!(
        payroll["unknown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "azureRoleAssignments")
    );
    let latest = read_json(&store, &format!("latest/{tenant}.json"))
        .await
        .unwrap();
    assert_eq!(
        latest["runId"], denied_run,
        "an optional plane does not hold latest back"
    );
    save_contract_samples(
        &store,
        "azure-denied-optional",
        latest["prefix"].as_str().unwrap(),
        &tenant,
        &denied_run,
    )
    .await;
}

#[tokio::test]
async fn a_required_azure_plane_without_access_makes_the_run_partial() {
    let sim = demo_simulator().await;
    sim.update_tenant(|t| t.arm.denied = true);
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_AZURE_PLANE", "required")]).await;
    let store = reader(&sim, &container);
    let (manifest, findings, _, run_id) = run(&handler, &store).await;
    assert_eq!(manifest["status"], "partial", "{manifest}");
    let gap = &manifest["skipped"][0];
    assert_eq!(gap["dataset"], "azure");
    assert_eq!(gap["affectsStatus"], true);
    assert_eq!(
        gap["needsPermission"],
        "Reader (Azure RBAC) at management-group scope"
    );
    assert!(
        findings.iter().any(|f| f["ruleId"] == "MI-GRAPH-001"),
        "the Graph assessment still ran"
    );
    let tenant = sim.tenant().tenant_id.clone();
    assert!(
        read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .is_none(),
        "a partial run never becomes latest"
    );
    let status = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .unwrap();
    save_contract_samples(
        &store,
        "azure-denied-required",
        status["resultsPrefix"].as_str().unwrap(),
        &tenant,
        &run_id,
    )
    .await;
}

#[tokio::test]
async fn an_azure_plane_turned_off_is_never_called() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_AZURE_PLANE", "off")]).await;
    let store = reader(&sim, &container);
    let (manifest, findings, _, _) = run(&handler, &store).await;
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["skipped"][0]["dataset"], "azure");
    assert_eq!(manifest["skipped"][0]["affectsStatus"], false);
    assert!(manifest["skipped"][0].get("needsPermission").is_none());
    assert_eq!(sim.arm_requests(), 0);
    assert!(
        findings
            .iter()
            .all(|f| !is_azure_rule(f["ruleId"].as_str().unwrap()))
    );
}
