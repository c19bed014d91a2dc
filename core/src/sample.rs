//! The reverse chain, written once: `sample(model, schedule, sampler, seed, index) -> [f32; 2]`
//! and the lane-generic loop every backend's sampler is an instance of.
//!
//! Sample `index` of `seed` draws from its own [`NoiseStream`]: the first Gaussian pair is
//! x_T, then one pair z per reverse step (a step with σ = 0 consumes its pair too). [`chain`]
//! runs any number of samples side by side as the lanes of a [`Real`] — `f32` for one,
//! [`Lanes<N>`](crate::Lanes) or a host SIMD tile for many — with whatever predicts their
//! noise ([`PredictNoise`]). Each lane performs exactly the scalar sequence, so a sample's bits
//! do not depend on which others share its lanes. [`sample`] and [`sample_from`] are the
//! one-lane instances; the host's tiles, its figure runner and the firmware's batch call
//! [`chain`] directly.

use crate::model::Model;
use crate::multistep::History;
use crate::noise::NoiseStream;
use crate::real::Real;
use crate::sampler::{Sampler, Step};
use crate::schedule::Schedule;

/// Something that predicts the noise in `x` at a reverse step: the float model, or a
/// backend's prepared copy of it. `k` is the step's position in the chain (0 = noisiest), so
/// an implementation may look up work shared by every sample of a step (the time
/// embedding) instead of recomputing it.
pub trait PredictNoise<R: Real> {
    /// ε̂(x, t) for the lanes of `x` at step `k`, whose network time input is `step.t_input`.
    fn predict_noise(&mut self, k: usize, step: &Step, x: [R; 2]) -> [R; 2];
}

/// The model itself: its time embedding computed for each step, then the forward pass.
impl<R: Real, const H: usize, const B: usize> PredictNoise<R> for &Model<H, B> {
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [R; 2]) -> [R; 2] {
        Model::predict_noise(self, x, &self.time_embedding(step.t_input))
    }
}

/// The next Gaussian pair of each lane's stream: lane `i` of coordinate `c` is pair `i`'s
/// coordinate `c`. Lanes past `streams.len()` (padding of a partly filled batch) get 0.
#[inline(always)]
pub fn gaussian_lanes<R: Real>(streams: &mut [NoiseStream]) -> [R; 2] {
    let mut z = [R::splat(0.0); 2];
    for (i, stream) in streams.iter_mut().enumerate() {
        let pair = stream.gaussian_pair();
        z[0].set_lane(i, pair[0]);
        z[1].set_lane(i, pair[1]);
    }
    z
}

/// Runs `steps` from `x` for the lanes of `R`, lane `i` drawing its noise from `streams[i]`
/// (already past x_T's pair), and returns x after the last step. `at_step(k, &x)` sees the
/// state before step `k` and, with `k` = the number of steps, the result: figures keep
/// frames, the firmware times each step. The multistep solvers' memory of earlier steps
/// lives here, one [`History`] per coordinate, empty at the first step: `steps` must be a
/// whole chain from its first step.
#[inline(always)]
pub fn chain<R: Real, P: PredictNoise<R>>(
    mut predictor: P,
    steps: impl IntoIterator<Item = Step>,
    mut x: [R; 2],
    streams: &mut [NoiseStream],
    mut at_step: impl FnMut(usize, &[R; 2]),
) -> [R; 2] {
    let mut history = [History::new(); 2];
    let mut k = 0;
    for step in steps {
        at_step(k, &x);
        let eps = predictor.predict_noise(k, &step, x);
        let z = gaussian_lanes::<R>(streams);
        // A plain loop, not `map`: see `Lanes`' note on closures under target features.
        for c in 0..2 {
            x[c] = step.apply(x[c], eps[c], z[c], &mut history[c]);
        }
        k += 1;
    }
    at_step(k, &x);
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
    let mut noise = [NoiseStream::new(seed, index)];
    let x = gaussian_lanes(&mut noise);
    chain(model, sampler.steps(schedule), x, &mut noise, |_, _| ())
}

/// Sample `index` of `seed` started from a given `x_init` instead of the stream's x_T (whose
/// pair is still drawn, so the steps' noise is the same as [`sample`]'s).
pub fn sample_from<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    x_init: [f32; 2],
    seed: u64,
    index: u64,
) -> [f32; 2] {
    let mut noise = [NoiseStream::new(seed, index)];
    gaussian_lanes::<f32>(&mut noise);
    chain(
        model,
        sampler.steps(schedule),
        x_init,
        &mut noise,
        |_, _| (),
    )
}
