//! Redelivery: nacks, delays, members that go away, keep-alives and
//! dead letters.

use super::*;

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
