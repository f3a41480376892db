//! The run semantics shared by the flow checks (docs/language.md,
//! "Instances and runs").
//!
//! A run starts from one command and delivers every emitted event to every
//! reaction that consumes it; each firing picks one outcome; a join fires
//! once, when all its events have occurred. The analyses here are
//! abstractions of the set of runs that stay linear in the size of the part
//! of the spec a command can reach.

use super::dominance::DominatorTree;
use crate::model::{MessageId, ReactionId, Settlement, Spec};
use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;
use std::collections::VecDeque;

/// How far back a "which messages force this one" search goes before giving
/// up; forcing chains in real specs are a few steps long.
const FORCED_SEARCH_LIMIT: usize = 4_096;

/// The sources (commands and `@external` events) a message can occur from,
/// keeping at most two: the checks only ask whether one other than a given
/// source exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sources {
    /// From none.
    None,
    /// From exactly this one.
    One(MessageId),
    /// From two or more.
    Many,
}

impl Sources {
    fn union(self, other: Sources) -> Sources {
        match (self, other) {
            (Sources::None, x) | (x, Sources::None) => x,
            (Sources::One(a), Sources::One(b)) if a == b => Sources::One(a),
            _ => Sources::Many,
        }
    }

    /// Whether some source other than `source` is among them.
    pub fn other_than(self, source: MessageId) -> bool {
        match self {
            Sources::None => false,
            Sources::One(s) => s != source,
            Sources::Many => true,
        }
    }

    /// Whether two distinct sources, one from each, exist.
    pub fn distinct_pair(self, other: Sources) -> bool {
        match (self, other) {
            (Sources::None, _) | (_, Sources::None) => false,
            (Sources::One(a), Sources::One(b)) => a != b,
            _ => true,
        }
    }
}

/// Facts about a spec that every command's run analysis uses.
pub(crate) struct Runs<'a> {
    pub spec: &'a Spec,
    /// Whether each reaction can fire at all: every reaction except joins
    /// that can never fire (E0205).
    pub fires: Vec<bool>,
    /// Per message: whether some way forward from it reaches a terminal event.
    pub reaches_terminal: Vec<bool>,
    /// Per message: where it can occur from.
    pub sources: Vec<Sources>,
    /// Per message: how it settles, if it is a terminal event.
    settles: Vec<Option<Settlement>>,
    /// Per message: whether runs or arrivals start at it.
    starts: Vec<bool>,
    /// Per message: the messages whose occurrence implies it, one step
    /// away (every outcome of a consumer of theirs emits it, or every
    /// outcome that emits them emits it too).
    forced_rev: Vec<Vec<MessageId>>,
}

/// What one command's runs can touch, and what must fire when each message
/// of it occurs.
pub(crate) struct CommandRun {
    /// The command.
    pub start: MessageId,
    /// Messages some run from the command may emit, in breadth-first order;
    /// `region[0]` is the command.
    pub region: Vec<MessageId>,
    /// Index of each region message in `region`.
    pub local: HashMap<MessageId, usize>,
    /// Per region message: the reactions that fire whenever it occurs (its
    /// plain consumers, and the joins it completes).
    pub obligations: Vec<Vec<ReactionId>>,
}

