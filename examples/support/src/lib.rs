//! What the example services share, so that each example holds only its
//! domain: the deployment options every binary takes (`--broker`,
//! `--service`, `--prefix`, `--duplicates`, `--listen`, `--store`,
//! `--db`), books in PostgreSQL for the participants' own state, serving and
//! calling the generated HTTP ingress, following instances until they
//! settle with a progress bar, the summary the runs print, and helpers for
//! tests that run one process per participant.

pub mod books;
pub mod client;
pub mod deployment;
pub mod monitor;
pub mod server;
pub mod settle;
pub mod testing;

pub use books::{Books, BooksError};
pub use client::{Accepted, HttpClient};
pub use deployment::{Deployment, DeploymentError, INGRESS};
pub use server::{serve, shutdown_signal, Server};
pub use settle::{Settler, Summary};
