//! Runs a participant's reactions against a broker: one consumer group per
//! participant, deduplication through the inbox, joins and bounds through
//! the state store, retries through broker redelivery.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use std::future::Future;

use futures::{FutureExt, StreamExt};
use smallvec::SmallVec;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::definition::{Context, HandlerError, Input, Reaction, ServiceDefinition, Trigger};
use super::topics::Topics;
use crate::broker::{
    settle_all, BrokerError, Delivery, Settlement, SharedBroker, StartPosition, SubscribeOptions,
    Subscription,
};
use crate::envelope::{Envelope, EventId, SharedStr, TraceParent};
use crate::payload::Payload;
use crate::progress::notice::{Completion, CompletionOutcome, EmittedEvent, ProgressNotice};
use crate::store::{Claim, InboxStore, MemoryInbox, MemoryStateStore, StateStore, StoreError};

/// The stores a service keeps its idempotency and join state in.
#[derive(Clone)]
pub struct Stores {
    /// Deduplication by event id.
    pub inbox: Arc<dyn InboxStore>,
    /// Join slots and `@bounded` counters.
    pub state: Arc<dyn StateStore>,
}

impl Stores {
    /// Both stores in memory (lost with the process).
    pub fn memory() -> Self {
        Stores {
            inbox: Arc::new(MemoryInbox::new()),
            state: Arc::new(MemoryStateStore::new()),
        }
    }
}

impl Default for Stores {
    fn default() -> Self {
        Stores::memory()
    }
}

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Topic names (their prefix must match the other parts of the deployment).
    pub topics: Topics,
    /// Handlings running at once.
    pub max_in_flight: usize,
    /// Redelivery if a handling is not settled in this time; raised to
    /// twice the longest `@timeout` when that is longer.
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
    /// The broker refused.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The service task died.
    #[error("service task failed: {0}")]
    Crashed(String),
}

/// Counts of what a service did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceStats {
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
}

#[derive(Default)]
struct Counters {
    handled: AtomicU64,
    duplicates: AtomicU64,
    failures: AtomicU64,
    dead_lettered: AtomicU64,
    join_waiting: AtomicU64,
    deliveries: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ServiceStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServiceStats {
            handled: g(&self.handled),
            duplicates: g(&self.duplicates),
            failures: g(&self.failures),
            dead_lettered: g(&self.dead_lettered),
            join_waiting: g(&self.join_waiting),
            deliveries: g(&self.deliveries),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A running service.
pub struct ServiceHandle {
    participant: SharedStr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<Counters>,
}

impl ServiceHandle {
    /// The participant this service runs.
    pub fn participant(&self) -> &str {
        &self.participant
    }
    /// What it has done so far.
    pub fn stats(&self) -> ServiceStats {
        self.counters.snapshot()
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
        let runner = Arc::new(Runner::new(self, broker, stores, options));
        let sub = runner.broker.subscribe(runner.subscribe_options()).await?;
        let (stop, stopped) = watch::channel(false);
        let counters = runner.counters.clone();
        let participant = runner.def.participant.clone();
        let task = tokio::spawn(runner.run(sub, stopped));
        Ok(ServiceHandle {
            participant,
            stop,
            task,
            counters,
        })
    }
}

struct Runner {
    def: ServiceDefinition,
    broker: SharedBroker,
    stores: Stores,
    opts: ServiceOptions,
    source: SharedStr,
    /// Per reaction: its inbox and state scope.
    scopes: Vec<SharedStr>,
    /// Per wire type: the reactions it triggers.
    by_type: FastMap<SharedStr, Vec<usize>>,
    topic_cache: std::sync::RwLock<FastMap<SharedStr, SharedStr>>,
    progress_topic: SharedStr,
    counters: Arc<Counters>,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// How many more deliveries a service may take.
struct Capacity {
    free: AtomicUsize,
    freed: Notify,
}

/// How one reaction dealt with one delivery.
enum Outcome {
    Completed(Completion),
    Duplicate,
    Busy,
    Failed(HandlerError),
    DeadLetter(String),
}

/// A finished handling, waiting for the batch's flush.
struct Handled {
    delivery: Delivery,
    settlement: Settlement,
    completions: Vec<Completion>,
    /// Inbox ids to mark done, and to release, by reaction.
    complete: SmallVec<[(usize, EventId); 1]>,
    release: SmallVec<[(usize, EventId); 1]>,
}

/// What the batch claim said for one reaction of one delivery (mostly
/// one reaction: kept inline, no allocation per delivery).
type PreClaims = SmallVec<[(usize, Result<Claim, StoreError>); 1]>;

/// What a handling must do with an inbox claim taken for it.
enum InboxAction {
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
                SharedStr::from(format!(
                    "{}/{}/{}",
                    def.choreography, def.participant, r.name
                ))
            })
            .collect();
        let mut by_type: FastMap<SharedStr, Vec<usize>> = FastMap::default();
        for (i, r) in def.reactions.iter().enumerate() {
            for t in r.trigger.types() {
                by_type.entry(t.clone()).or_default().push(i);
            }
        }
        let source = SharedStr::from(
            opts.source
                .clone()
                .unwrap_or_else(|| format!("{}/{}", def.choreography, def.participant)),
        );
        let progress_topic = SharedStr::from(opts.topics.progress(&def.choreography));
        Runner {
            def,
            broker,
            stores,
            opts,
            source,
            scopes,
            by_type,
            topic_cache: std::sync::RwLock::new(FastMap::default()),
            progress_topic,
            counters: Arc::new(Counters::default()),
        }
    }

