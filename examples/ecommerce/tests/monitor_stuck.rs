//! The shop on NATS with every participant but Seller: the orders that
//! reach `PaymentApproved` are listed as stuck once `stuck_after` passes,
//! each waiting for Seller on `PaymentApproved`, while the declined and
//! sold-out ones settle without it. Once Seller starts they settle and
//! leave the list. Each participant and the ingress run in this process,
//! each on a connection of its own, as separate processes would; skipped
//! without NATS (unless `CHOREO_REQUIRE_BROKERS=1`).

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use choreo_monitor::follow::now_ms;
use choreo_monitor::watch::InstanceView;
use choreo_monitor::{InstanceState, Monitor, MonitorOptions, WatchOptions};
use choreo_runtime::broker::StartPosition;
use choreo_runtime::service::Topics;
use ecommerce::run::place;
use ecommerce::{DataOptions, Role, System, PARTICIPANTS};
use example_support::monitor::flow;
use example_support::testing::{broker_available, delete_nats_stream, unique_prefix, NATS_URL};
use example_support::{Deployment, HttpClient};

const ORDERS: usize = 30;
/// No progress for this long: stuck.
const STUCK_AFTER: Duration = Duration::from_secs(2);
/// How long the test waits for what it expects, at most.
const PATIENCE: Duration = Duration::from_secs(20);

/// Deletes the run's stream and stores when the test ends, passed or
/// failed.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        // A thread of its own: a runtime cannot be started inside the
        // test's one.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Runtime::new() {
                rt.block_on(delete_nats_stream(NATS_URL, &prefix));
            }
        })
        .join();
    }
}

