//! Generates the test fixtures' modules from their specs with the
//! build-script entry point users call (`choreo_compiler::builder`), so that
//! the workspace's own build compiles, lints and tests generated code; and
//! the samples of every corpus spec's messages for `wire_truth.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The examples with their HTTP ingress, as the example services use them.
    for spec in [
        "../examples/ecommerce/ecommerce.choreo",
        "../examples/drone-delivery/drone-delivery.choreo",
        // A key the client gives: the ingress's other way to key a route.
        "specs/tickets.choreo",
    ] {
        choreo_compiler::builder::Builder::new()
            .http(true)
            .compile(spec)?;
    }
    choreo_compiler::builder::compile("specs/keywords.choreo")?;
    wire_samples()
}

/// Every valid spec of the corpus: the valid cases, the test specs and the
/// examples, sorted.
fn corpus() -> Result<Vec<PathBuf>, std::io::Error> {
    let mut specs = Vec::new();
    for dir in ["cases/valid", "specs"] {
        println!("cargo:rerun-if-changed={dir}");
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "choreo") {
                specs.push(path);
            }
        }
    }
    specs.push("../examples/ecommerce/ecommerce.choreo".into());
    specs.push("../examples/drone-delivery/drone-delivery.choreo".into());
    specs.sort();
    Ok(specs)
}

/// `$OUT_DIR/wire_samples.rs`: per corpus spec a module with its generated
/// data types and samples (`choreo_compiler::testing::wire_samples`), and
/// `CASES`, each spec's path (from the repository's root) with its keys
/// and messages. The data types alone, not the whole generated module:
/// the test compiles them all in one crate, in seconds.
fn wire_samples() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = String::new();
    let mut cases = String::new();
    for (i, path) in corpus()?.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path)?;
        let report = choreo_compiler::check(&choreo_compiler::SourceFile::new(
            path.display().to_string(),
            text,
        ));
        let (spec, _) = report
            .into_checked()
            .map_err(|_| format!("{} does not check", path.display()))?;
        let samples = choreo_compiler::testing::wire_samples(&spec);
        writeln!(
            out,
            "#[allow(dead_code, deprecated, clippy::all, clippy::pedantic)]\npub mod case_{i} {{\n{samples}\n}}"
        )?;
        let from_root = Path::new("tests").join(path);
        let from_root = from_root.to_string_lossy().replace("tests/../", "");
        writeln!(
            cases,
            "    ({from_root:?}, case_{i}::keys, case_{i}::messages),"
        )?;
    }
    writeln!(
        out,
        "/// Each corpus spec: its path from the repository's root, its keys and its messages' samples.\npub type Case = (&'static str, fn() -> Vec<String>, fn() -> Vec<case_0::Sample>);\npub const CASES: &[Case] = &[\n{cases}];"
    )?;
    let dir = std::env::var("OUT_DIR")?;
    std::fs::write(Path::new(&dir).join("wire_samples.rs"), out)?;
    Ok(())
}