    fn subscribe_options(&self) -> SubscribeOptions {
        let mut topics: Vec<String> = self
            .by_type
            .keys()
            .map(|t| self.opts.topics.for_type(t))
            .collect();
        topics.sort();
        let mut o = SubscribeOptions::new(self.def.participant.to_string(), topics);
        o.start = self.opts.start;
        o.max_in_flight = self.opts.max_in_flight;
        let longest = self.def.reactions.iter().filter_map(|r| r.timeout).max();
        o.ack_wait = longest.map_or(self.opts.ack_wait, |t| self.opts.ack_wait.max(t * 2));
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

    fn topic_for(&self, ty: &SharedStr) -> SharedStr {
        if let Some(t) = self
            .topic_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(ty)
        {
            return t.clone();
        }
        let topic = SharedStr::from(self.opts.topics.for_type(ty));
        self.topic_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
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
                    Ok(()) => break,
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

    /// Handles one batch: claims it, runs its handlings, and settles them
    /// in groups as they finish.
    async fn process(self: Arc<Self>, deliveries: Vec<Delivery>, capacity: Arc<Capacity>) {
        let claims = self.claim_batch(&deliveries).await;
        let mut running = FuturesUnordered::new();
        let mut finished: Vec<Handled> = Vec::with_capacity(deliveries.len());
        // With in-process stores a handling mostly finishes on its first
        // poll: keep those out of the FuturesUnordered machinery.
        for (d, pre) in deliveries.into_iter().zip(claims) {
            let mut handling = Box::pin(self.clone().handle(d, pre));
            let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
            match handling.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(done) => finished.push(done),
                // Polled again by `running` with a real waker.
                std::task::Poll::Pending => running.push(handling),
            }
        }
        loop {
            if !finished.is_empty() {
                let n = finished.len();
                self.flush(&mut finished).await;
                capacity.free.fetch_add(n, Ordering::AcqRel);
                capacity.freed.notify_one();
            }
            let Some(done) = running.next().await else {
                break;
            };
            finished.push(done);
            // Take whatever else is ready, to settle in one go.
            while let Some(Some(done)) = running.next().now_or_never() {
                finished.push(done);
            }
        }
    }

    async fn flush(&self, finished: &mut Vec<Handled>) {
        if finished.is_empty() {
            return;
        }
        let mut completions = Vec::new();
        let mut settlements = Vec::with_capacity(finished.len());
        let mut complete: Vec<Vec<EventId>> = vec![Vec::new(); self.scopes.len()];
        let mut release: Vec<Vec<EventId>> = vec![Vec::new(); self.scopes.len()];
        for h in finished.drain(..) {
            if matches!(h.settlement, Settlement::DeadLetter { .. }) {
                bump(&self.counters.dead_lettered);
            }
            completions.extend(h.completions);
            for (i, id) in h.complete {
                complete[i].push(id);
            }
            for (i, id) in h.release {
                release[i].push(id);
            }
            settlements.push((h.delivery, h.settlement));
        }
        // Done marks first: once a delivery is acked its id must read done.
        for (i, ids) in complete
            .iter()
            .enumerate()
            .filter(|(_, ids)| !ids.is_empty())
        {
            if let Err(e) = self.stores.inbox.complete_many(&self.scopes[i], ids).await {
                // Outputs are out; a rerun republishes the same ids.
                tracing::warn!(scope = %self.scopes[i], error = %e, "inbox completions not stored");
            }
        }
        for (i, ids) in release
            .iter()
            .enumerate()
            .filter(|(_, ids)| !ids.is_empty())
        {
            if let Err(e) = self.stores.inbox.release_many(&self.scopes[i], ids).await {
                tracing::warn!(scope = %self.scopes[i], error = %e, "inbox claims not released; they lapse with their lease");
            }
        }
        // Notices go out before the acks: a tracker must never see an
        // instance idle while its last handling is still unreported.
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
            if let Err(e) = self.broker.publish(&self.progress_topic, env).await {
                tracing::warn!(participant = %self.def.participant, error = %e, "progress notice not published");
            }
        }
        let n = settlements.len() as u64;
        if let Err(e) = settle_all(settlements).await {
            // The broker redelivers what it did not take; the inbox makes
            // that harmless.
            tracing::warn!(participant = %self.def.participant, error = %e, "settling failed");
        }
        self.counters.deliveries.fetch_add(n, Ordering::Relaxed);
    }

