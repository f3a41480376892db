//! The cases of the conformance suite. Each takes a fresh broker and a
//! unique prefix, and panics on a broken guarantee.

use crate::sync::Recover;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{CaseContext, Outcome};
use crate::broker::{
    dead_letter_topic, Backoff, BrokerError, Delivery, Health, ObserveOptions, SharedBroker,
    StartPosition, SubscribeOptions, Subscription, DLQ_ATTEMPTS, DLQ_GROUP, DLQ_REASON,
};
use crate::envelope::{json, Envelope, SharedStr, TraceParent};
use crate::payload::Message;
use crate::store::{Claim, InboxStore, MemoryInbox};

/// The payload every case publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// A sequence number within the case.
    pub n: u64,
    /// Free text (with characters that need escaping).
    pub note: String,
}

impl Message for Probe {
    const TYPE: &'static str = "Conformance.Probe";
}

/// How long an "eventually" may take on a loaded machine.
const EVENTUALLY: Duration = Duration::from_secs(20);
/// How long to watch for something that must not arrive.
const QUIET: Duration = Duration::from_millis(300);

fn probe(key: &str, n: u64) -> Envelope {
    Envelope::of(
        key.to_owned(),
        Probe {
            n,
            note: format!("probe {n} \"é\""),
        },
    )
    .source("conformance")
    .build()
}

fn n_of(d: &Delivery) -> u64 {
    d.envelope()
        .decode::<Probe>()
        .expect("probe payload decodes")
        .n
}

/// Quick redelivery so cases do not wait on defaults.
fn options(group: String, topics: Vec<String>) -> SubscribeOptions {
    let mut o = SubscribeOptions::new(group, topics);
    o.ack_wait = Duration::from_secs(2);
    o.backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        jitter: 0.0,
    };
    o
}

async fn subscribe(broker: &SharedBroker, o: SubscribeOptions) -> Box<dyn Subscription> {
    broker.subscribe(o).await.expect("subscribe")
}

async fn publish(broker: &SharedBroker, topic: &str, env: Envelope) {
    broker.publish(topic, env).await.expect("publish");
}

/// What arrives within `within` (possibly nothing).
async fn recv(sub: &mut Box<dyn Subscription>, max: usize, within: Duration) -> Vec<Delivery> {
    match tokio::time::timeout(within, sub.next_batch(max)).await {
        Ok(r) => r.expect("next_batch").unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Exactly `n` deliveries (fails if they do not come in time).
async fn recv_n(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + EVENTUALLY;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "got {} of {n} deliveries in {EVENTUALLY:?}",
            out.len()
        );
        out.extend(recv(sub, n - out.len(), left).await);
    }
    out
}

async fn ack_all(ds: Vec<Delivery>) {
    crate::broker::settle_all(ds.into_iter().map(|d| (d, crate::broker::Settlement::Ack)))
        .await
        .expect("ack");
}

/// Published messages reach a subscriber, in order, intact.
pub async fn basic_delivery(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("orders");
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let sent: Vec<Envelope> = (0..5).map(|n| probe("k", n)).collect();
    for e in &sent {
        publish(&broker, &topic, e.clone()).await;
    }
    let got = recv_n(&mut sub, 5).await;
    let ids: Vec<String> = got.iter().map(|d| d.envelope().id().to_string()).collect();
    let want: Vec<String> = sent.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(ids, want, "one member gets every message in publish order");
    for (d, e) in got.iter().zip(&sent) {
        assert_eq!(d.attempt(), 1);
        assert_eq!(d.topic().as_str(), topic);
        assert_eq!(
            d.envelope().decode::<Probe>().expect("decode"),
            e.decode::<Probe>().expect("decode")
        );
    }
    ack_all(got).await;
    assert!(
        recv(&mut sub, 10, QUIET).await.is_empty(),
        "acked messages do not come back"
    );
    Outcome::Passed
}

/// Every attribute, extensions and trace context included, arrives byte for byte.
pub async fn attribute_round_trip(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("attrs");
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        .parse()
        .expect("traceparent");
    let sent = Envelope::of(
        "order/42 é",
        Probe {
            n: 1,
            note: "a\"b\\c\n".into(),
        },
    )
    .id("id-with-text-1")
    .source("svc/payment#1")
    .causation_id("0190b6f2-7c3a-7d2e-9f00-123456789abc")
    .traceparent(Some(tp))
    .tracestate("vendor=abc,other=1")
    .choreo_version("1.2.3")
    .extension("tenant", "acme corp")
    .and_then(|b| b.extension("priority", "7"))
    .expect("extensions")
    .build();
    publish(&broker, &topic, sent.clone()).await;
    let got = recv_n(&mut sub, 1).await;
    let env = got[0].envelope();
    assert_eq!(
        json::attributes(env),
        json::attributes(&sent),
        "attributes byte for byte"
    );
    assert_eq!(env.correlation_id(), "order/42 é");
    assert_eq!(
        env.causation_id().map(|c| c.to_string()).as_deref(),
        Some("0190b6f2-7c3a-7d2e-9f00-123456789abc")
    );
    assert_eq!(env.traceparent(), Some(tp));
    assert_eq!(
        env.decode::<Probe>().expect("decode"),
        sent.decode::<Probe>().expect("decode")
    );
    ack_all(got).await;
    Outcome::Passed
}

/// A group gets only the topics it subscribed to.
pub async fn topic_isolation(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let (a, b) = (ctx.name("a"), ctx.name("b"));
    let mut sub_a = subscribe(&broker, options(ctx.name("g"), vec![a.clone()])).await;
    let mut sub_b = subscribe(&broker, options(ctx.name("g"), vec![b.clone()])).await;
    publish(&broker, &b, probe("k", 2)).await;
    publish(&broker, &a, probe("k", 1)).await;
    let got_a = recv_n(&mut sub_a, 1).await;
    let got_b = recv_n(&mut sub_b, 1).await;
    assert_eq!(n_of(&got_a[0]), 1);
    assert_eq!(n_of(&got_b[0]), 2);
    ack_all(got_a).await;
    ack_all(got_b).await;
    assert!(
        recv(&mut sub_a, 10, QUIET).await.is_empty(),
        "nothing from topic b reaches a"
    );
    Outcome::Passed
}

