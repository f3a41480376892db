//! Delivery: messages arrive intact and in order, to the groups and
//! topics they were meant for, shared among a group's members.

use super::*;

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
