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
//!
//! Phases 1 and 2 are in `ranks`, 3 in `order`, 4 in `place`, and the
//! edges' routes in `route`; `Sub` holds one component between them.

mod order;
mod place;
mod ranks;
mod route;
#[cfg(test)]
mod tests;

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
}
