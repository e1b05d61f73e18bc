//! Whole runs: paging across several Graph pages, and a Graph outage midway.

use mi_assess::simulator::{FaultPlan, RunningSimulator, SimTenant};
use serde_json::{Value, json};

use mi_assess::results::ResultStore as _;

use crate::support::*;

#[tokio::test]
async fn paging_collects_every_identity_across_pages() {
    // 2,500 identities at $top=999 are three pages.
    let sim = RunningSimulator::start(SimTenant::generated(2_500, 11))
        .await
        .unwrap();
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200, "{reply}");
    let list_pages: Vec<String> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.starts_with("servicePrincipals?") && r.contains("ManagedIdentity"))
        .collect();
    assert_eq!(
        list_pages.len(),
        3,
        "one request per page of 999: {list_pages:?}"
    );
    assert_eq!(
        list_pages
            .iter()
            .filter(|r| r.contains("%24skiptoken=") || r.contains("$skiptoken="))
            .count(),
        2
    );

    let store = reader(&sim, &container);
    let latest = read_json(&store, &format!("latest/{}.json", sim.tenant().tenant_id))
        .await
        .unwrap();
    let manifest = read_json(&store, latest["manifest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(manifest["counts"]["identities"], 2_500);
    assert_eq!(manifest["counts"]["systemAssigned"], 1_250);
    // 2,500 identities × 2 per-identity reads in $batches of 20 = 250 batches, plus the lists.
    let requests = manifest["graph"]["requests"].as_u64().unwrap();
    assert!((250..=270).contains(&requests), "{requests} requests");
    assert_eq!(
        manifest["graph"]["resourceUnits"].as_u64().unwrap(),
        sim.resource_units()
    );
    let body = store
        .get(&format!(
            "{}/identities.ndjson",
            latest["prefix"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .unwrap();
    let ids: std::collections::BTreeSet<String> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 2_500, "no duplicates, nothing missing");
}

#[tokio::test]
async fn graph_failure_midway_fails_the_run_and_leaves_latest_alone() {
    let sim = RunningSimulator::start(SimTenant::generated(1_500, 12))
        .await
        .unwrap();
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let latest_path = format!("latest/{}.json", sim.tenant().tenant_id);

    // A good run first, so there is a latest pointer to protect.
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    let latest_before = read_json(&store, &latest_path).await.unwrap();

    // Page 2 of the managed-identity list now fails persistently with 503.
    sim.set_faults(FaultPlan {
        fail_pages_from: Some(1),
        status: 503,
        ..FaultPlan::default()
    });
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(
        status, 500,
        "a failed run fails the invocation so the retry policy applies: {reply}"
    );
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed")
    );

    let latest_after = read_json(&store, &latest_path).await.unwrap();
    assert_eq!(latest_before, latest_after, "latest must not move");

    // The failed run left a failed manifest and a failed status, never a complete one.
    let output = handler.output();
    let run_id = output
        .lines()
        .filter(|l| l.contains("collection failed"))
        .find_map(|l| l.split("run_id=").nth(1).map(|r| r[..36].to_owned()))
        .expect("the failure is logged with its run id");
    let status = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .unwrap();
    assert_eq!(status["state"], "failed");
    assert!(status["error"].as_str().unwrap().contains("503"));
    let manifest = read_json(&store, status["manifest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(manifest["status"], "failed");
    assert_eq!(manifest["errors"][0]["stage"], "collect");
    assert!(
        manifest["graph"]["retries"].as_u64().unwrap() >= 1,
        "transient errors were retried first"
    );
    let prefix = status["resultsPrefix"].as_str().unwrap();
    assert!(
        store
            .get(&format!("{prefix}/identities.ndjson"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_missing_permission_makes_the_run_partial_and_the_data_unknown() {
    let mut tenant = SimTenant::demo().unwrap();
    tenant.denied = vec!["delegatedGrants".into(), "roleEligibilitySchedules".into()];
    let sim = RunningSimulator::start(tenant).await.unwrap();
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(
        status, 200,
        "a partial run is not a failed invocation: {reply}"
    );
    assert!(reply["Logs"][0].as_str().unwrap().contains("partial"));

    let store = reader(&sim, &container);
    assert!(
        read_json(&store, &format!("latest/{}.json", sim.tenant().tenant_id))
            .await
            .is_none(),
        "a partial run never becomes latest"
    );
    let output = handler.output();
    let run_id = output
        .lines()
        .find_map(|l| l.split("run{run_id=").nth(1).map(|r| r[..36].to_owned()))
        .unwrap();
    let status = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .unwrap();
    assert_eq!(status["state"], "partial");
    let manifest = read_json(&store, status["manifest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(manifest["status"], "partial");
    let skipped: Vec<(&str, &str)> = manifest["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["dataset"].as_str().unwrap(),
                g["needsPermission"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        skipped.contains(&("delegatedGrants", "Directory.Read.All")),
        "{skipped:?}"
    );
    assert!(
        skipped.contains(&("roleEligibilitySchedules", "RoleManagement.Read.Directory")),
        "{skipped:?}"
    );

    let body = store
        .get(&format!(
            "{}/identities.ndjson",
            status["resultsPrefix"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .unwrap();
    let first: Value =
        serde_json::from_str(std::str::from_utf8(&body).unwrap().lines().next().unwrap()).unwrap();
    assert!(
        first["delegatedGrants"].is_null(),
        "unknown, not empty: {first}"
    );
    assert!(
        first["unknown"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == "delegatedGrants")
    );
    assert!(
        first["appRoles"].is_array(),
        "what could be read is still reported"
    );
}
