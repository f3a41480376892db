//! Phases 1 and 2: cycles broken by reversing the back edges of a
//! depth-first search, ranks as longest paths, and long edges split into
//! chains of dummy nodes.

use std::collections::VecDeque;

use super::{Sub, ALIGN_BUDGET, DUMMY_BUDGET};

impl Sub {
    /// The edges with back edges reversed: (upper, lower, reversed).
    pub(super) fn break_cycles(&self) -> Vec<(usize, usize, bool)> {
        let n = self.real();
        let mut out_edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        let mut indegree = vec![0usize; n];
        for (i, &(_, a, b)) in self.edges.iter().enumerate() {
            out_edges[a].push((b, i));
            indegree[b] += 1;
        }
        let mut reversed = vec![false; self.edges.len()];
        // 0: unseen, 1: on the stack, 2: done.
        let mut state = vec![0u8; n];
        let starts = (0..n)
            .filter(|&v| indegree[v] == 0)
            .chain((0..n).filter(|&v| indegree[v] != 0));
        for start in starts {
            if state[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, 0usize)];
            state[start] = 1;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if let Some(&(w, e)) = out_edges[v].get(*next) {
                    *next += 1;
                    match state[w] {
                        0 => {
                            state[w] = 1;
                            stack.push((w, 0));
                        }
                        1 => reversed[e] = true,
                        _ => {}
                    }
                } else {
                    state[v] = 2;
                    stack.pop();
                }
            }
        }
        self.edges
            .iter()
            .zip(reversed)
            .map(|(&(_, a, b), r)| if r { (b, a, true) } else { (a, b, false) })
            .collect()
    }

    pub(super) fn assign_ranks(&mut self, dag: &[(usize, usize, bool)]) {
        let n = self.real();
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(a, b, _) in dag {
            if a != b {
                succ[a].push(b);
                pred[b].push(a);
            }
        }
        let order = topological(&succ, &pred);
        let mut rank = vec![0usize; n];
        for &v in &order {
            for &w in &succ[v] {
                rank[w] = rank[w].max(rank[v] + 1);
            }
        }
        // Sources that nothing pins to the top wait next to what they feed.
        for &v in order.iter().rev() {
            if pred[v].is_empty() && !self.top[v] {
                if let Some(min) = succ[v].iter().map(|&w| rank[w]).min() {
                    rank[v] = min.saturating_sub(1);
                }
            }
        }
        let floor = (0..n).filter(|&v| self.bottom[v]).map(|v| rank[v]).max();
        // Lining the bottom nodes up lengthens every edge into them; when
        // that would cost more than a few ranks per node (a long pipeline
        // whose every step can fail, say), they stay where they are.
        let cost = |floor: usize| -> usize {
            dag.iter()
                .filter(|&&(_, b, _)| self.bottom[b])
                .map(|&(_, b, _)| floor - rank[b])
                .sum()
        };
        if let Some(floor) = floor.filter(|&f| cost(f) <= ALIGN_BUDGET.max(2 * n)) {
            for (r, &bottom) in rank.iter_mut().zip(&self.bottom) {
                if bottom {
                    *r = floor;
                }
            }
            for &v in &order {
                for &w in &succ[v] {
                    rank[w] = rank[w].max(rank[v] + 1);
                }
            }
        }
        self.rank = rank;
    }

    pub(super) fn add_dummies(&mut self, dag: &[(usize, usize, bool)]) {
        // Each rank an edge crosses costs a dummy node. Past the budget the
        // longest edges get none and are drawn as one curve: a spec whose
        // every event feeds one reaction far below would otherwise need a
        // number of dummies quadratic in its size.
        let mut spans: Vec<usize> = dag
            .iter()
            .map(|&(a, b, _)| self.rank[b].saturating_sub(self.rank[a] + 1))
            .collect();
        spans.sort_unstable();
        let mut total = 0usize;
        let mut longest_routed = usize::MAX;
        for &span in &spans {
            if total + span > DUMMY_BUDGET {
                longest_routed = span.saturating_sub(1);
                break;
            }
            total += span;
        }
        let mut chains = Vec::with_capacity(dag.len());
        for &(a, b, reversed) in dag {
            let mut chain = vec![a];
            let span = self.rank[b].saturating_sub(self.rank[a] + 1);
            let routed = if span <= longest_routed {
                self.rank[a] + 1..self.rank[b]
            } else {
                0..0
            };
            for r in routed {
                let d = self.sizes.len();
                self.sizes.push((0.0, 0.0));
                self.spread.push(0.0);
                self.rank.push(r);
                chain.push(d);
            }
            chain.push(b);
            chains.push((chain, reversed));
        }
        let total = self.sizes.len();
        self.up = vec![Vec::new(); total];
        self.down = vec![Vec::new(); total];
        for (chain, _) in &chains {
            for pair in chain.windows(2) {
                self.down[pair[0]].push(pair[1]);
                self.up[pair[1]].push(pair[0]);
            }
        }
        self.chains = chains;
    }
}

/// A topological order of a DAG, smallest index first among the ready.
fn topological(succ: &[Vec<usize>], pred: &[Vec<usize>]) -> Vec<usize> {
    let n = succ.len();
    let mut missing: Vec<usize> = pred.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..n).filter(|&v| missing[v] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(v) = ready.pop_front() {
        order.push(v);
        for &w in &succ[v] {
            missing[w] -= 1;
            if missing[w] == 0 {
                ready.push_back(w);
            }
        }
    }
    order
}
