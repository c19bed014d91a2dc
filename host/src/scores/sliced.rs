//! Sliced Wasserstein-2 distance (Rabin et al., "Wasserstein barycenter and its application
//! to texture mixing", 2011; Bonneel et al. 2015):
//! `SW2 = √( (1/P)·Σ_p W2²(u_p·X, u_p·Y) )` over [`PROJECTIONS`] fixed unit directions `u_p`.
//!
//! The directions are the same for every call: direction `p` is `d` Gaussians of the
//! project's noise stream `p` under a fixed key (`NoiseStream`, Box–Muller on
//! Xoshiro128++), normalised — uniform on the sphere. They estimate the mean over all
//! directions with a Monte Carlo error: for `N(0, I)` against `N(μ, I)` the exact value is
//! `SW2² = E_u (u·μ)² = ‖μ‖²/d`, and `(u·μ)²/‖μ‖²` (a Beta(1/2, (d−1)/2) variable) has a
//! relative standard deviation `√(2(d−1)/(d+2))` about its mean `1/d`: the average over `P`
//! directions is off by `√(2(d−1)/(d+2)/P)` relative at one standard deviation — 5.6% at
//! d = 3, less than 8.9% for any d, with 256 directions — before the sampling noise of the
//! points. Fixed directions make that error the same at every call, so scores stay
//! comparable with each other.
//!
//! The 1-D `W2²` between two empirical distributions of `n` and `m` points is exact, sizes
//! equal or not: `∫₀¹ (F⁻¹(t) − G⁻¹(t))² dt` with the sorted projections as the step
//! quantile functions, summed over the merged steps `i/n`, `j/m` (weights counted in units of
//! `1/(nm)`, integers): for `n = m` it is the mean of `(x_(i) − y_(i))²`. Projections, sorts
//! and sums are f64 (relative error ~1e-15); each direction's sum runs in order and the
//! directions' values are added in order, so the result does not depend on the threads.

use rayon::prelude::*;
use tinyddpm_core::NoiseStream;
use tinyddpm_core::noise::mix64;

use super::{Points, ScoresError, check};

/// Directions averaged over.
pub const PROJECTIONS: usize = 256;
/// Stream key of the directions: the mix of an ASCII tag ("slice") and a number, the way
/// the host keys its other uses of random streams (`data::Domain`), so that no stream is
/// shared with them.
const DIRECTIONS_KEY: u64 = mix64(0x736c_6963_6500_0005);

/// The sliced Wasserstein-2 distance of `x` and `y`, all their points. Fails for an empty
/// set or sets of different widths.
pub fn sliced_w2(x: &Points, y: &Points) -> Result<f64, ScoresError> {
    check(x, y, 1)?;
    let directions = directions(x.dim());
    let per_direction: Vec<f64> = directions
        .par_chunks_exact(x.dim())
        .map(|u| w2_squared(&sorted_projection(x, u), &sorted_projection(y, u)))
        .collect();
    Ok((per_direction.iter().sum::<f64>() / PROJECTIONS as f64).sqrt())
}

/// [`PROJECTIONS`] unit vectors of `dim` coordinates, one after the other.
fn directions(dim: usize) -> Vec<f64> {
    (0..PROJECTIONS as u64)
        .flat_map(|p| {
            let mut stream = NoiseStream::new(DIRECTIONS_KEY, p);
            // Box–Muller's radius is at least √(−2 ln(1 − 2⁻²⁴)) > 0 and its angles are not
            // all multiples of π/2 at once in practice; should a draw be all zeros, redraw.
            loop {
                let u: Vec<f64> = (0..dim.div_ceil(2))
                    .flat_map(|_| stream.gaussian_pair())
                    .take(dim)
                    .map(f64::from)
                    .collect();
                let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm > 0.0 {
                    break u.into_iter().map(move |v| v / norm);
                }
            }
        })
        .collect()
}

/// `u·p` for every point `p`, sorted.
fn sorted_projection(points: &Points, u: &[f64]) -> Vec<f64> {
    let mut t: Vec<f64> = points
        .rows()
        .map(|p| p.iter().zip(u).map(|(&a, &b)| a as f64 * b).sum())
        .collect();
    t.sort_unstable_by(f64::total_cmp);
    t
}

/// `W2²` of the empirical distributions of sorted `a` (n values) and sorted `b` (m values),
/// both non-empty: the quantile functions are steps at `i/n` and `j/m`; in units of
/// `1/(nm)` these are the integers `i·m` and `j·n`, so the weights are exact.
pub(crate) fn w2_squared(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as u128, b.len() as u128);
    let (mut i, mut j, mut at, mut sum) = (0usize, 0usize, 0u128, 0.0f64);
    while i < a.len() && j < b.len() {
        let (end_a, end_b) = ((i as u128 + 1) * m, (j as u128 + 1) * n);
        let end = end_a.min(end_b);
        sum += (end - at) as f64 * (a[i] - b[j]).powi(2);
        at = end;
        i += usize::from(end == end_a);
        j += usize::from(end == end_b);
    }
    sum / (n * m) as f64
}

