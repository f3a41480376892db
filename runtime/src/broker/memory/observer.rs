//! An observer on the memory broker: one queue, shared by the topics it
//! follows, that every publish to them appends to. It is no group: it takes
//! nothing from anyone, holds nothing in flight and is settled by
//! [`ObserverSettler`], which does nothing.
//!
//! The queue is not bounded, like a group's: an observer that does not
//! read keeps what is published meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{lock, Shared, Topic, CLOSED};
use crate::broker::{BrokerError, Delivery, ObserverSettler, Settler, Subscription};
use crate::envelope::{Envelope, SharedStr};

/// Tells observers apart, to leave a topic's list.
static NEXT_OBSERVER: AtomicU64 = AtomicU64::new(1);

/// What the topics hold of one observer.
pub(super) struct Observer {
    id: u64,
    queue: Mutex<VecDeque<(SharedStr, Envelope)>>,
    /// One permit is stored when nobody waits, so a push between a look at
    /// the queue and the wait still wakes the reader.
    notify: Notify,
    ended: AtomicBool,
}

impl Observer {
    pub(super) fn new() -> Arc<Observer> {
        Arc::new(Observer {
            id: NEXT_OBSERVER.fetch_add(1, Ordering::Relaxed),
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            ended: AtomicBool::new(false),
        })
    }

    /// Appends what was published to `topic`, in order.
    pub(super) fn push<'a>(&self, topic: &SharedStr, envs: impl IntoIterator<Item = &'a Envelope>) {
        let mut q = lock(&self.queue);
        let before = q.len();
        q.extend(envs.into_iter().map(|e| (topic.clone(), e.clone())));
        let grew = q.len() > before;
        drop(q);
        if grew {
            self.notify.notify_one();
        }
    }

    /// The broker closed: the observation ends.
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// The [`Subscription`] of an observer.
pub(super) struct MemoryObservation {
    observer: Arc<Observer>,
    topics: Vec<Arc<Topic>>,
    broker: Arc<Shared>,
    settler: Arc<dyn Settler>,
    max_in_flight: usize,
    next_tag: u64,
    left: bool,
}

impl MemoryObservation {
    pub(super) fn new(
        observer: Arc<Observer>,
        topics: Vec<Arc<Topic>>,
        broker: Arc<Shared>,
        max_in_flight: usize,
    ) -> Self {
        MemoryObservation {
            observer,
            topics,
            broker,
            settler: Arc::new(ObserverSettler),
            max_in_flight,
            next_tag: 1,
            left: false,
        }
    }

    fn ended(&self) -> bool {
        self.left
            || self.observer.ended.load(Ordering::SeqCst)
            || self.broker.state.load(Ordering::Acquire) == CLOSED
    }

    fn leave(&mut self) {
        if !self.left {
            self.left = true;
            let id = self.observer.id;
            for t in &self.topics {
                lock(&t.state).observers.retain(|o| o.id != id);
            }
            lock(&self.observer.queue).clear();
        }
    }
}

#[async_trait]
impl Subscription for MemoryObservation {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        loop {
            if self.ended() {
                return Ok(None);
            }
            // Taken without an await in between: cancelling loses nothing.
            let taken: Vec<(SharedStr, Envelope)> = {
                let mut q = lock(&self.observer.queue);
                let n = q.len().min(max.max(1)).min(self.max_in_flight);
                q.drain(..n).collect()
            };
            if !taken.is_empty() {
                let out = taken
                    .into_iter()
                    .map(|(topic, env)| {
                        let tag = self.next_tag;
                        self.next_tag += 1;
                        Delivery::new(env, topic, 1, tag, self.settler.clone())
                    })
                    .collect();
                return Ok(Some(out));
            }
            self.observer.notify.notified().await;
        }
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        self.leave();
        Ok(())
    }
}

impl Drop for MemoryObservation {
    fn drop(&mut self) {
        self.leave();
    }
}
