//! No false alarms: the monitor watching whole runs of drone-delivery,
//! with its reschedules and cancels, on the memory broker counts every
//! instance settled and finds nothing the spec does not allow, also with
//! every event delivered twice.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use choreo_runtime::broker::SharedBroker;
use choreo_runtime::service::Topics;
use choreo_runtime::MemoryBroker;
use drone_delivery::driver::DriveOptions;
use drone_delivery::system::{Node, Settings};
use example_support::monitor::{flow, settled, watch};

async fn drone_run(deliveries: usize, duplicates: bool) {
    let broker: SharedBroker = if duplicates {
        Arc::new(MemoryBroker::with_duplicates())
    } else {
        Arc::new(MemoryBroker::new())
    };
    let flow = flow(drone_delivery::SPEC_NAME, drone_delivery::SPEC).unwrap();
    let monitor = watch(flow, broker.clone(), "drones.").await.unwrap();
    let flight = Duration::from_millis(40);
    let settings = Settings {
        seed: 5,
        drones: 10,
        flight_time: flight,
        ..Settings::default()
    };
    let node = Node::start(
        &settings,
        None,
        broker,
        choreo_runtime::service::Stores::memory(),
        Topics::new("drones."),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    // Reschedules and cancels at random moments, as the example's own
    // tests drive it.
    let report = node
        .drive(&DriveOptions {
            deliveries,
            seed: 11,
            cancel_share: 0.3,
            reschedule_share: 0.3,
            concurrency: 20,
            flight_time: flight,
            timeout: Duration::from_secs(240),
        })
        .await
        .unwrap();
    assert!(report.complete(), "{report}");
    let seen = settled(&monitor, deliveries as u64, Duration::from_secs(60)).await;
    let count = |s: &str| seen.instances[s];
    let odd = [
        monitor.instances("violated".parse().ok(), 3),
        monitor.instances("partial".parse().ok(), 3),
        monitor.instances("running".parse().ok(), 3),
        monitor.instances("dead_lettered".parse().ok(), 3),
    ];
    // A command that comes too late (a cancel after the delivery ended)
    // is rejected and dead-lettered by design: those instances are
    // dead-lettered, with the handler's reason, and no false alarm.
    let dead = report.summary.dead_letters as u64;
    assert_eq!(
        count("succeeded") + count("failed") + count("dead_lettered"),
        deliveries as u64,
        "{seen:#?}\n{odd:#?}"
    );
    assert!(
        count("dead_lettered") <= dead,
        "{dead} dead letters: {odd:#?}"
    );
    assert_eq!(
        count("dead_lettered") > 0,
        dead > 0,
        "{dead} dead letters: {odd:#?}"
    );
    for state in ["violated", "partial", "stuck", "running"] {
        assert_eq!(count(state), 0, "{state}: {odd:#?}");
    }
    node.stop().await;
    monitor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_finds_no_false_alarm_with_reschedules_and_cancels() {
    drone_run(150, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_finds_no_false_alarm_with_every_event_twice() {
    drone_run(150, true).await;
}
