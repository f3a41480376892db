//! One batch's task: its deliveries kept alive while it runs, claimed
//! in one go, handled, and settled in groups as the handlings finish.

use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::super::busy::busy_delay;
use super::super::options::bump;
use super::batch::Batch;
use super::lifecycle::Capacity;
use super::Runner;
use crate::broker::{Delivery, KeepAlive, Settlement};

/// The smallest batch worth handing to another worker (see `process`).
const SPREAD_BATCH: usize = 16;

impl Runner {
    /// Handles one batch (see [`Self::work`]), keeping its deliveries
    /// alive every third of the ack wait while it runs: a handler that
    /// runs long, or a store outage waited out, uses up no attempt and
    /// hands nothing to another member.
    pub(super) async fn process(
        self: Arc<Self>,
        deliveries: Vec<Delivery>,
        capacity: Arc<Capacity>,
    ) {
        let held = KeepAlive::of(&deliveries);
        let (hold, held_here) = self.holding.take(self.looks_first(), &deliveries);
        let work = self.clone().work(deliveries, held_here, capacity);
        // Released once the batch is settled, or its task is dropped.
        let _hold = hold;
        tokio::pin!(work);
        // Mostly done at once: no timer then.
        if futures::poll!(&mut work).is_ready() {
            return;
        }
        let every = self.opts.ack_wait / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut work => return,
                _ = tick.tick() => {
                    if let Err(e) = held.renew().await {
                        tracing::warn!(participant = %self.def.participant, error = %e, "held deliveries not kept alive; the broker may hand them to another member");
                    }
                }
            }
        }
    }

    /// Claims a batch, runs its handlings, and settles them in groups as
    /// they finish.
    async fn work(
        self: Arc<Self>,
        deliveries: Vec<Delivery>,
        held_here: Vec<bool>,
        capacity: Arc<Capacity>,
    ) {
        // A batch task is spawned into its worker's LIFO slot, where no
        // other worker can steal it, and the worker that woke this
        // service is mostly the one running the service that published to
        // it: the two services then share one core while the other idles.
        // Yielding once puts the task in the worker's queue and wakes an
        // idle worker to steal it (pipeline bench: 1.0 -> 1.6 CPUs busy).
        // Small batches are not worth the hop.
        if deliveries.len() >= SPREAD_BATCH {
            tokio::task::yield_now().await;
        }
        let mut claims = self.claim_batch(&deliveries).await;
        let mut running = FuturesUnordered::new();
        let mut batch = Batch::with_capacity(deliveries.len(), self.scopes.len());
        // With in-process stores a handling mostly finishes at once: those
        // need no future of their own, and write into the batch directly.
        for (di, d) in deliveries.into_iter().enumerate() {
            if held_here[di] {
                // Another batch of this process holds the event, unsettled:
                // it comes again later, to find it done or released.
                let attempt = d.attempt();
                batch.settle(
                    d,
                    Settlement::Nack {
                        delay: Some(busy_delay(
                            self.opts.busy_retry,
                            self.opts.claim_lease,
                            attempt,
                        )),
                    },
                );
                continue;
            }
            if claims.is_repeat(di) {
                // A second copy of an event earlier in this batch: the first
                // copy's delivery carries the event's fate (done, retried or
                // dead-lettered), so this one is a duplicate either way.
                bump(&self.counters.duplicates);
                batch.settle(d, Settlement::Ack);
                continue;
            }
            if let Some(later) = self.handle_now(d, di, &mut claims, &mut batch) {
                // Polled again by `running` with a real waker.
                running.push(later);
            }
        }
        loop {
            if !batch.is_empty() {
                let n = batch.len();
                // The handlings still running are driven while the flush
                // waits: one may hold a pooled store connection that the
                // flush needs (PostgreSQL), and would never give it back
                // unpolled. What they finish meanwhile waits for the next
                // flush.
                let mut meanwhile: Option<Batch> = None;
                {
                    let flush = self.flush(&mut batch);
                    tokio::pin!(flush);
                    loop {
                        tokio::select! {
                            biased;
                            () = &mut flush => break,
                            Some(done) = running.next(), if !running.is_empty() => {
                                meanwhile
                                    .get_or_insert_with(|| Batch::with_capacity(1, self.scopes.len()))
                                    .absorb(done);
                            }
                        }
                    }
                }
                capacity.give_back(n);
                if let Some(m) = meanwhile {
                    batch.append(m);
                    continue;
                }
            }
            let Some(done) = running.next().await else {
                break;
            };
            batch.absorb(done);
            // Take whatever else is ready, to settle in one go.
            while let Some(Some(done)) = running.next().now_or_never() {
                batch.absorb(done);
            }
        }
    }
}
