//! Synthetic specs of any size, for benchmarks and scale tests.
//!
//! Include it where needed with
//! `#[path = "support/synthetic.rs"] mod synthetic;` (from `benches/`) or
//! `#[path = "../benches/support/synthetic.rs"] mod synthetic;` (from
//! `tests/`).
//!
//! A spec is made of independent orders, each shaped like the ecommerce
//! example so that every construct the checks and back ends care about
//! occurs at every scale: a command, a decision, joins, a fan-out, a
//! compensation, success and failure terminals and sinks. Each order has
//! [`REACTIONS_PER_ORDER`] reactions spread over five shared participants;
//! the spec is valid (warnings aside) and grows linearly.

#![allow(dead_code)]

use std::fmt::Write;

/// Reactions in one order.
pub const REACTIONS_PER_ORDER: usize = 10;

/// Events of one order that a participant may consume; the extra sinks that
/// make up an exact reaction count react to these, in the first order.
const EXTRA_TRIGGERS: [&str; 9] = [
    "Placed",
    "Reserved",
    "OutOfStock",
    "Approved",
    "Declined",
    "Released",
    "Packed",
    "Labelled",
    "Shipped",
];

/// A valid spec with exactly `reactions` reactions (at least
/// [`REACTIONS_PER_ORDER`]).
pub fn spec(reactions: usize) -> String {
    let reactions = reactions.max(REACTIONS_PER_ORDER);
    let orders = reactions / REACTIONS_PER_ORDER;
    let extra = reactions % REACTIONS_PER_ORDER;
    let mut out = String::with_capacity(reactions * 200);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "/// A synthetic spec of {reactions} reactions.");
    out.push_str("choreography Synthetic {\n    version \"1.0.0\"\n    key order_id: uuid\n\n");
    for i in 0..orders {
        let _ = writeln!(out, "    command Place{i} {{ amount: u64 }}");
        let _ = writeln!(out, "    event Placed{i} {{ amount: u64 }}");
        for event in &EXTRA_TRIGGERS[1..] {
            let _ = writeln!(out, "    event {event}{i} {{ }}");
        }
        let _ = writeln!(out, "    @terminal event Completed{i} {{ }}");
        let _ = writeln!(
            out,
            "    @terminal(failure) event Failed{i} {{ reason: string }}"
        );
    }
    let mut participant =
        |name: &str, reactions: &dyn Fn(usize) -> Vec<String>, extra: &[String]| {
            let _ = writeln!(out, "\n    participant {name} {{");
            for i in 0..orders {
                for reaction in reactions(i) {
                    let _ = writeln!(out, "        {reaction}");
                }
            }
            for reaction in extra {
                let _ = writeln!(out, "        {reaction}");
            }
            out.push_str("    }\n");
        };
    participant(
        "Orders",
        &|i| {
            vec![
                format!("on Place{i} -> Placed{i}"),
                format!("on Shipped{i} -> Completed{i}"),
                format!("on OutOfStock{i} | Released{i} -> Failed{i}"),
            ]
        },
        &[],
    );
    participant(
        "Inventory",
        &|i| {
            vec![
                format!("on Placed{i} -> Reserved{i} | OutOfStock{i}"),
                format!("on Declined{i} -> Released{i} compensates Reserved{i}"),
            ]
        },
        &[],
    );
    participant(
        "Payment",
        &|i| {
            vec![
                "@retry(max = 3, backoff = 100ms)".to_owned()
                    + &format!("\n        on Placed{i} & Reserved{i} -> Approved{i} | Declined{i}"),
            ]
        },
        &[],
    );
    participant(
        "Shipping",
        &|i| {
            vec![
                format!("on Approved{i} -> Packed{i} + Labelled{i}"),
                format!("on Packed{i} & Labelled{i} -> Shipped{i}"),
            ]
        },
        &[],
    );
    let audit: Vec<String> = EXTRA_TRIGGERS[..extra]
        .iter()
        .map(|event| format!("on {event}0"))
        .collect();
    participant(
        "Notifications",
        &|i| {
            vec![
                format!("on Completed{i} | Failed{i}"),
                format!("on Placed{i}"),
            ]
        },
        &[],
    );
    if !audit.is_empty() {
        participant("Audit", &|_| Vec::new(), &audit);
    }
    out.push_str("}\n");
    out
}
