//! The watch, fed by hand with what a deployment of the ecommerce example
//! publishes: each state, what an instance waits for, and every kind of
//! violation made on purpose, with the near misses that must not be one.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use choreo_compiler::{check, SourceFile};
use choreo_monitor::watch::{InstanceView, Watch, WatchOptions};
use choreo_monitor::{Flow, InstanceState};
use choreo_runtime::progress::{Completion, CompletionOutcome, EmittedEvent, ProgressNotice};
use choreo_runtime::Envelope;

const SECOND: i64 = 1000;

fn flow_of(path: &str, text: Option<&str>) -> Flow {
    let text = text.map_or_else(
        || {
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path))
                .unwrap()
        },
        str::to_owned,
    );
    let (spec, _) = check(&SourceFile::new(path, text)).into_checked().unwrap();
    Flow::new(&spec)
}

fn ecommerce() -> Watch {
    let options = WatchOptions {
        stuck_after: Duration::from_secs(30),
        grace: Duration::from_secs(5),
        keep_settled: 100,
    };
    Watch::new(
        flow_of("examples/ecommerce/ecommerce.choreo", None),
        options,
    )
}

fn wire(name: &str) -> String {
    format!("Ecommerce.v1.{name}")
}

/// An event of `key` named `name` (spec name), with an id and a cause.
fn event(key: &str, name: &str, id: &str, cause: Option<&str>) -> Envelope {
    let mut b = Envelope::builder(wire(name), key.to_owned()).id(id.to_owned());
    if let Some(c) = cause {
        b = b.causation_id(c.to_owned());
    }
    b.build()
}

/// Feeds `env` as seen on its own topic.
fn seen(w: &mut Watch, env: &Envelope, at: i64) {
    w.observe_event(env.ty(), env, at);
}

/// `participant`'s reaction `reaction` handled `(id, name)` and emitted
/// `emitted`.
fn handled(
    w: &mut Watch,
    key: &str,
    participant: &str,
    reaction: &str,
    trigger: (&str, &str),
    emitted: &[(&str, &str)],
    at: i64,
) {
    notice(
        w,
        key,
        participant,
        reaction,
        trigger,
        CompletionOutcome::Handled,
        emitted,
        at,
    );
}

#[allow(clippy::too_many_arguments)]
fn notice(
    w: &mut Watch,
    key: &str,
    participant: &str,
    reaction: &str,
    trigger: (&str, &str),
    outcome: CompletionOutcome,
    emitted: &[(&str, &str)],
    at: i64,
) {
    let n = ProgressNotice {
        choreography: "Ecommerce".into(),
        participant: participant.to_owned().into(),
        completions: vec![Completion {
            reaction: reaction.to_owned().into(),
            instance: key.to_owned().into(),
            event_id: trigger.0.to_owned().into(),
            event_type: wire(trigger.1).into(),
            outcome,
            emitted: emitted
                .iter()
                .map(|(id, name)| EmittedEvent {
                    id: (*id).to_owned().into(),
                    ty: wire(name).into(),
                })
                .collect(),
        }],
    };
    w.observe_notice(&n, at);
}

