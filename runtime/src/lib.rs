//! The runtime every generated choreo service links.
//!
//! - [`envelope`]: the CloudEvents envelope and its JSON encoding.
//! - [`payload`]: typed payloads ([`Message`]) carried in process, JSON on the wire.

pub mod envelope;
pub mod payload;

pub use envelope::{Envelope, EnvelopeBuilder, EnvelopeError, EventId, SharedStr, TraceParent};
pub use payload::{DecodeError, Message, Payload};
pub mod broker;

pub use broker::memory::{MemoryBroker, MemoryOptions};
pub use broker::{
    connect, Broker, BrokerError, Capabilities, Delivery, SharedBroker, StartPosition,
    SubscribeOptions, Subscription,
};
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod progress;
pub mod service;
pub mod store;
