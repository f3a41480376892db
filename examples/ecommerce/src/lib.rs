//! The ecommerce example of choreo: an online shop whose order process no
//! service coordinates, built from `ecommerce.choreo`.
//!
//! The build script generates `ecommerce` (the typed events, a trait per
//! participant, the wiring, and the HTTP ingress) from the spec; this crate
//! adds the shop: [`data`] derives products, stock, customers and credit
//! from a seed, [`participants`] holds the six participants' logic,
//! [`run`] starts them with the ingress and drives orders through it,
//! [`verify`](mod@verify) checks the end of a run against the data, and
//! [`cli`] is the `ecommerce` program ([`cli::main_with`]).

include!(concat!(env!("OUT_DIR"), "/ecommerce.rs"));

/// The spec's file name, for messages.
pub const SPEC_NAME: &str = "ecommerce.choreo";
/// The spec the services are generated from, for the monitor.
pub const SPEC: &str = include_str!("../ecommerce.choreo");

pub mod cli;
pub mod data;
pub mod participants;
pub mod run;
pub mod verify;

pub use data::{Catalogue, DataOptions};
pub use participants::{FinalState, Shop, PARTICIPANTS};
pub use run::{ingress, Error, Role, System};
pub use verify::{verify, verify_shop, Finals, OrderRecord, Verdict};
