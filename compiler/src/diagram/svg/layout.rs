//! A layered (Sugiyama-style) graph layout, written for choreo's diagrams.
//!
//! Why not a crate: the maintained Rust options either compute vertex
//! positions only (`rust-sugiyama` returns no routes for the edges, so they
//! would be straight lines through other nodes, and it ignores which nodes
//! belong at the top or bottom), or bring a whole renderer with its own
//! styling (`layout-rs`) where we need our own shapes, legend and escaping.
//! The classic four phases are short enough to own, and owning them lets
//! the layout know what the diagram means: commands start at the top,
//! terminal events line up at the bottom, and compensation links do not
//! pull the flow upside down.
//!
//! The phases, each in deterministic order:
//!
//! 1. Cycles are broken by reversing the back edges of a depth-first search
//!    that starts from the sources in index order.
//! 2. Ranks are longest paths from the sources; sources that are not pinned
//!    to the top move down next to their first successor, and the nodes
//!    pinned to the bottom share the lowest rank any of them needs.
//! 3. Long edges are split into chains of dummy nodes, one per rank, and
//!    each layer is ordered by barycentre sweeps with adjacent swaps,
//!    keeping the order with the fewest crossings.
//! 4. Horizontal positions come from alternating sweeps that pull each node
//!    towards its neighbours, each layer solved exactly by isotonic
//!    regression (pool adjacent violators) under the minimum separations,
//!    so nodes never overlap and dummies keep long edges straight.
//!
//! Weakly connected components are laid out apart and packed in rows.

use std::collections::VecDeque;

/// A point.
pub(crate) type Point = (f64, f64);

/// What to lay out.
#[derive(Debug, Clone, Default)]
pub(crate) struct Input {
    /// Width and height of each node.
    pub sizes: Vec<(f64, f64)>,
    /// How far apart the ports of edges may spread on each node's top and
    /// bottom side (0 for shapes with a point there, like diamonds).
    pub spread: Vec<f64>,
    /// Nodes that belong on the first rank.
    pub top: Vec<bool>,
    /// Nodes that line up on one rank, below the rest of their predecessors.
    pub bottom: Vec<bool>,
    /// Directed edges between node indexes, oriented as they should point
    /// down the page.
    pub edges: Vec<(usize, usize)>,
}

/// Where everything goes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    /// The centre of each node.
    pub centers: Vec<Point>,
    /// For each input edge, the points of its route from its first node to
    /// its second, ports included.
    pub routes: Vec<Vec<Point>>,
    /// The size of the whole drawing.
    pub width: f64,
    pub height: f64,
}

/// Gap between ranks, room for the arrows.
const RANK_GAP: f64 = 46.0;
/// Gap between two nodes on one rank.
const NODE_GAP: f64 = 26.0;
/// Gap between a node and an edge passing by, or two edges.
const DUMMY_GAP: f64 = 12.0;
/// Gap between components.
const COMPONENT_GAP: f64 = 60.0;
/// Components are packed in rows no wider than this, unless one alone is.
const ROW_WIDTH: f64 = 1800.0;
/// Extra edge length, in ranks, that lining up the bottom nodes may cost
/// (or twice the number of nodes, if more).
const ALIGN_BUDGET: usize = 200;
/// Dummy nodes a component may have; beyond, the longest edges go without.
const DUMMY_BUDGET: usize = 40_000;
/// Rounds of crossing reduction.
const ORDER_ROUNDS: usize = 16;
/// Rounds of horizontal placement.
const PLACE_ROUNDS: usize = 12;

/// Lays out a graph.
pub(crate) fn layout(input: &Input) -> Layout {
    let n = input.sizes.len();
    let mut out = Layout {
        centers: vec![(0.0, 0.0); n],
        routes: vec![Vec::new(); input.edges.len()],
        width: 0.0,
        height: 0.0,
    };
    let (mut x, mut y, mut row_height) = (0.0_f64, 0.0_f64, 0.0_f64);
    let components = components(n, &input.edges);
    let laid: Vec<Sub> = components
        .iter()
        .map(|c| Sub::new(input, c).run())
        .collect();
    let row_width = laid.iter().map(|s| s.width).fold(ROW_WIDTH, f64::max);
    for sub in laid {
        if x > 0.0 && x + sub.width > row_width {
            x = 0.0;
            y += row_height + COMPONENT_GAP;
            row_height = 0.0;
        }
        for (local, &node) in sub.nodes.iter().enumerate() {
            let (cx, cy) = sub.centers[local];
            out.centers[node] = (cx + x, cy + y);
        }
        for (edge, route) in sub.routes {
            out.routes[edge] = route.into_iter().map(|(px, py)| (px + x, py + y)).collect();
        }
        out.width = out.width.max(x + sub.width);
        out.height = out.height.max(y + sub.height);
        row_height = row_height.max(sub.height);
        x += sub.width + COMPONENT_GAP;
    }
    out
}

