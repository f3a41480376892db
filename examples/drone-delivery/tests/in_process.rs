//! The whole system in one process on the memory broker, driven through
//! its HTTP ingress.
#![allow(clippy::unwrap_used)]

mod common;

use choreo_runtime::broker::memory::MemoryBroker;
use choreo_runtime::SharedBroker;
use drone_delivery::system::{Node, Settings};
use std::sync::Arc;
use std::time::Duration;

const DRONES: usize = 10;
const FLIGHT: Duration = Duration::from_millis(60);

fn settings() -> Settings {
    Settings {
        seed: 5,
        drones: DRONES,
        flight_time: FLIGHT,
        ..Settings::default()
    }
}

async fn start(broker: SharedBroker) -> Node {
    common::start_in_process(&settings(), broker).await
}

/// Drives `n` deliveries through `node`, then checks that each settled and
/// that the participants' final state agrees with the report.
async fn drive_and_check(node: &Node, n: usize) {
    let report = node
        .drive(&common::drive_options(n, FLIGHT, DRONES))
        .await
        .unwrap();
    println!("{report}");
    common::check_report(&report, n);
    common::check_state(&report, &node.participants, DRONES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delivery_settles_and_the_fleet_and_the_packages_agree() {
    let node = start(Arc::new(MemoryBroker::new())).await;
    drive_and_check(&node, 150).await;
    let flights = node.participants.flights.stats();
    assert!(flights.turned_back > 0, "{flights:?}");
    assert!(flights.course_changes > 0, "{flights:?}");
    // Reschedules came both before take-off (into the plan) and in
    // flight (a change of course).
    let deliveries = node.participants.deliveries.stats();
    assert!(deliveries.reschedules_before_take_off > 0, "{deliveries:?}");
    assert!(deliveries.reschedules_in_flight > 0, "{deliveries:?}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_event_delivered_twice_nothing_is_done_twice() {
    let node = start(Arc::new(MemoryBroker::with_duplicates())).await;
    // Among others: no drone assigned twice, every drone back, one
    // package per delivery, deleted once.
    drive_and_check(&node, 120).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_fleet_makes_requests_wait_then_fail() {
    // One drone of each class, long flights, many requests at once: some
    // wait for a drone (retried), some give up with NoDroneAvailable.
    let settings = Settings {
        seed: 5,
        drones: 3,
        flight_time: Duration::from_millis(1500),
        ..Settings::default()
    };
    let node = common::start_in_process(&settings, Arc::new(MemoryBroker::new())).await;
    let mut options = common::drive_options(30, settings.flight_time, 3);
    options.cancel_share = 0.0;
    options.reschedule_share = 0.0;
    options.concurrency = 30;
    let report = node.drive(&options).await.unwrap();
    println!("{report}");
    assert!(report.complete(), "{report}");
    let fleet = node.participants.scheduler.report();
    assert!(fleet.stats.busy_retries > 0, "{fleet:?}");
    assert!(fleet.stats.no_drone_busy > 0, "{fleet:?}");
    assert_eq!(fleet.stats.max_assigned, 3);
    assert_eq!((fleet.assigned, fleet.stats.violations), (0, 0));
    node.stop().await;
}
