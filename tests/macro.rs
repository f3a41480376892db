//! `choreo_runtime::choreo!` as users write it, compiled by rustc through
//! trybuild: both forms on both example specs compile and run (`ui/macro/pass`),
//! and spec errors are compile errors where the spec is wrong
//! (`ui/macro/fail`, with the expected output in `.stderr` files).
//!
//! trybuild compiles the test programs as a package of its own, in
//! `<target>/tests/trybuild/choreo-tests/`: that is their
//! `CARGO_MANIFEST_DIR`, against which `choreo!(file = "specs/….choreo")`
//! resolves. The specs are copied there first, so the tests work wherever
//! the target directory is.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_tests::build_crates::repo;
use std::path::PathBuf;
use std::process::Command;

/// The directory trybuild builds in, found as trybuild finds it.
fn trybuild_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let target = metadata["target_directory"].as_str().unwrap();
    PathBuf::from(target).join("tests/trybuild/choreo-tests")
}

#[test]
fn choreo_macro_compiles_specs_and_reports_their_errors_where_they_are() {
    let specs = trybuild_dir().join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    for example in ["ecommerce", "drone-delivery"] {
        let from = repo().join(format!("examples/{example}/{example}.choreo"));
        std::fs::copy(&from, specs.join(format!("{example}.choreo"))).unwrap();
    }
    std::fs::copy(
        repo().join("tests/cases/invalid/E0201_unhandled.choreo"),
        specs.join("unhandled.choreo"),
    )
    .unwrap();

    let t = trybuild::TestCases::new();
    t.pass("ui/macro/pass/*.rs");
    t.compile_fail("ui/macro/fail/*.rs");
}
