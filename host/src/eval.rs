//! How close generated points are to the Swiss roll, in numbers.
//!
//! The data lie on the curve `c(s) = (s·cos s, s·sin s)/15`, `s ∈ [1.5π, 4.5π]`, with `s`
//! uniform. Four scores:
//!
//! - **distance to the curve**, mean and 95th percentile (numpy's linear interpolation): the
//!   nearest curve point is found by dense sampling of `s` (4,096 points) and then a
//!   golden-section refinement between the neighbours of the best grid point;
//! - **energy distance** to fresh true samples, `2·E|X−Y| − E|X−X'| − E|Y−Y'|` with every
//!   expectation the mean over all pairs (the V-statistic, never negative). Its cost is O(n²),
//!   so at most [`ENERGY_CAP`] points of each side are used (the first ones: sample order is
//!   random);
//! - **coverage**: the Kolmogorov–Smirnov statistic of the nearest-curve parameters, mapped to
//!   `[0, 1]`, against the uniform distribution. Points bunched on part of the roll score high
//!   even when they sit exactly on the curve.
//!
//! Sums are in f64 so that the scores do not depend on f32 rounding of 10,000-term sums.

use std::f64::consts::PI;

use rayon::prelude::*;

/// Start of the curve parameter, 1.5π.
pub const S_MIN: f64 = 1.5 * PI;
/// End of the curve parameter, 4.5π.
pub const S_MAX: f64 = 4.5 * PI;
/// At most this many points per side enter the energy distance (4 M pairs).
pub const ENERGY_CAP: usize = 2000;
/// Grid points of the coarse nearest-point search.
const GRID: usize = 4096;
/// Golden-section iterations: the bracket shrinks by 0.618 each, to ~1e-16 of its width.
const REFINE: usize = 80;

/// Why points cannot be scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    /// Nothing to score.
    #[error("no samples to evaluate")]
    NoSamples,
    /// The energy distance needs true samples to compare with.
    #[error("no reference samples for the energy distance")]
    NoReference,
    /// A coordinate is NaN or infinite.
    #[error("sample {index} is not finite")]
    NonFinite {
        /// Position in the input.
        index: usize,
    },
}

/// The scores of a set of points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Number of points scored.
    pub samples: usize,
    /// Mean distance to the curve.
    pub mean_distance: f64,
    /// 95th percentile of the distance to the curve.
    pub p95_distance: f64,
    /// Energy distance to the reference points.
    pub energy_distance: f64,
    /// Points of each side used for the energy distance.
    pub energy_samples: usize,
    /// KS statistic of the normalized nearest-curve parameter against U(0, 1).
    pub coverage_ks: f64,
}

impl Metrics {
    /// The scores as a one-line JSON object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"samples\":{},\"mean_distance\":{},\"p95_distance\":{},\"energy_distance\":{},\"energy_samples\":{},\"coverage_ks\":{}}}",
            self.samples,
            self.mean_distance,
            self.p95_distance,
            self.energy_distance,
            self.energy_samples,
            self.coverage_ks
        )
    }
}

/// The curve point at parameter `s`.
pub fn curve(s: f64) -> [f64; 2] {
    [s * s.cos() / 15.0, s * s.sin() / 15.0]
}

/// The curve, sampled densely for the coarse search.
pub struct Spiral {
    grid: Vec<[f64; 2]>,
}

impl Default for Spiral {
    fn default() -> Self {
        Self::new()
    }
}

impl Spiral {
    /// Samples the curve at [`GRID`] evenly spaced parameters.
    pub fn new() -> Self {
        Self {
            grid: (0..GRID).map(|i| curve(Self::param(i))).collect(),
        }
    }

    fn param(i: usize) -> f64 {
        S_MIN + (S_MAX - S_MIN) * i as f64 / (GRID - 1) as f64
    }

