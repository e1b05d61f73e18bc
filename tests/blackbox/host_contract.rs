//! The host ⇄ handler contract: envelopes in, `{Outputs, Logs, ReturnValue}` out.

use serde_json::{Value, json};

use mi_assess::results::ResultStore as _;

use crate::support::*;

const DEMO_USER_ASSIGNED: &str = "1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b01";
const DEMO_GRAPH_APP_SP: &str = "5f7c0bd6-0d67-4b8d-9a53-000000000003";
const DEMO_BUILD_AGENT: &str = "0b1e6f7a-2c3d-4e5f-8a9b-1c2d3e4f5a02";

#[tokio::test]
async fn readiness_probe_is_answered_and_unknown_routes_get_json_errors() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let http = reqwest::Client::new();
    let ready = http.get(format!("{}/", handler.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(
        handler.ready_after < std::time::Duration::from_secs(5),
        "GET / took {:?} after spawn",
        handler.ready_after
    );

    let (status, body) = handler
        .invoke("no-such-function", &json!({"Data": {}, "Metadata": {}}))
        .await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nightly-assessment")
    );

    let wrong_method = http
        .get(format!("{}/scans", handler.base))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MethodNotAllowed");
}

#[tokio::test]
async fn timer_payloads_run_a_full_assessment_into_blob_storage() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let tenant = sim.tenant().tenant_id.clone();

    let cases = [
        ("null", json!(null), false),
        (
            "full",
            json!({"Last": "2022-10-11T10:52:00.003967+02:00", "Next": "2022-10-11T10:53:00+02:00", "LastUpdated": "2022-10-11T10:52:00.003967+02:00"}),
            false,
        ),
        (
            "first run",
            json!({"Last": "0001-01-01T00:00:00", "Next": "2026-11-28T02:00:00", "LastUpdated": "0001-01-01T00:00:00.0000000"}),
            true,
        ),
    ];
    let mut previous_run = None;
    for (label, schedule_status, past_due) in cases {
        let (status, reply) = handler
            .invoke(
                "nightly-assessment",
                &timer_envelope(schedule_status, past_due),
            )
            .await;
        assert_eq!(status, 200, "{label}: {reply}");
        assert_envelope(&reply);
        assert!(reply["ReturnValue"].is_null());
        let log = reply["Logs"][0].as_str().unwrap();
        assert!(
            log.contains("complete") && log.contains("14 managed identities"),
            "{label}: {log}"
        );

        let latest = read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .expect("latest pointer");
        let manifest = read_json(&store, latest["manifest"].as_str().unwrap())
            .await
            .expect("manifest");
        assert_eq!(manifest["status"], "complete", "{label}");
        assert_eq!(manifest["trigger"], "timer");
        assert_eq!(manifest["counts"]["identities"], 14);
        assert_eq!(manifest["counts"]["userAssigned"], 5);
        assert!(manifest["invocationId"].is_string());
        assert_ne!(
            Some(latest["runId"].clone()),
            previous_run,
            "{label}: latest must move to the new run"
        );
        previous_run = Some(latest["runId"].clone());

        let prefix = latest["prefix"].as_str().unwrap();
        let identities = store
            .get(&format!("{prefix}/identities.ndjson"))
            .await
            .unwrap()
            .expect("identities");
        let lines: Vec<Value> = std::str::from_utf8(&identities)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 14);
        let uami = lines
            .iter()
            .find(|l| l["id"] == DEMO_USER_ASSIGNED)
            .expect("the demo UAMI");
        assert_eq!(uami["kind"], "userAssigned");
        assert_eq!(
            uami["resourceType"],
            "Microsoft.ManagedIdentity/userAssignedIdentities"
        );
        assert_eq!(uami["resourceGroup"], "rg-identities");
        assert_eq!(uami["resourceName"], "id-github-deploy");
        assert!(uami["subscriptionId"].is_string() && uami["appId"].is_string());
        let findings = store
            .get(&format!("{prefix}/findings.ndjson"))
            .await
            .unwrap();
        assert!(findings.is_some(), "findings.ndjson exists even when empty");
    }
}

