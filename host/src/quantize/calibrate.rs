//! Calibration: every activation's range (most negative and largest value) over
//! forward-process inputs `x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε` — x₀ the model's own data (a built-in
//! set's fresh points, [`true_samples`], or given points: [`CalibrationData`]), t
//! stratified over all of `[0, T)` (ranges drift with t: sample `i` has `t = i mod T`), ε
//! from the core's noise stream.
//!
//! The float pass that records the activations is the core's own forward pass, observed
//! ([`FlatModel::predict_noise_observed`], the core's `predict_noise_in`), so the ranges are
//! those of the model's own bits.

use std::fmt;

use rayon::prelude::*;
use tinyddpm_core::gelu::gelu;
use tinyddpm_core::{NoiseStream, Schedule, Tap};

use super::{Calibration, CalibrationData, QuantizeError};
use crate::data::{Domain, true_samples};
use crate::flat::FlatModel;
use crate::scores::Points;

/// The calibration set: [`Calibration`] with its x₀ drawn.
pub(super) struct Inputs {
    /// Forward-process inputs.
    pub(super) samples: usize,
    /// Seed of their ε.
    pub(super) seed: u64,
    /// Their x₀, input `i` taking point `i mod n` (n ≥ 1).
    pub(super) points: Points,
}

impl Inputs {
    /// `calibration`'s inputs; `None` without any.
    pub(super) fn new(calibration: &Calibration) -> Option<Self> {
        let (samples, seed) = (calibration.samples, calibration.seed);
        let points = match &calibration.data {
            CalibrationData::Set(set) => {
                let pairs = true_samples(*set, samples, seed);
                // a built-in set's points are finite by construction
                Points::trusted(2, pairs.into_iter().flatten().collect())
            }
            CalibrationData::Points(points) => points.clone(),
        };
        (samples > 0 && !points.is_empty()).then_some(Self {
            samples,
            seed,
            points,
        })
    }
}

/// A tensor the calibration records: one the core's forward pass shows, or one it does not —
/// the network's two inputs, and the two GELUs the core applies inside a unit, whose outputs
/// join the residual stream and so need its format.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Site {
    /// t/T, `time_in`'s input.
    Time,
    /// x_t, `input`'s input.
    X,
    /// The GELU of [`Tap::InputPre`] (stream).
    InputAct,
    /// The GELU of [`Tap::SecondPre`]`(i)` (stream).
    Residual(usize),
    /// A tensor the core shows.
    Tap(Tap),
}

impl Site {
    pub(super) fn count(blocks: usize) -> usize {
        9 + 5 * blocks
    }

    pub(super) fn index(self, blocks: usize) -> usize {
        match self {
            Site::Time => 0,
            Site::Tap(Tap::TimePre) => 1,
            Site::Tap(Tap::TimeHidden) => 2,
            Site::Tap(Tap::Temb) => 3,
            Site::X => 4,
            Site::Tap(Tap::InputPre) => 5,
            Site::InputAct => 6,
            Site::Tap(Tap::Eps) => 7,
            Site::Tap(Tap::Stream(i)) => 8 + i,
            Site::Tap(Tap::FirstPre(i)) => 9 + blocks + 4 * i,
            Site::Tap(Tap::Hidden(i)) => 10 + blocks + 4 * i,
            Site::Tap(Tap::SecondPre(i)) => 11 + blocks + 4 * i,
            Site::Residual(i) => 12 + blocks + 4 * i,
        }
    }

    /// Every site of a model with `blocks` blocks, in index order.
    fn all(blocks: usize) -> impl Iterator<Item = Site> {
        let fixed = [
            Site::Time,
            Site::Tap(Tap::TimePre),
            Site::Tap(Tap::TimeHidden),
            Site::Tap(Tap::Temb),
            Site::X,
            Site::Tap(Tap::InputPre),
            Site::InputAct,
            Site::Tap(Tap::Eps),
        ];
        let per_block = (0..blocks).flat_map(|i| {
            [
                Site::Tap(Tap::FirstPre(i)),
                Site::Tap(Tap::Hidden(i)),
                Site::Tap(Tap::SecondPre(i)),
                Site::Residual(i),
            ]
        });
        fixed
            .into_iter()
            .chain((0..=blocks).map(|i| Site::Tap(Tap::Stream(i))))
            .chain(per_block)
    }

