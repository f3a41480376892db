//! A service's life: started and subscribed, the loop that pulls
//! batches within `max_in_flight` until told to stop, and the drain that
//! lets what was taken finish and settle before leaving the group.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::super::definition::ServiceDefinition;
use super::super::handle::ServiceHandle;
use super::super::options::{ServiceError, ServiceOptions};
use super::Runner;
use crate::broker::{SharedBroker, Subscription};
use crate::store::Stores;

impl ServiceDefinition {
    /// Subscribes this participant's group to its trigger types and starts
    /// handling. Returns once subscribed.
    pub async fn start(
        self,
        broker: SharedBroker,
        stores: Stores,
        options: ServiceOptions,
    ) -> Result<ServiceHandle, ServiceError> {
        self.validate().map_err(ServiceError::Invalid)?;
        tracing::info!(
            choreography = %self.choreography,
            participant = %self.participant,
            broker = broker.kind(),
            stores = %stores.description,
            "service starting"
        );
        let described = stores.description.clone();
        let runner = Arc::new(Runner::new(self, broker, stores, options));
        let sub = runner.broker.subscribe(runner.subscribe_options()).await?;
        let (stop, stopped) = watch::channel(false);
        let counters = runner.counters.clone();
        let participant = runner.def.participant.clone();
        let task = tokio::spawn(runner.run(sub, stopped));
        Ok(ServiceHandle::new(
            participant,
            described,
            stop,
            task,
            counters,
        ))
    }
}

/// How many more deliveries a service may take.
pub(super) struct Capacity {
    free: AtomicUsize,
    freed: Notify,
}

impl Capacity {
    /// `n` deliveries settled: as many more may be taken.
    pub(super) fn give_back(&self, n: usize) {
        self.free.fetch_add(n, Ordering::AcqRel);
        self.freed.notify_one();
    }
}

impl Runner {
    /// Pulls batches and hands each to its own task, so that batches (and
    /// the services they feed) spread over the runtime's worker threads.
    async fn run(self: Arc<Self>, mut sub: Box<dyn Subscription>, mut stop: watch::Receiver<bool>) {
        let capacity = Arc::new(Capacity {
            free: AtomicUsize::new(self.opts.max_in_flight),
            freed: Notify::new(),
        });
        let mut batches = JoinSet::new();
        // Dropping the handle detaches the service; only `shutdown` stops it.
        let mut stop_open = true;
        loop {
            while let Some(done) = batches.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(participant = %self.def.participant, error = %e, "a batch task failed");
                }
            }
            let free = capacity.free.load(Ordering::Acquire);
            let batch = tokio::select! {
                biased;
                changed = stop.changed(), if stop_open => match changed {
                    Ok(()) => {
                        self.counters.stopping.store(true, Ordering::Relaxed);
                        break;
                    }
                    Err(_) => {
                        stop_open = false;
                        continue;
                    }
                },
                _ = capacity.freed.notified(), if free == 0 => continue,
                batch = sub.next_batch(free), if free > 0 => batch,
            };
            match batch {
                Ok(Some(deliveries)) => {
                    self.counters
                        .received
                        .fetch_add(deliveries.len() as u64, Ordering::Relaxed);
                    capacity.free.fetch_sub(deliveries.len(), Ordering::AcqRel);
                    batches.spawn(self.clone().process(deliveries, capacity.clone()));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(participant = %self.def.participant, error = %e, "receiving failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        // Graceful: what was taken is handled, published and settled.
        while let Some(done) = batches.join_next().await {
            if let Err(e) = done {
                tracing::error!(participant = %self.def.participant, error = %e, "a batch task failed");
            }
        }
        if let Err(e) = sub.unsubscribe().await {
            tracing::warn!(participant = %self.def.participant, error = %e, "leaving the group failed");
        }
    }
}