#[tokio::test]
async fn on_demand_scan_is_queued_then_run_by_the_worker() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;

    let (status, reply) = handler
        .invoke(
            "scans",
            &http_envelope("POST", "/api/scans", json!({}), "scans"),
        )
        .await;
    assert_eq!(status, 200);
    assert_envelope(&reply);
    let (code, body) = http_output(&reply);
    assert_eq!(code, 202);
    let run_id = body["runId"].as_str().unwrap().to_owned();
    let status_url = body["statusUrl"].as_str().unwrap();
    assert_eq!(
        status_url,
        format!("https://func-mi-assess.azurewebsites.net/api/scans/{run_id}")
    );
    assert!(
        !status_url.contains("code="),
        "the function key must not be echoed"
    );
    assert_eq!(reply["Outputs"]["res"]["headers"]["Location"], status_url);
    let message = &reply["Outputs"]["scanRequest"];
    assert!(
        message.is_object(),
        "the queue output must be a JSON object, not a string: {message}"
    );
    assert_eq!(message["runId"], run_id.as_str());

    // Queued state is visible to any instance.
    let get = |id: &str| {
        http_envelope(
            "GET",
            &format!("/api/scans/{id}"),
            json!({"runId": id}),
            "scans",
        )
    };
    let (_, reply) = handler.invoke("scans", &get(&run_id)).await;
    let (code, body) = http_output(&reply);
    assert_eq!((code, body["state"].as_str()), (200, Some("queued")));

    // The host delivers the message to scan-worker as a double-encoded string.
    let queue = queue_envelope(message, 1);
    let (status, reply) = handler.invoke("scan-worker", &queue).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["Logs"][0].as_str().unwrap().contains("complete"));

    let (_, reply) = handler.invoke("scans", &get(&run_id)).await;
    let (code, body) = http_output(&reply);
    assert_eq!(code, 200);
    assert_eq!(body["state"], "complete");
    assert_eq!(body["trigger"], "http");
    let manifest_location = body["manifestLocation"].as_str().unwrap();
    assert!(
        manifest_location.starts_with(container.as_str())
            && manifest_location.ends_with("manifest.json")
    );

    // A redelivered message does not run the scan again.
    let requests_before = sim.graph_requests();
    let (status, reply) = handler.invoke("scan-worker", &queue).await;
    assert_eq!(status, 200);
    assert!(
        reply["Logs"][0]
            .as_str()
            .unwrap()
            .contains("already complete")
    );
    assert_eq!(sim.graph_requests(), requests_before);

    // Unknown and malformed run ids.
    let unknown = uuid::Uuid::new_v4().to_string();
    let (_, reply) = handler.invoke("scans", &get(&unknown)).await;
    assert_eq!(http_output(&reply).0, 404);
    let (_, reply) = handler.invoke("scans", &get("not-a-guid")).await;
    assert_eq!(http_output(&reply).0, 400);
}

