//! Scores between two clouds of points of any width `d` (1 to [`MAX_DIM`]) that need no
//! model of the data: generated samples against reference points.
//!
//! - **sliced Wasserstein-2** over [`PROJECTIONS`] fixed directions (`sliced`);
//! - **MMD²**, Gaussian kernel, bandwidth by the median heuristic, unbiased (`mmd`);
//! - **energy distance**, V-statistic (`energy`);
//! - **precision, recall, density, coverage** of k-nearest-neighbour balls, `k` = [`K`]
//!   (`prdc`).
//!
//! At most [`MAX_POINTS`] points of each side, evenly spread over it, are scored: the
//! pairwise scores cost O(n·m), about 1 s of CPU time for 10,000 × 10,000 points
//! (`benches/scores.rs`). They share
//! the tiles of squared distances of three passes (`pairs`): real × real, fake × fake and
//! real × fake. Every score is the same bits for any number of threads (see `tiles`).

pub mod adherence;
mod energy;
mod mmd;
mod pairs;
mod points;
mod prdc;
mod sliced;
mod tiles;

pub use adherence::{Adherence, AdherenceError, NEIGHBOURS};
pub(crate) use energy::energy_distance;
pub use mmd::BANDWIDTH_POINTS;
pub use points::{MAX_DIM, Points, PointsError};
pub use prdc::K;
pub use sliced::{PROJECTIONS, sliced_w2};

use pairs::{cross_pass, self_pass};

/// The most points of each side that [`compare`] scores.
pub const MAX_POINTS: usize = 10_000;

/// Why two sets of points cannot be compared.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScoresError {
    /// The sets have points of different widths.
    #[error("the reference points have {reference} coordinates, the samples {samples}")]
    Width {
        /// Coordinates of a sample.
        samples: usize,
        /// Coordinates of a reference point.
        reference: usize,
    },
    /// A set has too few points for a score.
    #[error("{which}: {found} point(s); at least {need} are needed")]
    TooFew {
        /// "samples" or "reference".
        which: &'static str,
        /// Points given.
        found: usize,
        /// Points needed.
        need: usize,
    },
}

/// The scores of samples against reference points (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Coordinates per point.
    pub dim: usize,
    /// Samples scored (at most [`MAX_POINTS`]).
    pub samples: usize,
    /// Reference points scored (at most [`MAX_POINTS`]).
    pub reference: usize,
    /// Sliced Wasserstein-2 distance.
    pub sliced_w2: f64,
    /// MMD², unbiased (can be slightly negative).
    pub mmd2: f64,
    /// The kernel's bandwidth σ.
    pub bandwidth: f64,
    /// Energy distance (V-statistic).
    pub energy: f64,
    /// Share of samples inside some reference point's k-NN ball.
    pub precision: f64,
    /// Share of reference points inside some sample's k-NN ball.
    pub recall: f64,
    /// Reference balls holding a sample, per sample, over k.
    pub density: f64,
    /// Share of reference points whose ball holds a sample.
    pub coverage: f64,
}

impl Scores {
    /// The scores as the fields of a JSON object (no braces), to stand alone or join
    /// others.
    pub fn json_fields(&self) -> String {
        format!(
            "\"dim\":{},\"scored_samples\":{},\"scored_reference\":{},\"sliced_w2\":{},\
             \"projections\":{PROJECTIONS},\"mmd2\":{},\"bandwidth\":{},\"energy\":{},\"k\":{K},\
             \"precision\":{},\"recall\":{},\"density\":{},\"coverage\":{}",
            self.dim,
            self.samples,
            self.reference,
            self.sliced_w2,
            self.mmd2,
            self.bandwidth,
            self.energy,
            self.precision,
            self.recall,
            self.density,
            self.coverage
        )
    }
}

