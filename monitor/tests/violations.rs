//! Every kind of violation, made by publishing the offending event by hand
//! on a memory broker that a [`Monitor`] follows (as a deployment's
//! services would publish it: events on their topics, progress notices on
//! the choreography's progress topic), with a correct instance and a
//! reopened one as the controls that must not be violations.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use choreo_compiler::{check, SourceFile};
use choreo_monitor::follow::now_ms;
use choreo_monitor::watch::InstanceView;
use choreo_monitor::{Flow, InstanceState, Monitor, MonitorOptions, WatchOptions};
use choreo_runtime::broker::{SharedBroker, StartPosition};
use choreo_runtime::progress::{Completion, CompletionOutcome, EmittedEvent, ProgressNotice};
use choreo_runtime::service::Topics;
use choreo_runtime::{Envelope, MemoryBroker};

/// A small shop: an order is placed, paid or declined, and completed or
/// failed; a refund comes from outside.
const SPEC: &str = r#"
choreography Shop {
    key order_id: uuid

    command PlaceOrder { }
    event OrderPlaced { }
    event Approved { }
    event Declined { }
    @external
    event RefundRequested { }
    @terminal
    event Completed { }
    @terminal(failure)
    event Failed { }

    participant Orders {
        on PlaceOrder -> OrderPlaced
        on Approved -> Completed
        on Declined | RefundRequested -> Failed
    }

    participant Payment {
        on OrderPlaced -> Approved | Declined
    }
}
"#;

/// How long an event may wait for the notice that accounts for it.
const GRACE: Duration = Duration::from_millis(200);
/// How long the tests wait for the monitor to see what they published.
const PATIENCE: Duration = Duration::from_secs(10);
/// Topics under a prefix, as a real deployment may have.
const PREFIX: &str = "test.";

/// A monitor of the shop on a memory broker of its own, and what the
/// tests publish with.
struct Shop {
    flow: Flow,
    broker: SharedBroker,
    topics: Topics,
    monitor: Monitor,
}

impl Shop {
    async fn start() -> Shop {
        let (spec, _) = check(&SourceFile::new("shop.choreo", SPEC))
            .into_checked()
            .unwrap();
        let flow = Flow::new(&spec);
        let broker: SharedBroker = Arc::new(MemoryBroker::new());
        let topics = Topics::new(PREFIX);
        let options = MonitorOptions {
            topics: topics.clone(),
            start: StartPosition::Earliest,
            watch: WatchOptions {
                grace: GRACE,
                ..WatchOptions::default()
            },
        };
        let monitor = Monitor::start(flow.clone(), broker.clone(), options)
            .await
            .unwrap();
        Shop {
            flow,
            broker,
            topics,
            monitor,
        }
    }

    /// The wire type of the spec's message `name`.
    fn wire(&self, name: &str) -> String {
        self.flow
            .messages
            .values()
            .find(|m| m.name == name)
            .map(|m| m.wire.clone())
            .unwrap_or_else(|| panic!("the spec has no message `{name}`"))
    }

    /// The run-time name of `participant`'s reaction triggered by `trigger`
    /// (a spec name).
    fn reaction(&self, participant: &str, trigger: &str) -> String {
        let ty = self.wire(trigger);
        self.flow
            .reactions
            .iter()
            .find(|r| r.participant == participant && r.triggers.contains(&ty))
            .map(|r| r.name.clone())
            .unwrap_or_else(|| panic!("`{participant}` has no reaction to `{trigger}`"))
    }

    /// Publishes the envelope of type `name` for instance `key` on the
    /// topic of `topic` (a spec name, or a wire type the spec lacks).
    async fn publish_on(&self, topic: &str, key: &str, ty: &str, id: &str, cause: Option<&str>) {
        let mut b = Envelope::builder(ty.to_owned(), key.to_owned()).id(id.to_owned());
        if let Some(c) = cause {
            b = b.causation_id(c.to_owned());
        }
        self.broker
            .publish(&self.topics.for_type(topic), b.build())
            .await
            .unwrap();
    }

    /// Publishes `env` on its own topic.
    async fn publish(&self, env: &Envelope) {
        self.broker
            .publish(&self.topics.for_type(env.ty()), env.clone())
            .await
            .unwrap();
    }

    /// Publishes event `name` of `key` on its own topic.
    async fn event(&self, key: &str, name: &str, id: &str, cause: Option<&str>) {
        let ty = self.wire(name);
        self.publish_on(&ty, key, &ty, id, cause).await;
    }

