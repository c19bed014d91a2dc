//! Training data: the built-in 2-D data sets ([`DataSet`], in [`sets`]), the user's own points
//! ([`PointSet`], in [`points`]), the one type a run draws from ([`TrainingData`]), and noised
//! training pairs drawn from it.
//!
//! A training example draws a point x₀ of the run's set, a time step `t ~ U{0, …, T−1}` and
//! noise ε, and forms `x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε` with the core's
//! [`Schedule::forward_coefs`].
//!
//! Randomness: every example (and every true sample) has its own Xoshiro128++ stream, seeded
//! by the core's [`stream_seed`] from the run's seed, the step and the example's index, so a
//! batch is the same whichever thread or chunk fills it, and the whole "RNG state" of a run
//! is its seed and step. A stream is read only through the three draws below — a 24-bit
//! [`uniform`], an integer [`choice`] by multiply-shift, a [`gaussian_pair`] by the core's
//! Box–Muller ([`box_muller`]) — and each set's point takes a fixed number of them
//! ([`DataSet::draws`]; a point set's row takes one [`choice`]), so every example's t and ε
//! sit at a known place in its stream.
//! `sin`, `cos` and the rest come from `libm`, so the data are the same bits on every
//! platform.

pub mod labels;
pub mod points;
pub mod sets;

use std::sync::Arc;

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm_core::noise::{box_muller, mix64, stream_seed};
use tinyddpm_core::{Data, Schedule, Source};

pub use points::{Normalize, PointSet, PointsError};
pub use sets::{DataSet, S_MAX, S_MIN, SCALE, UnknownDataSet, swiss_roll_point};

/// What a training run draws its points from: a built-in set (the Swiss roll by default) or
/// the user's points.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainingData {
    /// A built-in distribution, each point drawn by its formula ([`DataSet::point`]).
    Set(DataSet),
    /// Points read from a file, normalized at load; each example takes a row, with
    /// replacement ([`PointSet::point`]). Shared, not copied, by the run's configuration.
    Points(Arc<PointSet>),
}

impl Default for TrainingData {
    fn default() -> Self {
        Self::Set(DataSet::SwissRoll)
    }
}

impl From<DataSet> for TrainingData {
    fn from(set: DataSet) -> Self {
        Self::Set(set)
    }
}

impl TrainingData {
    /// The CUDA trainer's number for a point set (`POINTS` in `cuda/kernels/train.cu`'s
    /// `data_point`): past every [`DataSet::id`], which run from 0 up.
    pub const POINTS_TAG: u8 = 255;

    /// The number the CUDA trainer's `make_batch` switches on: the set's [`DataSet::id`], or
    /// [`TrainingData::POINTS_TAG`].
    pub fn tag(&self) -> u8 {
        match self {
            Self::Set(set) => set.id(),
            Self::Points(_) => Self::POINTS_TAG,
        }
    }

    /// D, the coordinates of a point: 2 for every built-in set, the file's columns for
    /// points.
    pub fn dim(&self) -> usize {
        match self {
            Self::Set(_) => 2,
            Self::Points(points) => points.dim(),
        }
    }

    /// The classes of the data's labels (0: none): a labelled set's
    /// ([`DataSet::classes`]), or a file's label column's ([`PointSet::classes`]).
    pub fn classes(&self) -> u16 {
        match self {
            Self::Set(set) => set.classes(),
            Self::Points(points) => points.classes(),
        }
    }

    /// What the model file records of the data: D, the source, and the units of
    /// normalized points (the samplers map every sample back by them).
    pub fn model_data(&self) -> Data {
        match self {
            Self::Set(set) => Data {
                dim: 2,
                source: Source::Builtin(set.id()),
                units: None,
            },
            Self::Points(points) => Data {
                // At most MAX_DIM = 16 columns: a point set is never wider.
                dim: points.dim() as u8,
                source: Source::File,
                units: points.units().copied(),
            },
        }
    }
}

impl std::fmt::Display for TrainingData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Set(set) => set.fmt(f),
            Self::Points(points) => write!(f, "the points of {}", points.name()),
        }
    }
}

