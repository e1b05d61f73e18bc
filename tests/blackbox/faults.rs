//! Faults a deployment meets that mi-assess does not cause: a cancelled invocation, a run past
//! its deadline, a process killed mid-run, and a long-lived process serving many runs.

use std::time::Duration;

use mi_assess::results::ResultStore as _;
use mi_assess::simulator::FaultPlan;
use serde_json::{Value, json};

use crate::support::*;

/// A run of the demo tenant with every Graph response 300 ms late lasts several seconds.
const SLOW: Duration = Duration::from_millis(300);

fn run_id_of(body: &Value) -> String {
    body["runId"].as_str().expect("a run id").to_owned()
}

/// The host cancels an invocation (functionTimeout, scale-in) by dropping its connection. The
/// run must stop, read `failed` with reason `cancelled`, and free the tenant: before, its lease
/// renewal outlived it and every later scan got 409 until the process restarted.
#[tokio::test]
async fn a_cancelled_worker_invocation_fails_its_run_and_frees_the_tenant() {
    let sim = slow_demo_simulator(SLOW).await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);

    let (code, body, message) = post_scan(&handler).await;
    assert_eq!(code, 202, "{body}");
    let run_id = run_id_of(&body);
    let answered = handler
        .invoke_cut_off(
            "scan-worker",
            &queue_envelope(&message, 1),
            Duration::from_secs(1),
        )
        .await;
    assert_eq!(answered, None, "the run should still be working after 1 s");

    let status = wait_for_status(&store, &run_id, Duration::from_secs(70), |s| {
        s["state"] == "failed"
    })
    .await;
    assert_eq!(status["failureReason"], "cancelled", "{status}");
    let tenant = sim.tenant().tenant_id.clone();
    let manifest_path = status["manifest"].as_str().expect("a failed manifest");
    let manifest = read_json(&store, manifest_path).await.expect("manifest");
    assert_eq!(manifest["status"], "failed");
    assert_eq!(manifest["failureReason"], "cancelled");
    assert_eq!(manifest["errors"][0]["stage"], "run");

    // The tenant takes a new scan (within the 70 s the lease would need to expire on its own).
    let (code, body, message) = post_scan(&handler).await;
    assert_eq!(code, 202, "the tenant is still locked: {body}");
    let (status, reply) = handler
        .invoke("scan-worker", &queue_envelope(&message, 1))
        .await;
    assert_eq!(status, 200, "{reply}");
    let done = read_json(&store, &format!("scans/{}.json", run_id_of(&body)))
        .await
        .expect("status");
    assert_eq!(done["state"], "complete", "{done}");
    assert!(
        read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .is_some()
    );
}

