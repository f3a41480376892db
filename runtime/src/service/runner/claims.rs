//! A batch's inbox claims: one call per reaction for the whole batch (a
//! look instead of a claim for a first delivery where the broker drops a
//! second publish), read back delivery by delivery.

use smallvec::SmallVec;

use super::super::definition::Trigger;
use super::{FastSet, Runner};
use crate::broker::Delivery;
use crate::envelope::{EventId, SharedStr};
use crate::store::{Claim, StoreError};

/// A claim owner: random, never 0 (see [`crate::store::InboxStore::claim_many_as`]).
pub(super) fn claim_owner() -> u64 {
    fastrand::u64(1..)
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
    pub(super) fn is_repeat(&mut self, di: usize) -> bool {
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

impl Runner {
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
    pub(super) async fn claim_batch(&self, deliveries: &[Delivery]) -> Claims {
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
        // keep-alive lost in a cut, waits in `Held`), and a
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
                _ => self.routes.type_of(ty),
            };
            last = Some((ty, k));
            claims.types.push(k);
            let mut claimed = false;
            for &i in self.routes.reactions_at(k).unwrap_or(&[]) {
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
