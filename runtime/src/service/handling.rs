//! One delivery through a participant's reactions: inbox claim, join,
//! bound, the handler (timeout, panic guard), emitted events, and the
//! verdict (ack, retry, dead letter).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use smallvec::SmallVec;
use tracing::Instrument;

use super::busy::busy_delay;
use super::definition::{Context, Emit, HandlerError, Input, Reaction, Trigger};
use super::notice::{Completion, CompletionOutcome, EmittedEvent};
use super::options::bump;
use super::runner::{
    claim_owner, Batch, Claims, Handled, InboxAction, Outbox, Outcome, PreClaims, Results, Runner,
    Sink,
};
use crate::broker::{Delivery, Settlement};
use crate::envelope::{Envelope, EventId, SharedStr, TraceParent};
use crate::payload::Payload;
use crate::store::{Claim, JoinArrival, Seen, StoreError};

/// The verdict on one delivery, gathered reaction by reaction.
struct Verdict {
    attempt: u32,
    retry_in: Option<Duration>,
    dead: Vec<(usize, String)>,
    busy: bool,
    /// A handler ran (or a join stored the arrival, or fired) for the
    /// delivery: a redelivery then counts as
    /// [`ServiceStats::redelivered`](super::ServiceStats::redelivered).
    ran: bool,
}

/// A handler future started on the fast path that did not finish on its
/// first poll.
type Started = futures::future::CatchUnwind<AssertUnwindSafe<super::definition::HandlerFuture>>;

impl Verdict {
    fn new(attempt: u32) -> Self {
        Verdict {
            attempt,
            retry_in: None,
            dead: Vec::new(),
            busy: false,
            ran: false,
        }
    }

    /// Counts how reaction `i` dealt with the delivery.
    fn add(
        &mut self,
        runner: &Runner,
        env: &Envelope,
        i: usize,
        outcome: Outcome,
        action: InboxAction,
        sink: &mut impl Sink,
    ) {
        let r = &runner.def.reactions[i];
        let attempt = self.attempt;
        sink.inbox(i, action);
        match outcome {
            Outcome::Completed(c) => sink.completion(c),
            Outcome::Duplicate => {
                bump(&runner.counters.duplicates);
                // Found done: the handler ran and its events were
                // published before the done-mark, but the progress notice
                // may never have gone out (a crash between the two), and
                // trackers would wait for this reaction for ever. So every
                // duplicate reports the completion again; trackers take a
                // second report as a no-op. Even a first delivery does:
                // a broker killed before it stored a delivery count hands
                // the event out again as a first delivery, and a repeat
                // in one batch is settled by its first copy (a chaos
                // campaign found orders that ended but never settled).
                sink.completion(runner.completion(
                    i,
                    env,
                    CompletionOutcome::Handled,
                    SmallVec::new(),
                ));
            }
            Outcome::Busy => self.busy = true,
            Outcome::DeadLetter(reason) => self.dead.push((i, reason)),
            Outcome::Failed(err) => {
                bump(&runner.counters.failures);
                let retries = r.retry.filter(|_| err.is_retryable());
                match retries {
                    Some(p) if attempt <= p.max => {
                        let delay = p.delay(attempt);
                        tracing::info!(reaction = %r.name, id = %env.id(), attempt, error = %err, ?delay, "handler failed; will retry");
                        self.retry_in = Some(self.retry_in.map_or(delay, |d| d.max(delay)));
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
                        self.dead.push((i, reason));
                    }
                }
            }
        }
    }

    /// The delivery's settlement: retry if any reaction may, else dead
    /// letter if any gave up, else come back later if one was busy, else ack.
    fn settle(self, runner: &Runner, env: &Envelope, sink: &mut impl Sink) -> Settlement {
        if self.ran && self.attempt > 1 {
            bump(&runner.counters.redelivered);
        }
        if let Some(delay) = self.retry_in {
            Settlement::Nack { delay: Some(delay) }
        } else if !self.dead.is_empty() {
            for (i, reason) in &self.dead {
                sink.completion(runner.completion(
                    *i,
                    env,
                    CompletionOutcome::DeadLettered {
                        reason: reason.clone(),
                    },
                    SmallVec::new(),
                ));
            }
            let reason = self
                .dead
                .into_iter()
                .map(|(_, r)| r)
                .collect::<Vec<_>>()
                .join("; ");
            Settlement::DeadLetter { reason }
        } else if self.busy {
            Settlement::Nack {
                delay: Some(busy_delay(
                    runner.opts.busy_retry,
                    runner.opts.claim_lease,
                    self.attempt,
                )),
            }
        } else {
            Settlement::Ack
        }
    }
}

