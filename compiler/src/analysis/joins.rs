//! The join analysis: which joins can fire, because some instance contains
//! all of their events (docs/language.md, "Checks": joins); the checks of E0205 and the run-based
//! rules use its verdicts and the run facts it ends with.
//!
//! For a join on `k` events, every message that can lead to one of them gets
//! the family of subsets of the `k` events that a run from it can emit;
//! an instance combines the runs of its starting command and of any other
//! command or external event arriving into it. The join can fire when the
//! full set is in that combination. Families are sets of bitmasks, so the
//! analysis is exact for alternatives, fan-outs and cycles alike.

use super::dominance::DominatorTree;
use super::runs::Runs;
use crate::model::{MessageId, ReactionId, Spec};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;

/// Joins on more events than this are assumed able to fire: the family of
/// subsets would need 2^k bits per message.
const MAX_MEMBERS: usize = 16;

/// A set of subsets of a join's events: bit `mask` set when subset `mask`
/// is achievable. Joins on up to six events, nearly all of them, fit in
/// one word and allocate nothing.
#[derive(Clone, PartialEq, Eq)]
enum Family {
    Word(u64),
    Words(Vec<u64>),
}

impl Family {
    fn empty(k: usize) -> Self {
        if k <= 6 {
            Family::Word(0)
        } else {
            Family::Words(vec![0; (1usize << k).div_ceil(64)])
        }
    }

    fn words(&self) -> &[u64] {
        match self {
            Family::Word(w) => std::slice::from_ref(w),
            Family::Words(ws) => ws,
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            Family::Word(w) => std::slice::from_mut(w),
            Family::Words(ws) => ws,
        }
    }

    fn single(k: usize, mask: usize) -> Self {
        let mut f = Family::empty(k);
        f.insert(mask);
        f
    }

    fn insert(&mut self, mask: usize) {
        self.words_mut()[mask / 64] |= 1 << (mask % 64);
    }

    fn contains(&self, mask: usize) -> bool {
        self.words()[mask / 64] & (1 << (mask % 64)) != 0
    }

    fn masks(&self) -> impl Iterator<Item = usize> + '_ {
        self.words().iter().enumerate().flat_map(|(w, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
    }

    fn union_with(&mut self, other: &Family) {
        for (a, b) in self.words_mut().iter_mut().zip(other.words()) {
            *a |= *b;
        }
    }

    /// `{ a | b : a ∈ self, b ∈ other }`
    fn product(&self, other: &Family, k: usize) -> Family {
        let mut out = Family::empty(k);
        let rhs: Vec<usize> = other.masks().collect();
        for a in self.masks() {
            for &b in &rhs {
                out.insert(a | b);
            }
        }
        out
    }
}

/// Why a join can never fire.
pub(crate) enum Verdict {
    Fires,
    /// This member occurs in no run at all.
    NeverOccurs(MessageId),
    /// These two members never occur in one instance.
    Exclusive(MessageId, MessageId),
}

/// Decides for every join whether it can fire (`None` for other
/// reactions), with the run facts given those verdicts.
pub(crate) fn feasibility(spec: &Spec) -> (Vec<Option<Verdict>>, Runs<'_>) {
    let mut verdicts: Vec<Option<Verdict>> = spec
        .reaction_ids()
        .map(|r| spec.flow.is_join(r).then_some(Verdict::Fires))
        .collect();
    // A join downstream of a join that cannot fire may itself become
    // unable to fire, so iterate until nothing changes; each round only
    // removes joins.
    loop {
        let fires: Vec<bool> = verdicts
            .iter()
            .map(|v| !matches!(v, Some(Verdict::NeverOccurs(_) | Verdict::Exclusive(..))))
            .collect();
        let runs = Runs::new(spec, fires.clone());
        let scope = Scope::new(&runs);
        let mut changed = false;
        for rid in spec.reaction_ids() {
            if !fires[rid.index()] || !spec.flow.is_join(rid) {
                continue;
            }
            let verdict = judge(&runs, &scope, rid);
            if !matches!(verdict, Verdict::Fires) {
                verdicts[rid.index()] = Some(verdict);
                changed = true;
            }
        }
        if !changed {
            return (verdicts, runs);
        }
    }
}

/// What lets a join be judged from a small part of the spec: dominators
/// from a virtual root above every source, and how many times each message
/// can occur in one instance.
///
/// When one message `d` dominates all of a join's events and occurs at most
/// once per instance, every instance's share of the join's events comes from
/// the run after that one occurrence, so the exact analysis needs only the
/// messages between `d` and the events. Without this, a long pipeline with a
/// join at every step would cost time quadratic in its length.
struct Scope {
    dominators: DominatorTree,
    root: usize,
    /// 0, 1, or 2 meaning "possibly more than once".
    occurrences: Vec<u8>,
}

impl Scope {
    fn new(runs: &Runs<'_>) -> Self {
        let spec = runs.spec;
        let n = spec.messages.len();
        let root = n as u32;
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(2 * n);
        for x in spec.message_ids() {
            if runs.is_source(x) {
                edges.push((root, x.0));
            }
            edges.extend(runs.successors(x).map(|e| (x.0, e.0)));
        }
        let dominators = DominatorTree::new(n + 1, n, edges.iter().copied());

        // Upper bounds on occurrences per instance, saturating at 2: each
        // source arrives once, a plain reaction fires once per occurrence of
        // any trigger, a join once.
        let mut occurrences = vec![0u8; n];
        let mut queue: VecDeque<MessageId> = VecDeque::new();
        for x in spec.message_ids() {
            if runs.is_source(x) {
                occurrences[x.index()] = 1;
                queue.push_back(x);
            }
        }
        let firings = |occ: &[u8], rid: ReactionId| -> u8 {
            let t = spec.flow.trigger(rid);
            if spec.flow.is_join(rid) {
                u8::from(t.iter().all(|m| occ[m.index()] > 0))
            } else {
                t.iter().map(|m| occ[m.index()]).sum::<u8>().min(2)
            }
        };
        while let Some(x) = queue.pop_front() {
            for &rid in spec.flow.consumers(x) {
                if !runs.fires[rid.index()] {
                    continue;
                }
                for &e in spec.flow.emitted(rid) {
                    let total = spec
                        .flow
                        .producers(e)
                        .iter()
                        .filter(|p| runs.fires[p.index()])
                        .map(|&p| firings(&occurrences, p))
                        .sum::<u8>()
                        .min(2);
                    if total > occurrences[e.index()] {
                        occurrences[e.index()] = total;
                        queue.push_back(e);
                    }
                }
            }
        }
        Scope {
            dominators,
            root: n,
            occurrences,
        }
    }

