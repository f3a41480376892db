//! A monitor started after 1,000 orders settled reports the same summary
//! as one that watched them live: it reads them again from the oldest
//! message the broker holds, and judges by the times in the envelopes,
//! not by when it happens to see them.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use choreo_monitor::{InstanceState, Summary};
use choreo_runtime::broker::SharedBroker;
use choreo_runtime::{MemoryBroker, MemoryOptions};
use ecommerce::{DataOptions, Role, System};
use example_support::monitor::{flow, settled, watch};
use example_support::Deployment;

const ORDERS: usize = 1_000;
const PREFIX: &str = "shop.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_started_after_the_run_tells_the_same_story() {
    let started = Instant::now();
    let deployment = Deployment {
        broker: "memory://".into(),
        prefix: PREFIX.into(),
        ..Deployment::default()
    };
    // The memory broker keeps the last 1,024 messages of a topic for
    // groups created later; the late monitor needs every one of the run
    // (a notice counts for each completion it carries, some ten per order).
    let broker: SharedBroker = Arc::new(MemoryBroker::with_options(MemoryOptions {
        retained_per_topic: 1 << 24,
        ..MemoryOptions::default()
    }));
    let flow = flow(ecommerce::SPEC_NAME, ecommerce::SPEC).unwrap();
    let live = watch(flow.clone(), broker.clone(), PREFIX).await.unwrap();
    let data = DataOptions {
        seed: 5,
        users: 100,
        products: 50,
    };
    let system = System::start_on(broker.clone(), &deployment, data, Role::Everything)
        .await
        .unwrap();
    let (run, _) = system
        .drive(ORDERS, 64, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(run.complete(), "{run}");
    let n = ORDERS as u64;
    let seen_live = settled(&live, n, Duration::from_secs(60)).await;
    let ran = started.elapsed();

    // Everything is settled: a monitor starts now, from the earliest.
    let late = watch(flow, broker.clone(), PREFIX).await.unwrap();
    let seen_late = settled(&late, n, Duration::from_secs(60)).await;
    let caught_up = started.elapsed() - ran;
    eprintln!(
        "{ORDERS} orders run and watched in {ran:?}; a late monitor caught up in {caught_up:?}"
    );

    // The run is what the live monitor says it is.
    let count = |s: &Summary, state: &str| s.instances[state];
    assert_eq!(
        count(&seen_live, "succeeded") + count(&seen_live, "failed"),
        n,
        "{seen_live:#?}"
    );
    let completed = run.outcomes.get("OrderCompleted").copied().unwrap_or(0);
    assert_eq!(count(&seen_live, "succeeded"), completed as u64);
    assert!(count(&seen_live, "failed") > 0, "{seen_live:#?}");
    assert_eq!(seen_live.events["PlaceOrder"], n);

    // And the late one says the same: every count, state by state and
    // event by event.
    assert_eq!(
        seen_late.instances,
        seen_live.instances,
        "the late monitor took in {} observations, the live one {}: {:#?}",
        late.lag().observed,
        live.lag().observed,
        late.instances(Some(InstanceState::Violated), 2)
    );
    assert_eq!(seen_late.events, seen_live.events);
    assert_eq!(seen_late.violations, seen_live.violations);
    assert_eq!(seen_late.dead_letters, seen_live.dead_letters);
    // What each reaction did. The latencies too: both measure from the
    // time in an event's envelope to the time in the notice of its
    // handling, whenever the monitor reads them, so a replay gives the
    // same percentiles.
    assert_eq!(seen_late.reactions.len(), seen_live.reactions.len());
    for (l, r) in seen_late.reactions.iter().zip(&seen_live.reactions) {
        assert_eq!(
            (
                &l.participant,
                &l.reaction,
                l.handled,
                l.waiting,
                l.dead_lettered,
                l.stuck
            ),
            (
                &r.participant,
                &r.reaction,
                r.handled,
                r.waiting,
                r.dead_lettered,
                r.stuck
            ),
        );
        assert_eq!((l.p50_ms, l.p99_ms), (r.p50_ms, r.p99_ms), "{}", l.reaction);
        assert!(l.handled > 0, "{l:?}");
    }
    // So the whole summary is the same.
    assert_eq!(seen_late, seen_live);

    system.stop().await.unwrap();
    live.shutdown().await;
    late.shutdown().await;
}