impl Runner {
    /// Handles a delivery without a future of its own when it can: one
    /// plain reaction (no join, no bound) with its batch claim, whose
    /// handler finishes on its first poll — the common case with
    /// in-process stores. Its results go straight into `batch`. Anything
    /// else is returned as a future to poll to the end: the full way
    /// ([`Self::handle`]), or the rest of a handler that is not ready yet
    /// ([`Self::resume`]).
    pub(super) fn handle_now(
        self: &Arc<Self>,
        d: Delivery,
        di: usize,
        claims: &mut Claims,
        batch: &mut Batch,
    ) -> Option<BoxFuture<'static, Handled>> {
        let fast = match self.reactions_at(claims.type_of(di)) {
            Some(&[i]) => {
                let r = &self.def.reactions[i];
                (r.bound.is_none() && matches!(r.trigger, Trigger::Any(_)))
                    .then(|| claims.take_one(di, i).map(|c| (i, r, c)))
                    .flatten()
            }
            _ => None,
        };
        let Some((i, r, claim)) = fast else {
            return Some(Box::pin(self.clone().handle(d, claims.take(di))));
        };
        let env = d.envelope();
        let mut v = Verdict::new(d.attempt());
        let (outcome, action) = match claim {
            Err(e) => (store_failed(e), InboxAction::None),
            Ok(Claim::Done) => (Outcome::Duplicate, InboxAction::None),
            Ok(Claim::Busy) => (Outcome::Busy, InboxAction::None),
            Ok(Claim::Acquired) => {
                v.ran = true;
                let input = Input::new(smallvec::smallvec![env.clone()]);
                let (ctx, span) = self.context(r, env, v.attempt);
                // The handler's future lives in the batch's slot for this
                // reaction, used again handling after handling.
                let slot = batch.slots[i].get_or_insert_with(|| r.slots.clone().slot());
                let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
                let polled = span.in_scope(|| {
                    std::panic::catch_unwind(AssertUnwindSafe(|| slot.run(ctx, input, &mut cx)))
                });
                let result: HandlerResult = match polled {
                    Ok(std::task::Poll::Ready(out)) => Ok(out),
                    Ok(std::task::Poll::Pending) => {
                        let run = AssertUnwindSafe(slot.detach()).catch_unwind();
                        return Some(Box::pin(self.clone().resume(d, v, i, run, span)));
                    }
                    Err(panic) => {
                        slot.reset();
                        Err(panic)
                    }
                };
                match self.emit(r, env, env.id(), result, &mut batch.publish) {
                    // Success, the common case, straight into the batch:
                    // done mark, completion, ack.
                    Ok(emitted) => {
                        batch.handled += 1;
                        if v.attempt > 1 {
                            bump(&self.counters.redelivered);
                        }
                        batch.complete[i].push(env.id().clone());
                        if self.opts.progress_notices {
                            let c = self.completion(i, env, CompletionOutcome::Handled, emitted);
                            batch.completions.push(c);
                        }
                        batch.settlements.push((d, Settlement::Ack));
                        return None;
                    }
                    Err(e) => (Outcome::Failed(e), InboxAction::Release(env.id().clone())),
                }
            }
        };
        v.add(self, env, i, outcome, action, batch);
        let settlement = v.settle(self, env, batch);
        batch.settlements.push((d, settlement));
        None
    }

    /// The rest of a fast-path handling whose handler was not ready.
    async fn resume(
        self: Arc<Self>,
        d: Delivery,
        mut v: Verdict,
        i: usize,
        run: Started,
        span: tracing::Span,
    ) -> Handled {
        let r = &self.def.reactions[i];
        let result = self.run_started(r, run, span).await;
        let mut results = Results::default();
        let env = d.envelope();
        let (outcome, action) = self.finished(i, env, result, &mut results.publish);
        if matches!(outcome, Outcome::Completed(_)) {
            bump(&self.counters.handled);
        }
        v.add(&self, env, i, outcome, action, &mut results);
        let settlement = v.settle(&self, env, &mut results);
        Handled {
            delivery: d,
            settlement,
            results,
        }
    }

    /// A plain reaction's handler has returned: its outcome and inbox action.
    fn finished(
        &self,
        i: usize,
        env: &Envelope,
        result: HandlerResult,
        publish: &mut impl Extend<(SharedStr, Envelope)>,
    ) -> (Outcome, InboxAction) {
        let r = &self.def.reactions[i];
        let id = env.id();
        match self.emit(r, env, id, result, publish) {
            Ok(emitted) => {
                let c = self.completion(i, env, CompletionOutcome::Handled, emitted);
                (Outcome::Completed(c), InboxAction::Complete(id.clone()))
            }
            Err(e) => (Outcome::Failed(e), InboxAction::Release(id.clone())),
        }
    }

    /// The full way: every reaction of the delivery, each awaited in turn.
    pub(super) async fn handle(self: Arc<Self>, d: Delivery, pre: PreClaims) -> Handled {
        let env = d.envelope().clone();
        let Some(reactions) = self.reactions_of(env.ty_shared()) else {
            let reason = format!(
                "participant {} has no reaction to type {:?}",
                self.def.participant,
                env.ty()
            );
            return Handled {
                delivery: d,
                settlement: Settlement::DeadLetter { reason },
                results: Results::default(),
            };
        };
        let mut v = Verdict::new(d.attempt());
        let mut results = Results::default();
        for &i in reactions {
            let claim = pre.iter().find(|(ri, _)| *ri == i).map(|(_, c)| c.clone());
            let (outcome, action) = self
                .react(i, &env, v.attempt, claim, &mut results.publish, &mut v.ran)
                .await;
            v.add(&self, &env, i, outcome, action, &mut results);
        }
        let settlement = v.settle(&self, &env, &mut results);
        Handled {
            delivery: d,
            settlement,
            results,
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
    /// flush; a join claims and updates its firing here. What the handler
    /// emits goes to `publish`, for the flush to publish (see [`Self::fire`]).
    /// `ran` turns true once the handler runs.
    async fn react(
        &self,
        i: usize,
        env: &Envelope,
        attempt: u32,
        claim: Option<Result<Claim, StoreError>>,
        publish: &mut Outbox,
        ran: &mut bool,
    ) -> (Outcome, InboxAction) {
        let r = &self.def.reactions[i];
        let scope = &self.scopes[i];
        let instance = env.correlation_shared();
        let (inputs, dedup_id, claim) = match (&r.trigger, claim) {
            (Trigger::Any(_), Some(claim)) => {
                (smallvec::smallvec![env.clone()], env.id().clone(), claim)
            }
            (Trigger::Any(_), None) => {
                let owner = claim_owner();
                let claim = self
                    .patiently("claim", || {
                        self.stores
                            .inbox
                            .claim_as(scope, env.id(), self.opts.claim_lease, owner)
                    })
                    .await;
                (smallvec::smallvec![env.clone()], env.id().clone(), claim)
            }
            (Trigger::All(types), _) => {
                if attempt > 1 {
                    if let Some(done) = self.fired_before(i, env).await {
                        return done;
                    }
                }
                let slot = types.iter().position(|t| t == env.ty_shared()).unwrap_or(0);
                let (all, unclaimed) = match self
                    .patiently("join", || {
                        self.stores
                            .state
                            .join_arrival(scope, instance, slot, types.len(), env)
                    })
                    .await
                {
                    Err(e) => return (store_failed(e), InboxAction::None),
                    Ok(JoinArrival::Waiting) => {
                        // The join may have fired between the look above
                        // and this arrival: its slot would stay for ever.
                        if attempt > 1 && self.fired_before(i, env).await.is_some() {
                            self.clear_refilled(scope, instance).await;
                        }
                        bump(&self.counters.join_waiting);
                        // Storing the arrival is this delivery's work: a
                        // redelivery that stores it took over what its
                        // first holder lost.
                        *ran = true;
                        let c = self.completion(
                            i,
                            env,
                            CompletionOutcome::JoinWaiting,
                            SmallVec::new(),
                        );
                        return (Outcome::Completed(c), InboxAction::None);
                    }
                    // Completed by this first delivery: no other arrival
                    // fires it meanwhile (one finding it full waits out
                    // the claim lease from its completion, below), so its
                    // firing needs no claim, as a first delivery's plain
                    // handling needs none (see `Runner::claim_or_look`).
                    //
                    // One look at the firing first: a broker killed before
                    // it stored a delivery count hands both arrivals of a
                    // join that fired out again as first deliveries, and
                    // they fill the join a second time.
                    Ok(JoinArrival::Completed(all)) if attempt == 1 && self.looks_first() => {
                        if let Some(done) = self.fired_before(i, env).await {
                            self.clear_refilled(scope, instance).await;
                            return done;
                        }
                        (all, true)
                    }
                    // Completed by another arrival a moment ago, which
                    // may be firing it unclaimed: this one comes again,
                    // to find it fired, or the lease past.
                    Ok(JoinArrival::Full {
                        completed_by_this: false,
                        age: Some(age),
                        ..
                    }) if age < self.opts.claim_lease => {
                        return (Outcome::Busy, InboxAction::None);
                    }
                    Ok(JoinArrival::Completed(all) | JoinArrival::Full { all, .. }) => (all, false),
                };
                let id = join_firing_id(instance);
                if unclaimed {
                    (all.into(), id, Ok(Claim::Acquired))
                } else {
                    let owner = claim_owner();
                    match self
                        .patiently("join firing", || {
                            self.stores
                                .inbox
                                .claim_as(scope, &id, self.opts.claim_lease, owner)
                        })
                        .await
                    {
                        // A join that fired already still owes this event
                        // a completion, so trackers do not wait for it;
                        // the slot this late copy filled again goes, or
                        // it would stay for ever. (One that another
                        // arrival is firing now is busy: it comes again,
                        // in case that firing dies.)
                        Ok(Claim::Done) => {
                            self.clear_refilled(scope, instance).await;
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
        };
        match claim {
            Err(e) => return (store_failed(e), InboxAction::None),
            Ok(Claim::Done) => return (Outcome::Duplicate, InboxAction::None),
            Ok(Claim::Busy) => return (Outcome::Busy, InboxAction::None),
            Ok(Claim::Acquired) => {}
        }
        match self
            .fire(r, scope, env, inputs, &dedup_id, attempt, publish, ran)
            .await
        {
            Ok(emitted) => {
                bump(&self.counters.handled);
                let c = self.completion(i, env, CompletionOutcome::Handled, emitted);
                (Outcome::Completed(c), InboxAction::Complete(dedup_id))
            }
            Err(outcome) => (outcome, InboxAction::Release(dedup_id)),
        }
    }

    /// Whether join reaction `i` fired already for `env`'s instance, asked
    /// before a redelivered arrival stores its slot: one that was busy
    /// while another arrival fired comes back after the firing removed
    /// the slots, and storing its slot again would keep it for ever. A
    /// fired join gives the arrival's handling (a completion, no slot
    /// stored); otherwise the arrival goes on as usual. A look: it writes
    /// nothing.
    async fn fired_before(&self, i: usize, env: &Envelope) -> Option<(Outcome, InboxAction)> {
        let scope = &self.scopes[i];
        let id = join_firing_id(env.correlation_shared());
        let seen = self
            .patiently("join firing", || {
                self.stores
                    .inbox
                    .look_many(scope, std::slice::from_ref(&id))
            })
            .await;
        match seen.as_deref() {
            Ok([Seen::Done]) => {
                let c = self.completion(i, env, CompletionOutcome::JoinWaiting, SmallVec::new());
                Some((Outcome::Completed(c), InboxAction::None))
            }
            _ => None,
        }
    }

    /// Removes the slots of a fired join that a late copy filled again.
    async fn clear_refilled(&self, scope: &SharedStr, instance: &SharedStr) {
        if let Err(e) = self.stores.state.join_clear(scope, instance).await {
            tracing::warn!(scope = %scope, instance = %instance, error = %e, "a fired join's slot, filled again by a late arrival, was not removed");
        }
    }

    /// The handler run proper: bound check, timeout, panic guard, emit.
    ///
    /// The emitted envelopes are appended to `publish`: the batch's flush
    /// publishes them all in one `publish_batch`, before the done marks and
    /// the acks. A `@bounded` reaction publishes here instead, since it
    /// counts its firing once its events are out. `ran` turns true as
    /// the handler starts.
    #[allow(clippy::too_many_arguments)]
    async fn fire(
        &self,
        r: &Reaction,
        scope: &SharedStr,
        trigger: &Envelope,
        inputs: SmallVec<[Envelope; 2]>,
        dedup_id: &EventId,
        attempt: u32,
        publish: &mut Outbox,
        ran: &mut bool,
    ) -> Result<SmallVec<[EmittedEvent; 1]>, Outcome> {
        let instance = trigger.correlation_shared();
        if let Some(bound) = r.bound {
            let fired = self
                .patiently("bound", || self.stores.state.fired_count(scope, instance))
                .await
                .map_err(store_failed)?;
            if fired >= u64::from(bound) {
                return Err(Outcome::DeadLetter("bound exceeded".into()));
            }
        }
        *ran = true;
        let (run, span) = self.start(r, trigger, inputs, attempt);
        let result = self.run_started(r, run, span).await;
        let first = publish.len();
        let emitted = self
            .emit(r, trigger, dedup_id, result, publish)
            .map_err(Outcome::Failed)?;
        if r.bound.is_some() {
            if publish.len() > first {
                let out: Vec<(SharedStr, Envelope)> = publish.drain(first..).collect();
                self.broker.publish_batch(out).await.map_err(|e| {
                    Outcome::Failed(HandlerError::failed(format!(
                        "publishing the outcome failed: {e}"
                    )))
                })?;
            }
            self.patiently("bound", || self.stores.state.record_firing(scope, instance))
                .await
                .map_err(store_failed)?;
        }
        Ok(emitted)
    }

    /// Starts the handler of `r` in its span (panics caught).
    fn start(
        &self,
        r: &Reaction,
        trigger: &Envelope,
        inputs: SmallVec<[Envelope; 2]>,
        attempt: u32,
    ) -> (Started, tracing::Span) {
        let (ctx, span) = self.context(r, trigger, attempt);
        let run = span.in_scope(|| AssertUnwindSafe((r.handler)(ctx, Input::new(inputs))));
        (run.catch_unwind(), span)
    }

    /// The context and span of one handling of `r`.
    fn context(&self, r: &Reaction, trigger: &Envelope, attempt: u32) -> (Context, tracing::Span) {
        let instance = trigger.correlation_shared();
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
        (ctx, span)
    }

    /// Polls a started handler to its end, within its `@timeout`.
    async fn run_started(&self, r: &Reaction, run: Started, span: tracing::Span) -> HandlerResult {
        match r.timeout {
            // Boxed: a timer is large, and most reactions have none.
            Some(t) => Box::pin(tokio::time::timeout(t, run).instrument(span))
                .await
                .unwrap_or(Ok(Err(HandlerError::Timeout(t)))),
            None => run.instrument(span).await,
        }
    }

    /// What a handler's result means: its emitted envelopes appended to
    /// `publish`, or its failure (a panic is a failure).
    fn emit(
        &self,
        r: &Reaction,
        trigger: &Envelope,
        dedup_id: &EventId,
        result: HandlerResult,
        publish: &mut impl Extend<(SharedStr, Envelope)>,
    ) -> Result<SmallVec<[EmittedEvent; 1]>, HandlerError> {
        let emit = match result {
            Ok(Ok(emit)) => emit,
            Ok(Err(e)) => return Err(e),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".into());
                return Err(HandlerError::Failed(format!("handler panicked: {what}")));
            }
        };
        if emit.messages.is_empty() {
            return Ok(SmallVec::new());
        }
        let trace = trigger
            .traceparent()
            .map_or_else(TraceParent::new_root, |t| t.child());
        let mut emitted = SmallVec::with_capacity(emit.messages.len());
        for (n, (ty, payload)) in emit.messages.into_iter().enumerate() {
            let env = self.emitted_envelope(&r.name, trigger, dedup_id, n, &ty, payload, trace);
            emitted.push(EmittedEvent {
                id: env.id().clone(),
                ty: ty.clone(),
            });
            publish.extend(Some((self.topic_for(&ty), env)));
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

/// What a handler came to: its result, or the panic it raised.
type HandlerResult = Result<Result<Emit, HandlerError>, Box<dyn std::any::Any + Send>>;

/// What a store error that waiting did not mend means for a handling: a
/// backend still down as the service stops is no fault of the event (it
/// is handed back, to come again); corrupt data or a bad configuration is
/// a failure like any other.
fn store_failed(e: StoreError) -> Outcome {
    match e {
        StoreError::Backend(_) => Outcome::Busy,
        other => Outcome::Failed(HandlerError::failed(other)),
    }
}

/// The inbox id of a join's one firing in `instance`.
fn join_firing_id(instance: &str) -> EventId {
    EventId::derived(&EventId::from(instance), "join", 0)
}