/// A source of one example's point: what [`Examples::fill`] draws from.
pub trait PointSource {
    /// One point from `rng` into `x` (D long), a fixed number of draws; returns its label
    /// (0 where the data have none).
    fn draw(&self, rng: &mut Xoshiro128PlusPlus, x: &mut [f32]) -> u16;
}

impl PointSource for DataSet {
    fn draw(&self, rng: &mut Xoshiro128PlusPlus, x: &mut [f32]) -> u16 {
        let (point, label) = self.labelled_point(rng);
        x.copy_from_slice(&point);
        label
    }
}

/// The set's [`DataSet::draws`], or one draw for a row of points.
impl PointSource for TrainingData {
    fn draw(&self, rng: &mut Xoshiro128PlusPlus, x: &mut [f32]) -> u16 {
        match self {
            Self::Set(set) => set.draw(rng, x),
            Self::Points(points) => points.point(rng, x),
        }
    }
}

impl<S: PointSource + ?Sized> PointSource for &S {
    fn draw(&self, rng: &mut Xoshiro128PlusPlus, x: &mut [f32]) -> u16 {
        (**self).draw(rng, x)
    }
}

/// Class conditioning of a run: the data's labels, each example's dropped to ∅ (no class,
/// the unconditional model of classifier-free guidance) with probability `dropout`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classes {
    /// C, the data's classes: labels are 0 ..= C − 1, row C of the embedding is ∅.
    pub classes: u16,
    /// The probability of dropping an example's label (0.1 by default), in [0, 1].
    pub dropout: f32,
}

impl Classes {
    /// The default probability of dropping a label (Ho & Salimans' 0.1).
    pub const DROPOUT: f32 = 0.1;
}

/// The host's uses of a seed, one stream domain each, so that no two of them ever share a
/// stream: a use's key is `mix64(seed ^ tag)` (SplitMix64's bijective mix), its tag an ASCII
/// word and a number. Every host stream key is made here.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(crate) enum Domain {
    /// Training examples: example `i` of step `s` uses stream `(key + s, i)`. The CUDA
    /// trainer uploads the key and derives the same streams on the device.
    Train = 0x7472_6169_6e00_0001,
    /// [`true_samples`]: point `i` uses stream `(key, i)`.
    True = 0x7472_7565_0000_0002,
    /// The initial weights (`Layout::init`): stream `(key, 0)`.
    Init = 0x696e_6974_0000_0003,
    /// The quantizer's calibration noise: input `i` uses stream `(key, i)`.
    Calibration = 0x6361_6c69_6200_0003,
}

impl Domain {
    /// The stream key of this use of `seed`.
    pub(crate) fn key(self, seed: u64) -> u64 {
        mix64(seed ^ self as u64)
    }
}

/// The key of a training run's streams (see [`Domain::Train`]).
pub(crate) fn train_stream_key(seed: u64) -> u64 {
    Domain::Train.key(seed)
}

/// 2^-24: the step of the 24-bit uniforms.
const UNIT: f32 = 1.0 / 16_777_216.0;

/// One draw: a uniform in [0, 1) with 24 random bits (exactly representable in f32).
pub fn uniform(rng: &mut Xoshiro128PlusPlus) -> f32 {
    (rng.next_u32() >> 8) as f32 * UNIT
}

/// One draw: an integer in `0..k` by Lemire's multiply-shift `(u·k) >> 32` — no division,
/// and biased by at most k/2^32, nothing for the small k used here.
pub fn choice(rng: &mut Xoshiro128PlusPlus, k: u32) -> u32 {
    ((u64::from(rng.next_u32()) * u64::from(k)) >> 32) as u32
}

/// Two draws: two independent standard Gaussians, the core's Box–Muller on two 24-bit
/// integers (each |z| ≤ √(48 ln 2) ≈ 5.77, which bounds every set's noise).
pub fn gaussian_pair(rng: &mut Xoshiro128PlusPlus) -> [f32; 2] {
    let a = rng.next_u32() >> 8;
    box_muller(a, rng.next_u32() >> 8)
}

