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
