//! What the CLI tests share: running choreoc as a user does, and the
//! files they run it on.

// Each test binary uses its own share of these.
#![allow(dead_code)]

use choreo_compiler::{check, CheckedSpec, SourceFile};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs choreoc with `args`, with `NO_COLOR` unset.
pub fn choreoc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_choreoc"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run choreoc")
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The repository's root, absolute.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository")
}

/// A spec of the corpus, e.g. `invalid/E0201_unhandled.choreo`.
pub fn case(path: &str) -> String {
    repo().join("tests/cases").join(path).display().to_string()
}

/// An example's spec, e.g. `ecommerce`.
pub fn example(name: &str) -> String {
    repo()
        .join("examples")
        .join(name)
        .join(format!("{name}.choreo"))
        .display()
        .to_string()
}

/// An empty directory of this test process's own.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("choreoc-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// Whether a tool-based test may run: false (after saying so) when the
/// tool is missing, a failure when CI requires the tools.
pub fn tool_available(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CHOREO_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
        panic!("{what} is missing, and CHOREO_REQUIRE_TOOLS=1 requires it (see .ci/run)");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of passing
    // tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {what} is missing; set CHOREO_REQUIRE_TOOLS=1 to make this a failure"
    );
    false
}

/// Whether `program arg` runs and succeeds (`node --version`).
pub fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The checked spec of `text`, named `name`; a panic showing the
/// diagnostics when it has errors.
pub fn checked(name: &str, text: String) -> CheckedSpec {
    match check(&SourceFile::new(name, text)).into_checked() {
        Ok((spec, _warnings)) => spec,
        Err(diagnostics) => panic!("{name} has errors: {diagnostics:#?}"),
    }
}
