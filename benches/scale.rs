//! Scale benchmark: mi-assess against the Graph simulator at Graph's throttling limit.
//!
//! `cargo bench --bench scale` (options after `--`):
//!   --sizes 1000,10000,50000   tenants to assess (managed identities), 50 ms latency, L budget
//!   --faults 10000             also assess this size with 10% 429, 2% 503, 1% connection resets,
//!                              and compare its findings with the clean run's, byte for byte
//!   --baseline 1000,10000      the plain per-identity approach a user would script (list, then
//!                              one appRoleAssignments and one transitiveMemberOf call per
//!                              identity, sequentially)
//!   --rerun 50000              assess this size a second time into the same results, as the
//!                              nightly run does: it reads the first run's findings as its
//!                              baseline and writes the changes
//!   --small 10000              also assess this size under the S budget (3,500 RU per 10 s), which
//!                              it outspends: the bucket runs dry and Graph throttles; its
//!                              RU-bound uses 350 RU/s, and its findings are compared too
//!   --walks 50000              time the assessment of this size's snapshot in process: building
//!                              the Assessor (index, tiers, tenant pass) and one walk of its
//!                              chunks, which a run makes five times (counts, three files, report)
//!   --estate 50000             the attack-path row: this size with its seeded Azure estate
//!                              (10 role assignments and 2 resources per identity: 500,000 and
//!                              100,000 at 50,000), clean and with the faults above; prints RU per
//!                              principal, peak RSS against the same size without the estate,
//!                              whether the findings are identical with faults and without, and
//!                              the CPU time of the graph build and path search and of the rules
//!                              and record fields that read the graph (in process, one walk)
//!   --usage 50000              the usage-plane row: this size with a Log Analytics workspace of
//!                              evidence (`simulate --usage`), assessed with the plane on and off
//!                              against the same simulator; prints its queries, rows and seconds,
//!                              and the run's wall time with it against without it (the plane
//!                              must stay within 20% of the run's wall time)
//!   --latency-ms 50
//!
//! The simulator runs as its own process (`mi-assess simulate`), and so does each assessment
//! (`mi-assess assess --stats-json`), so peak RSS is the scanner's alone. Each row prints Graph
//! requests, resource units, wall time, the RU-bound lower bound (RU ÷ 800 RU/s) and the ratio
//! of wall time to it, 429s, and peak RSS; then the cold start of `mi-assess serve` (time from
//! process start to the first answer on `GET /`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator the binary uses (src/main.rs), so the in-process timings match a run's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mi-assess");
/// The L budget: 8,000 RU per 10 s.
const RU_PER_SECOND: f64 = 800.0;
/// The S budget: 3,500 RU per 10 s.
const SMALL_RU_PER_SECOND: f64 = 350.0;

