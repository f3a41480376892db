//! A handler's run: its context and span, the `@bounded` check, the
//! `@timeout`, the panic guard, and what it emits (envelopes with derived
//! ids, on their topics).

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use smallvec::SmallVec;
use tracing::Instrument;

use super::super::definition::{Context, Emit, HandlerError, HandlerFuture, Input, Reaction};
use super::super::notice::EmittedEvent;
use super::batch::Outbox;
use super::verdict::{store_failed, Outcome};
use super::Runner;
use crate::envelope::{Envelope, EventId, SharedStr, TraceParent};
use crate::payload::Payload;

/// A handler future started on the fast path that did not finish on its
/// first poll.
pub(super) type Started = futures::future::CatchUnwind<AssertUnwindSafe<HandlerFuture>>;

/// What a handler came to: its result, or the panic it raised.
pub(super) type HandlerResult = Result<Result<Emit, HandlerError>, Box<dyn std::any::Any + Send>>;

impl Runner {
    /// The handler run proper: bound check, timeout, panic guard, emit.
    ///
    /// The emitted envelopes are appended to `publish`: the batch's flush
    /// publishes them all in one `publish_batch`, before the done marks and
    /// the acks. A `@bounded` reaction publishes here instead, since it
    /// counts its firing once its events are out. `ran` turns true as
    /// the handler starts.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fire(
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
        // Only a `@bounded` reaction names its firing (its delivery's dedup id).
        let firing = r.bound.map(|_| dedup_id.to_string());
        if let (Some(bound), Some(firing)) = (r.bound, &firing) {
            let firings = self
                .patiently("bound", || {
                    self.stores.state.firings(scope, instance, firing)
                })
                .await
                .map_err(store_failed)?;
            if firings.counted {
                // This firing published and counted, and lost only its
                // done-mark and ack (a kill or a pause in between): it is
                // done, and running it again could emit a second outcome.
                return Err(Outcome::Duplicate);
            }
            if firings.count >= u64::from(bound) {
                return Err(Outcome::DeadLetter(super::super::BOUND_EXCEEDED.into()));
            }
        }
        *ran = true;
        let (run, span) = self.start(r, trigger, inputs, attempt);
        let result = self.run_started(r, run, span).await;
        let first = publish.len();
        let emitted = self
            .emit(r, trigger, dedup_id, result, publish)
            .map_err(Outcome::Failed)?;
        if let Some(firing) = &firing {
            if publish.len() > first {
                let out: Vec<(SharedStr, Envelope)> = publish.drain(first..).collect();
                self.broker.publish_batch(out).await.map_err(|e| {
                    Outcome::Failed(HandlerError::failed(format!(
                        "publishing the outcome failed: {e}"
                    )))
                })?;
            }
            self.patiently("bound", || {
                self.stores.state.record_firing(scope, instance, firing)
            })
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
    pub(super) fn context(
        &self,
        r: &Reaction,
        trigger: &Envelope,
        attempt: u32,
    ) -> (Context, tracing::Span) {
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
    pub(super) async fn run_started(
        &self,
        r: &Reaction,
        run: Started,
        span: tracing::Span,
    ) -> HandlerResult {
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
    pub(super) fn emit(
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
            publish.extend(Some((self.emit_topics.topic_for(&ty), env)));
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
