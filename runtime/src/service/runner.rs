//! Runs a participant against a broker: one consumer group per
//! participant, batches pulled within `max_in_flight`, each handled by a
//! task of its own, claimed and settled in groups.

use crate::sync::{Recover, RecoverRw};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use smallvec::SmallVec;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::definition::{HandlerError, HandlerSlot, ServiceDefinition, Trigger};
use super::notice::{Completion, CompletionOutcome, ProgressNotice};
use super::options::{bump, Counters, ServiceError, ServiceOptions, ServiceStats};
use crate::broker::{
    settle_all, Delivery, KeepAlive, Settlement, SharedBroker, SubscribeOptions, Subscription,
};
use crate::envelope::{interned, Envelope, EventId, SharedStr};
use crate::store::Stores;
use crate::store::{Claim, StoreError};

/// A running service.
pub struct ServiceHandle {
    participant: SharedStr,
    stores: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl ServiceHandle {
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
        Ok(ServiceHandle {
            participant,
            stores: described,
            stop,
            task,
            counters,
        })
    }
}

pub(super) struct Runner {
    pub(super) def: ServiceDefinition,
    pub(super) broker: SharedBroker,
    pub(super) stores: Stores,
    pub(super) opts: ServiceOptions,
    pub(super) source: SharedStr,
    /// Per reaction: its inbox and state scope.
    pub(super) scopes: Vec<SharedStr>,
    /// Per wire type: the reactions it triggers. A type is looked for by
    /// address (it is often the very string its trigger names), then by
    /// name when there are few, else through `type_index`.
    types: Vec<(SharedStr, Vec<usize>)>,
    /// Where each type is in `types`.
    type_index: FastMap<SharedStr, usize>,
    pub(super) topic_cache: std::sync::RwLock<FastMap<SharedStr, SharedStr>>,
    pub(super) progress_topic: SharedStr,
    pub(super) counters: Arc<Counters>,
    /// The event ids of the deliveries this process holds, unsettled, and
    /// how many copies of each. A first delivery is handled on a look at
    /// the inbox, without a claim (see [`Self::looks_first`]); when its
    /// done mark is held up (a connection cut), the broker hands the event
    /// out again, and the copy would find no claim and run the handler a
    /// second time in this very process. A copy of an id held here is
    /// busy instead: it comes back once the holder has settled. Kept only
    /// where first deliveries look; elsewhere the claim does this.
    holding: std::sync::Mutex<FastMap<EventId, u32>>,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Up to this many wire types, a participant finds a type's reactions by
/// comparing names rather than hashing.
const FEW_TYPES: usize = 4;

/// The smallest batch worth handing to another worker (see `process`).
const SPREAD_BATCH: usize = 16;

/// A batch's hold on its event ids in [`Runner::holding`], released on
/// drop.
struct Holding {
    runner: Arc<Runner>,
    ids: Vec<EventId>,
}

impl Holding {
    /// Holds the ids of `deliveries`; also says, for each, whether another
    /// batch of this process held it already.
    fn take(runner: &Arc<Runner>, deliveries: &[Delivery]) -> (Holding, Vec<bool>) {
        if !runner.looks_first() {
            // Every delivery is claimed: a copy of one held here finds
            // the claim and is busy already, with no bookkeeping.
            let none = Holding {
                runner: runner.clone(),
                ids: Vec::new(),
            };
            return (none, vec![false; deliveries.len()]);
        }
        let ids: Vec<EventId> = deliveries
            .iter()
            .map(|d| d.envelope().id().clone())
            .collect();
        let mut held_here = Vec::with_capacity(ids.len());
        {
            let mut holding = runner.holding.locked();
            for id in &ids {
                let n = holding.entry(id.clone()).or_insert(0);
                held_here.push(*n > 0);
                *n += 1;
            }
        }
        // Copies within the batch are the batch's own business
        // (`Claims::is_repeat`), not another batch's.
        let mut seen = FastSet::default();
        for (id, here) in ids.iter().zip(held_here.iter_mut()) {
            if !seen.insert(id) {
                *here = false;
            }
        }
        let holding = Holding {
            runner: runner.clone(),
            ids,
        };
        (holding, held_here)
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let mut holding = self.runner.holding.locked();
        for id in &self.ids {
            if let Some(n) = holding.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    holding.remove(id);
                }
            }
        }
    }
}

