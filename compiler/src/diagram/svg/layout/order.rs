//! Phase 3: each layer ordered by barycentre sweeps with adjacent swaps,
//! keeping the order with the fewest crossings.

use super::{Sub, ORDER_ROUNDS};

impl Sub {
    /// Orders each layer to reduce crossings.
    pub(super) fn order(&mut self) {
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
pub(super) fn inversions(v: &mut [usize]) -> usize {
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
