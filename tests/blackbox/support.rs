//! Test harness: Azurite access, the spawned handler process, and host-shaped invocations.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use bytes::Bytes;
use mi_assess::results::{BlobStore, ResultStore};
use mi_assess::simulator::{RunningSimulator, SimTenant};
use serde_json::{Value, json};
use url::Url;

/// The Azurite blob endpoint started by scripts/test.sh.
pub fn azurite_blob_url() -> String {
    std::env::var("MI_ASSESS_TEST_AZURITE_BLOB").expect(
        "MI_ASSESS_TEST_AZURITE_BLOB is not set: run the tests with scripts/test.sh, which starts Azurite",
    )
}

/// A fresh container in Azurite, created with a simulator-minted bearer token.
pub async fn new_container(sim: &RunningSimulator) -> Url {
    let name = format!("results-{}", uuid::Uuid::new_v4().simple());
    let url = Url::parse(&format!("{}/{name}", azurite_blob_url())).unwrap();
    let credential: Arc<dyn TokenCredential> = Arc::new(sim.credential());
    let container = BlobContainerClient::new(
        url.clone(),
        Some(credential),
        Some(BlobContainerClientOptions::default()),
    )
    .unwrap();
    container
        .create(None)
        .await
        .expect("create the Azurite container");
    url
}

/// A reader for a container, authenticating like the handler does.
pub fn reader(sim: &RunningSimulator, container: &Url) -> BlobStore {
    BlobStore::new(container.clone(), Arc::new(sim.credential())).unwrap()
}

/// Reads and parses one JSON blob.
pub async fn read_json(store: &BlobStore, path: &str) -> Option<Value> {
    let bytes: Bytes = store.get(path).await.expect("read from Azurite")?;
    Some(serde_json::from_slice(&bytes).expect("blob is JSON"))
}

/// Starts the Graph simulator with the demo tenant.
pub async fn demo_simulator() -> RunningSimulator {
    RunningSimulator::start(SimTenant::demo().unwrap())
        .await
        .unwrap()
}

/// The spawned `mi-assess serve`, with its output captured.
pub struct Handler {
    child: Child,
    /// Base URL `http://127.0.0.1:{port}`.
    pub base: String,
    output: Arc<Mutex<String>>,
    http: reqwest::Client,
    /// Time from spawn to the first answer on `GET /`.
    pub ready_after: Duration,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Handler {
    /// Spawns the binary as the Functions host would: a port in the environment, the platform's
    /// identity endpoint, and the app settings.
    pub async fn spawn(
        sim: &RunningSimulator,
        container: &Url,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mi-assess"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env(
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                uuid::Uuid::new_v4().to_string(),
            )
            .env("IDENTITY_ENDPOINT", sim.identity_endpoint())
            .env("IDENTITY_HEADER", sim.identity_header())
            .env("MI_ASSESS_GRAPH_ENDPOINT", sim.graph_endpoint().as_str())
            .env("MI_ASSESS_ARM_ENDPOINT", sim.arm_endpoint().as_str())
            .env("MI_ASSESS_RESULTS_URL", container.as_str())
            .env("MI_ASSESS_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Ok(ca) = std::env::var("SSL_CERT_FILE") {
            command.env("SSL_CERT_FILE", ca);
        }
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn mi-assess serve");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let sink = output.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready_after = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "mi-assess serve exited with {status}: {}",
                    output.lock().unwrap()
                );
            }
            if http.get(format!("{base}/")).send().await.is_ok() {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "handler never became ready"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        Self {
            child,
            base,
            output,
            http,
            ready_after,
        }
    }

    /// The process's peak resident memory so far, in MiB (`VmHWM`), on Linux.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// Kills the process at once (SIGKILL), as a crashed or recycled instance dies.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// POSTs an invocation and hangs up after `after`, as the host does when it cancels an
    /// invocation (functionTimeout, scale-in): the handler only sees its connection drop.
    /// `None` when the handler answered in time.
    pub async fn invoke_cut_off(
        &self,
        function: &str,
        envelope: &Value,
        after: Duration,
    ) -> Option<u16> {
        let sent = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .json(envelope)
            .send();
        match tokio::time::timeout(after, sent).await {
            Ok(answered) => Some(answered.expect("handler answered").status().as_u16()),
            Err(_) => None,
        }
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// POSTs an invocation the way the host does: chunked JSON with the host's headers.
    pub async fn invoke(&self, function: &str, envelope: &Value) -> (u16, Value) {
        self.invoke_raw(function, serde_json::to_vec(envelope).unwrap())
            .await
    }

    /// POSTs raw bytes as an invocation body (chunked, no Content-Length).
    pub async fn invoke_raw(&self, function: &str, body: Vec<u8>) -> (u16, Value) {
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(16 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let response = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-Azure-Functions-HostVersion", "4.1037.0")
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("User-Agent", "Azure-Functions-Host/4.1037.0")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            )
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .expect("handler answered");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "handler replied {status} with content type {content_type:?}: {text}"
        );
        (status, serde_json::from_str(&text).expect("reply is JSON"))
    }
}

