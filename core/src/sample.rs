//! `sample(model, schedule, sampler, seed, index) -> [f32; 2]`: the pure function every
//! backend reproduces bit for bit.
//!
//! The noise stream of `(seed, index)` ([`NoiseStream`]) yields x_T as its first Gaussian
//! pair, then one pair z per reverse step. [`sample_from`] starts at a given x_T and skips
//! that first pair, so `sample_from(x_T = first pair, …) == sample(…)`.

use crate::model::Model;
use crate::noise::NoiseStream;
use crate::sampler::{Sampler, Step};
use crate::schedule::Schedule;

/// Runs `steps` from `x` with the stream `noise` (one Gaussian pair per step).
pub fn sample_with_steps<const H: usize, const B: usize>(
    model: &Model<H, B>,
    steps: impl IntoIterator<Item = Step>,
    mut x: [f32; 2],
    noise: &mut NoiseStream,
) -> [f32; 2] {
    for step in steps {
        let temb = model.time_embedding(step.t_input);
        let eps = model.predict_noise(x, &temb);
        let z = noise.gaussian_pair();
        x = [0, 1].map(|i| step.apply(x[i], eps[i], z[i]));
    }
    x
}

/// Sample `index` of `seed`: x_T from the stream, then every step of `sampler`.
/// The sampler must be valid for T ([`Sampler::validate`]).
pub fn sample<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    seed: u64,
    index: u64,
) -> [f32; 2] {
    let mut noise = NoiseStream::new(seed, index);
    let x = noise.gaussian_pair();
    let steps = (0..sampler.num_steps(T)).map(|k| sampler.step(schedule, k));
    sample_with_steps(model, steps, x, &mut noise)
}

/// Sample `index` of `seed` started from a given `x_init` instead of the stream's x_T.
pub fn sample_from<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    x_init: [f32; 2],
    seed: u64,
    index: u64,
) -> [f32; 2] {
    let mut noise = NoiseStream::new(seed, index);
    noise.gaussian_pair();
    let steps = (0..sampler.num_steps(T)).map(|k| sampler.step(schedule, k));
    sample_with_steps(model, steps, x_init, &mut noise)
}
