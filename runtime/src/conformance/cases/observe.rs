//! Observers: reading topics from a position with no consumer group.

use super::*;

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