/// Every group gets every message.
pub async fn fan_out_across_groups(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("events");
    let mut subs = Vec::new();
    for g in ["orders", "payment", "shipping"] {
        subs.push(subscribe(&broker, options(ctx.name(g), vec![topic.clone()])).await);
    }
    for n in 0..20 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    for sub in &mut subs {
        let got = recv_n(sub, 20).await;
        let ns: Vec<u64> = got.iter().map(n_of).collect();
        assert_eq!(ns, (0..20).collect::<Vec<_>>());
        ack_all(got).await;
    }
    Outcome::Passed
}

/// Members of one group share the messages: together they get all of
/// them, and no message goes to two members unless it was redelivered.
pub async fn competing_consumers(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("work");
    let total = 300u64;
    let mut members = Vec::new();
    for _ in 0..3 {
        let mut o = options(ctx.name("workers"), vec![topic.clone()]);
        o.max_in_flight = 8;
        o.ack_wait = Duration::from_secs(30);
        members.push(subscribe(&broker, o).await);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u64, u32)>();
    let mut tasks = Vec::new();
    for (i, mut sub) in members.into_iter().enumerate() {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(batch)) = sub.next_batch(4).await {
                for d in batch {
                    let _ = tx.send((i, n_of(&d), d.attempt()));
                    d.ack().await.expect("ack");
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for n in 0..total {
        publish(&broker, &topic, probe(&format!("k{}", n % 7), n)).await;
    }
    let mut seen: HashMap<u64, Vec<(usize, u32)>> = HashMap::new();
    let deadline = Instant::now() + EVENTUALLY;
    while (seen.len() as u64) < total {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((member, n, attempt))) => seen.entry(n).or_default().push((member, attempt)),
            _ => panic!("only {} of {total} messages consumed", seen.len()),
        }
    }
    // Anything still on its way would be a second delivery.
    while let Ok(Some((member, n, attempt))) = tokio::time::timeout(QUIET, rx.recv()).await {
        seen.entry(n).or_default().push((member, attempt));
    }
    for t in &tasks {
        t.abort();
    }
    let union: HashSet<u64> = seen.keys().copied().collect();
    assert_eq!(
        union,
        (0..total).collect::<HashSet<_>>(),
        "union is what was published"
    );
    for (n, ds) in &seen {
        let first = ds.iter().filter(|(_, a)| *a == 1).count();
        assert!(
            first == 1 && ds.len() == 1 || ds.iter().any(|(_, a)| *a > 1),
            "message {n} went to several members without redelivery: {ds:?}"
        );
    }
    let members_used: HashSet<usize> = seen.values().flatten().map(|(m, _)| *m).collect();
    assert!(
        members_used.len() >= 2,
        "work is shared between members: {members_used:?}"
    );
    Outcome::Passed
}

/// A nacked message comes back with a growing attempt count.
pub async fn redelivery_on_nack(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("retry");
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let sent = probe("k", 1);
    publish(&broker, &topic, sent.clone()).await;
    for attempt in 1..=3 {
        let mut got = recv_n(&mut sub, 1).await;
        let d = got.remove(0);
        assert_eq!(d.envelope().id(), sent.id());
        assert_eq!(d.attempt(), attempt);
        if attempt < 3 {
            d.nack(None).await.expect("nack");
        } else {
            d.ack().await.expect("ack");
        }
    }
    assert!(recv(&mut sub, 10, QUIET).await.is_empty());
    Outcome::Passed
}

/// A nack with a delay is not redelivered before the delay.
pub async fn nack_delay_honoured(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("delay");
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    publish(&broker, &topic, probe("k", 1)).await;
    let d = recv_n(&mut sub, 1).await.remove(0);
    let delay = Duration::from_millis(600);
    let nacked_at = Instant::now();
    d.nack(Some(delay)).await.expect("nack");
    let again = recv_n(&mut sub, 1).await;
    let waited = nacked_at.elapsed();
    // Brokers may round delays to their clock; 10 % below is still honoured.
    assert!(
        waited >= delay.mul_f64(0.9),
        "redelivered after {waited:?}, delay was {delay:?}"
    );
    assert_eq!(again[0].attempt(), 2);
    ack_all(again).await;
    Outcome::Passed
}

/// What a member held when it went away is delivered to another member.
pub async fn redelivery_after_consumer_dies(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("crash");
    let mk = || {
        let mut o = options(ctx.name("g"), vec![topic.clone()]);
        o.ack_wait = Duration::from_secs(1);
        o
    };
    let mut doomed = subscribe(&broker, mk()).await;
    publish(&broker, &topic, probe("k", 1)).await;
    let held = recv_n(&mut doomed, 1).await;
    let id = held[0].envelope().id().clone();
    // The member dies holding its delivery: neither acked nor nacked.
    drop(held);
    drop(doomed);
    let mut survivor = subscribe(&broker, mk()).await;
    let got = recv_n(&mut survivor, 1).await;
    assert_eq!(got[0].envelope().id(), &id);
    assert!(
        got[0].attempt() >= 2,
        "a redelivery counts as a further attempt"
    );
    ack_all(got).await;
    Outcome::Passed
}

/// A delivery kept alive is held past its ack wait: no other member gets
/// it, it counts as no further attempt, and it still settles.
pub async fn keep_alive_holds_a_delivery(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("slow");
    let mk = || {
        let mut o = options(ctx.name("g"), vec![topic.clone()]);
        o.ack_wait = Duration::from_secs(1);
        o
    };
    let mut holder = subscribe(&broker, mk()).await;
    let mut other = subscribe(&broker, mk()).await;
    publish(&broker, &topic, probe("k", 1)).await;
    // Either member may get it; the one that does holds it.
    let (held, first) = tokio::select! {
        d = recv_n(&mut holder, 1) => (d, true),
        d = recv_n(&mut other, 1) => (d, false),
    };
    let mut idle = if first { other } else { holder };
    let d = &held[0];
    assert_eq!(d.attempt(), 1);
    // Three ack waits, renewed every 300 ms.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        d.keep_alive().await.expect("keep alive");
        let stolen = recv(&mut idle, 1, Duration::from_millis(300)).await;
        assert!(
            stolen.is_empty(),
            "a delivery kept alive went to another member (attempt {})",
            stolen.first().map_or(0, Delivery::attempt)
        );
    }
    ack_all(held).await;
    assert!(
        recv(&mut idle, 1, Duration::from_millis(1500))
            .await
            .is_empty(),
        "an acked delivery is not redelivered"
    );
    Outcome::Passed
}