/// Scores `samples` (the "fake" points) against `reference` (the "real" ones): at most
/// [`MAX_POINTS`] of each, evenly spread. Each needs `K + 1` points (a radius is the
/// distance to the `K`-th other point), and both the same width.
pub fn compare(samples: &Points, reference: &Points) -> Result<Scores, ScoresError> {
    check(samples, reference, K + 1)?;
    let fake = samples.spread(MAX_POINTS);
    let real = reference.spread(MAX_POINTS);
    let sliced_w2 = sliced_w2(&fake, &real)?;
    let scale = tiles::unit_scale(&[&fake, &real]);
    let (x, y) = (real.scaled(scale), fake.scaled(scale));
    let sigma = mmd::bandwidth(&x, &y);
    let gamma = mmd::gamma(sigma);
    let xx = self_pass(&x, gamma);
    let yy = self_pass(&y, gamma);
    let xy = cross_pass(&x, &y, gamma, &xx.radius2, &yy.radius2);
    let (n, m) = (x.len(), y.len());
    Ok(Scores {
        dim: x.dim(),
        samples: m,
        reference: n,
        sliced_w2,
        mmd2: mmd::from_sums([xy.kernel, xx.kernel, yy.kernel], n, m),
        bandwidth: sigma / scale,
        energy: energy::from_sums([xy.distance, xx.distance, yy.distance], n, m) / scale,
        precision: xy.precise as f64 / m as f64,
        recall: xy.recalled as f64 / n as f64,
        density: xy.inside as f64 / (K * m) as f64,
        coverage: xy.covered as f64 / n as f64,
    })
}

