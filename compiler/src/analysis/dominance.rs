//! Dominator trees with constant-time "does `a` dominate `b`" queries.
//!
//! `a` dominates `b` when every path from the root to `b` passes through
//! `a`. The immediate dominators come from the iterative algorithm of
//! Cooper, Harvey and Kennedy ("A Simple, Fast Dominance Algorithm") over
//! dense index arrays. petgraph implements the same algorithm, but keyed by
//! node in hash maps, with a hash set of predecessors per node; on a spec
//! of 100,000 reactions that cost most of the join analysis. Numbering the
//! tree in depth-first order then answers ancestor queries by interval
//! containment, which keeps the flow checks linear on long pipelines where
//! walking dominator chains would be quadratic.

use crate::lists::Lists;

const UNDEFINED: u32 = u32::MAX;

/// The dominator tree of a graph's nodes reachable from a root.
pub(crate) struct DominatorTree {
    idom: Vec<Option<usize>>,
    pre: Vec<usize>,
    post: Vec<usize>,
    depth: Vec<usize>,
}

/// Immediate dominators of the nodes reachable from `root` (`root` maps to
/// itself), `UNDEFINED` for the others.
fn immediate_dominators(n: usize, root: usize, successors: &Lists<u32>) -> Vec<u32> {
    // Post-order of the nodes reachable from the root, iteratively: graphs
    // can be as deep as the spec is long.
    let mut order: Vec<u32> = Vec::with_capacity(n);
    let mut number = vec![UNDEFINED; n];
    let mut visited = vec![false; n];
    let mut stack: Vec<(u32, u32)> = vec![(root as u32, 0)];
    visited[root] = true;
    while let Some(&mut (x, ref mut next)) = stack.last_mut() {
        let succ = successors.get(x as usize);
        if let Some(&y) = succ.get(*next as usize) {
            *next += 1;
            if !visited[y as usize] {
                visited[y as usize] = true;
                stack.push((y, 0));
            }
        } else {
            number[x as usize] = order.len() as u32;
            order.push(x);
            stack.pop();
        }
    }
    let len = order.len();
    // Predecessors, by post-order number.
    let number = &number;
    let predecessors = Lists::grouped(
        len,
        order.iter().flat_map(|&x| {
            let from = number[x as usize];
            successors
                .get(x as usize)
                .iter()
                .map(move |&y| (number[y as usize] as usize, from))
        }),
    );
    let mut doms = vec![UNDEFINED; len];
    doms[len - 1] = (len - 1) as u32;
    let intersect = |doms: &[u32], mut a: u32, mut b: u32| {
        while a != b {
            while a < b {
                a = doms[a as usize];
            }
            while b < a {
                b = doms[b as usize];
            }
        }
        a
    };
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..len - 1).rev() {
            let mut new = UNDEFINED;
            for &p in predecessors.get(i) {
                if doms[p as usize] == UNDEFINED {
                    continue;
                }
                new = if new == UNDEFINED {
                    p
                } else {
                    intersect(&doms, new, p)
                };
            }
            if new != doms[i] {
                doms[i] = new;
                changed = true;
            }
        }
    }
    let mut idom = vec![UNDEFINED; n];
    for (i, &x) in order.iter().enumerate() {
        idom[x as usize] = order[doms[i] as usize];
    }
    idom
}

impl DominatorTree {
    /// Dominators from `root` in a graph of `n` nodes with these edges;
    /// nodes unreachable from the root are not in the tree.
    pub fn new(n: usize, root: usize, edges: impl Iterator<Item = (u32, u32)> + Clone) -> Self {
        let successors = Lists::grouped(n, edges.map(|(from, to)| (from as usize, to)));
        let doms = immediate_dominators(n, root, &successors);
        let mut idom = vec![None; n];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (x, slot) in idom.iter_mut().enumerate() {
            if x == root || doms[x] == UNDEFINED {
                continue;
            }
            let d = doms[x] as usize;
            *slot = Some(d);
            children[d].push(x);
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
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)];
        let t = DominatorTree::new(6, 0, edges.into_iter());
        assert!(t.dominates(0, 4));
        assert!(t.dominates(3, 4));
        assert!(!t.dominates(1, 3));
        assert!(t.dominates(4, 4));
        assert!(!t.contains(5));
        assert_eq!(t.nearest_common(1, 2), Some(0));
        assert_eq!(t.nearest_common(4, 3), Some(3));
        assert_eq!(t.nearest_common(4, 5), None);
    }

    #[test]
    fn agrees_with_petgraph_on_random_graphs() {
        use petgraph::algo::dominators::simple_fast;
        use petgraph::graph::{DiGraph, NodeIndex};
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % bound
        };
        for round in 0..300 {
            let n = 1 + next(40) as usize;
            let edges: Vec<(u32, u32)> = (0..next(3 * n as u64 + 1))
                .map(|_| (next(n as u64) as u32, next(n as u64) as u32))
                .collect();
            let root = next(n as u64) as usize;
            let mut g: DiGraph<(), ()> = DiGraph::new();
            for _ in 0..n {
                g.add_node(());
            }
            for &(a, b) in &edges {
                g.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), ());
            }
            let expected = simple_fast(&g, NodeIndex::new(root));
            let t = DominatorTree::new(n, root, edges.iter().copied());
            for x in 0..n {
                let want = expected
                    .immediate_dominator(NodeIndex::new(x))
                    .map(|d| d.index());
                let reachable = x == root || want.is_some();
                assert_eq!(t.contains(x), reachable, "round {round}, node {x}");
                if x != root {
                    assert_eq!(t.idom[x], want, "round {round}, node {x}");
                }
            }
        }
    }
}
