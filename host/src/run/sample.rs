//! The sampling job: samples `0..count` of a seed, from noise or from given points, on the
//! CPU or the GPU, handed to a sink in index order a chunk at a time — memory bounded
//! whatever the count — and the same bits whatever the device, thread count or chunking.

use std::convert::Infallible;

use tinyddpm_core::file::Stored;
use tinyddpm_core::{Model, QModel, Sampler, Schedule, ScheduleKind, Units};

use super::{T, Watch};
use crate::batch::{self, BatchModel, Init, SampleRequest, Simd};
use crate::cuda::{CudaError, Gpu};

/// Samples drawn per call of the sampler on the GPU: 8 MB of points on the host, and
/// calls long enough to keep the device busy.
const GPU_CHUNK: usize = 1 << 20;
/// Tiles per CPU thread in one call of the sampler: enough to balance the threads, few
/// enough that the memory of a chunk stays small and a stop is seen within seconds.
const TILES_PER_THREAD: usize = 64;
/// Lowers the chunk size (samples per sampler call), for tests of the streaming. It is
/// read only below the size the run would use anyway: no value of it can make a chunk,
/// and so the memory it holds, larger than without it.
const CHUNK_ENV: &str = "TINYDDPM_SAMPLE_CHUNK";

/// A model kind the sampling job runs, both through one code path ([`Sampling`]): the float
/// [`Model`], on the CPU or the GPU, and the integer [`QModel`], on the CPU only (the GPU
/// kernels run float models).
pub trait SampleModel<const H: usize, const B: usize>: BatchModel<H, B> + Stored<H, B> {
    /// The GPU this kind samples on: [`Gpu`] for the float model; for the integer model a
    /// type without values, so that no GPU can be given to it.
    type Gpu;
    /// Whether a GPU can run this kind at all.
    const ON_GPU: bool;
    /// `gpu` as this kind's GPU, when it can run this kind.
    fn on(gpu: Gpu) -> Option<Self::Gpu>;
    /// The samples of `request` on `gpu`.
    fn sample_gpu(
        gpu: &Self::Gpu,
        request: &SampleRequest<'_, H, B, T, Self>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>, CudaError>;
}

impl<const H: usize, const B: usize> SampleModel<H, B> for Model<H, B> {
    type Gpu = Gpu;
    const ON_GPU: bool = true;
    fn on(gpu: Gpu) -> Option<Gpu> {
        Some(gpu)
    }
    fn sample_gpu(
        gpu: &Gpu,
        request: &SampleRequest<'_, H, B, T, Self>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>, CudaError> {
        gpu.sample(request, progress)
    }
}

impl<const H: usize, const B: usize> SampleModel<H, B> for QModel<H, B> {
    type Gpu = Infallible;
    const ON_GPU: bool = false;
    fn on(_: Gpu) -> Option<Infallible> {
        None
    }
    fn sample_gpu(
        gpu: &Infallible,
        _: &SampleRequest<'_, H, B, T, Self>,
        _: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>, CudaError> {
        match *gpu {}
    }
}

/// Why a sampling job stopped.
#[derive(Debug, thiserror::Error)]
pub enum SampleError<E: std::error::Error + 'static> {
    /// The watch asked to stop; `done` samples had been handed to the sink.
    #[error("stopped after {done} of {count} samples")]
    Stopped {
        /// Samples handed to the sink.
        done: u64,
        /// Samples asked for.
        count: u64,
    },
    /// Sample `index` is not finite (in data units): nothing past the chunk before it
    /// reached the sink.
    #[error("sample {index} is not finite ({}, {}); {cause}", point[0], point[1])]
    NotFinite {
        /// Its index.
        index: u64,
        /// Its value.
        point: [f32; 2],
        /// What made it so.
        cause: Overflow,
    },
    /// The GPU failed.
    #[error("GPU sampling failed: {0}")]
    Gpu(#[source] CudaError),
    /// The sink refused a chunk.
    #[error(transparent)]
    Sink(E),
}

/// What made a sample not finite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Overflow {
    /// It started from this given point.
    Start([f32; 2]),
    /// The network's output overflows (the chain with a network predicting no noise stays
    /// finite).
    Model,
    /// The noise schedule makes the reverse process overflow even with a network that
    /// predicts no noise.
    Schedule(ScheduleKind),
    /// The finite point the model drew, which the data's units map past f32's range.
    Units([f32; 2]),
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Overflow::Start([x, y]) => write!(f, "it started from ({x}, {y})"),
            Overflow::Model => f.write_str("the model's output overflows"),
            Overflow::Schedule(kind) => write!(
                f,
                "the noise schedule ({kind}) makes the reverse process overflow even with a \
                 network that predicts no noise"
            ),
            Overflow::Units([x, y]) => write!(
                f,
                "the model drew ({x}, {y}), which the data's units map past f32's range"
            ),
        }
    }
}

