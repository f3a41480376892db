//! Generators of synthetic specs, for benchmarks and stress tests. Not part
//! of the stable API.

use std::fmt::Write;

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
}
