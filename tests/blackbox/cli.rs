//! The command line: the demo is README's first command.

use std::process::Command;

#[test]
fn demo_runs_the_whole_pipeline_and_prints_a_summary() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--demo", "--out"])
        .arg(out.path())
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("status   complete"), "{stdout}");
    assert!(
        stdout.contains("14 managed identities: 9 system-assigned, 5 user-assigned"),
        "{stdout}"
    );
    assert!(stdout.contains("id-github-deploy"));
    assert!(
        stdout
            .contains("67 findings: 15 critical, 26 high, 11 medium, 6 low, 9 info (3 suppressed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("report   "),
        "the summary names the HTML report: {stdout}"
    );

    let latest = std::fs::read_dir(out.path().join("latest"))
        .unwrap()
        .count();
    assert_eq!(latest, 1);
    let runs: Vec<_> = walk(&out.path().join("runs"));
    for name in ["identities.ndjson", "findings.ndjson", "manifest.json"] {
        assert!(
            runs.iter().any(|p| p.ends_with(name)),
            "{name} missing from {runs:?}"
        );
    }
}

#[test]
fn help_explains_the_commands() {
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for needle in ["--demo", "--out", "--results-url", "Exit status"] {
        assert!(text.contains(needle), "{needle} missing from help: {text}");
    }
}

fn demo_run(out: &std::path::Path) -> std::path::PathBuf {
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--demo", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    walk(&out.join("runs"))
        .into_iter()
        .find(|p| p.ends_with("manifest.json"))
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .expect("a run folder")
}

