//! Running a request: [`sample`] / [`sample_with`] in SIMD tiles on rayon's threads, and
//! [`Prepared::frames`] for the reverse-process figure.

use rayon::prelude::*;
use tinyddpm_core::units::MAX_DIM;
use tinyddpm_core::{Guidance, Model, Network, NoiseStream, QModel, Sampler, Schedule, Step};

use super::chain::Kept;
use super::float::Float;
use super::integer::Integer;
use super::{Init, SampleRequest, Simd};
use crate::flat::FlatModel;
use crate::threads::{ThreadsError, run_on};

/// A model the executor runs: the float `Model` and the integer `QModel`. Sealed: the
/// executor prepares it for a SIMD path (weights re-laid-out, every step's time embedding
/// computed once) and runs its tiles.
pub trait BatchModel<const H: usize, const B: usize>: Network<H, B> + Prepare {}

impl<const H: usize, const B: usize> BatchModel<H, B> for Model<H, B> {}
impl<const H: usize, const B: usize> BatchModel<H, B> for QModel<H, B> {}

pub(super) use sealed::{Kernel, Prepare};

mod sealed {
    use super::*;

    /// A model the executor prepares ([`Prepared::new`]): the const-generic `Model` and
    /// `QModel` of any D. Kept out of the public API.
    pub trait Prepare {
        /// `self` prepared for `simd` (available) and `steps`, on the current rayon pool.
        fn prepare(&self, simd: Simd, steps: &[Step]) -> Kernel;
    }

    /// A model prepared for one SIMD path and one step table: its packed weights and every
    /// step's time embedding.
    pub enum Kernel {
        /// The float model, of any shape.
        Float(Float),
        /// The integer model, of any D.
        Integer(Integer),
    }
}

impl Kernel {
    /// Runs every step for up to `simd.tile_samples()` samples: `x` holds their x_T, D
    /// values a sample, `noise` their streams (past x_T's draw); `x` is overwritten with x_0,
    /// and the states `kept` asks for are kept.
    fn run_tile(
        &self,
        steps: &[Step],
        (x, noise): (&mut [f32], &mut [NoiseStream]),
        kept: Option<&mut Kept<'_>>,
    ) {
        match self {
            Kernel::Float(f) => f.simd.float_tile(&f.layers, f.run(steps), x, noise, kept),
            Kernel::Integer(q) => {
                let run = (steps, &q.tembs[..], q.stride);
                q.simd.integer_tile(&q.layers, run, x, noise, kept)
            }
        }
    }

    /// D: coordinates of a sample.
    fn dim(&self) -> usize {
        match self {
            Kernel::Float(f) => f.dim(),
            Kernel::Integer(q) => q.layers.dim(),
        }
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
        let rows = Prepared::new(simd, model, schedule, sampler)
            .sample(init, seed, first, count, progress);
        let (points, _) = rows.as_chunks::<2>();
        points.to_vec()
    })
}

/// A model prepared for one SIMD path and one sampler: the step table, the weights packed
/// for the path and every step's time embedding, made once and shared by every call of
/// [`Prepared::sample`] (a job that samples chunk after chunk prepares once per run).
pub struct Prepared {
    simd: Simd,
    steps: Vec<Step>,
    kernel: Kernel,
}

impl Prepared {
    /// `model` prepared for `simd` and `sampler` on `schedule`, on the current rayon pool.
    /// Panics if the CPU lacks `simd` ([`Simd::is_available`]).
    pub fn new<const T: usize, M: Prepare>(
        simd: Simd,
        model: &M,
        schedule: &Schedule<T>,
        sampler: &Sampler,
    ) -> Self {
        simd.require();
        let steps: Vec<Step> = sampler.steps(schedule).collect();
        let kernel = model.prepare(simd, &steps);
        Self {
            simd,
            steps,
            kernel,
        }
    }

