//! Energy distance (Székely & Rizzo, "Energy statistics", 2013):
//! `E = 2·E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖`, as the V-statistic — every expectation the mean over
//! all ordered pairs, `n·m`, `n²` and `m²` of them, a point's pair with itself included (at
//! distance 0). That is the energy distance between the two empirical distributions: never
//! negative, 0 only when the two sets are the same multiset. (The U-statistic would divide
//! the self sums by `n(n−1)` and `m(m−1)`; it can go negative.)
//!
//! Error: each distance is an f32 square root of an f32 squared distance (relative error
//! below `(d/2 + 2)·2⁻²⁴`), each tile's 64 distances are added in f32 (below `10·2⁻²⁴`
//! relative), and all else is f64: each mean is within `2e-6` of its exact value relative,
//! `E` within `2e-6·(2E‖X−Y‖ + E‖X−X'‖ + E‖Y−Y'‖)` absolute — a bound; the roundings do not
//! all go one way, and the tests find the three means within ~1e-9 of an f64 sum.

use super::Points;
use super::tiles::{Columns, lane_sum, sweep, unit_scale};

/// The energy distance of `x` and `y`, all their points (see the module docs), on its own:
/// the Swiss roll's score (`eval`). Both must be non-empty and of one width ([`super::compare`]
/// checks that for its inputs).
pub(crate) fn energy_distance(x: &Points, y: &Points) -> f64 {
    let scale = unit_scale(&[x, y]);
    let (xs, ys) = (x.scaled(scale), y.scaled(scale));
    let total = |rows: &Points, cols: &Points| -> f64 {
        let tasks = sweep(
            rows,
            &Columns::new(cols),
            |range| (range.start, vec![0.0f64; range.len()]),
            #[inline(always)]
            |(start, sums), i, _, d2| sums[i - *start] += distance_sum(d2) as f64,
        );
        tasks.iter().flat_map(|t| &t.1).sum()
    };
    let e = from_sums(
        [total(&xs, &ys), total(&xs, &xs), total(&ys, &ys)],
        x.len(),
        y.len(),
    );
    e / scale
}

/// The sum of the distances of a tile's squared distances `d2`.
#[inline(always)]
pub(crate) fn distance_sum(d2: &[f32]) -> f32 {
    let mut d = [0.0f32; super::tiles::WIDTH];
    for (d, &v) in d.iter_mut().zip(d2) {
        *d = v.sqrt();
    }
    lane_sum(&d[..d2.len()])
}

/// The energy distance from the sums of `‖x−y‖`, `‖x−x'‖` and `‖y−y'‖` over all ordered
/// pairs of `n` x and `m` y points. Rounding can take the exact 0 of identical sets a few
/// ulps below zero, hence the clamp.
pub(crate) fn from_sums([xy, xx, yy]: [f64; 3], n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    (2.0 * xy / (n * m) - xx / (n * n) - yy / (m * m)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cloud, naive_distance};
    use super::*;

    #[test]
    fn matches_a_double_loop_in_f64() {
        for dim in [1, 3, 16] {
            let (x, y) = (cloud(50, dim, 1, 0.0), cloud(40, dim, 2, 0.3));
            let mean = |a: &Points, b: &Points| {
                let mut s = 0.0;
                for p in a.rows() {
                    for q in b.rows() {
                        s += naive_distance(p, q);
                    }
                }
                s / (a.len() * b.len()) as f64
            };
            let exact = 2.0 * mean(&x, &y) - mean(&x, &x) - mean(&y, &y);
            let e = energy_distance(&x, &y);
            assert!(
                (e - exact).abs() < 1e-6 * exact.max(1.0),
                "{dim}: {e} vs {exact}"
            );
        }
    }

    #[test]
    fn is_zero_for_the_same_set_and_scales_with_the_points() {
        let x = cloud(300, 4, 3, 0.0);
        assert_eq!(energy_distance(&x, &x), 0.0);
        let y = cloud(200, 4, 4, 0.0);
        let e = energy_distance(&x, &y);
        // Scaling by a power of two is exact, so the distance scales exactly.
        let big = |p: &Points| {
            Points::new(4, p.values().iter().map(|v| v * 2f32.powi(100)).collect()).unwrap()
        };
        let e_big = energy_distance(&big(&x), &big(&y));
        assert_eq!(e_big, e * 2f64.powi(100));
    }
}
