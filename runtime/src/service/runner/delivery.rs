//! One delivery through a participant's reactions: the fast way (one
//! plain reaction whose handler finishes at once, straight into the
//! batch), or the full way, reaction by reaction (claim, join, handler).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use smallvec::SmallVec;

use super::super::definition::{Input, Trigger};
use super::super::notice::{Completion, CompletionOutcome, EmittedEvent};
use super::super::options::bump;
use super::batch::{Batch, Handled, InboxAction, Outbox, Results, Sink};
use super::claims::{claim_owner, Claims, PreClaims};
use super::handler::{HandlerResult, Started};
use super::verdict::{store_failed, Outcome, Verdict};
use super::Runner;
use crate::broker::{Delivery, Settlement};
use crate::envelope::{Envelope, SharedStr};
use crate::store::{Claim, StoreError};

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
        let fast = match self.routes.reactions_at(claims.type_of(di)) {
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
                let slot = batch.slot(i, || r.slots.clone().slot());
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
                match self.emit(r, env, env.id(), result, batch.outbox()) {
                    // Success, the common case, straight into the batch:
                    // done mark, completion, ack.
                    Ok(emitted) => {
                        batch.count_handled();
                        if v.attempt > 1 {
                            bump(&self.counters.redelivered);
                        }
                        batch.done(i, env.id().clone());
                        if self.opts.progress_notices {
                            let c = self.completion(i, env, CompletionOutcome::Handled, emitted);
                            batch.completion(c);
                        }
                        batch.settle(d, Settlement::Ack);
                        return None;
                    }
                    Err(e) => (Outcome::Failed(e), InboxAction::Release(env.id().clone())),
                }
            }
        };
        v.add(self, env, i, outcome, action, batch);
        let settlement = v.settle(self, env, batch);
        batch.settle(d, settlement);
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
        let (outcome, action) = self.finished(i, env, result, results.outbox());
        if matches!(outcome, Outcome::Completed(_)) {
            bump(&self.counters.handled);
        }
        v.add(&self, env, i, outcome, action, &mut results);
        let settlement = v.settle(&self, env, &mut results);
        Handled::new(d, settlement, results)
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
        let Some(reactions) = self.routes.reactions_of(env.ty_shared()) else {
            let reason = format!(
                "participant {} has no reaction to type {:?}",
                self.def.participant,
                env.ty()
            );
            return Handled::new(d, Settlement::DeadLetter { reason }, Results::default());
        };
        let mut v = Verdict::new(d.attempt());
        let mut results = Results::default();
        for &i in reactions {
            let claim = pre.iter().find(|(ri, _)| *ri == i).map(|(_, c)| c.clone());
            let (outcome, action) = self
                .react(i, &env, v.attempt, claim, results.outbox(), &mut v.ran)
                .await;
            v.add(&self, &env, i, outcome, action, &mut results);
        }
        let settlement = v.settle(&self, &env, &mut results);
        Handled::new(d, settlement, results)
    }

    pub(super) fn completion(
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
                match self.join_arrival(i, env, attempt, types, ran).await {
                    Ok(firing) => firing,
                    Err(done) => return done,
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
            // A `@bounded` firing counted before its done-mark was lost:
            // done, so marked done now.
            Err(Outcome::Duplicate) => (Outcome::Duplicate, InboxAction::Complete(dedup_id)),
            Err(outcome) => (outcome, InboxAction::Release(dedup_id)),
        }
    }
}
