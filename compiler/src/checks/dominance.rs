//! Dominator trees with constant-time "does `a` dominate `b`" queries.
//!
//! `a` dominates `b` when every path from the root to `b` passes through
//! `a`. petgraph computes the immediate dominators; numbering the tree in
//! depth-first order then answers ancestor queries by interval containment,
//! which keeps the flow checks linear on long pipelines where walking
//! dominator chains would be quadratic.

use petgraph::algo::dominators;
use petgraph::graph::{DiGraph, NodeIndex};

/// The dominator tree of a graph's nodes reachable from a root.
pub(crate) struct DominatorTree {
    idom: Vec<Option<usize>>,
    pre: Vec<usize>,
    post: Vec<usize>,
    depth: Vec<usize>,
}

impl DominatorTree {
    /// Dominators of `graph` from `root`; nodes unreachable from the root
    /// are not in the tree.
    pub fn new(graph: &DiGraph<(), ()>, root: usize) -> Self {
        let n = graph.node_count();
        let doms = dominators::simple_fast(graph, NodeIndex::new(root));
        let mut idom = vec![None; n];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (x, slot) in idom.iter_mut().enumerate() {
            if x == root {
                continue;
            }
            if let Some(d) = doms.immediate_dominator(NodeIndex::new(x)) {
                *slot = Some(d.index());
                children[d.index()].push(x);
            }
        }
        let mut pre = vec![usize::MAX; n];
        let mut post = vec![usize::MAX; n];
        let mut depth = vec![0; n];
        let mut clock = 0;
        // Iterative depth-first numbering: trees can be as deep as the spec
        // is long.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        pre[root] = clock;
        clock += 1;
        while let Some(&mut (x, ref mut next)) = stack.last_mut() {
            if let Some(&child) = children[x].get(*next) {
                *next += 1;
                pre[child] = clock;
                clock += 1;
                depth[child] = depth[x] + 1;
                stack.push((child, 0));
            } else {
                post[x] = clock;
                clock += 1;
                stack.pop();
            }
        }
        DominatorTree {
            idom,
            pre,
            post,
            depth,
        }
    }

    /// Whether `x` is reachable from the root.
    pub fn contains(&self, x: usize) -> bool {
        self.pre.get(x).is_some_and(|&p| p != usize::MAX)
    }

    /// Whether `a` dominates `b` (every node dominates itself).
    pub fn dominates(&self, a: usize, b: usize) -> bool {
        self.contains(a)
            && self.contains(b)
            && self.pre[a] <= self.pre[b]
            && self.post[b] <= self.post[a]
    }

    /// The nearest node that dominates both.
    pub fn nearest_common(&self, mut a: usize, mut b: usize) -> Option<usize> {
        if !self.contains(a) || !self.contains(b) {
            return None;
        }
        while self.depth[a] > self.depth[b] {
            a = self.idom[a]?;
        }
        while self.depth[b] > self.depth[a] {
            b = self.idom[b]?;
        }
        while a != b {
            a = self.idom[a]?;
            b = self.idom[b]?;
        }
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diamond() {
        // 0 → 1 → 3, 0 → 2 → 3, 3 → 4; 5 unreachable
        let mut g: DiGraph<(), ()> = DiGraph::new();
        for _ in 0..6 {
            g.add_node(());
        }
        for (a, b) in [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)] {
            g.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
        }
        let t = DominatorTree::new(&g, 0);
        assert!(t.dominates(0, 4));
        assert!(t.dominates(3, 4));
        assert!(!t.dominates(1, 3));
        assert!(t.dominates(4, 4));
        assert!(!t.contains(5));
        assert_eq!(t.nearest_common(1, 2), Some(0));
        assert_eq!(t.nearest_common(4, 3), Some(3));
        assert_eq!(t.nearest_common(4, 5), None);
    }
}