struct Simulator {
    child: Child,
    graph: String,
    identity_endpoint: String,
    identity_header: String,
    /// The workspace of `simulate --usage`.
    workspace: Option<String>,
    /// Its query API.
    log_analytics: Option<String>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn simulator(identities: usize, latency_ms: u64, faults: bool) -> Simulator {
    simulator_with(identities, latency_ms, faults, "large")
}

fn simulator_with(identities: usize, latency_ms: u64, faults: bool, budget: &str) -> Simulator {
    simulator_estate(identities, latency_ms, faults, budget, false)
}

fn simulator_estate(
    identities: usize,
    latency_ms: u64,
    faults: bool,
    budget: &str,
    estate: bool,
) -> Simulator {
    simulator_full(identities, latency_ms, faults, budget, estate, false)
}

fn simulator_full(
    identities: usize,
    latency_ms: u64,
    faults: bool,
    budget: &str,
    estate: bool,
    usage: bool,
) -> Simulator {
    let mut command = Command::new(BIN);
    command.args([
        "simulate",
        "--identities",
        &identities.to_string(),
        "--seed",
        "7",
        "--budget",
        budget,
        "--latency-ms",
        &latency_ms.to_string(),
    ]);
    if estate {
        command.args([
            "--role-assignments-per-identity",
            "10",
            "--resources-per-identity",
            "2",
        ]);
    }
    if usage {
        command.arg("--usage");
    }
    if faults {
        command.args([
            "--throttle-rate",
            "0.10",
            "--unavailable-rate",
            "0.02",
            "--reset-rate",
            "0.01",
        ]);
    }
    let mut child = command
        .env("MI_ASSESS_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let endpoints: Value = serde_json::from_str(&line).expect("the simulator prints its endpoints");
    Simulator {
        child,
        graph: endpoints["graphEndpoint"].as_str().unwrap().to_owned(),
        identity_endpoint: endpoints["identityEndpoint"].as_str().unwrap().to_owned(),
        identity_header: endpoints["identityHeader"].as_str().unwrap().to_owned(),
        workspace: endpoints["logAnalyticsWorkspaceId"]
            .as_str()
            .map(str::to_owned),
        log_analytics: endpoints["logAnalyticsEndpoint"]
            .as_str()
            .map(str::to_owned),
    }
}

struct Row {
    label: String,
    principals: u64,
    requests: u64,
    ru: u64,
    wall: f64,
    throttled: u64,
    peak_rss_mb: Option<f64>,
    /// The budget's refill rate.
    ru_per_second: f64,
}

impl Row {
    fn print(&self) {
        let bound = self.ru as f64 / self.ru_per_second;
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>8.1}s {:>8.1}s {:>6.2}x {:>7} {:>9} {:>6.2}",
            self.label,
            self.principals,
            self.requests,
            self.ru,
            self.wall,
            bound,
            self.wall / bound,
            self.throttled,
            self.peak_rss_mb
                .map(|m| format!("{m:.0} MB"))
                .unwrap_or_else(|| "n/a".into()),
            self.ru as f64 / self.principals.max(1) as f64,
        );
    }
}

fn header() {
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>6}",
        "run",
        "principals",
        "requests",
        "RU",
        "wall",
        "RU-bound",
        "ratio",
        "429s",
        "peak RSS",
        "RU/pr"
    );
}

/// One full assessment; returns its row and its sorted, endpoint-normalised findings.
fn assess(label: &str, sim: &Simulator, out: &Path) -> (Row, Vec<String>) {
    let (row, findings, _) = assess_with(label, sim, out, false);
    (row, findings)
}

/// [`assess`], reading the simulator's workspace when `usage`; also returns the run's
/// statistics.
fn assess_with(label: &str, sim: &Simulator, out: &Path, usage: bool) -> (Row, Vec<String>, Value) {
    let stats_path = out.join("stats.json");
    let mut command = Command::new(BIN);
    if usage {
        command
            .env(
                "MI_ASSESS_LOG_ANALYTICS_WORKSPACE_ID",
                sim.workspace.as_deref().expect("simulate --usage"),
            )
            .env(
                "MI_ASSESS_LOG_ANALYTICS_ENDPOINT",
                sim.log_analytics.as_deref().expect("simulate prints it"),
            );
    }
    let status = command
        .args(["assess", "--out"])
        .arg(out)
        .arg("--stats-json")
        .arg(&stats_path)
        .env("IDENTITY_ENDPOINT", &sim.identity_endpoint)
        .env("IDENTITY_HEADER", &sim.identity_header)
        .env("MI_ASSESS_GRAPH_ENDPOINT", &sim.graph)
        .env("MI_ASSESS_ARM_ENDPOINT", &sim.graph)
        .env("MI_ASSESS_LOG", "error")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let stats: Value = serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert!(status.code().is_some(), "assess was killed");
    let findings = std::fs::read_to_string(
        out.join(stats["prefix"].as_str().unwrap())
            .join("findings.ndjson"),
    )
    .unwrap();
    let mut lines: Vec<String> = findings
        .lines()
        .map(|l| l.replace(&sim.graph, "{graph}"))
        .collect();
    lines.sort();
    let row = Row {
        label: format!("{label} ({})", stats["status"].as_str().unwrap_or("?")),
        principals: stats["identities"].as_u64().unwrap()
            + stats["credentialServicePrincipals"].as_u64().unwrap_or(0),
        requests: stats["graph"]["requests"].as_u64().unwrap(),
        ru: stats["graph"]["resourceUnits"].as_u64().unwrap(),
        wall: stats["wallSeconds"].as_f64().unwrap(),
        throttled: stats["graph"]["throttled"].as_u64().unwrap(),
        peak_rss_mb: stats["peakRssBytes"].as_f64().map(|b| b / 1_048_576.0),
        ru_per_second: RU_PER_SECOND,
    };
    (row, lines, stats)
}

