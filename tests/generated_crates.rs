//! Every valid spec of the corpus, both examples and the keyword spec
//! generate crates that build and pass clippy without a warning.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::codegen::{self, CrateSource};
use choreo_compiler::{check, output, SourceFile};
use choreo_tests::build_crates::{cargo, copy_lock, repo, scratch};
use std::path::PathBuf;

fn specs() -> Vec<PathBuf> {
    let root = repo();
    let mut specs: Vec<PathBuf> = std::fs::read_dir(root.join("tests/cases/valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "choreo"))
        .collect();
    specs.push(root.join("examples/ecommerce/ecommerce.choreo"));
    specs.push(root.join("examples/drone-delivery/drone-delivery.choreo"));
    specs.push(root.join("tests/specs/keywords.choreo"));
    specs.sort();
    specs
}

#[test]
fn every_valid_spec_generates_a_crate_that_builds_warning_free() {
    let ws = scratch("generated-crates");
    let runtime = CrateSource::checkout(repo()).unwrap();
    let mut members = Vec::new();
    for path in specs() {
        let text = std::fs::read_to_string(&path).unwrap();
        let report = check(&SourceFile::new(path.display().to_string(), text));
        let (spec, _) = report
            .into_checked()
            .unwrap_or_else(|d| panic!("{} does not check: {d:?}", path.display()));
        let stem = path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('_', "-")
            .to_lowercase();
        // With the HTTP ingress, as `choreoc generate --http` writes them:
        // the specs with `@http` commands get their router compiled and
        // linted as a crate of its own.
        let mut files = codegen::crate_files_with(&spec, &runtime, codegen::Options { http: true });
        // One workspace holds them all: package names must differ.
        let cargo_toml = &mut files[0];
        let original = format!("name = \"{}\"", codegen::crate_name(&spec));
        assert!(cargo_toml.contents.contains(&original));
        cargo_toml.contents = cargo_toml
            .contents
            .replace(&original, &format!("name = \"case-{stem}\""));
        output::write(&ws.join(&stem), &files, false).unwrap();
        members.push(format!("\"{stem}\""));
    }
    std::fs::write(
        ws.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            members.join(", ")
        ),
    )
    .unwrap();
    copy_lock(&ws);
    let (ok, out) = cargo(&ws, &["build", "--workspace", "--quiet"]);
    assert!(ok, "cargo build failed:\n{out}");
    let (ok, out) = cargo(
        &ws,
        &["clippy", "--workspace", "--quiet", "--", "-D", "warnings"],
    );
    assert!(ok, "cargo clippy found problems:\n{out}");
    assert!(!out.contains("warning"), "{out}");
    assert!(members.len() >= 20, "only {} specs", members.len());
}