#[tokio::test]
async fn single_identity_endpoint_answers_200_404_and_400() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let get = |id: &str| {
        http_envelope(
            "GET",
            &format!("/api/identities/{id}"),
            json!({"objectId": id}),
            "identity",
        )
    };

    let (status, reply) = handler.invoke("identity", &get(DEMO_USER_ASSIGNED)).await;
    assert_eq!(status, 200);
    assert_envelope(&reply);
    let (code, record) = http_output(&reply);
    assert_eq!(code, 200);
    assert_eq!(record["id"], DEMO_USER_ASSIGNED);
    assert_eq!(record["kind"], "userAssigned");
    // Assessed with the same rules as a full run: Directory Readers is an info finding.
    assert_eq!(record["directoryRoles"][0]["roleName"], "Directory Readers");
    assert_eq!(record["findings"][0]["ruleId"], "MI-ROLE-001");
    assert_eq!(record["findings"][0]["severity"], "info");
    assert_eq!(record["skipped"], json!([]));

    // A privileged identity, whose role comes through a nested role-assignable group.
    let (_, reply) = handler.invoke("identity", &get(DEMO_BUILD_AGENT)).await;
    let (code, record) = http_output(&reply);
    assert_eq!(code, 200);
    assert_eq!(record["tier"], "controlPlane");
    let rules: Vec<&str> = record["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["ruleId"].as_str().unwrap())
        .collect();
    // One group path, one finding: the role names the group it comes through.
    assert_eq!(rules, vec!["MI-ROLE-001"]);
    assert_eq!(
        record["findings"][0]["evidence"]["group"]["name"],
        "sg-tier0-app-admins"
    );
    assert_eq!(
        reply["Outputs"]["res"]["headers"]["Content-Type"],
        "application/json; charset=utf-8"
    );

    for (id, expected) in [
        (DEMO_GRAPH_APP_SP, 404), // exists, but is not a managed identity
        ("00000000-1111-2222-3333-444444444444", 404), // does not exist
        ("not-a-guid", 400),
        ("1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b01'; DROP", 400),
    ] {
        let (status, reply) = handler.invoke("identity", &get(id)).await;
        assert_eq!(status, 200, "the invocation itself succeeds");
        let (code, body) = http_output(&reply);
        assert_eq!(code, expected, "{id}: {body}");
        assert!(body["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn malformed_and_oversized_envelopes_get_4xx_json_never_a_crash() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("nightly-assessment", b"{not json".to_vec(), 400),
        ("nightly-assessment", b"[1,2,3]".to_vec(), 400),
        ("nightly-assessment", b"".to_vec(), 400),
        (
            "nightly-assessment",
            br#"{"Data":{},"Metadata":{}}"#.to_vec(),
            400,
        ),
        (
            "nightly-assessment",
            br#"{"Data":{"timer":"yesterday"},"Metadata":{}}"#.to_vec(),
            400,
        ),
        (
            "scans",
            br#"{"Data":{"req":42},"Metadata":{}}"#.to_vec(),
            400,
        ),
        (
            "scan-worker",
            br#"{"Data":{"scanRequest":"\"not json\""},"Metadata":{}}"#.to_vec(),
            400,
        ),
        (
            "scan-worker",
            br#"{"Data":{"scanRequest":"\"{\\\"runId\\\":\\\"nope\\\"}\""},"Metadata":{}}"#
                .to_vec(),
            400,
        ),
        ("nightly-assessment", vec![b' '; 2 * 1024 * 1024], 413),
    ];
    for (function, body, expected) in cases {
        let preview = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (status, reply) = handler.invoke_raw(function, body).await;
        assert_eq!(status, expected, "{function} {preview:?}: {reply}");
        assert!(reply["error"]["message"].is_string(), "{reply}");
    }
    // Still alive and serving.
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    let (_, _) = handler
        .invoke(
            "identity",
            &http_envelope(
                "GET",
                "/api/identities/x",
                json!({"objectId": DEMO_USER_ASSIGNED}),
                "identity",
            ),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let output = handler.output();
    assert!(
        output.contains("run finished"),
        "logs were captured at debug level: {output}"
    );
    let tokens = sim.issued_tokens();
    assert!(
        tokens.len() >= 2,
        "the handler fetched Graph and Storage tokens through the MI endpoint"
    );
    for token in tokens {
        let payload = token.split('.').nth(1).unwrap();
        assert!(
            !output.contains(payload),
            "a token payload appeared in the logs"
        );
    }
    assert!(
        !output.contains(sim.identity_header()),
        "the IDENTITY_HEADER secret appeared in the logs"
    );
}

#[tokio::test]
async fn user_assigned_client_id_is_sent_to_the_token_endpoint() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let client_id = "8e4d2c6f-5b3a-4d9e-c7f6-1a2b3c4d5e06";
    let handler = Handler::spawn(
        &sim,
        &container,
        &[("MI_ASSESS_IDENTITY_CLIENT_ID", client_id)],
    )
    .await;
    let (status, _) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert_eq!(status, 200);
    let requests = sim.token_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.resource == sim.graph_endpoint().as_str().trim_end_matches('/'))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.resource == "https://storage.azure.com")
    );
    assert!(
        requests
            .iter()
            .all(|r| r.client_id.as_deref() == Some(client_id)),
        "{requests:?}"
    );
}

/// While an HTTP-triggered run works, `GET /api/scans/{runId}` shows its progress (the phase,
/// done of total, resource units spent), kept current in `scans/{runId}.json`; once the run
/// has finished, a late progress update never overwrites its final state.
#[tokio::test]
async fn a_running_scan_shows_its_progress() {
    let sim = slow_demo_simulator(std::time::Duration::from_millis(150)).await;
    let container = new_container(&sim).await;
    let handler = std::sync::Arc::new(Handler::spawn(&sim, &container, &[]).await);
    let (code, body, message) = post_scan(&handler).await;
    assert_eq!(code, 202);
    let run_id = body["runId"].as_str().unwrap().to_owned();
    let worker = {
        let handler = handler.clone();
        tokio::spawn(async move {
            handler
                .invoke("scan-worker", &queue_envelope(&message, 1))
                .await
        })
    };
    let get = http_envelope(
        "GET",
        &format!("/api/scans/{run_id}"),
        json!({"runId": run_id}),
        "scans",
    );
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !worker.is_finished() && std::time::Instant::now() < deadline {
        let (_, reply) = handler.invoke("scans", &get).await;
        let (_, body) = http_output(&reply);
        if body["state"] == "running" && body["progress"].is_object() {
            seen.push(body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let (status, _) = worker.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        !seen.is_empty(),
        "no progress was visible while the run worked"
    );
    let running = seen.last().unwrap();
    let progress = &running["progress"];
    assert_eq!(progress["phases"], 9);
    assert!(progress["phaseNumber"].as_u64().unwrap() >= 1);
    assert!(progress["label"].is_string() && progress["unit"].is_string());
    assert!(
        progress["resourceUnits"].as_u64().unwrap() > 0,
        "{progress}"
    );
    // The running status, for the contract tests (scan-status.schema.json, progress).
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/contract-samples/progress/scans");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(
        samples.join(format!("{run_id}.json")),
        serde_json::to_vec_pretty(running).unwrap(),
    )
    .unwrap();
    // The final state stays final.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (_, reply) = handler.invoke("scans", &get).await;
    assert_eq!(http_output(&reply).1["state"], "complete");
}
