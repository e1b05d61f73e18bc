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
    // (2,500 identities + 125 credential-bearing apps) × 2 per-principal reads in $batches of
    // 20 = 263 batches, plus about a dozen list pages and the resource lookups.
    let requests = manifest["graph"]["requests"].as_u64().unwrap();
    assert!((263..=290).contains(&requests), "{requests} requests");
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

fn change_types(body: &[u8]) -> Vec<(String, String, String)> {
    std::str::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["changeType"].as_str().unwrap().to_owned(),
                v["ruleId"].as_str().unwrap().to_owned(),
                v["identityName"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn consecutive_runs_report_changes_and_apply_suppressions() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let tenant = sim.tenant().tenant_id.clone();
    // Run 1: the tenant's first run reports everything as new.
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    let first_run = last_started_run(&handler.output());
    let latest = read_json(&store, &format!("latest/{tenant}.json"))
        .await
        .unwrap();
    let prefix = latest["prefix"].as_str().unwrap().to_owned();
    let changes = store
        .get(&format!("{prefix}/changes.ndjson"))
        .await
        .unwrap()
        .unwrap();
    let first = change_types(&changes);
    assert_eq!(first.len(), 50);
    assert!(first.iter().all(|(t, _, _)| t == "new"));
    let manifest = read_json(&store, &format!("{prefix}/manifest.json"))
        .await
        .unwrap();
    assert_eq!(
        manifest["counts"]["changes"],
        json!({"new": 50, "resolved": 0, "severityChanged": 0, "suppressionChanged": 0})
    );
    assert!(manifest["previousRunId"].is_null());
    save_contract_samples(&store, "changes-run-1", &prefix, &tenant, &first_run).await;

    // Between runs: one grant revoked, one credential-bearing app (whose only secret had
    // expired) gets a new secret and a ControlPlane permission, and two accepted risks are
    // recorded (one still valid, one expired).
    sim.update_tenant(|t| {
        let hr_export = t
            .applications
            .iter_mut()
            .find(|a| a["displayName"] == "hr-export-connector")
            .unwrap();
        // Live now, and within the 180-day limit, so it raises no SP-CRED-002.
        let now = time::OffsetDateTime::now_utc();
        let rfc3339 = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        hr_export["passwordCredentials"] = json!([{
            "keyId": "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
            "displayName": "prod-secret-2",
            "startDateTime": rfc3339(now - time::Duration::days(30)),
            "endDateTime": rfc3339(now + time::Duration::days(120))
        }]);
        t.app_role_assignments
            .retain(|a| a["id"] != "ara02-demo-assignment-0b1e6f7a");
        t.app_role_assignments.push(json!({
            "id": "ara99-demo-hr-escalation",
            "appRoleId": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
            "principalId": "3a4b5c6d-7e8f-4a0b-8c1d-2e3f4a5b6c01",
            "principalType": "ServicePrincipal",
            "resourceId": "5f7c0bd6-0d67-4b8d-9a53-000000000003",
            "resourceDisplayName": "Microsoft Graph",
            "createdDateTime": "2026-11-20T08:00:00Z"
        }));
    });
    // Entries of each scope, and bad ones among them: the bad ones are skipped and reported,
    // the rest apply.
    let in_60_days = (time::OffsetDateTime::now_utc() + time::Duration::days(60))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let suppressions = json!({"suppressions": [
        {"ruleId": "MI-GRAPH-002", "identityId": "1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b03",
         "reason": "mailbox archiving approved by the CISO", "expires": in_60_days, "approvedBy": "ciso@contoso.example"},
        {"ruleId": "MI-HYG-001", "identityId": "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a08",
         "reason": "reporting app retired in Q3", "expires": "2025-01-01T00:00:00Z"},
        {"ruleId": "MI-NOPE-999", "identityId": "1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b03",
         "reason": "a rule that does not exist", "expires": in_60_days},
        {"ruleId": "MI-ORPH-001", "reason": "orphans are cleaned up monthly", "expires": in_60_days},
        {"ruleId": "MI-ORPH-002", "displayName": "FUNC-RETIRED-*", "reason": "retired apps", "expires": in_60_days},
        {"ruleId": "MI-ORPH-002", "identityId": "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a08",
         "reason": "too long", "expires": "2099-01-01T00:00:00Z"}
    ]});
    store
        .put(
            "suppressions.json",
            bytes::Bytes::from(suppressions.to_string()),
            "application/json",
            &[],
        )
        .await
        .unwrap();

    // Run 2: exactly those differences.
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    let second_run = last_started_run(&handler.output());
    let latest = read_json(&store, &format!("latest/{tenant}.json"))
        .await
        .unwrap();
    let prefix = latest["prefix"].as_str().unwrap().to_owned();
    assert_eq!(latest["runId"], second_run.as_str());
    let body = store
        .get(&format!("{prefix}/changes.ndjson"))
        .await
        .unwrap()
        .unwrap();
    let mut second = change_types(&body);
    second.sort();
    let change = |t: &str, rule: &str, name: &str| (t.to_owned(), rule.to_owned(), name.to_owned());
    assert_eq!(
        second,
        vec![
            change("new", "SUPP-001", "func-retired-reporting"),
            change("resolved", "MI-GRAPH-001", "aa-identity-automation"),
            change("severityChanged", "SP-CRED-001", "hr-export-connector"),
            change("suppressionChanged", "MI-GRAPH-002", "id-mail-archiver"),
            change("suppressionChanged", "MI-GRAPH-002", "id-mail-archiver"),
            change("suppressionChanged", "MI-ORPH-001", "id-old-migration"),
            change(
                "suppressionChanged",
                "MI-ORPH-002",
                "func-retired-reporting"
            ),
        ]
    );
    let changed: Value = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|c| c["changeType"] == "severityChanged")
        .unwrap();
    assert_eq!(changed["before"]["severity"], "low");
    assert_eq!(changed["after"]["severity"], "critical");
    assert_eq!(changed["previousRunId"], first_run.as_str());
    assert!(changed["detectedAt"].is_string() && changed["previousRunAt"].is_string());

    let manifest = read_json(&store, &format!("{prefix}/manifest.json"))
        .await
        .unwrap();
    assert_eq!(
        manifest["counts"]["changes"],
        json!({"new": 1, "resolved": 1, "severityChanged": 1, "suppressionChanged": 4})
    );
    assert_eq!(manifest["counts"]["suppressed"], 4);
    let warnings = manifest["warnings"].to_string();
    assert!(
        warnings.contains("entry 2 was skipped") && warnings.contains("MI-NOPE-999"),
        "{warnings}"
    );
    assert!(
        warnings.contains("entry 5 was skipped") && warnings.contains("more than 365 days"),
        "{warnings}"
    );
    let findings = store
        .get(&format!("{prefix}/findings.ndjson"))
        .await
        .unwrap()
        .unwrap();
    let findings: Vec<Value> = std::str::from_utf8(&findings)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let suppressed: Vec<&Value> = findings
        .iter()
        .filter(|f| f["suppressed"] == true)
        .collect();
    assert_eq!(
        suppressed.len(),
        4,
        "both MI-GRAPH-002 findings of id-mail-archiver, the rule-wide MI-ORPH-001 and the glob MI-ORPH-002 are still written, marked"
    );
    let scope_of = |rule: &str| {
        suppressed
            .iter()
            .filter(|f| f["ruleId"] == rule)
            .map(|f| f["suppression"]["scope"].as_str().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(scope_of("MI-GRAPH-002"), ["identity", "identity"]);
    assert_eq!(scope_of("MI-ORPH-001"), ["rule"]);
    assert_eq!(scope_of("MI-ORPH-002"), ["displayName"]);
    let expired = findings
        .iter()
        .find(|f| f["ruleId"] == "MI-HYG-001")
        .unwrap();
    assert_eq!(
        expired["suppressed"], false,
        "an expired suppression no longer applies"
    );
    assert!(
        findings
            .iter()
            .any(|f| f["ruleId"] == "SUPP-001" && f["severity"] == "info")
    );
    let report = store
        .get(&format!("{prefix}/report.html"))
        .await
        .unwrap()
        .unwrap();
    assert!(std::str::from_utf8(&report).unwrap().contains(&tenant));
    save_contract_samples(&store, "changes-run-2", &prefix, &tenant, &second_run).await;

    // Run 3: a malformed suppressions.json is reported and ignored, never fatal; the findings
    // it accepted are active again, each a suppressionChanged event that --fail-on-new counts.
    store
        .put(
            "suppressions.json",
            bytes::Bytes::from_static(b"{\"suppressions\": [ oops"),
            "application/json",
            &[],
        )
        .await
        .unwrap();
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    let latest = read_json(&store, &format!("latest/{tenant}.json"))
        .await
        .unwrap();
    let manifest = read_json(&store, latest["manifest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(manifest["status"], "complete");
    assert!(
        manifest["warnings"][0]
            .as_str()
            .unwrap()
            .contains("suppressions.json is not a {\"suppressions\": [...]} document"),
        "{manifest}"
    );
    assert_eq!(manifest["counts"]["suppressed"], 0);
    assert_eq!(manifest["counts"]["changes"]["suppressionChanged"], 4);
    let reactivated = store
        .get(&format!(
            "{}/changes.ndjson",
            latest["prefix"].as_str().unwrap()
        ))
        .await
        .unwrap()
        .unwrap();
    let reactivated: Vec<Value> = std::str::from_utf8(&reactivated)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|c| c["changeType"] == "suppressionChanged")
        .collect();
    assert!(
        reactivated
            .iter()
            .all(|c| c["before"]["suppressed"] == true && c["after"]["suppressed"] == false),
        "{reactivated:?}"
    );
    let new_total: u64 = manifest["counts"]["newBySeverity"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(
        new_total, 4,
        "re-activated findings count as new for --fail-on-new: {manifest}"
    );
    assert!(handler.output().contains("suppressions.json is not a"));
}

#[tokio::test]
async fn one_run_per_tenant_at_a_time() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let tenant = sim.tenant().tenant_id.clone();
    let running = uuid::Uuid::new_v4().to_string();
    let lock = match store
        .try_lock(&format!("locks/{tenant}.lock"), &running)
        .await
        .unwrap()
    {
        mi_assess::results::LockAttempt::Acquired(lock) => lock,
        other => panic!("the lock should be free: {other:?}"),
    };
    assert_eq!(
        store
            .lock_holder(&format!("locks/{tenant}.lock"))
            .await
            .unwrap()
            .as_deref(),
        Some(running.as_str())
    );

    // While a run holds the lease: HTTP answers 409 with the running run's id ...
    let (status, reply) = handler
        .invoke(
            "scans",
            &http_envelope("POST", "/api/scans", json!({}), "scans"),
        )
        .await;
    assert_eq!(status, 200);
    let (code, body) = http_output(&reply);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["runningRunId"], running.as_str());
    assert!(
        reply["Outputs"].get("scanRequest").is_none(),
        "nothing is queued"
    );
    // ... and the timer logs it and skips.
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    assert!(
        reply["Logs"][0].as_str().unwrap().contains("skipped"),
        "{reply}"
    );
    assert!(
        read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .is_none()
    );

    // Released: scans run again, and a finished run releases the lease itself.
    store.release_lock(&lock).await.unwrap();
    let (_, reply) = handler
        .invoke(
            "scans",
            &http_envelope("POST", "/api/scans", json!({}), "scans"),
        )
        .await;
    assert_eq!(http_output(&reply).0, 202);
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    assert!(
        read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .is_some()
    );
    assert_eq!(
        store
            .lock_holder(&format!("locks/{tenant}.lock"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_retried_timer_invocation_does_not_create_a_second_run() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let schedule = json!({"Last": "2026-11-26T02:00:00+00:00", "Next": "2026-11-27T02:00:00+00:00", "LastUpdated": "2026-11-26T02:00:00.0047+00:00"});
    let (status, _) = handler
        .invoke(
            "nightly-assessment",
            &timer_envelope(schedule.clone(), false),
        )
        .await;
    assert_eq!(status, 200);
    let requests = sim.graph_requests();
    let mut retry = timer_envelope(schedule, false);
    retry["Metadata"]["RetryContext"] =
        json!({"RetryCount": 1, "MaxRetryCount": 3, "Exception": null});
    let (status, reply) = handler.invoke("nightly-assessment", &retry).await;
    assert_eq!(status, 200);
    assert!(
        reply["Logs"][0]
            .as_str()
            .unwrap()
            .contains("already complete"),
        "{reply}"
    );
    assert_eq!(
        sim.graph_requests(),
        requests,
        "the retry read nothing from Graph"
    );
    assert_eq!(handler.output().matches("run started").count(), 1);
}

/// A tenant without Entra ID P2 answers every PIM list with 400 `AadPremiumLicenseRequired`:
/// the run is complete (it becomes `latest`), the PIM data is not applicable rather than
/// unknown, the manifest names the checks that could not apply, and every record says
/// `pim: {licensed: false}`.
#[tokio::test]
async fn a_tenant_without_p2_gives_a_complete_run_with_pim_not_applicable() {
    let mut tenant = SimTenant::demo().unwrap();
    tenant.pim_unlicensed = true;
    tenant.arm.eligibility_status = Some(400);
    let sim = RunningSimulator::start(tenant).await.unwrap();
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200, "{reply}");

    let store = reader(&sim, &container);
    let latest = read_json(&store, &format!("latest/{}.json", sim.tenant().tenant_id))
        .await
        .expect("a complete run becomes latest");
    let manifest = read_json(&store, latest["manifest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(manifest["status"], "complete", "{}", manifest["skipped"]);
    let not_applicable: Vec<&str> = manifest["notApplicable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["dataset"].as_str().unwrap())
        .collect();
    for dataset in [
        "roleEligibilitySchedules",
        "roleAssignmentSchedules",
        "azureEligibleRoleAssignments",
    ] {
        assert!(not_applicable.contains(&dataset), "{not_applicable:?}");
    }
    for check in manifest["notApplicable"].as_array().unwrap() {
        assert!(
            check["reason"]
                .as_str()
                .unwrap()
                .contains("AadPremiumLicenseRequired")
        );
        assert!(check["checks"].as_str().unwrap().contains("PIM"), "{check}");
    }
    for gap in manifest["skipped"].as_array().unwrap() {
        assert_eq!(gap["notApplicable"], true, "only the licence gaps: {gap}");
        assert_eq!(gap["affectsStatus"], false, "{gap}");
    }

    let prefix = latest["prefix"].as_str().unwrap();
    let body = store
        .get(&format!("{prefix}/identities.ndjson"))
        .await
        .unwrap()
        .unwrap();
    let records: Vec<Value> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(
            record["pim"],
            json!({"licensed": false}),
            "{}",
            record["id"]
        );
        assert!(
            record["unknown"].as_array().unwrap().is_empty(),
            "{}",
            record["unknown"]
        );
        assert!(
            record["directoryRoles"].is_array(),
            "active roles are still read"
        );
        for role in record["directoryRoles"].as_array().unwrap() {
            assert_eq!(
                role["state"], "active",
                "nothing is eligible without PIM: {role}"
            );
        }
    }
}
