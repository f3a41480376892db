//! The flow graph: a node per command and event, an edge X → Y where a
//! reaction triggered by X (alone, as an alternative or inside a join) can
//! emit Y.

use super::{MessageId, ReactionId, Spec};
use petgraph::graph::{DiGraph, NodeIndex};

/// The flow graph with per-message indexes of who consumes and who emits.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// Node `i` is message `i`; each edge carries the reaction behind it.
    pub graph: DiGraph<MessageId, ReactionId>,
    consumers: Vec<Vec<ReactionId>>,
    producers: Vec<Vec<ReactionId>>,
}

impl Flow {
    pub(super) fn build(spec: &Spec) -> Flow {
        let n = spec.messages.len();
        let mut graph = DiGraph::with_capacity(n, spec.reactions.len());
        for id in spec.message_ids() {
            graph.add_node(id);
        }
        let mut consumers = vec![Vec::new(); n];
        let mut producers = vec![Vec::new(); n];
        for rid in spec.reaction_ids() {
            let r = spec.reaction(rid);
            let mut emitted: Vec<MessageId> = r.emitted().collect();
            emitted.sort();
            emitted.dedup();
            for t in r.trigger.ids() {
                consumers[t.index()].push(rid);
                for &e in &emitted {
                    graph.add_edge(node(t), node(e), rid);
                }
            }
            for &e in &emitted {
                producers[e.index()].push(rid);
            }
        }
        Flow {
            graph,
            consumers,
            producers,
        }
    }

    /// Reactions whose trigger names `id` (as an alternative or in a join).
    pub fn consumers(&self, id: MessageId) -> &[ReactionId] {
        self.consumers.get(id.index()).map_or(&[], Vec::as_slice)
    }

    /// Reactions that can emit `id`.
    pub fn producers(&self, id: MessageId) -> &[ReactionId] {
        self.producers.get(id.index()).map_or(&[], Vec::as_slice)
    }
}

/// The graph node of a message.
pub fn node(id: MessageId) -> NodeIndex {
    NodeIndex::new(id.index())
}