    /// The float model of any shape, `model`, prepared as [`Prepared::new`] prepares a
    /// `Model` of its shape (the same bits), its samples drawn for `guidance` (`None`:
    /// unconditionally — from ∅ for a model conditioned on classes). Panics if the CPU lacks
    /// `simd` or the model has not the class asked for ([`FlatModel::class_row`]).
    pub fn float<const T: usize>(
        simd: Simd,
        model: &FlatModel,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        guidance: Option<Guidance>,
    ) -> Self {
        simd.require();
        let steps: Vec<Step> = sampler.steps(schedule).collect();
        let float = Float::new(simd, model, &steps, guidance);
        let kernel = Kernel::Float(float.expect("a class of the model"));
        Self {
            simd,
            steps,
            kernel,
        }
    }

    /// D: coordinates of a sample.
    pub fn dim(&self) -> usize {
        self.kernel.dim()
    }

    /// Samples `first .. first + count` of `seed` from `init`, in tiles on the current rayon
    /// pool: the core's bits (see [`SampleRequest`]), D values a sample, one sample after
    /// another. Panics if `Init::Given` does not hold `count` points of D values.
    pub fn sample(
        &self,
        init: Init<'_>,
        seed: u64,
        first: u64,
        count: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Vec<f32> {
        let d = self.dim();
        if let Init::Given(xs) = init {
            assert_eq!(xs.len(), count * d, "one x_T per sample");
        }
        let tile = self.simd.tile_samples();
        let mut out = vec![0.0f32; count * d];
        out.par_chunks_mut(tile * d)
            .enumerate()
            .for_each(|(t, xs)| {
                let first = first + (t * tile) as u64;
                let mut noise: Vec<NoiseStream> = (0..(xs.len() / d) as u64)
                    .map(|i| NoiseStream::new(seed, first + i))
                    .collect();
                for (i, (x, n)) in xs.chunks_exact_mut(d).zip(&mut noise).enumerate() {
                    match init {
                        Init::Noise => n.fill_gaussians(x),
                        Init::Given(given) => {
                            let at = (t * tile + i) * d;
                            x.copy_from_slice(&given[at..at + d]);
                            n.fill_gaussians(&mut [0.0; MAX_DIM][..d]);
                        }
                    }
                }
                self.kernel.run_tile(&self.steps, (xs, &mut noise), None);
                progress(noise.len());
            });
        out
    }

    /// The states of the chain of samples `first .. first + count` of `seed` (from noise, in
    /// tiles on the current rayon pool) before each step in `keep` (ascending; a step past the
    /// last is the result, exactly what [`Prepared::sample`] returns): `frames[f]` holds every
    /// sample's D values before step `keep[f]`, one sample after another. The reverse-process
    /// figure's runner.
    pub fn frames(&self, seed: u64, first: u64, count: usize, keep: &[usize]) -> Vec<Vec<f32>> {
        let (d, tile) = (self.dim(), self.simd.tile_samples());
        let keep: Vec<usize> = keep.iter().map(|&k| k.min(self.steps.len())).collect();
        // Per tile, its samples' states, kept step after kept step.
        let tiles: Vec<Vec<f32>> = (0..count.div_ceil(tile))
            .into_par_iter()
            .map(|t| {
                let n = tile.min(count - t * tile);
                let mut noise: Vec<NoiseStream> = (0..n as u64)
                    .map(|i| NoiseStream::new(seed, first + (t * tile) as u64 + i))
                    .collect();
                let mut x = vec![0.0f32; n * d];
                for (x, stream) in x.chunks_exact_mut(d).zip(&mut noise) {
                    stream.fill_gaussians(x);
                }
                let mut rows = Vec::with_capacity(keep.len() * n * d);
                let mut kept = Kept {
                    steps: &keep,
                    rows: &mut rows,
                };
                self.kernel
                    .run_tile(&self.steps, (&mut x, &mut noise), Some(&mut kept));
                rows
            })
            .collect();
        (0..keep.len())
            .map(|f| {
                let frame = tiles.iter().flat_map(|rows| {
                    let per_frame = rows.len() / keep.len();
                    &rows[f * per_frame..(f + 1) * per_frame]
                });
                frame.copied().collect()
            })
            .collect()
    }
}