/// Both sets of one width, and at least `need` points each.
fn check(samples: &Points, reference: &Points, need: usize) -> Result<(), ScoresError> {
    if samples.dim() != reference.dim() {
        return Err(ScoresError::Width {
            samples: samples.dim(),
            reference: reference.dim(),
        });
    }
    for (which, set) in [("samples", samples), ("reference", reference)] {
        if set.len() < need {
            return Err(ScoresError::TooFew {
                which,
                found: set.len(),
                need,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` points of N(shift·1, I) in `dim` coordinates ([`Points::gaussian`]).
    pub(crate) fn cloud(n: usize, dim: usize, seed: u64, shift: f32) -> Points {
        Points::gaussian(n, dim, seed, shift).unwrap()
    }

    /// `‖p − q‖` in f64, the plain way.
    #[allow(clippy::needless_range_loop)] // index loops on purpose: the plainest reference
    pub(crate) fn naive_distance(p: &[f32], q: &[f32]) -> f64 {
        let mut s = 0.0f64;
        for k in 0..p.len() {
            s += (p[k] as f64 - q[k] as f64) * (p[k] as f64 - q[k] as f64);
        }
        s.sqrt()
    }

    /// Every score by double loops in f64, `sigma` given; the k-NN radius from a full sort.
    /// Also the smallest relative gap between a distance and a radius it was compared with.
    #[allow(clippy::needless_range_loop)] // index loops on purpose: the plainest reference
    fn reference_scores(fake: &Points, real: &Points, sigma: f64) -> ([f64; 6], f64) {
        let (n, m) = (real.len(), fake.len());
        let d = |a: &Points, i: usize, b: &Points, j: usize| naive_distance(a.row(i), b.row(j));
        let radius = |p: &Points, i: usize| {
            let mut all: Vec<f64> = (0..p.len())
                .filter(|&j| j != i)
                .map(|j| d(p, i, p, j))
                .collect();
            all.sort_by(f64::total_cmp);
            all[K - 1]
        };
        let r: Vec<f64> = (0..n).map(|i| radius(real, i)).collect();
        let s: Vec<f64> = (0..m).map(|j| radius(fake, j)).collect();
        let k = |t: f64| (-t * t / (2.0 * sigma * sigma)).exp();
        let (mut kxx, mut kyy, mut kxy) = (0.0, 0.0, 0.0);
        let (mut exx, mut eyy, mut exy) = (0.0, 0.0, 0.0);
        for i in 0..n {
            for i2 in 0..n {
                exx += d(real, i, real, i2);
                if i != i2 {
                    kxx += k(d(real, i, real, i2));
                }
            }
        }
        for j in 0..m {
            for j2 in 0..m {
                eyy += d(fake, j, fake, j2);
                if j != j2 {
                    kyy += k(d(fake, j, fake, j2));
                }
            }
        }
        let (mut precise, mut recalled, mut covered, mut inside) = (0, 0, 0, 0);
        let mut gap = f64::INFINITY;
        for i in 0..n {
            for j in 0..m {
                let t = d(real, i, fake, j);
                exy += t;
                kxy += k(t);
                gap = gap
                    .min((t - r[i]).abs() / r[i])
                    .min((t - s[j]).abs() / s[j]);
            }
        }
        for j in 0..m {
            let c = (0..n).filter(|&i| d(real, i, fake, j) < r[i]).count();
            inside += c;
            precise += usize::from(c > 0);
        }
        for i in 0..n {
            recalled += usize::from((0..m).any(|j| d(real, i, fake, j) < s[j]));
            covered += usize::from((0..m).any(|j| d(real, i, fake, j) < r[i]));
        }
        let (nf, mf) = (n as f64, m as f64);
        let mmd2 = kxx / (nf * (nf - 1.0)) + kyy / (mf * (mf - 1.0)) - 2.0 * kxy / (nf * mf);
        let energy = 2.0 * exy / (nf * mf) - exx / (nf * nf) - eyy / (mf * mf);
        let scores = [
            mmd2,
            energy,
            precise as f64 / mf,
            recalled as f64 / nf,
            inside as f64 / (K as f64 * mf),
            covered as f64 / nf,
        ];
        (scores, gap)
    }

    #[test]
    fn scores_match_double_loops_in_f64() {
        for (dim, shift) in [(1, 0.3), (3, 0.5), (16, 0.2)] {
            let (fake, real) = (cloud(40, dim, 21, shift), cloud(50, dim, 22, 0.0));
            let got = compare(&fake, &real).unwrap();
            let (want, gap) = reference_scores(&fake, &real, got.bandwidth);
            // No distance lies within 1e-5 of a radius it is compared with, so the f32
            // comparisons (error ~1e-6 relative) decide as the f64 ones: counts are equal.
            assert!(
                gap > 1e-5,
                "d = {dim}: a near tie ({gap:e}) makes the test unfair"
            );
            let [mmd2, energy, precision, recall, density, coverage] = want;
            eprintln!("d = {dim}: {got:?}\nreference {want:?}");
            assert!(
                (got.mmd2 - mmd2).abs() < 1e-6,
                "d = {dim}: {} vs {mmd2}",
                got.mmd2
            );
            assert!(
                (got.energy - energy).abs() < 1e-6 * energy.max(1.0),
                "{}",
                got.energy
            );
            assert_eq!(
                [got.precision, got.recall, got.density, got.coverage],
                [precision, recall, density, coverage],
                "d = {dim}"
            );
            assert_eq!(got.sliced_w2, sliced_w2(&fake, &real).unwrap());
            assert_eq!((got.dim, got.samples, got.reference), (dim, 40, 50));
        }
    }

    #[test]
    fn one_distribution_scores_near_zero_and_full_balls() {
        let (fake, real) = (cloud(3000, 3, 31, 0.0), cloud(3000, 3, 32, 0.0));
        let s = compare(&fake, &real).unwrap();
        eprintln!("{s:?}");
        assert!(s.sliced_w2 < 0.05, "{s:?}");
        assert!(s.energy < 5e-3, "{s:?}");
        assert!(s.mmd2.abs() < 1e-3, "{s:?}");
        // Balls of the 5th neighbour hold most of a second sample of the same distribution
        // (coverage is 1 − 2⁻⁵ ≈ 0.97 in expectation, density 1; Naeem et al., §4).
        assert!(s.precision > 0.9 && s.recall > 0.9, "{s:?}");
        assert!((s.coverage - 0.97).abs() < 0.02, "{s:?}");
        assert!((s.density - 1.0).abs() < 0.1, "{s:?}");
        // The same set: every point in its own ball.
        let same = compare(&real, &real).unwrap();
        assert_eq!(same.energy, 0.0);
        assert_eq!(same.sliced_w2, 0.0);
        assert_eq!([same.precision, same.recall, same.coverage], [1.0; 3]);
    }

    #[test]
    fn a_shifted_cloud_scores_worse_on_every_score() {
        let real = cloud(2000, 4, 41, 0.0);
        let near = compare(&cloud(2000, 4, 42, 0.0), &real).unwrap();
        let far = compare(&cloud(2000, 4, 43, 1.0), &real).unwrap();
        // SW2² = ‖μ‖²/d = 1 for μ = (1, 1, 1, 1), within the directions' error (sliced).
        assert!((far.sliced_w2 - 1.0).abs() < 0.15, "{far:?}");
        assert!(far.sliced_w2 > 10.0 * near.sliced_w2, "{near:?} {far:?}");
        assert!(far.mmd2 > 0.05 && far.energy > 0.5, "{far:?}");
        // The balls' scores move less (a shift of one standard deviation leaves most of
        // each cloud inside the other's balls), density and coverage the most.
        assert!(far.precision < near.precision - 0.03, "{near:?} {far:?}");
        assert!(far.recall < near.recall - 0.03, "{near:?} {far:?}");
        assert!(far.coverage < near.coverage - 0.3, "{near:?} {far:?}");
        assert!(far.density < near.density - 0.2, "{near:?} {far:?}");
    }

    #[test]
    fn unbiased_mmd_averages_zero_over_seeds_for_one_distribution() {
        let runs: Vec<f64> = (0..8)
            .map(|s| {
                compare(&cloud(400, 2, 100 + s, 0.0), &cloud(400, 2, 200 + s, 0.0))
                    .unwrap()
                    .mmd2
            })
            .collect();
        let mean = runs.iter().sum::<f64>() / 8.0;
        let sd = (runs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 7.0).sqrt();
        eprintln!("MMD² over 8 seeds: {runs:?}, mean {mean:e} ± {sd:e}");
        // Some runs are negative, as an unbiased estimate of 0 must be; the mean is within
        // 3 standard errors of 0, and far below a shifted cloud's.
        assert!(runs.iter().any(|&v| v < 0.0), "{runs:?}");
        assert!(mean.abs() < 3.0 * sd / 8f64.sqrt(), "{mean} ± {sd}");
        let shifted = compare(&cloud(400, 2, 300, 0.3), &cloud(400, 2, 301, 0.0)).unwrap();
        assert!(shifted.mmd2 > 10.0 * sd, "{shifted:?}");
    }

    #[test]
    fn scores_are_the_same_bits_for_any_thread_count() {
        let (fake, real) = (cloud(1500, 5, 51, 0.1), cloud(1100, 5, 52, 0.0));
        let bits = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let s = pool.install(|| compare(&fake, &real)).unwrap();
            [
                s.sliced_w2,
                s.mmd2,
                s.bandwidth,
                s.energy,
                s.precision,
                s.recall,
                s.density,
                s.coverage,
            ]
            .map(f64::to_bits)
        };
        assert_eq!(bits(1), bits(3));
    }

    #[test]
    fn large_sets_are_spread_down_and_bad_pairs_are_errors() {
        let big = cloud(MAX_POINTS + 7, 1, 61, 0.0);
        let s = compare(&big, &cloud(10, 1, 62, 0.0)).unwrap();
        assert_eq!((s.samples, s.reference), (MAX_POINTS, 10));
        let (a, b) = (cloud(10, 2, 1, 0.0), cloud(10, 3, 2, 0.0));
        let e = compare(&a, &b).unwrap_err();
        assert_eq!(
            e,
            ScoresError::Width {
                samples: 2,
                reference: 3
            }
        );
        assert_eq!(
            compare(&a, &cloud(5, 2, 3, 0.0)).unwrap_err().to_string(),
            "reference: 5 point(s); at least 6 are needed"
        );
        // Coordinates near f32's limits neither overflow nor underflow.
        let huge = Points::new(1, (0..8).map(|v| v as f32 * 4e37).collect()).unwrap();
        let s = compare(&huge, &huge).unwrap();
        assert_eq!(
            [s.precision, s.recall, s.coverage, s.energy],
            [1.0, 1.0, 1.0, 0.0]
        );
        assert!(s.mmd2.is_finite() && s.bandwidth.is_finite(), "{s:?}");
    }
}