    /// The distance from `p` to the curve and the parameter `s` of the nearest curve point.
    pub fn nearest(&self, p: [f64; 2]) -> (f64, f64) {
        let d2 = |c: [f64; 2]| (c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2);
        let best = (0..GRID)
            .min_by(|&a, &b| d2(self.grid[a]).total_cmp(&d2(self.grid[b])))
            .unwrap_or(0);
        let f = |s: f64| d2(curve(s));
        // The true minimum lies between the best grid point's neighbours (or at an end).
        let (mut lo, mut hi) = (
            Self::param(best.saturating_sub(1)),
            Self::param((best + 1).min(GRID - 1)),
        );
        let g = (5f64.sqrt() - 1.0) / 2.0;
        let (mut a, mut b) = (hi - g * (hi - lo), lo + g * (hi - lo));
        let (mut fa, mut fb) = (f(a), f(b));
        for _ in 0..REFINE {
            if fa < fb {
                hi = b;
                (b, fb) = (a, fa);
                a = hi - g * (hi - lo);
                fa = f(a);
            } else {
                lo = a;
                (a, fa) = (b, fb);
                b = lo + g * (hi - lo);
                fb = f(b);
            }
        }
        let s = (lo + hi) / 2.0;
        // An end point can be nearer than the interior minimum of the bracket.
        [(f(s), s), (f(S_MIN), S_MIN), (f(S_MAX), S_MAX)]
            .into_iter()
            .min_by(|x, y| x.0.total_cmp(&y.0))
            .map(|(d2, s)| (d2.sqrt(), s))
            .unwrap_or((f(s).sqrt(), s))
    }
}

/// The q-quantile of sorted values, interpolating linearly (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// KS statistic of values in [0, 1] against U(0, 1).
fn ks_uniform(mut u: Vec<f64>) -> f64 {
    u.sort_by(f64::total_cmp);
    let n = u.len() as f64;
    u.iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64 / n - v).max(v - i as f64 / n))
        .fold(0.0, f64::max)
}

/// Mean Euclidean distance over all pairs `(a_i, b_j)`. The row sums run in parallel but are
/// added in a fixed order: the score must not depend on how rayon split the work.
fn mean_pair_distance(a: &[[f64; 2]], b: &[[f64; 2]]) -> f64 {
    let rows: Vec<f64> = a
        .par_iter()
        .map(|p| {
            b.iter()
                .map(|q| ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt())
                .sum::<f64>()
        })
        .collect();
    rows.iter().sum::<f64>() / (a.len() * b.len()) as f64
}

/// Energy distance (V-statistic) between two point sets; rounding can take the exact
/// value 0 (identical sets) a few ulps below zero, hence the clamp.
pub fn energy_distance(x: &[[f64; 2]], y: &[[f64; 2]]) -> f64 {
    let e = 2.0 * mean_pair_distance(x, y) - mean_pair_distance(x, x) - mean_pair_distance(y, y);
    e.max(0.0)
}

fn widen(points: &[[f32; 2]]) -> Result<Vec<[f64; 2]>, EvalError> {
    points
        .iter()
        .enumerate()
        .map(|(index, p)| {
            if p.iter().all(|v| v.is_finite()) {
                Ok([p[0] as f64, p[1] as f64])
            } else {
                Err(EvalError::NonFinite { index })
            }
        })
        .collect()
}