/// Polls `monitor` until `done` holds of every instance, or fails after
/// [`PATIENCE`] showing them; returns them.
async fn until(
    monitor: &Monitor,
    what: &str,
    done: impl Fn(&[InstanceView]) -> bool,
) -> Vec<InstanceView> {
    let started = Instant::now();
    loop {
        let all = monitor.instances(None, usize::MAX);
        if done(&all) {
            return all;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "not {what} within {PATIENCE:?}: {:#?}\n{all:#?}",
            monitor.summary()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn approved(v: &InstanceView) -> bool {
    v.events.iter().any(|e| e.name == "PaymentApproved")
}

fn keys<'a>(views: impl IntoIterator<Item = &'a InstanceView>) -> BTreeSet<String> {
    views.into_iter().map(|v| v.key.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_wait_for_a_missing_seller_as_stuck_and_settle_once_it_starts() {
    if !broker_available(NATS_URL) {
        return;
    }
    let started = Instant::now();
    let prefix = unique_prefix();
    let _clean = Cleanup(prefix.clone());
    let deployment = Deployment {
        broker: NATS_URL.into(),
        prefix: prefix.clone(),
        ..Deployment::default()
    };
    // Little stock and credit for the orders: some are declined or sold
    // out, and settle without Seller.
    let data = DataOptions {
        seed: 8,
        users: 3,
        products: 2,
    };

    let monitor_broker = choreo_runtime::connect(NATS_URL).await.unwrap();
    let options = MonitorOptions {
        topics: Topics::new(prefix.clone()),
        start: StartPosition::Earliest,
        watch: WatchOptions {
            stuck_after: STUCK_AFTER,
            ..WatchOptions::default()
        },
    };
    let flow = flow(ecommerce::SPEC_NAME, ecommerce::SPEC).unwrap();
    let monitor = Monitor::start(flow, monitor_broker.clone(), options)
        .await
        .unwrap();

    let mut systems = Vec::new();
    for name in PARTICIPANTS.iter().filter(|p| **p != "Seller") {
        let s = System::start(&deployment, data, Role::Participant(name))
            .await
            .unwrap();
        systems.push(s);
    }
    let ingress = System::start(&deployment, data, Role::Ingress)
        .await
        .unwrap();
    let client = HttpClient::new(ingress.base_url().unwrap());
    let orders = ingress.catalogue.orders(ORDERS);
    let placed: BTreeSet<String> = place(&client, &orders, 8)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let up = started.elapsed();

    // Every order either settled without Seller, or is stuck for it; and
    // none is stuck before `stuck_after` has passed since its last event
    // (its last progress, a notice, comes after that event, and the
    // clock is read after the views were made).
    let stuck_at = Instant::now();
    let stuck_ms = i64::try_from(STUCK_AFTER.as_millis()).unwrap();
    let all = until(&monitor, "stuck or settled", |all| {
        let now = now_ms();
        for v in all {
            let last = v.events.iter().map(|e| e.at_ms).max().unwrap_or(i64::MIN);
            if now.saturating_sub(last) <= stuck_ms {
                assert_ne!(v.state, InstanceState::Stuck, "stuck early: {v:#?}");
            }
        }
        keys(all) == placed
            && all.iter().all(|v| {
                if approved(v) {
                    v.state == InstanceState::Stuck
                } else {
                    v.state == InstanceState::Failed
                }
            })
    })
    .await;
    let waited = stuck_at.elapsed();
    let stuck: Vec<&InstanceView> = all.iter().filter(|v| approved(v)).collect();
    assert!(!stuck.is_empty(), "some orders are paid: {all:#?}");
    assert!(
        stuck.len() < all.len(),
        "some orders are declined or sold out: {all:#?}"
    );
    for v in &stuck {
        assert!(
            v.reason
                .as_deref()
                .unwrap_or_default()
                .contains("no progress"),
            "{v:#?}"
        );
        assert!(
            v.waiting.iter().any(|w| w.participant == "Seller"
                && !w.join
                && w.events.iter().any(|e| e == "PaymentApproved")),
            "{v:#?}"
        );
        // Seller is the one the order waits for: Logistics' join waits
        // for what Seller would emit.
        assert!(
            v.waiting
                .iter()
                .filter(|w| w.participant != "Seller")
                .all(|w| w.join && w.events == ["ParcelPrepared"]),
            "{v:#?}"
        );
        assert!(v.violations.is_empty(), "{v:#?}");
    }
    // The stuck list is exactly those.
    let stuck = keys(stuck);
    let listed = monitor.instances(Some(InstanceState::Stuck), usize::MAX);
    assert_eq!(keys(&listed), stuck);
    let s = monitor.summary();
    assert_eq!(s.instances["stuck"], stuck.len() as u64, "{s:#?}");
    assert_eq!(
        s.instances["failed"],
        (all.len() - stuck.len()) as u64,
        "{s:#?}"
    );
    let seller = s
        .reactions
        .iter()
        .find(|r| r.participant == "Seller")
        .unwrap();
    assert_eq!(
        (seller.handled, seller.waiting, seller.stuck),
        (0, stuck.len() as u64, stuck.len() as u64),
        "{seller:?}"
    );

    // Seller starts: what waited for it completes.
    let seller_started = Instant::now();
    systems.push(
        System::start(&deployment, data, Role::Participant("Seller"))
            .await
            .unwrap(),
    );
    let all = until(&monitor, "settled", |all| {
        all.len() == placed.len()
            && all.iter().all(|v| {
                if approved(v) {
                    v.state == InstanceState::Succeeded
                } else {
                    v.state == InstanceState::Failed
                }
            })
    })
    .await;
    let settled = seller_started.elapsed();
    assert!(
        monitor
            .instances(Some(InstanceState::Stuck), usize::MAX)
            .is_empty(),
        "{all:#?}"
    );
    assert_eq!(keys(all.iter().filter(|v| approved(v))), stuck);
    for v in &all {
        assert!(v.waiting.is_empty(), "{v:#?}");
        assert!(v.violations.is_empty(), "{v:#?}");
    }
    let s = monitor.summary();
    assert_eq!(s.instances["succeeded"], stuck.len() as u64, "{s:#?}");
    assert_eq!(s.instances["stuck"] + s.instances["running"], 0, "{s:#?}");
    eprintln!(
        "{ORDERS} orders placed {up:?} after the start; {} stuck and the rest failed \
         {waited:?} later; settled {settled:?} after Seller started",
        stuck.len()
    );

    ingress.stop().await.unwrap();
    for s in systems {
        s.stop().await.unwrap();
    }
    monitor.shutdown().await;
    monitor_broker.close(Duration::from_secs(5)).await.unwrap();
}
