//! No false alarms: the monitor watching whole runs of the shop on the
//! memory broker counts every instance settled and finds nothing the spec
//! does not allow, also with every event delivered twice.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use choreo_runtime::broker::SharedBroker;
use choreo_runtime::MemoryBroker;
use ecommerce::{DataOptions, Role, System};
use example_support::monitor::{flow, settled, watch};
use example_support::Deployment;

async fn ecommerce_run(orders: usize, duplicates: bool) {
    let deployment = Deployment {
        broker: "memory://".into(),
        prefix: "shop.".into(),
        duplicates,
        ..Deployment::default()
    };
    let broker: SharedBroker = if duplicates {
        Arc::new(MemoryBroker::with_duplicates())
    } else {
        Arc::new(MemoryBroker::new())
    };
    let flow = flow(ecommerce::SPEC_NAME, ecommerce::SPEC).unwrap();
    let monitor = watch(flow, broker.clone(), "shop.").await.unwrap();
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
    let seen = settled(&monitor, orders as u64, Duration::from_secs(60)).await;
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
async fn the_monitor_finds_no_false_alarm_in_a_run() {
    ecommerce_run(300, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_finds_no_false_alarm_with_every_event_twice() {
    ecommerce_run(300, true).await;
}