/// A claim owner: random, never 0 (see [`crate::store::InboxStore::claim_many_as`]).
pub(super) fn claim_owner() -> u64 {
    fastrand::u64(1..)
}

/// Something a service waits out (the stores, the broker): its flag,
/// its counter, and what the log says as it begins and ends.
struct Outage<'a> {
    down: &'a std::sync::atomic::AtomicBool,
    count: &'a std::sync::atomic::AtomicU64,
    began: &'static str,
    ended: &'static str,
}

/// What the flush does with a list of inbox ids.
#[derive(Clone, Copy)]
enum InboxUpdate {
    Done,
    Release,
}

/// How many more deliveries a service may take.
struct Capacity {
    free: AtomicUsize,
    freed: Notify,
}

/// How one reaction dealt with one delivery.
pub(super) enum Outcome {
    Completed(Completion),
    Duplicate,
    Busy,
    Failed(HandlerError),
    DeadLetter(String),
}

/// Emitted envelopes waiting for the flush, with their topics (mostly
/// one per handling: kept inline).
pub(super) type Outbox = SmallVec<[(SharedStr, Envelope); 1]>;

/// Where a handling puts its completions and inbox updates.
pub(super) trait Sink {
    fn completion(&mut self, c: Completion);
    fn done(&mut self, i: usize, id: EventId);
    fn release(&mut self, i: usize, id: EventId);
    fn inbox(&mut self, i: usize, action: InboxAction) {
        match action {
            InboxAction::None => {}
            InboxAction::Complete(id) => self.done(i, id),
            InboxAction::Release(id) => self.release(i, id),
        }
    }
}

/// What one handling with a future of its own produced.
#[derive(Default)]
pub(super) struct Results {
    pub(super) completions: SmallVec<[Completion; 1]>,
    /// Inbox ids to mark done, and to release, by reaction.
    pub(super) complete: SmallVec<[(usize, EventId); 1]>,
    pub(super) release: SmallVec<[(usize, EventId); 1]>,
    /// What the handlers emitted, to publish before the done marks.
    pub(super) publish: Outbox,
}

impl Sink for Results {
    fn completion(&mut self, c: Completion) {
        self.completions.push(c);
    }
    fn done(&mut self, i: usize, id: EventId) {
        self.complete.push((i, id));
    }
    fn release(&mut self, i: usize, id: EventId) {
        self.release.push((i, id));
    }
}

/// A finished handling that ran as a future of its own.
pub(super) struct Handled {
    pub(super) delivery: Delivery,
    pub(super) settlement: Settlement,
    pub(super) results: Results,
}

/// The finished handlings of a delivery batch, waiting for the flush.
/// Handlings that finish at once write here directly.
pub(super) struct Batch {
    pub(super) settlements: Vec<(Delivery, Settlement)>,
    pub(super) completions: Vec<Completion>,
    /// Inbox ids to mark done, and to release, one list per reaction.
    pub(super) complete: SmallVec<[Vec<EventId>; 1]>,
    pub(super) release: SmallVec<[Vec<EventId>; 1]>,
    pub(super) publish: Vec<(SharedStr, Envelope)>,
    /// Handler runs that succeeded, not yet added to the counters.
    pub(super) handled: u64,
    /// Per reaction: where its handler futures run (see [`HandlerSlot`]).
    pub(super) slots: SmallVec<[Option<Box<dyn HandlerSlot>>; 1]>,
}

impl Sink for Batch {
    fn completion(&mut self, c: Completion) {
        self.completions.push(c);
    }
    fn done(&mut self, i: usize, id: EventId) {
        self.complete[i].push(id);
    }
    fn release(&mut self, i: usize, id: EventId) {
        self.release[i].push(id);
    }
}

