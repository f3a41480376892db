//! What the example services share, so that each example holds only its
//! domain: the deployment options every binary takes (`--broker`,
//! `--service`, `--prefix`, `--duplicates`, `--listen`, `--store`,
//! `--db`, `--ack-wait`, `--claim-lease`, `--done-window`,
//! `--join-window`, `--stats`), books in PostgreSQL
//! for the participants' own state, serving and calling the generated HTTP
//! ingress (sending a command again after a `503`), following instances
//! until they settle with a progress bar, the summary the runs print, the
//! services' counts written to a file, and helpers for tests that run one
//! process per participant.

pub mod books;
pub mod cli;
pub mod client;
pub mod deployment;
pub mod monitor;
pub mod secured;
pub mod server;
pub mod settle;
pub mod stats;
pub mod testing;

pub use books::{Books, BooksError};
pub use client::{Accepted, HttpClient};
pub use deployment::{Deployment, DeploymentError, INGRESS};
pub use server::{serve, shutdown_signal, Server};
pub use settle::{Settler, Summary};
pub use stats::{StatsSnapshot, StatsWriter};