    /// Claims, for every plain (non-join) reaction, the events of a whole
    /// batch in one call per reaction; one list of answers per delivery.
    async fn claim_batch(&self, deliveries: &[Delivery]) -> Vec<PreClaims> {
        let mut per_reaction: Vec<(Vec<usize>, Vec<EventId>)> =
            vec![(Vec::new(), Vec::new()); self.scopes.len()];
        for (di, d) in deliveries.iter().enumerate() {
            for &i in self
                .by_type
                .get(d.envelope().ty())
                .map_or(&[][..], Vec::as_slice)
            {
                if matches!(self.def.reactions[i].trigger, Trigger::Any(_)) {
                    per_reaction[i].0.push(di);
                    per_reaction[i].1.push(d.envelope().id().clone());
                }
            }
        }
        let mut out: Vec<PreClaims> = vec![SmallVec::new(); deliveries.len()];
        for (i, (dis, ids)) in per_reaction.into_iter().enumerate() {
            if ids.is_empty() {
                continue;
            }
            match self
                .stores
                .inbox
                .claim_many(&self.scopes[i], &ids, self.opts.claim_lease)
                .await
            {
                Ok(claims) if claims.len() == ids.len() => {
                    for (di, c) in dis.into_iter().zip(claims) {
                        out[di].push((i, Ok(c)));
                    }
                }
                Ok(_) => {
                    let e =
                        StoreError::Backend("claim_many answered a different number of ids".into());
                    for di in dis {
                        out[di].push((i, Err(e.clone())));
                    }
                }
                Err(e) => {
                    for di in dis {
                        out[di].push((i, Err(e.clone())));
                    }
                }
            }
        }
        out
    }

    async fn handle(self: Arc<Self>, d: Delivery, pre: PreClaims) -> Handled {
        let env = d.envelope().clone();
        let Some(reactions) = self.by_type.get(env.ty()) else {
            let reason = format!(
                "participant {} has no reaction to type {:?}",
                self.def.participant,
                env.ty()
            );
            return Handled {
                delivery: d,
                settlement: Settlement::DeadLetter { reason },
                completions: Vec::new(),
                complete: SmallVec::new(),
                release: SmallVec::new(),
            };
        };
        let attempt = d.attempt();
        let mut completions = Vec::new();
        let (mut complete, mut release) = (SmallVec::new(), SmallVec::new());
        let mut retry_in: Option<Duration> = None;
        let mut dead: Vec<(usize, String)> = Vec::new();
        let mut busy = false;
        for &i in reactions {
            let r = &self.def.reactions[i];
            let claim = pre.iter().find(|(ri, _)| *ri == i).map(|(_, c)| c.clone());
            let (outcome, action) = self.react(i, &env, attempt, claim).await;
            match action {
                InboxAction::None => {}
                InboxAction::Complete(id) => complete.push((i, id)),
                InboxAction::Release(id) => release.push((i, id)),
            }
            match outcome {
                Outcome::Completed(c) => completions.push(c),
                Outcome::Duplicate => bump(&self.counters.duplicates),
                Outcome::Busy => busy = true,
                Outcome::DeadLetter(reason) => dead.push((i, reason)),
                Outcome::Failed(err) => {
                    bump(&self.counters.failures);
                    let retries = r.retry.filter(|_| err.is_retryable());
                    match retries {
                        Some(p) if attempt <= p.max => {
                            let delay = p.delay(attempt);
                            tracing::info!(reaction = %r.name, id = %env.id(), attempt, error = %err, ?delay, "handler failed; will retry");
                            retry_in = Some(retry_in.map_or(delay, |d| d.max(delay)));
                        }
                        _ => {
                            let reason = match &err {
                                HandlerError::Decode(e) => {
                                    format!("reaction {}: decode error: {e}", r.name)
                                }
                                _ if attempt > 1 => format!(
                                    "reaction {} failed after {attempt} attempts: {err}",
                                    r.name
                                ),
                                _ => format!("reaction {} failed: {err}", r.name),
                            };
                            dead.push((i, reason));
                        }
                    }
                }
            }
        }
        let settlement = if let Some(delay) = retry_in {
            Settlement::Nack { delay: Some(delay) }
        } else if !dead.is_empty() {
            for (i, reason) in &dead {
                completions.push(self.completion(
                    *i,
                    &env,
                    CompletionOutcome::DeadLettered {
                        reason: reason.clone(),
                    },
                    SmallVec::new(),
                ));
            }
            let reason = dead
                .into_iter()
                .map(|(_, r)| r)
                .collect::<Vec<_>>()
                .join("; ");
            Settlement::DeadLetter { reason }
        } else if busy {
            Settlement::Nack {
                delay: Some(self.opts.busy_retry),
            }
        } else {
            Settlement::Ack
        };
        Handled {
            delivery: d,
            settlement,
            completions,
            complete,
            release,
        }
    }