#[cfg(test)]
mod tests {
    use super::super::tests::cloud;
    use super::*;

    /// W2² of two 1-D empirical distributions by brute force: both quantile functions on a
    /// grid of `n·m` equal cells (each cell inside one step of both).
    fn w2_brute(a: &[f64], b: &[f64]) -> f64 {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let cells = a.len() * b.len();
        (0..cells)
            .map(|c| (a[c / b.len()] - b[c / a.len()]).powi(2))
            .sum::<f64>()
            / cells as f64
    }

    #[test]
    fn one_dimensional_w2_matches_a_brute_force_quantile_grid() {
        let a: Vec<f64> = cloud(50, 1, 7, 0.0)
            .values()
            .iter()
            .map(|&v| v as f64)
            .collect();
        let b: Vec<f64> = cloud(40, 1, 8, 0.5)
            .values()
            .iter()
            .map(|&v| v as f64)
            .collect();
        let brute = w2_brute(&a, &b);
        let mut sa = a.clone();
        let mut sb = b.clone();
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        assert!(
            (w2_squared(&sa, &sb) - brute).abs() < 1e-13 * brute,
            "{brute}"
        );
        // In 1-D every direction is ±1: SW2 is W2 itself.
        let (x, y) = (cloud(50, 1, 7, 0.0), cloud(40, 1, 8, 0.5));
        let sw = sliced_w2(&x, &y).unwrap();
        assert!((sw * sw - brute).abs() < 1e-12 * brute, "{sw} vs {brute}");
        // Equal sizes: the mean squared difference of the sorted values.
        assert_eq!(w2_squared(&[0.0, 1.0], &[2.0, 4.0]), (4.0 + 9.0) / 2.0);
    }

    #[test]
    fn matches_a_plain_loop_over_the_same_directions() {
        let (x, y) = (cloud(50, 3, 9, 0.0), cloud(40, 3, 10, 0.2));
        let dirs = directions(3);
        let mut total = 0.0;
        for u in dirs.chunks(3) {
            assert!((u.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-15);
            let project = |p: &Points| -> Vec<f64> {
                p.rows()
                    .map(|r| (0..3).map(|k| r[k] as f64 * u[k]).sum())
                    .collect()
            };
            total += w2_brute(&project(&x), &project(&y));
        }
        let sw = sliced_w2(&x, &y).unwrap();
        let exact = (total / PROJECTIONS as f64).sqrt();
        assert!((sw - exact).abs() < 1e-12 * exact, "{sw} vs {exact}");
    }

    #[test]
    fn a_shifted_gaussian_scores_its_analytic_value() {
        for (dim, shift) in [(3, 1.0f32), (8, 0.5)] {
            // μ = shift in every coordinate: ‖μ‖² = d·shift², and SW2² = ‖μ‖²/d = shift².
            let exact = (shift as f64).powi(2);
            // The directions' own average of (u·μ)², within 3 standard deviations of the
            // Monte Carlo error (module docs) of the exact value.
            let dirs = directions(dim);
            let on_directions = dirs
                .chunks(dim)
                .map(|u| (u.iter().sum::<f64>() * shift as f64).powi(2))
                .sum::<f64>()
                / PROJECTIONS as f64;
            let d = dim as f64;
            let sd = (2.0 * (d - 1.0) / (d + 2.0) / PROJECTIONS as f64).sqrt();
            assert!(
                (on_directions / exact - 1.0).abs() < 3.0 * sd,
                "{on_directions}"
            );
            // Independent samples of 20,000 points: within sampling noise of that average
            // (their means differ by ~0.01 per coordinate).
            let (x, y) = (cloud(20_000, dim, 11, 0.0), cloud(20_000, dim, 12, shift));
            let sw2 = sliced_w2(&x, &y).unwrap().powi(2);
            assert!(
                (sw2 / on_directions - 1.0).abs() < 0.05,
                "d = {dim}: {sw2} vs {on_directions} (exact {exact})"
            );
            // The same points moved by μ: every projection moves by u·μ, so SW2² is the
            // directions' average to rounding.
            let moved = Points::new(dim, x.values().iter().map(|v| v + shift).collect()).unwrap();
            let sw2 = sliced_w2(&x, &moved).unwrap().powi(2);
            assert!(
                (sw2 / on_directions - 1.0).abs() < 1e-5,
                "{sw2} vs {on_directions}"
            );
        }
    }
}