/// After `max_deliveries` the message goes to the dead-letter topic, with
/// its id and the reason.
pub async fn dead_letter_after_max_deliveries(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("poison");
    let mut dlq = subscribe(
        &broker,
        options(ctx.name("dlq-reader"), vec![dead_letter_topic(&topic)]),
    )
    .await;
    let mut o = options(ctx.name("g"), vec![topic.clone()]);
    o.max_deliveries = 3;
    let mut sub = subscribe(&broker, o).await;
    let sent = probe("k", 9);
    publish(&broker, &topic, sent.clone()).await;
    for attempt in 1..=3 {
        let d = recv_n(&mut sub, 1).await.remove(0);
        assert_eq!(d.attempt(), attempt);
        d.nack(None).await.expect("nack");
    }
    let dead = recv_n(&mut dlq, 1).await;
    let env = dead[0].envelope();
    assert_eq!(env.id(), sent.id(), "a dead letter keeps the original id");
    assert_eq!(env.decode::<Probe>().expect("decode").n, 9);
    assert!(
        !env.extension(DLQ_REASON).unwrap_or("").is_empty(),
        "a dead letter says why"
    );
    assert_eq!(env.extension(DLQ_ATTEMPTS), Some("3"));
    assert_eq!(env.extension(DLQ_GROUP), Some(ctx.name("g").as_str()));
    ack_all(dead).await;
    assert!(
        recv(&mut sub, 10, QUIET).await.is_empty(),
        "a dead letter is not redelivered"
    );
    Outcome::Passed
}

/// A consumer can dead-letter a message at once, with its reason.
pub async fn explicit_dead_letter(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("reject");
    let mut dlq = subscribe(
        &broker,
        options(ctx.name("dlq-reader"), vec![dead_letter_topic(&topic)]),
    )
    .await;
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let sent = probe("k", 3);
    publish(&broker, &topic, sent.clone()).await;
    let d = recv_n(&mut sub, 1).await.remove(0);
    d.dead_letter("cannot decode: missing field `n`")
        .await
        .expect("dead letter");
    let dead = recv_n(&mut dlq, 1).await;
    assert_eq!(dead[0].envelope().id(), sent.id());
    assert_eq!(
        dead[0].envelope().extension(DLQ_REASON),
        Some("cannot decode: missing field `n`")
    );
    ack_all(dead).await;
    assert!(recv(&mut sub, 10, QUIET).await.is_empty());
    Outcome::Passed
}

/// With per-key order, each key's messages are handled in publish order,
/// one at a time (the next is held back while one is unsettled), across
/// members, nacks and redeliveries. An adapter without the capability
/// refuses a subscription that asks for it, rather than ignoring the flag.
pub async fn per_key_order(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("ordered");
    if !broker.capabilities().per_key_order {
        let mut o = options(ctx.name("g"), vec![topic.clone()]);
        o.per_key_order = true;
        match broker.subscribe(o).await {
            Err(BrokerError::InvalidOptions(_)) => {}
            Err(e) => panic!("per-key order refused with the wrong error: {e}"),
            Ok(_) => panic!(
                "{} lacks per-key order yet accepted a subscription asking for it",
                broker.kind()
            ),
        }
        // Without the flag the same subscription is fine.
        let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
        publish(&broker, &topic, probe("k", 1)).await;
        ack_all(recv_n(&mut sub, 1).await).await;
        return Outcome::Passed;
    }
    let (keys, per_key) = (4u64, 25u64);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, u64)>();
    // The keys with a delivery out, unsettled, in any member; and the
    // deliveries that came while another of their key was out.
    let out = std::sync::Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let overlaps = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let mut o = options(ctx.name("g"), vec![topic.clone()]);
        o.per_key_order = true;
        o.max_in_flight = 4;
        let mut sub = subscribe(&broker, o).await;
        let (tx, out, overlaps) = (tx.clone(), out.clone(), overlaps.clone());
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(batch)) = sub.next_batch(4).await {
                let mut mine = Vec::new();
                for d in &batch {
                    let key = d.envelope().correlation_id().to_owned();
                    if !lock(&out).insert(key.clone()) {
                        lock(&overlaps).push((key.clone(), n_of(d)));
                    }
                    mine.push(key);
                }
                // Held a moment, so that a second delivery of a key
                // would have the time to come to the other member.
                tokio::time::sleep(Duration::from_millis(2)).await;
                for (d, key) in batch.into_iter().zip(mine) {
                    let n = n_of(&d);
                    // Released before settling: once settled, the next of
                    // the key may come at once.
                    lock(&out).remove(&key);
                    // Fail some first attempts to force redelivery.
                    if d.attempt() == 1 && n % 7 == 3 {
                        d.nack(None).await.expect("nack");
                        continue;
                    }
                    let _ = tx.send((key, n));
                    d.ack().await.expect("ack");
                }
            }
        }));
    }
    for i in 0..per_key {
        for k in 0..keys {
            publish(&broker, &topic, probe(&format!("key-{k}"), i)).await;
        }
    }
    let mut order: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..keys * per_key {
        match tokio::time::timeout(EVENTUALLY, rx.recv()).await {
            Ok(Some((k, n))) => order.entry(k).or_default().push(n),
            _ => panic!("messages missing: {order:?}"),
        }
    }
    for t in &tasks {
        t.abort();
    }
    for (k, ns) in &order {
        assert_eq!(ns, &(0..per_key).collect::<Vec<_>>(), "order of {k}");
    }
    let overlaps = lock(&overlaps).clone();
    assert!(
        overlaps.is_empty(),
        "deliveries of a key while another of it was unsettled: {overlaps:?}"
    );
    Outcome::Passed
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.locked()
}

/// A member never holds more than `max_in_flight` unsettled deliveries.
pub async fn max_in_flight(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("limited");
    let mut o = options(ctx.name("g"), vec![topic.clone()]);
    o.max_in_flight = 2;
    o.ack_wait = Duration::from_secs(30);
    let mut sub = subscribe(&broker, o).await;
    for n in 0..5 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    let mut held = recv_n(&mut sub, 2).await;
    assert!(
        recv(&mut sub, 10, QUIET).await.is_empty(),
        "a third delivery while two are held"
    );
    let first = held.remove(0);
    first.ack().await.expect("ack");
    let more = recv_n(&mut sub, 1).await;
    held.extend(more);
    assert_eq!(held.len(), 2);
    assert!(
        recv(&mut sub, 10, QUIET).await.is_empty(),
        "still at most two held"
    );
    ack_all(held).await;
    let rest = recv_n(&mut sub, 2).await;
    ack_all(rest).await;
    Outcome::Passed
}