/// Past MI_ASSESS_RUN_TIMEOUT a run stops its requests, writes a `failed` manifest with reason
/// `deadline` and releases the lock.
#[tokio::test]
async fn a_run_past_its_deadline_stops_and_releases_the_tenant() {
    let sim = slow_demo_simulator(SLOW).await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_RUN_TIMEOUT", "2")]).await;
    let store = reader(&sim, &container);
    let tenant = sim.tenant().tenant_id.clone();

    let started = std::time::Instant::now();
    let (status, reply) = handler
        .invoke("nightly-assessment", &timer_envelope(json!(null), false))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run should stop at its deadline, not run to the end"
    );
    assert_eq!(status, 500, "a failed run fails the invocation: {reply}");
    // The failure names the run: "run {runId} failed: …".
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    let run_id = message
        .strip_prefix("run ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("the failure names its run: {reply}"))
        .to_owned();
    let status = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .expect("status");
    assert_eq!(
        (status["state"].as_str(), status["failureReason"].as_str()),
        (Some("failed"), Some("deadline")),
        "{status}"
    );
    let manifest = read_json(&store, status["manifest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(manifest["failureReason"], "deadline");
    assert!(
        read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .is_none(),
        "a stopped run never moves latest/"
    );
    assert_eq!(
        store
            .lock_holder(&format!("locks/{tenant}.lock"))
            .await
            .unwrap(),
        None,
        "the lock is released"
    );
}

/// A process killed mid-run leaves its status `running`; the next run that takes the expired
/// lease marks it `failed` with reason `abandoned` and says so in its own manifest.
#[tokio::test]
async fn a_run_killed_mid_way_is_marked_abandoned_by_the_next_run() {
    let sim = slow_demo_simulator(SLOW).await;
    let container = new_container(&sim).await;
    let store = reader(&sim, &container);
    let mut first = Handler::spawn(&sim, &container, &[]).await;
    let (_, body, message) = post_scan(&first).await;
    let killed = run_id_of(&body);
    let answered = first
        .invoke_cut_off(
            "scan-worker",
            &queue_envelope(&message, 1),
            Duration::from_millis(1500),
        )
        .await;
    assert_eq!(answered, None);
    first.kill();
    let status = read_json(&store, &format!("scans/{killed}.json"))
        .await
        .unwrap();
    assert_eq!(status["state"], "running", "{status}");

    // A new instance: its runs are refused until the dead run's lease (60 s) expires.
    let second = Handler::spawn(&sim, &container, &[]).await;
    let started = std::time::Instant::now();
    let manifest = loop {
        let (status, reply) = second
            .invoke("nightly-assessment", &timer_envelope(json!(null), false))
            .await;
        assert_eq!(status, 200, "{reply}");
        let log = reply["Logs"][0].as_str().unwrap_or_default().to_owned();
        if !log.contains("skipped") {
            let tenant = sim.tenant().tenant_id.clone();
            let latest = read_json(&store, &format!("latest/{tenant}.json"))
                .await
                .expect("the new run completes");
            break read_json(&store, latest["manifest"].as_str().unwrap())
                .await
                .unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the dead run's lease never expired"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let status = read_json(&store, &format!("scans/{killed}.json"))
        .await
        .unwrap();
    assert_eq!(
        (status["state"].as_str(), status["failureReason"].as_str()),
        (Some("failed"), Some("abandoned")),
        "{status}"
    );
    let warnings = manifest["warnings"].to_string();
    assert!(
        warnings.contains(&killed) && warnings.contains("abandoned"),
        "{manifest}"
    );
}

/// The manifest counts its own run's Graph requests: before, the counters were the process's,
/// and each run claimed the requests of every run before it.
#[tokio::test]
async fn two_runs_in_one_process_each_count_their_own_requests() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let mut requests = Vec::new();
    for occurrence in ["2026-11-01T02:00:00", "2026-11-02T02:00:00"] {
        let schedule = json!({"Last": occurrence, "Next": occurrence, "LastUpdated": occurrence});
        let (status, reply) = handler
            .invoke("nightly-assessment", &timer_envelope(schedule, false))
            .await;
        assert_eq!(status, 200, "{reply}");
        let tenant = sim.tenant().tenant_id.clone();
        let latest = read_json(&store, &format!("latest/{tenant}.json"))
            .await
            .unwrap();
        let manifest = read_json(&store, latest["manifest"].as_str().unwrap())
            .await
            .unwrap();
        requests.push(manifest["graph"]["requests"].as_u64().unwrap());
    }
    assert!(requests[0] > 0, "{requests:?}");
    assert_eq!(requests[0], requests[1], "{requests:?}");
}

/// Runs the nightly assessment once and returns its invocation status and reply, failing the
/// test (instead of hanging) when the run does not end within `limit`.
async fn nightly_within(handler: &Handler, limit: Duration) -> (u16, Value) {
    tokio::time::timeout(
        limit,
        handler.invoke("nightly-assessment", &timer_envelope(json!(null), false)),
    )
    .await
    .unwrap_or_else(|_| panic!("the run did not end within {limit:?}"))
}

/// An `@odata.nextLink` that points back at its own page ends the listing with an error: before,
/// the managed-identity list ran until it was killed, its memory growing all the while.
#[tokio::test]
async fn a_next_link_to_its_own_page_on_the_identity_list_ends_the_run() {
    let sim = demo_simulator().await;
    sim.set_faults(FaultPlan {
        self_next_link: Some("servicePrincipals".into()),
        ..FaultPlan::default()
    });
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_RUN_TIMEOUT", "120")]).await;
    let (status, reply) = nightly_within(&handler, Duration::from_secs(60)).await;
    assert_eq!(status, 500, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("failed") && message.contains("repeats a page"),
        "{reply}"
    );
}

/// The same loop inside `$batch` (an identity's appRoleAssignments) marks that data unknown:
/// the run ends `partial`, never `complete`.
#[tokio::test]
async fn a_next_link_loop_inside_batch_makes_the_run_partial() {
    let sim = demo_simulator().await;
    sim.set_faults(FaultPlan {
        self_next_link: Some("appRoleAssignments".into()),
        ..FaultPlan::default()
    });
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_RUN_TIMEOUT", "120")]).await;
    let store = reader(&sim, &container);
    let (status, reply) = nightly_within(&handler, Duration::from_secs(60)).await;
    assert_eq!(status, 200, "{reply}");
    let log = reply["Logs"][0].as_str().unwrap_or_default();
    assert!(log.contains("partial"), "{reply}");
    let run_id = log.split(' ').nth(1).unwrap();
    let status = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .unwrap();
    let manifest = read_json(&store, status["manifest"].as_str().unwrap())
        .await
        .unwrap();
    let gaps = manifest["skipped"].to_string();
    assert!(
        gaps.contains("appRoleAssignments") && gaps.contains("repeats a page"),
        "{manifest}"
    );
}

/// A page larger than MI_ASSESS_MAX_RESPONSE_MB is refused as it streams in, with a clear
/// error, and the handler's memory stays bounded: before, a 1,000,000-item page took it to
/// 1.8 GB.
#[tokio::test]
async fn an_oversized_page_is_refused_and_memory_stays_bounded() {
    let sim = demo_simulator().await;
    sim.set_faults(FaultPlan {
        oversized_page_bytes: Some(200 * 1024 * 1024),
        ..FaultPlan::default()
    });
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_MAX_RESPONSE_MB", "8")]).await;
    let (status, reply) = nightly_within(&handler, Duration::from_secs(120)).await;
    assert_eq!(status, 500, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("larger than the 8388608-byte limit"),
        "{reply}"
    );
    let peak = handler.peak_rss_mib().expect("peak RSS");
    assert!(
        peak < 80.0,
        "reading a 200 MiB page with an 8 MiB limit peaked at {peak:.0} MiB"
    );
}

/// A `$batch` reply that answers one request id twice is malformed: its requests are retried
/// (and marked unknown if that keeps happening), never matched to the wrong answer. Before, the
/// duplicate was accepted silently, so one request got another's data. The run ends `partial`,
/// or `complete` only with the data read again: the same findings as a clean run.
#[tokio::test]
async fn duplicate_ids_in_a_batch_reply_are_not_accepted() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let findings_of = |reply: Value| {
        let store = &store;
        async move {
            let log = reply["Logs"][0].as_str().unwrap_or_default().to_owned();
            let run_id = log.split(' ').nth(1).unwrap().to_owned();
            let status = read_json(store, &format!("scans/{run_id}.json"))
                .await
                .unwrap();
            let prefix = status["resultsPrefix"].as_str().unwrap().to_owned();
            let bytes = store
                .get(&format!("{prefix}/findings.ndjson"))
                .await
                .unwrap()
                .unwrap();
            let mut ids: Vec<String> = String::from_utf8_lossy(&bytes)
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["findingId"].to_string())
                .collect();
            ids.sort();
            let manifest = read_json(store, status["manifest"].as_str().unwrap())
                .await
                .unwrap();
            let requests = manifest["graph"]["requests"].as_u64().unwrap();
            (status["state"].as_str().unwrap().to_owned(), ids, requests)
        }
    };
    let (_, reply) = nightly_within(&handler, Duration::from_secs(120)).await;
    let (_, clean, clean_requests) = findings_of(reply).await;

    sim.set_faults(FaultPlan {
        duplicate_batch_ids: true,
        ..FaultPlan::default()
    });
    let (status, reply) = nightly_within(&handler, Duration::from_secs(120)).await;
    assert_eq!(status, 200, "{reply}");
    let (state, faulty, requests) = findings_of(reply).await;
    assert!(
        requests > clean_requests,
        "the malformed batches are read again: {requests} requests against {clean_requests}"
    );
    assert!(
        state == "partial" || (state == "complete" && faulty == clean),
        "{state}: {} findings against {} in a clean run",
        faulty.len(),
        clean.len()
    );
}

/// `--from-snapshot` stops at its decompressed-size cap and says why: before, a 3 MB gzip bomb
/// took 3.1 GB.
#[test]
fn a_gzip_bomb_snapshot_is_refused_at_its_cap() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.json.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&bomb).unwrap(),
        flate2::Compression::best(),
    );
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--from-snapshot"])
        .arg(&bomb)
        .args(["--max-snapshot-mib", "16", "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("decompresses to more than 16 MiB") && stderr.contains("bomb.json.gz"),
        "{stderr}"
    );
}

