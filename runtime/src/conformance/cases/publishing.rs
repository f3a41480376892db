//! Publishing from the Watermill and Dapr suites: concurrent publishers,
//! batches over several topics, and health.

use super::*;

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
