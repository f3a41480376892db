//! The handle of a running service: its counts, its health, and its
//! shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::options::{Counters, ServiceError, ServiceStats};
use crate::envelope::SharedStr;

/// A running service.
pub struct ServiceHandle {
    participant: SharedStr,
    stores: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl ServiceHandle {
    /// A handle on the task running `participant`, stopped through `stop`.
    pub(super) fn new(
        participant: SharedStr,
        stores: String,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        counters: Arc<Counters>,
    ) -> Self {
        ServiceHandle {
            participant,
            stores,
            stop,
            task,
            counters,
        }
    }
    /// The participant this service runs.
    pub fn participant(&self) -> &str {
        &self.participant
    }
    /// Which stores it keeps its inbox and join state in (without
    /// credentials), as it logged at start.
    pub fn stores(&self) -> &str {
        &self.stores
    }
    /// What it has done so far.
    pub fn stats(&self) -> ServiceStats {
        self.counters.snapshot()
    }
    /// A reader of this service's counts that can be cloned, sent to
    /// another task, and kept past [`ServiceHandle::shutdown`] (it then
    /// reads the final counts).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader {
            participant: self.participant.clone(),
            counters: self.counters.clone(),
        }
    }
    /// How it is doing: degraded while its stores do not answer (it then
    /// holds its deliveries and resumes by itself once they do).
    pub fn health(&self) -> crate::broker::Health {
        if self.counters.store_down.load(Ordering::Relaxed) {
            crate::broker::Health::Degraded(format!(
                "{}: the stores do not answer; deliveries are held until they do",
                self.participant
            ))
        } else if self.counters.broker_down.load(Ordering::Relaxed) {
            crate::broker::Health::Degraded(format!(
                "{}: the broker does not take the handled events; they are kept and published once it does",
                self.participant
            ))
        } else {
            crate::broker::Health::Healthy
        }
    }
    /// Stops taking deliveries, lets the running handlings finish and
    /// settle, leaves the group, and returns the final counts.
    pub async fn shutdown(self) -> Result<ServiceStats, ServiceError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| ServiceError::Crashed(e.to_string()))?;
        Ok(self.counters.snapshot())
    }
}

/// Reads a service's counts ([`ServiceHandle::stats_reader`]), whether it
/// still runs or has stopped.
#[derive(Clone)]
pub struct StatsReader {
    participant: SharedStr,
    counters: Arc<Counters>,
}

impl StatsReader {
    /// The participant the service runs.
    pub fn participant(&self) -> &str {
        &self.participant
    }
    /// What the service has done so far ([`ServiceHandle::stats`]).
    pub fn stats(&self) -> ServiceStats {
        self.counters.snapshot()
    }
}

impl std::fmt::Debug for StatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsReader")
            .field("participant", &self.participant.as_str())
            .field("stats", &self.stats())
            .finish()
    }
}