/// `n` independent points of `set`, a pure function of `(set, n, seed)`; the first `k`
/// points are the same for every `n ≥ k`. The reference for figures and scores.
pub fn true_samples(set: DataSet, n: usize, seed: u64) -> Vec<[f32; 2]> {
    let base = Domain::True.key(seed);
    (0..n as u64)
        .map(|i| set.point(&mut Xoshiro128PlusPlus::from_seed(stream_seed(base, i))))
        .collect()
}

/// Noised training examples of D coordinates, row-major: `x_t` and `noise` are `[n × D]`,
/// `t_input` is `[n]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Examples {
    /// D, the coordinates of a point.
    pub dim: usize,
    /// The noised points x_t.
    pub x_t: Vec<f32>,
    /// The network's time input `t/T` (f32, as the core computes it).
    pub t_input: Vec<f32>,
    /// The noise ε the network must predict.
    pub noise: Vec<f32>,
    /// For a run conditioned on classes: each example's row of the class embedding — its
    /// label, or C when dropped to ∅; empty otherwise.
    pub class: Vec<u32>,
    /// The run's classes, if it is conditioned on them.
    pub classes: Option<Classes>,
}

impl Examples {
    /// Storage for `n` examples of `dim` coordinates.
    pub fn new(n: usize, dim: usize) -> Self {
        Self {
            dim,
            x_t: vec![0.0; dim * n],
            t_input: vec![0.0; n],
            noise: vec![0.0; dim * n],
            class: Vec::new(),
            classes: None,
        }
    }

    /// Storage for `n` examples of `dim` coordinates of a run conditioned on `classes`.
    pub fn with_classes(n: usize, dim: usize, classes: Option<Classes>) -> Self {
        let class = vec![0; if classes.is_some() { n } else { 0 }];
        Self {
            class,
            classes,
            ..Self::new(n, dim)
        }
    }

    /// Number of examples held.
    pub fn len(&self) -> usize {
        self.t_input.len()
    }

    /// Whether no example is held.
    pub fn is_empty(&self) -> bool {
        self.t_input.is_empty()
    }

    /// Fills every row with the examples `first, first + 1, …` of training step `step` under
    /// `seed`, points of `data` (a [`DataSet`] or the run's [`TrainingData`], of D
    /// coordinates); `coefs[t]` is `schedule.forward_coefs(t)` (see [`forward_coefs`]). Each
    /// example's stream yields, in order: the point ([`DataSet::draws`] draws, or one
    /// [`choice`] of a point set's row), t (one [`choice`]), ε (⌈D/2⌉ [`gaussian_pair`]s, the
    /// last one's second value dropped for an odd D: the samplers' rule,
    /// `NoiseStream::fill_gaussians`) and, for a run conditioned on classes only, one
    /// [`uniform`] u that drops the point's label to ∅ when u < the dropout.
    pub fn fill(
        &mut self,
        data: impl PointSource,
        coefs: &[(f32, f32)],
        seed: u64,
        step: u64,
        first: usize,
    ) {
        let base = train_stream_key(seed).wrapping_add(step);
        // T ≤ 2^32 for every schedule the trainer builds (T is a u32 in every file header).
        let steps = coefs.len() as u32;
        let rows = self
            .x_t
            .chunks_exact_mut(self.dim)
            .zip(self.noise.chunks_exact_mut(self.dim))
            .zip(&mut self.t_input);
        let mut class = self.class.iter_mut();
        for (i, ((x, eps), t_in)) in rows.enumerate() {
            let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, (first + i) as u64));
            let label = data.draw(&mut rng, x);
            let t = choice(&mut rng, steps) as usize;
            for pair in eps.chunks_mut(2) {
                for (e, z) in pair.iter_mut().zip(gaussian_pair(&mut rng)) {
                    *e = z;
                }
            }
            if let (Some(c), Some(row)) = (self.classes, class.next()) {
                let dropped = uniform(&mut rng) < c.dropout;
                *row = u32::from(if dropped { c.classes } else { label });
            }
            let (signal, noise) = coefs[t];
            for (x, &e) in x.iter_mut().zip(eps.iter()) {
                *x = signal * *x + noise * e;
            }
            *t_in = t as f32 / steps as f32;
        }
    }
}

