//! How a service runs and what it reports: its options, errors and
//! counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::topics::Topics;
use crate::broker::{BrokerError, StartPosition};

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Topic names (their prefix must match the other parts of the deployment).
    pub topics: Topics,
    /// Handlings running at once.
    pub max_in_flight: usize,
    /// How long a delivery held by a process that died waits before it
    /// goes to another member. A handling that runs longer (a long
    /// handler, a store outage waited out) keeps its delivery alive every
    /// third of this, whatever its `@timeout`.
    pub ack_wait: Duration,
    /// Broker-side cap on deliveries of one event (a backstop: `@retry`
    /// decides retries).
    pub max_deliveries: u32,
    /// Where a new consumer group starts.
    pub start: StartPosition,
    /// Ask the broker for per-key order.
    pub per_key_order: bool,
    /// Publish progress notices (for instance trackers).
    pub progress_notices: bool,
    /// The `source` of emitted events (default `choreography/participant`).
    pub source: Option<String>,
    /// How long an inbox claim holds before another delivery may take over.
    pub claim_lease: Duration,
    /// The redelivery delay of an event whose duplicate is being handled.
    pub busy_retry: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            topics: Topics::default(),
            max_in_flight: 256,
            ack_wait: Duration::from_secs(30),
            max_deliveries: 100,
            start: StartPosition::Earliest,
            per_key_order: false,
            progress_notices: true,
            source: None,
            claim_lease: Duration::from_secs(60),
            busy_retry: Duration::from_millis(50),
        }
    }
}

/// A service could not start or stopped badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The definition cannot run.
    #[error("invalid service definition: {0}")]
    Invalid(String),
    /// The stores could not be opened.
    #[error(transparent)]
    Stores(#[from] crate::store::StoreError),
    /// The broker refused.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The service task died.
    #[error("service task failed: {0}")]
    Crashed(String),
}

/// Counts of what a service did.
///
/// As JSON (serde) every field is named as here; a field missing from the
/// JSON reads as zero (or `false`), so that counts written by an older
/// build still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ServiceStats {
    /// Deliveries taken from the broker by this service (every attempt
    /// of every event, duplicates included). `received - deliveries` is
    /// the work in flight: taken, not yet settled.
    pub received: u64,
    /// Deliveries that came again (`attempt > 1`) and that this service
    /// then handled: it ran the handler, or stored the join arrival or
    /// fired the join, for them. That
    /// is work another member or an earlier process had taken and lost
    /// (killed, paused past the ack wait, or past the claim lease), or a
    /// handler failure retried by `@retry` (`failures` counts those).
    /// Redeliveries found done already count as `duplicates` (and
    /// `redelivered_done`) instead, and those still claimed elsewhere,
    /// which come back later, not at all.
    pub redelivered: u64,
    /// Deliveries that came again (`attempt > 1`) and found the event
    /// handled already: the work had been done, by another member or an
    /// earlier process, but the delivery not acknowledged (a process
    /// paused or killed between the done-mark and the ack). Counted in
    /// `duplicates` too; with `redelivered`, every redelivery that ran
    /// nothing new or ran the handler.
    pub redelivered_done: u64,
    /// Handler runs that succeeded.
    pub handled: u64,
    /// Deliveries of events a reaction had handled already.
    pub duplicates: u64,
    /// Handler runs that failed (retried or dead-lettered).
    pub failures: u64,
    /// Deliveries sent to the dead-letter topic.
    pub dead_lettered: u64,
    /// Join events stored to wait for the rest.
    pub join_waiting: u64,
    /// Deliveries settled (acked, nacked or dead-lettered).
    pub deliveries: u64,
    /// Store outages waited out (a run of failed store calls, each
    /// counted once).
    pub store_outages: u64,
    /// The stores are not answering now: the service holds its deliveries
    /// and retries until they do.
    pub store_down: bool,
    /// Broker outages waited out with handled events not yet published
    /// (a run of failed publishes, counted once).
    pub broker_outages: u64,
    /// The broker does not take what the handlers emitted now: the
    /// service keeps the results, holds the deliveries and publishes once
    /// it can (the handlers do not run again).
    pub broker_down: bool,
}

#[derive(Default)]
pub(super) struct Counters {
    /// Deliveries taken from the broker ([`ServiceStats::received`]).
    pub(super) received: AtomicU64,
    /// Redeliveries handled ([`ServiceStats::redelivered`]).
    pub(super) redelivered: AtomicU64,
    /// Redeliveries found done ([`ServiceStats::redelivered_done`]).
    pub(super) redelivered_done: AtomicU64,
    pub(super) handled: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) join_waiting: AtomicU64,
    pub(super) deliveries: AtomicU64,
    pub(super) store_outages: AtomicU64,
    pub(super) store_down: AtomicBool,
    pub(super) broker_outages: AtomicU64,
    pub(super) broker_down: AtomicBool,
    /// The service was asked to stop: store calls give up instead of
    /// waiting for ever.
    pub(super) stopping: AtomicBool,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ServiceStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Settled before received: a delivery is counted received before
        // it is settled (the settling adds with `Release`), so a snapshot
        // never shows more settled than received.
        let deliveries = self.deliveries.load(Ordering::Acquire);
        ServiceStats {
            received: g(&self.received),
            redelivered: g(&self.redelivered),
            redelivered_done: g(&self.redelivered_done),
            handled: g(&self.handled),
            duplicates: g(&self.duplicates),
            failures: g(&self.failures),
            dead_lettered: g(&self.dead_lettered),
            join_waiting: g(&self.join_waiting),
            deliveries,
            store_outages: g(&self.store_outages),
            store_down: self.store_down.load(Ordering::Relaxed),
            broker_outages: g(&self.broker_outages),
            broker_down: self.broker_down.load(Ordering::Relaxed),
        }
    }
}

pub(super) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