/// Publishing one id several times makes an idempotent (inbox) handler
/// act once, whether or not the broker deduplicates natively.
pub async fn duplicate_publish_handled_once(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("dup");
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let sent = probe("k", 1);
    for _ in 0..3 {
        publish(&broker, &topic, sent.clone()).await;
    }
    let other = probe("k", 2);
    publish(&broker, &topic, other.clone()).await;
    let inbox = MemoryInbox::new();
    let mut effects: HashMap<String, u32> = HashMap::new();
    let mut deliveries = 0;
    let deadline = Instant::now() + EVENTUALLY;
    // Until the second message is in, then until things go quiet.
    while !effects.contains_key(&other.id().to_string()) || deliveries < 2 {
        assert!(Instant::now() < deadline, "messages missing");
        for d in recv(&mut sub, 10, Duration::from_millis(200)).await {
            deliveries += 1;
            handle_once(&inbox, &mut effects, d).await;
        }
    }
    loop {
        let more = recv(&mut sub, 10, QUIET).await;
        if more.is_empty() {
            break;
        }
        for d in more {
            deliveries += 1;
            handle_once(&inbox, &mut effects, d).await;
        }
    }
    assert_eq!(
        effects.get(&sent.id().to_string()),
        Some(&1),
        "the duplicated id acted once"
    );
    assert_eq!(effects.get(&other.id().to_string()), Some(&1));
    if broker.capabilities().native_dedup {
        assert_eq!(
            deliveries, 2,
            "a natively deduplicating broker delivers the id once"
        );
    } else {
        assert_eq!(deliveries, 4, "every publish is delivered");
    }
    Outcome::Passed
}

async fn handle_once(inbox: &MemoryInbox, effects: &mut HashMap<String, u32>, d: Delivery) {
    let id = d.envelope().id().clone();
    match inbox
        .claim("case", &id, Duration::from_secs(30))
        .await
        .expect("claim")
    {
        Claim::Acquired => {
            *effects.entry(id.to_string()).or_default() += 1;
            inbox.complete("case", &id).await.expect("complete");
        }
        Claim::Done | Claim::Busy => {}
    }
    d.ack().await.expect("ack");
}

/// After unsubscribing, a member gets nothing more; the group keeps the
/// messages for its other members.
pub async fn unsubscribe_stops_delivery(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("leave");
    let mut sub = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    publish(&broker, &topic, probe("k", 1)).await;
    ack_all(recv_n(&mut sub, 1).await).await;
    sub.unsubscribe().await.expect("unsubscribe");
    publish(&broker, &topic, probe("k", 2)).await;
    match tokio::time::timeout(EVENTUALLY, sub.next_batch(10)).await {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(ds))) => panic!("delivery after unsubscribe: {ds:?}"),
        Ok(Err(e)) => panic!("next_batch after unsubscribe failed: {e}"),
        Err(_) => panic!("next_batch after unsubscribe did not end"),
    }
    let mut next = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let got = recv_n(&mut next, 1).await;
    assert_eq!(
        n_of(&got[0]),
        2,
        "the group kept what was published meanwhile"
    );
    ack_all(got).await;
    Outcome::Passed
}

/// Closing drains: whatever a publish confirmed is delivered and settled
/// before the subscriptions end, and publishing afterwards fails.
pub async fn close_loses_nothing(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("drain");
    let mut o = options(ctx.name("g"), vec![topic.clone()]);
    o.max_in_flight = 16;
    let mut sub = subscribe(&broker, o).await;
    let consumer = tokio::spawn(async move {
        let mut acked = Vec::new();
        while let Ok(Some(batch)) = sub.next_batch(16).await {
            for d in batch {
                acked.push(n_of(&d));
                d.ack().await.expect("ack");
            }
        }
        acked
    });
    let total = 500u64;
    for n in 0..total {
        publish(&broker, &topic, probe("k", n)).await;
    }
    broker.close(EVENTUALLY).await.expect("close");
    let acked = tokio::time::timeout(EVENTUALLY, consumer)
        .await
        .expect("subscriptions end after close")
        .expect("consumer task");
    let unique: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(
        unique,
        (0..total).collect::<HashSet<_>>(),
        "every confirmed publish was delivered"
    );
    assert!(
        broker.publish(&topic, probe("k", 0)).await.is_err(),
        "publish after close fails"
    );
    Outcome::Passed
}

async fn observe(
    broker: &SharedBroker,
    topics: &[&String],
    start: StartPosition,
) -> Box<dyn Subscription> {
    let mut o = ObserveOptions::new(topics.iter().map(|t| t.as_str()));
    o.start = start;
    broker.observe(o).await.expect("observe")
}

/// The probe numbers of `ds` on `topic`, in the order they came.
fn ns_on(ds: &[Delivery], topic: &str) -> Vec<u64> {
    ds.iter()
        .filter(|d| d.topic().as_str() == topic)
        .map(n_of)
        .collect()
}