    /// The sites of the stream.
    pub(super) fn stream(blocks: usize) -> impl Iterator<Item = Site> {
        [Site::Tap(Tap::Temb), Site::InputAct]
            .into_iter()
            .chain((0..=blocks).map(|i| Site::Tap(Tap::Stream(i))))
            .chain((0..blocks).map(Site::Residual))
    }
}

/// The name an error gives the site: a tap's is the core's name for it.
impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Time => f.write_str("Time"),
            Site::X => f.write_str("X"),
            Site::InputAct => f.write_str("InputAct"),
            Site::Residual(i) => write!(f, "Residual({i})"),
            Site::Tap(tap) => write!(f, "{tap:?}"),
        }
    }
}

/// The model's noise prediction with its time embedding, calling `seen` with every tensor:
/// the core's own forward pass, observed ([`FlatModel::predict_noise_observed`]); the
/// activations the core computes inside a unit (GELUs feeding the stream) are formed here
/// from its inputs.
fn observe(
    m: &FlatModel,
    x: &[f32],
    t_input: f32,
    seen: &mut impl FnMut(Site, &[f32]),
) -> Vec<f32> {
    seen(Site::Time, &[t_input]);
    let mut temb = vec![0.0; m.hidden()];
    m.time_embedding_observed(t_input, &mut temb, |tap, v| seen(Site::Tap(tap), v));
    seen(Site::X, x);
    let gelus = |v: &[f32]| v.iter().map(|&a| gelu(a)).collect::<Vec<f32>>();
    let mut eps = vec![0.0; m.dim()];
    m.predict_noise_observed((x, &temb), &mut eps, |tap, v| {
        seen(Site::Tap(tap), v);
        match tap {
            Tap::InputPre => seen(Site::InputAct, &gelus(v)),
            Tap::SecondPre(i) => seen(Site::Residual(i), &gelus(v)),
            _ => {}
        }
    });
    eps
}

/// Calibration input `i` into `x` (D long, `x0`'s width): `x_t` with `t = i mod T`, ε one
/// draw of the core's noise stream (`NoiseStream::fill_gaussians`); returns `t/T`.
fn calibration_input<const T: usize>(
    schedule: &Schedule<T>,
    (x0, seed, i): (&[f32], u64, usize),
    x: &mut [f32],
) -> f32 {
    let t = i % T;
    let (signal, noise) = schedule.forward_coefs(t);
    NoiseStream::new(Domain::Calibration.key(seed), i as u64).fill_gaussians(x);
    for (x, &x0) in x.iter_mut().zip(x0) {
        *x = signal * x0 + noise * *x;
    }
    t as f32 / T as f32
}

/// Runs the calibration set through `observe`, each worker folding into its own `A`.
fn calibrate<const T: usize, A: Send>(
    model: &FlatModel,
    schedule: &Schedule<T>,
    calibration: &Inputs,
    init: impl Fn() -> A + Sync + Send,
    add: impl Fn(&mut A, Site, &[f32]) + Sync + Send,
    merge: impl Fn(A, A) -> A + Sync + Send,
) -> A {
    let points = &calibration.points;
    (0..calibration.samples)
        .into_par_iter()
        .fold(&init, |mut acc, i| {
            let x0 = points.row(i % points.len());
            let mut x = vec![0.0; x0.len()];
            let t_input = calibration_input(schedule, (x0, calibration.seed, i), &mut x);
            observe(model, &x, t_input, &mut |site, v| add(&mut acc, site, v));
            acc
        })
        .reduce(&init, merge)
}