/// What a deployment publishes for one order: an event or command seen
/// on its topic, or a progress notice of one reaction.
enum Step {
    /// Name, id, cause.
    Seen(&'static str, &'static str, Option<&'static str>),
    /// Participant, reaction, trigger (id, name), outcome, emitted.
    Notice(
        &'static str,
        &'static str,
        (&'static str, &'static str),
        Done,
        &'static [(&'static str, &'static str)],
    ),
}

/// How a notice's reaction finished.
#[derive(Clone, Copy)]
enum Done {
    Handled,
    Waiting,
}

use Step::{Notice, Seen};

const NOTIFY: &str = "on_order_placed_or_order_completed_or_order_failed";
const PAY: &str = "on_order_placed_and_stock_reserved";
const SHIP: &str = "on_order_placed_and_parcel_prepared";

/// One order from `PlaceOrder` to `PaymentApproved`, every notice in.
const UP_TO_PAYMENT: &[Step] = &[
    Seen("PlaceOrder", "c", None),
    Notice(
        "Orders",
        "on_place_order",
        ("c", "PlaceOrder"),
        Done::Handled,
        &[("p", "OrderPlaced")],
    ),
    Seen("OrderPlaced", "p", Some("c")),
    Notice(
        "Inventory",
        "on_order_placed",
        ("p", "OrderPlaced"),
        Done::Handled,
        &[("r", "StockReserved")],
    ),
    Notice(
        "Notifications",
        NOTIFY,
        ("p", "OrderPlaced"),
        Done::Handled,
        &[],
    ),
    Notice("Payment", PAY, ("p", "OrderPlaced"), Done::Waiting, &[]),
    Notice("Logistics", SHIP, ("p", "OrderPlaced"), Done::Waiting, &[]),
    Seen("StockReserved", "r", Some("p")),
    Notice(
        "Payment",
        PAY,
        ("r", "StockReserved"),
        Done::Handled,
        &[("a", "PaymentApproved")],
    ),
    Seen("PaymentApproved", "a", Some("r")),
];

/// The rest of the order: Seller, Logistics, Orders, Notifications.
const REST: &[Step] = &[
    Notice(
        "Seller",
        "on_payment_approved",
        ("a", "PaymentApproved"),
        Done::Handled,
        &[("s", "ParcelPrepared")],
    ),
    Seen("ParcelPrepared", "s", Some("a")),
    Notice(
        "Logistics",
        SHIP,
        ("s", "ParcelPrepared"),
        Done::Handled,
        &[("h", "ShipmentScheduled")],
    ),
    Seen("ShipmentScheduled", "h", Some("s")),
    Notice(
        "Orders",
        "on_shipment_scheduled",
        ("h", "ShipmentScheduled"),
        Done::Handled,
        &[("d", "OrderCompleted")],
    ),
    Seen("OrderCompleted", "d", Some("h")),
    Notice(
        "Notifications",
        NOTIFY,
        ("d", "OrderCompleted"),
        Done::Handled,
        &[],
    ),
];

/// Feeds `steps` for order `key`, one millisecond apart from `t`.
fn replay<'a>(w: &mut Watch, key: &str, steps: impl IntoIterator<Item = &'a Step>, t: i64) {
    for (step, at) in steps.into_iter().zip(t..) {
        match *step {
            Seen(name, id, cause) => seen(w, &event(key, name, id, cause), at),
            Notice(participant, reaction, trigger, done, emitted) => {
                let outcome = match done {
                    Done::Handled => CompletionOutcome::Handled,
                    Done::Waiting => CompletionOutcome::JoinWaiting,
                };
                notice(w, key, participant, reaction, trigger, outcome, emitted, at);
            }
        }
    }
}

fn up_to_payment(w: &mut Watch, key: &str, t: i64) {
    replay(w, key, UP_TO_PAYMENT, t);
}

fn rest(w: &mut Watch, key: &str, t: i64) {
    replay(w, key, REST, t);
}

fn view(w: &Watch, key: &str, now: i64) -> InstanceView {
    w.instance(key, now).unwrap()
}

#[test]
fn an_order_runs_waits_for_seller_and_succeeds() {
    let mut w = ecommerce();
    up_to_payment(&mut w, "o1", 0);
    let v = view(&w, "o1", 10);
    assert_eq!(v.state, InstanceState::Running, "{v:#?}");
    let waits: Vec<(String, Vec<String>, bool)> = v
        .waiting
        .iter()
        .map(|w| (w.participant.clone(), w.events.clone(), w.join))
        .collect();
    assert_eq!(
        waits,
        [
            (
                "Logistics".to_owned(),
                vec!["ParcelPrepared".to_owned()],
                true
            ),
            (
                "Seller".to_owned(),
                vec!["PaymentApproved".to_owned()],
                false
            ),
        ]
    );
    // No progress for longer than `stuck_after`: stuck, still waiting for Seller.
    let later = 31 * SECOND;
    let v = view(&w, "o1", later);
    assert_eq!(v.state, InstanceState::Stuck);
    assert!(v.waiting.iter().any(|w| w.participant == "Seller"));
    assert_eq!(w.summary(later).instances["stuck"], 1);
    rest(&mut w, "o1", later);
    let v = view(&w, "o1", later + 10);
    assert_eq!(v.state, InstanceState::Succeeded, "{v:#?}");
    assert!(v.waiting.is_empty());
    assert!(v.violations.is_empty());
    // The timeline: emitters from the notices, latencies from the causes.
    let approved = v
        .events
        .iter()
        .find(|e| e.name == "PaymentApproved")
        .unwrap();
    assert_eq!(approved.participant.as_deref(), Some("Payment"));
    assert_eq!(approved.latency_ms, Some(2));
    let s = w.summary(later + 10 * SECOND);
    assert_eq!(s.instances["succeeded"], 1);
    assert_eq!(s.instances.values().sum::<u64>(), 1);
    assert_eq!(s.events["OrderPlaced"], 1);
}

