//! Exports: what other tools need to know about a checked spec, derived
//! from it rather than written by hand. `choreoc export` writes them.
//!
//! - [`permissions`]: per participant, what it may publish, read and keep
//!   on a broker (NATS users, Redis ACL rules), and nothing more.
//! - [`jsonschema`]: JSON Schema of every command and event, as the bytes
//!   the runtime publishes.
//! - [`asyncapi`]: an AsyncAPI 3.0 document of the channels, operations
//!   and messages of a deployment on one broker.
//! - [`names`]: the names choreo-runtime gives to topics, streams and
//!   keys, which the permissions and the AsyncAPI document use.
//! - [`sorted`]: JSON written with sorted keys, so that both schema
//!   exports give the same bytes from run to run.

pub mod asyncapi;
pub mod jsonschema;
pub mod names;
pub mod permissions;
pub mod sorted;
