//! One process per participant against NATS JetStream, and a driver
//! process driving deliveries through the ingress; then each service is
//! stopped with SIGTERM and its final state checked against the outcomes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{count, failed_split};

use drone_delivery::system::{
    fleet_of, flights_of, packages_of, DeliveryReport, FinalState, PARTICIPANTS,
};
use example_support::testing::{
    broker_available, delete_nats_stream, spawn_until_ready, unique_prefix, ServiceProcess,
    NATS_URL,
};
use std::collections::{BTreeMap, BTreeSet};
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
    let completed = count(text, "completed");
    let withdrawn = count(text, "withdrawn");
    let returned = count(text, "returned");
    let (rejected, no_drone) = failed_split(text);
    assert_eq!(
        completed + withdrawn + returned + rejected + no_drone,
        N,
        "{text}"
    );
    assert!(completed > N / 2 && rejected > 0 && no_drone > 0, "{text}");

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
    let fleet = fleet_of(&states["DroneScheduler"]).unwrap();
    assert_eq!(fleet.drones, DRONES);
    assert_eq!(fleet.assigned, 0, "drones still held: {:?}", fleet.holding);
    assert_eq!(fleet.stats.violations, 0);
    assert!(fleet.stats.max_assigned <= DRONES);
    assert_eq!(fleet.stats.assignments, fleet.stats.releases);
    let flights = flights_of(&states["Flight"]).unwrap();
    assert_eq!((flights.violations, flights.in_air), (0, 0));
    assert_eq!(flights.landed as usize, completed);
    assert_eq!(
        (flights.turned_back + flights.cancelled_on_ground) as usize,
        returned
    );
    let packages = packages_of(&states["Package"]).unwrap();
    let deliveries: DeliveryReport = serde_json::from_value(states["Delivery"].clone()).unwrap();
    assert_eq!(deliveries.open, 0);
    assert_eq!(deliveries.endings.len(), N);
    let keys = |names: &[&str]| -> BTreeSet<String> {
        deliveries
            .endings
            .iter()
            .filter(|(_, e)| names.contains(&e.name()))
            .map(|(k, _)| k.clone())
            .collect()
    };
    // The services agree with each other, delivery by delivery, and with
    // the driver's counts.
    assert_eq!(keys(&["completed"]).len(), completed);
    assert_eq!(keys(&["returned"]).len(), returned);
    assert_eq!(keys(&["withdrawn"]).len(), withdrawn);
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(packages.live), keys(&["completed"]));
    assert_eq!(
        set(packages.deleted),
        keys(&["no_drone", "withdrawn", "returned"])
    );
    assert_eq!(set(packages.rejected), keys(&["package_rejected"]));
    assert_eq!(states["Ingestion"]["requests"], N);

    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(delete_nats_stream(NATS_URL, &prefix));
}
