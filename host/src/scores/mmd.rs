//! Squared maximum mean discrepancy with a Gaussian (RBF) kernel, the unbiased estimator
//! (Gretton et al., "A kernel two-sample test", JMLR 2012, eq. 3):
//!
//! `MMD² = Σ_{i≠i'} k(x_i, x_i')/(n(n−1)) + Σ_{j≠j'} k(y_j, y_j')/(m(m−1)) − 2·Σ_{i,j} k(x_i, y_j)/(nm)`,
//! `k(a, b) = exp(−‖a−b‖²/(2σ²))`.
//!
//! Unbiased, it scatters around 0 for two samples of one distribution and can be negative.
//! The bandwidth σ is the median heuristic: the median (numpy's: the mean of the two middle
//! values for an even count) of the distances `‖z_a − z_b‖`, `a < b`, over the pooled set of
//! at most [`BANDWIDTH_POINTS`] evenly spaced points of each side (all pairs of the pooled
//! set when both have that few, ~2 M pairs at most, so it costs milliseconds). Should the
//! median be 0 (over half the pairs coincide), σ is their mean distance, and 1 if that is 0
//! too (every point the same; then any σ gives MMD² = 0).
//!
//! Error: a kernel value is `exp_nonpositive` (relative error below 3e-7) of an f32 argument
//! (relative error below `(d + 3)·2⁻²⁴`, which moves `k ≤ 1` by at most `|ln k|·k ≤ 1/e`
//! times that); each tile's 64 values are added in f32 (`10·2⁻²⁴`), the rest in f64. Each of
//! the three means, in [0, 1], is off by less than 2e-6, MMD² by less than 8e-6 absolute (a
//! bound: the tests find ~1e-8 against f64).

use rayon::prelude::*;
use tinyddpm_core::math::exp_nonpositive;

use super::Points;
use super::tiles::{WIDTH, lane_sum};

/// Points of each side that the bandwidth's pairs are drawn among.
pub const BANDWIDTH_POINTS: usize = 1000;

/// The bandwidth σ of `x` and `y` (see the module docs), in their units.
pub(crate) fn bandwidth(x: &Points, y: &Points) -> f64 {
    let (xs, ys) = (x.spread(BANDWIDTH_POINTS), y.spread(BANDWIDTH_POINTS));
    let pool: Vec<&[f32]> = xs.rows().chain(ys.rows()).collect();
    let mut distances: Vec<f64> = pool
        .par_iter()
        .enumerate()
        .flat_map_iter(|(a, p)| pool[a + 1..].iter().map(move |q| distance(p, q)))
        .collect();
    let n = distances.len();
    if n == 0 {
        return 1.0;
    }
    let (below, &mut upper, _) = distances.select_nth_unstable_by(n / 2, f64::total_cmp);
    let median = if n % 2 == 1 {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    };
    if median > 0.0 {
        return median;
    }
    let mean = distances.iter().sum::<f64>() / n as f64;
    if mean > 0.0 { mean } else { 1.0 }
}

/// `‖p − q‖` in f64.
fn distance(p: &[f32], q: &[f32]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `1/(2σ²)` as the kernel takes it, at most `f32::MAX` (a σ below 1e-19 of the points'
/// scale; an infinite factor would make `0·∞` of a point's zero distance NaN).
pub(crate) fn gamma(sigma: f64) -> f32 {
    (0.5 / (sigma * sigma)).min(f32::MAX as f64) as f32
}

/// The sum of `k = exp(−γ·d²)` over a tile's squared distances, lane `skip` left out (a
/// point's kernel with itself, which the unbiased estimator excludes).
#[inline(always)]
pub(crate) fn kernel_sum(d2: &[f32], gamma: f32, skip: Option<usize>) -> f32 {
    let mut k = [0.0f32; WIDTH];
    for (k, &v) in k.iter_mut().zip(d2) {
        *k = exp_nonpositive(-gamma * v);
    }
    if let Some(j) = skip {
        k[j] = 0.0;
    }
    lane_sum(&k[..d2.len()])
}

/// MMD² from the kernel sums over `x` pairs (`i ≠ i'`), `y` pairs (`j ≠ j'`) and all cross
/// pairs, of `n ≥ 2` x and `m ≥ 2` y points.
pub(crate) fn from_sums([xy, xx, yy]: [f64; 3], n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    xx / (n * (n - 1.0)) + yy / (m * (m - 1.0)) - 2.0 * xy / (n * m)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cloud, naive_distance};
    use super::*;

    #[test]
    fn bandwidth_is_the_median_of_all_pooled_pairs_for_small_sets() {
        let (x, y) = (cloud(50, 3, 5, 0.0), cloud(40, 3, 6, 1.0));
        let pool: Vec<&[f32]> = x.rows().chain(y.rows()).collect();
        let mut all = Vec::new();
        for a in 0..pool.len() {
            for b in a + 1..pool.len() {
                all.push(naive_distance(pool[a], pool[b]));
            }
        }
        all.sort_by(f64::total_cmp);
        // 90·89/2 = 4005 pairs, odd: the middle one.
        assert_eq!(all.len(), 4005);
        assert_eq!(bandwidth(&x, &y), all[2002]);
        // Even count: the mean of the two middle ones.
        let (a, b) = (
            Points::new(1, vec![0.0, 1.0]).unwrap(),
            Points::new(1, vec![3.0, 7.0]).unwrap(),
        );
        // Distances 1, 3, 7, 2, 6, 4: median (3 + 4)/2.
        assert_eq!(bandwidth(&a, &b), 3.5);
        // Most pairs coincide: the mean; all the same point: 1.
        let same = Points::new(1, vec![2.0; 5]).unwrap();
        let one = Points::new(1, vec![5.0]).unwrap();
        assert_eq!(bandwidth(&same, &one), 3.0 * 5.0 / 15.0);
        assert_eq!(bandwidth(&same, &same), 1.0);
    }
}
