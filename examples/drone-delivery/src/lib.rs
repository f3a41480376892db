//! The drone delivery application, built with choreo.
//!
//! The services are generated from `drone-delivery.choreo` by the
//! [`choreo!`](choreo_runtime::choreo) macro, HTTP ingress included
//! ([`drone_delivery::http::router`]); this crate holds their logic:
//!
//! - [`packages`]: the package service (operation CreatePackage) keeps a
//!   store of packages, rejects those over its weight limit and deletes
//!   the packages of deliveries that will not happen;
//! - [`fleet`]: the drone scheduler (operation GetDrone) assigns drones of
//!   a fleet derived from a seed, never one drone to two deliveries at
//!   once, and takes them back when a delivery completes, is withdrawn or
//!   returns;
//! - [`delivery`]: the delivery service follows each delivery from the
//!   request to its end (operations ScheduleDelivery, RescheduleDelivery,
//!   CancelDelivery);
//! - [`flight`]: flights as cancellable, reschedulable timers;
//! - [`system`]: the participants together, started all in one process or
//!   one per process, and what each reports when it stops;
//! - [`driver`]: drives deliveries through the HTTP ingress, some
//!   rescheduled and some cancelled at random moments, and sums up;
//! - [`books`]: the services' books in PostgreSQL (`--db`), kept with
//!   each decision in one transaction, so that a killed process loses
//!   none of them and a redelivered event gets the answer it got;
//! - [`cli`]: the `drone-delivery` program ([`cli::main_with`]).

choreo_runtime::choreo!(file = "drone-delivery.choreo", http = true);

/// The spec's file name, for messages.
pub const SPEC_NAME: &str = "drone-delivery.choreo";
/// The spec the services are generated from, for the monitor.
pub const SPEC: &str = include_str!("../drone-delivery.choreo");

pub mod books;
pub mod cli;
pub mod delivery;
pub mod driver;
pub mod fleet;
pub mod flight;
pub mod packages;
pub mod system;
pub mod verify;

use choreo_runtime::sync::Recover;
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, carrying on with the data of a holder that panicked (every
/// critical section here leaves the data consistent at each step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.locked()
}
