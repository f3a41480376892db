//! Unsubscribing and closing.

use super::*;

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
