//! `choreoc diagram` as a user runs it: exit statuses, diagnostics, output
//! files and argument errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn choreoc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("choreoc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ECOMMERCE: &str = "examples/ecommerce/ecommerce.choreo";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-diagram");
    std::fs::create_dir_all(&dir).expect("scratch");
    dir.join(name)
}

#[test]
fn writes_mermaid_to_stdout_by_default() {
    let out = choreoc(&["diagram", ECOMMERCE]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("flowchart TD\n"));
}

#[test]
fn each_format_and_view() {
    let cases: [(&[&str], &str); 5] = [
        (&["--format", "dot"], "digraph "),
        (&["--format", "svg"], "<svg "),
        (&["--view", "sequence"], "sequenceDiagram\n"),
        (
            &["--view", "participant", "Payment", "--format", "mermaid"],
            "flowchart TD\n",
        ),
        (&["-f", "svg", "--view", "flow"], "<svg "),
    ];
    for (args, start) in cases {
        let mut all = vec!["diagram", ECOMMERCE];
        all.extend_from_slice(args);
        let out = choreoc(&all);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).starts_with(start), "{args:?}");
    }
}

#[test]
fn output_file_and_format_from_its_extension() {
    let path = scratch("ecommerce.svg");
    let _ = std::fs::remove_file(&path);
    let out = choreoc(&[
        "diagram",
        ECOMMERCE,
        "-o",
        path.to_str().expect("UTF-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&path).expect("written");
    assert!(written.starts_with("<svg "));
}

#[test]
fn spec_with_errors_prints_the_check_diagnostics_and_writes_nothing() {
    let spec = scratch("broken.choreo");
    std::fs::write(
        &spec,
        "choreography Broken {\n    key id: uuid\n    command Go { }\n    event Lost { }\n    participant P { on Go -> Lost }\n}\n",
    )
    .expect("write spec");
    let target = scratch("broken.svg");
    let _ = std::fs::remove_file(&target);
    let spec = spec.to_str().expect("UTF-8 path");
    let check = choreoc(&["check", spec]);
    let out = choreoc(&["diagram", spec, "-o", target.to_str().expect("UTF-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        !target.exists(),
        "nothing may be written for a spec with errors"
    );
    let stderr = text(&out.stderr);
    // The same diagnostics as `choreoc check`, up to its summary line.
    let check_stderr = text(&check.stderr);
    let diagnostics = check_stderr
        .rsplit_once("error: checked")
        .map_or(check_stderr.as_str(), |(d, _)| d);
    assert!(diagnostics.contains("E0201"), "{diagnostics}");
    assert!(stderr.starts_with(diagnostics), "{stderr}");
    assert!(stderr.contains("no diagram"), "{stderr}");
}

#[test]
fn unknown_participant_is_a_usage_error_with_suggestions() {
    let out = choreoc(&["diagram", ECOMMERCE, "--view", "participant", "Paymnt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no participant `Paymnt`"), "{stderr}");
    assert!(stderr.contains("did you mean `Payment`?"), "{stderr}");
    assert!(
        stderr.contains("Orders, Inventory, Payment, Seller, Logistics, Notifications"),
        "{stderr}"
    );
}

#[test]
fn bad_views_and_formats_are_usage_errors() {
    for args in [
        &["--view", "participant"][..],
        &["--view", "sideways"],
        &["--view", "flow", "Orders"],
        &["--view", "sequence", "--format", "svg"],
        &["--format", "png"],
    ] {
        let mut all = vec!["diagram", ECOMMERCE];
        all.extend_from_slice(args);
        let out = choreoc(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn unwritable_output_is_a_clear_error() {
    let out = choreoc(&["diagram", ECOMMERCE, "-o", "/nonexistent-dir/x.svg"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot write `/nonexistent-dir/x.svg`"),
        "{stderr}"
    );
}

#[test]
fn unreadable_spec_is_a_usage_error() {
    let out = choreoc(&["diagram", "no/such/spec.choreo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read"));
}

#[test]
fn help_explains_views_formats_and_exit_status() {
    let out = choreoc(&["diagram", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "participant NAME",
        "sequence",
        "mermaid",
        "dot",
        "svg",
        "-o",
        "Exit status",
        "Examples",
    ] {
        assert!(help.contains(needle), "`{needle}` missing from\n{help}");
    }
}
