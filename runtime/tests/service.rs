//! Handler-level behaviour of the service machinery on the memory broker.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use choreo_runtime::broker::{dead_letter_topic, IntoSharedBroker, DLQ_REASON};
use choreo_runtime::service::{
    Emit, HandlerError, Reaction, RetryPolicy, ServiceDefinition, ServiceOptions, ServiceStats,
    Stores, Trigger,
};
use choreo_runtime::{Broker, Envelope, MemoryBroker, Message, Payload, SharedBroker};
use common::*;

type Calls = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// A shipping participant joining PaymentApproved & StockReserved.
fn shipping(calls: Calls) -> ServiceDefinition {
    ServiceDefinition::new("Shop", "Shipping").reaction(Reaction::new(
        "schedule",
        Trigger::all([PaymentApproved::TYPE, StockReserved::TYPE]),
        move |ctx, input| {
            let calls = calls.clone();
            async move {
                let types = input
                    .envelopes()
                    .iter()
                    .map(|e| e.ty().to_owned())
                    .collect();
                calls
                    .lock()
                    .unwrap()
                    .push((ctx.instance_key().to_owned(), types));
                let stock: StockReserved = input.decode()?;
                Ok(Emit::one(ShipmentScheduled {
                    reservation: stock.reservation,
                }))
            }
        },
    ))
}

#[tokio::test]
async fn join_fires_once_under_every_arrival_order_with_duplicates() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let calls: Calls = Arc::default();
    let service = start(&broker, shipping(calls.clone())).await;
    let client = client(&broker);
    // Every order of A, A, B, B (the second of each is the same event again).
    let orders = ["AABB", "ABAB", "ABBA", "BAAB", "BABA", "BBAA"];
    let mut expected_deliveries = 0;
    for (n, order) in orders.iter().enumerate() {
        let key = format!("order-{n}");
        let a = Envelope::of(key.clone(), PaymentApproved { amount: 5 }).build();
        let b = Envelope::of(
            key.clone(),
            StockReserved {
                reservation: n as u64,
            },
        )
        .build();
        for step in order.chars() {
            client
                .send_envelope(if step == 'A' { a.clone() } else { b.clone() })
                .await
                .unwrap();
            expected_deliveries += 1;
            // One step at a time, so the arrival order is the one written.
            eventually("the delivery is settled", || {
                service.stats().deliveries == expected_deliveries
            })
            .await;
        }
    }
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        orders.len(),
        "one firing per instance: {calls:?}"
    );
    for (key, types) in &calls {
        assert!(key.starts_with("order-"));
        assert_eq!(
            types,
            &[PaymentApproved::TYPE, StockReserved::TYPE],
            "declared order"
        );
    }
    let stats = service.shutdown().await.unwrap();
    assert_eq!(stats.handled, orders.len() as u64);
    assert_eq!(stats.dead_lettered, 0);
}

