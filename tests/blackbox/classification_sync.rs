//! Keeps the shipped classification data (`data/classification/`) in step with the MIT-licensed
//! Enterprise Access Model source files in `../shared/data/classification/` (AzurePrivilegedIAM).
//!
//! This file is the only place the compact rows are derived. It re-derives them from the source
//! files and compares them with the shipped files byte for byte. To regenerate the shipped files:
//!
//! ```text
//! MI_ASSESS_UPDATE_CLASSIFICATION=1 cargo test --test blackbox classification_sync
//! ```
//!
//! The source folder is `MI_ASSESS_CLASSIFICATION_SOURCE`, or `../shared/data/classification`
//! beside the crate. A missing source folder fails the test: it never passes silently.
//!
//! Derivation (also described in `data/classification/SOURCES.md`):
//! - `app-roles.json` from `Classification_AppRoles.json`: one row per entry,
//!   `[resourceAppId, appRoleId, value, tier, category]`; ids lower-cased, `value` is
//!   `AppRoleDisplayName`, `tier` is `EAMTierLevelName`, `category` is `Category` (a list is joined
//!   with `"; "`).
//! - `directory-roles.json` from `Classification_EntraIdDirectoryRoles.json`:
//!   `[templateId, name, isPrivileged, tier]`, tier from `Classification.EAMTierLevelName`.
//! - `directory-role-actions.json` from the same file: `[action, tier]`, one row per distinct
//!   `RolePermissions[].AuthorizedResourceAction` (compared case-insensitively; the first
//!   spelling in sorted order is kept), tier its `EAMTierLevelName` (the highest when roles
//!   disagree); entries without an action are dropped. Rows are sorted by lower-cased action.
//! - `azure-roles.json` from `Classification_AzureResources.json`:
//!   `[roleDefinitionId, name, isPrivileged, tier]`, tier the highest `EAMTierLevelName` among the
//!   role's `RolePermissions` (ControlPlane > ManagementPlane > UserAccess).
//!
//! Tiers are written as the wire names `controlPlane`, `managementPlane`, `userAccess`; anything
//! else (upstream's `Unclassified`, a missing value) becomes `null`. Strings are trimmed. Rows are
//! sorted so that upstream reordering does not churn the files. Each file is one JSON array with
//! one row per line.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

const REGENERATE: &str =
    "MI_ASSESS_UPDATE_CLASSIFICATION=1 cargo test --test blackbox classification_sync";

/// `../shared/data/classification` beside the crate, the upstream folder.
fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/classification")
}

/// The gzipped copy of the source files kept in the repository, so the check also runs where
/// `../shared` is absent (`tests/fixtures/classification-source/*.json.gz`).
fn repo_copy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/classification-source")
}

fn source_dir() -> PathBuf {
    match std::env::var_os("MI_ASSESS_CLASSIFICATION_SOURCE") {
        Some(dir) => PathBuf::from(dir),
        None if shared_dir().is_dir() => shared_dir(),
        None => repo_copy_dir(),
    }
}

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/classification")
}

fn read_source_text(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let gzipped = dir.join(format!("{name}.gz"));
    let text = if !path.exists() && gzipped.exists() {
        let raw = std::fs::read(&gzipped).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(raw.as_slice()), &mut text)
            .unwrap_or_else(|e| panic!("{} is not valid gzip: {e}", gzipped.display()));
        Ok(text)
    } else {
        std::fs::read_to_string(&path)
    };
    let text = text.unwrap_or_else(|e| {
        panic!(
            "cannot read classification source {}: {e}. Point MI_ASSESS_CLASSIFICATION_SOURCE at \
             the folder holding the AzurePrivilegedIAM Classification_*.json files \
             (default ../shared/data/classification).",
            path.display()
        )
    });
    // The upstream files may start with a UTF-8 byte order mark.
    text.trim_start_matches('\u{feff}').to_owned()
}

