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

/// A valid spec with exactly `reactions` reactions (at least 3) in one
/// deep process: a pipeline where each step either hands on to the next
/// or fails with a terminal event of its own, and a notifier that reacts
/// to every way it can end. Unlike [`spec`], everything is connected, as
/// deep as it is long, and one reaction consumes events from every depth:
/// the hard case for layouts and path analyses.
pub fn pipeline(reactions: usize) -> String {
    let steps = reactions.max(3) - 2;
    let mut out = String::with_capacity(reactions * 160);
    let _ = writeln!(out, "/// A synthetic pipeline of {} reactions.", steps + 2);
    out.push_str("choreography Pipeline {\n    key run_id: uuid\n\n    command Start { }\n");
    for i in 0..steps {
        let _ = writeln!(out, "    event Step{i} {{ }}");
        let _ = writeln!(
            out,
            "    @terminal(failure) event Rejected{i} {{ reason: string }}"
        );
    }
    out.push_str("    @terminal event Done { }\n\n    participant Intake {\n        on Start -> Step0\n    }\n");
    for stage in 0..5 {
        let _ = writeln!(out, "\n    participant Stage{stage} {{");
        for i in (stage..steps).step_by(5) {
            let next = if i + 1 < steps {
                format!("Step{}", i + 1)
            } else {
                "Done".to_owned()
            };
            let _ = writeln!(out, "        on Step{i} -> {next} | Rejected{i}");
        }
        out.push_str("    }\n");
    }
    let endings: Vec<String> = (0..steps)
        .map(|i| format!("Rejected{i}"))
        .chain(["Done".to_owned()])
        .collect();
    let _ = writeln!(
        out,
        "\n    participant Notifier {{\n        on {}\n    }}",
        endings.join(" | ")
    );
    out.push_str("}\n");
    out
}
