//! Event ids: UUIDs when the runtime made them, any string from outside.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::text::SharedStr;

/// The CloudEvents `id` of an event.
///
/// The runtime makes version 7 UUIDs (time ordered, so database indexes stay
/// compact) and keeps them as 16 bytes; an id from outside that is not a
/// canonical lower-case UUID is kept as its exact text, so it round-trips
/// byte for byte.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventId(Repr);

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Repr {
    Uuid(Uuid),
    Text(SharedStr),
}

// Seed of the hash that derives ids of emitted events. Changing it changes
// every derived id, so it is part of the wire contract.
const DERIVED_SEED: u64 = 0x6b1f_3c2e_9a4d_4e57;

impl EventId {
    /// A fresh version 7 UUID for the given Unix time in milliseconds.
    pub fn new_v7(unix_millis: u64) -> Self {
        let mut rand = [0u8; 10];
        fastrand::fill(&mut rand);
        EventId(Repr::Uuid(
            uuid::Builder::from_unix_timestamp_millis(unix_millis, &rand).into_uuid(),
        ))
    }

    /// The empty id (a placeholder until one is set), without allocating.
    pub(crate) const fn empty() -> Self {
        EventId(Repr::Text(SharedStr::from_static("")))
    }

    /// A fresh id for now.
    pub fn now() -> Self {
        let millis = jiff::Timestamp::now().as_millisecond();
        EventId::new_v7(u64::try_from(millis).unwrap_or(0))
    }

    /// The id of the `index`-th event that `reaction` emits when handling
    /// `cause`: the same inputs always give the same id, so a handler run
    /// again after a crash or a redelivery republishes the same ids and
    /// consumers deduplicate them.
    ///
    /// The id is a version 8 UUID holding the XXH3-128 hash of the cause,
    /// the reaction and the index (stable across builds and platforms).
    pub fn derived(cause: &EventId, reaction: &str, index: usize) -> Self {
        // One-shot XXH3 over the concatenation (the same hash as feeding
        // the parts to a streaming hasher, without its large state).
        let mut input: smallvec::SmallVec<[u8; 96]> = smallvec::SmallVec::new();
        match &cause.0 {
            Repr::Uuid(u) => {
                input.push(0);
                input.extend_from_slice(u.as_bytes());
            }
            Repr::Text(t) => {
                input.push(1);
                input.extend_from_slice(t.as_bytes());
            }
        }
        input.extend_from_slice(&(reaction.len() as u64).to_le_bytes());
        input.extend_from_slice(reaction.as_bytes());
        input.extend_from_slice(&(index as u64).to_le_bytes());
        let bytes = xxhash_rust::xxh3::xxh3_128_with_seed(&input, DERIVED_SEED).to_be_bytes();
        EventId(Repr::Uuid(
            uuid::Builder::from_custom_bytes(bytes).into_uuid(),
        ))
    }

    /// Calls `f` with the id's text, formatted on the stack: the adapters'
    /// hot paths write ids without `fmt` or an allocation.
    pub(crate) fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match &self.0 {
            Repr::Uuid(u) => f(u.hyphenated().encode_lower(&mut Uuid::encode_buffer())),
            Repr::Text(t) => f(t),
        }
    }

    /// The id as a UUID, when it is one.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match &self.0 {
            Repr::Uuid(u) => Some(*u),
            Repr::Text(_) => None,
        }
    }
}

// By hand: a UUID hashes as one 128-bit word, not as a slice of bytes
// (inbox tables hash every event id twice).
impl std::hash::Hash for EventId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Uuid(u) => state.write_u128(u.as_u128()),
            Repr::Text(t) => {
                state.write_u8(1);
                t.hash(state);
            }
        }
    }
}

impl From<Uuid> for EventId {
    fn from(u: Uuid) -> Self {
        EventId(Repr::Uuid(u))
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        match canonical_uuid(s) {
            Some(u) => EventId(Repr::Uuid(u)),
            None => EventId(Repr::Text(SharedStr::from(s.to_owned()))),
        }
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        match canonical_uuid(&s) {
            Some(u) => EventId(Repr::Uuid(u)),
            None => EventId(Repr::Text(SharedStr::from(s))),
        }
    }
}

impl FromStr for EventId {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EventId::from(s))
    }
}

// Only the exact form the runtime prints becomes a UUID, so printing it
// again gives the same bytes.
fn canonical_uuid(s: &str) -> Option<Uuid> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(s).ok()
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Uuid(u) => fmt::Display::fmt(&u.hyphenated(), f),
            Repr::Text(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(EventId::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_as_text() {
        for s in [
            "0190b6f2-7c3a-7d2e-9f00-123456789abc",
            "0190B6F2-7C3A-7D2E-9F00-123456789ABC",
            "{0190b6f2-7c3a-7d2e-9f00-123456789abc}",
            "order-42",
            "",
        ] {
            assert_eq!(EventId::from(s).to_string(), s);
            assert_eq!(EventId::from(s).with_text(|t| t.to_owned()), s);
        }
        assert!(EventId::from("0190b6f2-7c3a-7d2e-9f00-123456789abc")
            .as_uuid()
            .is_some());
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let cause = EventId::from("cause");
        assert_eq!(
            EventId::derived(&cause, "r", 0),
            EventId::derived(&cause, "r", 0)
        );
        assert_ne!(
            EventId::derived(&cause, "r", 0),
            EventId::derived(&cause, "r", 1)
        );
        assert_ne!(EventId::now(), EventId::now());
        // Pinned: derived ids are part of the wire contract.
        assert_eq!(
            EventId::derived(&cause, "r", 0).to_string(),
            "a3f1e37c-2aad-83de-8011-adb72a7cbb47"
        );
        assert_eq!(
            EventId::derived(&cause, "r", 0)
                .as_uuid()
                .unwrap()
                .get_version_num(),
            8
        );
    }
}