impl Batch {
    /// Room for `n` deliveries of a participant with `reactions` reactions.
    fn with_capacity(n: usize, reactions: usize) -> Self {
        Batch {
            settlements: Vec::with_capacity(n),
            completions: Vec::with_capacity(n),
            complete: (0..reactions).map(|_| Vec::with_capacity(n)).collect(),
            release: (0..reactions).map(|_| Vec::new()).collect(),
            publish: Vec::with_capacity(n),
            handled: 0,
            slots: (0..reactions).map(|_| None).collect(),
        }
    }

    fn absorb(&mut self, h: Handled) {
        self.settlements.push((h.delivery, h.settlement));
        self.completions.extend(h.results.completions);
        for (i, id) in h.results.complete {
            self.complete[i].push(id);
        }
        for (i, id) in h.results.release {
            self.release[i].push(id);
        }
        self.publish.extend(h.results.publish);
    }

    /// Takes over what `other` gathered (handlings that finished while
    /// this batch was flushed).
    fn append(&mut self, mut other: Batch) {
        self.settlements.append(&mut other.settlements);
        self.completions.append(&mut other.completions);
        for (mine, theirs) in self.complete.iter_mut().zip(&mut other.complete) {
            mine.append(theirs);
        }
        for (mine, theirs) in self.release.iter_mut().zip(&mut other.release) {
            mine.append(theirs);
        }
        self.publish.append(&mut other.publish);
        self.handled += other.handled;
    }

    /// What was emitted could not be published: nothing in this batch
    /// counts as done; every delivery comes again (the handlers rerun and
    /// emit the same ids) after the broker's back-off.
    fn unpublished(&mut self) {
        for (done, release) in self.complete.iter_mut().zip(&mut self.release) {
            release.append(done);
        }
        self.completions.clear();
        for (_, s) in &mut self.settlements {
            if !matches!(s, Settlement::Nack { .. }) {
                *s = Settlement::Nack { delay: None };
            }
        }
    }
}

/// What the batch claim said for one reaction of one delivery (mostly
/// one reaction: kept inline, no allocation per delivery).
pub(super) type PreClaims = SmallVec<[(usize, Result<Claim, StoreError>); 1]>;

/// The deliveries claimed for one reaction, in order, and the answers.
type ReactionClaims = (Vec<usize>, Vec<Result<Claim, StoreError>>);

/// What the batch claim said, per reaction, read back delivery by delivery.
pub(super) struct Claims {
    per_reaction: Vec<ReactionClaims>,
    /// Per reaction: the next answer to hand out.
    cursors: Vec<usize>,
    /// Deliveries repeating an event earlier in the batch, in order.
    repeats: Vec<usize>,
    /// The next of `repeats` to come.
    next_repeat: usize,
    /// Per delivery: where its type is in the runner's `types`.
    types: Vec<Option<usize>>,
}

impl Claims {
    /// Where delivery `di`'s type is in the runner's `types`.
    pub(super) fn type_of(&self, di: usize) -> Option<usize> {
        self.types.get(di).copied().flatten()
    }

    /// Whether delivery `di` repeats an event earlier in the batch (asked
    /// in delivery order).
    fn is_repeat(&mut self, di: usize) -> bool {
        let repeat = self.repeats.get(self.next_repeat) == Some(&di);
        self.next_repeat += usize::from(repeat);
        repeat
    }

    /// The answer of reaction `i` for delivery `di`, if it was claimed for
    /// it (taken in delivery order).
    pub(super) fn take_one(&mut self, di: usize, i: usize) -> Option<Result<Claim, StoreError>> {
        let ((dis, answers), at) = self.per_reaction.get_mut(i).zip(self.cursors.get_mut(i))?;
        // Past the answers of earlier deliveries not asked for (repeats).
        while dis.get(*at).is_some_and(|&d| d < di) {
            *at += 1;
        }
        if dis.get(*at) != Some(&di) {
            return None;
        }
        let answer = answers
            .get_mut(*at)
            .map(|a| std::mem::replace(a, Ok(Claim::Busy)));
        *at += 1;
        answer
    }