/// Weakly connected components, each a sorted list of nodes, ordered by
/// their first node.
fn components(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut v: usize) -> usize {
        while parent[v] != v {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }
        v
    }
    for &(a, b) in edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut index_of_root = vec![usize::MAX; n];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for v in 0..n {
        let root = find(&mut parent, v);
        if index_of_root[root] == usize::MAX {
            index_of_root[root] = out.len();
            out.push(Vec::new());
        }
        out[index_of_root[root]].push(v);
    }
    out
}

/// One component being laid out. Local node indexes: the component's real
/// nodes first, then dummies.
struct Sub {
    /// Global index of each real node.
    nodes: Vec<usize>,
    /// Size of each node (dummies are 0 × 0).
    sizes: Vec<(f64, f64)>,
    spread: Vec<f64>,
    top: Vec<bool>,
    bottom: Vec<bool>,
    /// Edges: global edge index, local ends as given.
    edges: Vec<(usize, usize, usize)>,
    /// Per edge: the chain of local nodes from its upper to its lower end,
    /// and whether that runs against the edge.
    chains: Vec<(Vec<usize>, bool)>,
    rank: Vec<usize>,
    /// Nodes of each rank, in order.
    layers: Vec<Vec<usize>>,
    /// Neighbours one rank up and one rank down, by the chain segments.
    up: Vec<Vec<usize>>,
    down: Vec<Vec<usize>>,
    centers: Vec<Point>,
    /// The top and bottom of each rank's band: its tallest node.
    bands: Vec<(f64, f64)>,
    routes: Vec<(usize, Vec<Point>)>,
    width: f64,
    height: f64,
}

impl Sub {
    fn new(input: &Input, nodes: &[usize]) -> Sub {
        let mut local = std::collections::HashMap::with_capacity(nodes.len());
        for (i, &v) in nodes.iter().enumerate() {
            local.insert(v, i);
        }
        let edges = input
            .edges
            .iter()
            .enumerate()
            .filter_map(|(e, &(a, b))| Some((e, *local.get(&a)?, *local.get(&b)?)))
            .collect();
        let pick = |v: &Vec<bool>| {
            nodes
                .iter()
                .map(|&n| v.get(n).copied().unwrap_or(false))
                .collect()
        };
        Sub {
            nodes: nodes.to_vec(),
            sizes: nodes.iter().map(|&v| input.sizes[v]).collect(),
            spread: nodes
                .iter()
                .map(|&v| input.spread.get(v).copied().unwrap_or(0.0))
                .collect(),
            top: pick(&input.top),
            bottom: pick(&input.bottom),
            edges,
            chains: Vec::new(),
            rank: Vec::new(),
            layers: Vec::new(),
            up: Vec::new(),
            down: Vec::new(),
            centers: Vec::new(),
            bands: Vec::new(),
            routes: Vec::new(),
            width: 0.0,
            height: 0.0,
        }
    }

    fn run(mut self) -> Sub {
        let dag = self.break_cycles();
        self.assign_ranks(&dag);
        self.add_dummies(&dag);
        self.order();
        self.place();
        self.route();
        self
    }

    fn real(&self) -> usize {
        self.nodes.len()
    }

