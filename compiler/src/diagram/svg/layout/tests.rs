use super::order::inversions;
use super::place::isotonic;
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