impl<'a> Runs<'a> {
    /// The facts about a spec, given which reactions can fire.
    pub fn new(spec: &'a Spec, fires: Vec<bool>) -> Self {
        let n = spec.messages.len();
        let settles: Vec<Option<Settlement>> = spec
            .messages
            .iter()
            .map(|m| m.terminal.map(|(s, _)| s))
            .collect();
        let starts: Vec<bool> = spec
            .messages
            .iter()
            .map(|m| m.is_command() || m.external.is_some())
            .collect();
        let terminal: Vec<bool> = settles.iter().map(Option::is_some).collect();

        // Backwards from terminal events over reactions that can fire.
        let mut reaches_terminal = terminal.clone();
        let mut queue: VecDeque<MessageId> = spec
            .message_ids()
            .filter(|id| terminal[id.index()])
            .collect();
        while let Some(y) = queue.pop_front() {
            for &rid in spec.flow.producers(y) {
                if !fires[rid.index()] {
                    continue;
                }
                for &t in spec.flow.trigger(rid) {
                    if !reaches_terminal[t.index()] {
                        reaches_terminal[t.index()] = true;
                        queue.push_back(t);
                    }
                }
            }
        }

        let mut forced: Vec<Vec<MessageId>> = vec![Vec::new(); n];
        for x in spec.message_ids() {
            for &rid in spec.flow.consumers(x) {
                if spec.flow.is_join(rid) || !fires[rid.index()] {
                    continue;
                }
                let mut outcomes = spec.flow.outcomes(rid);
                if let Some(first) = outcomes.next() {
                    for &e in first {
                        if outcomes.clone().all(|o| o.contains(&e)) {
                            forced[x.index()].push(e);
                        }
                    }
                }
            }
        }
        // Co-emission: when every outcome that emits `a` also emits `b`,
        // `a` never occurs without `b`.
        for a in spec.message_ids() {
            let mut common: Option<Vec<MessageId>> = None;
            for &rid in spec.flow.producers(a) {
                if !fires[rid.index()] {
                    continue;
                }
                for o in spec.flow.outcomes(rid) {
                    if !o.contains(&a) {
                        continue;
                    }
                    match &mut common {
                        None => common = Some(o.iter().copied().filter(|&e| e != a).collect()),
                        Some(prev) => prev.retain(|e| o.contains(e)),
                    }
                }
            }
            forced[a.index()].extend(common.unwrap_or_default());
        }
        let mut forced_rev: Vec<Vec<MessageId>> = vec![Vec::new(); n];
        for x in spec.message_ids() {
            forced[x.index()].sort();
            forced[x.index()].dedup();
            for &f in &forced[x.index()] {
                forced_rev[f.index()].push(x);
            }
        }

        let mut runs = Runs {
            spec,
            fires,
            reaches_terminal,
            settles,
            starts,
            sources: vec![Sources::None; n],
            forced_rev,
        };
        runs.sources = runs.compute_sources();
        runs
    }

    /// Where each message can occur from, by propagating forward from every
    /// source; each message's set changes at most twice.
    fn compute_sources(&self) -> Vec<Sources> {
        let mut sources = vec![Sources::None; self.spec.messages.len()];
        let mut queue: VecDeque<MessageId> = VecDeque::new();
        for id in self.spec.message_ids() {
            if self.is_source(id) {
                sources[id.index()] = Sources::One(id);
                queue.push_back(id);
            }
        }
        while let Some(x) = queue.pop_front() {
            let from = sources[x.index()];
            for e in self.successors(x) {
                let joined = sources[e.index()].union(from);
                if joined != sources[e.index()] {
                    sources[e.index()] = joined;
                    queue.push_back(e);
                }
            }
        }
        sources
    }

    /// Whether a message is a terminal event, and how it settles.
    pub fn terminal(&self, id: MessageId) -> Option<Settlement> {
        self.settles[id.index()]
    }

    /// Whether runs or arrivals start at this message.
    pub fn is_source(&self, id: MessageId) -> bool {
        self.starts[id.index()]
    }

