//! Exports: what other tools need to know about a checked spec, derived
//! from it rather than written by hand. `choreoc export` writes them.
//!
//! - [`permissions`]: per participant, what it may publish, read and keep
//!   on a broker (NATS users, Redis ACL rules), and nothing more.
//! - [`jsonschema`]: JSON Schema of every command and event, as the bytes
//!   the runtime publishes.

pub mod jsonschema;
pub mod permissions;
