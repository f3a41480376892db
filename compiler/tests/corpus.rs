//! The spec corpus under `tests/cases`: every file produces exactly the codes
//! its first line announces, and its rendered diagnostics (text and JSON)
//! match the snapshots.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::diagnostic::render::{json_line, render_text, ColorMode};
use choreo_compiler::{check, SourceFile};
use std::path::{Path, PathBuf};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases")
}

fn cases() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for group in ["valid", "invalid"] {
        let dir = cases_dir().join(group);
        for entry in std::fs::read_dir(&dir).expect("corpus directory") {
            let path = entry.expect("corpus entry").path();
            if path.extension().is_some_and(|e| e == "choreo") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The display name of a case: `valid/x.choreo`.
fn name(path: &Path) -> String {
    let group = path
        .parent()
        .and_then(|p| p.file_name())
        .unwrap_or_default();
    let file = path.file_name().unwrap_or_default();
    format!("{}/{}", group.to_string_lossy(), file.to_string_lossy())
}

fn expected_codes(text: &str) -> Vec<String> {
    let first = text.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix("// expect:")
        .unwrap_or_else(|| panic!("first line must be `// expect: …`, found {first:?}"));
    rest.split_whitespace().map(str::to_string).collect()
}

#[test]
fn corpus_is_not_empty_and_covers_every_code() {
    let all = cases();
    assert!(all.len() > 40, "corpus has only {} files", all.len());
    let mut triggered = std::collections::BTreeSet::new();
    for path in &all {
        if name(path).starts_with("invalid/") {
            let text = std::fs::read_to_string(path).unwrap();
            triggered.extend(expected_codes(&text));
        }
    }
    for code in choreo_compiler::Code::ALL {
        assert!(
            triggered.contains(code.as_str()),
            "no invalid case triggers {code}"
        );
    }
    // And a near miss for every code: a valid spec that resembles a case
    // of it and must not trigger it (its `// expect:` line says so).
    for code in choreo_compiler::Code::ALL {
        let prefix = format!("valid/{}_near_", code.as_str());
        let near: Vec<&PathBuf> = all
            .iter()
            .filter(|path| name(path).starts_with(&prefix))
            .collect();
        assert!(
            !near.is_empty(),
            "no near miss for {code} (a `{prefix}….choreo`)"
        );
        for path in near {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                !expected_codes(&text).iter().any(|c| c == code.as_str()),
                "{} is a near miss of {code} and must not expect it",
                name(path)
            );
        }
    }
}

#[test]
fn every_case_produces_exactly_its_expected_codes() {
    let mut failures = Vec::new();
    for path in cases() {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = expected_codes(&text);
        let file = SourceFile::new(name(&path), text);
        let report = check(&file);
        let got: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| d.code.as_str().to_string())
            .collect();
        if got != expected {
            failures.push(format!(
                "{}: expected {expected:?}, got {got:?}\n{}",
                name(&path),
                render_text(&file, &report.diagnostics, ColorMode::Never)
            ));
        }
        if name(&path).starts_with("valid/") {
            assert!(!report.has_errors(), "{} must have no error", name(&path));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rendered_diagnostics_match_snapshots() {
    for path in cases() {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = SourceFile::new(name(&path), text);
        let report = check(&file);
        if report.diagnostics.is_empty() {
            continue;
        }
        let rendered = render_text(&file, &report.diagnostics, ColorMode::Never);
        let json: Vec<serde_json::Value> = report
            .diagnostics
            .iter()
            .map(|d| serde_json::from_str(&json_line(&file, d)).unwrap())
            .collect();
        let stem = name(&path).replace('/', "__").replace(".choreo", "");
        insta::with_settings!({ snapshot_path => "snapshots/corpus", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("{stem}.text"), rendered);
            insta::assert_json_snapshot!(format!("{stem}.json"), json);
        });
    }
}

#[test]
fn json_diagnostics_have_the_fields_the_design_fixes() {
    let path = cases_dir().join("invalid/E0204_brief_mutation.choreo");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = SourceFile::new("mutation.choreo", text);
    let report = check(&file);
    let dead_end = report
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "E0204")
        .expect("E0204");
    let value: serde_json::Value = serde_json::from_str(&json_line(&file, dead_end)).unwrap();
    for field in [
        "code",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "labels",
        "help",
    ] {
        assert!(value.get(field).is_some(), "missing `{field}` in {value}");
    }
    assert_eq!(value["code"], "E0204");
    assert_eq!(value["severity"], "error");
    assert_eq!(value["file"], "mutation.choreo");
    // The primary span is `StockReleased` in Inventory's compensating reaction.
    assert_eq!(value["line"], 26);
    assert_eq!(value["column"], 31);
    assert_eq!(value["end_line"], 26);
    assert_eq!(value["end_column"], 44);
    let label = &value["labels"][0];
    assert_eq!(label["line"], 9);
    assert!(label["message"]
        .as_str()
        .unwrap()
        .contains("instances started"));
}

#[test]
fn brief_example_passes_and_its_mutation_yields_e0201_and_e0204() {
    let brief = std::fs::read_to_string(cases_dir().join("valid/brief_example.choreo")).unwrap();
    let report = check(&SourceFile::new("brief.choreo", brief.clone()));
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);

    // The mutation every flow check must catch: delete the `StockReleased` trigger from Orders.
    let mutated = brief.replace(
        "on OutOfStock | StockReleased -> OrderFailed",
        "on OutOfStock -> OrderFailed",
    );
    assert_ne!(mutated, brief);
    let report = check(&SourceFile::new("mutated.choreo", mutated));
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["E0201", "E0204"]);
    let dead_end = &report.diagnostics[1];
    assert!(
        dead_end.message.contains("`PlaceOrder` → Orders → `OrderPlaced` → Inventory → `StockReserved` → Payment → `PaymentDeclined` → Inventory → `StockReleased`"),
        "{}",
        dead_end.message
    );
}