    /// Messages one step after `x` over reactions that can fire.
    pub fn successors(&self, x: MessageId) -> impl Iterator<Item = MessageId> + '_ {
        self.spec
            .flow
            .consumers(x)
            .iter()
            .filter(|r| self.fires[r.index()])
            .flat_map(|&r| self.spec.flow.emitted(r).iter().copied())
    }

    /// Messages from which `target` can be reached, `target` included, over
    /// reactions that can fire; the search does not go back past `stop`.
    pub fn backward_to(&self, targets: &[MessageId], stop: Option<MessageId>) -> Vec<MessageId> {
        let mut seen: HashSet<MessageId> = targets.iter().copied().collect();
        let mut order: Vec<MessageId> = targets.to_vec();
        order.dedup();
        let mut i = 0;
        while i < order.len() {
            let y = order[i];
            i += 1;
            if Some(y) == stop {
                continue;
            }
            for &rid in self.spec.flow.producers(y) {
                if !self.fires[rid.index()] {
                    continue;
                }
                for &t in self.spec.flow.trigger(rid) {
                    if seen.insert(t) {
                        order.push(t);
                    }
                }
            }
        }
        order
    }

    /// Messages reachable from `from`, `from` included, in breadth-first
    /// order, over reactions that can fire (joins assumed to fire).
    pub fn forward(&self, from: MessageId) -> Vec<MessageId> {
        let mut seen = HashSet::from_iter([from]);
        let mut order = vec![from];
        let mut i = 0;
        while i < order.len() {
            let x = order[i];
            i += 1;
            for e in self.successors(x) {
                if seen.insert(e) {
                    order.push(e);
                }
            }
        }
        order
    }

    /// Whether some of `targets` can be reached from `from` (itself
    /// included); stops at the first found.
    pub fn reaches_any(&self, from: MessageId, targets: &[MessageId]) -> bool {
        if targets.contains(&from) {
            return true;
        }
        let mut seen = HashSet::from_iter([from]);
        let mut queue = VecDeque::from([from]);
        while let Some(x) = queue.pop_front() {
            for e in self.successors(x) {
                if targets.contains(&e) {
                    return true;
                }
                if seen.insert(e) {
                    queue.push_back(e);
                }
            }
        }
        false
    }

    /// The run model of one command.
    pub fn command_run(&self, start: MessageId) -> CommandRun {
        let spec = self.spec;
        let region = self.forward(start);
        let local: HashMap<MessageId, usize> =
            region.iter().enumerate().map(|(i, &m)| (m, i)).collect();
        let mut obligations: Vec<Vec<ReactionId>> = vec![Vec::new(); region.len()];
        let mut joins: Vec<ReactionId> = Vec::new();
        for (i, &x) in region.iter().enumerate() {
            for &rid in spec.flow.consumers(x) {
                if !self.fires[rid.index()] {
                    continue;
                }
                if spec.flow.is_join(rid) {
                    if !joins.contains(&rid) {
                        joins.push(rid);
                    }
                } else {
                    obligations[i].push(rid);
                }
            }
        }
        if !joins.is_empty() {
            let dominators = self.region_dominators(&region, &local);
            for rid in joins {
                let members = spec.flow.trigger(rid);
                for &m in members {
                    let Some(&mi) = local.get(&m) else { continue };
                    let completes = members
                        .iter()
                        .filter(|&&other| other != m)
                        .all(|&other| self.present_with(other, mi, start, &local, &dominators));
                    if completes {
                        obligations[mi].push(rid);
                    }
                }
            }
        }
        CommandRun {
            start,
            region,
            local,
            obligations,
        }
    }

    /// Whether join member `other` has surely occurred (or is assumed to
    /// arrive) in every run from `start` in which region message `mi`
    /// occurs: some message that implies `other` (through forced
    /// consequences and co-emission) dominates `mi`.
    fn present_with(
        &self,
        other: MessageId,
        mi: usize,
        start: MessageId,
        local: &HashMap<MessageId, usize>,
        dominators: &DominatorTree,
    ) -> bool {
        // docs/language.md, "Instances and runs": an arrival from another command or an external event is
        // assumed where a join waits for it.
        if self.sources[other.index()].other_than(start) {
            return true;
        }
        let mut seen = HashSet::from_iter([other]);
        let mut queue = VecDeque::from([other]);
        while let Some(f) = queue.pop_front() {
            if local
                .get(&f)
                .is_some_and(|&fi| dominators.dominates(fi, mi))
            {
                return true;
            }
            if seen.len() >= FORCED_SEARCH_LIMIT {
                break;
            }
            for &g in &self.forced_rev[f.index()] {
                if seen.insert(g) {
                    queue.push_back(g);
                }
            }
        }
        false
    }

    /// Dominators of a command's region, rooted at the command.
    fn region_dominators(
        &self,
        region: &[MessageId],
        local: &HashMap<MessageId, usize>,
    ) -> DominatorTree {
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(region.len());
        for (i, &x) in region.iter().enumerate() {
            for e in self.successors(x) {
                if let Some(&j) = local.get(&e) {
                    edges.push((index(i), index(j)));
                }
            }
        }
        DominatorTree::new(region.len(), 0, edges.iter().copied())
    }
}

/// "`A` → Participant → `B` → …": a path of events with the participants
/// that react between them.
pub(crate) fn path_text(spec: &Spec, steps: &[(MessageId, Option<ReactionId>)]) -> String {
    let mut out = String::new();
    for (i, (m, via)) in steps.iter().enumerate() {
        if i > 0 {
            if let Some(r) = via {
                out.push_str(" → ");
                out.push_str(&spec.reaction_participant(*r).name.text);
            }
            out.push_str(" → ");
        }
        out.push('`');
        out.push_str(spec.message_name(*m));
        out.push('`');
    }
    out
}

/// A region index as the dominator tree takes it; regions are far smaller
/// than 4 billion messages.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