/// Scores `samples` against the curve and against `reference`, true samples drawn
/// independently (at most [`ENERGY_CAP`] of each are used for the energy distance).
pub fn evaluate(samples: &[[f32; 2]], reference: &[[f32; 2]]) -> Result<Metrics, EvalError> {
    if samples.is_empty() {
        return Err(EvalError::NoSamples);
    }
    if reference.is_empty() {
        return Err(EvalError::NoReference);
    }
    let x = widen(samples)?;
    let y = widen(reference)?;
    let spiral = Spiral::new();
    let nearest: Vec<(f64, f64)> = x.par_iter().map(|&p| spiral.nearest(p)).collect();
    let mut distances: Vec<f64> = nearest.iter().map(|n| n.0).collect();
    let mean_distance = distances.iter().sum::<f64>() / distances.len() as f64;
    distances.sort_by(f64::total_cmp);
    let params = nearest
        .iter()
        .map(|n| (n.1 - S_MIN) / (S_MAX - S_MIN))
        .collect();
    let m = x.len().min(y.len()).min(ENERGY_CAP);
    Ok(Metrics {
        samples: x.len(),
        mean_distance,
        p95_distance: quantile(&distances, 0.95),
        energy_distance: energy_distance(&x[..m], &y[..m]),
        energy_samples: m,
        coverage_ks: ks_uniform(params),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` points on the curve at evenly spread parameters, moved `offset` along the normal.
    fn on_curve(n: usize, offset: f64) -> Vec<[f32; 2]> {
        (0..n)
            .map(|i| {
                let s = S_MIN + (S_MAX - S_MIN) * (i as f64 + 0.5) / n as f64;
                // c'(s) = (cos s − s sin s, sin s + s cos s)/15; the normal is it turned 90°.
                let (dx, dy) = (s.cos() - s * s.sin(), s.sin() + s * s.cos());
                let len = dx.hypot(dy);
                let c = curve(s);
                [
                    (c[0] - offset * dy / len) as f32,
                    (c[1] + offset * dx / len) as f32,
                ]
            })
            .collect()
    }

    #[test]
    fn points_on_the_curve_score_zero_distance_and_even_coverage() {
        let pts = on_curve(1000, 0.0);
        let m = evaluate(&pts, &pts).unwrap();
        assert!(m.mean_distance < 1e-6, "{m:?}");
        assert!(m.p95_distance < 1e-6, "{m:?}");
        assert_eq!(m.energy_distance, 0.0);
        // Evenly spread parameters: the KS statistic is 1/(2n) up to f32 rounding.
        assert!((m.coverage_ks - 0.0005).abs() < 1e-4, "{m:?}");
    }

    #[test]
    fn distance_is_the_normal_offset() {
        // 0.05 is far below half the gap between turns of the roll (≥ 0.6).
        let pts = on_curve(500, 0.05);
        let m = evaluate(&pts, &on_curve(500, 0.0)).unwrap();
        assert!((m.mean_distance - 0.05).abs() < 1e-6, "{m:?}");
        assert!((m.p95_distance - 0.05).abs() < 1e-6, "{m:?}");
    }

    #[test]
    fn points_off_the_roll_score_badly() {
        let shifted: Vec<[f32; 2]> = on_curve(800, 0.0)
            .iter()
            .map(|p| [p[0] + 3.0, p[1] - 2.0])
            .collect();
        let m = evaluate(&shifted, &on_curve(800, 0.0)).unwrap();
        assert!(m.mean_distance > 1.0, "{m:?}");
        assert!(m.energy_distance > 1.0, "{m:?}");
        // All on one end of the roll: coverage far from uniform.
        let bunched: Vec<[f32; 2]> = (0..300).map(|_| curve(S_MIN).map(|v| v as f32)).collect();
        let m = evaluate(&bunched, &on_curve(300, 0.0)).unwrap();
        assert!(m.coverage_ks > 0.99, "{m:?}");
    }

    #[test]
    fn nearest_point_beats_a_brute_force_search() {
        let spiral = Spiral::new();
        let fine: Vec<(f64, [f64; 2])> = (0..200_000)
            .map(|i| {
                let s = S_MIN + (S_MAX - S_MIN) * i as f64 / 199_999.0;
                (s, curve(s))
            })
            .collect();
        for p in [
            [0.0, 0.0],
            [0.3, -0.2],
            [1.2, 0.9],
            [-0.7, 0.05],
            [5.0, 5.0],
        ] {
            let brute = fine
                .iter()
                .map(|(_, c)| (c[0] - p[0]).hypot(c[1] - p[1]))
                .fold(f64::INFINITY, f64::min);
            let (d, _) = spiral.nearest(p);
            assert!(
                d <= brute + 1e-12 && d > brute - 1e-6,
                "{p:?}: {d} vs {brute}"
            );
        }
    }

    #[test]
    fn quantile_and_ks_match_hand_computed_values() {
        assert_eq!(quantile(&[0.0, 1.0, 2.0, 3.0, 4.0], 0.95), 3.8);
        assert_eq!(quantile(&[2.0], 0.95), 2.0);
        assert!((ks_uniform(vec![0.5, 0.5]) - 0.5).abs() < 1e-15);
        assert_eq!(evaluate(&[], &[[0.0, 0.0]]), Err(EvalError::NoSamples));
        assert_eq!(
            evaluate(&[[f32::NAN, 0.0]], &[[0.0, 0.0]]),
            Err(EvalError::NonFinite { index: 0 })
        );
    }
}
