//! One id published several times acts once through an inbox.

use super::*;

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