#[tokio::test]
async fn join_fires_once_when_everything_arrives_at_once_twice() {
    let broker: SharedBroker = MemoryBroker::with_duplicates().into_shared();
    let calls: Calls = Arc::default();
    let options = ServiceOptions {
        max_in_flight: 64,
        ..ServiceOptions::default()
    };
    let service = shipping(calls.clone())
        .start(broker.clone(), Stores::memory(), options)
        .await
        .unwrap();
    let client = client(&broker);
    let instances = 200;
    for n in 0..instances {
        let key = format!("order-{n}");
        let a = Envelope::of(key.clone(), PaymentApproved { amount: 5 }).build();
        let b = Envelope::of(key, StockReserved { reservation: n }).build();
        let (first, second) = if n % 2 == 0 { (a, b) } else { (b, a) };
        for e in [&first, &second, &first] {
            client.send_envelope(e.clone()).await.unwrap();
        }
    }
    // Three publishes per instance, each delivered twice.
    eventually("every delivery settled", || {
        service.stats().deliveries >= instances * 6
    })
    .await;
    let calls = calls.lock().unwrap().clone();
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for (k, _) in &calls {
        *per_key.entry(k.clone()).or_default() += 1;
    }
    assert_eq!(per_key.len(), instances as usize);
    assert!(
        per_key.values().all(|&c| c == 1),
        "a join fired twice: {per_key:?}"
    );
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_fired_join_leaves_no_slots_behind_and_a_waiting_one_keeps_them() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let state = Arc::new(Flaky::default());
    let calls: Calls = Arc::default();
    let service = shipping(calls.clone())
        .start(broker.clone(), state.stores(), ServiceOptions::default())
        .await
        .unwrap();
    let client = client(&broker);
    for n in 0..50 {
        let key = format!("order-{n}");
        client
            .send_envelope(Envelope::of(key.clone(), PaymentApproved { amount: 5 }).build())
            .await
            .unwrap();
        client
            .send_envelope(Envelope::of(key, StockReserved { reservation: n }).build())
            .await
            .unwrap();
    }
    // One instance gets only half of its join: it must keep waiting.
    client
        .send_envelope(Envelope::of("half", PaymentApproved { amount: 1 }).build())
        .await
        .unwrap();
    eventually("every delivery settled", || {
        service.stats().deliveries >= 101
    })
    .await;
    service.shutdown().await.unwrap();
    let mut cleared = state.cleared.lock().unwrap().clone();
    cleared.sort();
    let mut expected: Vec<String> = (0..50).map(|n| format!("order-{n}")).collect();
    expected.sort();
    assert_eq!(cleared, expected, "each fired join cleared once");
    let waiting = state.waiting.lock().unwrap().clone();
    assert_eq!(
        waiting,
        ["half".to_string()].into_iter().collect(),
        "only the half-filled join is kept"
    );
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Charge {
    cents: u64,
}
impl Message for Charge {
    const TYPE: &'static str = "Shop.Charge";
}

fn flaky_payment(
    attempts: Arc<Mutex<Vec<u32>>>,
    fail_first: u32,
    retry: Option<RetryPolicy>,
) -> ServiceDefinition {
    let mut reaction = Reaction::new("charge", Trigger::any([Charge::TYPE]), move |ctx, input| {
        let attempts = attempts.clone();
        async move {
            let charge: Charge = input.decode()?;
            attempts.lock().unwrap().push(ctx.attempt());
            if ctx.attempt() <= fail_first {
                return Err(HandlerError::failed("card processor unavailable"));
            }
            Ok(Emit::one(PaymentApproved {
                amount: charge.cents,
            }))
        }
    });
    if let Some(p) = retry {
        reaction = reaction.retry(p);
    }
    ServiceDefinition::new("Shop", "Payment").reaction(reaction)
}

#[tokio::test(start_paused = true)]
async fn retries_with_backoff_then_succeed() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let service = start(
        &broker,
        flaky_payment(
            attempts.clone(),
            2,
            Some(RetryPolicy::new(3, Duration::from_millis(200))),
        ),
    )
    .await;
    let mut approved = reader(&broker, "probe", PaymentApproved::TYPE).await;
    let started = tokio::time::Instant::now();
    let client = client(&broker);
    let id = client.send("order-1", Charge { cents: 700 }).await.unwrap();
    let out = next(&mut approved).await;
    // Two failures: back-off of 200 ms then 400 ms (plus jitter) before success.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(attempts.lock().unwrap().clone(), vec![1, 2, 3]);
    assert_eq!(out.causation_id(), Some(&id));
    let stats = service.shutdown().await.unwrap();
    assert_eq!(
        (stats.handled, stats.failures, stats.dead_lettered),
        (1, 2, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_go_to_the_dead_letter_topic() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let service = start(
        &broker,
        flaky_payment(
            attempts.clone(),
            u32::MAX,
            Some(RetryPolicy::new(2, Duration::from_millis(100))),
        ),
    )
    .await;
    let mut dlq = reader(&broker, "probe", &dead_letter_topic(Charge::TYPE)).await;
    let client = client(&broker);
    let id = client.send("order-1", Charge { cents: 1 }).await.unwrap();
    let dead = next(&mut dlq).await;
    assert_eq!(dead.id(), &id);
    let reason = dead.extension(DLQ_REASON).unwrap();
    assert!(
        reason.contains("charge failed after 3 attempts"),
        "{reason}"
    );
    assert!(reason.contains("card processor unavailable"), "{reason}");
    assert_eq!(attempts.lock().unwrap().clone(), vec![1, 2, 3]);
    let stats = service.shutdown().await.unwrap();
    assert_eq!((stats.handled, stats.dead_lettered), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failure_without_retry_is_dead_lettered_at_once() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let service = start(&broker, flaky_payment(attempts.clone(), u32::MAX, None)).await;
    let mut dlq = reader(&broker, "probe", &dead_letter_topic(Charge::TYPE)).await;
    client(&broker)
        .send("order-1", Charge { cents: 1 })
        .await
        .unwrap();
    let dead = next(&mut dlq).await;
    assert_eq!(
        dead.extension(DLQ_REASON),
        Some("reaction charge failed: handler failed: card processor unavailable")
    );
    assert_eq!(attempts.lock().unwrap().len(), 1);
    service.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_handler_running_past_its_timeout_fails_and_is_retried() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let slow = Reaction::new(
        "charge",
        Trigger::any([Charge::TYPE]),
        move |ctx, _input| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(ctx.attempt());
                if ctx.attempt() == 1 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Ok(Emit::one(PaymentApproved { amount: 1 }))
            }
        },
    )
    .timeout(Duration::from_millis(250))
    .retry(RetryPolicy::new(1, Duration::from_millis(10)));
    let service = start(
        &broker,
        ServiceDefinition::new("Shop", "Payment").reaction(slow),
    )
    .await;
    let mut approved = reader(&broker, "probe", PaymentApproved::TYPE).await;
    let started = tokio::time::Instant::now();
    client(&broker)
        .send("order-1", Charge { cents: 1 })
        .await
        .unwrap();
    next(&mut approved).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the slow attempt was cut off"
    );
    assert_eq!(attempts.lock().unwrap().clone(), vec![1, 2]);
    let stats = service.shutdown().await.unwrap();
    assert_eq!((stats.handled, stats.failures), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_without_retry_is_dead_lettered_with_the_reason() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let slow = Reaction::new(
        "charge",
        Trigger::any([Charge::TYPE]),
        |_ctx, _input| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Emit::none())
        },
    )
    .timeout(Duration::from_millis(100));
    let service = start(
        &broker,
        ServiceDefinition::new("Shop", "Payment").reaction(slow),
    )
    .await;
    let mut dlq = reader(&broker, "probe", &dead_letter_topic(Charge::TYPE)).await;
    client(&broker)
        .send("order-1", Charge { cents: 1 })
        .await
        .unwrap();
    let reason = next(&mut dlq)
        .await
        .extension(DLQ_REASON)
        .unwrap()
        .to_owned();
    assert!(reason.contains("timed out after 100ms"), "{reason}");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_payload_is_dead_lettered_and_the_service_keeps_serving() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let service = start(&broker, flaky_payment(attempts.clone(), 0, None)).await;
    let mut dlq = reader(&broker, "probe-dlq", &dead_letter_topic(Charge::TYPE)).await;
    let mut approved = reader(&broker, "probe", PaymentApproved::TYPE).await;
    let client = client(&broker);
    let bad = Envelope::builder(Charge::TYPE, "order-1")
        .payload(Payload::json(&br#"{"cents":"twelve"}"#[..]))
        .build();
    client.send_envelope(bad.clone()).await.unwrap();
    let not_json = Envelope::builder(Charge::TYPE, "order-2")
        .payload(Payload::json(&b"\xff{not json"[..]))
        .build();
    client.send_envelope(not_json.clone()).await.unwrap();
    client.send("order-3", Charge { cents: 12 }).await.unwrap();
    let first = next(&mut dlq).await;
    assert_eq!(first.id(), bad.id());
    let reason = first.extension(DLQ_REASON).unwrap();
    assert!(
        reason.contains("decode error") && reason.contains("invalid type"),
        "{reason}"
    );
    let second = next(&mut dlq).await;
    assert_eq!(second.id(), not_json.id());
    assert_eq!(
        &second.payload().to_json().unwrap()[..],
        b"\xff{not json",
        "the bytes are kept"
    );
    let ok = next(&mut approved).await;
    assert_eq!(ok.correlation_id(), "order-3");
    assert_eq!(ok.decode::<PaymentApproved>().unwrap().amount, 12);
    let stats = service.shutdown().await.unwrap();
    assert_eq!((stats.handled, stats.dead_lettered), (1, 2));
}

#[tokio::test]
async fn bounded_reaction_dead_letters_past_its_bound() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let fired = Arc::new(Mutex::new(0u32));
    let count = fired.clone();
    let retry_loop = Reaction::new(
        "again",
        Trigger::any([Charge::TYPE]),
        move |_ctx, _input| {
            let count = count.clone();
            async move {
                *count.lock().unwrap() += 1;
                Ok(Emit::none())
            }
        },
    )
    .bounded(2);
    let service = start(
        &broker,
        ServiceDefinition::new("Shop", "Loop").reaction(retry_loop),
    )
    .await;
    let mut dlq = reader(&broker, "probe", &dead_letter_topic(Charge::TYPE)).await;
    let client = client(&broker);
    for _ in 0..3 {
        client.send("order-1", Charge { cents: 1 }).await.unwrap();
    }
    // Another instance has its own count.
    client.send("order-2", Charge { cents: 1 }).await.unwrap();
    let dead = next(&mut dlq).await;
    assert_eq!(dead.correlation_id(), "order-1");
    assert_eq!(dead.extension(DLQ_REASON), Some("bound exceeded"));
    eventually("all settled", || service.stats().deliveries == 4).await;
    assert_eq!(*fired.lock().unwrap(), 3);
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn emitted_events_carry_key_causation_trace_version_and_derived_ids() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let service = start(
        &broker,
        flaky_payment(Arc::default(), 0, None).version("2.1.0"),
    )
    .await;
    let mut approved = reader(&broker, "probe", PaymentApproved::TYPE).await;
    let command = Envelope::of("order-9", Charge { cents: 3 }).build();
    client(&broker)
        .send_envelope(command.clone())
        .await
        .unwrap();
    let out = next(&mut approved).await;
    assert_eq!(out.correlation_id(), "order-9");
    assert_eq!(out.causation_id(), Some(command.id()));
    assert_eq!(out.source(), "Shop/Payment");
    assert_eq!(out.choreo_version(), Some("2.1.0"));
    let (tin, tout) = (command.traceparent().unwrap(), out.traceparent().unwrap());
    assert_eq!(tout.trace_id, tin.trace_id, "the trace continues");
    assert_ne!(tout.parent_id, tin.parent_id);
    assert_eq!(
        out.id(),
        &choreo_runtime::EventId::derived(command.id(), "charge", 0)
    );
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_event_delivered_twice_charges_once() {
    let broker: SharedBroker = MemoryBroker::with_duplicates().into_shared();
    let charges: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let seen = charges.clone();
    let payment = ServiceDefinition::new("Shop", "Payment").reaction(Reaction::new(
        "charge",
        Trigger::any([OrderPlaced::TYPE]),
        move |ctx, input| {
            let seen = seen.clone();
            async move {
                let order: OrderPlaced = input.decode()?;
                *seen
                    .lock()
                    .unwrap()
                    .entry(ctx.instance_key().to_owned())
                    .or_default() += 1;
                Ok(Emit::one(PaymentApproved {
                    amount: order.amount,
                }))
            }
        },
    ));
    let completed = Arc::new(Mutex::new(0u32));
    let done = completed.clone();
    let orders = ServiceDefinition::new("Shop", "Orders").reaction(Reaction::new(
        "complete",
        Trigger::any([PaymentApproved::TYPE]),
        move |_ctx, _input| {
            let done = done.clone();
            async move {
                *done.lock().unwrap() += 1;
                Ok(Emit::one(OrderCompleted {}))
            }
        },
    ));
    let a = start(&broker, payment).await;
    let b = start(&broker, orders).await;
    let client = client(&broker);
    for n in 0..500u64 {
        client
            .send(format!("order-{n}"), OrderPlaced { amount: n })
            .await
            .unwrap();
    }
    eventually("every order completed", || {
        *completed.lock().unwrap() == 500
    })
    .await;
    eventually("every duplicate recognised", || {
        a.stats().duplicates == 500 && b.stats().duplicates == 500
    })
    .await;
    let charges = charges.lock().unwrap().clone();
    assert_eq!(charges.len(), 500);
    assert!(charges.values().all(|&c| c == 1), "double charge");
    assert_eq!(*completed.lock().unwrap(), 500);
    assert_eq!(a.shutdown().await.unwrap().duplicates, 500);
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_handler_is_a_failure_not_a_crash() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let boom = Reaction::new(
        "charge",
        Trigger::any([Charge::TYPE]),
        |_ctx, input| async move {
            let c: Charge = input.decode()?;
            if c.cents == 0 {
                panic!("zero cents");
            }
            Ok(Emit::one(PaymentApproved { amount: c.cents }))
        },
    );
    let service = start(
        &broker,
        ServiceDefinition::new("Shop", "Payment").reaction(boom),
    )
    .await;
    let mut dlq = reader(&broker, "probe-dlq", &dead_letter_topic(Charge::TYPE)).await;
    let mut approved = reader(&broker, "probe", PaymentApproved::TYPE).await;
    let client = client(&broker);
    client.send("order-1", Charge { cents: 0 }).await.unwrap();
    client.send("order-2", Charge { cents: 5 }).await.unwrap();
    let reason = next(&mut dlq)
        .await
        .extension(DLQ_REASON)
        .unwrap()
        .to_owned();
    assert!(reason.contains("handler panicked: zero cents"), "{reason}");
    assert_eq!(next(&mut approved).await.correlation_id(), "order-2");
    service.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restarted_service_loses_nothing_and_repeats_nothing() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let stores = Stores::memory();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let first = flaky_payment(attempts.clone(), 0, None)
        .start(broker.clone(), stores.clone(), ServiceOptions::default())
        .await
        .unwrap();
    let client = client(&broker);
    for n in 0..200 {
        client
            .send(format!("o{n}"), Charge { cents: n })
            .await
            .unwrap();
    }
    // Stop mid-stream: what it took is finished, the rest stays queued.
    let before = first.shutdown().await.unwrap();
    let second = flaky_payment(attempts.clone(), 0, None)
        .start(broker.clone(), stores, ServiceOptions::default())
        .await
        .unwrap();
    eventually("every charge handled", || {
        before.handled + second.stats().handled == 200
    })
    .await;
    assert_eq!(
        attempts.lock().unwrap().len(),
        200,
        "no charge handled twice"
    );
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn closing_the_broker_drains_through_running_services() {
    let broker = MemoryBroker::new();
    let shared: SharedBroker = broker.clone().into_shared();
    let service = start(&shared, flaky_payment(Arc::default(), 0, None)).await;
    let mut approved = reader(&shared, "probe", PaymentApproved::TYPE).await;
    let client = client(&shared);
    for n in 0..50 {
        client
            .send(format!("o{n}"), Charge { cents: n })
            .await
            .unwrap();
    }
    let reading = tokio::spawn(async move {
        let mut n = 0;
        while let Ok(Some(batch)) = approved.next_batch(64).await {
            n += batch.len();
            choreo_runtime::broker::settle_all(
                batch
                    .into_iter()
                    .map(|d| (d, choreo_runtime::broker::Settlement::Ack)),
            )
            .await
            .unwrap();
        }
        n
    });
    broker.close(EVENTUALLY).await.unwrap();
    let stats = service.shutdown().await.unwrap();
    assert_eq!(
        stats.handled, 50,
        "close drained every command through the service"
    );
    assert_eq!(
        reading.await.unwrap(),
        50,
        "and every outcome reached its reader"
    );
    assert!(client.send("late", Charge { cents: 1 }).await.is_err());
}

/// A memory broker whose first `failures` batch publishes fail with
/// `error` (with `only`, the batches to a topic that holds it; with
/// `singles`, single publishes instead, each counted in `tries`).
struct FailingBatches {
    inner: MemoryBroker,
    failures: std::sync::atomic::AtomicU32,
    error: choreo_runtime::BrokerError,
    only: Option<&'static str>,
    singles: bool,
    tries: std::sync::atomic::AtomicU32,
}

impl FailingBatches {
    /// Whether this call fails (one failure used up if so).
    fn fails(&self, chosen: bool) -> bool {
        use std::sync::atomic::Ordering;
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 && chosen {
            self.failures.store(left - 1, Ordering::SeqCst);
            return true;
        }
        false
    }
}

#[async_trait::async_trait]
impl Broker for FailingBatches {
    fn kind(&self) -> &'static str {
        "failing-batches"
    }
    fn capabilities(&self) -> choreo_runtime::Capabilities {
        self.inner.capabilities()
    }
    async fn publish(
        &self,
        topic: &str,
        envelope: Envelope,
    ) -> Result<(), choreo_runtime::BrokerError> {
        if self.singles {
            self.tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.fails(true) {
                return Err(self.error.clone());
            }
        }
        self.inner.publish(topic, envelope).await
    }
    async fn publish_batch(
        &self,
        messages: Vec<(choreo_runtime::SharedStr, Envelope)>,
    ) -> Result<(), choreo_runtime::BrokerError> {
        let chosen = !self.singles
            && self
                .only
                .is_none_or(|o| messages.iter().any(|(t, _)| t.contains(o)));
        if self.fails(chosen) {
            return Err(self.error.clone());
        }
        self.inner.publish_batch(messages).await
    }
    async fn subscribe(
        &self,
        options: choreo_runtime::SubscribeOptions,
    ) -> Result<Box<dyn choreo_runtime::Subscription>, choreo_runtime::BrokerError> {
        self.inner.subscribe(options).await
    }
    async fn observe(
        &self,
        options: choreo_runtime::ObserveOptions,
    ) -> Result<Box<dyn choreo_runtime::Subscription>, choreo_runtime::BrokerError> {
        self.inner.observe(options).await
    }
    async fn health(&self) -> choreo_runtime::broker::Health {
        self.inner.health().await
    }
    async fn close(&self, drain_timeout: Duration) -> Result<(), choreo_runtime::BrokerError> {
        self.inner.close(drain_timeout).await
    }
}

/// Sends one charge to a payment service whose first `failures` outcome
/// publishes fail with `error`; the handler's attempts and the stats.
async fn charge_with_failing_publishes(
    failures: u32,
    error: choreo_runtime::BrokerError,
) -> (Vec<u32>, ServiceStats) {
    let broker: SharedBroker = Arc::new(FailingBatches {
        inner: MemoryBroker::new(),
        failures: failures.into(),
        error,
        only: None,
        singles: false,
        tries: 0.into(),
    });
    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let service = start(&broker, flaky_payment(attempts.clone(), 0, None)).await;
    let mut approved = reader(&broker, "probe", PaymentApproved::TYPE).await;
    let mut dead = reader(&broker, "probe-dlq", &dead_letter_topic(Charge::TYPE)).await;
    client(&broker)
        .send("order-1", Charge { cents: 7 })
        .await
        .unwrap();
    let out = next(&mut approved).await;
    assert_eq!(out.decode::<PaymentApproved>().unwrap().amount, 7);
    let stats = service.shutdown().await.unwrap();
    let nothing = tokio::time::timeout(Duration::from_secs(5), dead.next_batch(1)).await;
    assert!(nothing.is_err(), "nothing was dead-lettered");
    let attempts = attempts.lock().unwrap().clone();
    (attempts, stats)
}

#[tokio::test(start_paused = true)]
async fn events_whose_emissions_were_refused_come_again() {
    // The first two publishes of the outcome are refused (no waiting
    // mends that): the charge is not done, comes again, and its outcome
    // goes out on the third delivery.
    let refused = choreo_runtime::BrokerError::Other("message too large".into());
    let (attempts, stats) = charge_with_failing_publishes(2, refused).await;
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!((stats.dead_lettered, stats.deliveries), (0, 3));
}

#[tokio::test(start_paused = true)]
async fn emissions_are_kept_through_a_broker_outage_and_the_handler_runs_once() {
    // Five publishes fail as the broker is unreachable: the handler's
    // outcome is kept and published once it is back.
    let down = choreo_runtime::BrokerError::Unavailable("connection reset".into());
    let (attempts, stats) = charge_with_failing_publishes(5, down).await;
    assert_eq!(attempts, [1], "the handler ran once");
    assert_eq!(
        (stats.dead_lettered, stats.deliveries, stats.broker_outages),
        (0, 1, 1),
        "{stats:?}"
    );
    assert!(!stats.broker_down);
}

/// A broker whose first `failures` single publishes fail with `error`.
fn failing_publishes(failures: u32, error: choreo_runtime::BrokerError) -> Arc<FailingBatches> {
    Arc::new(FailingBatches {
        inner: MemoryBroker::new(),
        failures: failures.into(),
        error,
        only: None,
        singles: true,
        tries: 0.into(),
    })
}

#[tokio::test(start_paused = true)]
async fn a_command_is_sent_again_through_a_broker_outage_under_its_own_id() {
    // Found by a chaos campaign: a command whose publish failed in a
    // broker restart was answered 503 at once; the driver, as any client,
    // placed it again under a new key, and where the first had been
    // stored after all, one delivery became two.
    use std::sync::atomic::Ordering;
    let down = choreo_runtime::BrokerError::Unavailable("connection reset".into());
    let broker = failing_publishes(4, down);
    let shared: SharedBroker = broker.clone();
    let mut charges = reader(&shared, "probe", Charge::TYPE).await;
    let id = client(&shared)
        .send("order-1", Charge { cents: 7 })
        .await
        .unwrap();
    let got = next(&mut charges).await;
    assert_eq!(got.id(), &id, "one envelope, sent again as it was");
    assert_eq!(broker.tries.load(Ordering::SeqCst), 5);

    // A refusal no waiting mends comes back at once; an outage past the
    // client's patience comes back once that is over.
    let refused = choreo_runtime::BrokerError::Other("message too large".into());
    let broker = failing_publishes(1, refused);
    let shared: SharedBroker = broker.clone();
    assert!(client(&shared)
        .send("o", Charge { cents: 1 })
        .await
        .is_err());
    assert_eq!(broker.tries.load(Ordering::SeqCst), 1);
    let down = choreo_runtime::BrokerError::Unavailable("connection refused".into());
    let broker = failing_publishes(u32::MAX, down);
    let shared: SharedBroker = broker.clone();
    let started = tokio::time::Instant::now();
    let patient = client(&shared).with_patience(Duration::from_secs(3));
    assert!(patient.send("o", Charge { cents: 1 }).await.is_err());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_secs(3),
        "{waited:?}"
    );
}

