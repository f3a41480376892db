//! What a service counts of the deliveries it takes: received, and
//! redelivered (work a first holder took and lost).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Client, Emit, Reaction, ServiceDefinition, ServiceHandle, ServiceOptions, ServiceStats, Stores,
    Topics, Trigger,
};
use crate::broker::memory::MemoryBroker;
use crate::broker::{SharedBroker, SubscribeOptions, Subscription};
use crate::payload::Message;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Charge {
    cents: u64,
}
impl Message for Charge {
    const TYPE: &'static str = "Shop.Charge";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Paid {}
impl Message for Paid {
    const TYPE: &'static str = "Shop.Paid";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Packed {}
impl Message for Packed {
    const TYPE: &'static str = "Shop.Packed";
}

/// Short, so that a delivery held and forgotten comes again soon.
const ACK_WAIT: Duration = Duration::from_millis(300);

type Attempts = Arc<Mutex<Vec<(String, u32)>>>;

/// A reaction that notes each run's instance and attempt.
fn noting(name: &str, trigger: Trigger, attempts: Attempts) -> Reaction {
    Reaction::new(name.to_string(), trigger, move |ctx, _input| {
        let attempts = attempts.clone();
        async move {
            attempts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((ctx.instance_key().to_string(), ctx.attempt()));
            Ok(Emit::none())
        }
    })
}

/// A member of `group` that takes one delivery of `ty` and then neither
/// settles it nor keeps it alive, as a process killed or paused past the
/// ack wait would. Subscribing first, it makes the group, with a short
/// ack wait.
async fn first_holder(broker: &SharedBroker, group: &str, ty: &str) -> Box<dyn Subscription> {
    let mut options = SubscribeOptions::new(group, [Topics::default().for_type(ty)]);
    options.ack_wait = ACK_WAIT;
    broker.subscribe(options).await.unwrap()
}

async fn take_and_forget(holder: &mut Box<dyn Subscription>) -> Vec<crate::broker::Delivery> {
    let taken = tokio::time::timeout(Duration::from_secs(10), holder.next_batch(1))
        .await
        .expect("the first holder takes the event")
        .unwrap()
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempt(), 1);
    taken
}

async fn until(what: &str, service: &ServiceHandle, cond: impl Fn(&ServiceStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = service.stats();
        if cond(&s) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn options() -> ServiceOptions {
    ServiceOptions {
        ack_wait: ACK_WAIT,
        ..ServiceOptions::default()
    }
}

#[tokio::test]
async fn a_delivery_whose_first_holder_let_its_ack_wait_pass_counts_as_redelivered() {
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    let client = Client::new(broker.clone(), Topics::default(), "test");
    let mut holder = first_holder(&broker, "Payment", Charge::TYPE).await;
    client.send("order-1", Charge { cents: 5 }).await.unwrap();
    let forgotten = take_and_forget(&mut holder).await;

    let attempts: Attempts = Arc::default();
    let service = ServiceDefinition::new("Shop", "Payment")
        .reaction(noting(
            "charge",
            Trigger::any([Charge::TYPE]),
            attempts.clone(),
        ))
        .start(broker.clone(), Stores::memory(), options())
        .await
        .unwrap();
    until("the lapsed delivery is handled", &service, |s| {
        s.handled == 1
    })
    .await;
    // A first delivery is no redelivery.
    client.send("order-2", Charge { cents: 7 }).await.unwrap();
    until("the second event is handled", &service, |s| {
        s.handled == 2 && s.deliveries == 2
    })
    .await;
    let live = service.stats();
    assert!(live.received >= live.deliveries, "{live:?}");
    let stats = service.shutdown().await.unwrap();
    assert_eq!(
        (
            stats.received,
            stats.deliveries,
            stats.redelivered,
            stats.duplicates
        ),
        (2, 2, 1, 0),
        "{stats:?}"
    );
    assert!(stats.received >= stats.deliveries);
    assert_eq!(
        *attempts.lock().unwrap_or_else(|p| p.into_inner()),
        [("order-1".to_string(), 2), ("order-2".to_string(), 1)]
    );
    // The lapsed delivery, settled late by its first holder, changes
    // nothing.
    for d in forgotten {
        let _ = d.ack().await;
    }
    drop(holder);
}

/// A Shipping service whose one reaction joins `Paid` and `Packed`, noting
/// its runs in `attempts`.
async fn shipping(broker: &SharedBroker, attempts: &Attempts) -> ServiceHandle {
    ServiceDefinition::new("Shop", "Shipping")
        .reaction(noting(
            "ship",
            Trigger::all([Paid::TYPE, Packed::TYPE]),
            attempts.clone(),
        ))
        .start(broker.clone(), Stores::memory(), options())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_join_fired_by_a_lapsed_delivery_counts_as_redelivered() {
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    let client = Client::new(broker.clone(), Topics::default(), "test");
    // The first holder takes the arrival that completes the join.
    let mut holder = first_holder(&broker, "Shipping", Packed::TYPE).await;
    client.send("order-1", Packed {}).await.unwrap();
    let forgotten = take_and_forget(&mut holder).await;

    let attempts: Attempts = Arc::default();
    let service = shipping(&broker, &attempts).await;
    client.send("order-1", Paid {}).await.unwrap();
    until("the join fires", &service, |s| {
        s.handled == 1 && s.deliveries == 2
    })
    .await;
    let stats = service.shutdown().await.unwrap();
    assert_eq!(
        (
            stats.received,
            stats.deliveries,
            stats.join_waiting,
            stats.redelivered
        ),
        (2, 2, 1, 1),
        "{stats:?}"
    );
    assert_eq!(
        *attempts.lock().unwrap_or_else(|p| p.into_inner()),
        [("order-1".to_string(), 2)]
    );
    for d in forgotten {
        let _ = d.ack().await;
    }
    drop(holder);
}

#[tokio::test]
async fn a_join_arrival_stored_by_a_lapsed_delivery_counts_as_redelivered() {
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    let client = Client::new(broker.clone(), Topics::default(), "test");
    // The first holder takes an arrival that does not complete the join.
    let mut holder = first_holder(&broker, "Shipping", Paid::TYPE).await;
    client.send("order-1", Paid {}).await.unwrap();
    let forgotten = take_and_forget(&mut holder).await;

    let attempts: Attempts = Arc::default();
    let service = shipping(&broker, &attempts).await;
    until("the arrival is stored", &service, |s| s.join_waiting == 1).await;
    let stats = service.shutdown().await.unwrap();
    assert_eq!(
        (
            stats.received,
            stats.handled,
            stats.join_waiting,
            stats.redelivered
        ),
        (1, 0, 1, 1),
        "{stats:?}"
    );
    assert!(attempts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty());
    for d in forgotten {
        let _ = d.ack().await;
    }
    drop(holder);
}

/// The memory broker, reporting the native deduplication of NATS: first
/// deliveries are then handled on a look at the inbox, without a claim.
struct LooksFirst(MemoryBroker);

#[async_trait::async_trait]
impl crate::broker::Broker for LooksFirst {
    fn kind(&self) -> &'static str {
        "looks-first"
    }
    fn capabilities(&self) -> crate::broker::Capabilities {
        crate::broker::Capabilities {
            native_dedup: true,
            ..self.0.capabilities()
        }
    }
    async fn publish(
        &self,
        topic: &str,
        envelope: crate::envelope::Envelope,
    ) -> Result<(), crate::broker::BrokerError> {
        self.0.publish(topic, envelope).await
    }
    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, crate::broker::BrokerError> {
        self.0.subscribe(options).await
    }
    async fn observe(
        &self,
        options: crate::broker::ObserveOptions,
    ) -> Result<Box<dyn Subscription>, crate::broker::BrokerError> {
        self.0.observe(options).await
    }
    async fn health(&self) -> crate::broker::Health {
        self.0.health().await
    }
    async fn close(&self, drain_timeout: Duration) -> Result<(), crate::broker::BrokerError> {
        self.0.close(drain_timeout).await
    }
}

#[tokio::test]
async fn a_copy_of_an_event_this_process_still_holds_waits_for_it_and_runs_nothing() {
    let broker: SharedBroker = Arc::new(LooksFirst(MemoryBroker::new()));
    let client = Client::new(broker.clone(), Topics::default(), "test");
    let runs: Attempts = Arc::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (r, g) = (runs.clone(), gate.clone());
    // The first run waits at the gate, as one whose done mark is held up
    // by a connection cut.
    let reaction = Reaction::new(
        "charge".to_string(),
        Trigger::any([Charge::TYPE]),
        move |ctx, _input| {
            let (runs, gate) = (r.clone(), g.clone());
            async move {
                runs.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((ctx.instance_key().to_string(), ctx.attempt()));
                let _pass = gate.acquire().await;
                Ok(Emit::none())
            }
        },
    );
    let service = ServiceDefinition::new("Shop", "Payment")
        .reaction(reaction)
        .start(broker.clone(), Stores::memory(), options())
        .await
        .unwrap();
    let envelope = crate::envelope::Envelope::of("order-1", Charge { cents: 5 }).build();
    client.send_envelope(envelope.clone()).await.unwrap();
    until("the first copy runs", &service, |s| s.received == 1).await;
    while runs.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The broker hands the event out again while this process holds it.
    client.send_envelope(envelope).await.unwrap();
    until("the copy is taken", &service, |s| s.received >= 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.add_permits(10);
    until("the copy finds it done", &service, |s| s.duplicates == 1).await;
    let stats = service.shutdown().await.unwrap();
    assert_eq!(stats.handled, 1, "{stats:?}");
    assert_eq!(
        *runs.lock().unwrap_or_else(|p| p.into_inner()),
        [("order-1".to_string(), 1)]
    );
}

#[test]
fn stats_read_back_from_json_and_missing_fields_read_as_zero() {
    let stats = ServiceStats {
        received: 5,
        redelivered: 1,
        handled: 4,
        deliveries: 5,
        ..ServiceStats::default()
    };
    let json = serde_json::to_value(stats).unwrap();
    assert_eq!(json["received"], 5);
    assert_eq!(json["redelivered"], 1);
    assert_eq!(json["store_down"], false);
    assert_eq!(serde_json::from_value::<ServiceStats>(json).unwrap(), stats);
    let old: ServiceStats = serde_json::from_str(r#"{"handled": 3}"#).unwrap();
    assert_eq!((old.handled, old.received), (3, 0));
}