/// Where a job's samples go, a chunk at a time in index order.
pub type Sink<'a, E> = dyn FnMut(&[[f32; 2]]) -> Result<(), E> + 'a;

/// Where a job's chunks are drawn: the GPU, or the CPU with the model prepared once.
enum On<'a, const H: usize, const B: usize, M: SampleModel<H, B>> {
    Gpu(&'a M::Gpu),
    Cpu(batch::Prepared<H, B, M>),
}

/// What to sample with: samples `i` of `seed` are the same bits whatever the device, the
/// thread count or the chunking.
pub struct Sampling<'a, const H: usize, const B: usize, M: SampleModel<H, B>> {
    /// The GPU, when sampling there.
    pub gpu: Option<&'a M::Gpu>,
    /// The model, float or integer.
    pub model: &'a M,
    /// Its noise schedule.
    pub schedule: &'a Schedule<T>,
    /// The reverse process.
    pub sampler: &'a Sampler,
    /// The seed.
    pub seed: u64,
    /// The model file's map to data units, applied to every sample as the last step
    /// ([`Units::to_data`], as the core and the boards apply it); none: the chain's output.
    pub units: Option<&'a Units>,
    /// CPU worker threads of the current rayon pool, whose count sets the chunks.
    pub threads: usize,
}

impl<const H: usize, const B: usize, M: SampleModel<H, B>> Sampling<'_, H, B, M> {
    /// Samples per sampler call.
    fn chunk(&self) -> usize {
        let chunk = match self.gpu {
            Some(_) => GPU_CHUNK,
            None => TILES_PER_THREAD * self.threads.max(1) * Simd::detect().tile_samples(),
        };
        let lowered = std::env::var(CHUNK_ENV).ok().and_then(|v| v.parse().ok());
        lowered
            .filter(|&n| n > 0)
            .map_or(chunk, |n: usize| n.min(chunk))
    }

    /// Samples `0..count` (starting from `init` when given, which then holds `count`
    /// points), passing them to `sink` in index order, a chunk at a time. Fails, naming its
    /// index, at the first sample that is not finite, and stops between chunks when `watch`
    /// asks to.
    pub fn run<E: std::error::Error + 'static>(
        &self,
        init: Option<&[[f32; 2]]>,
        count: u64,
        watch: &dyn Watch,
        sink: &mut Sink<'_, E>,
    ) -> Result<(), SampleError<E>> {
        watch.total(count);
        let chunk = self.chunk() as u64;
        let progress = |done: usize| watch.advance(done as u64);
        // On the CPU, the packed weights, step table and time embeddings once for every chunk.
        let on = match self.gpu {
            Some(gpu) => On::Gpu(gpu),
            None => On::Cpu(batch::Prepared::new(
                Simd::detect(),
                self.model,
                self.schedule,
                self.sampler,
            )),
        };
        let mut first = 0u64;
        while first < count {
            if watch.stop() {
                return Err(SampleError::Stopped { done: first, count });
            }
            let n = (count - first).min(chunk) as usize;
            let init = match init {
                Some(points) => Init::Given(&points[first as usize..first as usize + n]),
                None => Init::Noise,
            };
            let mut points = match &on {
                On::Gpu(gpu) => {
                    let request = SampleRequest {
                        model: self.model,
                        schedule: self.schedule,
                        sampler: self.sampler,
                        init,
                        seed: self.seed,
                        first,
                        count: n,
                    };
                    M::sample_gpu(gpu, &request, &progress).map_err(SampleError::Gpu)?
                }
                On::Cpu(cpu) => cpu.sample(init, self.seed, first, n, &progress),
            };
            let drawn = self.units.map(|units| {
                let drawn = points.clone();
                points.iter_mut().for_each(|p| *p = units.to_data(*p));
                drawn
            });
            if let Some(i) = points.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
                let index = first + i as u64;
                let cause = match (init, drawn) {
                    (_, Some(drawn)) if drawn[i].iter().all(|v| v.is_finite()) => {
                        Overflow::Units(drawn[i])
                    }
                    (Init::Given(starts), _) => Overflow::Start(starts[i]),
                    (Init::Noise, _) => self.overflow_cause(index),
                };
                return Err(SampleError::NotFinite {
                    index,
                    point: points[i],
                    cause,
                });
            }
            sink(&points).map_err(SampleError::Sink)?;
            first += n as u64;
        }
        Ok(())
    }

    /// Why sample `index` from noise overflowed: the same chain with a model that predicts
    /// no noise at all isolates the schedule and sampler from the network.
    fn overflow_cause(&self, index: u64) -> Overflow {
        let zero = Box::new(Model::<H, B>::ZERO);
        let without_model =
            tinyddpm_core::sample(&zero, self.schedule, self.sampler, self.seed, index);
        match without_model.iter().all(|v| v.is_finite()) {
            true => Overflow::Model,
            false => Overflow::Schedule(self.schedule.kind),
        }
    }
}
