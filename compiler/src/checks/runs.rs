//! The run semantics shared by the flow checks (rule 3 of the design).
//!
//! A run starts from one command and delivers every emitted event to every
//! reaction that consumes it; each firing picks one outcome; a join fires
//! once, when all its events have occurred. The analyses here are
//! abstractions of the set of runs that stay linear in the size of the part
//! of the spec a command can reach.

use crate::model::{MessageId, ReactionId, Settlement, Spec};
use petgraph::algo::dominators;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;
use std::collections::VecDeque;

/// Facts about a spec that every command's run analysis uses.
pub(crate) struct Runs<'a> {
    pub spec: &'a Spec,
    /// Whether each reaction can fire at all: every reaction except joins
    /// that can never fire (E0205).
    pub fires: Vec<bool>,
    /// Per message: whether some way forward from it reaches a terminal event.
    pub reaches_terminal: Vec<bool>,
    /// Per message: events that every complete run containing it contains,
    /// one step away (every outcome of a consumer emits them).
    forced: Vec<Vec<MessageId>>,
    /// Per join member: the sources from which it can occur.
    member_sources: HashMap<MessageId, Vec<MessageId>>,
    /// Per join member: the messages whose occurrence forces it.
    forced_by: HashMap<MessageId, HashSet<MessageId>>,
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
    /// The facts that need no per-join work.
    pub fn new(spec: &'a Spec, fires: Vec<bool>) -> Self {
        let n = spec.messages.len();
        let terminal: Vec<bool> = spec.messages.iter().map(|m| m.terminal.is_some()).collect();

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
                for t in spec.reaction(rid).trigger.ids() {
                    if !reaches_terminal[t.index()] {
                        reaches_terminal[t.index()] = true;
                        queue.push_back(t);
                    }
                }
            }
        }

        let mut forced = vec![Vec::new(); n];
        for x in spec.message_ids() {
            for &rid in spec.flow.consumers(x) {
                let r = spec.reaction(rid);
                if r.trigger.is_join() || !fires[rid.index()] {
                    continue;
                }
                let outcomes = r.outcomes();
                if let Some((first, rest)) = outcomes.split_first() {
                    for e in first.ids() {
                        if rest.iter().all(|o| o.ids().any(|f| f == e)) {
                            forced[x.index()].push(e);
                        }
                    }
                }
            }
        }

        Runs {
            spec,
            fires,
            reaches_terminal,
            forced,
            member_sources: HashMap::default(),
            forced_by: HashMap::default(),
        }
    }

    /// Prepares what [`Runs::command_run`] needs to decide when a join
    /// fires: where each join member can come from, and what forces it.
    pub fn with_join_facts(mut self) -> Self {
        let spec = self.spec;
        let runs = &mut self;
        let members: Vec<MessageId> = spec
            .reaction_ids()
            .filter(|r| runs.fires[r.index()] && spec.reaction(*r).trigger.is_join())
            .flat_map(|r| spec.reaction(r).trigger.ids().collect::<Vec<_>>())
            .collect();
        let mut reverse: HashMap<MessageId, Vec<MessageId>> = HashMap::default();
        for x in spec.message_ids() {
            for &f in &runs.forced[x.index()] {
                reverse.entry(f).or_default().push(x);
            }
        }
        for m in members {
            if runs.member_sources.contains_key(&m) {
                continue;
            }
            let sources = runs.sources_reaching(m);
            runs.member_sources.insert(m, sources);
            let forced_by = runs.forced_by(m, &reverse);
            runs.forced_by.insert(m, forced_by);
        }
        self
    }

    /// Whether a message is a terminal event, and how it settles.
    pub fn terminal(&self, id: MessageId) -> Option<Settlement> {
        self.spec.message(id).terminal.map(|(s, _)| s)
    }

    /// Messages from which `target` can be reached, `target` included, over
    /// reactions that can fire.
    pub fn backward(&self, target: MessageId) -> HashSet<MessageId> {
        let mut seen = HashSet::from_iter([target]);
        let mut queue = VecDeque::from([target]);
        while let Some(y) = queue.pop_front() {
            for &rid in self.spec.flow.producers(y) {
                if !self.fires[rid.index()] {
                    continue;
                }
                for t in self.spec.reaction(rid).trigger.ids() {
                    if seen.insert(t) {
                        queue.push_back(t);
                    }
                }
            }
        }
        seen
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
            for &rid in self.spec.flow.consumers(x) {
                if !self.fires[rid.index()] {
                    continue;
                }
                for e in self.spec.reaction(rid).emitted() {
                    if seen.insert(e) {
                        order.push(e);
                    }
                }
            }
        }
        order
    }

    /// The sources from which `target` can occur.
    pub fn sources_reaching(&self, target: MessageId) -> Vec<MessageId> {
        let mut found: Vec<MessageId> = self
            .backward(target)
            .into_iter()
            .filter(|&m| self.is_source(m))
            .collect();
        found.sort();
        found
    }

    /// Whether runs or arrivals start at this message.
    pub fn is_source(&self, id: MessageId) -> bool {
        let m = self.spec.message(id);
        m.is_command() || m.external.is_some()
    }

    fn forced_by(
        &self,
        target: MessageId,
        reverse: &HashMap<MessageId, Vec<MessageId>>,
    ) -> HashSet<MessageId> {
        let mut seen = HashSet::from_iter([target]);
        let mut queue = VecDeque::from([target]);
        while let Some(y) = queue.pop_front() {
            for &x in reverse.get(&y).map_or(&[][..], Vec::as_slice) {
                if seen.insert(x) {
                    queue.push_back(x);
                }
            }
        }
        seen
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
                if spec.reaction(rid).trigger.is_join() {
                    if !joins.contains(&rid) {
                        joins.push(rid);
                    }
                } else {
                    obligations[i].push(rid);
                }
            }
        }
        if !joins.is_empty() {
            let dominators = RegionDominators::new(self, &region, &local);
            for rid in joins {
                let members: Vec<MessageId> = spec.reaction(rid).trigger.ids().collect();
                for &m in &members {
                    let Some(&mi) = local.get(&m) else { continue };
                    let completes = members
                        .iter()
                        .filter(|&&other| other != m)
                        .all(|&other| self.present_with(other, m, start, &local, &dominators));
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
    /// arrive) in every run from `start` in which `m` occurs.
    fn present_with(
        &self,
        other: MessageId,
        m: MessageId,
        start: MessageId,
        local: &HashMap<MessageId, usize>,
        dominators: &RegionDominators,
    ) -> bool {
        // Rule 3: an arrival from another command or an external event is
        // assumed where a join waits for it.
        if self
            .member_sources
            .get(&other)
            .is_some_and(|s| s.iter().any(|&src| src != start))
        {
            return true;
        }
        if !local.contains_key(&other) {
            return false;
        }
        let forced_by = self.forced_by.get(&other);
        dominators
            .chain(local, m)
            .any(|a| a == other || forced_by.is_some_and(|f| f.contains(&a)))
    }
}

/// Dominators of a command's region: `d` dominates `m` when every way from
/// the command to `m` passes through `d`.
struct RegionDominators {
    region: Vec<MessageId>,
    doms: dominators::Dominators<NodeIndex>,
}

impl RegionDominators {
    fn new(runs: &Runs<'_>, region: &[MessageId], local: &HashMap<MessageId, usize>) -> Self {
        let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(region.len(), region.len());
        for _ in region {
            graph.add_node(());
        }
        for (i, &x) in region.iter().enumerate() {
            for &rid in runs.spec.flow.consumers(x) {
                if !runs.fires[rid.index()] {
                    continue;
                }
                for e in runs.spec.reaction(rid).emitted() {
                    if let Some(&j) = local.get(&e) {
                        graph.add_edge(NodeIndex::new(i), NodeIndex::new(j), ());
                    }
                }
            }
        }
        RegionDominators {
            region: region.to_vec(),
            doms: dominators::simple_fast(&graph, NodeIndex::new(0)),
        }
    }

    /// `m` and its dominators, nearest first.
    fn chain<'s>(
        &'s self,
        local: &HashMap<MessageId, usize>,
        m: MessageId,
    ) -> impl Iterator<Item = MessageId> + 's {
        let start = local.get(&m).map(|&i| NodeIndex::new(i));
        let doms = start.and_then(|s| self.doms.dominators(s));
        doms.into_iter().flatten().map(|n| self.region[n.index()])
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