/// Replaces the simulator's loopback base URL (random port) with a fixed placeholder.
fn normalise_endpoint(text: &str) -> String {
    let marker = "http://127.0.0.1:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        out.push_str("{graph}");
        rest = rest[at + marker.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// Replaces the expiry of each applied demo suppression (90 days from the day the demo ran) with
/// a fixed placeholder.
fn normalise_suppression_expiry(text: &str) -> String {
    let marker = "\"suppression\":{";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let end = tail.find('}').unwrap_or(tail.len());
        let object = &tail[..end];
        let field = "\"expires\":\"";
        match object.find(field) {
            Some(from) => {
                let value_start = from + field.len();
                let value_end = object[value_start..]
                    .find('"')
                    .map_or(object.len(), |n| value_start + n);
                out.push_str(&object[..value_start]);
                out.push_str("{in 90 days}");
                out.push_str(&object[value_end..]);
            }
            None => out.push_str(object),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces the times the usage plane reports (relative to the run: the window and when each
/// use was last seen) with a fixed one, in compact or pretty JSON.
fn normalise_usage_times(text: &str) -> String {
    let mut out = text.to_owned();
    for key in [
        "windowStart",
        "windowEnd",
        "firstSeen",
        "lastSeen",
        "lastSignIn",
    ] {
        for opening in [format!("\"{key}\":\""), format!("\"{key}\": \"")] {
            let mut rebuilt = String::with_capacity(out.len());
            let mut rest = out.as_str();
            while let Some(at) = rest.find(&opening) {
                let value_start = at + opening.len();
                rebuilt.push_str(&rest[..value_start]);
                rebuilt.push_str("2026-12-01T00:00:00Z");
                let value_end = rest[value_start..]
                    .find('"')
                    .map_or(rest.len(), |n| value_start + n);
                rest = &rest[value_end..];
            }
            rebuilt.push_str(rest);
            out = rebuilt;
        }
    }
    out
}

#[test]
fn demo_findings_match_the_reviewed_golden_file() {
    let out = tempfile::tempdir().unwrap();
    let run = demo_run(out.path());
    let findings = normalise_usage_times(&normalise_suppression_expiry(&normalise_endpoint(
        &std::fs::read_to_string(run.join("findings.ndjson")).unwrap(),
    )));
    let golden_path = format!(
        "{}/tests/golden/demo-findings.ndjson",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var("MI_ASSESS_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&golden_path, &findings).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    assert!(
        findings == golden,
        "demo findings differ from tests/golden/demo-findings.ndjson; review the change and regenerate with \
         MI_ASSESS_UPDATE_GOLDEN=1 cargo test --test blackbox demo_findings\n--- produced ---\n{findings}"
    );
    // Every finding's severity is one its rule declares.
    for line in findings.lines() {
        let finding: serde_json::Value = serde_json::from_str(line).unwrap();
        let rule = mi_assess::rules::rule(finding["ruleId"].as_str().unwrap()).unwrap();
        let severity: mi_assess::model::Severity =
            serde_json::from_value(finding["severity"].clone()).unwrap();
        assert!(
            rule.severities.contains(&severity),
            "{} emitted {severity:?}, outside its declared {:?}",
            rule.id,
            rule.severities
        );
    }
    // Every rule fires at least once in the demo, and some identities are clean.
    for rule in mi_assess::rules::RULES
        .iter()
        .filter(|r| r.retired.is_none())
    {
        assert!(
            findings.contains(&format!("\"ruleId\":\"{}\"", rule.id)),
            "{} never fires in the demo",
            rule.id
        );
    }
    let identities = std::fs::read_to_string(run.join("identities.ndjson")).unwrap();
    let clean = identities
        .lines()
        .filter(|l| l.contains("\"findingCount\":0"))
        .count();
    // Since the attack-path rules, most demo identities are either privileged or reachable;
    // sqldb-legacy-crm (Storage Blob Data Reader on one account, nobody else can run code on
    // its server) stays clean.
    assert!(clean >= 1, "only {clean} clean identities");
    assert!(
        identities
            .lines()
            .any(|l| l.contains("\"displayName\":\"sqldb-legacy-crm\"")
                && l.contains("\"findingCount\":0")),
        "sqldb-legacy-crm should stay clean"
    );
}

#[test]
fn replaying_a_snapshot_reproduces_the_findings_byte_for_byte() {
    let live_dir = tempfile::tempdir().unwrap();
    let live = demo_run(live_dir.path());
    let replay_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--from-snapshot"])
        .arg(live.join("snapshot.json.gz"))
        .arg("--out")
        .arg(replay_dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replay = walk(&replay_dir.path().join("runs"))
        .into_iter()
        .find(|p| p.ends_with("findings.ndjson"))
        .expect("replayed findings");
    for name in ["findings.ndjson", "identities.ndjson"] {
        let a = std::fs::read(live.join(name)).unwrap();
        let b = std::fs::read(replay.with_file_name(name)).unwrap();
        assert!(a == b, "{name} differs between the live run and its replay");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(replay.with_file_name("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["trigger"], "replay");

    // A file that is not a snapshot is a clear error, not a panic.
    let bogus = replay_dir.path().join("bogus.json");
    std::fs::write(&bogus, b"{\"hello\":1}").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--from-snapshot"])
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a mi-assess tenant snapshot"));
}

/// A replay into the store of the run it came from leaves `latest/` alone unless asked
/// (`--as-baseline`), and a snapshot of another major schema version is refused, saying which.
#[test]
fn a_replay_never_moves_latest_unless_asked_and_refuses_an_unknown_major_version() {
    let out = tempfile::tempdir().unwrap();
    let live = demo_run(out.path());
    let latest_dir = out.path().join("latest");
    let pointer = || -> (std::path::PathBuf, Vec<u8>) {
        let entry = std::fs::read_dir(&latest_dir)
            .unwrap()
            .flatten()
            .next()
            .expect("a latest pointer");
        let bytes = std::fs::read(entry.path()).unwrap();
        (entry.path(), bytes)
    };
    let (_, before) = pointer();
    let replay = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mi-assess"))
            .args(["assess", "--from-snapshot"])
            .arg(live.join("snapshot.json.gz"))
            .arg("--out")
            .arg(out.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let output = replay(&[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("latest/ was left as it was"));
    assert_eq!(pointer().1, before, "a replay moved latest/");
    let runs = || {
        walk(&out.path().join("runs"))
            .into_iter()
            .filter(|p| p.ends_with("manifest.json"))
            .count()
    };
    assert_eq!(runs(), 2, "the replay is still written as a run of its own");

    let output = replay(&["--as-baseline"]);
    assert!(output.status.success());
    let after: serde_json::Value = serde_json::from_slice(&pointer().1).unwrap();
    let before: serde_json::Value = serde_json::from_slice(&before).unwrap();
    assert_ne!(
        after["runId"], before["runId"],
        "--as-baseline moves latest/"
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join(after["manifest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["trigger"], "replay");

    // --as-baseline without --from-snapshot is a usage error.
    let output = demo_with(out.path(), &["--as-baseline"]);
    assert_eq!(output.status.code(), Some(64));

    // Another major schema version: refused before anything is written.
    let mut snapshot: serde_json::Value = {
        use std::io::Read as _;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(live.join("snapshot.json.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    snapshot["schemaVersion"] = "2.0.0".into();
    let future = out.path().join("future.json");
    std::fs::write(&future, snapshot.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--from-snapshot"])
        .arg(&future)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("its schemaVersion is 2.0.0") && stderr.contains("major version 1"),
        "{stderr}"
    );
    assert_eq!(runs(), 3, "nothing written for the refused snapshot");
}

#[test]
fn rules_command_prints_the_catalogue() {
    let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .arg("rules")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for rule in mi_assess::rules::RULES
        .iter()
        .filter(|r| r.retired.is_none())
    {
        assert!(text.contains(rule.id), "{} missing", rule.id);
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(walk(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn demo_with(out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--demo", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// A CI pipeline can gate on the findings: `--fail-on` exits 3 on an unsuppressed finding at or
/// above the severity, `--fail-on-new` only on new ones, and usage errors exit 64 (sysexits),
/// never 2, which means "partial".
#[test]
fn exit_codes_gate_on_findings_and_keep_usage_errors_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = demo_with(&out, &["--fail-on", "high"]);
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("gate:"));
    // The second run of the same tenant finds nothing new: the new-only gate passes, the full
    // gate still fails.
    let again = demo_with(&out, &["--fail-on", "high", "--fail-on-new"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let full = demo_with(&out, &["--fail-on", "critical"]);
    assert_eq!(full.status.code(), Some(3));
    // No gate: a complete run exits 0.
    assert_eq!(demo_with(&out, &[]).status.code(), Some(0));
    for usage in [
        vec!["--fail-on", "severe"],
        vec!["--fail-on-new"],
        vec!["--no-such-flag"],
    ] {
        let output = demo_with(&out, &usage);
        assert_eq!(output.status.code(), Some(64), "{usage:?}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
}

/// Every remediation command of the demo pastes unchanged: each `bash` entry parses with
/// `bash -n`, no `$` sits inside double quotes (where bash, zsh and PowerShell expand it), each
/// `pwsh` entry keeps every `$` inside single quotes, and no command names a loopback address
/// (the demo runs against a local simulator).
#[test]
fn demo_remediation_commands_survive_a_paste() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["assess", "--demo", "--out"])
        .arg(out.path())
        .env_remove("IDENTITY_ENDPOINT")
        .env_remove("IDENTITY_HEADER")
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let findings = find_file(out.path(), "findings.ndjson").expect("findings.ndjson");
    let text = std::fs::read_to_string(findings).unwrap();
    let (mut bash, mut pwsh, mut with_rest) = (0, 0, 0);
    for line in text.lines() {
        let finding: serde_json::Value = serde_json::from_str(line).unwrap();
        let remediation = finding["remediation"].as_str().unwrap();
        let commands = finding["remediationCommands"]
            .as_array()
            .expect("the field");
        // The Graph calls on `…/$ref` are the ones that lost `$ref` in a paste.
        if remediation.contains("/$ref") {
            with_rest += 1;
            assert!(
                commands.iter().any(|c| {
                    let command = c["command"].as_str().unwrap();
                    command.starts_with("az rest ") && command.contains("/$ref'")
                }),
                "{}: {remediation}",
                finding["ruleId"]
            );
        }
        for c in commands {
            let command = c["command"].as_str().unwrap();
            assert!(
                !command.contains("127.0.0.1") && !command.contains("localhost"),
                "{command}"
            );
            let unquoted = dollars_outside_single_quotes(command);
            match c["shell"].as_str().unwrap() {
                "bash" => {
                    bash += 1;
                    let parsed = Command::new("bash")
                        .args(["-n", "-c", command])
                        .output()
                        .unwrap();
                    assert!(
                        parsed.status.success(),
                        "bash -n rejects {command}: {}",
                        String::from_utf8_lossy(&parsed.stderr)
                    );
                    assert!(unquoted.is_empty(), "a $ bash would expand: {command}");
                }
                "pwsh" => {
                    pwsh += 1;
                    assert!(command.starts_with("Invoke-MgGraphRequest "), "{command}");
                    assert!(unquoted.is_empty(), "a $ pwsh would expand: {command}");
                }
                other => panic!("unknown shell {other}"),
            }
        }
    }
    assert!(with_rest >= 5, "{with_rest} findings with a $ref call");
    assert!(
        bash >= 30 && pwsh >= 10,
        "{bash} bash, {pwsh} pwsh commands"
    );
}

/// The `$` characters of a command line that are outside single quotes (inside double quotes
/// or bare), by position.
fn dollars_outside_single_quotes(command: &str) -> Vec<usize> {
    let mut quote: Option<char> = None;
    let mut out = Vec::new();
    for (i, c) in command.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), _) => {}
            (Some(_), '$') | (None, '$') => out.push(i),
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, _) => {}
        }
    }
    out
}

fn find_file(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Every run writes findings.csv and findings.ocsf.json and lists them in its manifest, and
/// `mi-assess export` makes the same bytes from the run folder; a folder that is not a run
/// fails with the file it could not read.
#[test]
fn exports_are_written_with_every_run_and_on_demand() {
    let out = tempfile::tempdir().unwrap();
    let run = demo_run(out.path());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for (format, file) in [("csv", "findings.csv"), ("ocsf", "findings.ocsf.json")] {
        assert!(
            listed.contains(&file),
            "{file} not in the manifest: {listed:?}"
        );
        let written = std::fs::read(run.join(file)).unwrap();
        let exported = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
            .args(["export", "--format", format])
            .arg(&run)
            .output()
            .unwrap();
        assert!(
            exported.status.success(),
            "{}",
            String::from_utf8_lossy(&exported.stderr)
        );
        assert!(
            exported.stdout == written,
            "mi-assess export --format {format} differs from the run's {file}"
        );
    }
    let findings = std::fs::read_to_string(run.join("findings.ndjson")).unwrap();
    let csv = std::fs::read_to_string(run.join("findings.csv")).unwrap();
    // The header, then one row per finding (rows may hold quoted newlines, so count ids).
    for line in findings.lines() {
        let id = serde_json::from_str::<serde_json::Value>(line).unwrap()["findingId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(csv.contains(&format!("\r\n{id},")), "{id} has no CSV row");
    }

    let not_a_run = tempfile::tempdir().unwrap();
    let failed = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["export", "--format", "csv"])
        .arg(not_a_run.path())
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("manifest.json"), "{stderr}");
    let usage = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
        .args(["export", "--format", "xml", "."])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(64));
}

/// `assess --demo --results-url URL` with the caller's credential (here the test simulator's
/// managed-identity endpoint), run off the async runtime so the simulator keeps serving.
async fn demo_to(
    sim: &mi_assess::simulator::RunningSimulator,
    url: &str,
) -> (std::process::Output, std::time::Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mi-assess"));
    command
        .args(["assess", "--demo", "--results-url", url])
        .env("IDENTITY_ENDPOINT", sim.identity_endpoint())
        .env("IDENTITY_HEADER", sim.identity_header());
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let output = command.output().unwrap();
        (output, started.elapsed())
    })
    .await
    .unwrap()
}

/// Before a run every endpoint is checked once: a results URL with nothing listening fails in
/// under 15 s (not after minutes of retries), naming the cause and the flag; a container that
/// does not exist is named as such; and `--demo` writes to a real container, so the storage
/// setup can be tested without a tenant.
#[tokio::test]
async fn a_bad_results_url_fails_fast_and_names_the_cause() {
    let sim = crate::support::demo_simulator().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (output, took) = demo_to(
        &sim,
        &format!("https://127.0.0.1:{port}/devstoreaccount1/results"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
    assert!(
        stderr.contains("results store at https://127.0.0.1:")
            && stderr.contains("connection refused")
            && stderr.contains("check --results-url"),
        "{stderr}"
    );

    let missing = format!(
        "{}/no-such-container-{}",
        crate::support::azurite_blob_url(),
        uuid::Uuid::new_v4().simple()
    );
    let (output, _) = demo_to(&sim, &missing).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("the container does not exist"),
        "{stderr}"
    );

    let container = crate::support::new_container(&sim).await;
    let (output, _) = demo_to(&sim, container.as_str()).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = crate::support::reader(&sim, &container);
    let latest = mi_assess::results::ResultStore::get(
        &store,
        "latest/7f3c2a91-5d4e-4b8f-a1c6-3e9d8b7a6f50.json",
    )
    .await
    .unwrap();
    assert!(latest.is_some(), "the demo's run landed in the container");
    assert!(
        mi_assess::results::ResultStore::get(&store, "suppressions.json")
            .await
            .unwrap()
            .is_none(),
        "the demo's example suppressions never land in a real container"
    );
}

/// Replaces what changes from run to run in a demo summary (run id, output folder, date) with
/// placeholders.
fn normalise_summary(text: &str, out: &std::path::Path) -> String {
    let mut text = text.replace(&out.display().to_string(), "{out}");
    if let Some(run_id) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("mi-assess run "))
        .map(str::to_owned)
    {
        text = text.replace(&run_id, "{runId}");
    }
    let today = time::OffsetDateTime::now_utc();
    let date = format!(
        "/{:04}/{:02}/{:02}/",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    text.replace(&date, "/{date}/")
}

/// The summary fits the terminal: at 80 and 200 columns it matches its reviewed golden text
/// (regenerate with MI_ASSESS_UPDATE_GOLDEN=1), no table line is wider than the terminal,
/// long names end in `…`, narrow terminals drop the less important columns, and suppressed
/// findings say so.
#[test]
fn the_summary_fits_80_and_200_columns() {
    for columns in [80, 200] {
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_mi-assess"))
            .args(["assess", "--demo", "--out"])
            .arg(out.path())
            .env("COLUMNS", columns.to_string())
            .output()
            .unwrap();
        assert!(output.status.success());
        let summary = normalise_summary(&String::from_utf8_lossy(&output.stdout), out.path());
        let golden_path = format!(
            "{}/tests/golden/summary-{columns}.txt",
            env!("CARGO_MANIFEST_DIR")
        );
        if std::env::var("MI_ASSESS_UPDATE_GOLDEN").as_deref() == Ok("1") {
            std::fs::write(&golden_path, &summary).unwrap();
        }
        let golden = std::fs::read_to_string(&golden_path).unwrap();
        assert!(
            summary == golden,
            "the {columns}-column summary differs from {golden_path}; review and regenerate with MI_ASSESS_UPDATE_GOLDEN=1\n{summary}"
        );
        // Tables (the lines between the header block and the totals) fit the width.
        let tables: Vec<&str> = summary
            .lines()
            .filter(|l| l.starts_with(' ') && !l.starts_with("  ") || l.starts_with("---"))
            .collect();
        assert!(!tables.is_empty());
        for line in &tables {
            assert!(
                line.chars().count() <= columns,
                "{} > {columns}: {line}",
                line.chars().count()
            );
        }
        assert!(
            summary.contains("[suppressed]"),
            "suppressed findings are marked"
        );
        if columns == 80 {
            assert!(summary.contains('…'));
            assert!(
                !summary.contains("RESOURCE TYPE"),
                "dropped first at 80 columns"
            );
        } else {
            assert!(summary.contains("RESOURCE TYPE") && summary.contains("RESOURCE GROUP"));
        }
    }
}

/// `--format json` prints one JSON document (the run's outcome, the gate and the top
/// findings) and nothing else on stdout; the contract tests validate it against
/// schemas/cli-summary.schema.json. A run whose output is not a terminal prints one line per
/// phase on stderr.
#[test]
fn json_output_for_pipes_and_phase_lines_for_logs() {
    let out = tempfile::tempdir().unwrap();
    let output = demo_with(out.path(), &["--format", "json", "--fail-on", "critical"]);
    assert_eq!(output.status.code(), Some(3));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(document["schemaVersion"], "1.0.0");
    assert_eq!(document["status"], "complete");
    assert_eq!(document["exitCode"], 3);
    assert_eq!(document["gate"]["failOn"], "critical");
    assert_eq!(document["gate"]["hits"], 15);
    assert_eq!(document["counts"]["findings"], 67);
    let top = document["topFindings"].as_array().unwrap();
    assert_eq!(top.len(), 40);
    assert_eq!(top[0]["severity"], "critical");
    assert!(top.iter().any(|f| f["suppressed"] == true));
    let samples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/contract-samples/cli");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::write(samples.join("cli-summary.json"), &output.stdout).unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    for phase in mi_assess::progress::Phase::ALL {
        assert!(
            stderr.contains(&format!("] {}", phase.label())),
            "no line for {phase:?}:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("[4/9] reading app role assignments (17 principals)"),
        "{stderr}"
    );
    assert!(stderr.contains("mi-assess: finished in"), "{stderr}");
}

/// The exit statuses a pipeline sees beyond a complete run and a gate: 2 for a partial run (a
/// replay of a snapshot with a gap that matters), 0 when every finding at the gate's severity
/// is suppressed, and 3 again once they are not.
#[test]
fn exit_codes_for_partial_runs_and_suppressed_findings() {
    let live = tempfile::tempdir().unwrap();
    let run = demo_run(live.path());
    let mut snapshot = mi_assess::cli::read_snapshot(&run.join("snapshot.json.gz")).unwrap();
    let replay = |snapshot: &mi_assess::snapshot::TenantSnapshot, extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, serde_json::to_vec(snapshot).unwrap()).unwrap();
        Command::new(env!("CARGO_BIN_EXE_mi-assess"))
            .args(["assess", "--from-snapshot"])
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(extra)
            .output()
            .unwrap()
    };
    // Every critical rule accepted for every identity: the critical gate passes.
    let critical_rules: std::collections::BTreeSet<String> =
        std::fs::read_to_string(run.join("findings.ndjson"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|f| f["severity"] == "critical")
            .map(|f| f["ruleId"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(
        replay(&snapshot, &["--fail-on", "critical"]).status.code(),
        Some(3)
    );
    let suppressions = snapshot.settings.suppressions.clone();
    snapshot.settings.suppressions = critical_rules
        .iter()
        .map(|rule| mi_assess::snapshot::suppressions::Suppression {
            rule_id: Some(rule.clone()),
            identity_id: None,
            display_name: None,
            finding_id: None,
            reason: "accepted for the test".into(),
            expires: snapshot.collected_at + time::Duration::days(30),
            approved_by: None,
        })
        .collect();
    let accepted = replay(&snapshot, &["--fail-on", "critical"]);
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert_eq!(
        replay(&snapshot, &["--fail-on", "high"]).status.code(),
        Some(3)
    );

    // A gap that matters makes the run partial: exit 2.
    snapshot.settings.suppressions = suppressions;
    snapshot.gaps.push(mi_assess::snapshot::CollectionGap {
        dataset: mi_assess::snapshot::DatasetName::Memberships,
        principals: 3,
        status: Some(403),
        reason: "denied".into(),
        needs_permission: Some("GroupMember.Read.All".into()),
        affects_status: true,
        not_applicable: false,
    });
    let partial = replay(&snapshot, &[]);
    assert_eq!(
        partial.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&partial.stdout)
    );
    assert!(String::from_utf8_lossy(&partial.stdout).contains("status   partial"));
}

/// A stand-in for the Azure CLI: `az account get-access-token --scope S [--tenant T]` answers
/// with a token from the simulator's identity endpoint, in the CLI's own JSON shape, and
/// records its arguments. Returns the folder to put first on PATH and the record's path.
fn fake_azure_cli(
    dir: &std::path::Path,
    sim: &mi_assess::simulator::RunningSimulator,
) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("az-calls.txt");
    let script = format!(
        r#"#!/usr/bin/env python3
import json, sys, urllib.parse, urllib.request
args = sys.argv[1:]
with open({record:?}, "a") as f:
    f.write(" ".join(args) + "\n")
scope = args[args.index("--scope") + 1]
resource = scope[: -len("/.default")] if scope.endswith("/.default") else scope
url = {endpoint:?} + "?" + urllib.parse.urlencode({{"resource": resource, "api-version": "2019-08-01"}})
request = urllib.request.Request(url, headers={{"X-IDENTITY-HEADER": {header:?}}})
token = json.load(urllib.request.urlopen(request))
print(json.dumps({{"accessToken": token["access_token"], "expires_on": int(token["expires_on"]), "tokenType": "Bearer"}}))
"#,
        record = record.display().to_string(),
        endpoint = sim.identity_endpoint(),
        header = sim.identity_header(),
    );
    let az = bin.join("az");
    std::fs::write(&az, script).unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, record)
}

/// `assess --tenant` takes its tokens from the Azure CLI for that tenant (`az account
/// get-access-token --tenant`), and refuses a login whose token is for another tenant.
#[tokio::test]
async fn a_workstation_run_picks_its_tenant_from_the_azure_cli() {
    let sim = crate::support::demo_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (bin, record) = fake_azure_cli(dir.path(), &sim);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tenant = sim.tenant().tenant_id.clone();
    let assess = |tenant: String| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mi-assess"));
        command
            .args(["assess", "--tenant", &tenant, "--out"])
            .arg(dir.path().join("out"))
            .env_remove("IDENTITY_ENDPOINT")
            .env_remove("IDENTITY_HEADER")
            .env("PATH", &path)
            .env("MI_ASSESS_GRAPH_ENDPOINT", sim.graph_endpoint().as_str())
            .env("MI_ASSESS_ARM_ENDPOINT", sim.arm_endpoint().as_str());
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let output = assess(tenant.clone()).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let calls = std::fs::read_to_string(&record).unwrap();
    assert!(
        calls
            .lines()
            .all(|l| l.starts_with("account get-access-token")
                && l.contains(&format!("--tenant {tenant}"))),
        "{calls}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("tenant   {tenant}")));

    let other = "00000000-0000-4000-8000-0000000000aa".to_owned();
    let output = assess(other.clone()).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "your token is for tenant {tenant}, not --tenant {other}"
        )),
        "{stderr}"
    );
}

/// The sample records in docs/output.md are the demo's own, so they cannot go stale:
/// id-mail-archiver's identity record and id-old-migration's MI-GRAPH-001 finding, as the
/// demo writes them (pretty-printed). Regenerate with MI_ASSESS_UPDATE_GOLDEN=1.
#[test]
fn the_sample_records_in_the_docs_come_from_the_demo() {
    let out = tempfile::tempdir().unwrap();
    let run = demo_run(out.path());
    let records = |file: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join(file))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let identity: mi_assess::assess::IdentityRecord = serde_json::from_value(
        records("identities.ndjson")
            .into_iter()
            .find(|r| r["displayName"] == "id-mail-archiver")
            .unwrap(),
    )
    .unwrap();
    let finding: mi_assess::rules::Finding = serde_json::from_value(
        records("findings.ndjson")
            .into_iter()
            .find(|f| f["ruleId"] == "MI-GRAPH-001" && f["identityName"] == "id-old-migration")
            .unwrap(),
    )
    .unwrap();
    let samples = [
        ("identity", serde_json::to_string_pretty(&identity).unwrap()),
        ("finding", serde_json::to_string_pretty(&finding).unwrap()),
    ];
    let path = format!("{}/docs/output.md", env!("CARGO_MANIFEST_DIR"));
    let mut docs = std::fs::read_to_string(&path).unwrap();
    let mut stale = Vec::new();
    for (kind, pretty) in samples {
        let pretty = normalise_usage_times(&normalise_endpoint(&pretty));
        let begin = format!("<!-- sample:{kind}:begin -->\n");
        let end = format!("<!-- sample:{kind}:end -->");
        let start = docs.find(&begin).unwrap() + begin.len();
        let stop = docs.find(&end).unwrap();
        let block = format!("```json\n{pretty}\n```\n");
        if docs[start..stop] != block {
            stale.push(kind);
            docs.replace_range(start..stop, &block);
        }
    }
    if std::env::var("MI_ASSESS_UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &docs).unwrap();
    } else {
        assert!(
            stale.is_empty(),
            "the {stale:?} sample(s) in docs/output.md differ from the demo's records; regenerate with MI_ASSESS_UPDATE_GOLDEN=1 cargo test --test blackbox the_sample_records"
        );
    }
}

/// README.md is a front page of at most 250 lines, and every relative link in it and in docs/
/// names a file that exists.
#[test]
fn the_readme_is_a_front_page_and_its_links_resolve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the front page keeps to 250"
    );
    let mut pages = vec![root.join("README.md")];
    pages.extend(
        std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let target = target.split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = page.parent().unwrap().join(target);
            if !resolved.exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:#?}");
    assert!(readme.contains("](docs/report-screenshot.png)"));
    assert!(root.join("LICENSE").is_file() && root.join("CHANGELOG.md").is_file());
}

/// On a terminal (here a pseudo-terminal from util-linux's `script`), `assess` draws a
/// progress bar: the phase, the bar with done of total, and the spend; and logs stay at warn.
#[test]
fn a_terminal_gets_a_progress_bar() {
    let out = tempfile::tempdir().unwrap();
    let command = format!(
        "{} assess --demo --out {} >/dev/null",
        env!("CARGO_BIN_EXE_mi-assess"),
        out.path().display()
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("MI_ASSESS_LOG")
        .env("COLUMNS", "100")
        .output()
        .expect("util-linux script");
    assert!(output.status.success());
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(
        screen.contains("[9/9] assessing and writing results ["),
        "{screen}"
    );
    assert!(screen.contains("/17 subjects"), "{screen}");
    assert!(screen.contains(" RU · "), "{screen}");
    assert!(
        !screen.contains(" INFO "),
        "logs stay at warn on a terminal: {screen}"
    );
}
