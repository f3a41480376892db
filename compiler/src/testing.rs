//! Generators of synthetic specs, for benchmarks and stress tests, and of
//! sample messages for the wire-truth test ([`wire_samples`]). Not part of
//! the stable API.

use std::fmt::Write;

pub use crate::codegen::wire_samples::wire_samples;

/// Reactions in one unit of [`synthetic_spec`].
pub const REACTIONS_PER_UNIT: usize = 9;

/// A valid spec with about `reactions` reactions (rounded up to whole
/// units) that checks clean: independent copies of an order flow with a
/// decision, a join, a compensation, success and failure outcomes and a
/// sink, so that every analysis has work to do.
pub fn synthetic_spec(reactions: usize) -> String {
    let units = reactions.div_ceil(REACTIONS_PER_UNIT).max(1);
    let mut out = String::with_capacity(units * 1_400);
    out.push_str("/// A synthetic choreography.\nchoreography Synthetic {\n    version \"1.0.0\"\n    key order_id: uuid\n    type Address { street: string, city: string, zip: string }\n    enum Carrier { Drone, Truck }\n");
    for k in 0..units {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r#"
    /// Unit {k}.
    command Place{k} {{ user_id: u64, quantity: u32, ship_to: Address }}
    event Placed{k} {{ amount: decimal, ship_to: Address }}
    event Reserved{k} {{ reservation_id: uuid }}
    event OutOfStock{k} {{ }}
    event Approved{k} {{ transaction_id: uuid }}
    event Declined{k} {{ reason: string }}
    event Released{k} {{ reservation_id: uuid }}
    event Prepared{k} {{ }}
    event Shipped{k} {{ carrier: Carrier, eta: timestamp }}
    @terminal event Completed{k} {{ }}
    @terminal(failure) event Failed{k} {{ reason: string }}
    participant Orders{k} {{
        on Place{k} -> Placed{k}
        on Shipped{k} -> Completed{k}
        on OutOfStock{k} | Released{k} -> Failed{k}
    }}
    participant Stock{k} {{
        on Placed{k} -> Reserved{k} | OutOfStock{k}
        on Declined{k} -> Released{k} compensates Reserved{k}
    }}
    participant Pay{k} {{
        @retry(max = 3, backoff = 100ms)
        on Placed{k} & Reserved{k} -> Approved{k} | Declined{k}
    }}
    participant Seller{k} {{
        on Approved{k} -> Prepared{k}
    }}
    participant Ship{k} {{
        on Placed{k} & Prepared{k} -> Shipped{k}
    }}
    participant Notify{k} {{
        on Completed{k} | Failed{k}
    }}
"#
        );
    }
    out.push_str("}\n");
    out
}

/// A valid spec with exactly `reactions` reactions (at least 3) in one
/// deep process: a pipeline where each step either hands on to the next
/// or fails with a terminal event of its own, and a notifier that reacts
/// to every way it can end. Unlike [`synthetic_spec`], everything is connected, as
/// deep as it is long, and one reaction consumes events from every depth:
/// the hard case for layouts and path analyses.
pub fn synthetic_pipeline(reactions: usize) -> String {
    let steps = reactions.max(3) - 2;
    let mut out = String::with_capacity(reactions * 160);
    // Writing to a String cannot fail.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, SourceFile};

    #[test]
    fn synthetic_specs_check_clean() {
        let text = synthetic_spec(30);
        let report = check(&SourceFile::new("synthetic.choreo", text));
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        let spec = report.spec.unwrap();
        assert_eq!(spec.reactions.len(), 4 * REACTIONS_PER_UNIT);
    }

    #[test]
    fn synthetic_pipelines_are_valid_at_exact_sizes() {
        for n in [3, 37] {
            let report = check(&SourceFile::new("pipeline.choreo", synthetic_pipeline(n)));
            assert!(!report.has_errors(), "{:?}", report.diagnostics);
            assert_eq!(report.spec.map(|s| s.reactions.len()), Some(n));
        }
    }
}
