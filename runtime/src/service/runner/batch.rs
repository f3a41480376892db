//! What a batch's handlings gather (settlements, completions, inbox
//! updates and emitted envelopes), and the flush that settles it in one
//! go: emitted events published, inbox ids marked done or released, the
//! progress notice, then the acks.

use std::sync::atomic::Ordering;

use smallvec::SmallVec;

use super::super::definition::HandlerSlot;
use super::super::notice::{Completion, ProgressNotice};
use super::Runner;
use crate::broker::{settle_all, Delivery, Settlement};
use crate::envelope::{Envelope, EventId, SharedStr};

/// Emitted envelopes waiting for the flush, with their topics (mostly
/// one per handling: kept inline).
pub(super) type Outbox = SmallVec<[(SharedStr, Envelope); 1]>;

/// What a handling must do with an inbox claim taken for it.
pub(super) enum InboxAction {
    None,
    Complete(EventId),
    Release(EventId),
}

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
    completions: SmallVec<[Completion; 1]>,
    /// Inbox ids to mark done, and to release, by reaction.
    complete: SmallVec<[(usize, EventId); 1]>,
    release: SmallVec<[(usize, EventId); 1]>,
    /// What the handlers emitted, to publish before the done marks.
    publish: Outbox,
}

impl Results {
    /// Where the handlers put what they emit.
    pub(super) fn outbox(&mut self) -> &mut Outbox {
        &mut self.publish
    }
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
    delivery: Delivery,
    settlement: Settlement,
    results: Results,
}

impl Handled {
    /// `delivery`, handled: how it is settled and what its handling
    /// produced.
    pub(super) fn new(delivery: Delivery, settlement: Settlement, results: Results) -> Self {
        Handled {
            delivery,
            settlement,
            results,
        }
    }
}

/// The finished handlings of a delivery batch, waiting for the flush.
/// Handlings that finish at once write here directly.
pub(super) struct Batch {
    settlements: Vec<(Delivery, Settlement)>,
    completions: Vec<Completion>,
    /// Inbox ids to mark done, and to release, one list per reaction.
    complete: SmallVec<[Vec<EventId>; 1]>,
    release: SmallVec<[Vec<EventId>; 1]>,
    publish: Vec<(SharedStr, Envelope)>,
    /// Handler runs that succeeded, not yet added to the counters.
    handled: u64,
    /// Per reaction: where its handler futures run (see [`HandlerSlot`]).
    slots: SmallVec<[Option<Box<dyn HandlerSlot>>; 1]>,
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
    pub(super) fn with_capacity(n: usize, reactions: usize) -> Self {
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

    /// Settles `d` with `s` in the flush.
    pub(super) fn settle(&mut self, d: Delivery, s: Settlement) {
        self.settlements.push((d, s));
    }

    /// Whether no delivery waits to be settled.
    pub(super) fn is_empty(&self) -> bool {
        self.settlements.is_empty()
    }

    /// How many deliveries wait to be settled.
    pub(super) fn len(&self) -> usize {
        self.settlements.len()
    }

    /// Counts a handler run that succeeded.
    pub(super) fn count_handled(&mut self) {
        self.handled += 1;
    }

    /// Where reaction `i`'s handler futures run, made by `make` the first
    /// time.
    pub(super) fn slot(
        &mut self,
        i: usize,
        make: impl FnOnce() -> Box<dyn HandlerSlot>,
    ) -> &mut Box<dyn HandlerSlot> {
        self.slots[i].get_or_insert_with(make)
    }

    /// Where the handlers put what they emit.
    pub(super) fn outbox(&mut self) -> &mut Vec<(SharedStr, Envelope)> {
        &mut self.publish
    }

    /// Takes in a handling that finished as a future of its own.
    pub(super) fn absorb(&mut self, h: Handled) {
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
    pub(super) fn append(&mut self, mut other: Batch) {
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

/// What the flush does with a list of inbox ids.
#[derive(Clone, Copy)]
enum InboxUpdate {
    Done,
    Release,
}

impl Runner {
    /// Settles finished handlings in one go: publishes what they emitted
    /// (one `publish_batch`), marks their ids done (one call per
    /// reaction), publishes the progress notice, then acks.
    pub(super) async fn flush(&self, batch: &mut Batch) {
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
}