/// Sends one charge to a payment service whose first `failures` progress
/// notices are refused with `error`: the notice of the charge reaches the
/// progress topic all the same (a tracker sees the reaction complete),
/// and the handler ran once.
async fn notice_through_failing_publishes(failures: u32, error: choreo_runtime::BrokerError) {
    let broker: SharedBroker = Arc::new(FailingBatches {
        inner: MemoryBroker::new(),
        failures: failures.into(),
        error,
        only: Some("choreo-progress"),
        singles: false,
        tries: 0.into(),
    });
    let attempts: Arc<Mutex<Vec<u32>>> = Arc::default();
    let service = start(&broker, flaky_payment(attempts.clone(), 0, None)).await;
    let topic = choreo_runtime::service::Topics::default().progress("Shop");
    let mut notices = reader(&broker, "probe", &topic).await;
    let id = client(&broker)
        .send("order-1", Charge { cents: 7 })
        .await
        .unwrap();
    let notice = next(&mut notices)
        .await
        .decode::<choreo_runtime::progress::ProgressNotice>()
        .unwrap();
    assert!(
        notice.completions.iter().any(|c| c.event_id == id),
        "{notice:?}"
    );
    service.shutdown().await.unwrap();
    assert_eq!(
        attempts.lock().unwrap().clone(),
        [1],
        "the handler ran once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_progress_notice_is_kept_through_a_broker_outage() {
    // Found by a chaos campaign: during a broker restart the notice was
    // given up on while the delivery was acked, and the order, ended,
    // never settled for its tracker.
    let down = choreo_runtime::BrokerError::Unavailable("connection reset".into());
    notice_through_failing_publishes(5, down).await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_progress_notice_brings_its_delivery_back_to_report_it() {
    let refused = choreo_runtime::BrokerError::Other("message too large".into());
    notice_through_failing_publishes(1, refused).await;
}

/// Memory stores that fail every call while `down` is set, as a server's
/// stores do while it restarts (`done_marks_down` fails only the
/// done-marks), and remember which joins waited and which were cleared.
#[derive(Default)]
struct Flaky {
    inbox: choreo_runtime::store::MemoryInbox,
    state: choreo_runtime::store::MemoryStateStore,
    down: std::sync::atomic::AtomicBool,
    done_marks_down: std::sync::atomic::AtomicBool,
    cleared: Mutex<Vec<String>>,
    waiting: Mutex<std::collections::HashSet<String>>,
}

struct FlakyInbox(Arc<Flaky>);
struct FlakyState(Arc<Flaky>);

type StoreResult<T> = Result<T, choreo_runtime::store::StoreError>;

impl Flaky {
    fn check(&self) -> StoreResult<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(choreo_runtime::store::StoreError::Backend(
                "connection refused".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn stores(self: &Arc<Self>) -> Stores {
        Stores::new(
            Arc::new(FlakyInbox(self.clone())),
            Arc::new(FlakyState(self.clone())),
            "flaky memory",
        )
    }
}

#[async_trait::async_trait]
impl choreo_runtime::store::InboxStore for FlakyInbox {
    async fn claim_many(
        &self,
        scope: &str,
        ids: &[choreo_runtime::EventId],
        lease: Duration,
    ) -> StoreResult<Vec<choreo_runtime::store::Claim>> {
        self.0.check()?;
        self.0.inbox.claim_many(scope, ids, lease).await
    }
    async fn complete_many(&self, scope: &str, ids: &[choreo_runtime::EventId]) -> StoreResult<()> {
        self.0.check()?;
        if self
            .0
            .done_marks_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(choreo_runtime::store::StoreError::Backend(
                "timed out".into(),
            ));
        }
        self.0.inbox.complete_many(scope, ids).await
    }
    async fn release_many(&self, scope: &str, ids: &[choreo_runtime::EventId]) -> StoreResult<()> {
        self.0.check()?;
        self.0.inbox.release_many(scope, ids).await
    }
}

#[async_trait::async_trait]
impl choreo_runtime::store::StateStore for FlakyState {
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> StoreResult<Option<Vec<Envelope>>> {
        self.0.check()?;
        self.0.waiting.lock().unwrap().insert(instance.to_owned());
        self.0
            .state
            .join_arrive(scope, instance, slot, slots, envelope)
            .await
    }
    async fn join_clear(&self, scope: &str, instance: &str) -> StoreResult<()> {
        self.0.check()?;
        self.0.cleared.lock().unwrap().push(instance.to_owned());
        self.0.waiting.lock().unwrap().remove(instance);
        self.0.state.join_clear(scope, instance).await
    }
    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> StoreResult<choreo_runtime::store::Firings> {
        self.0.check()?;
        self.0.state.firings(scope, instance, firing).await
    }
    async fn record_firing(&self, scope: &str, instance: &str, firing: &str) -> StoreResult<u64> {
        self.0.check()?;
        self.0.state.record_firing(scope, instance, firing).await
    }
}

/// A reaction without `@retry` that counts its runs per event, taking
/// `pause` to run (none: it finishes on its first poll).
fn charge(runs: Arc<Mutex<HashMap<String, u32>>>, pause: Duration) -> Reaction {
    Reaction::new(
        "charge",
        Trigger::any([OrderPlaced::TYPE]),
        move |ctx, _input| {
            let runs = runs.clone();
            async move {
                *runs
                    .lock()
                    .unwrap()
                    .entry(ctx.event_id().to_string())
                    .or_default() += 1;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Ok(Emit::none())
            }
        },
    )
}

/// Payment with [`charge`], at once.
fn charging(runs: Arc<Mutex<HashMap<String, u32>>>) -> ServiceDefinition {
    ServiceDefinition::new("Shop", "Payment").reaction(charge(runs, Duration::ZERO))
}

#[tokio::test]
async fn a_store_outage_holds_deliveries_and_loses_or_repeats_nothing() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let flaky = Arc::new(Flaky::default());
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let joins: Calls = Arc::default();
    let payment = charging(runs.clone())
        .start(broker.clone(), flaky.stores(), ServiceOptions::default())
        .await
        .unwrap();
    let shipping = shipping(joins.clone())
        .start(broker.clone(), flaky.stores(), ServiceOptions::default())
        .await
        .unwrap();
    let client = client(&broker);

    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    for n in 0..20 {
        let key = format!("order-{n}");
        client
            .send_envelope(Envelope::of(key.clone(), OrderPlaced { amount: n }).build())
            .await
            .unwrap();
        client
            .send_envelope(Envelope::of(key.clone(), PaymentApproved { amount: n }).build())
            .await
            .unwrap();
        client
            .send_envelope(Envelope::of(key, StockReserved { reservation: n }).build())
            .await
            .unwrap();
    }
    eventually("both services notice the outage", || {
        payment.stats().store_down && shipping.stats().store_down
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Held: nothing handled, nothing failed, nothing dead-lettered.
    for service in [&payment, &shipping] {
        let stats = service.stats();
        assert_eq!(
            (stats.handled, stats.failures, stats.dead_lettered),
            (0, 0, 0),
            "{stats:?}"
        );
        assert!(
            matches!(
                service.health(),
                choreo_runtime::broker::Health::Degraded(_)
            ),
            "{:?}",
            service.health()
        );
    }

    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    eventually("every event is handled once the stores are back", || {
        payment.stats().handled == 20 && shipping.stats().handled == 20
    })
    .await;
    for service in [&payment, &shipping] {
        let stats = service.stats();
        assert_eq!((stats.failures, stats.dead_lettered), (0, 0), "{stats:?}");
        assert_eq!(stats.store_outages, 1, "one outage, logged once: {stats:?}");
        assert!(!stats.store_down);
        assert_eq!(service.health(), choreo_runtime::broker::Health::Healthy);
    }
    assert!(runs.lock().unwrap().values().all(|&n| n == 1));
    assert_eq!(runs.lock().unwrap().len(), 20);
    assert_eq!(joins.lock().unwrap().len(), 20, "each join fired once");
    payment.shutdown().await.unwrap();
    shipping.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_done_mark_outage_after_the_handler_ran_does_not_run_it_again() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let flaky = Arc::new(Flaky::default());
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let payment = charging(runs.clone())
        .start(broker.clone(), flaky.stores(), ServiceOptions::default())
        .await
        .unwrap();
    let client = client(&broker);
    flaky
        .done_marks_down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let event = Envelope::of("order-1", OrderPlaced { amount: 5 }).build();
    client.send_envelope(event.clone()).await.unwrap();
    eventually("the handler ran and the done-mark waits", || {
        runs.lock().unwrap().len() == 1 && payment.stats().store_down
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        payment.stats().deliveries,
        0,
        "not settled before its done-mark"
    );
    flaky
        .done_marks_down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    eventually("settled once the done-mark is stored", || {
        payment.stats().deliveries == 1
    })
    .await;
    // The same event again is a duplicate: the handler does not run again.
    client.send_envelope(event).await.unwrap();
    eventually("the duplicate is recognised", || {
        payment.stats().duplicates == 1
    })
    .await;
    assert_eq!(
        runs.lock().unwrap().values().copied().collect::<Vec<_>>(),
        [1]
    );
    let stats = payment.shutdown().await.unwrap();
    assert_eq!((stats.failures, stats.dead_lettered), (0, 0));
}

#[tokio::test]
async fn an_outage_longer_than_the_ack_wait_uses_up_no_attempt() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let flaky = Arc::new(Flaky::default());
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    // Two replicas: a delivery that lapsed would go to the other one.
    let options = || ServiceOptions {
        ack_wait: Duration::from_secs(1),
        max_deliveries: 2,
        ..ServiceOptions::default()
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(
            charging(runs.clone())
                .start(broker.clone(), flaky.stores(), options())
                .await
                .unwrap(),
        );
    }
    let client = client(&broker);
    flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
    for n in 0..10 {
        client
            .send_envelope(Envelope::of(format!("order-{n}"), OrderPlaced { amount: n }).build())
            .await
            .unwrap();
    }
    eventually("a replica notices the outage", || {
        replicas.iter().any(|r| r.stats().store_down)
    })
    .await;
    // Four ack waits: without keep-alive every delivery would lapse, go to
    // the other replica, lapse again and be dead-lettered.
    tokio::time::sleep(Duration::from_secs(4)).await;
    flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
    eventually("every order is charged once the stores are back", || {
        replicas.iter().map(|r| r.stats().handled).sum::<u64>() == 10
    })
    .await;
    let mut total = ServiceStats::default();
    for r in replicas {
        let s = r.shutdown().await.unwrap();
        total.deliveries += s.deliveries;
        total.duplicates += s.duplicates;
        total.dead_lettered += s.dead_lettered;
        total.failures += s.failures;
    }
    assert_eq!(
        (
            total.deliveries,
            total.duplicates,
            total.dead_lettered,
            total.failures
        ),
        (10, 0, 0, 0),
        "each order delivered once, held through the outage: {total:?}"
    );
    assert!(runs.lock().unwrap().values().all(|&n| n == 1));
    assert_eq!(runs.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn a_handler_running_past_the_ack_wait_keeps_its_delivery() {
    let broker: SharedBroker = MemoryBroker::new().into_shared();
    let runs: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    // Three ack waits.
    let slow = |runs: Arc<Mutex<HashMap<String, u32>>>| {
        ServiceDefinition::new("Shop", "Payment")
            .reaction(charge(runs, Duration::from_secs(3)).timeout(Duration::from_secs(10)))
    };
    let options = || ServiceOptions {
        ack_wait: Duration::from_secs(1),
        ..ServiceOptions::default()
    };
    // Two replicas: a delivery that lapsed would go to the other one.
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(
            slow(runs.clone())
                .start(broker.clone(), Stores::memory(), options())
                .await
                .unwrap(),
        );
    }
    let client = client(&broker);
    for n in 0..5 {
        client
            .send_envelope(Envelope::of(format!("order-{n}"), OrderPlaced { amount: n }).build())
            .await
            .unwrap();
    }
    eventually("every order is charged", || {
        replicas.iter().map(|r| r.stats().handled).sum::<u64>() == 5
    })
    .await;
    let mut deliveries = 0;
    for r in replicas {
        let s = r.shutdown().await.unwrap();
        deliveries += s.deliveries;
        assert_eq!((s.duplicates, s.dead_lettered), (0, 0), "{s:?}");
    }
    assert_eq!(deliveries, 5, "each order delivered once");
    assert!(runs.lock().unwrap().values().all(|&n| n == 1));
}