/// Starts the Graph simulator with the demo tenant, every response `latency` late, so a run
/// lasts long enough to be cut off.
pub async fn slow_demo_simulator(latency: Duration) -> RunningSimulator {
    let options = mi_assess::simulator::SimOptions {
        latency,
        ..Default::default()
    };
    RunningSimulator::start_with(SimTenant::demo().unwrap(), options)
        .await
        .unwrap()
}

/// The queue-trigger envelope that delivers `message` (the object `scans` put on the queue) to
/// `scan-worker`, as the host sends it: a double-encoded string, with the trigger metadata.
pub fn queue_envelope(message: &Value, dequeue_count: u32) -> Value {
    let mut queue = rebind(
        host_fixture("queue-string.json"),
        "inMsg",
        "scanRequest",
        "scan-worker",
    );
    queue["Data"]["scanRequest"] = json!(serde_json::to_string(&message.to_string()).unwrap());
    queue["Metadata"]["DequeueCount"] = json!(dequeue_count.to_string());
    queue
}

/// Asks `scans` for a run and returns the reply's body and the queue message it enqueued.
pub async fn post_scan(handler: &Handler) -> (u16, Value, Value) {
    let (status, reply) = handler
        .invoke(
            "scans",
            &http_envelope("POST", "/api/scans", json!({}), "scans"),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (code, body) = http_output(&reply);
    (code, body, reply["Outputs"]["scanRequest"].clone())
}

/// Polls `scans/{runId}.json` until `done` accepts it, for at most `limit`.
pub async fn wait_for_status(
    store: &BlobStore,
    run_id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        if let Some(status) = read_json(store, &format!("scans/{run_id}.json")).await
            && done(&status)
        {
            return status;
        }
        assert!(
            started.elapsed() < limit,
            "scans/{run_id}.json did not reach the expected state within {limit:?}: {:?}",
            read_json(store, &format!("scans/{run_id}.json")).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Loads a real host payload from tests/fixtures/functions-host.
pub fn host_fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/functions-host/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Renames the fixture's `Data` binding and `sys.MethodName` to ours.
pub fn rebind(mut envelope: Value, from: &str, to: &str, function: &str) -> Value {
    let value = envelope["Data"]
        .as_object_mut()
        .unwrap()
        .remove(from)
        .unwrap();
    envelope["Data"][to] = value;
    envelope["Metadata"]["sys"]["MethodName"] = json!(function);
    envelope
}

/// A timer envelope built from the real fixture with `ScheduleStatus` replaced.
pub fn timer_envelope(schedule_status: Value, past_due: bool) -> Value {
    let mut envelope = rebind(
        host_fixture("timer.json"),
        "inMsg",
        "timer",
        "nightly-assessment",
    );
    envelope["Data"]["timer"]["ScheduleStatus"] = schedule_status;
    envelope["Data"]["timer"]["IsPastDue"] = json!(past_due);
    envelope
}

/// A non-forwarded HTTP envelope built from the real fixture.
pub fn http_envelope(method: &str, path: &str, params: Value, function: &str) -> Value {
    let mut envelope = rebind(
        host_fixture("payload-json-json.json"),
        "httpPayload",
        "req",
        function,
    );
    let req = &mut envelope["Data"]["req"];
    req["Method"] = json!(method);
    req["Url"] = json!(format!(
        "https://func-mi-assess.azurewebsites.net{path}?code=function-key"
    ));
    req["Params"] = params.clone();
    req["Query"] = json!({"code": "function-key"});
    req.as_object_mut().unwrap().remove("Body");
    req["Headers"]["Content-Length"] = json!(["0"]);
    let metadata = envelope["Metadata"].as_object_mut().unwrap();
    metadata.remove("name");
    metadata.remove("age");
    if let Some(params) = params.as_object() {
        for (k, v) in params {
            metadata.insert(k.clone(), json!(serde_json::to_string(v).unwrap()));
        }
    }
    envelope
}

/// The `res` output of an HTTP invocation reply, with its body parsed.
pub fn http_output(reply: &Value) -> (u16, Value) {
    let res = &reply["Outputs"]["res"];
    let status = res["statusCode"].as_u64().expect("numeric statusCode") as u16;
    for (name, value) in res["headers"].as_object().expect("headers object") {
        assert!(value.is_string(), "header {name} must be a string");
    }
    let body = res["body"].as_str().expect("string body");
    (
        status,
        serde_json::from_str(body).expect("res body is JSON"),
    )
}

/// Asserts the host reply envelope shape.
pub fn assert_envelope(reply: &Value) {
    assert!(
        reply["Outputs"].is_object(),
        "Outputs must be an object: {reply}"
    );
    assert!(reply["Logs"].is_array(), "Logs must be an array: {reply}");
    assert!(
        reply.get("ReturnValue").is_some(),
        "ReturnValue must be present: {reply}"
    );
}

/// Copies a run's records (and the container's `latest/` and `scans/` documents) into
/// `target/contract-samples/{label}/`, where scripts/validate-contract.sh validates them against
/// the JSON Schemas.
pub async fn save_contract_samples(
    store: &BlobStore,
    label: &str,
    prefix: &str,
    tenant_id: &str,
    run_id: &str,
) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/contract-samples")
        .join(label);
    let files = [
        (
            format!("{prefix}/identities.ndjson"),
            "identities.ndjson".to_owned(),
        ),
        (
            format!("{prefix}/findings.ndjson"),
            "findings.ndjson".to_owned(),
        ),
        (
            format!("{prefix}/changes.ndjson"),
            "changes.ndjson".to_owned(),
        ),
        (
            format!("{prefix}/manifest.json"),
            "manifest.json".to_owned(),
        ),
        (format!("{prefix}/findings.csv"), "findings.csv".to_owned()),
        (
            format!("{prefix}/findings.ocsf.json"),
            "findings.ocsf.json".to_owned(),
        ),
        (
            format!("latest/{tenant_id}.json"),
            format!("latest/{tenant_id}.json"),
        ),
        (
            format!("scans/{run_id}.json"),
            format!("scans/{run_id}.json"),
        ),
    ];
    for (source, target) in files {
        if let Some(bytes) = store.get(&source).await.unwrap() {
            let path = root.join(target);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &bytes).unwrap();
        }
    }
}

/// The run id the handler logged for its most recent `run started` line.
pub fn last_started_run(output: &str) -> String {
    output
        .lines()
        .rev()
        .filter(|l| l.contains("run started"))
        .find_map(|l| l.split("run{run_id=").nth(1).map(|r| r[..36].to_owned()))
        .expect("a run started")
}