/// Two tenants' apps write into one results container, as the layout allows, and fire on the
/// same timer occurrence: both complete and both move their own latest/. Before, the timer's
/// run id came from the schedule alone, so the second tenant found the first one's status and
/// did nothing.
#[tokio::test]
async fn two_tenants_sharing_a_container_on_one_timer_occurrence_both_complete() {
    let contoso = demo_simulator().await;
    let fabrikam = mi_assess::simulator::RunningSimulator::start(
        mi_assess::simulator::SimTenant::generated(40, 7),
    )
    .await
    .unwrap();
    assert_ne!(contoso.tenant().tenant_id, fabrikam.tenant().tenant_id);
    let container = new_container(&contoso).await;
    let store = reader(&contoso, &container);
    let occurrence = json!({
        "Last": "2026-11-30T02:00:00", "Next": "2026-12-01T02:00:00",
        "LastUpdated": "2026-11-30T02:00:00"
    });
    for sim in [&contoso, &fabrikam] {
        let handler = Handler::spawn(sim, &container, &[]).await;
        let (status, reply) = handler
            .invoke(
                "nightly-assessment",
                &timer_envelope(occurrence.clone(), false),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        let log = reply["Logs"][0].as_str().unwrap_or_default();
        assert!(
            log.contains("complete"),
            "{}: {reply}",
            sim.tenant().tenant_id
        );
        let latest = format!("latest/{}.json", sim.tenant().tenant_id);
        assert!(read_json(&store, &latest).await.is_some(), "{latest}");
    }
}

/// `GET /api/identities/{objectId}` has its own deadline and answers a clear 504 when Graph is
/// slow: before, it kept working for about 15 minutes, long after the platform had cut the
/// HTTP reply at 230 s.
#[tokio::test]
async fn the_identity_endpoint_answers_504_past_its_deadline() {
    let sim = slow_demo_simulator(Duration::from_secs(1)).await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[("MI_ASSESS_IDENTITY_TIMEOUT", "2")]).await;
    let id = "1c2f7a8b-3d4e-4f6a-9b0c-2d3e4f5a6b01";
    let started = std::time::Instant::now();
    let (status, reply) = handler
        .invoke(
            "identity",
            &http_envelope(
                "GET",
                &format!("/api/identities/{id}"),
                json!({"objectId": id}),
                "identity",
            ),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{reply}");
    let (code, body) = http_output(&reply);
    assert_eq!(code, 504, "{body}");
    assert_eq!(body["error"]["code"], "IdentityDeadline");
}

/// A 100 KB run id is refused without being echoed back.
#[tokio::test]
async fn an_oversized_run_id_is_not_echoed() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let long = "r".repeat(100_000);
    let (_, reply) = handler
        .invoke(
            "scans",
            &http_envelope(
                "GET",
                &format!("/api/scans/{long}"),
                json!({"runId": long}),
                "scans",
            ),
        )
        .await;
    let (code, body) = http_output(&reply);
    assert_eq!(code, 400);
    assert!(
        body.to_string().len() < 1_000,
        "{} bytes",
        body.to_string().len()
    );
}

