//! How close generated points are to the Swiss roll, in numbers.
//!
//! The data lie on the curve `c(s) = (s·cos s, s·sin s)/15`, `s ∈ [1.5π, 4.5π]`, with `s`
//! uniform. Four scores:
//!
//! - **distance to the curve**, mean and 95th percentile (numpy's linear interpolation): the
//!   nearest curve point comes from [`nearest`], which finds every local minimum of the
//!   distance along the spiral by a bracketed Newton iteration (see there);
//! - **energy distance** to fresh true samples, `2·E|X−Y| − E|X−X'| − E|Y−Y'|` with every
//!   expectation the mean over all pairs (the V-statistic, never negative), computed by the
//!   generic scores' tiles (`crate::scores`, f32 distances, f64 sums: within ~1e-6 relative
//!   of each mean). Its cost is O(n²), so at most [`ENERGY_CAP`] points of each side are
//!   used (the first ones: sample order is random);
//! - **coverage**: the Kolmogorov–Smirnov statistic of the nearest-curve parameters, mapped to
//!   `[0, 1]`, against the uniform distribution. Points bunched on part of the roll score high
//!   even when they sit exactly on the curve.
//!
//! Sums are in f64 so that the scores do not depend on f32 rounding of 10,000-term sums, and
//! every parallel sum adds fixed-size chunks in input order, so the scores are the same bits
//! for any number of threads.

use std::f64::consts::{FRAC_PI_2, PI, TAU};
use std::sync::LazyLock;

use rayon::prelude::*;

use crate::scores::{self, Points};