    /// The answers for delivery `di` (taken in delivery order).
    pub(super) fn take(&mut self, di: usize) -> PreClaims {
        let mut pre = PreClaims::new();
        for (i, ((dis, answers), at)) in self.per_reaction.iter().zip(&mut self.cursors).enumerate()
        {
            while dis.get(*at).is_some_and(|&d| d < di) {
                *at += 1;
            }
            if dis.get(*at) == Some(&di) {
                if let Some(c) = answers.get(*at) {
                    pre.push((i, c.clone()));
                }
                *at += 1;
            }
        }
        pre
    }
}

/// What a handling must do with an inbox claim taken for it.
pub(super) enum InboxAction {
    None,
    Complete(EventId),
    Release(EventId),
}

impl Runner {
    fn new(
        def: ServiceDefinition,
        broker: SharedBroker,
        stores: Stores,
        opts: ServiceOptions,
    ) -> Self {
        let scopes = def
            .reactions
            .iter()
            .map(|r| {
                SharedStr::from(super::reaction_scope(
                    &def.choreography,
                    &def.participant,
                    &r.name,
                ))
            })
            .collect();
        let mut by_type: FastMap<SharedStr, Vec<usize>> = FastMap::default();
        for (i, r) in def.reactions.iter().enumerate() {
            for t in r.trigger.types() {
                by_type.entry(t.clone()).or_default().push(i);
            }
        }
        // Every emitted envelope carries the source: a counted copy would
        // have both cores update one reference count on every event.
        let source = match &opts.source {
            Some(s) => interned(s),
            None => interned(&format!("{}/{}", def.choreography, def.participant)),
        };
        let progress_topic = SharedStr::from(opts.topics.progress(&def.choreography));
        let types: Vec<(SharedStr, Vec<usize>)> = by_type.into_iter().collect();
        Runner {
            def,
            broker,
            stores,
            opts,
            source,
            scopes,
            type_index: types
                .iter()
                .enumerate()
                .map(|(k, (t, _))| (t.clone(), k))
                .collect(),
            types,
            topic_cache: std::sync::RwLock::new(FastMap::default()),
            progress_topic,
            counters: Arc::new(Counters::default()),
            holding: std::sync::Mutex::new(FastMap::default()),
        }
    }

    /// Where wire type `ty` is in `types`.
    pub(super) fn type_of(&self, ty: &SharedStr) -> Option<usize> {
        match self.types.iter().position(|(t, _)| t.same_ptr(ty)) {
            Some(k) => Some(k),
            // A few types: comparing the text beats hashing it.
            None if self.types.len() <= FEW_TYPES => self
                .types
                .iter()
                .position(|(t, _)| t.as_str() == ty.as_str()),
            None => self.type_index.get(ty.as_str()).copied(),
        }
    }

    /// The reactions that the wire type at `k` in `types` triggers.
    pub(super) fn reactions_at(&self, k: Option<usize>) -> Option<&[usize]> {
        k.and_then(|k| self.types.get(k)).map(|(_, r)| r.as_slice())
    }

    /// The reactions that wire type `ty` triggers.
    pub(super) fn reactions_of(&self, ty: &SharedStr) -> Option<&[usize]> {
        self.reactions_at(self.type_of(ty))
    }

    fn subscribe_options(&self) -> SubscribeOptions {
        let mut topics: Vec<String> = self
            .types
            .iter()
            .map(|(t, _)| self.opts.topics.for_type(t))
            .collect();
        topics.sort();
        let mut o = SubscribeOptions::new(self.def.participant.to_string(), topics);
        o.start = self.opts.start;
        o.max_in_flight = self.opts.max_in_flight;
        // Whatever the handlers' timeouts: a handling that runs longer
        // keeps its delivery alive (see `process`).
        o.ack_wait = self.opts.ack_wait;
        o.max_deliveries = self.opts.max_deliveries.max(
            self.def
                .reactions
                .iter()
                .filter_map(|r| r.retry.map(|p| p.max.saturating_add(1)))
                .max()
                .unwrap_or(1),
        );
        o.per_key_order = self.opts.per_key_order;
        o
    }

