//! Finding one concrete cycle inside a strongly connected component.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use rustc_hash::FxHashMap as HashMap;
use rustc_hash::FxHashSet as HashSet;
use std::collections::VecDeque;

/// A shortest cycle from `start` back to itself that stays inside
/// `members`, as (node, edge weight that led to it) steps: the first step
/// has no edge, the last step is `start` again. Edges are tried in the
/// order of their weights, so the answer is deterministic.
pub(crate) fn shortest_cycle<N: Copy, E: Copy + Ord>(
    graph: &DiGraph<N, E>,
    start: NodeIndex,
    members: &HashSet<NodeIndex>,
) -> Option<Vec<(N, Option<E>)>> {
    let mut parent: HashMap<NodeIndex, (NodeIndex, E)> = HashMap::default();
    let mut queue = VecDeque::from([start]);
    let mut seen = HashSet::from_iter([start]);
    let mut closing: Option<(NodeIndex, E)> = None;
    'search: while let Some(x) = queue.pop_front() {
        let mut edges: Vec<(E, NodeIndex)> =
            graph.edges(x).map(|e| (*e.weight(), e.target())).collect();
        edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        for (w, y) in edges {
            if y == start {
                closing = Some((x, w));
                break 'search;
            }
            if members.contains(&y) && seen.insert(y) {
                parent.insert(y, (x, w));
                queue.push_back(y);
            }
        }
    }
    let (last, closing_edge) = closing?;
    let mut back = vec![(graph[start], Some(closing_edge))];
    let mut at = last;
    while at != start {
        let (p, w) = parent[&at];
        back.push((graph[at], Some(w)));
        at = p;
    }
    back.push((graph[start], None));
    back.reverse();
    Some(back)
}
