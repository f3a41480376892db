//! `choreoc` as a user runs it: exit statuses, output formats, help, and
//! errors of the command itself.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

mod common;

use common::{case, choreoc, example, stderr, temp_dir};
use std::path::Path;
use std::process::{Command, Output, Stdio};

#[test]
fn a_clean_spec_exits_0() {
    let out = choreoc(&["check", &example("ecommerce"), &example("drone-delivery")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("checked 2 files: no problems found"));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_spec_with_errors_exits_1_with_rustc_style_text() {
    let out = choreoc(&["check", &case("invalid/E0204_brief_mutation.choreo")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert!(
        text.contains("error[E0201]: event `StockReleased` is emitted but nobody consumes it"),
        "{text}"
    );
    assert!(text.contains("error[E0204]: dead end"), "{text}");
    assert!(
        text.contains("^^^^^^^^^^^^^"),
        "carets under the span: {text}"
    );
    assert!(text.contains("= help:"), "{text}");
    // Not a terminal: no colour codes.
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn warnings_exit_0_unless_denied() {
    let file = case("invalid/W0301_unused.choreo");
    let out = choreoc(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning[W0301]"));
    let out = choreoc(&["check", "--deny-warnings", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("denied by --deny-warnings"));
}

#[test]
fn json_format_prints_one_object_per_line_on_stdout() {
    let out = choreoc(&[
        "check",
        "--format",
        "json",
        &case("invalid/E0204_brief_mutation.choreo"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    let codes: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["code"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(codes, ["E0201", "E0204"]);
}

#[test]
fn color_always_colours_and_never_does_not() {
    let file = case("invalid/E0201_unhandled.choreo");
    let out = choreoc(&["check", "--color", "always", &file]);
    assert!(stderr(&out).contains('\u{1b}'));
    let out = choreoc(&["check", "--color", "never", &file]);
    assert!(!stderr(&out).contains('\u{1b}'));
}

#[test]
fn unreadable_inputs_exit_2_with_a_clear_message() {
    // `check` takes a directory (tests/cli_habits.rs); the others do not.
    let dir = temp_dir("dir");
    let out = choreoc(&["diagram", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));

    let out = choreoc(&["check", "/definitely/not/here.choreo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read `/definitely/not/here.choreo`"));
    assert!(
        !stderr(&out).contains("checked"),
        "no summary for files never read"
    );
}

#[test]
fn an_unreadable_file_among_good_ones_still_checks_the_rest_and_exits_2() {
    let out = choreoc(&["check", &example("ecommerce"), "/nope.choreo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("checked 1 file"));
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(choreoc(&["check"]).status.code(), Some(2));
    assert_eq!(
        choreoc(&["check", "--format", "xml", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(choreoc(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(choreoc(&[]).status.code(), Some(2));
}

/// Runs choreoc with both output streams closed before it writes, as
/// under `choreoc … 2>&1 | head -1`: its status must be the one it would
/// have had, not a panic's.
fn with_output_closed(args: &[&str]) -> Option<i32> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run choreoc");
    // Dropping the reading ends closes them: every write then fails.
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().expect("wait for choreoc").code()
}

#[test]
fn a_closed_output_stream_is_not_a_crash() {
    let spec = case("invalid/E0204_brief_mutation.choreo");
    assert_eq!(with_output_closed(&["check", &spec]), Some(1));
    assert_eq!(
        with_output_closed(&["check", "--format", "json", &spec]),
        Some(1)
    );
    let valid = example("ecommerce");
    assert_eq!(with_output_closed(&["check", &valid]), Some(0));
    assert_eq!(with_output_closed(&["diagram", &valid]), Some(0));
    assert_eq!(with_output_closed(&["explain", "E0200"]), Some(0));
    assert_eq!(with_output_closed(&["explain", "E9999"]), Some(2));
}

/// Runs choreoc with `input` on its standard input.
fn choreoc_with_input(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run choreoc");
    let mut stdin = child.stdin.take().expect("a pipe to choreoc");
    stdin.write_all(input).expect("write the spec");
    drop(stdin);
    child.wait_with_output().expect("wait for choreoc")
}

#[test]
fn a_dash_reads_the_spec_from_standard_input() {
    let valid = std::fs::read(example("ecommerce")).unwrap();
    let out = choreoc_with_input(&["check", "-"], &valid);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let diagram = choreoc_with_input(&["diagram", "-"], &valid);
    assert_eq!(diagram.status.code(), Some(0), "{}", stderr(&diagram));
    assert!(String::from_utf8_lossy(&diagram.stdout).starts_with("flowchart"));
    // `new` copies the spec it read into the scaffold: standard input is
    // read once, so the copy is what was checked.
    let dir = temp_dir("new-stdin").join("shop");
    let new = choreoc_with_input(&["new", "-", dir.to_str().unwrap()], &valid);
    assert_eq!(new.status.code(), Some(0), "{}", stderr(&new));
    assert_eq!(
        std::fs::read(dir.join("specs/ecommerce.choreo")).unwrap(),
        valid
    );

    let invalid = std::fs::read(case("invalid/E0204_brief_mutation.choreo")).unwrap();
    let out = choreoc_with_input(&["check", "-"], &invalid);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("<stdin>:"), "{}", stderr(&out));
    let json = choreoc_with_input(&["check", "--format", "json", "-"], &invalid);
    assert!(String::from_utf8_lossy(&json.stdout).contains(r#""file":"<stdin>""#));
}

#[test]
fn invalid_utf8_and_binary_garbage_are_e0001() {
    let dir = temp_dir("bytes");
    let bad = dir.join("bad.choreo");
    std::fs::write(&bad, b"choreography X { \xff\xfe }").unwrap();
    let out = choreoc(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error[E0001]: the file is not valid UTF-8"));

    let garbage = dir.join("garbage.choreo");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let out = choreoc(&["check", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error[E0001]"));
}

#[test]
fn help_is_useful_on_every_command() {
    let out = choreoc(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("check") && text.contains("explain"), "{text}");

    let out = choreoc(&["check", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["--format", "--deny-warnings", "Exit status", "FILE"] {
        assert!(text.contains(needle), "`{needle}` missing from:\n{text}");
    }
    let out = choreoc(&["explain", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("CODE"));
}

#[test]
fn explain_prints_a_failing_and_a_fixed_example() {
    let out = choreoc(&["explain", "e0204"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("# E0204: dead end"), "{text}");
    assert!(text.contains("## Example") && text.contains("## Fixed"));

    let out = choreoc(&["explain", "E9999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a choreo diagnostic code"));
    // The list comes from the checks' table: each check with its codes.
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l.split_whitespace().eq(["dead-ends", "E0204"])),
        "{}",
        stderr(&out)
    );
}

fn repo_deps() -> String {
    format!(
        "path:{}",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").display()
    )
}

#[test]
fn generate_writes_a_crate_and_never_overwrites_an_edited_file() {
    let dir = temp_dir("generate");
    let out = dir.join("crate");
    let _ = std::fs::remove_dir_all(&out);
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "generate".into(),
            example("ecommerce"),
            "--out".into(),
            out.display().to_string(),
            "--deps".into(),
            repo_deps(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        choreoc(&refs)
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub mod ecommerce"));
    let manifest = std::fs::read_to_string(out.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"ecommerce-choreo\""),
        "{manifest}"
    );
    assert!(
        manifest.contains("choreo-runtime = { path = "),
        "{manifest}"
    );

    // Regenerating unchanged files is fine.
    assert_eq!(run(&[]).status.code(), Some(0));

    // An edited file is never overwritten without --force.
    std::fs::write(out.join("src/lib.rs"), "// mine\n").unwrap();
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("refusing to overwrite"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("src/lib.rs"));
    assert_eq!(
        std::fs::read_to_string(out.join("src/lib.rs")).unwrap(),
        "// mine\n"
    );
    assert_eq!(run(&["--force"]).status.code(), Some(0));
    let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub mod ecommerce"));
    assert!(!lib.contains("pub mod http"));

    // `--http` adds the ingress, and the runtime feature it needs.
    assert_eq!(run(&["--http"]).status.code(), Some(0));
    let lib = std::fs::read_to_string(out.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub mod http"));
    // Whitespace aside: prettyplease breaks a long route call over lines.
    let compact: String = lib.split_whitespace().collect();
    assert!(compact.contains(".route(\"/orders\""), "{lib}");
    let manifest = std::fs::read_to_string(out.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("features = [\"http\"]"), "{manifest}");
}

#[test]
fn generate_on_a_spec_with_errors_prints_the_check_diagnostics_and_writes_nothing() {
    let dir = temp_dir("generate-errors");
    let out = dir.join("crate");
    let _ = std::fs::remove_dir_all(&out);
    let spec = case("invalid/E0204_brief_mutation.choreo");
    let checked = choreoc(&["check", "--color", "never", &spec]);
    let generated = choreoc(&[
        "generate",
        &spec,
        "--out",
        out.to_str().unwrap(),
        "--color",
        "never",
    ]);
    assert_eq!(generated.status.code(), Some(1));
    let diagnostics = |text: String| {
        text.lines()
            .filter(|l| !l.starts_with("error: checked") && !l.starts_with("error: no crate"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        diagnostics(stderr(&generated)),
        diagnostics(stderr(&checked))
    );
    assert!(stderr(&generated).contains("error: no crate written: the spec has 2 errors"));
    assert!(!out.exists(), "nothing may be written");
}

#[test]
fn new_scaffolds_a_workspace_and_explains_itself() {
    let dir = temp_dir("new");
    let out = dir.join("shop");
    let _ = std::fs::remove_dir_all(&out);
    let done = choreoc(&["new", &example("ecommerce"), out.to_str().unwrap()]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(stderr(&done).contains("cargo run"));
    for file in [
        "Cargo.toml",
        "build.rs",
        "src/main.rs",
        "src/lib.rs",
        "src/participants/orders.rs",
        "src/bin/orders.rs",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let help = choreoc(&["new", "--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("--deps") && text.contains("--force") && text.contains("TODO(choreo)"),
        "{text}"
    );
    let bad = choreoc(&[
        "new",
        &example("ecommerce"),
        out.to_str().unwrap(),
        "--deps",
        "path:/nowhere",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("cannot use `/nowhere`"),
        "{}",
        stderr(&bad)
    );
}

// ---- fmt ----

#[test]
fn fmt_rewrites_a_file_in_place_and_leaves_a_formatted_one_alone() {
    let dir = temp_dir("fmt-in-place");
    let messy = dir.join("messy.choreo");
    let tidy = dir.join("tidy.choreo");
    std::fs::write(&messy, "choreography A{key k:u32 // the key\n}").unwrap();
    std::fs::write(&tidy, "choreography B {\n    key k: u32\n}\n").unwrap();
    let tidy_modified = std::fs::metadata(&tidy).unwrap().modified().unwrap();
    let out = choreoc(&["fmt", messy.to_str().unwrap(), tidy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "choreography A {\n    key k: u32 // the key\n}\n"
    );
    assert_eq!(
        std::fs::metadata(&tidy).unwrap().modified().unwrap(),
        tidy_modified
    );
    // Nothing is left beside them.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
}

#[test]
fn fmt_check_prints_a_diff_writes_nothing_and_exits_1() {
    let dir = temp_dir("fmt-check");
    let messy = dir.join("messy.choreo");
    std::fs::write(&messy, "choreography A{key k:u32}").unwrap();
    let out = choreoc(&["fmt", "--check", messy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("-choreography A{key k:u32}"), "{diff}");
    assert!(diff.contains("+    key k: u32"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "choreography A{key k:u32}"
    );
    let clean = choreoc(&["fmt", "--check", &example("ecommerce")]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(clean.stdout.is_empty());
}

#[test]
fn fmt_refuses_a_syntax_error_with_its_e0001_and_writes_nothing() {
    let dir = temp_dir("fmt-error");
    let bad = dir.join("bad.choreo");
    std::fs::write(&bad, "choreography {").unwrap();
    let out = choreoc(&["--color", "never", "fmt", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("error[E0001]"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "choreography {");
    let piped = choreoc_with_input(&["fmt", "-"], b"choreography {");
    assert_eq!(piped.status.code(), Some(2));
    assert!(piped.stdout.is_empty());
}

#[test]
fn fmt_dash_formats_standard_input_to_standard_output() {
    let out = choreoc_with_input(&["fmt", "-"], b"choreography A{key k:u32}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "choreography A {\n    key k: u32\n}\n"
    );
}