    fn completion(
        &self,
        i: usize,
        env: &Envelope,
        outcome: CompletionOutcome,
        emitted: SmallVec<[EmittedEvent; 1]>,
    ) -> Completion {
        Completion {
            reaction: self.def.reactions[i].name.clone(),
            instance: env.correlation_shared().clone(),
            event_id: env.id().clone(),
            event_type: env.ty_shared().clone(),
            outcome,
            emitted,
        }
    }

    /// Runs reaction `i` for `env`, at most once per event (per instance
    /// for a join), whatever the number of deliveries. A plain reaction
    /// comes with its batch claim and leaves the inbox update to the
    /// flush; a join claims and updates its firing here.
    async fn react(
        &self,
        i: usize,
        env: &Envelope,
        attempt: u32,
        claim: Option<Result<Claim, StoreError>>,
    ) -> (Outcome, InboxAction) {
        let r = &self.def.reactions[i];
        let scope = &self.scopes[i];
        let instance = env.correlation_shared();
        let (inputs, dedup_id, claim) = match (&r.trigger, claim) {
            (Trigger::Any(_), Some(claim)) => {
                (smallvec::smallvec![env.clone()], env.id().clone(), claim)
            }
            (Trigger::Any(_), None) => {
                let claim = self
                    .stores
                    .inbox
                    .claim(scope, env.id(), self.opts.claim_lease)
                    .await;
                (smallvec::smallvec![env.clone()], env.id().clone(), claim)
            }
            (Trigger::All(types), _) => {
                let slot = types.iter().position(|t| t == env.ty_shared()).unwrap_or(0);
                match self
                    .stores
                    .state
                    .join_arrive(scope, instance, slot, types.len(), env)
                    .await
                {
                    Err(e) => return (Outcome::Failed(HandlerError::failed(e)), InboxAction::None),
                    Ok(None) => {
                        bump(&self.counters.join_waiting);
                        let c = self.completion(
                            i,
                            env,
                            CompletionOutcome::JoinWaiting,
                            SmallVec::new(),
                        );
                        return (Outcome::Completed(c), InboxAction::None);
                    }
                    Ok(Some(all)) => {
                        let id = join_firing_id(instance);
                        match self
                            .stores
                            .inbox
                            .claim(scope, &id, self.opts.claim_lease)
                            .await
                        {
                            // A join that fired already still owes this
                            // event a completion, so trackers do not wait
                            // for it forever.
                            Ok(Claim::Done) => {
                                let c = self.completion(
                                    i,
                                    env,
                                    CompletionOutcome::JoinWaiting,
                                    SmallVec::new(),
                                );
                                return (Outcome::Completed(c), InboxAction::None);
                            }
                            claim => (all.into(), id, claim),
                        }
                    }
                }
            }
        };
        match claim {
            Err(e) => return (Outcome::Failed(HandlerError::failed(e)), InboxAction::None),
            Ok(Claim::Done) => return (Outcome::Duplicate, InboxAction::None),
            Ok(Claim::Busy) => return (Outcome::Busy, InboxAction::None),
            Ok(Claim::Acquired) => {}
        }
        match self.fire(r, scope, env, inputs, &dedup_id, attempt).await {
            Ok(emitted) => {
                bump(&self.counters.handled);
                let c = self.completion(i, env, CompletionOutcome::Handled, emitted);
                (Outcome::Completed(c), InboxAction::Complete(dedup_id))
            }
            Err(outcome) => (outcome, InboxAction::Release(dedup_id)),
        }
    }

