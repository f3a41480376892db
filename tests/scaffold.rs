//! `choreoc new`: the scaffold of the ecommerce example builds and runs end
//! to end on the in-memory broker, and on brokers and stores that require
//! credentials without showing them; scaffolding again keeps user code.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::codegen::CrateSource;
use choreo_compiler::output::{self, WriteError};
use choreo_compiler::{check, scaffold, SourceFile};
use choreo_tests::build_crates::{cargo, copy_lock, repo, scratch, shared_target};
use example_support::secured::{
    assert_no_secret, run_checked, start_until, unreachable_urls, SecuredServers,
};
use example_support::testing::{broker_available, unique_prefix, ServiceProcess, POSTGRES_URL};
use std::time::Duration;

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

/// The scaffold's services on a Redis server and NATS servers that require
/// a password or a token, with stores in PostgreSQL under a URL with a
/// password: every run settles, and neither its output nor `--help` (with
/// `CHOREO_BROKER` set) shows a secret; wrong passwords and servers that
/// are not there fail without showing one either.
#[test]
fn the_scaffold_on_servers_with_credentials_settles_and_shows_no_secret() {
    if !broker_available(POSTGRES_URL) {
        return;
    }
    let Some(servers) = SecuredServers::start() else {
        return;
    };
    let dir = scratch("scaffold-secrets");
    let text = std::fs::read_to_string(repo().join("examples/ecommerce/ecommerce.choreo")).unwrap();
    output::write(&dir, &files(&text), false).unwrap();
    copy_lock(&dir);
    let (ok, out) = cargo(&dir, &["build", "--quiet", "--bins"]);
    assert!(ok, "cargo build failed:\n{out}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let package = manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap();
    let bin = shared_target().join("debug").join(package);
    let payment = shared_target().join("debug").join("payment");
    let prefix = unique_prefix();
    let (redis, nats_user, nats_token, db) = (
        servers.redis_url(),
        servers.nats_user_url(),
        servers.nats_token_url(),
        servers.postgres_url(),
    );
    for (broker, store) in [
        (&redis, None),
        (&nats_user, Some(&db)),
        (&nats_token, Some(&redis)),
    ] {
        let mut args = vec!["--instances", "3", "--broker", broker, "--prefix", &prefix];
        if let Some(store) = store {
            args.extend(["--store", store]);
        }
        let done = run_checked("scaffold", &bin, &args, Duration::from_secs(60));
        assert!(done.success, "{args:?}: {done:?}");
        assert!(done.stdout.contains("settled 3/3"), "{args:?}: {done:?}");
        assert!(done.stdout.contains("***@127.0.0.1"), "{}", done.stdout);
    }
    // One participant alone, until stopped.
    let (p, _) = start_until(
        "payment",
        &payment,
        &["--broker", &nats_user, "--store", &db, "--prefix", &prefix],
        "is running on",
        Duration::from_secs(30),
    );
    let done = p.stop(Duration::from_secs(20)).unwrap();
    assert_no_secret("the payment service's output", &format!("{done:?}"));
    // The broker from the environment, and `--help` with it set.
    for args in [&["--instances", "1"][..], &["--help"][..]] {
        let p = ServiceProcess::spawn_with_env(
            "scaffold",
            &bin,
            args,
            &[("CHOREO_BROKER", &nats_token), ("CHOREO_STORE", &db)],
        )
        .unwrap();
        let done = p.wait(Duration::from_secs(60)).unwrap();
        assert!(done.success, "{args:?}: {done:?}");
        assert_no_secret("the scaffold's output", &format!("{done:?}"));
    }
    // Wrong passwords and tokens, servers not there.
    let unreachable = unreachable_urls().unwrap();
    for url in servers.wrong_urls().iter().chain(&unreachable) {
        let option = if url.starts_with("postgres") {
            "--store"
        } else {
            "--broker"
        };
        let args = ["--instances", "1", option, url.as_str()];
        let done = run_checked("scaffold", &bin, &args, Duration::from_secs(30));
        assert!(!done.success, "{args:?}: {done:?}");
        assert!(done.stderr.contains("error: "), "{args:?}: {done:?}");
    }
}