/// Exactly `n` deliveries, then nothing more for a while.
async fn recv_exactly(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivery> {
    let got = recv_n(sub, n).await;
    let more = recv(sub, 10, QUIET).await;
    assert!(
        more.is_empty(),
        "more than {n} deliveries: also {:?}",
        more.iter().map(n_of).collect::<Vec<_>>()
    );
    got
}

/// An observer from the earliest position sees what the broker holds of
/// its topics, per topic in publish order, then follows what comes.
pub async fn observe_from_earliest(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let (a, b) = (ctx.name("a"), ctx.name("b"));
    for n in 0..6 {
        let topic = if n % 3 == 2 { &b } else { &a };
        publish(&broker, topic, probe("k", n)).await;
    }
    let mut obs = observe(&broker, &[&a, &b], StartPosition::Earliest).await;
    let held = broker.capabilities().history;
    let got = if held {
        recv_n(&mut obs, 6).await
    } else {
        Vec::new()
    };
    for d in &got {
        assert_eq!(d.attempt(), 1, "an observer sees every message once");
    }
    publish(&broker, &b, probe("k", 6)).await;
    publish(&broker, &a, probe("k", 7)).await;
    let live = recv_exactly(&mut obs, 2).await;
    let all: Vec<Delivery> = got.into_iter().chain(live).collect();
    let (mut want_a, mut want_b) = (vec![0, 1, 3, 4, 7], vec![2, 5, 6]);
    if !held {
        // Nothing held: what came before the observer is gone.
        (want_a, want_b) = (vec![7], vec![6]);
    }
    assert_eq!(ns_on(&all, &a), want_a, "topic a in publish order");
    assert_eq!(ns_on(&all, &b), want_b, "topic b in publish order");
    obs.unsubscribe().await.expect("unsubscribe");
    Outcome::Passed
}

/// An observer (and a new group) from a time sees only what was published
/// at or after it, then follows what comes.
pub async fn observe_since_a_time(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("timed");
    for n in 0..3 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    // Well apart from the time, whatever the brokers' clock resolution.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = jiff::Timestamp::now();
    for n in 3..6 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    let mut obs = observe(&broker, &[&topic], StartPosition::Since(since)).await;
    let mut o = options(ctx.name("g"), vec![topic.clone()]);
    o.start = StartPosition::Since(since);
    let mut group = subscribe(&broker, o).await;
    let held = if broker.capabilities().history {
        vec![3, 4, 5]
    } else {
        Vec::new()
    };
    publish(&broker, &topic, probe("k", 6)).await;
    let want: Vec<u64> = held.iter().copied().chain([6]).collect();
    let seen = recv_exactly(&mut obs, want.len()).await;
    assert_eq!(
        ns_on(&seen, &topic),
        want,
        "the observer starts at the time"
    );
    let got = recv_exactly(&mut group, want.len()).await;
    assert_eq!(ns_on(&got, &topic), want, "a new group starts at the time");
    ack_all(got).await;
    obs.unsubscribe().await.expect("unsubscribe");
    Outcome::Passed
}

/// An observer from the latest position sees only what is published after
/// it started.
pub async fn observe_from_latest(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let (a, b) = (ctx.name("a"), ctx.name("b"));
    publish(&broker, &a, probe("k", 0)).await;
    publish(&broker, &b, probe("k", 1)).await;
    // `b2` has no message yet: one that comes later is still seen.
    let fresh = ctx.name("b2");
    let mut obs = observe(&broker, &[&a, &b, &fresh], StartPosition::Latest).await;
    publish(&broker, &b, probe("k", 2)).await;
    publish(&broker, &a, probe("k", 3)).await;
    publish(&broker, &fresh, probe("k", 4)).await;
    publish(&broker, &a, probe("k", 5)).await;
    let seen = recv_exactly(&mut obs, 4).await;
    assert_eq!(ns_on(&seen, &a), vec![3, 5]);
    assert_eq!(ns_on(&seen, &b), vec![2]);
    assert_eq!(ns_on(&seen, &fresh), vec![4]);
    obs.unsubscribe().await.expect("unsubscribe");
    Outcome::Passed
}

/// An observer takes nothing from a group on its topic, and the group's
/// settlements do not reach it; settling what it observed changes nothing:
/// no redelivery, no dead letter.
pub async fn observer_is_apart_from_groups(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("shared");
    let mut dlq = subscribe(
        &broker,
        options(ctx.name("dlq-reader"), vec![dead_letter_topic(&topic)]),
    )
    .await;
    let mut group = subscribe(&broker, options(ctx.name("g"), vec![topic.clone()])).await;
    let mut obs = observe(&broker, &[&topic], StartPosition::Latest).await;
    let total = 10u64;
    for n in 0..total {
        publish(&broker, &topic, probe(&format!("k{n}"), n)).await;
    }
    // The group gets all of them; nacks some once, acks the rest.
    let mut handled = Vec::new();
    let deadline = Instant::now() + EVENTUALLY;
    while (handled.len() as u64) < total {
        assert!(Instant::now() < deadline, "the group got {handled:?}");
        for d in recv(&mut group, 10, Duration::from_millis(200)).await {
            if d.attempt() == 1 && n_of(&d) % 4 == 1 {
                d.nack(Some(Duration::from_millis(10))).await.expect("nack");
            } else {
                handled.push(n_of(&d));
                d.ack().await.expect("ack");
            }
        }
    }
    handled.sort_unstable();
    assert_eq!(
        handled,
        (0..total).collect::<Vec<_>>(),
        "the group got everything"
    );
    // The observer too, once each, whatever the group did.
    let seen = recv_n(&mut obs, total as usize).await;
    assert_eq!(ns_on(&seen, &topic), (0..total).collect::<Vec<_>>());
    assert!(seen.iter().all(|d| d.attempt() == 1));
    // Settling observed deliveries is accepted and does nothing.
    let mut seen = seen.into_iter();
    let (first, second, third) = (seen.next(), seen.next(), seen.next());
    first.expect("a delivery").nack(None).await.expect("nack");
    second
        .expect("a delivery")
        .dead_letter("observed")
        .await
        .expect("dead letter");
    let third = third.expect("a delivery");
    third.keep_alive().await.expect("keep alive");
    third.ack().await.expect("ack");
    drop(seen);
    // Watched together: one quiet spell for the three.
    let (again, dead, left) = tokio::join!(
        recv(&mut obs, 10, QUIET),
        recv(&mut dlq, 10, QUIET),
        recv(&mut group, 10, QUIET),
    );
    assert!(again.is_empty(), "an observer redelivers nothing");
    assert!(dead.is_empty(), "an observer dead-letters nothing");
    assert!(left.is_empty(), "the group has nothing left");
    obs.unsubscribe().await.expect("unsubscribe");
    Outcome::Passed
}

/// After unsubscribing an observer gets nothing more, and the groups and
/// other observers of its topic go on as before.
pub async fn observer_unsubscribe_stops_it(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("watched");
    let mut obs = observe(&broker, &[&topic], StartPosition::Latest).await;
    let mut other = observe(&broker, &[&topic], StartPosition::Latest).await;
    publish(&broker, &topic, probe("k", 1)).await;
    assert_eq!(ns_on(&recv_n(&mut obs, 1).await, &topic), vec![1]);
    obs.unsubscribe().await.expect("unsubscribe");
    obs.unsubscribe()
        .await
        .expect("a second unsubscribe is harmless");
    publish(&broker, &topic, probe("k", 2)).await;
    match tokio::time::timeout(EVENTUALLY, obs.next_batch(10)).await {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(ds))) => panic!("delivery after unsubscribe: {ds:?}"),
        Ok(Err(e)) => panic!("next_batch after unsubscribe failed: {e}"),
        Err(_) => panic!("next_batch after unsubscribe did not end"),
    }
    let seen = recv_exactly(&mut other, 2).await;
    assert_eq!(
        ns_on(&seen, &topic),
        vec![1, 2],
        "the other observer goes on"
    );
    drop(other);
    Outcome::Passed
}