#[test]
fn duplicates_and_notices_before_their_events_are_no_violation() {
    let mut w = ecommerce();
    let key = "o2";
    // The notice that accounts for OrderPlaced arrives before OrderPlaced.
    seen(&mut w, &event(key, "PlaceOrder", "c", None), 0);
    handled(
        &mut w,
        key,
        "Orders",
        "on_place_order",
        ("c", "PlaceOrder"),
        &[("p", "OrderPlaced")],
        1,
    );
    seen(&mut w, &event(key, "PlaceOrder", "c", None), 2);
    up_to_payment(&mut w, key, 3);
    rest(&mut w, key, 20);
    let v = view(&w, key, 60 * SECOND);
    assert_eq!(v.state, InstanceState::Succeeded, "{v:#?}");
    assert_eq!(
        w.summary(0).events["PlaceOrder"],
        1,
        "a duplicate counts once"
    );
}

#[test]
fn an_instance_begun_before_the_monitor_is_partial_never_violated() {
    let mut w = ecommerce();
    seen(&mut w, &event("o3", "PaymentApproved", "a", Some("r")), 0);
    let v = view(&w, "o3", 60 * SECOND);
    assert_eq!(v.state, InstanceState::Partial);
    assert!(v.violations.is_empty());
}

#[test]
fn a_dead_letter_marks_the_instance_with_its_reason() {
    let mut w = ecommerce();
    up_to_payment(&mut w, "o4", 0);
    notice(
        &mut w,
        "o4",
        "Seller",
        "on_payment_approved",
        ("a", "PaymentApproved"),
        CompletionOutcome::DeadLettered {
            reason: "handler failed: no parcel".into(),
        },
        &[],
        10,
    );
    let v = view(&w, "o4", 11);
    assert_eq!(v.state, InstanceState::DeadLettered);
    assert!(v.reason.unwrap().contains("no parcel"));
    // From a `.dlq` topic too.
    up_to_payment(&mut w, "o5", 0);
    let dead = choreo_runtime::broker::dead_letter_envelope(
        &event("o5", "PaymentApproved", "a", Some("r")),
        &wire("PaymentApproved"),
        "Seller",
        5,
        "max deliveries",
    );
    w.observe_dead_letter(&dead, 12);
    assert_eq!(view(&w, "o5", 13).state, InstanceState::DeadLettered);
}

#[test]
fn a_command_past_its_deadline_is_stuck() {
    let spec = r#"
        choreography Shop {
            key order_id: uuid
            @deadline(2m)
            command PlaceOrder { }
            event OrderPlaced { }
            @terminal event Done { }
            participant Orders {
                on PlaceOrder -> OrderPlaced
                on OrderPlaced -> Done
            }
        }"#;
    let flow = flow_of("shop.choreo", Some(spec));
    let options = WatchOptions {
        stuck_after: Duration::from_secs(3600),
        ..WatchOptions::default()
    };
    let mut w = Watch::new(flow, options);
    let place = Envelope::builder("Shop.PlaceOrder", "k").id("c").build();
    w.observe_event("Shop.PlaceOrder", &place, 0);
    assert_eq!(
        w.instance("k", 119 * SECOND).unwrap().state,
        InstanceState::Running
    );
    let v = w.instance("k", 121 * SECOND).unwrap();
    assert_eq!(v.state, InstanceState::Stuck);
    assert!(v.reason.unwrap().contains("deadline"));
}

/// Runs `offend` on an order that is up to `PaymentApproved`, and returns
/// the violations a minute later.
fn violations_of(offend: impl FnOnce(&mut Watch)) -> Vec<String> {
    let mut w = ecommerce();
    up_to_payment(&mut w, "o", 0);
    offend(&mut w);
    let v = view(&w, "o", 60 * SECOND);
    v.violations.into_iter().map(|v| v.reason).collect()
}

#[test]
fn the_order_itself_is_no_violation() {
    assert_eq!(violations_of(|_| {}), Vec::<String>::new());
}

