//! The verdict on one delivery, gathered reaction by reaction: ack,
//! retry after a back-off, come again later (busy), or dead letter.

use std::time::Duration;

use smallvec::SmallVec;

use super::super::busy::busy_delay;
use super::super::definition::HandlerError;
use super::super::notice::{Completion, CompletionOutcome};
use super::super::options::bump;
use super::batch::{InboxAction, Sink};
use super::Runner;
use crate::broker::Settlement;
use crate::envelope::Envelope;
use crate::store::StoreError;

/// How one reaction dealt with one delivery.
pub(super) enum Outcome {
    Completed(Completion),
    Duplicate,
    Busy,
    Failed(HandlerError),
    DeadLetter(String),
}

/// The verdict on one delivery, gathered reaction by reaction.
pub(super) struct Verdict {
    pub(super) attempt: u32,
    retry_in: Option<Duration>,
    dead: Vec<(usize, String)>,
    busy: bool,
    /// A handler ran (or a join stored the arrival, or fired) for the
    /// delivery: a redelivery then counts as
    /// [`ServiceStats::redelivered`](super::super::ServiceStats::redelivered).
    pub(super) ran: bool,
    /// A reaction found the event handled already: a redelivery then
    /// counts as
    /// [`ServiceStats::redelivered_done`](super::super::ServiceStats::redelivered_done)
    /// (unless a handler ran for it too).
    found_done: bool,
}

impl Verdict {
    pub(super) fn new(attempt: u32) -> Self {
        Verdict {
            attempt,
            retry_in: None,
            dead: Vec::new(),
            busy: false,
            ran: false,
            found_done: false,
        }
    }

    /// Counts how reaction `i` dealt with the delivery.
    pub(super) fn add(
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
                self.found_done = true;
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
    pub(super) fn settle(
        self,
        runner: &Runner,
        env: &Envelope,
        sink: &mut impl Sink,
    ) -> Settlement {
        if self.attempt > 1 {
            if self.ran {
                bump(&runner.counters.redelivered);
            } else if self.found_done {
                bump(&runner.counters.redelivered_done);
            }
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

/// What a store error that waiting did not mend means for a handling: a
/// backend still down as the service stops is no fault of the event (it
/// is handed back, to come again); corrupt data or a bad configuration is
/// a failure like any other.
pub(super) fn store_failed(e: StoreError) -> Outcome {
    match e {
        StoreError::Backend(_) => Outcome::Busy,
        other => Outcome::Failed(HandlerError::failed(other)),
    }
}
