//! Payloads: typed values in process, JSON bytes on the wire.
//!
//! A [`Payload`] built from a [`Message`] keeps the typed value behind an
//! `Arc`; the in-memory broker hands that very value to the consumer, which
//! downcasts it back (no serialization at all). An adapter that needs bytes
//! asks for [`Payload::to_json`], which encodes once and caches the result.
//! A payload that arrived as bytes decodes with `serde_json` on demand.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A payload type of a choreography: generated structs implement it.
pub trait Message:
    Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
    /// The wire type (the CloudEvents `type` attribute), e.g. `Ecommerce.OrderPlaced`.
    const TYPE: &'static str;

    /// How many messages this one stands for: one, unless it batches
    /// several (a [`ProgressNotice`](crate::progress::ProgressNotice)
    /// carries one completion per handling). The in-memory broker's
    /// bounded retention counts by it, so that what a topic keeps for
    /// late groups does not grow with the size of its batches.
    fn batch_len(&self) -> usize {
        1
    }
}

/// A payload did not decode into the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode payload as {target}: {reason}")]
pub struct DecodeError {
    /// The Rust type the payload was decoded into.
    pub target: &'static str,
    /// What went wrong (the `serde_json` message, with line and column).
    pub reason: String,
}

/// A typed payload could not be encoded as JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode payload as JSON: {0}")]
pub struct EncodeError(pub String);

/// The data of an envelope: a typed value, JSON bytes, or nothing.
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Empty,
    Typed(Arc<dyn TypedValue>),
    Json(Bytes),
}

/// Object-safe view of a `Typed<T>`, so one `Payload` type carries any message.
trait TypedValue: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn json(&self) -> Result<Bytes, EncodeError>;
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    fn batch_len(&self) -> usize;
}

struct Typed<T> {
    value: T,
    // Encoded at most once, and only when an adapter or a mismatched
    // decode asks for bytes.
    json: OnceLock<Result<Bytes, EncodeError>>,
}

impl<T: Message> TypedValue for Typed<T> {
    fn as_any(&self) -> &dyn Any {
        &self.value
    }

    fn json(&self) -> Result<Bytes, EncodeError> {
        self.json
            .get_or_init(|| {
                serde_json::to_vec(&self.value)
                    .map(Bytes::from)
                    .map_err(|e| EncodeError(e.to_string()))
            })
            .clone()
    }

    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // Written in place, not cached: an envelope is mostly encoded once,
        // and the cache would cost a buffer of its own and a copy.
        match self.json.get() {
            Some(Ok(b)) => {
                out.extend_from_slice(b);
                Ok(())
            }
            Some(Err(e)) => Err(e.clone()),
            None => serde_json::to_writer(out, &self.value).map_err(|e| EncodeError(e.to_string())),
        }
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }

    fn batch_len(&self) -> usize {
        self.value.batch_len()
    }
}

impl Payload {
    /// No data at all.
    pub fn empty() -> Self {
        Payload(Repr::Empty)
    }

    /// A typed value, carried as is in process.
    pub fn typed<T: Message>(value: T) -> Self {
        Payload(Repr::Typed(Arc::new(Typed {
            value,
            json: OnceLock::new(),
        })))
    }

