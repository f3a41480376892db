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

impl TraceParent {
    /// The W3C text form, `00-<trace id>-<parent id>-<flags>`, made without
    /// `fmt` (every envelope on the wire carries one).
    pub(crate) fn to_text(self) -> [u8; TEXT_LEN] {
        let mut out = [b'-'; TEXT_LEN];
        out[..2].copy_from_slice(b"00");
        write_hex(&mut out[3..35], self.trace_id);
        write_hex(&mut out[36..52], u128::from(self.parent_id));
        write_hex(&mut out[53..55], u128::from(self.flags));
        out
    }
}

/// The length of a version-00 `traceparent`.
const TEXT_LEN: usize = 55;

/// The lower-case hex digits, by value: what `write_hex` writes and
/// `HEX_VALUE` reads back.
const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the low `out.len()` hex digits of `v`, lower case.
fn write_hex(out: &mut [u8], mut v: u128) {
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// Each byte's value as a lower-case hex digit, or 0xff.
static HEX_VALUE: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        t[DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The value of lower-case hex digits (at most 32), or `None`. By table,
/// without a branch per digit: ids are random, so a branch on "digit or
/// letter" is mispredicted half the time.
fn read_hex(text: &[u8]) -> Option<u128> {
    let mut value = 0u128;
    let mut invalid = 0u8;
    for &b in text {
        let d = HEX_VALUE[usize::from(b)];
        invalid |= d;
        value = value << 4 | u128::from(d & 0xf);
    }
    (invalid & 0xf0 == 0).then_some(value)
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text is ASCII by construction.
        f.write_str(std::str::from_utf8(&self.to_text()).map_err(|_| fmt::Error)?)
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
        let b = s.as_bytes();
        if b.len() != TEXT_LEN || &b[..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
            return Err(err());
        }
        let (Some(trace_id), Some(parent_id), Some(flags)) = (
            read_hex(&b[3..35]),
            read_hex(&b[36..52]),
            read_hex(&b[53..55]),
        ) else {
            return Err(err());
        };
        if trace_id == 0 || parent_id == 0 {
            return Err(err());
        }
        // 16 and 2 hex digits fit their types.
        Ok(TraceParent {
            trace_id,
            parent_id: parent_id as u64,
            flags: flags as u8,
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
        // The text form agrees with `{:x}` for any ids, small ones included.
        for _ in 0..1000 {
            let t = TraceParent {
                trace_id: (fastrand::u128(1..) >> fastrand::u32(0..128)).max(1),
                parent_id: (fastrand::u64(1..) >> fastrand::u32(0..64)).max(1),
                flags: fastrand::u8(..),
            };
            let text = t.to_string();
            assert_eq!(
                text,
                format!(
                    "00-{:032x}-{:016x}-{:02x}",
                    t.trace_id, t.parent_id, t.flags
                )
            );
            assert_eq!(text.parse::<TraceParent>().unwrap(), t);
        }
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00+4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
        ] {
            assert!(bad.parse::<TraceParent>().is_err(), "{bad}");
        }
    }
}