fn read_source_json(dir: &Path, name: &str) -> Vec<Value> {
    let text = read_source_text(dir, name);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(entries)) => entries,
        Ok(other) => panic!("{name}: expected a JSON array, found {}", kind(&other)),
        Err(e) => panic!("{name}: not valid JSON: {e}"),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn text_field(entry: &Value, field: &str, file: &str) -> String {
    match entry.get(field) {
        Some(Value::String(s)) => s.trim().to_owned(),
        _ => panic!("{file}: entry without string field {field}: {entry}"),
    }
}

fn id_field(entry: &Value, field: &str, file: &str) -> String {
    let id = text_field(entry, field, file).to_ascii_lowercase();
    // Accept a full ARM id too; the GUID is the last segment.
    id.rsplit('/').next().unwrap_or_default().to_owned()
}

fn bool_field(entry: &Value, field: &str, file: &str) -> bool {
    match entry.get(field) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Null) | None => false,
        _ => panic!("{file}: entry with non-boolean {field}: {entry}"),
    }
}

/// Rank of an upstream tier name: higher is more privileged; `None` for unclassified.
fn tier_rank(name: Option<&Value>) -> Option<u8> {
    match name.and_then(Value::as_str).map(str::trim) {
        Some("UserAccess") => Some(0),
        Some("ManagementPlane") => Some(1),
        Some("ControlPlane") => Some(2),
        _ => None,
    }
}

fn tier_value(rank: Option<u8>) -> Value {
    match rank {
        Some(0) => json!("userAccess"),
        Some(1) => json!("managementPlane"),
        Some(2) => json!("controlPlane"),
        _ => Value::Null,
    }
}

fn category(entry: &Value) -> String {
    match entry.get("Category") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    }
}

