//! Running a request: [`sample`] / [`sample_with`] in SIMD tiles on rayon's threads, and
//! [`frames`] for the reverse-process figure.

use rayon::prelude::*;
use tinyddpm_core::{
    Lanes, Model, Network, NoiseStream, PredictNoise, QModel, Real, Sampler, Schedule, Step, chain,
    gaussian_lanes,
};

use super::{Init, SampleRequest, Simd};
use crate::threads::{ThreadsError, run_on};

/// A model the executor runs: the float `Model` and the integer `QModel`. Sealed: the
/// executor prepares it for a SIMD path (weights re-laid-out, every step's time embedding
/// computed once) and runs its tiles.
pub trait BatchModel<const H: usize, const B: usize>: Network<H, B> + Executor {}

impl<const H: usize, const B: usize> BatchModel<H, B> for Model<H, B> {}
impl<const H: usize, const B: usize> BatchModel<H, B> for QModel<H, B> {}

/// Lanes of the figure runner ([`frames`]).
pub(super) const FRAME_LANES: usize = 16;

pub(super) use sealed::Executor;

mod sealed {
    use super::*;

    /// What [`BatchModel`] needs of a model kind, kept out of the public API.
    pub trait Executor {
        /// The model prepared for one path and one step table.
        type Prepared: Sync;
        /// Prepares `self` for `simd` (available) and `steps`, on the current rayon pool.
        fn prepare(&self, simd: Simd, steps: &[Step]) -> Self::Prepared;
        /// Runs every step for up to `simd.tile_samples()` samples: `x` holds their x_T,
        /// `noise` their streams (past x_T's pair); `x` is overwritten with x_0.
        fn run_tile(
            prepared: &Self::Prepared,
            steps: &[Step],
            x: &mut [[f32; 2]],
            noise: &mut [NoiseStream],
        );
        /// The core's predictor on [`FRAME_LANES`] lanes, for the figure runner.
        fn lanes(&self) -> impl PredictNoise<Lanes<FRAME_LANES>> + '_;
    }
}

/// The samples of `request` on `threads` threads (0 = the current rayon pool, see
/// [`crate::threads::run_on`]), with the widest SIMD path of this CPU: the core's bits.
/// `progress` is called with the number of finished samples from any thread.
pub fn sample<const H: usize, const B: usize, const T: usize, M: BatchModel<H, B>>(
    request: &SampleRequest<'_, H, B, T, M>,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<[f32; 2]>, ThreadsError> {
    sample_with(Simd::detect(), request, threads, progress)
}

/// [`sample`] on a chosen path. Panics if the CPU lacks it ([`Simd::is_available`]), or if
/// `Init::Given` does not hold `count` points.
pub fn sample_with<const H: usize, const B: usize, const T: usize, M: BatchModel<H, B>>(
    simd: Simd,
    request: &SampleRequest<'_, H, B, T, M>,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<[f32; 2]>, ThreadsError> {
    let SampleRequest {
        model,
        schedule,
        sampler,
        init,
        seed,
        first,
        count,
    } = *request;
    run_on(threads, || {
        Prepared::new(simd, model, schedule, sampler).sample(init, seed, first, count, progress)
    })
}

/// A model prepared for one SIMD path and one sampler: the step table, the weights packed
/// for the path and every step's time embedding, made once and shared by every call of
/// [`Prepared::sample`] (a job that samples chunk after chunk prepares once per run).
pub struct Prepared<const H: usize, const B: usize, M: BatchModel<H, B>> {
    simd: Simd,
    steps: Vec<Step>,
    model: M::Prepared,
}

impl<const H: usize, const B: usize, M: BatchModel<H, B>> Prepared<H, B, M> {
    /// `model` prepared for `simd` and `sampler` on `schedule`, on the current rayon pool.
    /// Panics if the CPU lacks `simd` ([`Simd::is_available`]).
    pub fn new<const T: usize>(
        simd: Simd,
        model: &M,
        schedule: &Schedule<T>,
        sampler: &Sampler,
    ) -> Self {
        simd.require();
        let steps: Vec<Step> = sampler.steps(schedule).collect();
        let model = model.prepare(simd, &steps);
        Self { simd, steps, model }
    }

    /// Samples `first .. first + count` of `seed` from `init`, in tiles on the current rayon
    /// pool: the core's bits (see [`SampleRequest`]). Panics if `Init::Given` does not hold
    /// `count` points.
    pub fn sample(
        &self,
        init: Init<'_>,
        seed: u64,
        first: u64,
        count: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Vec<[f32; 2]> {
        if let Init::Given(xs) = init {
            assert_eq!(xs.len(), count, "one x_T per sample");
        }
        let tile = self.simd.tile_samples();
        let mut out = vec![[0.0f32; 2]; count];
        out.par_chunks_mut(tile).enumerate().for_each(|(t, xs)| {
            let first = first + (t * tile) as u64;
            let mut noise: Vec<NoiseStream> = (0..xs.len() as u64)
                .map(|i| NoiseStream::new(seed, first + i))
                .collect();
            for (i, (x, n)) in xs.iter_mut().zip(&mut noise).enumerate() {
                let pair = n.gaussian_pair();
                *x = match init {
                    Init::Noise => pair,
                    Init::Given(given) => given[t * tile + i],
                };
            }
            M::run_tile(&self.model, &self.steps, xs, &mut noise);
            progress(xs.len());
        });
        out
    }
}

/// The states of the chain of every sample of `request` (from noise, on all cores) before the
/// steps in `keep` — a `k` equal to the number of steps is the result, exactly what
/// [`sample`] returns: `frames[f][i]` is sample `first + i` before step `keep[f]`. The
/// figure runner: the core's `Lanes<16>` and chain with a hook that keeps frames.
pub fn frames<const H: usize, const B: usize, const T: usize, M: BatchModel<H, B>>(
    request: &SampleRequest<'_, H, B, T, M>,
    keep: &[usize],
) -> Vec<Vec<[f32; 2]>> {
    const LANES: usize = FRAME_LANES;
    let SampleRequest {
        model,
        sampler,
        schedule,
        seed,
        first,
        count,
        ..
    } = *request;
    // Per group of LANES samples: one [x, y] per kept frame, kept by the chain's step hook.
    let groups: Vec<Vec<[Lanes<LANES>; 2]>> = (0..count.div_ceil(LANES))
        .into_par_iter()
        .map(|g| {
            let lanes = LANES.min(count - g * LANES);
            let mut noise: Vec<NoiseStream> = (0..lanes)
                .map(|l| NoiseStream::new(seed, first + (g * LANES + l) as u64))
                .collect();
            let x = gaussian_lanes(&mut noise);
            let mut kept = Vec::with_capacity(keep.len());
            chain(
                model.lanes(),
                sampler.steps(schedule),
                x,
                &mut noise,
                |k, x| {
                    kept.extend(keep.iter().filter(|&&f| f == k).map(|_| *x));
                },
            );
            kept
        })
        .collect();
    (0..keep.len())
        .map(|f| {
            (0..count)
                .map(|i| {
                    let [x, y] = groups[i / LANES][f];
                    [x.lane(i % LANES), y.lane(i % LANES)]
                })
                .collect()
        })
        .collect()
}
