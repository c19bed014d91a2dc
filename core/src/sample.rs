//! The reverse chain, written once: `sample(model, schedule, sampler, seed, index) -> [f32; D]`
//! and the lane-generic loop every backend's sampler is an instance of.
//!
//! Sample `index` of `seed` draws from its own [`NoiseStream`]: its first draw of D Gaussians
//! is x_T, then one draw z per reverse step (a step with σ = 0 consumes its draw too). A draw
//! is [`NoiseStream::gaussians`]: ⌈D/2⌉ whole Box–Muller pairs, coordinates in order, the
//! second value of the last pair dropped when D is odd — for the notebook's D = 2, one pair,
//! as it always was. [`chain`]
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
use crate::units::MAX_DIM;

/// Something that predicts the noise in `x`, a point of `D` coordinates (2 unless named), at
/// a reverse step: the float model, or a backend's prepared copy of it. `k` is the step's
/// position in the chain (0 = noisiest), so an implementation may look up work shared by
/// every sample of a step (the time embedding) instead of recomputing it.
pub trait PredictNoise<R: Real, const D: usize = 2> {
    /// ε̂(x, t) for the lanes of `x` at step `k`, whose network time input is `step.t_input`.
    fn predict_noise(&mut self, k: usize, step: &Step, x: [R; D]) -> [R; D];
}

/// The model itself: its time embedding computed for each step, then the forward pass.
impl<R: Real, const H: usize, const B: usize, const D: usize> PredictNoise<R, D>
    for &Model<H, B, D>
{
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [R; D]) -> [R; D] {
        Model::predict_noise(self, x, &self.time_embedding(step.t_input))
    }
}

/// [`PredictNoise`] for a point whose D is known only at run time (a host that reads the
/// shape from a model file): ε̂ for the lanes of `x` into `eps`, both D long.
pub trait PredictNoiseIn<R: Real> {
    /// ε̂(x, t) for the lanes of `x` at step `k` into `eps` (`eps.len() == x.len()`).
    fn predict_noise_in(&mut self, k: usize, step: &Step, x: &[R], eps: &mut [R]);
}

/// A borrowed predictor predicts too (a caller keeps its predictor across calls).
impl<R: Real, P: PredictNoiseIn<R> + ?Sized> PredictNoiseIn<R> for &mut P {
    #[inline(always)]
    fn predict_noise_in(&mut self, k: usize, step: &Step, x: &[R], eps: &mut [R]) {
        (**self).predict_noise_in(k, step, x, eps)
    }
}

/// A [`PredictNoise`] of a compile-time D seen as a [`PredictNoiseIn`] (for a point of
/// exactly D coordinates): [`chain`] is [`chain_in`] on it, so the chain is written once.
pub struct Fixed<P, const D: usize>(pub P);

impl<R: Real, P: PredictNoise<R, D>, const D: usize> PredictNoiseIn<R> for Fixed<P, D> {
    #[inline(always)]
    fn predict_noise_in(&mut self, k: usize, step: &Step, x: &[R], eps: &mut [R]) {
        let mut point = [R::splat(0.0); D];
        copy(x, &mut point);
        copy(&self.0.predict_noise(k, step, point), eps);
    }
}

/// `to[c] = from[c]` for every coordinate both have. A plain loop, not `copy_from_slice`
/// (which panics on a length mismatch) nor `map` (see `Lanes`' note on closures under
/// target features).
#[inline(always)]
fn copy<R: Real>(from: &[R], to: &mut [R]) {
    for (t, &f) in to.iter_mut().zip(from) {
        *t = f;
    }
}

/// The next draw of `D` Gaussians ([`NoiseStream::gaussians`]) of each lane's stream: lane `i`
/// of coordinate `c` is coordinate `c` of stream `i`'s draw. Lanes past `streams.len()`
/// (padding of a partly filled batch) get 0.
#[inline(always)]
pub fn gaussian_draw<R: Real, const D: usize>(streams: &mut [NoiseStream]) -> [R; D] {
    let mut z = [R::splat(0.0); D];
    gaussian_draw_into(streams, &mut z);
    z
}

/// [`gaussian_draw`] of `z.len()` coordinates (at most [`MAX_DIM`]; more are left as they
/// are), for a D known at run time.
#[inline(always)]
pub fn gaussian_draw_into<R: Real>(streams: &mut [NoiseStream], z: &mut [R]) {
    let z = prefix(z);
    let mut draw = [0.0f32; MAX_DIM];
    let draw = &mut draw[..z.len()];
    for zc in z.iter_mut() {
        *zc = R::splat(0.0);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        stream.fill_gaussians(draw);
        for (zc, &g) in z.iter_mut().zip(draw.iter()) {
            zc.set_lane(i, g);
        }
    }
}

