//! The README's tour, followed as a newcomer follows it from a fresh
//! checkout: install choreoc from the checkout, save the README's spec as
//! `shop.choreo`, scaffold it with `choreoc new`, and run the scaffold on
//! the in-memory broker and then on NATS.
//!
//! The commands are the README's, word for word: the test fails when the
//! README no longer shows them. Three things are added around them, none
//! of which a user would see:
//! - `--root` installs into the test's own directory, not `~/.cargo`;
//! - a shared target directory, so that a second run builds incrementally;
//! - `CHOREO_PREFIX` (which the scaffold reads like `--prefix`) keeps the
//!   NATS run's topics apart from anything else on the shared server, and
//!   its stream is deleted at the end.
//!
//! The scaffold gets a copy of the workspace's lock file before `choreoc
//! new` writes into it, so that it builds with the versions the workspace
//! was tested with.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use choreo_tests::build_crates::{copy_lock, repo, scratch, shared_target};
use example_support::testing::{broker_available, delete_nats_stream, unique_prefix, NATS_URL};

/// The tour's commands, as the README shows them.
const INSTALL: &str = "cargo install --locked --path compiler";
const NEW_AND_RUN: &str = "choreoc new shop.choreo shop && cd shop && cargo run";
const RUN_TEN: &str = "cargo run -- --instances 10";
const RUN_ON_NATS: &str = "cargo run -- --instances 10 --broker nats://127.0.0.1:4222";
const ONE_PARTICIPANT: &str = "cargo run --bin payment -- --broker nats://127.0.0.1:4222";
const GENERATE: &str = "choreoc generate shop.choreo --out shop-types";
const DIAGRAM: &str = "choreoc diagram shop.choreo --format svg -o shop.svg";

/// The first ```choreo block of the README: the tour's spec.
fn tour_spec(readme: &str) -> String {
    let start = readme.find("```choreo\n").expect("the README shows a spec") + 10;
    let len = readme[start..].find("```").expect("the spec block ends");
    readme[start..start + len].to_string()
}

/// Runs `line` with `sh` in `dir`, with the installed choreoc first on the
/// PATH and `env` set; its output, after asserting that it succeeded.
fn shell(dir: &Path, line: &str, bin: &Path, env: &[(&str, &str)]) -> String {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("sh");
    command
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", shared_target())
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUSTFLAGS")
        .env_remove("CHOREO_BROKER")
        .env_remove("CHOREO_PREFIX");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "`{line}` failed:\n{text}");
    text
}

/// How many sample instances the run says settled, of how many.
fn settled(out: &str, n: usize) {
    assert!(out.contains(&format!("settled {n}/{n}")), "{out}");
    assert_eq!(
        out.matches("settled: Shop.OrderShipped (Success)").count(),
        n,
        "{out}"
    );
}

#[test]
fn the_readme_tour_works_as_written_from_a_fresh_checkout() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for command in [
        INSTALL,
        NEW_AND_RUN,
        RUN_TEN,
        RUN_ON_NATS,
        ONE_PARTICIPANT,
        GENERATE,
        DIAGRAM,
    ] {
        assert!(
            readme.contains(command),
            "the README's tour no longer shows `{command}`"
        );
    }
    assert!(
        readme.contains("save the spec above as `shop.choreo`"),
        "the README no longer says where shop.choreo comes from"
    );
    let work = scratch("tour");
    let root = work.join("cargo-home");
    let bin = root.join("bin");

    // `cargo install --locked --path compiler`, from the repository's root.
    let install = format!("{INSTALL} --root '{}'", root.display());
    shell(&repo(), &install, &bin, &[]);
    assert!(bin.join("choreoc").is_file());

    // The spec above, saved as shop.choreo; then `choreoc new … && cd shop
    // && cargo run`.
    std::fs::write(work.join("shop.choreo"), tour_spec(&readme)).unwrap();
    std::fs::create_dir_all(work.join("shop")).unwrap();
    copy_lock(&work.join("shop"));
    let out = shell(&work, NEW_AND_RUN, &bin, &[]);
    let checkout = repo().canonicalize().unwrap();
    assert!(
        out.contains(&format!(
            "choreo's crates come from the checkout at {}",
            checkout.display()
        )),
        "{out}"
    );
    settled(&out, 3);
    assert!(
        out.contains("every participant is running on memory://, stores: memory"),
        "{out}"
    );
    let manifest = std::fs::read_to_string(work.join("shop/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("features = [\"nats\", \"redis\", \"postgres\"]"),
        "{manifest}"
    );
    assert!(manifest.contains("default-features = false"), "{manifest}");

    // `cargo run -- --instances 10`, in the scaffold.
    let shop = work.join("shop");
    settled(&shell(&shop, RUN_TEN, &bin, &[]), 10);

    // The other back ends, beside shop.choreo.
    let out = shell(&work, GENERATE, &bin, &[]);
    assert!(out.contains("wrote 2 files"), "{out}");
    let types = std::fs::read_to_string(work.join("shop-types/Cargo.toml")).unwrap();
    assert!(types.contains("choreo-runtime = { path = "), "{types}");
    shell(&work, DIAGRAM, &bin, &[]);
    let svg = std::fs::read_to_string(work.join("shop.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("PaymentApproved"));

    // The same against NATS.
    if !broker_available(NATS_URL) {
        return;
    }
    let prefix = unique_prefix();
    let out = shell(&shop, RUN_ON_NATS, &bin, &[("CHOREO_PREFIX", &prefix)]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_nats_stream(NATS_URL, &prefix));
    assert!(
        out.contains(&format!(
            "every participant is running on {NATS_URL} (prefix `{prefix}`), stores: NATS Key-Value at {NATS_URL}"
        )),
        "{out}"
    );
    settled(&out, 10);

    // One participant as a service of its own: it starts, says where it
    // runs, and stops cleanly on SIGTERM as a supervisor stops it.
    let prefix = unique_prefix();
    serve_until_terminated(&shop, &bin, &prefix);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_nats_stream(NATS_URL, &prefix));
}

/// Starts `ONE_PARTICIPANT` in `shop`, waits until it says it runs, sends
/// it SIGTERM and expects a clean exit.
fn serve_until_terminated(shop: &Path, bin: &Path, prefix: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // `exec`, so that the signal reaches cargo, which runs the binary in
    // its own place on Unix.
    let mut child = Command::new("sh")
        .args(["-c", &format!("exec {ONE_PARTICIPANT}")])
        .current_dir(shop)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", shared_target())
        .env("CARGO_TERM_COLOR", "never")
        .env("CHOREO_PREFIX", prefix)
        .env_remove("RUSTFLAGS")
        .env_remove("CHOREO_BROKER")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut said = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.starts_with("Payment is running on") {
            break;
        }
    }
    assert!(
        said.contains(&format!(
            "Payment is running on {NATS_URL} (prefix `{prefix}`), stores: NATS Key-Value at {NATS_URL}"
        )),
        "{said}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "after SIGTERM: {status}\n{said}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the Payment service did not stop within 20 s of SIGTERM:\n{said}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