    /// The edges with back edges reversed: (upper, lower, reversed).
    fn break_cycles(&self) -> Vec<(usize, usize, bool)> {
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

    fn assign_ranks(&mut self, dag: &[(usize, usize, bool)]) {
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

    fn add_dummies(&mut self, dag: &[(usize, usize, bool)]) {
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

    /// Orders each layer to reduce crossings.
    fn order(&mut self) {
        let total = self.sizes.len();
        let ranks = self.rank.iter().max().map_or(0, |r| r + 1);
        // Initial order: depth-first discovery from the top, which keeps
        // what belongs together side by side.
        let mut seen = vec![false; total];
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); ranks];
        let mut by_rank: Vec<usize> = (0..self.real()).collect();
        by_rank.sort_by_key(|&v| (self.rank[v], v));
        for start in by_rank {
            if seen[start] {
                continue;
            }
            let mut stack = vec![start];
            while let Some(v) = stack.pop() {
                if seen[v] {
                    continue;
                }
                seen[v] = true;
                layers[self.rank[v]].push(v);
                for &w in self.down[v].iter().rev() {
                    if !seen[w] {
                        stack.push(w);
                    }
                }
            }
        }
        let mut best = layers.clone();
        let mut best_crossings = crossings(&layers, &self.down);
        let mut pos = vec![0usize; total];
        for round in 0..ORDER_ROUNDS {
            if best_crossings == 0 {
                break;
            }
            let downward = round % 2 == 0;
            positions(&layers, &mut pos);
            let sweep: Vec<usize> = if downward {
                (1..ranks).collect()
            } else {
                (0..ranks.saturating_sub(1)).rev().collect()
            };
            for r in sweep {
                let fixed = if downward { &self.up } else { &self.down };
                let layer = &mut layers[r];
                let keys: Vec<(f64, usize)> = layer
                    .iter()
                    .map(|&v| {
                        let ns = &fixed[v];
                        let key = if ns.is_empty() {
                            pos[v] as f64
                        } else {
                            ns.iter().map(|&w| pos[w] as f64).sum::<f64>() / ns.len() as f64
                        };
                        (key, v)
                    })
                    .collect();
                let mut keyed: Vec<(f64, usize, usize)> = keys
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| (k, i, v))
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                *layer = keyed.into_iter().map(|(_, _, v)| v).collect();
                for (i, &v) in layer.iter().enumerate() {
                    pos[v] = i;
                }
            }
            self.transpose(&mut layers, &mut pos);
            let c = crossings(&layers, &self.down);
            if c < best_crossings {
                best_crossings = c;
                best = layers.clone();
            }
        }
        self.layers = best;
    }

