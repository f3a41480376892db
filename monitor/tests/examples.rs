//! No false alarms: the monitor watching whole runs of the examples on the
//! memory broker counts every instance settled and finds nothing the spec
//! does not allow, also with every event delivered twice.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use choreo_compiler::{check, SourceFile};
use choreo_monitor::{Flow, Monitor, MonitorOptions, Summary};
use choreo_runtime::broker::{SharedBroker, StartPosition};
use choreo_runtime::service::Topics;
use choreo_runtime::MemoryBroker;
use ecommerce::{DataOptions, Role, System};
use example_support::Deployment;

fn flow(path: &str) -> Flow {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(full).unwrap();
    let (spec, _) = check(&SourceFile::new(path, text)).into_checked().unwrap();
    Flow::new(&spec)
}

/// A memory broker (delivering every event twice with `duplicates`) and
/// a monitor of the spec at `path` on it, for a deployment under `prefix`,
/// watching from the start.
async fn watched(path: &str, prefix: &str, duplicates: bool) -> (SharedBroker, Monitor) {
    let broker: SharedBroker = if duplicates {
        Arc::new(MemoryBroker::with_duplicates())
    } else {
        Arc::new(MemoryBroker::new())
    };
    let options = MonitorOptions {
        topics: Topics::new(prefix),
        start: StartPosition::Earliest,
        ..MonitorOptions::default()
    };
    let monitor = Monitor::start(flow(path), broker.clone(), options)
        .await
        .unwrap();
    (broker, monitor)
}

/// Waits until the monitor counts `n` instances settled or dead-lettered
/// (or a minute).
async fn settled(monitor: &Monitor, n: u64) -> Summary {
    let started = Instant::now();
    loop {
        let s = monitor.summary();
        let done = s.instances["succeeded"] + s.instances["failed"] + s.instances["dead_lettered"];
        if done >= n || started.elapsed() > Duration::from_secs(60) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ecommerce_run(orders: usize, duplicates: bool) {
    let deployment = Deployment {
        broker: "memory://".into(),
        service: None,
        prefix: "shop.".into(),
        duplicates,
        listen: "127.0.0.1:0".parse().unwrap(),
        store: None,
        db: None,
    };
    let (broker, monitor) =
        watched("examples/ecommerce/ecommerce.choreo", "shop.", duplicates).await;
    let data = DataOptions {
        seed: 3,
        users: 30,
        products: 15,
    };
    let system = System::start_on(broker, &deployment, data, Role::Everything)
        .await
        .unwrap();
    let (summary, _) = system
        .drive(orders, 32, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(summary.complete(), "{summary}");
    let seen = settled(&monitor, orders as u64).await;
    let count = |s: &str| seen.instances[s];
    let odd = [
        monitor.instances("violated".parse().ok(), 3),
        monitor.instances("partial".parse().ok(), 3),
    ];
    assert_eq!(
        count("succeeded") + count("failed"),
        orders as u64,
        "{seen:#?}\n{odd:#?}"
    );
    for state in ["violated", "dead_lettered", "partial", "stuck", "running"] {
        let found = monitor.instances(state.parse().ok(), 3);
        assert_eq!(count(state), 0, "{state}: {found:#?}");
    }
    // The run's own outcomes, by terminal event.
    let completed = summary.outcomes.get("OrderCompleted").copied().unwrap_or(0);
    assert_eq!(
        count("succeeded"),
        completed as u64,
        "{summary} / {seen:#?}"
    );
    assert_eq!(seen.events["PlaceOrder"], orders as u64);
    system.stop().await.unwrap();
    monitor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecommerce_runs_without_a_false_alarm() {
    ecommerce_run(300, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecommerce_with_every_event_twice_runs_without_a_false_alarm() {
    ecommerce_run(300, true).await;
}

async fn drone_run(deliveries: usize, duplicates: bool) {
    use drone_delivery::driver::DriveOptions;
    use drone_delivery::system::{Node, Settings};
    let (broker, monitor) = watched(
        "examples/drone-delivery/drone-delivery.choreo",
        "drones.",
        duplicates,
    )
    .await;
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
    let seen = settled(&monitor, deliveries as u64).await;
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
async fn drone_delivery_with_reschedules_and_cancels_runs_without_a_false_alarm() {
    drone_run(150, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drone_delivery_with_every_event_twice_runs_without_a_false_alarm() {
    drone_run(150, true).await;
}