    pub(super) fn topic_for(&self, ty: &SharedStr) -> SharedStr {
        if self.opts.topics.is_unprefixed() {
            return ty.clone();
        }
        if let Some(t) = self.topic_cache.read_locked().get(ty) {
            return t.clone();
        }
        let topic = SharedStr::from(self.opts.topics.for_type(ty));
        self.topic_cache
            .write_locked()
            .insert(ty.clone(), topic.clone());
        topic
    }

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

    /// Handles one batch (see [`Self::work`]), keeping its deliveries
    /// alive every third of the ack wait while it runs: a handler that
    /// runs long, or a store outage waited out, uses up no attempt and
    /// hands nothing to another member.
    async fn process(self: Arc<Self>, deliveries: Vec<Delivery>, capacity: Arc<Capacity>) {
        let held = KeepAlive::of(&deliveries);
        let (hold, held_here) = Holding::take(&self, &deliveries);
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
                batch.settlements.push((
                    d,
                    Settlement::Nack {
                        delay: Some(super::busy::busy_delay(
                            self.opts.busy_retry,
                            self.opts.claim_lease,
                            attempt,
                        )),
                    },
                ));
                continue;
            }
            if claims.is_repeat(di) {
                // A second copy of an event earlier in this batch: the first
                // copy's delivery carries the event's fate (done, retried or
                // dead-lettered), so this one is a duplicate either way.
                bump(&self.counters.duplicates);
                batch.settlements.push((d, Settlement::Ack));
                continue;
            }
            if let Some(later) = self.handle_now(d, di, &mut claims, &mut batch) {
                // Polled again by `running` with a real waker.
                running.push(later);
            }
        }
        loop {
            if !batch.settlements.is_empty() {
                let n = batch.settlements.len();
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
                capacity.free.fetch_add(n, Ordering::AcqRel);
                capacity.freed.notify_one();
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

    /// Settles finished handlings in one go: publishes what they emitted
    /// (one `publish_batch`), marks their ids done (one call per
    /// reaction), publishes the progress notice, then acks.
    async fn flush(&self, batch: &mut Batch) {
        if !batch.publish.is_empty() {
            let out = std::mem::take(&mut batch.publish);
            if let Err(e) = self.publish_patiently(out).await {
                tracing::warn!(participant = %self.def.participant, error = %e, "publishing emitted events failed; the batch comes again");
                batch.unpublished();
            }
        }
        // Done marks first: once a delivery is acked its id must read done.
        let mut marked: SmallVec<[bool; 4]> = SmallVec::new();
        for (scope, ids) in self.scopes.iter().zip(&mut batch.complete) {
            marked.push(self.update_inbox(scope, ids, InboxUpdate::Done).await);
        }
        self.clear_fired_joins(&batch.completions, &marked).await;
        for (scope, ids) in self.scopes.iter().zip(&mut batch.release) {
            self.update_inbox(scope, ids, InboxUpdate::Release).await;
        }
        // Notices go out before the acks: a tracker must never see an
        // instance idle while its last handling is still unreported.
        let completions = std::mem::take(&mut batch.completions);
        let mut notice_lost = false;
        if self.opts.progress_notices && !completions.is_empty() {
            let notice = ProgressNotice {
                choreography: self.def.choreography.clone(),
                participant: self.def.participant.clone(),
                completions,
            };
            let env = Envelope::of(self.def.choreography.clone(), notice)
                .source(self.source.clone())
                .traceparent(None)
                .build();
            // Waited for through an outage as the emitted events are: a
            // notice given up on while the deliveries are acked would
            // leave trackers waiting for these reactions for ever (a
            // campaign of broker restarts found orders that ended but
            // never settled).
            let notice = vec![(self.progress_topic.clone(), env)];
            if let Err(e) = self.publish_patiently(notice).await {
                tracing::warn!(participant = %self.def.participant, error = %e, "progress notice not published; the deliveries come again to report it");
                notice_lost = true;
            }
        }
        let mut settlements = std::mem::take(&mut batch.settlements);
        if notice_lost {
            // Not acked: each comes again, is found done (or dead-lettered
            // again) and its completion reported then.
            for (_, s) in &mut settlements {
                *s = Settlement::Nack { delay: None };
            }
        }
        let n = settlements.len() as u64;
        let handled = std::mem::take(&mut batch.handled);
        if handled > 0 {
            self.counters.handled.fetch_add(handled, Ordering::Relaxed);
        }
        let dead = settlements
            .iter()
            .filter(|(_, s)| matches!(s, Settlement::DeadLetter { .. }))
            .count() as u64;
        if dead > 0 {
            self.counters
                .dead_lettered
                .fetch_add(dead, Ordering::Relaxed);
        }
        if let Err(e) = settle_all(settlements).await {
            // The broker redelivers what it did not take; the inbox makes
            // that harmless.
            tracing::warn!(participant = %self.def.participant, error = %e, "settling failed");
        }
        // `Release`: see `Counters::snapshot`.
        self.counters.deliveries.fetch_add(n, Ordering::Release);
    }

    /// Marks `ids` done, or releases their claims, in `scope`; empties
    /// `ids`. Whether the store took the update.
    async fn update_inbox(
        &self,
        scope: &SharedStr,
        ids: &mut Vec<EventId>,
        what: InboxUpdate,
    ) -> bool {
        if ids.is_empty() {
            return true;
        }
        let inbox = &self.stores.inbox;
        let stored = match what {
            // The handlers ran and their events are out: the done-marks
            // are waited for through an outage, so that no handler runs
            // again for it.
            InboxUpdate::Done => match self
                .patiently("done-marks", || inbox.complete_many(scope, ids))
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    // Outputs are out; a rerun republishes the same ids.
                    tracing::warn!(scope = %scope, error = %e, "inbox completions not stored");
                    false
                }
            },
            InboxUpdate::Release => match inbox.release_many(scope, ids).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(scope = %scope, error = %e, "inbox claims not released; they lapse with their lease");
                    false
                }
            },
        };
        ids.clear();
        stored
    }

    /// Calls the stores until they answer. A store that fails is an
    /// outage to wait out, holding the delivery, never a handler's failure
    /// (which would use up `@retry` or dead-letter). Errors that no
    /// waiting mends (corrupt data, bad configuration) come back at once.
    pub(super) async fn patiently<T, Fut>(
        &self,
        what: &'static str,
        call: impl FnMut() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let stores = Outage {
            down: &self.counters.store_down,
            count: &self.counters.store_outages,
            began: "the stores do not answer; holding deliveries and retrying until they do",
            ended: "the stores answer again; resuming",
        };
        self.wait_out(stores, what, |e| matches!(e, StoreError::Backend(_)), call)
            .await
    }

    /// Publishes what handlers emitted, waiting out a broker outage: the
    /// handlers ran, and running them again for want of a publish would
    /// repeat their side effects. Errors no waiting mends come back at
    /// once.
    async fn publish_patiently(
        &self,
        out: Vec<(SharedStr, Envelope)>,
    ) -> Result<(), crate::broker::BrokerError> {
        let broker = Outage {
            down: &self.counters.broker_down,
            count: &self.counters.broker_outages,
            began: "the broker does not take the handled events; keeping them and retrying until it does",
            ended: "the broker takes publishes again; resuming",
        };
        let unavailable = |e: &crate::broker::BrokerError| {
            matches!(e, crate::broker::BrokerError::Unavailable(_))
        };
        self.wait_out(broker, "publish", unavailable, || {
            self.broker.publish_batch(out.clone())
        })
        .await
    }

    /// Calls `call` until it succeeds or fails with an error that is not
    /// `transient`: the first transient failure of an outage is logged
    /// (warn), counted and flagged, and the recovery logged (info); calls
    /// back off from 50 ms to 2 s meanwhile. Once the service is stopping
    /// the last error comes back instead of waiting for ever.
    async fn wait_out<T, E, Fut>(
        &self,
        outage: Outage<'_>,
        what: &'static str,
        transient: impl Fn(&E) -> bool,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut delay = Duration::from_millis(50);
        loop {
            match call().await {
                Ok(v) => {
                    if outage.down.load(Ordering::Relaxed)
                        && outage.down.swap(false, Ordering::Relaxed)
                    {
                        tracing::info!(participant = %self.def.participant, "{}", outage.ended);
                    }
                    return Ok(v);
                }
                Err(e) if transient(&e) && !self.counters.stopping.load(Ordering::Relaxed) => {
                    if !outage.down.swap(true, Ordering::Relaxed) {
                        bump(outage.count);
                        tracing::warn!(participant = %self.def.participant, what, error = %e, "{}", outage.began);
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes the slots of the joins that fired in this batch, once their
    /// firing reads done (`marked`, per reaction): a fired join is never
    /// waited for again (a redelivered member finds the firing done), and
    /// its slots would otherwise be kept for ever.
    async fn clear_fired_joins(&self, completions: &[Completion], marked: &[bool]) {
        let is_join = |i: usize| matches!(self.def.reactions[i].trigger, Trigger::All(_));
        if !(0..self.def.reactions.len()).any(is_join) {
            return;
        }
        let fired = completions
            .iter()
            .filter(|c| c.outcome == CompletionOutcome::Handled)
            .filter_map(|c| {
                let i = self
                    .def
                    .reactions
                    .iter()
                    .position(|r| r.name == c.reaction)?;
                (is_join(i) && marked.get(i).copied().unwrap_or(false))
                    .then(|| (&self.scopes[i], &c.instance))
            });
        let clears = fired.map(|(scope, instance)| async move {
            if let Err(e) = self.stores.state.join_clear(scope, instance).await {
                tracing::warn!(scope = %scope, instance = %instance, error = %e, "a fired join's slots were not removed; they stay until removed by hand");
            }
        });
        futures::future::join_all(clears).await;
    }

    /// Whether a first delivery may look at the inbox instead of claiming
    /// (see [`Self::claim_batch`]): the broker drops a second publish of
    /// an id.
    pub(super) fn looks_first(&self) -> bool {
        self.broker.capabilities().native_dedup
    }

    /// The inbox's answer for each of `ids` in `scope`: a look where
    /// `first` says so (an unseen id reads as acquired), a claim
    /// otherwise; one call of each kind at most, waiting out an outage.
    async fn claim_or_look(
        &self,
        scope: &SharedStr,
        ids: &[EventId],
        first: &[bool],
    ) -> Result<Vec<Claim>, StoreError> {
        let inbox = &self.stores.inbox;
        let looked = first.iter().filter(|&&f| f).count();
        if looked == 0 {
            // One owner through the retries: a claim taken by an attempt
            // whose answer was lost is ours again.
            let owner = claim_owner();
            return self
                .patiently("claims", || {
                    inbox.claim_many_as(scope, ids, self.opts.claim_lease, owner)
                })
                .await;
        }
        if looked == ids.len() {
            let looks = self
                .patiently("inbox looks", || inbox.look_many(scope, ids))
                .await?;
            return Ok(looks.into_iter().map(Claim::from).collect());
        }
        // A batch of first deliveries and redeliveries: each kind in one
        // call. An id in both (a redelivery beside a copy) is claimed.
        let (to_look, to_claim): (Vec<_>, Vec<_>) = ids.iter().zip(first).partition(|(_, &f)| f);
        let to_look: Vec<EventId> = to_look.into_iter().map(|(id, _)| id.clone()).collect();
        let to_claim: Vec<EventId> = to_claim.into_iter().map(|(id, _)| id.clone()).collect();
        let owner = claim_owner();
        let (looks, claimed) = futures::future::join(
            self.patiently("inbox looks", || inbox.look_many(scope, &to_look)),
            self.patiently("claims", || {
                inbox.claim_many_as(scope, &to_claim, self.opts.claim_lease, owner)
            }),
        )
        .await;
        let (mut looks, mut claimed) = (looks?.into_iter(), claimed?.into_iter());
        let claimed_ids: std::collections::HashSet<&EventId> = to_claim.iter().collect();
        let mut out = Vec::with_capacity(ids.len());
        for (id, &f) in ids.iter().zip(first) {
            let answer = if f {
                let look = looks.next().map(Claim::from);
                // Claimed in the same batch: the claim decides.
                if claimed_ids.contains(id) {
                    Some(Claim::Busy)
                } else {
                    look
                }
            } else {
                claimed.next()
            };
            out.push(answer.ok_or_else(|| {
                StoreError::Backend("the inbox answered fewer ids than asked".into())
            })?);
        }
        Ok(out)
    }

    /// Claims, for every plain (non-join) reaction, the events of a whole
    /// batch in one call per reaction, and finds the repeats of an event
    /// already in the batch (see [`Claims::is_repeat`]).
    async fn claim_batch(&self, deliveries: &[Delivery]) -> Claims {
        let n = deliveries.len();
        let mut ids: Vec<Vec<EventId>> = (0..self.scopes.len()).map(|_| Vec::new()).collect();
        let mut claims = Claims {
            per_reaction: (0..self.scopes.len())
                .map(|_| (Vec::new(), Vec::new()))
                .collect(),
            cursors: vec![0; self.scopes.len()],
            repeats: Vec::new(),
            next_repeat: 0,
            types: Vec::with_capacity(n),
        };
        // Whether a repeat of an event within the batch could matter
        // without a claim telling (a delivery with no plain reaction).
        let mut unclaimed = false;
        // A first delivery on a broker that drops a second publish of an
        // id cannot have a copy handled elsewhere at the same time: the
        // broker gives a message to one member at a time and the runner
        // keeps it alive while held (a copy it hands out anyway, the
        // keep-alive lost in a cut, waits in `Runner::holding`), and a
        // copy published again later than the broker's window finds the
        // done-mark. Its inbox entry is
        // read, not claimed: a read where a claim is a write (on NATS, a
        // write to a file-backed stream). Redeliveries claim.
        let look_first = self.looks_first();
        let mut first: Vec<Vec<bool>> = (0..self.scopes.len()).map(|_| Vec::new()).collect();
        // Consecutive deliveries mostly have one type: looked up once.
        let mut last: Option<(&SharedStr, Option<usize>)> = None;
        for (di, d) in deliveries.iter().enumerate() {
            let ty = d.envelope().ty_shared();
            let k = match last {
                Some((t, k)) if t.same_ptr(ty) => k,
                _ => self.type_of(ty),
            };
            last = Some((ty, k));
            claims.types.push(k);
            let mut claimed = false;
            for &i in self.reactions_at(k).unwrap_or(&[]) {
                if matches!(self.def.reactions[i].trigger, Trigger::Any(_)) {
                    if ids[i].is_empty() {
                        ids[i].reserve(n);
                        first[i].reserve(n);
                        claims.per_reaction[i].0.reserve(n);
                    }
                    claims.per_reaction[i].0.push(di);
                    ids[i].push(d.envelope().id().clone());
                    first[i].push(look_first && d.attempt() == 1);
                    claimed = true;
                }
            }
            unclaimed |= !claimed;
        }
        for (i, (ids, first)) in ids.iter().zip(&first).enumerate() {
            if ids.is_empty() {
                continue;
            }
            let answers = match self.claim_or_look(&self.scopes[i], ids, first).await {
                Ok(answers) if answers.len() == ids.len() => answers.into_iter().map(Ok).collect(),
                Ok(_) => {
                    let e =
                        StoreError::Backend("claim_many answered a different number of ids".into());
                    vec![Err(e); ids.len()]
                }
                Err(e) => vec![Err(e); ids.len()],
            };
            claims.per_reaction[i].1 = answers;
        }
        // A repeat in one claim call is answered `Busy` (the `InboxStore`
        // contract), so only a batch with a claim not acquired, or with a
        // delivery not claimed at all, is looked through for repeats.
        let all_acquired = claims
            .per_reaction
            .iter()
            .all(|(_, answers)| answers.iter().all(|a| matches!(a, Ok(Claim::Acquired))));
        if n > 1 && (unclaimed || !all_acquired) {
            let mut seen = FastSet::with_capacity_and_hasher(n, Default::default());
            for (di, d) in deliveries.iter().enumerate() {
                if !seen.insert(d.envelope().id()) {
                    claims.repeats.push(di);
                }
            }
        }
        claims
    }
}
