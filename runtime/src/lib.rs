//! The runtime every generated choreo service links.
//!
//! - [`envelope`]: the CloudEvents envelope and its JSON encoding.
//! - [`payload`]: typed payloads ([`Message`]) carried in process, JSON on the wire.

pub mod envelope;
pub mod payload;

pub use envelope::{Envelope, EnvelopeBuilder, EnvelopeError, EventId, SharedStr, TraceParent};
pub use payload::{DecodeError, Message, Payload};