    /// The message from which a join on `members` can be judged alone.
    fn anchor(&self, members: &[MessageId]) -> Option<MessageId> {
        let mut d = members.first()?.index();
        for m in &members[1..] {
            d = self.dominators.nearest_common(d, m.index())?;
        }
        (d != self.root && self.occurrences[d] <= 1).then(|| MessageId::from_index(d))
    }
}

fn judge(runs: &Runs<'_>, scope: &Scope, join: ReactionId) -> Verdict {
    let spec = runs.spec;
    let members = spec.flow.trigger(join);
    let k = members.len();
    if k > MAX_MEMBERS {
        return Verdict::Fires;
    }
    if let Some(&m) = members
        .iter()
        .find(|m| !scope.dominators.contains(m.index()))
    {
        return Verdict::NeverOccurs(m);
    }
    let bit = |m: MessageId| {
        members
            .iter()
            .position(|&x| x == m)
            .map_or(0, |i| 1usize << i)
    };
    let anchor = scope.anchor(members);

    // Only messages that can lead to a member matter, and with an anchor
    // only those after it.
    let order = runs.backward_to(members, anchor);
    let relevant: HashMap<MessageId, usize> =
        order.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    let mut family: Vec<Family> = order.iter().map(|&x| Family::single(k, bit(x))).collect();
    let mut queue: VecDeque<usize> = (0..order.len()).collect();
    let mut queued = vec![true; order.len()];
    while let Some(i) = queue.pop_front() {
        queued[i] = false;
        let x = order[i];
        let mut next = Family::single(k, bit(x));
        for &rid in spec.flow.consumers(x) {
            if rid == join || !runs.fires[rid.index()] {
                continue;
            }
            // A consumer may not have finished yet: the empty choice is
            // always possible, which keeps this a "may occur together".
            let mut options = Family::single(k, 0);
            for outcome in spec.flow.outcomes(rid) {
                let mut acc = Family::single(k, 0);
                for e in outcome {
                    if let Some(&j) = relevant.get(e) {
                        acc = acc.product(&family[j], k);
                    }
                }
                options.union_with(&acc);
            }
            next = next.product(&options, k);
        }
        next.union_with(&family[i]);
        if next != family[i] {
            family[i] = next;
            if Some(x) == anchor {
                continue;
            }
            for &rid in spec.flow.producers(x) {
                if !runs.fires[rid.index()] {
                    continue;
                }
                for t in spec.flow.trigger(rid) {
                    if let Some(&j) = relevant.get(t) {
                        if !queued[j] {
                            queued[j] = true;
                            queue.push_back(j);
                        }
                    }
                }
            }
        }
    }

    let instance = match anchor.and_then(|a| relevant.get(&a)) {
        // Everything comes from the anchor's one occurrence.
        Some(&a) => family[a].clone(),
        // An instance: any set of sources, each arriving once.
        None => {
            let mut instance = Family::single(k, 0);
            for (j, &s) in order.iter().enumerate() {
                if runs.is_source(s) {
                    let mut optional = family[j].clone();
                    optional.insert(0);
                    instance = instance.product(&optional, k);
                }
            }
            instance
        }
    };
    let full = (1usize << k) - 1;
    if instance.contains(full) {
        return Verdict::Fires;
    }
    if let Some(&m) = members
        .iter()
        .find(|&&m| !instance.masks().any(|mask| mask & bit(m) != 0))
    {
        return Verdict::NeverOccurs(m);
    }
    for (i, &a) in members.iter().enumerate() {
        for &b in &members[i + 1..] {
            let both = bit(a) | bit(b);
            if !instance.masks().any(|mask| mask & both == both) {
                return Verdict::Exclusive(a, b);
            }
        }
    }
    // Every pair co-occurs but not all together; name the first two.
    Verdict::Exclusive(members[0], members[1])
}
