//! What a service counts of the deliveries it takes (received, and
//! redelivered: work a first holder took and lost), and what it does with
//! copies of events it has handled or still holds.

use crate::sync::Recover;
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
                .locked()
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
        *attempts.locked(),
        [("order-1".to_string(), 2), ("order-2".to_string(), 1)]
    );
    // The lapsed delivery, settled late by its first holder, changes
    // nothing.
    for d in forgotten {
        let _ = d.ack().await;
    }
    drop(holder);
}

/// What a process paused between the done-mark and the ack leaves: the
/// event handled, its delivery not acknowledged. The copy that comes again
/// runs nothing and counts as a redelivery found done, which is how a
/// chaos campaign tells that the pause bit.
#[tokio::test]
async fn a_delivery_that_comes_again_to_find_its_work_done_counts_as_redelivered_done() {
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    let client = Client::new(broker.clone(), Topics::default(), "test");
    let stores = Stores::memory();
    let attempts: Attempts = Arc::default();
    let payment = |stores: Stores| {
        ServiceDefinition::new("Shop", "Payment")
            .reaction(noting(
                "charge",
                Trigger::any([Charge::TYPE]),
                attempts.clone(),
            ))
            .start(broker.clone(), stores, options())
    };
    let envelope = crate::envelope::Envelope::of("order-1", Charge { cents: 5 }).build();
    let first = payment(stores.clone()).await.unwrap();
    client.send_envelope(envelope.clone()).await.unwrap();
    until("the event is handled", &first, |s| s.handled == 1).await;
    first.shutdown().await.unwrap();
    // The same event again, taken by a holder that never acknowledges it,
    // as the paused process: the broker hands it out once more after the
    // ack wait, as a second attempt.
    let mut holder = first_holder(&broker, "Payment", Charge::TYPE).await;
    client.send_envelope(envelope).await.unwrap();
    let _forgotten = take_and_forget(&mut holder).await;
    let second = payment(stores).await.unwrap();
    until("the copy is settled", &second, |s| s.deliveries == 1).await;
    let stats = second.shutdown().await.unwrap();
    assert_eq!(
        (
            stats.handled,
            stats.duplicates,
            stats.redelivered,
            stats.redelivered_done
        ),
        (0, 1, 0, 1),
        "{stats:?}"
    );
    assert_eq!(*attempts.locked(), [("order-1".to_string(), 1)]);
    drop(holder);
}

