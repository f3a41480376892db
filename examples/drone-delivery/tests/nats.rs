//! One process per participant against NATS JetStream, and a driver
//! process driving deliveries through the ingress; then each service is
//! stopped with SIGTERM and its final state checked against the outcomes.
#![allow(clippy::unwrap_used)]

use drone_delivery::system::{FinalState, PARTICIPANTS};
use drone_delivery::verify::{check_books, Endings};
use example_support::testing::{
    broker_available, delete_nats_stream, spawn_until_ready, unique_prefix, ServiceProcess,
    NATS_URL,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_drone-delivery");
const DRONES: usize = 10;
const N: usize = 120;

#[test]
fn one_process_per_participant_on_nats() {
    if !broker_available(NATS_URL) {
        return;
    }
    let prefix = unique_prefix();
    let common = [
        "--broker",
        NATS_URL,
        "--prefix",
        &prefix,
        "--drones",
        "10",
        "--seed",
        "5",
        "--flight-ms",
        "80",
    ];
    // Every participant has joined its group before a request is sent.
    let services = spawn_until_ready(
        Path::new(BIN),
        &PARTICIPANTS,
        &common,
        "\"ready\":true",
        Duration::from_secs(60),
    )
    .unwrap();
    let n = N.to_string();
    let mut args = common.to_vec();
    args.extend([
        "--service",
        "ingress",
        "--deliveries",
        &n,
        "--cancel-share",
        "0.3",
        "--reschedule-share",
        "0.3",
        "--timeout",
        "240",
    ]);
    let driver = ServiceProcess::spawn("ingress", Path::new(BIN), &args)
        .unwrap()
        .wait(Duration::from_secs(300))
        .unwrap();
    println!("{}\n{}", driver.stdout, driver.stderr);
    assert!(driver.success, "{}\n{}", driver.stdout, driver.stderr);
    let text = driver.stdout.trim_end();
    let last = text.lines().last().unwrap();
    assert!(last.starts_with(&format!("settled {N}/{N}: ")), "{last}");
    let endings = Endings::parse(text).unwrap();
    assert!(
        endings.completed > N / 2 && endings.rejected > 0 && endings.no_drone > 0,
        "{text}"
    );

    // Stopped as a supervisor stops them: each prints its state.
    let mut states = BTreeMap::new();
    for p in services {
        let name = p.name().to_string();
        let done = p.stop(Duration::from_secs(30)).unwrap();
        assert!(done.success, "{name}: {}", done.stderr);
        let last = done.stdout.trim_end().lines().last().unwrap().to_string();
        let state: FinalState = serde_json::from_str(&last).unwrap();
        states.insert(state.service.clone(), state.state);
    }
    // The services agree with each other, delivery by delivery, and with
    // the driver's counts.
    let problems = check_books(N, DRONES, &endings, &states);
    assert!(problems.is_empty(), "{problems:#?}\n{text}");

    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_nats_stream(NATS_URL, &prefix));
}
