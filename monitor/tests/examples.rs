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
use choreo_runtime::broker::StartPosition;
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

/// Waits until the monitor counts `n` settled instances (or a minute).
async fn settled(monitor: &Monitor, n: u64) -> Summary {
    let started = Instant::now();
    loop {
        let s = monitor.summary();
        let done = s.instances["succeeded"] + s.instances["failed"];
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
    let broker: choreo_runtime::broker::SharedBroker = if duplicates {
        Arc::new(MemoryBroker::with_duplicates())
    } else {
        Arc::new(MemoryBroker::new())
    };
    let options = MonitorOptions {
        topics: Topics::new("shop."),
        start: StartPosition::Earliest,
        ..MonitorOptions::default()
    };
    let monitor = Monitor::start(
        flow("examples/ecommerce/ecommerce.choreo"),
        broker.clone(),
        options,
    )
    .await
    .unwrap();
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
