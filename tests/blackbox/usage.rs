//! The usage plane against the simulator's Log Analytics query API: the findings it adds, and
//! nothing else changed; the documented errors degrade it without making a run partial.

use std::process::Command;

use mi_assess::simulator::loganalytics::SimWorkspace;
use mi_assess::simulator::tenant::SimTenant;
use mi_assess::simulator::{RunningSimulator, SimOptions};
use serde_json::Value;

const WORKSPACE: &str = "5e8f3a2b-7c1d-4e9f-a0b6-3c2d1e0f9a87";

/// `assess` (not the demo) against `sim`, with the usage plane on or off, into a fresh folder;
/// returns the run folder.
async fn assess(sim: &RunningSimulator, usage: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mi-assess"));
    command
        .args(["assess", "--out"])
        .arg(out.path())
        .env("IDENTITY_ENDPOINT", sim.identity_endpoint())
        .env("IDENTITY_HEADER", sim.identity_header())
        .env("MI_ASSESS_GRAPH_ENDPOINT", sim.graph_endpoint().as_str())
        .env("MI_ASSESS_ARM_ENDPOINT", sim.arm_endpoint().as_str())
        .env_remove("MI_ASSESS_RESULTS_URL");
    if usage {
        command
            .env("MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID", WORKSPACE)
            .env(
                "MI_ASSESS_LOG_ANALYTICS_ENDPOINT",
                sim.log_analytics_endpoint(),
            );
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = walk(&out.path().join("runs"))
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .expect("a run");
    let run = manifest.parent().unwrap().to_path_buf();
    (out, run)
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

async fn simulator(change: impl FnOnce(&mut SimWorkspace)) -> RunningSimulator {
    let mut tenant = SimTenant::demo().unwrap();
    if let Some(workspace) = tenant.log_analytics.as_mut() {
        change(workspace);
    }
    RunningSimulator::start_with(tenant, SimOptions::default())
        .await
        .unwrap()
}

/// With the usage plane on, the run adds the MI-USE findings and the records' `usage`, and every
/// other finding is the same as with it off.
#[tokio::test]
async fn the_usage_plane_adds_its_findings_and_changes_nothing_else() {
    let sim = simulator(|_| {}).await;
    let (_on_dir, on) = assess(&sim, true).await;
    let (_off_dir, off) = assess(&sim, false).await;
    let without_usage = |findings: Vec<Value>| -> Vec<Value> {
        findings
            .into_iter()
            .filter(|f| !f["ruleId"].as_str().unwrap().starts_with("MI-USE-"))
            .collect()
    };
    let on_findings = lines(&on.join("findings.ndjson"));
    let off_findings = lines(&off.join("findings.ndjson"));
    assert!(
        off_findings
            .iter()
            .all(|f| !f["ruleId"].as_str().unwrap().starts_with("MI-USE-"))
    );
    assert_eq!(
        without_usage(on_findings.clone()),
        off_findings,
        "Graph and Azure findings are the same"
    );
    let rules: std::collections::BTreeSet<&str> = on_findings
        .iter()
        .filter_map(|f| f["ruleId"].as_str().filter(|r| r.starts_with("MI-USE-")))
        .collect();
    assert_eq!(
        rules.into_iter().collect::<Vec<_>>(),
        ["MI-USE-001", "MI-USE-002", "MI-USE-003", "MI-USE-004"]
    );
    let narrower = on_findings
        .iter()
        .find(|f| f["ruleId"] == "MI-USE-002")
        .unwrap();
    assert_eq!(narrower["identityName"], "adf-datalake-ingest");
    assert_eq!(narrower["evidence"]["replacement"], "Sites.Read.All");
    assert!(
        narrower["remediation"]
            .as_str()
            .unwrap()
            .contains("appRoleAssignments' --body")
    );
    let dormant: Vec<(&str, &str)> = on_findings
        .iter()
        .filter(|f| f["ruleId"] == "MI-USE-004")
        .map(|f| {
            (
                f["identityName"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        dormant.contains(&("id-old-migration", "high")),
        "{dormant:?}"
    );
    assert!(
        dormant.contains(&("deploy-diagnostics-to-la", "info")),
        "a policy identity is info: {dormant:?}"
    );
    let unused_contributor = on_findings
        .iter()
        .find(|f| f["ruleId"] == "MI-USE-003" && f["identityName"] == "id-aks-prod-kubelet")
        .unwrap();
    assert_eq!(unused_contributor["evidence"]["replacement"], "Reader");
    let custom = on_findings
        .iter()
        .find(|f| f["ruleId"] == "MI-USE-003" && f["identityName"] == "vm-build-agent-01")
        .unwrap();
    assert_eq!(
        custom["evidence"]["customRole"]["Actions"],
        serde_json::json!([
            "Microsoft.Compute/virtualMachines/write",
            "Microsoft.Network/networkInterfaces/write"
        ])
    );
    // Identity records carry what each identity did; without the plane they carry nothing.
    let adf = lines(&on.join("identities.ndjson"))
        .into_iter()
        .find(|r| r["displayName"] == "adf-datalake-ingest")
        .unwrap();
    assert_eq!(adf["usage"]["windowDays"], 30);
    assert!(
        adf["usage"]["graphRequests"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("/sites/{id}/")
    );
    assert!(
        lines(&off.join("identities.ndjson"))
            .iter()
            .all(|r| r.get("usage").is_none())
    );
    assert_eq!(json(&on.join("manifest.json"))["status"], "complete");
}

/// A missing table is not applicable (naming the diagnostic setting), no access is skipped
/// with the role, and neither makes the run partial; a result the row limit cuts is asked again
/// in halves of the window until it fits.
#[tokio::test]
async fn missing_tables_no_access_and_the_row_limit_degrade_honestly() {
    let sim = simulator(|w| w.tables.retain(|t| t == "AADManagedIdentitySignInLogs")).await;
    let (_dir, run) = assess(&sim, true).await;
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["status"], "complete", "{manifest}");
    let not_applicable = manifest["notApplicable"].to_string();
    assert!(
        not_applicable.contains("usageGraphActivity")
            && not_applicable.contains("MicrosoftGraphActivityLogs")
            && not_applicable.contains("diagnostic setting"),
        "{not_applicable}"
    );
    let findings = lines(&run.join("findings.ndjson"));
    let rules: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter_map(|f| f["ruleId"].as_str().filter(|r| r.starts_with("MI-USE-")))
        .collect();
    assert_eq!(
        rules.into_iter().collect::<Vec<_>>(),
        ["MI-USE-004"],
        "only the sign-ins were read"
    );

    let sim = simulator(|w| w.denied = true).await;
    let (_dir, run) = assess(&sim, true).await;
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    let skipped = manifest["skipped"].to_string();
    assert!(
        skipped.contains("InsufficientAccessError") && skipped.contains("Log Analytics Reader"),
        "{skipped}"
    );
    assert!(
        lines(&run.join("findings.ndjson"))
            .iter()
            .all(|f| !f["ruleId"].as_str().unwrap().starts_with("MI-USE-"))
    );

    // Eight rows per answer: the sign-ins, spread over days, fit once the window is split, and
    // the findings are those of the unlimited workspace. One row per answer: some slices of an
    // hour still hold two, so the run says so and the rules that read them stay silent.
    let sim = simulator(|w| w.row_limit = Some(8)).await;
    let (_dir, limited) = assess(&sim, true).await;
    let sim = simulator(|_| {}).await;
    let (_dir2, whole) = assess(&sim, true).await;
    let dormant = |run: &std::path::Path| -> Vec<String> {
        lines(&run.join("findings.ndjson"))
            .into_iter()
            .filter(|f| f["ruleId"] == "MI-USE-004")
            .map(|f| f["identityName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(dormant(&limited), dormant(&whole));
    assert!(!dormant(&whole).is_empty());
    let records = lines(&limited.join("identities.ndjson"));
    let vm = records
        .iter()
        .find(|r| r["displayName"] == "vm-build-agent-01")
        .unwrap();
    assert!(vm["usage"]["lastSignIn"].is_string(), "{vm}");
    assert!(
        json(&limited.join("manifest.json"))["warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let sim = simulator(|w| w.row_limit = Some(1)).await;
    let (_dir, cut) = assess(&sim, true).await;
    let manifest = json(&cut.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert!(
        manifest["warnings"]
            .to_string()
            .contains("cut at the Log Analytics query API's limit"),
        "{manifest}"
    );
    assert!(
        dormant(&cut).is_empty(),
        "no dormancy is claimed from a cut result"
    );
}

/// A table that holds data only from later than the window's start (a diagnostic setting
/// turned on last week) cannot show that an identity did nothing: its evidence is unknown,
/// named in the manifest, and no dormancy is claimed from it.
#[tokio::test]
async fn a_table_younger_than_the_window_is_no_evidence_of_absence() {
    let sim = simulator(|w| {
        for s in &mut w.sign_ins {
            s.days_ago.retain(|d| *d < 7.0);
        }
    })
    .await;
    let (_dir, run) = assess(&sim, true).await;
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    let skipped = manifest["skipped"].to_string();
    assert!(
        skipped.contains("usageSignIns") && skipped.contains("holds data only since"),
        "{skipped}"
    );
    let findings = lines(&run.join("findings.ndjson"));
    assert!(findings.iter().all(|f| f["ruleId"] != "MI-USE-004"));
    assert!(
        findings.iter().any(|f| f["ruleId"] == "MI-USE-001"),
        "the other tables still count"
    );
}
