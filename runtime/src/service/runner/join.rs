//! A join's arrivals: each stores its slot; the one that fills the join
//! fires it once per instance (a claim on its firing id, or none for a
//! first delivery), late copies find it fired; fired joins' slots go.

use smallvec::SmallVec;

use super::super::definition::Trigger;
use super::super::notice::{Completion, CompletionOutcome};
use super::super::options::bump;
use super::batch::InboxAction;
use super::claims::claim_owner;
use super::verdict::{store_failed, Outcome};
use super::Runner;
use crate::envelope::{Envelope, EventId, SharedStr};
use crate::store::{Claim, JoinArrival, Seen, StoreError};

/// A join arrival that fills the join: the inputs of its firing, the
/// firing's inbox id, and the claim on it.
type Firing = (SmallVec<[Envelope; 2]>, EventId, Result<Claim, StoreError>);

impl Runner {
    /// Stores the arrival of `env` at join reaction `i`: the firing, if
    /// it fills the join, else how the arrival was dealt with (see
    /// `Runner::react`). `ran` turns true once the arrival is stored.
    pub(super) async fn join_arrival(
        &self,
        i: usize,
        env: &Envelope,
        attempt: u32,
        types: &[SharedStr],
        ran: &mut bool,
    ) -> Result<Firing, (Outcome, InboxAction)> {
        let scope = &self.scopes[i];
        let instance = env.correlation_shared();
        if attempt > 1 {
            if let Some(done) = self.fired_before(i, env).await {
                return Err(done);
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
            Err(e) => return Err((store_failed(e), InboxAction::None)),
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
                let c = self.completion(i, env, CompletionOutcome::JoinWaiting, SmallVec::new());
                return Err((Outcome::Completed(c), InboxAction::None));
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
                    return Err(done);
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
                return Err((Outcome::Busy, InboxAction::None));
            }
            Ok(JoinArrival::Completed(all) | JoinArrival::Full { all, .. }) => (all, false),
        };
        let id = join_firing_id(instance);
        Ok(if unclaimed {
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
                    let c =
                        self.completion(i, env, CompletionOutcome::JoinWaiting, SmallVec::new());
                    return Err((Outcome::Completed(c), InboxAction::None));
                }
                claim => (all.into(), id, claim),
            }
        })
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

    /// Removes the slots of the joins that fired in this batch, once their
    /// firing reads done (`marked`, per reaction): a fired join is never
    /// waited for again (a redelivered member finds the firing done), and
    /// its slots would otherwise be kept for ever.
    pub(super) async fn clear_fired_joins(&self, completions: &[Completion], marked: &[bool]) {
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
}

/// The inbox id of a join's one firing in `instance`.
fn join_firing_id(instance: &str) -> EventId {
    EventId::derived(&EventId::from(instance), "join", 0)
}