    /// The handler run proper: bound check, timeout, panic guard, emit.
    async fn fire(
        &self,
        r: &Reaction,
        scope: &SharedStr,
        trigger: &Envelope,
        inputs: SmallVec<[Envelope; 2]>,
        dedup_id: &EventId,
        attempt: u32,
    ) -> Result<SmallVec<[EmittedEvent; 1]>, Outcome> {
        let instance = trigger.correlation_shared();
        if let Some(bound) = r.bound {
            let fired = self
                .stores
                .state
                .fired_count(scope, instance)
                .await
                .map_err(|e| Outcome::Failed(HandlerError::failed(e)))?;
            if fired >= u64::from(bound) {
                return Err(Outcome::DeadLetter("bound exceeded".into()));
            }
        }
        let span = tracing::info_span!(
            "choreo.handle",
            choreography = %self.def.choreography,
            participant = %self.def.participant,
            reaction = %r.name,
            event.id = %trigger.id(),
            event.type = %trigger.ty(),
            correlation_id = %instance,
            attempt,
            trace_id = tracing::field::Empty,
        );
        if !span.is_disabled() {
            if let Some(tp) = trigger.traceparent() {
                span.record("trace_id", tracing::field::display(tp.trace_id_hex()));
            }
        }
        let ctx = Context {
            instance: instance.clone(),
            event_id: trigger.id().clone(),
            attempt,
            reaction: r.name.clone(),
            span: span.clone(),
        };
        let run = AssertUnwindSafe((r.handler)(ctx, Input::new(inputs))).catch_unwind();
        let result = match r.timeout {
            Some(t) => tokio::time::timeout(t, run)
                .instrument(span.clone())
                .await
                .unwrap_or(Ok(Err(HandlerError::Timeout(t)))),
            None => run.instrument(span.clone()).await,
        };
        let emit = match result {
            Ok(Ok(emit)) => emit,
            Ok(Err(e)) => return Err(Outcome::Failed(e)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".into());
                return Err(Outcome::Failed(HandlerError::Failed(format!(
                    "handler panicked: {what}"
                ))));
            }
        };
        let trace = trigger
            .traceparent()
            .map_or_else(TraceParent::new_root, |t| t.child());
        let mut emitted = SmallVec::with_capacity(emit.messages.len());
        let mut out: Vec<(SharedStr, Envelope)> = Vec::with_capacity(emit.messages.len());
        for (n, (ty, payload)) in emit.messages.into_iter().enumerate() {
            let env = self.emitted_envelope(&r.name, trigger, dedup_id, n, &ty, payload, trace);
            emitted.push(EmittedEvent {
                id: env.id().clone(),
                ty: ty.clone(),
            });
            out.push((self.topic_for(&ty), env));
        }
        let published = match out.len() {
            0 => Ok(()),
            1 => match out.pop() {
                Some((topic, env)) => self.broker.publish(&topic, env).await,
                None => Ok(()),
            },
            _ => self.broker.publish_batch(out).await,
        };
        published.map_err(|e| {
            Outcome::Failed(HandlerError::failed(format!(
                "publishing the outcome failed: {e}"
            )))
        })?;
        if r.bound.is_some() {
            self.stores
                .state
                .record_firing(scope, instance)
                .await
                .map_err(|e| Outcome::Failed(HandlerError::failed(e)))?;
        }
        Ok(emitted)
    }

    #[allow(clippy::too_many_arguments)]
    fn emitted_envelope(
        &self,
        reaction: &str,
        trigger: &Envelope,
        dedup_id: &EventId,
        n: usize,
        ty: &SharedStr,
        payload: Payload,
        trace: TraceParent,
    ) -> Envelope {
        Envelope::caused_by(
            trigger,
            // Derived ids: a rerun after a crash republishes the same ids.
            EventId::derived(dedup_id, reaction, n),
            ty.clone(),
            self.source.clone(),
            trace,
            self.def.version.clone(),
            payload,
        )
    }
}

/// The inbox id of a join's one firing in `instance`.
fn join_firing_id(instance: &str) -> EventId {
    EventId::derived(&EventId::from(instance), "join", 0)
}
