//! Subscriptions from the Watermill and Dapr suites: several topics at
//! once, concurrent subscribe and unsubscribe, re-subscribing, a new
//! group's start position, leaving with deliveries unacked.

use super::*;

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
