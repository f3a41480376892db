//! The flow graph: a node per command and event, an edge X → Y where a
//! reaction triggered by X (alone, as an alternative or inside a join) can
//! emit Y.
//!
//! Besides the graph, the flow keeps what the checks read over and over (who
//! consumes and who emits each message; each reaction's trigger, outcomes
//! and emitted events) as flat id tables. On a spec of 100,000 reactions
//! the model no longer fits in the processor's caches, and following each
//! reaction's boxed lists there cost the checks most of their time.

use super::{MessageId, ReactionId, Spec};
use crate::lists::{offset, Lists};
use petgraph::graph::{DiGraph, NodeIndex};

/// The flow graph with per-message indexes of who consumes and who emits,
/// and each reaction's messages.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// Node `i` is message `i`; each edge carries the reaction behind it.
    pub graph: DiGraph<MessageId, ReactionId>,
    consumers: Lists<ReactionId>,
    producers: Lists<ReactionId>,
    triggers: Lists<MessageId>,
    joins: Vec<bool>,
    /// Per reaction: its outcomes' numbers in `outcome_events`.
    outcomes: Lists<u32>,
    outcome_events: Lists<MessageId>,
    emitted: Lists<MessageId>,
}

impl Flow {
    pub(super) fn build(spec: &Spec) -> Flow {
        let n = spec.messages.len();
        let reactions = spec.reactions.len();
        let mut graph = DiGraph::with_capacity(n, reactions);
        for id in spec.message_ids() {
            graph.add_node(id);
        }
        let mut consumed = Vec::with_capacity(reactions * 2);
        let mut produced = Vec::with_capacity(reactions * 2);
        let mut triggers = Lists::with_capacity(reactions, reactions * 2);
        let mut joins = Vec::with_capacity(reactions);
        let mut outcomes = Lists::with_capacity(reactions, reactions * 2);
        let mut outcome_events = Lists::with_capacity(reactions * 2, reactions * 2);
        let mut emitted_lists = Lists::with_capacity(reactions, reactions * 2);
        let mut emitted: Vec<MessageId> = Vec::new();
        for rid in spec.reaction_ids() {
            let r = spec.reaction(rid);
            emitted.clear();
            emitted.extend(r.emitted());
            emitted.sort();
            emitted.dedup();
            for t in r.trigger.ids() {
                consumed.push((t.index(), rid));
                for &e in &emitted {
                    graph.add_edge(node(t), node(e), rid);
                }
            }
            for &e in &emitted {
                produced.push((e.index(), rid));
            }
            triggers.push(r.trigger.ids());
            joins.push(r.trigger.is_join());
            let first = outcome_events.len();
            for o in r.outcomes() {
                outcome_events.push(o.ids());
            }
            let last = outcome_events.len();
            outcomes.push((first..last).map(offset));
            emitted_lists.push(emitted.iter().copied());
        }
        Flow {
            graph,
            consumers: Lists::grouped(n, consumed.iter().copied()),
            producers: Lists::grouped(n, produced.iter().copied()),
            triggers,
            joins,
            outcomes,
            outcome_events,
            emitted: emitted_lists,
        }
    }

    /// Reactions whose trigger names `id` (as an alternative or in a join).
    pub fn consumers(&self, id: MessageId) -> &[ReactionId] {
        self.consumers.get(id.index())
    }

    /// Reactions that can emit `id`.
    pub fn producers(&self, id: MessageId) -> &[ReactionId] {
        self.producers.get(id.index())
    }

    /// The messages a reaction's trigger names, in the order written.
    pub fn trigger(&self, id: ReactionId) -> &[MessageId] {
        self.triggers.get(id.index())
    }

    /// Whether a reaction is a join (`A & B`).
    pub fn is_join(&self, id: ReactionId) -> bool {
        self.joins.get(id.index()).copied().unwrap_or(false)
    }

    /// A reaction's outcomes, each the events it emits in the order
    /// written; a sink has none, `none` is an empty one.
    pub fn outcomes(
        &self,
        id: ReactionId,
    ) -> impl ExactSizeIterator<Item = &[MessageId]> + Clone + '_ {
        self.outcomes
            .get(id.index())
            .iter()
            .map(|&o| self.outcome_events.get(o as usize))
    }

    /// Every event some outcome of a reaction emits, each once, in id order.
    pub fn emitted(&self, id: ReactionId) -> &[MessageId] {
        self.emitted.get(id.index())
    }
}

/// The graph node of a message.
pub fn node(id: MessageId) -> NodeIndex {
    NodeIndex::new(id.index())
}
