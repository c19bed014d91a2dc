//! The seed notebook's data: points on the 2-D Swiss roll and noised training pairs.
//!
//! A point is `(s·cos s, s·sin s)/15` with `s ~ U(1.5π, 4.5π)`. A training example draws a
//! point x₀, a time step `t ~ U{0, …, T−1}` and noise ε, and forms
//! `x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε` with the core's [`Schedule::forward_coefs`].
//!
//! Randomness: every example (and every true sample) has its own Xoshiro128++ stream, seeded
//! by the core's [`stream_seed`] from the run's seed, the step and the example's index, so a
//! batch is the same whichever thread or chunk fills it, and the whole "RNG state" of a run
//! is its seed and step. Gaussians come from the core's Box–Muller ([`box_muller`]); `sin`,
//! `cos` from `libm`, so the data are the same bits on every platform.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm_core::Schedule;
use tinyddpm_core::noise::{box_muller, mix64, stream_seed};

/// Lower end of the spiral parameter, 1.5π.
pub const S_MIN: f32 = 1.5 * core::f32::consts::PI;
/// Upper end of the spiral parameter, 4.5π.
pub const S_MAX: f32 = 4.5 * core::f32::consts::PI;
/// The notebook divides the spiral by 15 to fit it roughly into [−1, 1]².
pub const SCALE: f32 = 15.0;

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

/// A uniform in [0, 1) with 24 random bits (exactly representable in f32).
fn uniform(rng: &mut Xoshiro128PlusPlus) -> f32 {
    (rng.next_u32() >> 8) as f32 * UNIT
}

/// The Swiss-roll point at spiral parameter `s`.
pub fn swiss_roll_point(s: f32) -> [f32; 2] {
    [s * libm::cosf(s) / SCALE, s * libm::sinf(s) / SCALE]
}

/// A spiral parameter drawn as the notebook does: `1.5π·(1 + 2u)`, u ~ U[0, 1).
fn spiral_parameter(rng: &mut Xoshiro128PlusPlus) -> f32 {
    S_MIN * (1.0 + 2.0 * uniform(rng))
}

/// `n` independent points of the true distribution, a pure function of `(n, seed)`; the
/// first `k` points are the same for every `n ≥ k`.
pub fn true_samples(n: usize, seed: u64) -> Vec<[f32; 2]> {
    let base = Domain::True.key(seed);
    (0..n as u64)
        .map(|i| {
            let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, i));
            swiss_roll_point(spiral_parameter(&mut rng))
        })
        .collect()
}

/// Noised training examples, row-major: `x_t` and `noise` are `[n × 2]`, `t_input` is `[n]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Examples {
    /// The noised points x_t.
    pub x_t: Vec<f32>,
    /// The network's time input `t/T` (f32, as the core computes it).
    pub t_input: Vec<f32>,
    /// The noise ε the network must predict.
    pub noise: Vec<f32>,
}

impl Examples {
    /// Storage for `n` examples.
    pub fn with_len(n: usize) -> Self {
        Self {
            x_t: vec![0.0; 2 * n],
            t_input: vec![0.0; n],
            noise: vec![0.0; 2 * n],
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
    /// `seed`; `coefs[t]` is `schedule.forward_coefs(t)` (see [`forward_coefs`]).
    pub fn fill(&mut self, coefs: &[(f32, f32)], seed: u64, step: u64, first: usize) {
        let base = train_stream_key(seed).wrapping_add(step);
        let steps = coefs.len() as u64;
        let rows = self
            .x_t
            .chunks_exact_mut(2)
            .zip(self.noise.chunks_exact_mut(2))
            .zip(&mut self.t_input);
        for (i, ((x, eps), t_in)) in rows.enumerate() {
            let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, (first + i) as u64));
            let x0 = swiss_roll_point(spiral_parameter(&mut rng));
            // Lemire's multiply-shift: unbiased enough for T ≪ 2^32, no division.
            let t = ((u64::from(rng.next_u32()) * steps) >> 32) as usize;
            let z = box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8);
            let (signal, noise) = coefs[t];
            x[0] = signal * x0[0] + noise * z[0];
            x[1] = signal * x0[1] + noise * z[1];
            eps.copy_from_slice(&z);
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

    #[test]
    fn true_samples_lie_on_the_spiral_and_cover_it() {
        let pts = true_samples(20_000, 3);
        assert_eq!(pts[..10], true_samples(10, 3)[..]);
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

    #[test]
    fn examples_depend_on_seed_step_and_index_only() {
        let s = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let coefs = forward_coefs(&s);
        let mut whole = Examples::with_len(8);
        whole.fill(&coefs, 5, 9, 0);
        let mut tail = Examples::with_len(3);
        tail.fill(&coefs, 5, 9, 5);
        assert_eq!(whole.x_t[10..], tail.x_t[..]);
        assert_eq!(whole.noise[10..], tail.noise[..]);
        assert_eq!(whole.t_input[5..], tail.t_input[..]);
        let mut other = Examples::with_len(8);
        other.fill(&coefs, 5, 10, 0);
        assert_ne!(whole, other);
    }

    #[test]
    fn times_are_uniform_and_x_t_follows_the_forward_process() {
        let s = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
        let coefs = forward_coefs(&s);
        let mut ex = Examples::with_len(50_000);
        ex.fill(&coefs, 1, 0, 0);
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