#[test]
fn an_undeclared_type_is_a_violation() {
    let found = violations_of(|w| {
        let odd = Envelope::builder(wire("Refunded"), "o")
            .id("x")
            .causation_id("a")
            .build();
        w.observe_event(&wire("PaymentApproved"), &odd, 7);
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("declares no type `Ecommerce.v1.Refunded`"),
        "{found:?}"
    );
    // A declared type on another type's topic.
    let found = violations_of(|w| {
        let moved = event("o", "ParcelPrepared", "s", Some("a"));
        w.observe_event(&wire("PaymentApproved"), &moved, 7);
    });
    assert!(
        found
            .iter()
            .any(|f| f.contains("came on the topic of `PaymentApproved`")),
        "{found:?}"
    );
}

#[test]
fn an_event_no_notice_accounts_for_is_a_violation() {
    let found = violations_of(|w| seen(w, &event("o", "ParcelPrepared", "s", Some("a")), 7));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("accounts for `ParcelPrepared`"),
        "{found:?}"
    );
    // Within the grace period it is not one yet.
    let mut w = ecommerce();
    up_to_payment(&mut w, "o", 0);
    seen(&mut w, &event("o", "ParcelPrepared", "s", Some("a")), 7);
    assert!(view(&w, "o", 7 + 4 * SECOND).violations.is_empty());
}

#[test]
fn an_event_emitted_by_a_reaction_without_that_outcome_is_a_violation() {
    let found = violations_of(|w| {
        handled(
            w,
            "o",
            "Seller",
            "on_payment_approved",
            ("a", "PaymentApproved"),
            &[("x", "OrderCompleted")],
            7,
        );
        seen(w, &event("o", "OrderCompleted", "x", Some("a")), 8);
    });
    assert!(
        found.iter().any(|f| f.contains(
            "`Seller on PaymentApproved` emitted `OrderCompleted`, which it has no outcome for"
        )),
        "{found:?}"
    );
}

#[test]
fn two_alternatives_from_one_firing_are_a_violation() {
    let found = violations_of(|w| {
        handled(
            w,
            "o",
            "Inventory",
            "on_order_placed",
            ("p", "OrderPlaced"),
            &[("n", "OutOfStock")],
            7,
        );
        seen(w, &event("o", "OutOfStock", "n", Some("p")), 8);
    });
    assert!(
        found
            .iter()
            .any(|f| f.contains("emitted `OutOfStock` and `StockReserved` from one firing")),
        "{found:?}"
    );
}

#[test]
fn an_event_whose_cause_cannot_emit_it_is_a_violation() {
    let found = violations_of(|w| {
        handled(
            w,
            "o",
            "Seller",
            "on_payment_approved",
            ("a", "PaymentApproved"),
            &[("s", "ParcelPrepared")],
            7,
        );
        // ParcelPrepared, but caused by OrderPlaced, which no reaction
        // that emits it is triggered by.
        seen(w, &event("o", "ParcelPrepared", "s", Some("p")), 8);
    });
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("caused by `OrderPlaced`"), "{found:?}");
}

#[test]
fn an_event_after_settlement_is_a_violation_unless_something_later_caused_it() {
    let mut w = ecommerce();
    up_to_payment(&mut w, "o", 0);
    rest(&mut w, "o", 10);
    assert_eq!(view(&w, "o", 20).state, InstanceState::Succeeded);
    handled(
        &mut w,
        "o",
        "Seller",
        "on_payment_approved",
        ("a", "PaymentApproved"),
        &[("s2", "ParcelPrepared")],
        30,
    );
    seen(&mut w, &event("o", "ParcelPrepared", "s2", Some("a")), 31);
    let v = view(&w, "o", 40);
    assert_eq!(v.state, InstanceState::Violated);
    assert!(
        v.violations[0]
            .reason
            .contains("after the instance settled"),
        "{v:#?}"
    );
    // A new command after settlement may start more; what it causes is allowed.
    let mut w = ecommerce();
    up_to_payment(&mut w, "q", 0);
    rest(&mut w, "q", 10);
    seen(&mut w, &event("q", "PlaceOrder", "c2", None), 30);
    handled(
        &mut w,
        "q",
        "Orders",
        "on_place_order",
        ("c2", "PlaceOrder"),
        &[("p2", "OrderPlaced")],
        31,
    );
    seen(&mut w, &event("q", "OrderPlaced", "p2", Some("c2")), 32);
    assert!(view(&w, "q", 40).violations.is_empty());
}