/// The plain sequential approach: list, then two calls per identity, one at a time.
async fn baseline(label: &str, sim: &Simulator) -> Row {
    let http = reqwest::Client::new();
    let token: Value = http
        .get(format!(
            "{}?api-version=2019-08-01&resource={}",
            sim.identity_endpoint, sim.graph
        ))
        .header("X-IDENTITY-HEADER", &sim.identity_header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let (mut requests, mut ru, mut throttled) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut get = async |url: String| -> Value {
        loop {
            requests += 1;
            // A script retries a dropped keep-alive connection too.
            let response = match http.get(&url).bearer_auth(&token).send().await {
                Ok(response) => response,
                Err(_) => continue,
            };
            ru += response
                .headers()
                .get("x-ms-resource-unit")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0);
            if response.status() == 429 {
                throttled += 1;
                let wait: f64 = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(1.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                continue;
            }
            return response.json().await.unwrap();
        }
    };
    let mut ids = Vec::new();
    let mut next = Some(format!(
        "{}/v1.0/servicePrincipals?$filter=servicePrincipalType eq 'ManagedIdentity'&$top=999",
        sim.graph
    ));
    while let Some(url) = next.take() {
        let page = get(url).await;
        ids.extend(
            page["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sp| sp["id"].as_str().unwrap().to_owned()),
        );
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    for id in &ids {
        get(format!(
            "{}/v1.0/servicePrincipals/{id}/appRoleAssignments",
            sim.graph
        ))
        .await;
        get(format!(
            "{}/v1.0/servicePrincipals/{id}/transitiveMemberOf",
            sim.graph
        ))
        .await;
    }
    Row {
        label: label.to_owned(),
        principals: ids.len() as u64,
        requests,
        ru,
        wall: started.elapsed().as_secs_f64(),
        throttled,
        peak_rss_mb: None,
        ru_per_second: RU_PER_SECOND,
    }
}

/// Time from process start to the first answer on `GET /`, and to the handler's "ready" log
/// line (its HTTP clients built, invocations served), in milliseconds.
async fn cold_start(sim: &Simulator) -> (f64, f64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("IDENTITY_ENDPOINT", &sim.identity_endpoint)
        .env("IDENTITY_HEADER", &sim.identity_header)
        .env("MI_ASSESS_GRAPH_ENDPOINT", &sim.graph)
        .env("MI_ASSESS_ARM_ENDPOINT", &sim.graph)
        .env("MI_ASSESS_RESULTS_URL", "https://127.0.0.1:9/results")
        .env("MI_ASSESS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let elapsed = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            use std::io::{Read, Write};
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 12];
            if stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1") {
                break started.elapsed();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("handler ready"))
        .map(|_| started.elapsed())
        .expect("serve logs that it is ready");
    let _ = child.kill();
    let _ = child.wait();
    (elapsed.as_secs_f64() * 1000.0, ready.as_secs_f64() * 1000.0)
}

fn list(args: &[String], name: &str, default: &[usize]) -> Vec<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect()
            })
            .unwrap_or_default(),
        None => default.to_vec(),
    }
}

/// Times the pure assessment of the first snapshot under `out`: the Assessor, then one walk.
fn time_walks(n: usize, out: &Path, run_wall: f64) {
    let Some(path) = find_file(out, "snapshot.json.gz") else {
        println!("    (no snapshot of {n} to time the assessment walks on)");
        return;
    };
    let snapshot = mi_assess::cli::read_snapshot(&path).unwrap();
    let started = Instant::now();
    let assessor = mi_assess::assess::Assessor::new(&snapshot);
    let built = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut findings = 0;
    for chunk in assessor.chunks(mi_assess::assess::CHUNK_SUBJECTS) {
        findings += chunk.findings.len();
    }
    let walk = started.elapsed().as_secs_f64();
    println!(
        "    assessment of {n} in process: Assessor {built:.2}s, one walk {walk:.2}s ({findings} findings); \
         a run walks 5 times: {:.1}s of its {run_wall:.1}s",
        5.0 * walk
    );
}

