//! Building crates that tests generate, with cargo, against this checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A scratch directory under the workspace's `target/`, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo().join("target").join("choreo-tests").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    // The directory is created by the writer; failing here would fail there.
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The target directory shared by every crate the tests build, so that
/// their dependencies compile once.
pub fn shared_target() -> PathBuf {
    repo().join("target").join("choreo-tests").join("target")
}

/// Copies the workspace's lock file into `dir`, so that cargo resolves the
/// same versions the workspace already has, without going to the network.
pub fn copy_lock(dir: &Path) {
    let _ = std::fs::copy(repo().join("Cargo.lock"), dir.join("Cargo.lock"));
}

/// Runs cargo in `dir`; the output, and whether it succeeded.
pub fn cargo(dir: &Path, args: &[&str]) -> (bool, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("RUSTFLAGS")
        .env("CARGO_TERM_COLOR", "never")
        .output();
    match out {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => (false, format!("cannot run cargo: {e}")),
    }
}

/// The specs every generated crate is built from: the valid cases, the
/// examples and the keywords spec, sorted.
pub fn corpus_specs() -> Vec<PathBuf> {
    let root = repo();
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root.join("tests/cases/valid"))
        .expect("tests/cases/valid is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "choreo"))
        .collect();
    specs.push(root.join("examples/ecommerce/ecommerce.choreo"));
    specs.push(root.join("examples/drone-delivery/drone-delivery.choreo"));
    specs.push(root.join("tests/specs/keywords.choreo"));
    specs.sort();
    specs
}
