//! No secret printed: the ecommerce example runs on a Redis server and two
//! NATS servers that require a password or a token, with its books in
//! PostgreSQL under a URL with a password, and settles; then it is given
//! wrong passwords and servers that are not there. Neither its output
//! (with every log at debug level) nor its HTTP answers (the ingress, the
//! monitor) show a password or token, raw or percent-encoded.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use example_support::secured::{
    address_in, http_answers, run_checked, start_until, unreachable_urls, SecuredServers,
};
use example_support::testing::{broker_available, drop_books, unique_prefix, POSTGRES_URL};
use std::path::Path;
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecommerce"))
}

#[test]
fn runs_with_credentials_settle_and_show_no_secret() {
    if !broker_available(POSTGRES_URL) {
        return;
    }
    let Some(servers) = SecuredServers::start() else {
        return;
    };
    let db = servers.postgres_url();
    // A prefix per run: each starts from fresh books.
    let base = unique_prefix();
    let prefixes: Vec<String> = (0..4)
        .map(|i| format!("{}r{i}.", base.trim_end_matches('.')))
        .collect();
    let (redis, nats_user, nats_token) = (
        servers.redis_url(),
        servers.nats_user_url(),
        servers.nats_token_url(),
    );
    // Each broker, with its own stores, and the books in PostgreSQL; the
    // NATS run keeps its stores on the Redis server.
    for (prefix, (broker, store)) in prefixes.iter().zip([
        (&redis, None),
        (&nats_token, None),
        (&nats_user, Some(&redis)),
    ]) {
        let mut args = vec![
            "--broker",
            broker,
            "--db",
            &db,
            "--prefix",
            prefix,
            "--orders",
            "20",
            "--timeout",
            "60",
        ];
        if let Some(store) = store {
            args.extend(["--store", store]);
        }
        let done = run_checked("ecommerce", bin(), &args, Duration::from_secs(90));
        assert!(done.success, "{args:?} did not settle: {done:?}");
        assert!(done.stdout.contains("***@127.0.0.1"), "{}", done.stdout);
    }
    // Serving: the ingress's and the monitor's answers.
    let (p, ingress) = start_until(
        "ecommerce",
        bin(),
        &[
            "--broker",
            &nats_user,
            "--db",
            &db,
            "--prefix",
            &prefixes[3],
            "--orders",
            "5",
            "--serve",
            "--monitor",
            "127.0.0.1:0",
        ],
        "HTTP ingress on",
        Duration::from_secs(60),
    );
    let monitor = p
        .stdout_so_far()
        .lines()
        .find(|l| l.starts_with("monitor on"))
        .map(address_in)
        .expect("the monitor's address");
    let ingress = address_in(&ingress);
    let answers = http_answers(&ingress, &["/orders/1", "/health", "/"]);
    assert!(answers.contains("GET /orders/1: "), "{answers}");
    let answers = http_answers(
        &monitor,
        &["/", "/api/summary", "/api/instances", "/metrics"],
    );
    assert!(answers.contains("GET /api/summary: 200"), "{answers}");
    let done = p.stop(Duration::from_secs(20)).unwrap();
    for (what, text) in [("stdout", &done.stdout), ("stderr", &done.stderr)] {
        example_support::secured::assert_no_secret(what, text);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    for prefix in &prefixes {
        rt.block_on(drop_books(&db, prefix));
    }
}

#[test]
fn wrong_passwords_and_absent_servers_show_no_secret() {
    let Some(servers) = SecuredServers::start() else {
        return;
    };
    let unreachable = unreachable_urls().unwrap();
    let (brokers, dbs): (Vec<_>, Vec<_>) = servers
        .wrong_urls()
        .into_iter()
        .chain(unreachable)
        .partition(|u| !u.starts_with("postgres"));
    for broker in &brokers {
        let args = ["--broker", broker.as_str(), "--orders", "1"];
        let done = run_checked("ecommerce", bin(), &args, Duration::from_secs(30));
        assert!(!done.success, "{args:?} ran: {done:?}");
        assert!(done.stderr.contains("ecommerce: "), "{done:?}");
    }
    // Stores on a server that refuses, then books on one that is not
    // there, behind a broker that connects.
    for (option, url) in [("--store", &brokers[0]), ("--db", &dbs[0])] {
        let args = [
            "--broker",
            "memory://",
            option,
            url.as_str(),
            "--orders",
            "1",
        ];
        let done = run_checked("ecommerce", bin(), &args, Duration::from_secs(30));
        assert!(!done.success, "{args:?} ran: {done:?}");
        assert!(done.stderr.contains("***@127.0.0.1"), "{done:?}");
    }
}
