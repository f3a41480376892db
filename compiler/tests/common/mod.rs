//! What the CLI tests share: running choreoc as a user does, and the
//! files they run it on.

// Each test binary uses its own share of these.
#![allow(dead_code)]

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