/// Closing the broker ends its observers (they have nothing to drain).
pub async fn observer_ends_on_close(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("closing");
    let mut obs = observe(&broker, &[&topic], StartPosition::Latest).await;
    publish(&broker, &topic, probe("k", 1)).await;
    assert_eq!(recv_n(&mut obs, 1).await.len(), 1);
    broker.close(EVENTUALLY).await.expect("close");
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, obs.next_batch(10)).await {
            Ok(Ok(None)) => break,
            Ok(Ok(Some(_))) => {}
            Ok(Err(e)) => panic!("next_batch after close failed: {e}"),
            Err(_) => panic!("the observer did not end after close"),
        }
    }
    assert!(
        broker.observe(ObserveOptions::new([topic])).await.is_err(),
        "observing a closed broker fails"
    );
    Outcome::Passed
}

/// Acks whatever `sub` delivers until every probe number of `want` has
/// come (fails if they do not come in time); what came, each as (number,
/// topic, attempt), in the order it came.
async fn collect_until(
    sub: &mut Box<dyn Subscription>,
    want: &HashSet<u64>,
) -> Vec<(u64, String, u32)> {
    let deadline = Instant::now() + EVENTUALLY;
    let mut got = Vec::new();
    let mut seen = HashSet::new();
    while !want.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "missing after {EVENTUALLY:?}: {:?}",
            sorted(want.difference(&seen).copied())
        );
        let batch = recv(sub, 256, left).await;
        for d in &batch {
            seen.insert(n_of(d));
            got.push((n_of(d), d.topic().to_string(), d.attempt()));
        }
        ack_all(batch).await;
    }
    got
}

fn sorted(ns: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = ns.into_iter().collect();
    v.sort_unstable();
    v
}

/// One subscription to several topics: every message of every topic
/// reaches the group exactly once, with the topic it was published on,
/// per topic in publish order.
pub async fn one_subscription_many_topics(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topics: Vec<String> = ["a", "b", "c"].iter().map(|t| ctx.name(t)).collect();
    let mut o = options(ctx.name("g"), topics.clone());
    o.ack_wait = Duration::from_secs(30);
    let mut sub = subscribe(&broker, o).await;
    let per_topic = 20u64;
    // Probe `t * 1000 + i` is the `i`th message of topic `t`.
    for i in 0..per_topic {
        for (t, topic) in topics.iter().enumerate() {
            publish(&broker, topic, probe("k", t as u64 * 1000 + i)).await;
        }
    }
    let got = recv_exactly(&mut sub, 3 * per_topic as usize).await;
    for d in &got {
        let n = n_of(d);
        assert_eq!(
            d.topic().as_str(),
            topics[(n / 1000) as usize],
            "message {n} came with the wrong topic"
        );
        assert_eq!(d.attempt(), 1, "message {n} is a first delivery");
    }
    for (t, topic) in topics.iter().enumerate() {
        let base = t as u64 * 1000;
        assert_eq!(
            ns_on(&got, topic),
            (base..base + per_topic).collect::<Vec<_>>(),
            "topic {topic}: each once, in publish order"
        );
    }
    ack_all(got).await;
    assert!(
        recv(&mut sub, 10, QUIET).await.is_empty(),
        "acked messages do not come back"
    );
    Outcome::Passed
}

/// Publishers at once, on one topic: every message arrives, none twice,
/// and each publisher's messages in the order it published them.
pub async fn concurrent_publishers(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("busy");
    let mut o = options(ctx.name("g"), vec![topic.clone()]);
    o.ack_wait = Duration::from_secs(30);
    let mut sub = subscribe(&broker, o).await;
    let (publishers, each) = (8u64, 200u64);
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let (b, t) = (broker.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let sent = b.publish(&t, probe(&format!("p{p}"), p * 1000 + i)).await;
                sent.unwrap_or_else(|e| panic!("publisher {p}, message {i}: {e}"));
            }
        }));
    }
    let want: HashSet<u64> = (0..publishers)
        .flat_map(|p| (0..each).map(move |i| p * 1000 + i))
        .collect();
    let mut got = collect_until(&mut sub, &want).await;
    for t in tasks {
        tokio::time::timeout(EVENTUALLY, t)
            .await
            .expect("publishers finish")
            .expect("publisher task");
    }
    // Anything still on its way would be a second delivery.
    loop {
        let more = recv(&mut sub, 256, QUIET).await;
        if more.is_empty() {
            break;
        }
        got.extend(
            more.iter()
                .map(|d| (n_of(d), d.topic().to_string(), d.attempt())),
        );
        ack_all(more).await;
    }
    let mut count: HashMap<u64, u32> = HashMap::new();
    for (n, _, _) in &got {
        *count.entry(*n).or_default() += 1;
    }
    let twice: Vec<u64> = sorted(count.iter().filter(|(_, c)| **c > 1).map(|(n, _)| *n));
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(count.len(), want.len(), "every message, nothing else");
    for p in 0..publishers {
        let mine: Vec<u64> = got
            .iter()
            .map(|(n, _, _)| *n)
            .filter(|n| n / 1000 == p)
            .collect();
        assert_eq!(
            mine,
            (p * 1000..p * 1000 + each).collect::<Vec<_>>(),
            "publisher {p}'s messages in its publish order"
        );
    }
    Outcome::Passed
}

