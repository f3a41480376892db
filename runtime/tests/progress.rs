//! Instance tracking across services, sinks included.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use choreo_runtime::broker::IntoSharedBroker;
use choreo_runtime::progress::{InstanceTracker, TerminalKind, Topology, TrackerOptions};
use choreo_runtime::service::{Emit, HandlerError, Reaction, ServiceDefinition, Trigger};
use choreo_runtime::{MemoryBroker, Message, SharedBroker};
use common::*;

fn orders() -> ServiceDefinition {
    ServiceDefinition::new("Shop", "Orders")
        .reaction(Reaction::new(
            "place",
            Trigger::any([OrderPlaced::TYPE]),
            |_c, input| async move {
                let o: OrderPlaced = input.decode()?;
                if o.amount == 0 {
                    return Err(HandlerError::rejected("empty order"));
                }
                Ok(Emit::one(PaymentApproved { amount: o.amount }))
            },
        ))
        .reaction(Reaction::new(
            "finish",
            Trigger::any([PaymentApproved::TYPE]),
            |_c, input| async move {
                let p: PaymentApproved = input.decode()?;
                Ok(if p.amount > 100 {
                    Emit::one(OrderFailed {
                        reason: "too much".into(),
                    })
                } else {
                    Emit::one(OrderCompleted {})
                })
            },
        ))
}

fn notification() -> ServiceDefinition {
    ServiceDefinition::new("Shop", "Notification").reaction(Reaction::new(
        "notify",
        Trigger::any([OrderCompleted::TYPE, OrderFailed::TYPE]),
        |_c, _i| async { Ok(Emit::none()) },
    ))
}

async fn track(broker: &SharedBroker) -> InstanceTracker {
    InstanceTracker::start(topology(), broker.clone(), TrackerOptions::default())
        .await
        .unwrap()
}

fn topology() -> Topology {
    Topology::new("Shop")
        .with_service(&orders())
        .with_service(&notification())
        .terminal(OrderCompleted::TYPE, TerminalKind::Success)
        .terminal(OrderFailed::TYPE, TerminalKind::Failure)
}

#[tokio::test]
async fn instances_settle_with_their_outcome_after_the_sink_ran() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let tracker = track(&broker).await;
    let mut settled = tracker.settled();
    let a = start(&broker, orders()).await;
    let b = start(&broker, notification()).await;
    let client = client(&broker);
    client
        .send("ok-1", OrderPlaced { amount: 10 })
        .await
        .unwrap();
    client
        .send("big-1", OrderPlaced { amount: 500 })
        .await
        .unwrap();
    let ok = tracker
        .wait_settled("ok-1", EVENTUALLY)
        .await
        .expect("ok-1 settles");
    assert_eq!(ok.outcome.as_ref().unwrap().kind, TerminalKind::Success);
    assert!(ok.pending.is_empty());
    let types: Vec<&str> = ok.events.iter().map(|e| e.ty.as_str()).collect();
    for t in [
        OrderPlaced::TYPE,
        PaymentApproved::TYPE,
        OrderCompleted::TYPE,
    ] {
        assert!(types.contains(&t), "{types:?}");
    }
    let big = tracker
        .wait_settled("big-1", EVENTUALLY)
        .await
        .expect("big-1 settles");
    assert_eq!(big.outcome.as_ref().unwrap().kind, TerminalKind::Failure);
    assert_eq!(big.outcome.as_ref().unwrap().event_type, OrderFailed::TYPE);
    let mut keys = vec![
        settled.recv().await.unwrap().key.to_string(),
        settled.recv().await.unwrap().key.to_string(),
    ];
    keys.sort();
    assert_eq!(
        keys,
        ["big-1", "ok-1"],
        "each instance announced once as it settles"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    tracker.shutdown().await;
}

#[tokio::test]
async fn a_sink_that_has_not_run_keeps_the_instance_pending() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let tracker = track(&broker).await;
    let a = start(&broker, orders()).await;
    let client = client(&broker);
    client
        .send("o-1", OrderPlaced { amount: 10 })
        .await
        .unwrap();
    eventually("the terminal event is seen", || {
        tracker.instance("o-1").is_some_and(|p| p.outcome.is_some())
    })
    .await;
    let p = tracker.instance("o-1").unwrap();
    assert!(
        !p.settled,
        "the notification sink has not handled the terminal event"
    );
    assert_eq!(p.pending.len(), 1);
    assert_eq!(p.pending[0].participant, "Notification");
    assert_eq!(p.pending[0].event_type, OrderCompleted::TYPE);
    // The sink comes up later and catches up from its group's backlog.
    let b = start(&broker, notification()).await;
    let settled = tracker
        .wait_settled("o-1", EVENTUALLY)
        .await
        .expect("settles once the sink ran");
    assert!(settled.pending.is_empty());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    tracker.shutdown().await;
}

#[tokio::test]
async fn a_dead_lettered_event_shows_in_the_instance() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let tracker = track(&broker).await;
    let a = start(&broker, orders()).await;
    client(&broker)
        .send("empty", OrderPlaced { amount: 0 })
        .await
        .unwrap();
    eventually("the dead letter is reported", || {
        tracker
            .instance("empty")
            .is_some_and(|p| !p.dead_letters.is_empty())
    })
    .await;
    let p = tracker.instance("empty").unwrap();
    assert!(
        p.dead_letters[0].reason.contains("empty order"),
        "{:?}",
        p.dead_letters
    );
    assert!(p.pending.is_empty() && p.outcome.is_none() && !p.settled);
    assert!(tracker
        .wait_settled("empty", Duration::from_millis(50))
        .await
        .is_none());
    a.shutdown().await.unwrap();
    tracker.shutdown().await;
}

#[tokio::test]
async fn every_instance_settles_once_when_every_event_is_delivered_twice() {
    let broker: SharedBroker = MemoryBroker::with_duplicates().into_shared();
    let tracker = track(&broker).await;
    let mut settled = tracker.settled();
    let a = start(&broker, orders()).await;
    let b = start(&broker, notification()).await;
    let client = client(&broker);
    for n in 0..200u64 {
        client
            .send(
                format!("o-{n}"),
                OrderPlaced {
                    amount: 1 + n % 150,
                },
            )
            .await
            .unwrap();
    }
    let mut keys = std::collections::HashSet::new();
    while keys.len() < 200 {
        let p = tokio::time::timeout(EVENTUALLY, settled.recv())
            .await
            .expect("instances settle")
            .unwrap();
        assert!(keys.insert(p.key.to_string()), "{} announced twice", p.key);
    }
    let failed = tracker
        .instances()
        .iter()
        .filter(|p| {
            p.outcome
                .as_ref()
                .is_some_and(|o| o.kind == TerminalKind::Failure)
        })
        .count();
    // The amount exceeds 100 (a failure) for n in 100..150.
    assert_eq!(failed, 50);
    assert_eq!(
        a.stats().handled,
        400,
        "each event handled once per reaction"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    tracker.shutdown().await;
}