    /// Swaps neighbours in a layer while that removes crossings.
    fn transpose(&self, layers: &mut [Vec<usize>], pos: &mut [usize]) {
        positions(layers, pos);
        for _ in 0..4 {
            let mut improved = false;
            for layer in layers.iter_mut() {
                for i in 1..layer.len() {
                    let (u, v) = (layer[i - 1], layer[i]);
                    let now =
                        pair_crossings(u, v, &self.up, pos) + pair_crossings(u, v, &self.down, pos);
                    let swapped =
                        pair_crossings(v, u, &self.up, pos) + pair_crossings(v, u, &self.down, pos);
                    if swapped < now {
                        layer.swap(i - 1, i);
                        pos[u] = i;
                        pos[v] = i - 1;
                        improved = true;
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }

    /// Horizontal and vertical positions of every node.
    fn place(&mut self) {
        let total = self.sizes.len();
        let mut x = vec![0.0f64; total];
        let seps: Vec<Vec<f64>> = self
            .layers
            .iter()
            .map(|layer| {
                layer
                    .windows(2)
                    .map(|p| self.separation(p[0], p[1]))
                    .collect()
            })
            .collect();
        for (layer, sep) in self.layers.iter().zip(&seps) {
            let mut at = 0.0;
            for (i, &v) in layer.iter().enumerate() {
                if i > 0 {
                    at += sep[i - 1];
                }
                x[v] = at;
            }
        }
        let ranks = self.layers.len();
        for round in 0..PLACE_ROUNDS {
            let downward = round % 2 == 0;
            let last = round + 1 == PLACE_ROUNDS;
            let sweep: Vec<usize> = if downward {
                (0..ranks).collect()
            } else {
                (0..ranks).rev().collect()
            };
            for r in sweep {
                let layer = &self.layers[r];
                let mut desired = Vec::with_capacity(layer.len());
                let mut weight = Vec::with_capacity(layer.len());
                for &v in layer {
                    let primary = if downward { &self.up[v] } else { &self.down[v] };
                    let secondary = if downward { &self.down[v] } else { &self.up[v] };
                    let ns: Vec<usize> = if last || primary.is_empty() {
                        primary.iter().chain(secondary).copied().collect()
                    } else {
                        primary.clone()
                    };
                    if ns.is_empty() {
                        desired.push(x[v]);
                        weight.push(0.01);
                    } else {
                        desired.push(ns.iter().map(|&w| x[w]).sum::<f64>() / ns.len() as f64);
                        weight.push(if v >= self.real() { 4.0 } else { 1.0 });
                    }
                }
                let placed = isotonic(&desired, &weight, &seps[r]);
                for (&v, p) in layer.iter().zip(placed) {
                    x[v] = p;
                }
            }
        }
        let left = (0..total)
            .map(|v| x[v] - self.sizes[v].0 / 2.0)
            .fold(f64::INFINITY, f64::min);
        let left = if left.is_finite() { left } else { 0.0 };
        let mut y_of_rank = Vec::with_capacity(ranks);
        let mut y = 0.0;
        for layer in &self.layers {
            let h = layer.iter().map(|&v| self.sizes[v].1).fold(0.0, f64::max);
            y_of_rank.push(y + h / 2.0);
            self.bands.push((y, y + h));
            y += h + RANK_GAP;
        }
        self.height = (y - RANK_GAP).max(0.0);
        self.centers = (0..total)
            .map(|v| (x[v] - left, y_of_rank[self.rank[v]]))
            .collect();
        self.width = (0..total)
            .map(|v| self.centers[v].0 + self.sizes[v].0 / 2.0)
            .fold(0.0, f64::max);
    }

    fn separation(&self, a: usize, b: usize) -> f64 {
        let gap = if a >= self.real() || b >= self.real() {
            DUMMY_GAP
        } else {
            NODE_GAP
        };
        (self.sizes[a].0 + self.sizes[b].0) / 2.0 + gap
    }

    /// Each edge's points, ports spread along the sides of its nodes.
    fn route(&mut self) {
        let total = self.sizes.len();
        // Port offsets: segments leaving a node downwards, and arriving from
        // above, each sorted by where their other end is.
        let mut bottom_port = vec![Vec::<(usize, f64)>::new(); total];
        let mut top_port = vec![Vec::<(usize, f64)>::new(); total];
        for (i, (chain, _)) in self.chains.iter().enumerate() {
            if let [first, second, ..] = chain.as_slice() {
                bottom_port[*first].push((i, self.centers[*second].0));
            }
            if let [.., before, last] = chain.as_slice() {
                top_port[*last].push((i, self.centers[*before].0));
            }
        }
        let offsets = |ports: &mut Vec<(usize, f64)>, spread: f64| -> Vec<(usize, f64)> {
            ports.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let k = ports.len();
            let step = if k > 1 {
                (spread / (k - 1) as f64).min(14.0)
            } else {
                0.0
            };
            ports
                .iter()
                .enumerate()
                .map(|(j, &(edge, _))| (edge, (j as f64 - (k as f64 - 1.0) / 2.0) * step))
                .collect()
        };
        let mut start = vec![0.0; self.chains.len()];
        let mut end = vec![0.0; self.chains.len()];
        for v in 0..total {
            for (edge, off) in offsets(&mut bottom_port[v], self.spread[v]) {
                start[edge] = off;
            }
            for (edge, off) in offsets(&mut top_port[v], self.spread[v]) {
                end[edge] = off;
            }
        }
        let mut routes = Vec::with_capacity(self.chains.len());
        for (i, (chain, reversed)) in self.chains.iter().enumerate() {
            let (Some(&first), Some(&last)) = (chain.first(), chain.last()) else {
                continue;
            };
            // An edge runs straight down through each rank's band, where the
            // nodes are, and bends only in the gaps between ranks, so it
            // never cuts a corner of a node beside its path.
            let mut points = Vec::with_capacity(2 * chain.len());
            let mut push = |p: Point| {
                if points.last() != Some(&p) {
                    points.push(p);
                }
            };
            let (fx, fy) = self.centers[first];
            let x = fx + start[i];
            push((x, fy + self.sizes[first].1 / 2.0));
            push((x, self.bands[self.rank[first]].1));
            for &d in &chain[1..chain.len() - 1] {
                let (top, bottom) = self.bands[self.rank[d]];
                push((self.centers[d].0, top));
                push((self.centers[d].0, bottom));
            }
            let (lx, ly) = self.centers[last];
            let x = lx + end[i];
            push((x, self.bands[self.rank[last]].0));
            push((x, ly - self.sizes[last].1 / 2.0));
            if *reversed {
                points.reverse();
            }
            routes.push((self.edges[i].0, points));
        }
        self.routes = routes;
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

fn positions(layers: &[Vec<usize>], pos: &mut [usize]) {
    for layer in layers {
        for (i, &v) in layer.iter().enumerate() {
            pos[v] = i;
        }
    }
}

/// Crossings between the edges of `u` and of `v` towards one neighbour
/// layer, when `u` stands left of `v`.
fn pair_crossings(u: usize, v: usize, neighbours: &[Vec<usize>], pos: &[usize]) -> usize {
    let mut c = 0;
    for &a in &neighbours[u] {
        for &b in &neighbours[v] {
            if pos[a] > pos[b] {
                c += 1;
            }
        }
    }
    c
}

/// Total crossings between consecutive layers, by counting inversions.
fn crossings(layers: &[Vec<usize>], down: &[Vec<usize>]) -> usize {
    let total = down.len();
    let mut pos = vec![0usize; total];
    positions(layers, &mut pos);
    let mut sum = 0;
    for layer in layers {
        let mut targets: Vec<usize> = Vec::new();
        for &v in layer {
            let mut ts: Vec<usize> = down[v].iter().map(|&w| pos[w]).collect();
            ts.sort_unstable();
            targets.extend(ts);
        }
        sum += inversions(&mut targets);
    }
    sum
}

/// Counts pairs out of order, sorting the slice (merge sort).
fn inversions(v: &mut [usize]) -> usize {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count = inversions(&mut v[..mid]) + inversions(&mut v[mid..]);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if v[i] <= v[j] {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            count += mid - i;
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..mid]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
    count
}

/// The positions closest to `desired` (weighted least squares) that keep
/// the order and at least `sep[i]` between position `i` and `i + 1`.
fn isotonic(desired: &[f64], weight: &[f64], sep: &[f64]) -> Vec<f64> {
    let n = desired.len();
    // Shifting by the running separation turns the constraints into a plain
    // non-decreasing order, which pool-adjacent-violators solves exactly.
    let mut offset = vec![0.0; n];
    for i in 1..n {
        offset[i] = offset[i - 1] + sep[i - 1];
    }
    // Blocks of (weighted sum, weight, count).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        blocks.push(((desired[i] - offset[i]) * weight[i], weight[i], 1));
        while blocks.len() > 1 {
            let last = blocks[blocks.len() - 1];
            let prev = blocks[blocks.len() - 2];
            if prev.0 / prev.1 > last.0 / last.1 {
                blocks.pop();
                let merged = blocks.len() - 1;
                blocks[merged] = (prev.0 + last.0, prev.1 + last.1, prev.2 + last.2);
            } else {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(n);
    for (sum, w, count) in blocks {
        let value = sum / w;
        for _ in 0..count {
            let i = out.len();
            out.push(value + offset[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(n: usize, edges: &[(usize, usize)]) -> Input {
        Input {
            sizes: vec![(40.0, 20.0); n],
            spread: vec![20.0; n],
            top: vec![false; n],
            bottom: vec![false; n],
            edges: edges.to_vec(),
        }
    }

    #[test]
    fn isotonic_keeps_order_and_separation() {
        let x = isotonic(&[10.0, 0.0, 5.0], &[1.0, 1.0, 1.0], &[10.0, 10.0]);
        assert!(x[1] - x[0] >= 10.0 - 1e-9 && x[2] - x[1] >= 10.0 - 1e-9);
        // Least squares: the mean of the shifted wishes stays put.
        let mean = (x[0] + x[1] - 10.0 + x[2] - 20.0) / 3.0;
        assert!((mean - (10.0 + -10.0 + -15.0) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn inversions_count_crossings() {
        assert_eq!(inversions(&mut [2, 1, 0]), 3);
        assert_eq!(inversions(&mut [0, 1, 1, 2]), 0);
    }

    #[test]
    fn edges_point_down_and_nodes_do_not_overlap() {
        // A diamond with a back edge and a long edge.
        let layout = layout(&input(
            5,
            &[(0, 1), (0, 2), (1, 3), (2, 3), (3, 0), (0, 4), (3, 4)],
        ));
        let c = &layout.centers;
        assert!(c[0].1 < c[1].1 && c[1].1 < c[3].1 && c[3].1 < c[4].1);
        assert!((c[1].0 - c[2].0).abs() >= 40.0);
        // The back edge 3 → 0 runs upwards, from 3's top to 0's bottom.
        let back = &layout.routes[4];
        assert!(back[0].1 < c[3].1 && back[back.len() - 1].1 > c[0].1);
    }

    #[test]
    fn bottom_nodes_share_a_rank_and_components_sit_apart() {
        let mut i = input(6, &[(0, 1), (1, 2), (0, 3), (4, 5)]);
        i.bottom[2] = true;
        i.bottom[3] = true;
        let layout = layout(&i);
        assert_eq!(layout.centers[2].1, layout.centers[3].1);
        assert!(layout.centers[4].0 > layout.centers[0].0 + 40.0);
    }
}
