//! Service machinery that generated code calls: definitions of a
//! participant's reactions, running them against a broker, and a client
//! that sends commands.

mod busy;
mod client;
mod definition;
mod handle;
pub mod notice;
mod options;
mod runner;
mod topics;

/// The stores a service runs with; they live in [`crate::store`].
pub use crate::store::Stores;
pub use client::{Client, DEFAULT_PATIENCE};
pub use definition::{
    Context, Emit, Handler, HandlerError, HandlerFuture, Input, Reaction, RetryPolicy,
    ServiceDefinition, Trigger,
};
pub use handle::{ServiceHandle, StatsReader};
pub use options::{ServiceError, ServiceOptions, ServiceStats};
pub use topics::Topics;

/// The store scope of `reaction` of `participant`: its inbox, join slots
/// and `@bounded` counters are kept under it.
pub fn reaction_scope(choreography: &str, participant: &str, reaction: &str) -> String {
    format!("{choreography}/{participant}/{reaction}")
}

/// The dead-letter reason of a `@bounded` reaction that has fired its
/// bound's number of times in an instance.
pub const BOUND_EXCEEDED: &str = "bound exceeded";

#[cfg(test)]
mod tests;