/// The token endpoint's own answer goes to the log, not into the reply.
#[tokio::test]
async fn the_token_endpoint_answer_is_not_echoed() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let marker = "token-endpoint-says-x9q7";
    sim.set_faults(FaultPlan {
        token_error: Some(format!("Identity not found ({marker})")),
        ..FaultPlan::default()
    });
    let fresh = Handler::spawn(&sim, &container, &[]).await;
    let (code, body, _) = post_scan(&fresh).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["error"]["code"], "IdentityUnavailable");
    assert!(!body.to_string().contains(marker), "{body}");
}

/// A missing results container is a 503 naming the setting, not "no such run".
#[tokio::test]
async fn a_missing_results_container_is_a_503_naming_the_setting() {
    let sim = demo_simulator().await;
    let missing = format!(
        "{}/results-missing-{}",
        azurite_blob_url(),
        uuid::Uuid::new_v4().simple()
    );
    let missing = url::Url::parse(&missing).unwrap();
    let broken = Handler::spawn(&sim, &missing, &[]).await;
    let id = uuid::Uuid::new_v4().to_string();
    let (_, reply) = broken
        .invoke(
            "scans",
            &http_envelope(
                "GET",
                &format!("/api/scans/{id}"),
                json!({"runId": id}),
                "scans",
            ),
        )
        .await;
    let (code, body) = http_output(&reply);
    assert_eq!(code, 503, "{body}");
    assert!(body.to_string().contains("MI_ASSESS_RESULTS_URL"), "{body}");
}

