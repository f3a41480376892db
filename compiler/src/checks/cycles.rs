//! E0200: cycles in the flow graph that no `@bounded` reaction limits.
//!
//! Edges of bounded reactions are removed first, so a cycle is reported
//! only when it has no bounded reaction on it; the strongly connected
//! components that remain each contain at least one unbounded cycle, and
//! one concrete cycle of each is reported as a path.

use super::Facts;
use crate::analysis::cycle_path::shortest_cycle;
use crate::analysis::runs::path_text;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{MessageId, ReactionId, Spec};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxHashSet as HashSet;

pub(crate) fn check(facts: &Facts<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = facts.spec;
    let mut graph: DiGraph<MessageId, ReactionId> = DiGraph::with_capacity(spec.messages.len(), 0);
    for id in spec.message_ids() {
        graph.add_node(id);
    }
    for edge in spec.flow.graph.raw_edges() {
        if spec.reaction(edge.weight).bounded.is_none() {
            graph.add_edge(edge.source(), edge.target(), edge.weight);
        }
    }
    let mut components = kosaraju_scc(&graph);
    for c in &mut components {
        c.sort();
    }
    components.sort();
    for component in components {
        let cyclic = component.len() > 1 || graph.contains_edge(component[0], component[0]);
        if !cyclic {
            continue;
        }
        let members: HashSet<NodeIndex> = component.iter().copied().collect();
        let Some(path) = shortest_cycle(&graph, component[0], &members) else {
            continue;
        };
        report(spec, &path, diags);
    }
}

fn report(spec: &Spec, path: &[(MessageId, Option<ReactionId>)], diags: &mut Vec<Diagnostic>) {
    let text = path_text(spec, path);
    let reactions: Vec<ReactionId> = path.iter().filter_map(|(_, r)| *r).collect();
    let Some(&closing) = reactions.last() else {
        return;
    };
    let mut d = Diagnostic::new(Code::E0200, spec.reaction(closing).span, format!("cycle in the flow: {text}"))
        .with_primary_message(format!(
            "`{}` emits `{}` here, closing the cycle",
            spec.reaction_participant(closing).name.text,
            spec.message_name(path[0].0)
        ))
        .with_help(
            "an instance could go round this cycle forever; break it, or if the repetition is intended, \
             bound it with `@bounded(N)` on one of its reactions",
        );
    for w in path.windows(2) {
        let (from, _) = w[0];
        let (to, Some(r)) = w[1] else { continue };
        if r == closing {
            continue;
        }
        d = d.with_label(
            spec.reaction(r).span,
            format!(
                "`{}` reacts to `{}` with `{}`",
                spec.reaction_participant(r).name.text,
                spec.message_name(from),
                spec.message_name(to)
            ),
        );
    }
    diags.push(d);
}