/// `schedule.forward_coefs(t)` for every t: the table [`Examples::fill`] reads.
pub fn forward_coefs<const T: usize>(schedule: &Schedule<T>) -> Vec<(f32, f32)> {
    (0..T).map(|t| schedule.forward_coefs(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyddpm_core::ScheduleKind;

    fn coefs() -> Vec<(f32, f32)> {
        forward_coefs(&Schedule::<1000>::new(ScheduleKind::SEED).unwrap())
    }

    #[test]
    fn true_samples_lie_on_the_spiral_and_cover_it() {
        let pts = true_samples(DataSet::SwissRoll, 20_000, 3);
        assert_eq!(pts[..10], true_samples(DataSet::SwissRoll, 10, 3)[..]);
        let mut radii: Vec<f32> = pts.iter().map(|p| p[0].hypot(p[1]) * SCALE).collect();
        radii.sort_by(f32::total_cmp);
        assert!(radii[0] >= S_MIN * 0.9999 && radii[radii.len() - 1] <= S_MAX * 1.0001);
        // s is uniform, so the median radius is the middle of the range
        let median = radii[radii.len() / 2];
        assert!(
            (median - 3.0 * core::f32::consts::PI).abs() < 0.1,
            "{median}"
        );
    }

    /// For every set, conditioned on its labels or not: a batch filled whole, or in two
    /// chunks of any split, is the same.
    #[test]
    fn examples_depend_on_seed_step_and_index_only() {
        let coefs = coefs();
        for set in DataSet::ALL {
            let classes = [None, Some(set.classes())]
                .into_iter()
                .filter(|c| *c != Some(0))
                .map(|c| {
                    c.map(|classes| Classes {
                        classes,
                        dropout: 0.3,
                    })
                });
            for classes in classes {
                let new = |n| Examples::with_classes(n, 2, classes);
                let mut whole = new(8);
                whole.fill(set, &coefs, 5, 9, 0);
                for split in [1, 3, 7] {
                    let mut head = new(split);
                    head.fill(set, &coefs, 5, 9, 0);
                    let mut tail = new(8 - split);
                    tail.fill(set, &coefs, 5, 9, split);
                    let joined = Examples {
                        dim: 2,
                        x_t: [head.x_t, tail.x_t].concat(),
                        t_input: [head.t_input, tail.t_input].concat(),
                        noise: [head.noise, tail.noise].concat(),
                        class: [head.class, tail.class].concat(),
                        classes,
                    };
                    assert_eq!(whole, joined, "{set} split at {split}");
                }
                let mut other = new(8);
                other.fill(set, &coefs, 5, 10, 0);
                assert_ne!(whole, other, "{set}");
            }
        }
    }

    /// A conditioned run draws the unconditional run's x_t, t and ε (the dropout draw comes
    /// after them); each example's class is the component its point came from (the nearest
    /// of the eight centres, recovered from x_t and ε), or ∅ for about the dropout's share.
    #[test]
    fn labels_are_the_points_components_and_dropout_follows_the_noise() {
        let coefs = coefs();
        let n = 20_000;
        let set = DataSet::EightGaussians;
        let classes = Classes {
            classes: 8,
            dropout: 0.25,
        };
        let mut plain = Examples::new(n, 2);
        plain.fill(set, &coefs, 3, 1, 0);
        let mut labelled = Examples::with_classes(n, 2, Some(classes));
        labelled.fill(set, &coefs, 3, 1, 0);
        assert_eq!(
            (&plain.x_t, &plain.t_input, &plain.noise),
            (&labelled.x_t, &labelled.t_input, &labelled.noise)
        );
        let (mut dropped, mut agree, mut kept) = (0, 0, 0);
        for i in 0..n {
            let t = (labelled.t_input[i] * 1000.0).round() as usize;
            let (a, b) = coefs[t];
            let x0: Vec<f64> = (0..2)
                .map(|c| {
                    f64::from(labelled.x_t[2 * i + c] - b * labelled.noise[2 * i + c])
                        / f64::from(a)
                })
                .collect();
            // FFJORD's centres in its order: ±x, ±y, then the diagonals.
            let h = std::f64::consts::FRAC_1_SQRT_2;
            let centres = [
                (1., 0.),
                (-1., 0.),
                (0., 1.),
                (0., -1.),
                (h, h),
                (h, -h),
                (-h, h),
                (-h, -h),
            ];
            let nearest = (0..8)
                .min_by(|&j, &k| {
                    let d = |(cx, cy): (f64, f64)| {
                        (x0[0] - 4.0 * cx / 1.414).powi(2) + (x0[1] - 4.0 * cy / 1.414).powi(2)
                    };
                    d(centres[j]).total_cmp(&d(centres[k]))
                })
                .unwrap();
            match labelled.class[i] {
                8 => dropped += 1,
                c => {
                    kept += 1;
                    agree += usize::from(c as usize == nearest);
                }
            }
        }
        let share = dropped as f64 / n as f64;
        // Binomial(20,000, 0.25): a standard deviation of 0.003.
        assert!((share - 0.25).abs() < 0.015, "{share}");
        assert!(agree as f64 > 0.995 * kept as f64, "{agree} of {kept}");
    }

    /// t and ε follow the point's draws in every example's stream, whatever the set: the
    /// same stream positions for every set, shifted by the set's draw count.
    #[test]
    fn t_and_noise_follow_the_points_draws() {
        let coefs = coefs();
        let base = train_stream_key(5).wrapping_add(9);
        for set in DataSet::ALL {
            let mut ex = Examples::new(16, 2);
            ex.fill(set, &coefs, 5, 9, 0);
            for i in 0..16 {
                let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, i as u64));
                for _ in 0..set.draws() {
                    rng.next_u32();
                }
                let t = (u64::from(rng.next_u32()) * 1000) >> 32;
                let z = box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8);
                assert_eq!(ex.t_input[i], t as f32 / 1000.0, "{set} row {i}");
                assert_eq!(ex.noise[2 * i..2 * i + 2], z, "{set} row {i}");
            }
        }
    }

    /// The Swiss roll's record is the one every older model file means (so its files keep
    /// their bytes); another set's names its id, without units; the tag of points is no id.
    #[test]
    fn the_model_files_record_of_each_set() {
        assert_eq!(TrainingData::default().model_data(), Data::SWISS_ROLL);
        for set in DataSet::ALL {
            let data = TrainingData::from(set).model_data();
            assert_eq!(
                (data.dim, data.source, data.units),
                (2, Source::Builtin(set.id()), None)
            );
            assert_ne!(set.id(), TrainingData::POINTS_TAG);
            assert_eq!(TrainingData::from(set).tag(), set.id());
        }
    }

    #[test]
    fn times_are_uniform_and_x_t_follows_the_forward_process() {
        let coefs = coefs();
        let mut ex = Examples::new(50_000, 2);
        ex.fill(DataSet::SwissRoll, &coefs, 1, 0, 0);
        let mean_t = ex.t_input.iter().map(|&t| f64::from(t)).sum::<f64>() / 50_000.0;
        assert!((mean_t - 0.4995).abs() < 0.005, "{mean_t}");
        assert!(ex.t_input.iter().all(|&t| (0.0..=0.999).contains(&t)));
        // recover x₀ from x_t and ε: it must lie on the spiral
        for i in 0..1000 {
            let t = (ex.t_input[i] * 1000.0).round() as usize;
            let (a, b) = coefs[t];
            let x0: Vec<f64> = (0..2)
                .map(|c| f64::from(ex.x_t[2 * i + c] - b * ex.noise[2 * i + c]) / f64::from(a))
                .collect();
            let r = x0[0].hypot(x0[1]) * 15.0;
            assert!(r > 4.7 && r < 14.2, "row {i}: radius {r}");
        }
    }
}