/// The first [`MAX_DIM`] coordinates of `x` (all of them for any point a model holds).
#[inline(always)]
fn prefix<R>(x: &mut [R]) -> &mut [R] {
    let d = x.len().min(MAX_DIM);
    &mut x[..d]
}

/// [`gaussian_draw`] of a 2-D point — one Gaussian pair per lane — under the name the
/// notebook's 2-D backends call it by (they name only `R`).
#[inline(always)]
pub fn gaussian_lanes<R: Real>(streams: &mut [NoiseStream]) -> [R; 2] {
    gaussian_draw(streams)
}

/// Runs `steps` from `x` for the lanes of `R`, lane `i` drawing its noise from `streams[i]`
/// (already past x_T's draw), and returns x after the last step. `at_step(k, &x)` sees the
/// state before step `k` and, with `k` = the number of steps, the result: figures keep
/// frames, the firmware times each step. The multistep solvers' memory of earlier steps
/// lives here, one [`History`] per coordinate, empty at the first step: `steps` must be a
/// whole chain from its first step. Each step takes one [`gaussian_draw`] of D coordinates
/// from every stream. [`chain_in`] with D fixed at compile time (at most [`MAX_DIM`]).
#[inline(always)]
pub fn chain<R: Real, P: PredictNoise<R, D>, const D: usize>(
    predictor: P,
    steps: impl IntoIterator<Item = Step>,
    mut x: [R; D],
    streams: &mut [NoiseStream],
    mut at_step: impl FnMut(usize, &[R; D]),
) -> [R; D] {
    const { assert!(D <= MAX_DIM, "a point has at most MAX_DIM coordinates") };
    chain_in(Fixed(predictor), steps, &mut x, streams, |k, now| {
        let mut point = [R::splat(0.0); D];
        copy(now, &mut point);
        at_step(k, &point);
    });
    x
}

/// The reverse chain itself, for a point of `x.len()` coordinates (1 ..= [`MAX_DIM`]; more
/// are left as they are), overwritten with the result: see [`chain`], which is this function
/// for a D known at compile time.
#[inline(always)]
pub fn chain_in<R: Real, P: PredictNoiseIn<R>>(
    mut predictor: P,
    steps: impl IntoIterator<Item = Step>,
    x: &mut [R],
    streams: &mut [NoiseStream],
    mut at_step: impl FnMut(usize, &[R]),
) {
    let x = prefix(x);
    let d = x.len();
    let mut history = [History::new(); MAX_DIM];
    let (mut eps, mut z) = ([R::splat(0.0); MAX_DIM], [R::splat(0.0); MAX_DIM]);
    let (eps, z) = (&mut eps[..d], &mut z[..d]);
    let mut k = 0;
    for step in steps {
        at_step(k, x);
        predictor.predict_noise_in(k, &step, x, eps);
        gaussian_draw_into(streams, z);
        // A plain loop, not `map`: see `Lanes`' note on closures under target features.
        for c in 0..d {
            x[c] = step.apply(x[c], eps[c], z[c], &mut history[c]);
        }
        k += 1;
    }
    at_step(k, x);
}

/// Sample `index` of `seed`: x_T from the stream, then every step of `sampler`.
/// The sampler must be valid for T ([`Sampler::validate`]). D comes from the model.
pub fn sample<const H: usize, const B: usize, const T: usize, const D: usize>(
    model: &Model<H, B, D>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    seed: u64,
    index: u64,
) -> [f32; D] {
    let mut noise = [NoiseStream::new(seed, index)];
    let x = gaussian_draw(&mut noise);
    chain(model, sampler.steps(schedule), x, &mut noise, |_, _| ())
}

/// Sample `index` of `seed` started from a given `x_init` instead of the stream's x_T (whose
/// draw is still taken, so the steps' noise is the same as [`sample`]'s).
pub fn sample_from<const H: usize, const B: usize, const T: usize, const D: usize>(
    model: &Model<H, B, D>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    x_init: [f32; D],
    seed: u64,
    index: u64,
) -> [f32; D] {
    let mut noise = [NoiseStream::new(seed, index)];
    gaussian_draw::<f32, D>(&mut noise);
    chain(
        model,
        sampler.steps(schedule),
        x_init,
        &mut noise,
        |_, _| (),
    )
}
