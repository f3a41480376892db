//! The runtime every generated choreo service links: a pluggable broker
//! abstraction, the embedded in-memory broker, and the service machinery
//! that delivers each event to each reaction at least once and acts on it
//! once. `docs/runtime.md` states the delivery contract and the API that
//! generated code calls.
//!
//! - [`envelope`]: the CloudEvents envelope and its JSON encoding.
//! - [`payload`]: typed payloads ([`Message`]) carried in process, JSON on the wire.
//! - [`broker`]: the [`Broker`] contract, [`connect`], the [`MemoryBroker`].
//! - [`store`]: deduplication (inbox) and per-instance state (joins, bounds).
//! - [`service`]: participants' reactions run against a broker; [`service::Client`].
//! - [`progress`]: how far each instance has got.
//! - [`secret`]: URLs as they may be shown, without passwords or tokens.
//! - [`codegen`]: what generated code uses, and all it uses: the contract
//!   between the runtime and the code choreoc writes.
//! - `conformance` (feature `conformance`): the suite every adapter passes.
//!
//! ```
//! use std::time::Duration;
//! use choreo_runtime::service::*;
//! use choreo_runtime::progress::{InstanceTracker, TerminalKind, Topology, TrackerOptions};
//! use choreo_runtime::Message;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct PlaceOrder { amount: u64 }
//! impl Message for PlaceOrder { const TYPE: &'static str = "Shop.PlaceOrder"; }
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct OrderCompleted { amount: u64 }
//! impl Message for OrderCompleted { const TYPE: &'static str = "Shop.OrderCompleted"; }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = choreo_runtime::connect("memory://").await?;
//! let orders = ServiceDefinition::new("Shop", "Orders").version("1.0.0").reaction(
//!     Reaction::new("place", Trigger::any([PlaceOrder::TYPE]), |_ctx, input| async move {
//!         let cmd: PlaceOrder = input.decode()?;
//!         Ok(Emit::one(OrderCompleted { amount: cmd.amount }))
//!     })
//!     .retry(RetryPolicy::new(3, Duration::from_millis(100))),
//! );
//! let topology = Topology::new("Shop")
//!     .with_service(&orders)
//!     .terminal(OrderCompleted::TYPE, TerminalKind::Success);
//! let tracker = InstanceTracker::start(topology, broker.clone(), TrackerOptions::default()).await?;
//! let service = orders.start(broker.clone(), Stores::memory(), ServiceOptions::default()).await?;
//!
//! Client::new(broker.clone(), Topics::default(), "example")
//!     .send("order-1", PlaceOrder { amount: 12 })
//!     .await?;
//! let progress = tracker.wait_settled("order-1", Duration::from_secs(10)).await.expect("settles");
//! assert_eq!(progress.outcome.map(|o| o.kind), Some(TerminalKind::Success));
//!
//! service.shutdown().await?;
//! tracker.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod broker;
pub mod codegen;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod envelope;
#[cfg(feature = "http")]
pub mod http;
pub mod payload;
pub mod progress;
pub mod secret;
pub mod service;
pub mod store;
pub mod sync;
pub mod testing;
pub mod types;

// Code generated before `codegen` existed derives serde's traits through
// this path (`#[serde(crate = "::choreo_runtime::serde")]`); generated code
// now uses `codegen::serde`, the same crate.
#[doc(hidden)]
pub use serde;
#[doc(hidden)]
pub use serde_json;

/// With the `macros` feature: `choreo!`, a spec checked and expanded
/// inline into the module `choreoc generate` writes (see `docs/macro.md`).
#[cfg(feature = "macros")]
pub use choreo_macros::choreo;

pub use broker::memory::{MemoryBroker, MemoryOptions};
pub use broker::{
    connect, Broker, BrokerError, Capabilities, Delivery, ObserveOptions, SharedBroker,
    StartPosition, SubscribeOptions, Subscription,
};
pub use envelope::{Envelope, EnvelopeBuilder, EnvelopeError, EventId, SharedStr, TraceParent};
pub use payload::{DecodeError, Message, Payload};