/// Members subscribing and leaving at once (by unsubscribing or by being
/// dropped) neither panic nor hang, and the group still works after;
/// `close` racing with subscriptions (on clones of the handle) ends every
/// one of them, and a subscription made after it fails.
pub async fn concurrent_subscribe_and_unsubscribe(
    broker: SharedBroker,
    ctx: CaseContext,
) -> Outcome {
    let (topic, group) = (ctx.name("churn"), ctx.name("g"));
    let mut tasks = Vec::new();
    for w in 0..12usize {
        let (b, t, g) = (broker.clone(), topic.clone(), group.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..4usize {
                let mut sub = b
                    .subscribe(options(g.clone(), vec![t.clone()]))
                    .await
                    .unwrap_or_else(|e| panic!("member {w}, round {round}: subscribe: {e}"));
                if (w + round) % 2 == 0 {
                    sub.unsubscribe().await.expect("unsubscribe");
                    sub.unsubscribe().await.expect("a second unsubscribe");
                    match tokio::time::timeout(EVENTUALLY, sub.next_batch(1)).await {
                        Ok(Ok(None)) => {}
                        other => panic!("member {w}: next_batch after unsubscribe: {other:?}"),
                    }
                } else {
                    drop(sub);
                }
            }
        }));
    }
    for (w, t) in tasks.into_iter().enumerate() {
        match tokio::time::timeout(EVENTUALLY, t).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("member {w} hangs subscribing and leaving"),
        }
    }
    let mut fresh = subscribe(&broker, options(group.clone(), vec![topic.clone()])).await;
    publish(&broker, &topic, probe("k", 1)).await;
    let got = recv_n(&mut fresh, 1).await;
    assert_eq!(n_of(&got[0]), 1, "the group works after the churn");
    ack_all(got).await;
    drop(fresh);

    // Subscribing on clones of the handle while it closes.
    let racing = ctx.name("racing");
    let mut racers = Vec::new();
    for r in 0..6usize {
        let (b, t, g) = (broker.clone(), racing.clone(), ctx.name(&format!("r{r}")));
        racers.push(tokio::spawn(async move {
            let mut subs = Vec::new();
            for _ in 0..2000 {
                let made = tokio::time::timeout(
                    EVENTUALLY,
                    b.subscribe(options(g.clone(), vec![t.clone()])),
                )
                .await
                .unwrap_or_else(|_| panic!("racer {r}: subscribe hangs while closing"));
                match made {
                    Ok(sub) => subs.push(sub),
                    Err(_) => break,
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Each one made before or during the close ends.
            for (i, mut sub) in subs.into_iter().enumerate() {
                match tokio::time::timeout(EVENTUALLY, sub.next_batch(1)).await {
                    Ok(Ok(None)) => {}
                    Ok(Ok(Some(ds))) => panic!("racer {r}, subscription {i}: deliveries {ds:?}"),
                    Ok(Err(e)) => panic!("racer {r}, subscription {i}: {e}"),
                    Err(_) => panic!("racer {r}, subscription {i} did not end after close"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(EVENTUALLY, broker.close(Duration::from_secs(5)))
        .await
        .expect("close does not hang while members come")
        .expect("close");
    for (r, t) in racers.into_iter().enumerate() {
        match tokio::time::timeout(2 * EVENTUALLY, t).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("racer {r} hangs"),
        }
    }
    assert!(
        broker.subscribe(options(group, vec![topic])).await.is_err(),
        "subscribing to a closed broker fails"
    );
    Outcome::Passed
}

/// A member of one group leaves and another joins, many times in a row,
/// with messages published while each is there and between them: every
/// message reaches the group (at least once), none is lost, none is
/// dead-lettered. Each member handles what it is given for a moment, as a
/// consumer does, and leaves with the rest unhandled.
pub async fn resubscribe_many_times(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let (topic, group) = (ctx.name("again"), ctx.name("g"));
    let mut dlq = subscribe(
        &broker,
        options(ctx.name("dlq-reader"), vec![dead_letter_topic(&topic)]),
    )
    .await;
    let rounds = 30u64;
    let mut got = HashSet::new();
    for round in 0..rounds {
        let mut sub = subscribe(&broker, options(group.clone(), vec![topic.clone()])).await;
        // During: published while the member is there.
        publish(&broker, &topic, probe("k", 2 * round)).await;
        let until = Instant::now() + Duration::from_millis(100);
        while !got.contains(&(2 * round)) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let batch = recv(&mut sub, 64, left).await;
            got.extend(batch.iter().map(n_of));
            ack_all(batch).await;
        }
        sub.unsubscribe().await.expect("unsubscribe");
        // Between: published while the group has no member.
        publish(&broker, &topic, probe("k", 2 * round + 1)).await;
    }
    let want: HashSet<u64> = (0..2 * rounds).collect();
    let mut last = subscribe(&broker, options(group, vec![topic])).await;
    let missing: HashSet<u64> = want.difference(&got).copied().collect();
    let deadline = Instant::now() + EVENTUALLY;
    let mut dead = Vec::new();
    while !missing.iter().all(|n| got.contains(n)) {
        assert!(
            dead.is_empty(),
            "dead-lettered while members came and went: {dead:?}"
        );
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "missing after {EVENTUALLY:?}: {:?}",
            sorted(want.difference(&got).copied())
        );
        let (batch, letters) = tokio::join!(
            recv(&mut last, 256, left.min(Duration::from_millis(200))),
            recv(&mut dlq, 64, Duration::from_millis(10))
        );
        got.extend(batch.iter().map(n_of));
        ack_all(batch).await;
        dead.extend(letters.iter().map(|d| {
            let reason = d.envelope().extension(DLQ_REASON).unwrap_or("").to_owned();
            (n_of(d), reason)
        }));
    }
    assert_eq!(sorted(got), sorted(want), "every message, nothing else");
    Outcome::Passed
}

/// A new group from the latest position gets none of what was published
/// before it and all that comes after; from the earliest, everything the
/// broker holds (with [`Capabilities::history`](crate::Capabilities);
/// without it, as from the latest). A group that exists keeps its
/// position whatever a new member asks for.
pub async fn start_position_of_a_new_group(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topic = ctx.name("start");
    for n in 0..5 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    let with = |group: &str, start: StartPosition| {
        let mut o = options(ctx.name(group), vec![topic.clone()]);
        o.start = start;
        o
    };
    let mut late = subscribe(&broker, with("late", StartPosition::Latest)).await;
    let mut early = subscribe(&broker, with("early", StartPosition::Earliest)).await;
    for n in 5..10 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    let got = recv_exactly(&mut late, 5).await;
    assert_eq!(
        ns_on(&got, &topic),
        (5..10).collect::<Vec<_>>(),
        "from the latest: only what came after"
    );
    ack_all(got).await;
    let held: Vec<u64> = if broker.capabilities().history {
        (0..10).collect()
    } else {
        (5..10).collect()
    };
    let got = recv_exactly(&mut early, held.len()).await;
    assert_eq!(ns_on(&got, &topic), held, "from the earliest");
    ack_all(got).await;
    // The group `late` exists: a member asking for the earliest joins it
    // where it is.
    let mut joining = subscribe(&broker, with("late", StartPosition::Earliest)).await;
    let (a, b) = tokio::join!(recv(&mut joining, 10, QUIET), recv(&mut late, 10, QUIET));
    assert!(
        a.is_empty() && b.is_empty(),
        "an existing group went back: {:?}",
        a.iter().chain(&b).map(n_of).collect::<Vec<_>>()
    );
    Outcome::Passed
}

/// A member that leaves holding unsettled deliveries gives them back: a
/// new member of the group gets every one of them again, within the ack
/// wait at most, and settling them through the old member is refused.
///
/// The ack wait is 3 s, longer than a pull request that NATS cannot
/// cancel (`NatsOptions::pull_expires`, 2 s): the NATS adapter gives what
/// the member held back once its last request has ended, so that the
/// server does not hand it straight back to the member that left.
pub async fn unsubscribe_with_unacked_deliveries(
    broker: SharedBroker,
    ctx: CaseContext,
) -> Outcome {
    let topic = ctx.name("held");
    let ack_wait = Duration::from_secs(3);
    let mk = || {
        let mut o = options(ctx.name("g"), vec![topic.clone()]);
        o.ack_wait = ack_wait;
        o
    };
    let mut first = subscribe(&broker, mk()).await;
    for n in 0..5 {
        publish(&broker, &topic, probe("k", n)).await;
    }
    let mut held = recv_n(&mut first, 5).await;
    assert!(held.iter().all(|d| d.attempt() == 1));
    let left_at = Instant::now();
    first.unsubscribe().await.expect("unsubscribe");
    let stale = held.remove(0);
    match stale.ack().await {
        Err(BrokerError::UnknownDelivery(_)) => {}
        other => panic!("acking a delivery given back on leaving: {other:?}"),
    }
    drop(held);
    let mut second = subscribe(&broker, mk()).await;
    let got = collect_until(&mut second, &(0..5).collect()).await;
    let waited = left_at.elapsed();
    assert_eq!(
        sorted(got.iter().map(|(n, _, _)| *n)),
        vec![0, 1, 2, 3, 4],
        "every held delivery comes again, once"
    );
    assert!(
        got.iter().all(|(_, _, attempt)| *attempt >= 2),
        "a delivery given back counts as an attempt: {got:?}"
    );
    assert!(
        waited <= ack_wait,
        "given back after {waited:?}, more than the ack wait ({ack_wait:?})"
    );
    assert!(
        recv(&mut second, 10, QUIET).await.is_empty(),
        "each comes once more only"
    );
    Outcome::Passed
}

/// A batch of messages on several topics arrives entirely, each topic's
/// part in the batch's order, to a group on all of them and to one on one
/// of them; an empty batch is fine.
pub async fn publish_batch_mixed_topics(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    let topics: Vec<String> = ["a", "b", "c"].iter().map(|t| ctx.name(t)).collect();
    let mut o = options(ctx.name("all"), topics.clone());
    o.ack_wait = Duration::from_secs(30);
    let mut all = subscribe(&broker, o).await;
    let mut only_b = subscribe(
        &broker,
        options(ctx.name("b-only"), vec![topics[1].clone()]),
    )
    .await;
    // Runs of one topic and single ones, mixed.
    let total = 40u64;
    let topic_of = |n: u64| &topics[((n / 3 + n / 7) % 3) as usize];
    let batch: Vec<(SharedStr, Envelope)> = (0..total)
        .map(|n| {
            (
                SharedStr::from(topic_of(n).clone()),
                probe(&format!("k{n}"), n),
            )
        })
        .collect();
    broker.publish_batch(batch).await.expect("publish_batch");
    broker
        .publish_batch(Vec::new())
        .await
        .expect("an empty batch");
    let got = recv_exactly(&mut all, total as usize).await;
    for topic in &topics {
        let want: Vec<u64> = (0..total).filter(|n| topic_of(*n) == topic).collect();
        assert!(!want.is_empty());
        assert_eq!(ns_on(&got, topic), want, "topic {topic} in batch order");
    }
    ack_all(got).await;
    let want_b: Vec<u64> = (0..total).filter(|n| topic_of(*n) == &topics[1]).collect();
    let got_b = recv_exactly(&mut only_b, want_b.len()).await;
    assert_eq!(ns_on(&got_b, &topics[1]), want_b, "a group on one topic");
    ack_all(got_b).await;
    Outcome::Passed
}

/// A broker is healthy while it works, degraded while closing drains an
/// unsettled delivery, and unhealthy once closed.
pub async fn health_while_open_and_after_close(broker: SharedBroker, ctx: CaseContext) -> Outcome {
    assert_eq!(
        broker.health().await,
        Health::Healthy,
        "healthy when connected"
    );
    let topic = ctx.name("health");
    let mut o = options(ctx.name("g"), vec![topic.clone()]);
    o.ack_wait = Duration::from_secs(30);
    let mut sub = subscribe(&broker, o).await;
    publish(&broker, &topic, probe("k", 1)).await;
    let held = recv_n(&mut sub, 1).await;
    assert_eq!(
        broker.health().await,
        Health::Healthy,
        "healthy while in use"
    );
    let closer = broker.clone();
    let closing = tokio::spawn(async move { closer.close(EVENTUALLY).await });
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        match broker.health().await {
            Health::Degraded(_) => break,
            Health::Healthy => {}
            other => panic!("while closing drains: {other:?}"),
        }
        assert!(Instant::now() < deadline, "never degraded while draining");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!closing.is_finished(), "close waits for the held delivery");
    ack_all(held).await;
    tokio::time::timeout(EVENTUALLY, closing)
        .await
        .expect("close ends once drained")
        .expect("close task")
        .expect("close");
    assert!(
        matches!(broker.health().await, Health::Unhealthy(_)),
        "unhealthy once closed"
    );
    broker
        .close(Duration::from_secs(1))
        .await
        .expect("a second close is harmless");
    Outcome::Passed
}
