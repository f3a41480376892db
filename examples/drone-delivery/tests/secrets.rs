//! No secret printed: the drone delivery example runs on a Redis server
//! and two NATS servers that require a password or a token, with its books
//! in PostgreSQL under a URL with a password, and settles; then it is
//! given wrong passwords and servers that are not there. Neither its
//! output (with every log at debug level) nor its HTTP answers (the
//! ingress, the monitor) show a password or token, raw or percent-encoded.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use example_support::secured::{
    assert_no_secret, http_answers, run_checked, start_until, unreachable_urls, SecuredServers,
};
use example_support::testing::{broker_available, drop_books, unique_prefix, POSTGRES_URL};
use std::path::Path;
use std::time::Duration;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_drone-delivery"))
}

const SHORT_RUN: [&str; 6] = ["--deliveries", "12", "--drones", "4", "--flight-ms", "20"];

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
    for (prefix, (broker, store)) in prefixes.iter().zip([
        (&redis, None),
        (&nats_user, None),
        (&nats_token, Some(&redis)),
    ]) {
        let mut args = vec!["--broker", broker, "--db", &db, "--prefix", prefix];
        args.extend(SHORT_RUN);
        if let Some(store) = store {
            args.extend(["--store", store]);
        }
        let done = run_checked("drone-delivery", bin(), &args, Duration::from_secs(90));
        assert!(done.success, "{args:?} did not settle: {done:?}");
        assert!(done.stdout.contains("settled 12/12"), "{}", done.stdout);
    }
    // Serving: the line saying it is ready, the ingress's and the
    // monitor's answers.
    let (p, ready) = start_until(
        "drone-delivery",
        bin(),
        &[
            "--broker",
            &nats_user,
            "--db",
            &db,
            "--prefix",
            &prefixes[3],
            "--monitor",
            "127.0.0.1:0",
        ],
        "\"ready\":true",
        Duration::from_secs(60),
    );
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["broker"].as_str().unwrap().matches("***").count(), 1);
    let ingress = ready["url"].as_str().unwrap().trim_end_matches('/');
    let monitor = ready["monitor"].as_str().unwrap().trim_end_matches('/');
    let answers = http_answers(ingress, &["/deliveries/1", "/health", "/"]);
    assert!(answers.contains("GET /deliveries/1: "), "{answers}");
    let answers = http_answers(
        monitor,
        &["/", "/api/summary", "/api/instances", "/metrics"],
    );
    assert!(answers.contains("GET /api/summary: 200"), "{answers}");
    let done = p.stop(Duration::from_secs(20)).unwrap();
    assert_no_secret("drone-delivery's standard output", &done.stdout);
    assert_no_secret("drone-delivery's standard error", &done.stderr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for prefix in &prefixes {
        rt.block_on(drop_books(&db, prefix));
    }
}

#[test]
fn wrong_passwords_and_absent_servers_show_no_secret() {
    let Some(servers) = SecuredServers::start() else {
        return;
    };
    let (brokers, dbs): (Vec<_>, Vec<_>) = servers
        .wrong_urls()
        .into_iter()
        .chain(unreachable_urls().unwrap())
        .partition(|u| !u.starts_with("postgres"));
    for broker in &brokers {
        let mut args = vec!["--broker", broker.as_str()];
        args.extend(SHORT_RUN);
        let done = run_checked("drone-delivery", bin(), &args, Duration::from_secs(30));
        assert!(!done.success, "{args:?} ran: {done:?}");
    }
    for (option, url) in [("--store", &brokers[0]), ("--db", &dbs[0])] {
        let mut args = vec!["--broker", "memory://", option, url.as_str()];
        args.extend(SHORT_RUN);
        let done = run_checked("drone-delivery", bin(), &args, Duration::from_secs(30));
        assert!(!done.success, "{args:?} ran: {done:?}");
        assert!(done.stderr.contains("***@127.0.0.1"), "{done:?}");
    }
}
