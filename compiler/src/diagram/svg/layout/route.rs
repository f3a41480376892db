//! Each edge's points, ports spread along the sides of its nodes.

use super::{Point, Sub};

impl Sub {
    /// Each edge's points, ports spread along the sides of its nodes.
    pub(super) fn route(&mut self) {
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