fn derive_app_roles(dir: &Path) -> Vec<Value> {
    const FILE: &str = "Classification_AppRoles.json";
    let mut rows: Vec<(String, String, String, Value)> = read_source_json(dir, FILE)
        .iter()
        .map(|e| {
            let app = id_field(e, "AppId", FILE);
            let id = id_field(e, "AppRoleId", FILE);
            let value = text_field(e, "AppRoleDisplayName", FILE);
            let tier = tier_value(tier_rank(e.get("EAMTierLevelName")));
            let row = json!([app, id, value, tier, category(e)]);
            (app, value, id, row)
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    rows.into_iter().map(|(_, _, _, row)| row).collect()
}

fn derive_directory_roles(dir: &Path) -> Vec<Value> {
    const FILE: &str = "Classification_EntraIdDirectoryRoles.json";
    let mut rows: Vec<(String, String, Value)> = read_source_json(dir, FILE)
        .iter()
        .map(|e| {
            let id = id_field(e, "RoleId", FILE);
            let name = text_field(e, "RoleName", FILE);
            let privileged = bool_field(e, "isPrivileged", FILE);
            let tier = tier_value(tier_rank(
                e.get("Classification")
                    .and_then(|c| c.get("EAMTierLevelName")),
            ));
            let row = json!([id, name, privileged, tier]);
            (name, id, row)
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

fn derive_directory_role_actions(dir: &Path) -> Vec<Value> {
    const FILE: &str = "Classification_EntraIdDirectoryRoles.json";
    let mut actions: std::collections::BTreeMap<String, (String, Option<u8>)> =
        std::collections::BTreeMap::new();
    for role in read_source_json(dir, FILE) {
        let permissions = role
            .get("RolePermissions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for permission in permissions {
            let Some(action) = permission
                .get("AuthorizedResourceAction")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|a| !a.is_empty())
            else {
                continue;
            };
            let rank = tier_rank(permission.get("EAMTierLevelName"));
            let entry = actions
                .entry(action.to_ascii_lowercase())
                .or_insert_with(|| (action.to_owned(), rank));
            entry.0 = entry.0.clone().min(action.to_owned());
            entry.1 = entry.1.max(rank);
        }
    }
    actions
        .into_values()
        .map(|(action, rank)| json!([action, tier_value(rank)]))
        .collect()
}

fn derive_azure_roles(dir: &Path) -> Vec<Value> {
    const FILE: &str = "Classification_AzureResources.json";
    let mut rows: Vec<(String, String, Value)> = read_source_json(dir, FILE)
        .iter()
        .map(|e| {
            let id = id_field(e, "RoleId", FILE);
            let name = text_field(e, "RoleName", FILE);
            let privileged = bool_field(e, "isPrivileged", FILE);
            let rank = e
                .get("RolePermissions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| tier_rank(p.get("EAMTierLevelName")))
                .max();
            let row = json!([id, name, privileged, tier_value(rank)]);
            (name, id, row)
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

/// One JSON array, one row per line, trailing newline.
fn render(rows: &[Value]) -> String {
    if rows.is_empty() {
        return "[]\n".to_owned();
    }
    let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    format!("[\n{}\n]\n", lines.join(",\n"))
}

fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for number in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (None, None) => break,
            (e, a) if e == a => continue,
            (e, a) => {
                return format!(
                    "first difference at line {number}:\n  derived: {}\n  shipped: {}",
                    e.unwrap_or("<end of file>"),
                    a.unwrap_or("<end of file>")
                );
            }
        }
    }
    "the files differ only in line endings".to_owned()
}

#[test]
fn classification_sync_shipped_data_matches_the_source_files() {
    let source = source_dir();
    assert!(
        source.is_dir(),
        "classification source folder {} is missing. It holds the AzurePrivilegedIAM \
         Classification_*.json files; set MI_ASSESS_CLASSIFICATION_SOURCE to its path \
         (default ../shared/data/classification).",
        source.display()
    );
    let shipped = shipped_dir();
    let expected = [
        ("app-roles.json", render(&derive_app_roles(&source))),
        (
            "directory-roles.json",
            render(&derive_directory_roles(&source)),
        ),
        (
            "directory-role-actions.json",
            render(&derive_directory_role_actions(&source)),
        ),
        ("azure-roles.json", render(&derive_azure_roles(&source))),
        ("LICENSE-MIT", read_source_text(&source, "LICENSE-MIT")),
    ];

    let update = std::env::var("MI_ASSESS_UPDATE_CLASSIFICATION").is_ok_and(|v| v == "1");
    if update {
        std::fs::create_dir_all(&shipped).unwrap();
        for (name, text) in &expected {
            std::fs::write(shipped.join(name), text).unwrap();
        }
    }

    let mut stale = Vec::new();
    for (name, text) in &expected {
        let path = shipped.join(name);
        match std::fs::read_to_string(&path) {
            Ok(actual) if actual == *text => {}
            Ok(actual) => stale.push(format!(
                "{}: {}",
                path.display(),
                first_difference(text, &actual)
            )),
            Err(e) => stale.push(format!("{}: cannot read: {e}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "the shipped classification data is out of step with {}:\n{}\nRegenerate it with:\n  {REGENERATE}\n\
         then review the diff and update data/classification/SOURCES.md if the upstream commit changed.",
        source.display(),
        stale.join("\n")
    );

    // The provenance note must name the upstream commit the source folder documents.
    if let Ok(upstream) = std::fs::read_to_string(source.join("SOURCES.md")) {
        let commit = upstream
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|word| word.len() == 40);
        if let Some(commit) = commit {
            let ours = std::fs::read_to_string(shipped.join("SOURCES.md")).unwrap_or_default();
            assert!(
                ours.contains(commit),
                "data/classification/SOURCES.md must name the upstream commit {commit} \
                 (from {}); update it by hand",
                source.join("SOURCES.md").display()
            );
        }
    }
}

#[test]
fn classification_sync_repository_copy_matches_the_shared_source() {
    let shared = shared_dir();
    if !shared.is_dir() {
        // Only checkable where ../shared exists; the copy itself is then the source.
        eprintln!("../shared/data/classification is absent: the repository copy is the source");
        return;
    }
    for name in [
        "Classification_AppRoles.json",
        "Classification_MsGraphAppRoles.json",
        "Classification_EntraIdDirectoryRoles.json",
        "Classification_AzureResources.json",
        "LICENSE-MIT",
    ] {
        assert!(
            read_source_text(&shared, name) == read_source_text(&repo_copy_dir(), name),
            "tests/fixtures/classification-source/{name}(.gz) differs from ../shared/data/classification/{name}; \
             refresh it with: gzip -9 -c ../shared/data/classification/{name} > tests/fixtures/classification-source/{name}.gz"
        );
    }
}