    /// Publishes the progress notice of `participant`: its reaction to
    /// `trigger` (id, spec name) handled it and emitted `emitted` (id,
    /// spec name).
    async fn handled(
        &self,
        key: &str,
        participant: &str,
        trigger: (&str, &str),
        emitted: &[(&str, &str)],
    ) {
        let completion = Completion {
            reaction: self.reaction(participant, trigger.1).into(),
            instance: key.to_owned().into(),
            event_id: trigger.0.to_owned().into(),
            event_type: self.wire(trigger.1).into(),
            outcome: CompletionOutcome::Handled,
            emitted: emitted
                .iter()
                .map(|(id, name)| EmittedEvent {
                    id: (*id).to_owned().into(),
                    ty: self.wire(name).into(),
                })
                .collect(),
        };
        let notice = ProgressNotice {
            choreography: self.flow.choreography.clone().into(),
            participant: participant.to_owned().into(),
            completions: vec![completion],
        };
        // As the runtime publishes it: keyed by the choreography.
        let env = Envelope::of(self.flow.choreography.clone(), notice)
            .source(participant.to_owned())
            .build();
        self.broker
            .publish(&self.topics.progress(&self.flow.choreography), env)
            .await
            .unwrap();
    }

    /// Publishes order `key` from `PlaceOrder` to `Completed`, every event
    /// and notice as the services would: ids `{key}-c`, `-p`, `-a`, `-d`.
    async fn order(&self, key: &str) {
        let id = |s: &str| format!("{key}-{s}");
        let (c, p, a, d) = (id("c"), id("p"), id("a"), id("d"));
        self.event(key, "PlaceOrder", &c, None).await;
        self.handled(key, "Orders", (&c, "PlaceOrder"), &[(&p, "OrderPlaced")])
            .await;
        self.event(key, "OrderPlaced", &p, Some(&c)).await;
        self.handled(key, "Payment", (&p, "OrderPlaced"), &[(&a, "Approved")])
            .await;
        self.event(key, "Approved", &a, Some(&p)).await;
        self.handled(key, "Orders", (&a, "Approved"), &[(&d, "Completed")])
            .await;
        self.event(key, "Completed", &d, Some(&a)).await;
    }