/// Start of the curve parameter, 1.5π.
pub const S_MIN: f64 = 1.5 * PI;
/// End of the curve parameter, 4.5π.
pub const S_MAX: f64 = 4.5 * PI;
/// At most this many points per side enter the energy distance (4 M pairs).
pub const ENERGY_CAP: usize = 2000;
/// Grid points of [`GridSearch`]'s coarse scan.
const GRID: usize = 4096;
/// Golden-section iterations of [`GridSearch`]: the bracket shrinks by 0.618 each, to ~1e-16
/// of its width.
const REFINE: usize = 80;
/// Points per partial sum: the mean distance adds these partial sums in input order, so it
/// does not depend on how rayon splits the work.
const CHUNK: usize = 4096;
/// Width in `s` of the stretch before each rising arc of `h` (see [`nearest`]) that is
/// searched for a valley minimum: wider than the valley's offset from the arc, at most
/// `k'/ψ' ≤ 1/(R·(1 + S_MIN²)^{3/2}) < 0.0093` for the radii that reach that search, and
/// narrow enough that `h'' ≈ −sin ψ > 0.99` keeps `h` convex on it.
const VALLEY: f64 = 0.05;
/// Width in `s` of the bracket from a point of a rising arc where `h < 0` (see
/// [`Polar::rising_zero`]): ψ advances by `RISE·ψ' ∈ (1.607, 1.67)`, past π/2 from the
/// arc's start, and not past π from its middle.
const RISE: f64 = 1.6;
/// Newton iterations allowed per root; bisection steps guarantee convergence in ~60.
const MAX_NEWTON: usize = 100;

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
        format!("{{{}}}", self.json_fields())
    }

    /// The scores as the fields of a JSON object (no braces), to join others.
    pub fn json_fields(&self) -> String {
        format!(
            "\"samples\":{},\"mean_distance\":{},\"p95_distance\":{},\"energy_distance\":{},\"energy_samples\":{},\"coverage_ks\":{}",
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

/// Squared distance from `p` to the curve point at `s`.
fn distance2(p: [f64; 2], s: f64) -> f64 {
    let c = curve(s);
    (c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2)
}

/// The distance from `p` to the curve and the parameter `s` of the nearest curve point.
///
/// In units of 1/15, with `15·p = R·e^{iφ}`, the squared distance is `F(s)/225`,
/// `F(s) = s² − 2sR·cos θ + R²`, `θ = s − φ`, and
///
/// `F'(s)/2 = G(s) = s + R·(s·sin θ − cos θ) = R·√(1+s²)·h(s)`,
/// `h = sin ψ + k`, `ψ = θ − atan(1/s)`, `k = s/(R·√(1+s²))`.
///
/// `ψ` rises with `s` (`ψ' = 1 + 1/(1+s²) ∈ (1.004, 1.044)` on the range), `k` rises slowly
/// (`k' = 1/(R·(1+s²)^{3/2})`), and the local minima of `F` are the rising zeros of `h`:
///
/// - if `k(S_MIN) ≥ 1`, `h > 0` on the whole range (`R < 0.98`, the hole of the roll): the
///   start is nearest;
/// - on a *rising arc* `ψ ∈ [2πm − π/2, 2πm + π/2]`, `h' = ψ'·cos ψ + k' > 0`, and
///   `h > k > 0` where `sin ψ > 0`: at most one zero, at `ψ ≤ 2πm`, which Newton's method
///   finds inside the bracket when `h < 0` at the arc's start;
/// - on the rest, `ψ ∈ [π, 3π/2]` (mod 2π), `h` falls, except within `k'/ψ' < 0.01` of the
///   next rising arc, where `h` is convex and can dip below zero and rise again before the
///   arc starts. That needs `h ≥ 0` at the arc's start, where `h = k − 1`: only then is the
///   stretch of width `VALLEY` (0.05) before the arc searched for the minimum of `h`.
///
/// The result is the nearest of those local minima and the two ends; a turn whose
/// candidates all lie farther than the best so far (`F(s) ≥ (s − R)²`) is skipped. Newton's
/// method on `G` converges to the rounding level of `G`, so the parameter is exact to
/// ~1e-15 even where the distance is flat in `s` (a minimizer of the distance stops at ~1e-8
/// there). `p` must be finite (for NaN or infinite coordinates the result is meaningless).
pub fn nearest(p: [f64; 2]) -> (f64, f64) {
    let ends = &*ENDS;
    let d2 = |c: [f64; 2]| (c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2);
    let mut best = (d2(ends.point[0]), S_MIN);
    let at_max = d2(ends.point[1]);
    if at_max < best.0 {
        best = (at_max, S_MAX);
    }
    let pt = Polar {
        r: 15.0 * p[0].hypot(p[1]),
        phi: p[1].atan2(p[0]),
    };
    // k(S_MIN) ≥ 1, written without dividing by r (which may be 0).
    if pt.r * (1.0 + S_MIN * S_MIN).sqrt() <= S_MIN {
        return (best.0.sqrt(), best.1);
    }
    let psi = [ends.phase[0] - pt.phi, ends.phase[1] - pt.phi];
    // The first arc that ends after the range starts; the range spans 3π + 0.14 of ψ, so
    // the third one after it starts beyond the range's end and its valley.
    let first = ((psi[0] - FRAC_PI_2) / TAU).ceil() as i64;
    let mut arcs = [first, first + 1, first + 2].map(|m| (pt.lower_bound(m), m));
    arcs.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (bound, m) in arcs {
        if bound >= 225.0 * best.0 {
            break;
        }
        if let Some(s) = pt.arc_minimum(m, psi) {
            let d = distance2(p, s);
            if d < best.0 {
                best = (d, s);
            }
        }
    }
    (best.0.sqrt(), best.1)
}

/// What [`nearest`] needs of the curve's ends, computed once: their phases and points.
struct Ends {
    phase: [f64; 2],
    point: [[f64; 2]; 2],
}

static ENDS: LazyLock<Ends> = LazyLock::new(|| Ends {
    phase: [phase(S_MIN), phase(S_MAX)],
    point: [curve(S_MIN), curve(S_MAX)],
});

/// `ψ + φ` as a function of `s` (see [`nearest`]).
fn phase(s: f64) -> f64 {
    s - (1.0 / s).atan()
}

/// The `s` with `phase(s) = v`, to ~1e-6 for `v > 4` (the brackets of [`nearest`] allow
/// 1e-3): `v + atan(1/v)` is off by less than `0.21/(1+v²) < 0.01`, and `phase` is so
/// nearly linear (`phase'' < 0.02`) that one Newton step takes that below 1e-6.
fn phase_inverse(v: f64) -> f64 {
    let s = v + (1.0 / v).atan();
    s - (phase(s) - v) / (1.0 + 1.0 / (1.0 + s * s))
}

/// A point in the spiral's own units: `15·p = r·e^{iφ}`.
struct Polar {
    r: f64,
    phi: f64,
}

impl Polar {
    /// `G(s)` and `G'(s)`, the half-derivatives of the scaled squared distance.
    fn g(&self, s: f64) -> (f64, f64) {
        let (sin, cos) = (s - self.phi).sin_cos();
        (
            s + self.r * (s * sin - cos),
            1.0 + self.r * (2.0 * sin + s * cos),
        )
    }

    /// `h'(s)` and `h''(s)`, to find the bottom of a valley of `h`.
    fn dh(&self, s: f64) -> (f64, f64) {
        let q = 1.0 + s * s;
        let (sin, cos) = (s - self.phi - (1.0 / s).atan()).sin_cos();
        let dpsi = 1.0 + 1.0 / q;
        let ddpsi = -2.0 * s / (q * q);
        let dk = 1.0 / (self.r * q * q.sqrt());
        let ddk = -3.0 * s * dk / q;
        (dpsi * cos + dk, -dpsi * dpsi * sin + ddpsi * cos + ddk)
    }

    /// A lower bound of the scaled squared distance `F` at the candidates of arc `m`: they
    /// lie at `ψ ∈ [2πm − π/2 − 1.05·VALLEY, 2πm]`, where `s = ψ + φ + atan(1/s)` and
    /// `atan(1/s) ∈ (0.07, 0.21)` on the range; `F(s) ≥ (s − R)²`. Infinite for an arc that
    /// has no candidate in the range.
    fn lower_bound(&self, m: i64) -> f64 {
        let at = TAU * m as f64 + self.phi;
        let lo = (at - FRAC_PI_2 - 1.05 * VALLEY + 0.07).max(S_MIN);
        let hi = (at + 0.21).min(S_MAX);
        if lo > hi {
            return f64::INFINITY;
        }
        (lo - self.r).max(self.r - hi).max(0.0).powi(2)
    }

    /// The local minimum of `F` that belongs to arc `m` (its rising zero of `h`, or the one
    /// in the valley before it), if there is one in the range; `psi` is ψ at the range's ends.
    fn arc_minimum(&self, m: i64, psi: [f64; 2]) -> Option<f64> {
        let arc_start = TAU * m as f64 - FRAC_PI_2;
        if arc_start <= psi[0] {
            // The arc began before the range: h rises from the range's start on.
            return self.rising_zero(S_MIN, psi[0] - arc_start, self.g(S_MIN).0);
        }
        let start = phase_inverse(arc_start + self.phi).max(S_MIN);
        let g_start = self.g(start).0;
        if g_start < 0.0 {
            return (arc_start < psi[1])
                .then(|| self.rising_zero(start, 0.0, g_start))
                .flatten();
        }
        self.valley_zero(start)
    }

    /// The zero of `h` after `a`, where ψ is `into` past the rising arc's start and `G(a)` is
    /// `g_a`. If `h(a) < 0`, `a` lies in the arc's first half; at `a + RISE` ψ lies in the
    /// second half (`h > 0`) or in the falling stretch after it (`h > 0` too, `sin ψ > 0`), or
    /// the range has ended: `h` changes sign at most once in between.
    fn rising_zero(&self, a: f64, into: f64, g_a: f64) -> Option<f64> {
        let b = (a + RISE).min(S_MAX);
        if g_a >= 0.0 || self.g(b).0 <= 0.0 {
            return None;
        }
        // h = 0 where sin ψ = −k, π/2 − asin k = acos k into the arc; k barely moves.
        let k = (a / (self.r * (1.0 + a * a).sqrt())).min(1.0);
        let guess = a + (k.acos() - into) / (1.0 + 1.0 / (1.0 + a * a));
        Some(zero_in(|s| self.g(s), a, b, guess))
    }

    /// The rising zero of `h` in the valley just before the rising arc that starts at
    /// `start`, given `h(start) ≥ 0`.
    fn valley_zero(&self, start: f64) -> Option<f64> {
        let (lo, hi) = ((start - VALLEY).max(S_MIN), start.min(S_MAX));
        if lo >= hi {
            return None;
        }
        let dh = |s: f64| self.dh(s);
        // h is convex on [lo, hi]: its minimum is an end or the zero of h'.
        let bottom = if dh(lo).0 >= 0.0 {
            lo
        } else if dh(hi).0 <= 0.0 {
            hi
        } else {
            zero_in(dh, lo, hi, hi)
        };
        (self.g(bottom).0 < 0.0 && self.g(hi).0 >= 0.0)
            .then(|| zero_in(|s| self.g(s), bottom, hi, hi))
    }
}

/// The zero of `f` (value, derivative) in `[lo, hi]`, given that `f` changes sign once there,
/// from negative to non-negative, and a first guess: Newton steps, and a bisection whenever
/// a step would leave the bracket, so that it always converges.
fn zero_in(f: impl Fn(f64) -> (f64, f64), mut lo: f64, mut hi: f64, guess: f64) -> f64 {
    let mut x = if guess > lo && guess < hi {
        guess
    } else {
        0.5 * (lo + hi)
    };
    for _ in 0..MAX_NEWTON {
        let (v, dv) = f(x);
        if v == 0.0 {
            return x;
        }
        if v < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let newton = x - v / dv;
        // A NaN step (dv = 0) fails the test too. The bracket's ends are allowed: at the last
        // steps the zero can round to one of them.
        let next = if newton >= lo && newton <= hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - x).abs() <= 2.0 * f64::EPSILON * x.abs() {
            return next;
        }
        x = next;
    }
    x
}

/// The previous nearest-point search, kept as the independent reference of [`nearest`]'s
/// tests and the baseline of `benches/eval.rs`: a scan of 4,096 curve points, then a
/// golden-section search between the neighbours of the best one. About 20 times slower
/// than [`nearest`]; it can settle on the wrong turn when two are almost equally near (its
/// coarse distances are up to ~1e-6 too large), and its parameter is only as exact as the distance is steep in `s`
/// (~1e-8 for points 0.1 away).
pub struct GridSearch {
    grid: Vec<[f64; 2]>,
}

impl Default for GridSearch {
    fn default() -> Self {
        Self::new()
    }
}

impl GridSearch {
    /// Samples the curve at 4,096 evenly spaced parameters.
    pub fn new() -> Self {
        Self::with_points(GRID)
    }

    /// Samples the curve at `n ≥ 2` evenly spaced parameters.
    pub fn with_points(n: usize) -> Self {
        Self {
            grid: (0..n).map(|i| curve(Self::param(i, n))).collect(),
        }
    }

    fn param(i: usize, n: usize) -> f64 {
        S_MIN + (S_MAX - S_MIN) * i as f64 / (n - 1) as f64
    }

    /// The distance from `p` to the curve and the parameter `s` of the nearest curve point.
    pub fn nearest(&self, p: [f64; 2]) -> (f64, f64) {
        let d2 = |c: [f64; 2]| (c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2);
        let n = self.grid.len();
        let best = (0..n)
            .min_by(|&a, &b| d2(self.grid[a]).total_cmp(&d2(self.grid[b])))
            .unwrap_or(0);
        let f = |s: f64| distance2(p, s);
        // The true minimum lies between the best grid point's neighbours (or at an end).
        let (mut lo, mut hi) = (
            Self::param(best.saturating_sub(1), n),
            Self::param((best + 1).min(n - 1), n),
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
    u.par_sort_unstable_by(f64::total_cmp);
    let n = u.len() as f64;
    u.iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64 / n - v).max(v - i as f64 / n))
        .fold(0.0, f64::max)
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

/// 2-D points that [`widen`] found finite.
fn pairs(points: &[[f32; 2]]) -> Points {
    Points::trusted(2, points.iter().flatten().copied().collect())
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
    let (mut distances, params): (Vec<f64>, Vec<f64>) = x
        .par_iter()
        .map(|&p| {
            let (d, s) = nearest(p);
            (d, (s - S_MIN) / (S_MAX - S_MIN))
        })
        .unzip();
    let chunk_sums: Vec<f64> = distances
        .par_chunks(CHUNK)
        .map(|c| c.iter().sum::<f64>())
        .collect();
    let mean_distance = chunk_sums.iter().sum::<f64>() / distances.len() as f64;
    distances.par_sort_unstable_by(f64::total_cmp);
    let m = x.len().min(y.len()).min(ENERGY_CAP);
    Ok(Metrics {
        samples: x.len(),
        mean_distance,
        p95_distance: quantile(&distances, 0.95),
        energy_distance: scores::energy_distance(&pairs(&samples[..m]), &pairs(&reference[..m])),
        energy_samples: m,
        coverage_ks: ks_uniform(params),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

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
            let (d, _) = nearest(p);
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

    /// A uniform in [lo, hi).
    fn uniform(rng: &mut Xoshiro256PlusPlus, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The point at radius `r` and angle `a`.
    fn polar(r: f64, a: f64) -> [f64; 2] {
        [r * a.cos(), r * a.sin()]
    }

    /// Points of every kind the search must handle: a box around the roll, the hole in its
    /// middle (with the radii near 1/15 where `h` can dip just before a rising arc), far away,
    /// exactly on the curve, around and beyond both ends, and midway between two turns.
    fn test_points() -> Vec<[f64; 2]> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(10);
        let r = &mut rng;
        let mut pts = Vec::new();
        for _ in 0..100_000 {
            pts.push([uniform(r, -1.2, 1.2), uniform(r, -1.2, 1.2)]);
        }
        for _ in 0..40_000 {
            let radius = uniform(r, 0.0, 0.35);
            pts.push(polar(radius, uniform(r, -PI, PI)));
        }
        for _ in 0..20_000 {
            let radius = uniform(r, 0.96, 1.01) / 15.0;
            pts.push(polar(radius, uniform(r, -PI, PI)));
        }
        for _ in 0..20_000 {
            let radius = 10f64.powf(uniform(r, 0.0, 6.0));
            pts.push(polar(radius, uniform(r, -PI, PI)));
        }
        for _ in 0..40_000 {
            pts.push(curve(uniform(r, S_MIN, S_MAX)));
        }
        for end in [S_MIN, S_MAX] {
            let c = curve(end);
            for _ in 0..20_000 {
                pts.push([c[0] + uniform(r, -0.2, 0.2), c[1] + uniform(r, -0.2, 0.2)]);
            }
            // Along the curve's continuation beyond the end, and the end itself.
            for _ in 0..5_000 {
                let s = if end == S_MIN {
                    uniform(r, S_MIN - 1.0, S_MIN)
                } else {
                    uniform(r, S_MAX, S_MAX + 1.0)
                };
                pts.push(curve(s));
            }
            pts.push(c);
        }
        for _ in 0..40_000 {
            // Half a turn outwards from the curve point at s: between two turns.
            let s = uniform(r, S_MIN - PI, S_MAX);
            let jitter = uniform(r, -1e-3, 1e-3);
            pts.push(polar((s + PI) / 15.0 + jitter, s));
        }
        pts.extend([
            [0.0, 0.0],
            [1e-300, 0.0],
            [-3e30, 1e30],
            [f32::MAX as f64, 0.0],
        ]);
        pts
    }

    /// The reference's parameter made exact: bisection on the sign of `(c(s) − p)·c'(s)` (the
    /// half-derivative of the squared distance) within 1e-3 of it, where that changes sign,
    /// or the end of the curve within 1e-3 where the distance rises from it.
    /// The golden-section search compares distances, which are flat at the minimum, so its
    /// parameter is only good to ~√(ε·d²/F''): ~1e-8 for d = 0.1, ~1e-5 a million away.
    fn polish(p: [f64; 2], s: f64) -> f64 {
        let slope = |s: f64| {
            let c = curve(s);
            let (sin, cos) = s.sin_cos();
            (c[0] - p[0]) * (cos - s * sin) + (c[1] - p[1]) * (sin + s * cos)
        };
        let (mut lo, mut hi) = ((s - 1e-3).max(S_MIN), (s + 1e-3).min(S_MAX));
        // The distance rises from an end: the minimum is the end.
        if lo == S_MIN && slope(lo) >= 0.0 {
            return S_MIN;
        }
        if hi == S_MAX && slope(hi) <= 0.0 {
            return S_MAX;
        }
        if !(slope(lo) < 0.0 && slope(hi) > 0.0) {
            return s;
        }
        loop {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                return mid;
            }
            if slope(mid) < 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }

    /// Samples like a model's: true samples moved by up to ±0.1 in each coordinate, and one
    /// in a hundred anywhere in [−2, 2]².
    fn model_like(n: usize, seed: u64) -> Vec<[f32; 2]> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        crate::data::true_samples(crate::data::DataSet::SwissRoll, n, seed)
            .into_iter()
            .map(|p| {
                let r = &mut rng;
                if r.next_u32() % 100 == 0 {
                    [uniform(r, -2.0, 2.0) as f32, uniform(r, -2.0, 2.0) as f32]
                } else {
                    [
                        p[0] + uniform(r, -0.1, 0.1) as f32,
                        p[1] + uniform(r, -0.1, 0.1) as f32,
                    ]
                }
            })
            .collect()
    }

    #[test]
    fn scores_match_the_grid_search_and_a_sequential_sum() {
        let samples = model_like(200_003, 3);
        let m = evaluate(
            &samples,
            &crate::data::true_samples(crate::data::DataSet::SwissRoll, ENERGY_CAP, 4),
        )
        .unwrap();
        // The previous implementation: grid search, one sequential sum, full sorts.
        let grid = GridSearch::new();
        let found: Vec<(f64, f64)> = samples
            .par_iter()
            .map(|p| grid.nearest([p[0] as f64, p[1] as f64]))
            .collect();
        let mut distances: Vec<f64> = found.iter().map(|f| f.0).collect();
        let mean = distances.iter().sum::<f64>() / distances.len() as f64;
        distances.sort_by(f64::total_cmp);
        let mut u: Vec<f64> = found
            .iter()
            .map(|f| (f.1 - S_MIN) / (S_MAX - S_MIN))
            .collect();
        u.sort_by(f64::total_cmp);
        let n = u.len() as f64;
        let ks = u
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i + 1) as f64 / n - v).max(v - i as f64 / n))
            .fold(0.0, f64::max);
        let p95 = quantile(&distances, 0.95);
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        eprintln!(
            "relative differences: mean {:e}, p95 {:e}, KS {:e} (KS {ks})",
            rel(m.mean_distance, mean),
            rel(m.p95_distance, p95),
            rel(m.coverage_ks, ks)
        );
        assert!(rel(m.mean_distance, mean) < 1e-12, "{m:?} vs {mean}");
        assert!(rel(m.p95_distance, p95) < 1e-12, "{m:?} vs {p95}");
        assert!(rel(m.coverage_ks, ks) < 1e-12, "{m:?} vs {ks}");
    }

    #[test]
    fn scores_do_not_depend_on_the_thread_count() {
        let samples = model_like(100_000, 5);
        let reference = crate::data::true_samples(crate::data::DataSet::SwissRoll, ENERGY_CAP, 6);
        let bits = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let m = pool.install(|| evaluate(&samples, &reference)).unwrap();
            [
                m.mean_distance,
                m.p95_distance,
                m.energy_distance,
                m.coverage_ks,
            ]
            .map(f64::to_bits)
        };
        assert_eq!(bits(1), bits(3));
    }

    #[test]
    fn a_dip_of_h_before_a_rising_arc_is_found() {
        // A point about 1/15 from the centre whose h (see `nearest`) has its valley bottom
        // 0.004 after the start of the curve, 2e-5 below zero, while h ≥ 0 where the next
        // rising arc starts: the nearest point is the rising zero inside the valley, closer
        // than the start of the curve.
        let s_v = S_MIN + 0.004;
        let q = 1.0 + s_v * s_v;
        let mut r = 1.0;
        let (mut psi_v, mut k_v) = (0.0, 0.0);
        for _ in 0..20 {
            // The bottom: h' = ψ'·cos ψ + k' = 0 with cos ψ < 0, sin ψ < 0; there h = −2e-5.
            let slope_ratio = 1.0 / (r * q * q.sqrt()) / (1.0 + 1.0 / q);
            psi_v = -FRAC_PI_2 - slope_ratio.asin();
            k_v = -2e-5 - psi_v.sin();
            r = s_v / (q.sqrt() * k_v);
        }
        let phi = s_v - (1.0 / s_v).atan() - psi_v;
        let p = [r * phi.cos() / 15.0, r * phi.sin() / 15.0];
        // The rising arc starts 2e-5/ψ'' ≈ 0.009 later, where h = k − 1 ≥ 0.
        let start = phase_inverse(phi - FRAC_PI_2);
        assert!(start > s_v && start - s_v < VALLEY, "{start}");
        assert!(start / ((1.0 + start * start).sqrt() * r) >= 1.0, "{k_v}");

        let (d, s) = nearest(p);
        let (d_ref, s_ref) = GridSearch::with_points(GRID << 8).nearest(p);
        assert!(s > S_MIN + 0.004 && s < start, "{s}");
        assert!(distance2(p, S_MIN).sqrt() - d > 1e-9, "{d}");
        assert!((d - d_ref).abs() < 1e-12, "{d} vs {d_ref}");
        assert!((s - polish(p, s_ref)).abs() < 1e-12 * s, "{s} vs {s_ref}");
    }

    #[test]
    fn nearest_matches_the_grid_search_on_every_kind_of_point() {
        let grid = GridSearch::new();
        let pts = test_points();
        let found: Vec<((f64, f64), (f64, f64))> = pts
            .par_iter()
            .map(|&p| (nearest(p), grid.nearest(p)))
            .collect();
        let (mut max_dd, mut max_ds, mut max_ds_raw) = (0.0f64, 0.0f64, 0.0f64);
        let (mut ties, mut worse_turn) = (0, 0);
        for (&p, &((d, s), (mut d_ref, mut s_ref))) in pts.iter().zip(&found) {
            let tol = 1e-12 * d_ref.max(1.0);
            assert!(d <= d_ref + tol, "{p:?}: distance {d} vs {d_ref}");
            if d < d_ref - tol {
                // The grid's best point can lie on the wrong turn when two turns are nearly
                // equally far (its coarse distances are up to ~1e-6 too large): ask a grid
                // 256 times finer.
                worse_turn += 1;
                (d_ref, s_ref) = GridSearch::with_points(GRID << 8).nearest(p);
                assert!((d - d_ref).abs() <= tol, "{p:?}: distance {d} vs {d_ref}");
            }
            max_dd = max_dd.max((d - d_ref).abs() / d_ref.max(1.0));
            if (s - s_ref).abs() > 1e-3 {
                // Two nearest points at the same distance: either parameter is right.
                ties += 1;
                continue;
            }
            max_ds_raw = max_ds_raw.max((s - s_ref).abs());
            let exact = polish(p, s_ref);
            let ds = (s - exact).abs();
            assert!(
                ds <= 1e-12 * exact,
                "{p:?}: parameter {s} vs {exact} (golden section: {s_ref})"
            );
            max_ds = max_ds.max(ds);
        }
        eprintln!(
            "{} points: max |Δd|/max(d, 1) = {max_dd:e}; max |Δs| = {max_ds:e} against the \
             polished reference parameter ({max_ds_raw:e} against the golden section's); \
             {ties} equidistant from two turns; {worse_turn} where the grid chose the wrong turn",
            pts.len()
        );
    }
}
