//! W3C trace context (`traceparent`) carried in every envelope.

use std::fmt;
use std::str::FromStr;

/// A W3C `traceparent`: version 00, trace id, parent (span) id, flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The 128-bit trace id shared by every event of one trace (never zero).
    pub trace_id: u128,
    /// The id of the span that produced this event (never zero).
    pub parent_id: u64,
    /// Trace flags; bit 0 is "sampled".
    pub flags: u8,
}

/// A `traceparent` that is not of the W3C form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid traceparent {0:?}: expected 00-<32 hex>-<16 hex>-<2 hex>, lower case, ids not zero"
)]
pub struct TraceParentError(pub String);

fn nonzero_u64() -> u64 {
    fastrand::u64(1..)
}

impl TraceParent {
    /// Starts a new trace (sampled).
    pub fn new_root() -> Self {
        TraceParent {
            trace_id: fastrand::u128(1..),
            parent_id: nonzero_u64(),
            flags: 1,
        }
    }

    /// The context of an event caused by this one: same trace, new span.
    pub fn child(&self) -> Self {
        TraceParent {
            parent_id: nonzero_u64(),
            ..*self
        }
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TraceParentError(s.to_owned());
        let lower_hex = |p: &str, len: usize| {
            p.len() == len
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let mut parts = s.split('-');
        let (Some(v), Some(t), Some(p), Some(fl), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(err());
        };
        if v != "00" || !lower_hex(t, 32) || !lower_hex(p, 16) || !lower_hex(fl, 2) {
            return Err(err());
        }
        let trace_id = u128::from_str_radix(t, 16).map_err(|_| err())?;
        let parent_id = u64::from_str_radix(p, 16).map_err(|_| err())?;
        let flags = u8::from_str_radix(fl, 16).map_err(|_| err())?;
        if trace_id == 0 || parent_id == 0 {
            return Err(err());
        }
        Ok(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_bad_forms() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp: TraceParent = s.parse().unwrap();
        assert_eq!(tp.to_string(), s);
        let child = tp.child();
        assert_eq!(child.trace_id, tp.trace_id);
        assert_ne!(child.parent_id, tp.parent_id);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
    }
}