/// Every site's range over the calibration set; an error names the first site, in index
/// order, that is not finite somewhere.
pub(super) fn ranges<const T: usize>(
    model: &FlatModel,
    schedule: &Schedule<T>,
    calibration: &Inputs,
) -> Result<Ranges, QuantizeError> {
    let blocks = model.layout().blocks;
    let ranges = calibrate(
        model,
        schedule,
        calibration,
        || Ranges::new(Site::count(blocks)),
        |r, site, v| r.add(site.index(blocks), v),
        Ranges::merge,
    );
    match Site::all(blocks).find(|s| ranges.non_finite[s.index(blocks)]) {
        Some(site) => Err(QuantizeError::NonFiniteActivation(site.to_string())),
        None => Ok(ranges),
    }
}

/// Per site (by index), the sum of `count` over every tensor the calibration set records
/// there.
pub(super) fn counts<const T: usize>(
    model: &FlatModel,
    schedule: &Schedule<T>,
    calibration: &Inputs,
    count: impl Fn(Site, &[f32]) -> u64 + Sync + Send,
) -> Vec<u64> {
    let blocks = model.layout().blocks;
    calibrate(
        model,
        schedule,
        calibration,
        || vec![0u64; Site::count(blocks)],
        |c, site, v| c[site.index(blocks)] += count(site, v),
        |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
    )
}

/// Per site (by index): most negative and largest value, and whether any was not finite.
#[derive(Clone, Debug)]
pub(super) struct Ranges {
    pub(super) min: Vec<f32>,
    pub(super) max: Vec<f32>,
    non_finite: Vec<bool>,
}

impl Ranges {
    fn new(sites: usize) -> Self {
        Self {
            min: vec![0.0; sites],
            max: vec![0.0; sites],
            non_finite: vec![false; sites],
        }
    }

    fn add(&mut self, i: usize, values: &[f32]) {
        for &v in values {
            self.min[i] = self.min[i].min(v);
            self.max[i] = self.max[i].max(v);
            self.non_finite[i] |= !v.is_finite();
        }
    }

    fn merge(mut self, other: Self) -> Self {
        for i in 0..self.min.len() {
            self.min[i] = self.min[i].min(other.min[i]);
            self.max[i] = self.max[i].max(other.max[i]);
            self.non_finite[i] |= other.non_finite[i];
        }
        self
    }

    /// Largest magnitude at `i`.
    pub(super) fn abs(&self, i: usize) -> f64 {
        f64::from(self.max[i]).max(-f64::from(self.min[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::pytorch_init;
    use tinyddpm_core::ScheduleKind;

    /// The recording pass returns the model's own bits, and the calibration inputs of a 2-D
    /// model are those the quantizer has always drawn: `√ᾱ_t·x₀ + √(1−ᾱ_t)·z`, z one
    /// Gaussian pair.
    #[test]
    fn observed_pass_is_the_models_forward_pass() {
        let model = pytorch_init::<16, 2>(3);
        let flat = FlatModel::of(&*model);
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let mut seen = vec![0usize; Site::count(2)];
        let mut x = [0.0f32; 2];
        for i in 0..500 {
            let t_input = calibration_input(&schedule, (&[0.3, -0.7], 9, i * 7), &mut x);
            let t = (i * 7) % 1000;
            let (signal, noise) = schedule.forward_coefs(t);
            let z = NoiseStream::new(Domain::Calibration.key(9), (i * 7) as u64).gaussian_pair();
            let want_x = [signal * 0.3 + noise * z[0], signal * -0.7 + noise * z[1]];
            assert_eq!(x.map(f32::to_bits), want_x.map(f32::to_bits));
            assert_eq!(t_input, t as f32 / 1000.0);
            let want = model.predict_noise(x, &model.time_embedding(t_input));
            let got = observe(&flat, &x, t_input, &mut |s, v| seen[s.index(2)] += v.len());
            let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want.map(f32::to_bits));
        }
        // every site recorded, and the index order is the listing's
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        let order: Vec<usize> = Site::all(2).map(|s| s.index(2)).collect();
        assert_eq!(order, (0..Site::count(2)).collect::<Vec<_>>());
    }
}