    /// Instance `key` once `until` holds of it; fails after [`PATIENCE`],
    /// showing the instance.
    async fn until(
        &self,
        key: &str,
        what: &str,
        until: impl Fn(&InstanceView) -> bool,
    ) -> InstanceView {
        let started = Instant::now();
        loop {
            let view = self.monitor.instance(key);
            if let Some(v) = view.as_ref().filter(|v| until(v)) {
                return v.clone();
            }
            assert!(
                started.elapsed() < PATIENCE,
                "instance `{key}` not {what} within {PATIENCE:?}: {view:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the monitor has seen event `id` of instance `key`.
    async fn seen(&self, key: &str, id: &str) {
        self.until(key, &format!("seen with `{id}`"), |v| {
            v.events.iter().any(|e| e.id == id)
        })
        .await;
    }

    /// Waits until the clock is past the millisecond of everything seen of
    /// instance `key` (envelope times are to the millisecond), so that what
    /// is published next is stamped after its settlement.
    async fn past(&self, key: &str) {
        let view = self.monitor.instance(key).unwrap();
        // A notice is published before the event it reports: the latest
        // event is the latest envelope.
        let last = view.events.iter().map(|e| e.at_ms).max().unwrap();
        while now_ms() <= last {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Instance `key` once it is violated.
    async fn violated(&self, key: &str) -> InstanceView {
        self.until(key, "violated", |v| v.state == InstanceState::Violated)
            .await
    }

    /// Instance `key` once it settled in `state`, checked again after the
    /// grace period has passed for everything in it: still so, with no
    /// violation.
    async fn settles_clean(&self, key: &str, state: InstanceState) -> InstanceView {
        self.until(key, state.as_str(), |v| v.state == state).await;
        tokio::time::sleep(GRACE * 2).await;
        let v = self.monitor.instance(key).unwrap();
        assert_eq!(v.state, state, "{v:#?}");
        assert!(v.violations.is_empty(), "{v:#?}");
        assert!(v.reason.is_none(), "{v:#?}");
        v
    }

    async fn stop(self) {
        self.monitor.shutdown().await;
    }
}

/// Checks that `v` is violated for event `id` of spec type `name`, its
/// state's reason and its violation's both containing `says`.
fn assert_violation(shop: &Shop, v: &InstanceView, id: &str, name: &str, says: &str) {
    assert_eq!(v.state, InstanceState::Violated, "{v:#?}");
    let found = v
        .violations
        .iter()
        .find(|x| x.event_id == id && x.reason.contains(says))
        .unwrap_or_else(|| panic!("no violation of `{id}` saying `{says}`: {v:#?}"));
    assert_eq!(found.event_type, shop.wire(name), "{v:#?}");
    assert!(
        v.violations.iter().any(|x| x.reason.contains(says)),
        "{v:#?}"
    );
    let reason = v.reason.as_deref().unwrap_or_default();
    assert!(
        v.violations.iter().any(|x| x.reason == reason),
        "the state's reason is one of its violations: {v:#?}"
    );
}

#[tokio::test]
async fn a_correct_instance_succeeds_with_no_violation() {
    let shop = Shop::start().await;
    shop.order("ok").await;
    let v = shop.settles_clean("ok", InstanceState::Succeeded).await;
    // The timeline is in the order seen, which across topics need not be
    // the order published; each event's emitter is from its notice.
    let mut by: Vec<(&str, Option<&str>)> = v
        .events
        .iter()
        .map(|e| (e.name.as_str(), e.participant.as_deref()))
        .collect();
    by.sort_unstable();
    assert_eq!(
        by,
        [
            ("Approved", Some("Payment")),
            ("Completed", Some("Orders")),
            ("OrderPlaced", Some("Orders")),
            ("PlaceOrder", None),
        ]
    );
    assert!(v.waiting.is_empty(), "{v:#?}");
    let s = shop.monitor.summary();
    assert_eq!(s.instances["succeeded"], 1, "{s:#?}");
    assert_eq!(s.instances.values().sum::<u64>(), 1, "{s:#?}");
    shop.stop().await;
}

#[tokio::test]
async fn a_type_the_spec_does_not_declare_on_a_topic_of_the_spec() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    let placed = shop.wire("OrderPlaced");
    shop.publish_on(&placed, "k", "Shop.Refunded", "k-x", Some("k-c"))
        .await;
    let v = shop.violated("k").await;
    let says = format!("the spec declares no type `Shop.Refunded` (seen on `{placed}`)");
    assert_eq!(v.state, InstanceState::Violated, "{v:#?}");
    let x = v.violations.iter().find(|x| x.event_id == "k-x").unwrap();
    assert_eq!(x.event_type, "Shop.Refunded");
    assert_eq!(x.reason, says);
    assert_eq!(v.reason.as_deref(), Some(says.as_str()));
    // Nothing else: an undeclared type is not also an unaccounted event.
    tokio::time::sleep(GRACE * 2).await;
    let v = shop.monitor.instance("k").unwrap();
    assert_eq!(v.violations.len(), 1, "{v:#?}");
    shop.stop().await;
}

#[tokio::test]
async fn a_declared_type_on_another_types_topic() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    shop.handled(
        "k",
        "Orders",
        ("k-c", "PlaceOrder"),
        &[("k-p", "OrderPlaced")],
    )
    .await;
    shop.event("k", "OrderPlaced", "k-p", Some("k-c")).await;
    shop.handled(
        "k",
        "Payment",
        ("k-p", "OrderPlaced"),
        &[("k-a", "Approved")],
    )
    .await;
    // Approved, published on the topic of Declined.
    shop.publish_on(
        &shop.wire("Declined"),
        "k",
        &shop.wire("Approved"),
        "k-a",
        Some("k-p"),
    )
    .await;
    let v = shop.violated("k").await;
    assert_violation(
        &shop,
        &v,
        "k-a",
        "Approved",
        "`Approved` came on the topic of `Declined`",
    );
    shop.stop().await;
}

#[tokio::test]
async fn an_event_no_notice_accounts_for_after_grace() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    // OrderPlaced, but no notice of Orders says it emitted it.
    let published = Instant::now();
    shop.event("k", "OrderPlaced", "k-p", Some("k-c")).await;
    let v = shop.violated("k").await;
    assert!(
        published.elapsed() >= GRACE,
        "violated after {:?}, within the grace of {GRACE:?}",
        published.elapsed()
    );
    assert_violation(
        &shop,
        &v,
        "k-p",
        "OrderPlaced",
        "no participant's progress notice accounts for `OrderPlaced`",
    );
    // An `@external` event needs no notice.
    shop.event("e2", "PlaceOrder", "e2-c", None).await;
    shop.event("e2", "RefundRequested", "e2-r", None).await;
    tokio::time::sleep(GRACE * 2).await;
    let v = shop.monitor.instance("e2").unwrap();
    assert!(v.violations.is_empty(), "{v:#?}");
    shop.stop().await;
}

#[tokio::test]
async fn an_event_a_notice_says_a_reaction_emitted_without_that_outcome() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    shop.handled(
        "k",
        "Orders",
        ("k-c", "PlaceOrder"),
        &[("k-p", "OrderPlaced")],
    )
    .await;
    shop.event("k", "OrderPlaced", "k-p", Some("k-c")).await;
    // Payment's reaction to OrderPlaced emits Approved or Declined, never
    // Completed.
    shop.handled(
        "k",
        "Payment",
        ("k-p", "OrderPlaced"),
        &[("k-x", "Completed")],
    )
    .await;
    shop.event("k", "Completed", "k-x", Some("k-p")).await;
    let v = shop.violated("k").await;
    assert_violation(
        &shop,
        &v,
        "k-x",
        "Completed",
        "`Payment on OrderPlaced` emitted `Completed`, which it has no outcome for",
    );
    shop.stop().await;
}

#[tokio::test]
async fn an_event_after_the_instance_settled_that_nothing_later_caused() {
    let shop = Shop::start().await;
    shop.order("k").await;
    shop.until("k", "succeeded", |v| v.state == InstanceState::Succeeded)
        .await;
    // Orders completes the order a second time, from the Approved seen
    // before the settlement.
    shop.handled("k", "Orders", ("k-a", "Approved"), &[("k-d2", "Completed")])
        .await;
    shop.event("k", "Completed", "k-d2", Some("k-a")).await;
    let v = shop.violated("k").await;
    assert_violation(
        &shop,
        &v,
        "k-d2",
        "Completed",
        "`Completed` came after the instance settled, and nothing seen since caused it",
    );
    assert_eq!(v.violations.len(), 1, "{v:#?}");
    shop.stop().await;
}

/// Publishes the reopening of settled order `key` by a second command,
/// declined this time: each event is published once the monitor has seen
/// its cause (`in_order`), or every follow-up before the command.
async fn reopen(shop: &Shop, key: &str, in_order: bool) {
    let id = |s: &str| format!("{key}-{s}2");
    let (c, p, n, f) = (id("c"), id("p"), id("n"), id("f"));
    // The command and its follow-ups are stamped after the settlement.
    shop.past(key).await;
    let command = Envelope::builder(shop.wire("PlaceOrder"), key.to_owned())
        .id(c.clone())
        .build();
    if in_order {
        shop.publish(&command).await;
        shop.seen(key, &c).await;
    }
    shop.handled(key, "Orders", (&c, "PlaceOrder"), &[(&p, "OrderPlaced")])
        .await;
    shop.event(key, "OrderPlaced", &p, Some(&c)).await;
    if in_order {
        shop.seen(key, &p).await;
    }
    shop.handled(key, "Payment", (&p, "OrderPlaced"), &[(&n, "Declined")])
        .await;
    shop.event(key, "Declined", &n, Some(&p)).await;
    if in_order {
        shop.seen(key, &n).await;
    }
    shop.handled(key, "Orders", (&n, "Declined"), &[(&f, "Failed")])
        .await;
    shop.event(key, "Failed", &f, Some(&n)).await;
    if !in_order {
        shop.seen(key, &f).await;
        shop.publish(&command).await;
    }
    shop.seen(key, &c).await;
}

#[tokio::test]
async fn a_command_after_the_settlement_reopens_the_instance_without_violation() {
    let shop = Shop::start().await;
    shop.order("k").await;
    shop.until("k", "succeeded", |v| v.state == InstanceState::Succeeded)
        .await;
    reopen(&shop, "k", true).await;
    // Still settled by its first terminal event, with every follow-up of
    // the second command accounted for.
    let v = shop.settles_clean("k", InstanceState::Succeeded).await;
    assert_eq!(v.events.len(), 8, "{v:#?}");
    assert!(
        v.events
            .iter()
            .all(|e| e.name == "PlaceOrder" || e.participant.is_some()),
        "{v:#?}"
    );

    // And an `@external` event after the settlement, with what it causes.
    shop.order("x").await;
    shop.until("x", "succeeded", |v| v.state == InstanceState::Succeeded)
        .await;
    shop.past("x").await;
    shop.event("x", "RefundRequested", "x-r", None).await;
    shop.seen("x", "x-r").await;
    shop.handled(
        "x",
        "Orders",
        ("x-r", "RefundRequested"),
        &[("x-f", "Failed")],
    )
    .await;
    shop.event("x", "Failed", "x-f", Some("x-r")).await;
    shop.seen("x", "x-f").await;
    let v = shop.settles_clean("x", InstanceState::Succeeded).await;
    assert_eq!(v.events.len(), 6, "{v:#?}");
    shop.stop().await;
}

/// One subscription to many topics keeps no order across them (the
/// memory broker hands a group's backlog out topic by topic, and NATS or
/// Redis consumers may too): the follow-ups of a reopening command can be
/// seen before the command. They are no violation once it is seen.
#[tokio::test]
async fn a_reopening_commands_follow_ups_seen_before_it_are_no_violation() {
    let shop = Shop::start().await;
    shop.order("k").await;
    shop.until("k", "succeeded", |v| v.state == InstanceState::Succeeded)
        .await;
    reopen(&shop, "k", false).await;
    let v = shop.settles_clean("k", InstanceState::Succeeded).await;
    assert_eq!(v.events.len(), 8, "{v:#?}");
    shop.stop().await;
}

#[tokio::test]
async fn two_alternatives_of_one_bar_from_one_firing() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    shop.handled(
        "k",
        "Orders",
        ("k-c", "PlaceOrder"),
        &[("k-p", "OrderPlaced")],
    )
    .await;
    shop.event("k", "OrderPlaced", "k-p", Some("k-c")).await;
    // One firing of Payment on OrderPlaced emits both alternatives.
    shop.handled(
        "k",
        "Payment",
        ("k-p", "OrderPlaced"),
        &[("k-a", "Approved"), ("k-n", "Declined")],
    )
    .await;
    shop.event("k", "Approved", "k-a", Some("k-p")).await;
    shop.event("k", "Declined", "k-n", Some("k-p")).await;
    let v = shop.violated("k").await;
    // The violation is the firing's: it names the event that fired it.
    assert_violation(
        &shop,
        &v,
        "k-p",
        "OrderPlaced",
        "`Payment on OrderPlaced` emitted `Approved` and `Declined` from one firing",
    );
    shop.stop().await;
}

