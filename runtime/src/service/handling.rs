//! One delivery through a participant's reactions: inbox claim, join,
//! bound, the handler (timeout, panic guard), emitted events, and the
//! verdict (ack, retry, dead letter).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use smallvec::SmallVec;
use tracing::Instrument;

use super::definition::{Context, HandlerError, Input, Reaction, Trigger};
use super::options::bump;
use super::runner::{Handled, InboxAction, Outbox, Outcome, PreClaims, Runner};
use crate::broker::{Delivery, Settlement};
use crate::envelope::{Envelope, EventId, SharedStr, TraceParent};
use crate::payload::Payload;
use crate::progress::notice::{Completion, CompletionOutcome, EmittedEvent};
use crate::store::{Claim, StoreError};

impl Runner {
    pub(super) async fn handle(self: Arc<Self>, d: Delivery, pre: PreClaims) -> Handled {
        let env = d.envelope().clone();
        let Some(reactions) = self.by_type.get(env.ty()) else {
            let reason = format!(
                "participant {} has no reaction to type {:?}",
                self.def.participant,
                env.ty()
            );
            return Handled::settled(d, Settlement::DeadLetter { reason });
        };
        let attempt = d.attempt();
        let mut completions = SmallVec::new();
        let (mut complete, mut release) = (SmallVec::new(), SmallVec::new());
        let mut publish = SmallVec::new();
        let mut retry_in: Option<Duration> = None;
        let mut dead: Vec<(usize, String)> = Vec::new();
        let mut busy = false;
        for &i in reactions {
            let r = &self.def.reactions[i];
            let claim = pre.iter().find(|(ri, _)| *ri == i).map(|(_, c)| c.clone());
            let (outcome, action) = self.react(i, &env, attempt, claim, &mut publish).await;
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
            publish,
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
    async fn react(
        &self,
        i: usize,
        env: &Envelope,
        attempt: u32,
        claim: Option<Result<Claim, StoreError>>,
        publish: &mut Outbox,
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
        match self
            .fire(r, scope, env, inputs, &dedup_id, attempt, publish)
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

    /// The handler run proper: bound check, timeout, panic guard, emit.
    ///
    /// The emitted envelopes are appended to `publish`: the batch's flush
    /// publishes them all in one `publish_batch`, before the done marks and
    /// the acks. A `@bounded` reaction publishes here instead, since it
    /// counts its firing once its events are out.
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
            // Boxed: a timer is large, and most reactions have none; the
            // handling future is boxed per delivery.
            Some(t) => Box::pin(tokio::time::timeout(t, run).instrument(span))
                .await
                .unwrap_or(Ok(Err(HandlerError::Timeout(t)))),
            None => run.instrument(span).await,
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
        let first = publish.len();
        for (n, (ty, payload)) in emit.messages.into_iter().enumerate() {
            let env = self.emitted_envelope(&r.name, trigger, dedup_id, n, &ty, payload, trace);
            emitted.push(EmittedEvent {
                id: env.id().clone(),
                ty: ty.clone(),
            });
            publish.push((self.topic_for(&ty), env));
        }
        if r.bound.is_some() && publish.len() > first {
            let out: Vec<(SharedStr, Envelope)> = publish.drain(first..).collect();
            self.broker.publish_batch(out).await.map_err(|e| {
                Outcome::Failed(HandlerError::failed(format!(
                    "publishing the outcome failed: {e}"
                )))
            })?;
        }
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
