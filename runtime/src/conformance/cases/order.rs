//! Per-key order and the in-flight limit.

use super::*;

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