#[test]
fn settled_instances_beyond_the_kept_are_forgotten_but_counted() {
    let options = WatchOptions {
        keep_settled: 3,
        ..WatchOptions::default()
    };
    let mut w = Watch::new(
        flow_of("examples/ecommerce/ecommerce.choreo", None),
        options,
    );
    for i in 0..10 {
        let key = format!("o{i}");
        up_to_payment(&mut w, &key, i * 100);
        rest(&mut w, &key, i * 100 + 10);
    }
    assert!(w.instance("o0", 2000).is_none());
    assert!(w.instance("o9", 2000).is_some());
    assert_eq!(w.instances(None, 100, 2000).len(), 3);
    assert_eq!(w.summary(2000).instances["succeeded"], 10);
}

#[test]
fn events_seen_out_of_order_settle_once_their_causes_are_seen() {
    let mut w = ecommerce();
    let key = "late";
    up_to_payment(&mut w, key, 0);
    // The rest arrives in reverse, the terminal event first: settled only
    // once the last of it (the first step) is in.
    for (i, step) in REST.iter().rev().enumerate() {
        let at = 10 + i as i64;
        assert_ne!(
            view(&w, key, at).state,
            InstanceState::Succeeded,
            "settled with {} of {} steps in",
            i,
            REST.len()
        );
        replay(&mut w, key, [step], at);
    }
    let v = view(&w, key, 60 * SECOND);
    assert_eq!(v.state, InstanceState::Succeeded, "{v:#?}");
    assert!(v.violations.is_empty());
    // The command seen last: partial until then, never violated.
    let mut w = ecommerce();
    replay(&mut w, "k", UP_TO_PAYMENT.iter().skip(1), 0);
    assert_eq!(view(&w, "k", 60 * SECOND).state, InstanceState::Partial);
    replay(&mut w, "k", &UP_TO_PAYMENT[..1], 20);
    assert_eq!(view(&w, "k", 21).state, InstanceState::Running);
}

#[test]
fn reactions_count_what_they_handled_and_what_waits_for_them() {
    let mut w = ecommerce();
    // Two orders up to PaymentApproved, one of them to the end; events
    // one millisecond apart, so every handling took a millisecond or two.
    up_to_payment(&mut w, "o1", 0);
    rest(&mut w, "o1", 100);
    up_to_payment(&mut w, "o2", 200);
    // A notice delivered twice counts once.
    handled(
        &mut w,
        "o2",
        "Orders",
        "on_place_order",
        ("c", "PlaceOrder"),
        &[("p", "OrderPlaced")],
        300,
    );
    let s = w.summary(400);
    let by = |participant: &str, trigger: &str| {
        s.reactions
            .iter()
            .find(|r| r.participant == participant && r.trigger == trigger)
            .unwrap_or_else(|| panic!("no {participant} on {trigger}: {:#?}", s.reactions))
            .clone()
    };
    let orders = by("Orders", "PlaceOrder");
    assert_eq!((orders.handled, orders.waiting), (2, 0), "{orders:#?}");
    // The notice came a millisecond after the command was published.
    assert_eq!(orders.p50_ms, Some(1.0), "{orders:#?}");
    let seller = by("Seller", "PaymentApproved");
    assert_eq!((seller.handled, seller.waiting), (1, 1), "{seller:#?}");
    // A join counts each arrival it stored as handled.
    let pay = by("Payment", "OrderPlaced & StockReserved");
    assert_eq!(pay.handled, 4, "{pay:#?}");
    assert_eq!(pay.index, w.flow().reaction("Payment", PAY).unwrap());
    // Nothing stuck yet; 31 s later, o2 is stuck waiting for Seller.
    assert_eq!(seller.stuck, 0);
    let later = w.summary(200 + 31 * SECOND);
    let seller = later
        .reactions
        .iter()
        .find(|r| r.participant == "Seller")
        .unwrap();
    assert_eq!(seller.stuck, 1, "{later:#?}");
    assert_eq!(later.instances["stuck"], 1);
    assert!(later.violations.is_empty() && later.dead_letters.is_empty());
}

#[test]
fn a_slow_handling_is_measured_as_slow() {
    // Seconds, not the first range of the histogram: it must grow to fit.
    let mut w = ecommerce();
    seen(&mut w, &event("o", "PlaceOrder", "c", None), 0);
    handled(
        &mut w,
        "o",
        "Orders",
        "on_place_order",
        ("c", "PlaceOrder"),
        &[("p", "OrderPlaced")],
        5 * SECOND,
    );
    let s = w.summary(6 * SECOND);
    let orders = &s.reactions[0];
    assert_eq!(orders.trigger, "PlaceOrder");
    let p50 = orders.p50_ms.unwrap();
    assert!((p50 - 5000.0).abs() < 5.0, "{orders:#?}");
}