/// What a process killed or paused between counting a `@bounded` firing
/// and its done-mark leaves: the firing counted and its events out, the
/// delivery neither marked done nor acknowledged. The copy that comes
/// again runs nothing and counts nothing, so the rightful rounds after it
/// still fit the bound (a chaos campaign found them dead-lettered as
/// "bound exceeded", the copy counted a second time).
#[tokio::test]
async fn a_bounded_firing_whose_delivery_comes_again_is_counted_once() {
    let broker: SharedBroker = Arc::new(MemoryBroker::new());
    let client = Client::new(broker.clone(), Topics::default(), "test");
    let stores = Stores::memory();
    let runs: Arc<Mutex<Vec<String>>> = Arc::default();
    let noted = runs.clone();
    let again = Reaction::new("again", Trigger::any([Charge::TYPE]), move |ctx, _input| {
        let noted = noted.clone();
        async move {
            noted.locked().push(ctx.event_id().to_string());
            Ok(Emit::none())
        }
    })
    .bounded(2);
    let round = |cents| crate::envelope::Envelope::of("order-1", Charge { cents }).build();
    let (first, second, third) = (round(1), round(2), round(3));
    let scope = super::reaction_scope("Shop", "Loop", "again");
    let firing = |e: &crate::envelope::Envelope| e.id().to_string();
    // As the killed process left it.
    stores
        .state
        .record_firing(&scope, "order-1", &firing(&first))
        .await
        .unwrap();
    let service = ServiceDefinition::new("Shop", "Loop")
        .reaction(again)
        .start(broker.clone(), stores.clone(), options())
        .await
        .unwrap();
    client.send_envelope(first.clone()).await.unwrap();
    until("the copy is settled", &service, |s| s.deliveries == 1).await;
    client.send_envelope(second.clone()).await.unwrap();
    until("the second round is settled", &service, |s| {
        s.deliveries == 2
    })
    .await;
    assert_eq!(
        *runs.locked(),
        [firing(&second)],
        "only the second round ran"
    );
    assert_eq!(
        stores
            .state
            .firings(&scope, "order-1", &firing(&second))
            .await
            .unwrap(),
        crate::store::Firings {
            count: 2,
            counted: true
        }
    );
    assert_eq!(
        stores
            .inbox
            .claim(&scope, first.id(), Duration::from_secs(30))
            .await
            .unwrap(),
        crate::store::Claim::Done,
        "the copy is marked done"
    );
    // The bound still holds for a third round.
    client.send_envelope(third).await.unwrap();
    until("the third round is settled", &service, |s| {
        s.deliveries == 3
    })
    .await;
    let stats = service.shutdown().await.unwrap();
    assert_eq!(
        (stats.handled, stats.duplicates, stats.dead_lettered),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(runs.locked().len(), 1);
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
    assert_eq!(*attempts.locked(), [("order-1".to_string(), 2)]);
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
    assert!(attempts.locked().is_empty());
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

/// A [`LooksFirst`] broker and a client on it.
fn looks_first() -> (SharedBroker, Client) {
    let broker: SharedBroker = Arc::new(LooksFirst(MemoryBroker::new()));
    let client = Client::new(broker.clone(), Topics::default(), "test");
    (broker, client)
}

#[tokio::test]
async fn a_copy_of_an_event_this_process_still_holds_waits_for_it_and_runs_nothing() {
    let (broker, client) = looks_first();
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
                runs.locked()
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
    while runs.locked().is_empty() {
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
    assert_eq!(*runs.locked(), [("order-1".to_string(), 1)]);
}

#[tokio::test]
async fn a_first_delivery_found_done_reports_its_completion_again() {
    let (broker, client) = looks_first();
    let watch = SubscribeOptions::new("watch", [Topics::default().progress("Shop")]);
    let mut notices = broker.subscribe(watch).await.unwrap();
    let runs: Attempts = Arc::default();
    let service = ServiceDefinition::new("Shop", "Payment")
        .reaction(noting("charge", Trigger::any([Charge::TYPE]), runs.clone()))
        .start(broker.clone(), Stores::memory(), options())
        .await
        .unwrap();
    let envelope = crate::envelope::Envelope::of("order-1", Charge { cents: 5 }).build();
    client.send_envelope(envelope.clone()).await.unwrap();
    until("the event is handled", &service, |s| s.handled == 1).await;
    // As a broker killed before it stored the notice and the delivery
    // count does: the event comes again as a first delivery, and only a
    // report from this copy tells trackers the reaction is done.
    client.send_envelope(envelope.clone()).await.unwrap();
    until("the copy finds it done", &service, |s| s.duplicates == 1).await;
    service.shutdown().await.unwrap();
    let mut reported = 0;
    while let Ok(Ok(Some(batch))) =
        tokio::time::timeout(Duration::from_millis(500), notices.next_batch(16)).await
    {
        for d in batch {
            let notice: super::notice::ProgressNotice = d.envelope().decode().unwrap();
            reported += notice
                .completions
                .iter()
                .filter(|c| c.event_id == *envelope.id())
                .count();
            d.ack().await.unwrap();
        }
    }
    assert_eq!(reported, 2, "the handling and the copy found done report");
    assert_eq!(runs.locked().len(), 1);
}

/// One join of one instance: its scope and instance key.
type JoinKey = (String, String);

/// Join slots as the NATS state store keeps them: it tells the arrival
/// that completed a join apart (which then fires without a claim), and
/// forgets a fired join's slots.
#[derive(Default)]
struct CompletingJoins {
    slots: Mutex<std::collections::HashMap<JoinKey, Vec<Option<crate::envelope::Envelope>>>>,
    fired: crate::store::MemoryStateStore,
}

#[async_trait::async_trait]
impl crate::store::StateStore for CompletingJoins {
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &crate::envelope::Envelope,
    ) -> Result<Option<Vec<crate::envelope::Envelope>>, crate::store::StoreError> {
        Ok(
            match self
                .join_arrival(scope, instance, slot, slots, envelope)
                .await?
            {
                crate::store::JoinArrival::Waiting => None,
                crate::store::JoinArrival::Completed(all)
                | crate::store::JoinArrival::Full { all, .. } => Some(all),
            },
        )
    }

    async fn join_arrival(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &crate::envelope::Envelope,
    ) -> Result<crate::store::JoinArrival, crate::store::StoreError> {
        let mut all = self.slots.locked();
        let join = all
            .entry((scope.to_string(), instance.to_string()))
            .or_insert_with(|| vec![None; slots]);
        let was_full = join.iter().all(Option::is_some);
        join[slot].get_or_insert_with(|| envelope.clone());
        let filled: Vec<_> = join.iter().flatten().cloned().collect();
        Ok(if filled.len() < slots {
            crate::store::JoinArrival::Waiting
        } else if was_full {
            crate::store::JoinArrival::Full {
                all: filled,
                completed_by_this: false,
                age: Some(Duration::from_secs(3600)),
            }
        } else {
            crate::store::JoinArrival::Completed(filled)
        })
    }

    async fn join_clear(
        &self,
        scope: &str,
        instance: &str,
    ) -> Result<(), crate::store::StoreError> {
        self.slots
            .locked()
            .remove(&(scope.to_string(), instance.to_string()));
        Ok(())
    }

    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<crate::store::Firings, crate::store::StoreError> {
        self.fired.firings(scope, instance, firing).await
    }

    async fn record_firing(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<u64, crate::store::StoreError> {
        self.fired.record_firing(scope, instance, firing).await
    }
}

#[tokio::test]
async fn a_join_whose_arrivals_come_again_as_first_deliveries_fires_once() {
    let (broker, client) = looks_first();
    let attempts: Attempts = Arc::default();
    let stores = Stores {
        state: Arc::new(CompletingJoins::default()),
        ..Stores::memory()
    };
    let service = ServiceDefinition::new("Shop", "Shipping")
        .reaction(noting(
            "ship",
            Trigger::all([Paid::TYPE, Packed::TYPE]),
            attempts.clone(),
        ))
        .start(broker.clone(), stores, options())
        .await
        .unwrap();
    let paid = crate::envelope::Envelope::of("order-1", Paid {}).build();
    let packed = crate::envelope::Envelope::of("order-1", Packed {}).build();
    client.send_envelope(paid.clone()).await.unwrap();
    client.send_envelope(packed.clone()).await.unwrap();
    until("the join fires", &service, |s| {
        s.handled == 1 && s.deliveries == 2
    })
    .await;
    // Both arrivals again, each as a first delivery: a broker killed
    // before it stored their delivery counts hands them out so.
    client.send_envelope(paid).await.unwrap();
    until("the first copy is settled", &service, |s| s.deliveries == 3).await;
    client.send_envelope(packed).await.unwrap();
    until("the second copy is settled", &service, |s| {
        s.deliveries == 4
    })
    .await;
    let stats = service.shutdown().await.unwrap();
    assert_eq!(stats.handled, 1, "{stats:?}");
    assert_eq!(*attempts.locked(), [("order-1".to_string(), 1)]);
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
