//! Exports: what other tools need to know about a checked spec, derived
//! from it rather than written by hand. `choreoc export` writes them.
//!
//! - [`permissions`]: per participant, what it may publish, read and keep
//!   on a broker (NATS users, Redis ACL rules), and nothing more.
//! - [`asyncapi`]: an AsyncAPI 3.0 document of the channels, operations
//!   and messages of a deployment on one broker.
//! - [`names`]: the names choreo-runtime gives to topics, streams and
//!   keys, which both of them use.

pub mod asyncapi;
pub mod names;
pub mod permissions;
