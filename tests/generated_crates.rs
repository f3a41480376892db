//! Every valid spec of the corpus, both examples and the keyword spec
//! generate crates that build and pass clippy without a warning, and the
//! HTTP router of every one with `@http` commands builds without a panic.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::codegen::{self, CrateSource};
use choreo_compiler::{check, output, SourceFile};
use choreo_tests::build_crates::{cargo, copy_lock, corpus_specs, repo, scratch};

#[test]
fn every_valid_spec_generates_a_crate_that_builds_warning_free() {
    let ws = scratch("generated-crates");
    let runtime = CrateSource::checkout(repo()).unwrap();
    let mut members = Vec::new();
    // The specs with an ingress: (folder, module).
    let mut with_http = Vec::new();
    for path in corpus_specs() {
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
        if files[1].contents.contains("pub mod http {") {
            with_http.push((stem.clone(), codegen::module_name(&spec)));
        }
        output::write(&ws.join(&stem), &files, false).unwrap();
        members.push(format!("\"{stem}\""));
    }
    // One program builds every router: axum panics on a route it cannot
    // take, so one that runs to the end shows that `check` let through
    // none.
    let mut deps = String::new();
    let mut builds = String::new();
    for (stem, module) in &with_http {
        deps.push_str(&format!("case-{stem} = {{ path = \"../{stem}\" }}\n"));
        let krate = format!("case_{}", stem.replace('-', "_"));
        builds.push_str(&format!(
            "    {{\n        use {krate}::{module} as m;\n        let tracker = std::sync::Arc::new(\n            rt.block_on(InstanceTracker::start(m::topology(), broker.clone(), Default::default()))\n                .expect(\"a tracker\"),\n        );\n        let _router = m::http::router(m::Commands::new(broker.clone()), tracker);\n        println!(\"router of {krate}\");\n    }}\n"
        ));
    }
    let routers = ws.join("routers");
    std::fs::create_dir_all(routers.join("src")).unwrap();
    std::fs::write(
        routers.join("Cargo.toml"),
        format!(
            "[package]\nname = \"routers\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nchoreo-runtime = {}\ntokio = {{ version = \"1\", features = [\"rt\"] }}\n{deps}",
            runtime.runtime_toml(&["http"])
        ),
    )
    .unwrap();
    std::fs::write(
        routers.join("src/main.rs"),
        format!(
            "//! Builds the router of every spec with `@http` commands.\n\nuse choreo_runtime::progress::InstanceTracker;\n\nfn main() {{\n    let rt = tokio::runtime::Builder::new_current_thread()\n        .enable_all()\n        .build()\n        .expect(\"a runtime\");\n    let broker = rt.block_on(choreo_runtime::connect(\"memory://\")).expect(\"the memory broker\");\n{builds}}}\n"
        ),
    )
    .unwrap();
    members.push("\"routers\"".to_string());
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
    let (ok, out) = cargo(&ws, &["run", "--quiet", "-p", "routers"]);
    assert!(ok, "building a router failed:\n{out}");
    for (stem, _) in &with_http {
        let krate = format!("case_{}", stem.replace('-', "_"));
        assert!(
            out.contains(&format!("router of {krate}\n")),
            "{krate}:\n{out}"
        );
    }
    assert!(
        with_http.len() >= 5,
        "only {} specs with @http",
        with_http.len()
    );
}
