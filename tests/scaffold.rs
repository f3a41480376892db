//! `choreoc new`: the scaffold of the ecommerce example builds and runs end
//! to end on the in-memory broker, and scaffolding again keeps user code.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::codegen::CrateSource;
use choreo_compiler::output::{self, WriteError};
use choreo_compiler::{check, scaffold, SourceFile};
use choreo_tests::build_crates::{cargo, copy_lock, repo, scratch};

fn deps() -> CrateSource {
    CrateSource::checkout(repo()).unwrap()
}

fn files(text: &str) -> Vec<output::GeneratedFile> {
    let report = check(&SourceFile::new("ecommerce.choreo", text));
    let (spec, _) = report.into_checked().unwrap();
    scaffold::files(&spec, text, &deps()).unwrap()
}

#[test]
fn the_ecommerce_scaffold_builds_and_runs_every_instance_to_its_outcome() {
    let dir = scratch("scaffold-ecommerce");
    let text = std::fs::read_to_string(repo().join("examples/ecommerce/ecommerce.choreo")).unwrap();
    output::write(&dir, &files(&text), false).unwrap();
    for file in [
        "Cargo.toml",
        "build.rs",
        "src/main.rs",
        "src/participants/payment.rs",
        "src/bin/payment.rs",
        "specs/ecommerce.choreo",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let payment = std::fs::read_to_string(dir.join("src/participants/payment.rs")).unwrap();
    assert!(payment.contains("TODO(choreo)"), "{payment}");
    copy_lock(&dir);
    let (ok, out) = cargo(&dir, &["run", "--quiet", "--", "--instances", "4"]);
    assert!(ok, "cargo run failed:\n{out}");
    assert_eq!(
        out.matches("settled: Ecommerce.v1.OrderCompleted (Success)")
            .count(),
        4,
        "{out}"
    );
    assert!(out.contains("settled 4/4"), "{out}");
    let (ok, out) = cargo(
        &dir,
        &["clippy", "--all-targets", "--quiet", "--", "-D", "warnings"],
    );
    assert!(ok, "clippy found problems in the scaffold:\n{out}");
}

#[test]
fn scaffolding_again_adds_new_participants_and_never_overwrites_user_code() {
    let dir = scratch("scaffold-again");
    let text = std::fs::read_to_string(repo().join("examples/ecommerce/ecommerce.choreo")).unwrap();
    output::write(&dir, &files(&text), false).unwrap();

    // The user fills in a handler.
    let mine = "// my payment logic\n";
    std::fs::write(dir.join("src/participants/payment.rs"), mine).unwrap();

    // The spec grows a participant; scaffolding again keeps the handler
    // and adds the new participant's files.
    let grown = text.replace(
        "    /// Tells the customer what happened to their order.",
        "    participant Audit {\n        on OrderCompleted\n    }\n\n    /// Tells the customer what happened to their order.",
    );
    let report = output::write(&dir, &files(&grown), false).unwrap();
    assert!(
        report
            .kept
            .contains(&"src/participants/payment.rs".to_string()),
        "{report:?}"
    );
    assert!(
        report
            .written
            .contains(&"src/participants/audit.rs".to_string()),
        "{report:?}"
    );
    assert!(
        report
            .written
            .contains(&"src/participants/mod.rs".to_string()),
        "{report:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("src/participants/payment.rs")).unwrap(),
        mine
    );

    // A file choreoc owns but the user changed is refused, not overwritten.
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    let err = output::write(&dir, &files(&text), false).unwrap_err();
    assert!(
        matches!(&err, WriteError::UserEdited(f) if f == &["src/main.rs".to_string()]),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    // With force it is.
    output::write(&dir, &files(&text), true).unwrap();
    assert_ne!(
        std::fs::read_to_string(dir.join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("src/participants/payment.rs")).unwrap(),
        mine
    );
}
