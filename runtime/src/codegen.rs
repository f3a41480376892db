//! What generated code uses: the whole of the runtime's promise to the code
//! that `choreoc generate`, `choreo!` and `choreoc new` write.
//!
//! Generated code names the runtime only as `::choreo_runtime::codegen::…`,
//! and the third-party crates it needs (serde, and axum for the HTTP
//! ingress) only through their re-exports here, so that a generated crate
//! depends on `choreo-runtime` alone. The compiler keeps every path it
//! writes into this module in one file, `compiler/src/codegen/runtime.rs`,
//! and a test (`compiler/tests/runtime_contract.rs`) fails when generated
//! code names any other crate path than `::std`, `::core` and this module.
//!
//! This module re-exports exactly what that code needs and nothing more.
//! Removing or changing an item here is a breaking change for generated
//! code, whatever the rest of the runtime does; moving an item elsewhere in
//! the runtime is not, as long as it stays re-exported here. The way in is
//! in the model of `tonic::codegen`: users write against the runtime's
//! public modules, generated code against this one.
//!
//! The items, by who uses them:
//!
//! - the generated module: data types ([`Uuid`], [`Timestamp`], …) and
//!   [`serde`] for their derives; [`Message`]; the service wiring
//!   ([`ServiceDefinition`], [`Reaction`], [`Trigger`], [`Emit`], …); the
//!   command sender ([`Client`]); the tracker's [`Topology`]; the test
//!   fixture ([`ParticipantFixture`]);
//! - the HTTP ingress (feature `http`): its module `http`;
//! - the files of a `choreoc new` scaffold that choreoc keeps:
//!   [`connect`], [`redact`], [`StoreOptions`], [`TrackerOptions`],
//!   [`StartPosition`] and [`InstanceTracker`].

pub use serde;

pub use crate::broker::{connect, BrokerError, SharedBroker, StartPosition};
pub use crate::envelope::EventId;
pub use crate::payload::Message;
pub use crate::progress::{InstanceTracker, TerminalKind, Topology, TrackerOptions};
pub use crate::secret::redact;
pub use crate::service::{
    Client, Context, Emit, HandlerError, Input, Reaction, RetryPolicy, ServiceDefinition,
    ServiceError, ServiceHandle, ServiceOptions, Stores, Topics, Trigger,
};
pub use crate::store::StoreOptions;
pub use crate::testing::{Emitted, FixtureError, ParticipantFixture};
pub use crate::types::{Bytes, Decimal, Duration, Json, Timestamp, Uuid};

/// What a generated HTTP ingress uses (feature `http`): axum, and the
/// runtime's request handling and answers.
#[cfg(feature = "http")]
pub mod http {
    pub use crate::http::axum;
    pub use crate::http::{
        accepted, decode_body, parse_key, read_body, state, unavailable, CommandRequest,
        IngressOptions, IngressState,
    };
}