    /// JSON bytes, as they came off the wire (not validated until decoded).
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        Payload(Repr::Json(bytes.into()))
    }

    /// Whether there is no data.
    pub fn is_empty(&self) -> bool {
        matches!(self.0, Repr::Empty)
    }

    /// How many messages this payload stands for ([`Message::batch_len`]
    /// of a typed value, at least one; one for bytes).
    pub(crate) fn batch_len(&self) -> usize {
        match &self.0 {
            Repr::Typed(v) => v.batch_len().max(1),
            Repr::Empty | Repr::Json(_) => 1,
        }
    }

    /// Whether this is a typed value (so its JSON, made by `serde_json`,
    /// is valid by construction).
    pub(crate) fn is_typed(&self) -> bool {
        matches!(self.0, Repr::Typed(_))
    }

    /// Borrows the typed value when this payload carries a `T` in process.
    pub fn typed_ref<T: Message>(&self) -> Option<&T> {
        match &self.0 {
            Repr::Typed(v) => v.as_any().downcast_ref::<T>(),
            _ => None,
        }
    }

    /// Decodes into `T`: a clone of the typed value in process, else JSON.
    pub fn decode<T: Message>(&self) -> Result<T, DecodeError> {
        if let Some(v) = self.typed_ref::<T>() {
            return Ok(v.clone());
        }
        let bytes = match &self.0 {
            // No data decodes like an empty JSON object, so `event E { }` works.
            Repr::Empty => Bytes::from_static(b"{}"),
            Repr::Json(b) => b.clone(),
            Repr::Typed(v) => v.json().map_err(|e| DecodeError {
                target: std::any::type_name::<T>(),
                reason: e.to_string(),
            })?,
        };
        serde_json::from_slice(&bytes).map_err(|e| DecodeError {
            target: std::any::type_name::<T>(),
            reason: e.to_string(),
        })
    }

    /// The JSON bytes of this payload (encoded once, then cached); empty
    /// bytes for an empty payload.
    pub fn to_json(&self) -> Result<Bytes, EncodeError> {
        match &self.0 {
            Repr::Empty => Ok(Bytes::new()),
            Repr::Json(b) => Ok(b.clone()),
            Repr::Typed(v) => v.json(),
        }
    }
}

impl Payload {
    /// Appends this payload's JSON to `out` (nothing for an empty payload)
    /// without caching it or making a buffer of its own: what envelope
    /// encoding uses.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match &self.0 {
            Repr::Empty => Ok(()),
            Repr::Json(b) => {
                out.extend_from_slice(b);
                Ok(())
            }
            Repr::Typed(v) => v.write_json(out),
        }
    }
}

impl Default for Payload {
    fn default() -> Self {
        Payload::empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Empty => f.write_str("Payload(empty)"),
            Repr::Typed(v) => {
                f.write_str("Payload(")?;
                v.debug(f)?;
                f.write_str(")")
            }
            Repr::Json(b) => write!(f, "Payload(json {})", String::from_utf8_lossy(b)),
        }
    }
}

impl PartialEq for Payload {
    /// Two payloads are equal when their JSON encodings are equal byte for byte.
    fn eq(&self, other: &Self) -> bool {
        match (self.to_json(), other.to_json()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Ping {
        n: u32,
    }
    impl Message for Ping {
        const TYPE: &'static str = "Test.Ping";
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Pong {
        n: u32,
    }
    impl Message for Pong {
        const TYPE: &'static str = "Test.Pong";
    }

    #[test]
    fn typed_value_round_trips_without_bytes_and_through_json() {
        let p = Payload::typed(Ping { n: 7 });
        assert_eq!(p.typed_ref::<Ping>(), Some(&Ping { n: 7 }));
        assert_eq!(p.decode::<Ping>().unwrap(), Ping { n: 7 });
        // Another type with the same shape decodes through JSON.
        assert_eq!(p.decode::<Pong>().unwrap(), Pong { n: 7 });
        assert_eq!(&p.to_json().unwrap()[..], br#"{"n":7}"#);
        // Written in place, before and after the cache is filled.
        let fresh = Payload::typed(Ping { n: 8 });
        let mut out = b"x".to_vec();
        fresh.write_json(&mut out).unwrap();
        p.write_json(&mut out).unwrap();
        Payload::empty().write_json(&mut out).unwrap();
        assert_eq!(&out[..], br#"x{"n":8}{"n":7}"#);
    }

    #[test]
    fn malformed_json_is_a_decode_error_not_a_panic() {
        let p = Payload::json(&br#"{"n":"seven"}"#[..]);
        let err = p.decode::<Ping>().unwrap_err();
        assert!(err.reason.contains("invalid type"), "{err}");
        let p = Payload::json(&b"\xff\x00"[..]);
        assert!(p.decode::<Ping>().is_err());
    }
}