#[tokio::test]
async fn two_alternatives_reported_by_two_notices_of_one_firing() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    shop.handled(
        "k",
        "Orders",
        ("k-c", "PlaceOrder"),
        &[("k-p", "OrderPlaced")],
    )
    .await;
    shop.event("k", "OrderPlaced", "k-p", Some("k-c")).await;
    // The same event handled again (a redelivery) and the other
    // alternative emitted this time: still one firing, by its cause.
    shop.handled(
        "k",
        "Payment",
        ("k-p", "OrderPlaced"),
        &[("k-a", "Approved")],
    )
    .await;
    shop.event("k", "Approved", "k-a", Some("k-p")).await;
    shop.handled(
        "k",
        "Payment",
        ("k-p", "OrderPlaced"),
        &[("k-n", "Declined")],
    )
    .await;
    shop.event("k", "Declined", "k-n", Some("k-p")).await;
    let v = shop.violated("k").await;
    assert_violation(
        &shop,
        &v,
        "k-p",
        "OrderPlaced",
        "`Payment on OrderPlaced` emitted `Approved` and `Declined` from one firing",
    );
    shop.stop().await;
}

#[tokio::test]
async fn an_event_whose_cause_triggers_no_reaction_that_may_emit_it() {
    let shop = Shop::start().await;
    shop.event("k", "PlaceOrder", "k-c", None).await;
    shop.handled(
        "k",
        "Orders",
        ("k-c", "PlaceOrder"),
        &[("k-p", "OrderPlaced")],
    )
    .await;
    shop.event("k", "OrderPlaced", "k-p", Some("k-c")).await;
    shop.handled(
        "k",
        "Payment",
        ("k-p", "OrderPlaced"),
        &[("k-a", "Approved")],
    )
    .await;
    // Approved, by Payment's notice, but its causation id is the command,
    // which triggers only Orders' reaction, which never emits Approved.
    shop.event("k", "Approved", "k-a", Some("k-c")).await;
    let v = shop.violated("k").await;
    assert_violation(
        &shop,
        &v,
        "k-a",
        "Approved",
        "`Approved` is caused by `PlaceOrder`, which triggers no reaction that may emit it",
    );
    assert_eq!(v.violations.len(), 1, "{v:#?}");
    shop.stop().await;
}
