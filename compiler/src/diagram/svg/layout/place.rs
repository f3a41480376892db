//! Phase 4: horizontal positions by alternating sweeps, each layer solved
//! exactly by isotonic regression under the minimum separations; vertical
//! positions from the ranks' bands.

use super::{Sub, DUMMY_GAP, NODE_GAP, PLACE_ROUNDS, RANK_GAP};

impl Sub {
    /// Horizontal and vertical positions of every node.
    pub(super) fn place(&mut self) {
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
}

/// The positions closest to `desired` (weighted least squares) that keep
/// the order and at least `sep[i]` between position `i` and `i + 1`.
pub(super) fn isotonic(desired: &[f64], weight: &[f64], sep: &[f64]) -> Vec<f64> {
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