/// CPU seconds of this thread (user + system), from `/proc/thread-self/stat`; `None` where
/// that is not readable.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs `f`, returning its result, wall seconds and CPU seconds (wall when CPU is unknown).
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let cpu = thread_cpu_seconds();
    let started = Instant::now();
    let out = f();
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu, thread_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => wall,
    };
    (out, wall, cpu)
}

/// The rules that read the privilege graph.
const PATH_RULES: &[&str] = &["MI-PATH-001", "MI-PATH-002", "MI-AZ-003", "MI-AZ-004"];

/// Times the privilege graph of the estate snapshot under `out`, in process, on one thread:
/// the resolver (index, tiers, subject nodes, graph build and the two searches; the graph is
/// its largest part), then one walk of the rules and record fields that read the graph, per
/// rule, and the rest of a walk for comparison.
fn time_paths(n: usize, out: &Path) -> Option<f64> {
    let Some(path) = find_file(out, "snapshot.json.gz") else {
        println!("    (no snapshot of {n} to time the attack paths on)");
        return None;
    };
    let snapshot = mi_assess::cli::read_snapshot(&path).unwrap();
    let azure = snapshot.azure.known();
    let (resolver, _, build_cpu) = timed(|| mi_assess::resolve::Resolver::new(&snapshot));
    let subjects = resolver.subjects().len();
    let mut per_rule: std::collections::BTreeMap<&str, (f64, usize)> = Default::default();
    let (mut records_cpu, mut resolve_cpu) = (0.0, 0.0);
    for start in (0..subjects).step_by(mi_assess::assess::CHUNK_SUBJECTS) {
        let end = (start + mi_assess::assess::CHUNK_SUBJECTS).min(subjects);
        let ((identities, principals), _, cpu) = timed(|| {
            let mut identities = Vec::new();
            let mut principals = Vec::new();
            for subject in &resolver.subjects()[start..end] {
                let view = resolver.resolve(*subject);
                match subject {
                    mi_assess::resolve::Subject::Identity(_) => identities.push(view),
                    mi_assess::resolve::Subject::Credential(_) => principals.push(view),
                }
            }
            (identities, principals)
        });
        resolve_cpu += cpu;
        let view = resolver.view(Some((identities, principals)));
        for rule in mi_assess::rules::RULES
            .iter()
            .filter(|r| r.retired.is_none() && r.scope == mi_assess::rules::Scope::Subjects)
        {
            let (findings, _, cpu) = timed(|| (rule.check)(&view));
            let slot = per_rule.entry(rule.id).or_default();
            slot.0 += cpu;
            slot.1 += findings.len();
        }
        let (_, _, cpu) = timed(|| {
            for v in &view.identities {
                std::hint::black_box(resolver.paths().path_to_tier0(&v.id));
                std::hint::black_box(resolver.paths().actors(&v.id));
            }
        });
        records_cpu += cpu;
    }
    let path_rules: f64 = PATH_RULES
        .iter()
        .filter_map(|id| per_rule.get(id))
        .map(|(cpu, _)| cpu)
        .sum();
    let other_rules: f64 = per_rule
        .iter()
        .filter(|(id, _)| !PATH_RULES.contains(id))
        .map(|(_, (cpu, _))| cpu)
        .sum();
    let total = build_cpu + path_rules + records_cpu;
    println!(
        "    attack paths of {n} ({} role assignments, {} identity resources) in process: \
         resolver with graph build and search {build_cpu:.2}s CPU; one walk: path rules {path_rules:.2}s ({}), \
         pathToTier0 and actors of every record {records_cpu:.2}s; \
         graph build + search + path rules + record fields {total:.2}s CPU (target <= 10 s); \
         the rest of a walk: resolving views {resolve_cpu:.2}s, other rules {other_rules:.2}s",
        azure.map_or(0, |a| a.role_assignments.len()),
        azure.map_or(0, |a| a.identity_resources.len()),
        PATH_RULES
            .iter()
            .map(|id| {
                let (cpu, findings) = per_rule.get(id).copied().unwrap_or_default();
                format!("{id} {cpu:.2}s, {findings} findings")
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    Some(total)
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|f| f == name) {
            return Some(path);
        }
    }
    None
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes = list(&args, "--sizes", &[1_000, 10_000, 50_000]);
    let faults = list(&args, "--faults", &[10_000]);
    let baselines = list(&args, "--baseline", &[1_000, 10_000]);
    let reruns = list(&args, "--rerun", &[50_000]);
    let smalls = list(&args, "--small", &[10_000]);
    let walks = list(&args, "--walks", &[50_000]);
    let estates = list(&args, "--estate", &[50_000]);
    let usages = list(&args, "--usage", &[50_000]);
    let latency = list(&args, "--latency-ms", &[50])[0] as u64;
    println!(
        "mi-assess scale benchmark: L budget (8,000 RU / 10 s), {latency} ms latency per response\n"
    );
    header();
    let mut clean_findings = std::collections::HashMap::new();
    let mut rows = Vec::new();
    for &n in &sizes {
        let sim = simulator(n, latency, false);
        let out = tempfile::tempdir().unwrap();
        let (row, findings) = assess(&format!("mi-assess {n}"), &sim, out.path());
        row.print();
        clean_findings.insert(n, findings);
        let wall = row.wall;
        rows.push((n, row));
        if walks.contains(&n) {
            time_walks(n, out.path(), wall);
        }
        if reruns.contains(&n) {
            let (again, _) = assess(&format!("mi-assess {n}, 2nd run"), &sim, out.path());
            again.print();
            if let Some(rss) = again.peak_rss_mb {
                println!(
                    "    2nd run of {n} compares with the 1st (baseline streamed from its findings.ndjson): peak RSS {rss:.0} MB"
                );
            }
        }
    }
    for &n in &usages {
        let sim = simulator_full(n, latency, false, "large", false, true);
        let off_dir = tempfile::tempdir().unwrap();
        let (off, off_findings, _) = assess_with(
            &format!("mi-assess {n}, usage off"),
            &sim,
            off_dir.path(),
            false,
        );
        off.print();
        let on_dir = tempfile::tempdir().unwrap();
        let (on, on_findings, stats) = assess_with(
            &format!("mi-assess {n} + usage plane"),
            &sim,
            on_dir.path(),
            true,
        );
        on.print();
        let usage = &stats["usage"];
        let plane_seconds = usage["milliseconds"].as_f64().unwrap_or(0.0) / 1000.0;
        let added = on_findings.len() - off_findings.len();
        let others_same = on_findings
            .iter()
            .filter(|l| !l.contains("\"ruleId\":\"MI-USE-"))
            .eq(off_findings.iter());
        println!(
            "    usage plane at {n}: {} queries, {} rows, {plane_seconds:.1} s of queries ({:.1}% of the run's {:.1} s wall); run wall {:.1} s with it vs {:.1} s without ({:+.1}%); {added} usage findings, other findings {}",
            usage["queries"],
            usage["rows"],
            100.0 * plane_seconds / on.wall,
            on.wall,
            on.wall,
            off.wall,
            100.0 * (on.wall - off.wall) / off.wall,
            if others_same {
                "identical"
            } else {
                "DIFFERENT"
            }
        );
    }
    for &n in &faults {
        let sim = simulator(n, latency, true);
        let out = tempfile::tempdir().unwrap();
        let (row, findings) = assess(&format!("mi-assess {n} + faults"), &sim, out.path());
        row.print();
        match clean_findings.get(&n) {
            Some(clean) => println!(
                "    findings with faults (10% 429, 2% 503, 1% resets) vs without: {} ({} findings)",
                if *clean == findings {
                    "identical"
                } else {
                    "DIFFERENT"
                },
                findings.len()
            ),
            None => println!("    (no clean run of {n} to compare with)"),
        }
    }
    for &n in &smalls {
        let sim = simulator_with(n, latency, false, "small");
        let out = tempfile::tempdir().unwrap();
        let (mut row, findings) = assess(&format!("mi-assess {n}, S budget"), &sim, out.path());
        row.ru_per_second = SMALL_RU_PER_SECOND;
        row.print();
        if let Some(clean) = clean_findings.get(&n) {
            println!(
                "    findings under the S budget vs the L budget: {} ({} findings)",
                if *clean == findings {
                    "identical"
                } else {
                    "DIFFERENT"
                },
                findings.len()
            );
        }
    }
    for &n in &estates {
        let sim = simulator_estate(n, latency, false, "large", true);
        let out = tempfile::tempdir().unwrap();
        let (row, findings) = assess(&format!("mi-assess {n} + estate"), &sim, out.path());
        row.print();
        drop(sim);
        let files = find_file(out.path(), "attack-graph.json")
            .and_then(|p| Some((std::fs::metadata(&p).ok()?.len(), p.parent()?.to_owned())));
        if let Some((graph_bytes, dir)) = &files {
            let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
            println!(
                "    outputs of {n} + estate: attack-graph.json {:.0} MB, identities.ndjson {:.0} MB, findings.ndjson {:.0} MB, report.html {:.0} MB",
                *graph_bytes as f64 / 1e6,
                size("identities.ndjson") as f64 / 1e6,
                size("findings.ndjson") as f64 / 1e6,
                size("report.html") as f64 / 1e6,
            );
        }
        let without = rows
            .iter()
            .find(|(size, _)| *size == n)
            .and_then(|(_, r)| r.peak_rss_mb);
        let cpu = time_paths(n, out.path());
        let faulty = simulator_estate(n, latency, true, "large", true);
        let out_faults = tempfile::tempdir().unwrap();
        let (frow, ffindings) = assess(
            &format!("mi-assess {n} + estate + faults"),
            &faulty,
            out_faults.path(),
        );
        frow.print();
        let identical = findings == ffindings;
        println!(
            "    findings of {n} + estate with faults (10% 429, 2% 503, 1% resets) vs without: {} ({} findings)",
            if identical { "identical" } else { "DIFFERENT" },
            findings.len()
        );
        let mut notes = vec![format!(
            "RU/principal {:.2} (target <= 2.5)",
            row.ru as f64 / row.principals.max(1) as f64
        )];
        if let Some(cpu) = cpu {
            notes.push(format!(
                "graph build + search + path rules {cpu:.1}s CPU (target <= 10 s)"
            ));
        }
        match (row.peak_rss_mb, without) {
            (Some(with), Some(without)) => notes.push(format!(
                "peak RSS {with:.0} MB with the estate, {without:.0} MB without: +{:.0} MB (target <= +200 MB)",
                with - without
            )),
            (Some(with), None) => notes.push(format!(
                "peak RSS {with:.0} MB with the estate (add {n} to --sizes for the run without)"
            )),
            _ => {}
        }
        notes.push(format!(
            "findings with faults {}",
            if identical { "identical" } else { "DIFFERENT" }
        ));
        println!("{n:>6} + estate: {}", notes.join("; "));
    }
    let mut baseline_walls = std::collections::HashMap::new();
    for &n in &baselines {
        let sim = simulator(n, latency, false);
        let row = baseline(&format!("sequential baseline {n}"), &sim).await;
        row.print();
        baseline_walls.insert(n, row.wall);
    }
    println!();
    for (n, row) in &rows {
        let bound = row.ru as f64 / RU_PER_SECOND;
        let mut notes = vec![
            format!("wall/RU-bound {:.2} (target <= 1.25)", row.wall / bound),
            format!(
                "RU/principal {:.2} (target <= 2.5)",
                row.ru as f64 / row.principals as f64
            ),
        ];
        if let Some(rss) = row.peak_rss_mb {
            notes.push(format!("peak RSS {rss:.0} MB (target <= 150 MB at 50k)"));
        }
        if let Some(base) = baseline_walls.get(n) {
            notes.push(format!(
                "{:.1}x faster than the sequential baseline (target >= 20x at 10k)",
                base / row.wall
            ));
        }
        println!("{n:>6}: {}", notes.join("; "));
    }
    let sim = simulator(10, 0, false);
    let (mut probe, mut ready): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let (p, r) = cold_start(&sim).await;
        probe.push(p);
        ready.push(r);
    }
    for samples in [&mut probe, &mut ready] {
        samples.sort_by(|a, b| a.total_cmp(b));
    }
    println!(
        "\ncold start of `mi-assess serve` (process start to first GET / answer): median {:.1} ms, max {:.1} ms over {} starts (target <= 50 ms)",
        probe[probe.len() / 2],
        probe[probe.len() - 1],
        probe.len()
    );
    println!(
        "  handler ready (HTTP clients and TLS roots built, invocations served): median {:.1} ms, max {:.1} ms",
        ready[ready.len() / 2],
        ready[ready.len() - 1]
    );
}