/// A SAS signature in a results URL is refused, and the error does not print it.
#[test]
fn a_sas_signature_never_reaches_an_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args([
            "assess",
            "--results-url",
            "https://acct.blob.core.windows.net/results?sv=2024-01-01&sig=SECRETSIGNATURE",
        ])
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success());
    assert!(printed.contains("must not carry a query"), "{printed}");
    assert!(!printed.contains("SECRETSIGNATURE"), "{printed}");
}

/// 50 concurrent `POST /api/scans` queue one run between them: the others answer 202 with that
/// run's id and `deduplicated: true`, and enqueue nothing. Before, each queued its own run, and
/// the host's three dequeue attempts ran 3 of 50 while the rest stayed `queued` forever.
#[tokio::test]
async fn concurrent_scan_requests_queue_one_run() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = std::sync::Arc::new(Handler::spawn(&sim, &container, &[]).await);
    let posts: Vec<_> = (0..50)
        .map(|_| {
            let handler = handler.clone();
            tokio::spawn(async move { post_scan(&handler).await })
        })
        .collect();
    let mut run_ids = std::collections::BTreeSet::new();
    let (mut queued, mut joined) = (0, 0);
    for post in posts {
        let (code, body, message) = post.await.unwrap();
        assert_eq!(code, 202, "{body}");
        run_ids.insert(run_id_of(&body));
        if body["deduplicated"] == true {
            joined += 1;
            assert!(message.is_null(), "a joined request enqueues nothing");
        } else {
            queued += 1;
            assert!(message.is_object());
        }
    }
    assert_eq!((run_ids.len(), queued, joined), (1, 1, 49), "{run_ids:?}");
}

/// The worker's last delivery (DequeueCount 3, host.json's maxDequeueCount) of a scan it cannot
/// start marks the run `failed`, so it never reads `queued` forever.
#[tokio::test]
async fn the_last_dequeue_attempt_marks_the_run_failed() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let (_, body, message) = post_scan(&handler).await;
    let run_id = run_id_of(&body);
    // Another run holds the tenant, through every delivery.
    let tenant = sim.tenant().tenant_id.clone();
    let other = uuid::Uuid::new_v4().to_string();
    let _held = store
        .try_lock(&format!("locks/{tenant}.lock"), &other)
        .await
        .unwrap();
    for attempt in 1..=3 {
        let (status, reply) = handler
            .invoke("scan-worker", &queue_envelope(&message, attempt))
            .await;
        assert_eq!(status, 500, "attempt {attempt}: {reply}");
        let state = read_json(&store, &format!("scans/{run_id}.json"))
            .await
            .unwrap();
        let expected = if attempt < 3 { "queued" } else { "failed" };
        assert_eq!(state["state"], expected, "attempt {attempt}: {state}");
    }
    let state = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .unwrap();
    assert_eq!(state["failureReason"], "attemptsExhausted", "{state}");
}

/// `scan-worker-poison` marks a scan whose message reached the poison queue `failed` with
/// reason `poison`; a finished run is left alone.
#[tokio::test]
async fn a_poisoned_scan_message_marks_the_run_failed() {
    let sim = demo_simulator().await;
    let container = new_container(&sim).await;
    let handler = Handler::spawn(&sim, &container, &[]).await;
    let store = reader(&sim, &container);
    let (_, body, message) = post_scan(&handler).await;
    let run_id = run_id_of(&body);
    let mut poisoned = queue_envelope(&message, 1);
    poisoned["Metadata"]["sys"]["MethodName"] = json!("scan-worker-poison");
    let (status, reply) = handler.invoke("scan-worker-poison", &poisoned).await;
    assert_eq!(status, 200, "{reply}");
    let state = read_json(&store, &format!("scans/{run_id}.json"))
        .await
        .unwrap();
    assert_eq!(
        (state["state"].as_str(), state["failureReason"].as_str()),
        (Some("failed"), Some("poison")),
        "{state}"
    );
    // The next request queues a new run instead of joining the failed one.
    let (code, body, _) = post_scan(&handler).await;
    assert_eq!(code, 202);
    assert_ne!(run_id_of(&body), run_id);
    assert!(body["deduplicated"].is_null(), "{body}");
}
