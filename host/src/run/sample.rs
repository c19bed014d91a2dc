//! The sampling job: samples `0..count` of a seed, from noise or from given points, on the
//! CPU or the GPU, handed to a sink in index order a chunk at a time — memory bounded
//! whatever the count — and the same bits whatever the device, thread count or chunking.

use std::convert::Infallible;

use tinyddpm_core::{Guidance, Layout, QModel, Sampler, Schedule, ScheduleKind, Units};

use super::{T, Watch};
use crate::batch::{self, FlatRequest, Init, Simd};
use crate::cuda::{CudaError, Gpu};
use crate::flat::FlatModel;
use crate::flatq::FlatQModel;

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

/// A model the sampling job runs, both kinds through one code path ([`Sampling`]): the float
/// [`FlatModel`] of any shape, on the CPU or the GPU (which refuses, in one line, a shape its
/// kernels do not hold); the integer [`QModel`], on the CPU (the GPU kernels run float
/// models).
pub trait SampleModel {
    /// The GPU this kind samples on: [`Gpu`] for the float model; for the others a type
    /// without values, so that no GPU can be given to them.
    type Gpu;
    /// Whether a GPU can run this kind at all.
    const ON_GPU: bool;
    /// `gpu` as this kind's GPU, when it can run this kind.
    fn on(gpu: Gpu) -> Option<Self::Gpu>;
    /// The model's layout: its shape, D included.
    fn layout(&self) -> Layout;
    /// The model prepared for the CPU's widest path, `sampler` and `guidance` (a class the
    /// model has; `None` for a model of no classes).
    fn prepare(
        &self,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        guidance: Option<Guidance>,
    ) -> batch::Prepared;
    /// Samples `first .. first + count` of `job` (its model being `self`) on `gpu`, D values
    /// a sample, `chunk` being `(init, first, count)`.
    fn sample_gpu(
        &self,
        gpu: &Self::Gpu,
        job: &Sampling<'_, Self>,
        chunk: (Init<'_>, u64, usize),
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<f32>, CudaError>
    where
        Self: Sized;
}

impl SampleModel for FlatModel {
    type Gpu = Gpu;
    const ON_GPU: bool = true;
    fn on(gpu: Gpu) -> Option<Gpu> {
        Some(gpu)
    }
    fn layout(&self) -> Layout {
        FlatModel::layout(self)
    }
    fn prepare(
        &self,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        guidance: Option<Guidance>,
    ) -> batch::Prepared {
        batch::Prepared::float(Simd::detect(), self, schedule, sampler, guidance)
    }
    fn sample_gpu(
        &self,
        gpu: &Gpu,
        job: &Sampling<'_, Self>,
        (init, first, count): (Init<'_>, u64, usize),
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<f32>, CudaError> {
        let request = FlatRequest {
            model: self,
            schedule: job.schedule,
            sampler: job.sampler,
            init,
            seed: job.seed,
            first,
            count,
        };
        gpu.sample(&request, progress)
    }
}

/// A model kind that samples on the CPU only (the GPU kernels run float models): its GPU is a
/// type without values.
pub trait CpuOnly {
    /// The model's layout: its shape, D included.
    fn layout(&self) -> Layout;
    /// The model prepared for the CPU's widest path and `sampler`.
    fn prepare(&self, schedule: &Schedule<T>, sampler: &Sampler) -> batch::Prepared;
}

impl<const H: usize, const B: usize> CpuOnly for QModel<H, B> {
    fn layout(&self) -> Layout {
        Layout::of::<H, B>()
    }
    fn prepare(&self, schedule: &Schedule<T>, sampler: &Sampler) -> batch::Prepared {
        batch::Prepared::new(Simd::detect(), self, schedule, sampler)
    }
}

impl CpuOnly for FlatQModel {
    fn layout(&self) -> Layout {
        FlatQModel::layout(self)
    }
    fn prepare(&self, schedule: &Schedule<T>, sampler: &Sampler) -> batch::Prepared {
        batch::Prepared::new(Simd::detect(), self, schedule, sampler)
    }
}

impl<M: CpuOnly> SampleModel for M {
    type Gpu = Infallible;
    const ON_GPU: bool = false;
    fn on(_: Gpu) -> Option<Infallible> {
        None
    }
    fn layout(&self) -> Layout {
        CpuOnly::layout(self)
    }
    /// The integer model has no classes: `guidance` is `None`.
    fn prepare(
        &self,
        schedule: &Schedule<T>,
        sampler: &Sampler,
        _: Option<Guidance>,
    ) -> batch::Prepared {
        CpuOnly::prepare(self, schedule, sampler)
    }
    fn sample_gpu(
        &self,
        gpu: &Infallible,
        _: &Sampling<'_, Self>,
        _: (Init<'_>, u64, usize),
        _: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<f32>, CudaError> {
        match *gpu {}
    }
}

/// A point of D coordinates in messages: "(x, y, …)".
#[derive(Clone, Debug, PartialEq)]
pub struct Point(pub Vec<f32>);

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let each: Vec<String> = self.0.iter().map(f32::to_string).collect();
        write!(f, "({})", each.join(", "))
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
    #[error("sample {index} is not finite {point}; {cause}")]
    NotFinite {
        /// Its index.
        index: u64,
        /// Its value.
        point: Point,
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
#[derive(Clone, Debug, PartialEq)]
pub enum Overflow {
    /// It started from this given point.
    Start(Point),
    /// The network's output overflows (the chain with a network predicting no noise stays
    /// finite).
    Model,
    /// The noise schedule makes the reverse process overflow even with a network that
    /// predicts no noise.
    Schedule(ScheduleKind),
    /// The finite point the model drew, which the data's units map past f32's range.
    Units(Point),
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Overflow::Start(p) => write!(f, "it started from {p}"),
            Overflow::Model => f.write_str("the model's output overflows"),
            Overflow::Schedule(kind) => write!(
                f,
                "the noise schedule ({kind}) makes the reverse process overflow even with a \
                 network that predicts no noise"
            ),
            Overflow::Units(p) => write!(
                f,
                "the model drew {p}, which the data's units map past f32's range"
            ),
        }
    }
}

/// Where a job's samples go, a chunk at a time in index order: D values a sample, one
/// sample after another.
pub type Sink<'a, E> = dyn FnMut(&[f32]) -> Result<(), E> + 'a;

/// Where a job's chunks are drawn: the GPU, or the CPU with the model prepared once.
enum On<'a, M: SampleModel> {
    Gpu(&'a M::Gpu),
    Cpu(Box<batch::Prepared>),
}

/// What to sample with: samples `i` of `seed` are the same bits whatever the device, the
/// thread count or the chunking.
pub struct Sampling<'a, M: SampleModel> {
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
    /// The class every sample is drawn for and the guidance weight (`None`:
    /// unconditionally); a float model's on the CPU only.
    pub guidance: Option<Guidance>,
}

impl<M: SampleModel> Sampling<'_, M> {
    /// D: coordinates of a sample.
    pub fn dim(&self) -> usize {
        self.model.layout().dim
    }

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
    /// points of D values), passing them to `sink` in index order, a chunk at a time. Fails,
    /// naming its index, at the first sample that is not finite, and stops between chunks
    /// when `watch` asks to.
    pub fn run<E: std::error::Error + 'static>(
        &self,
        init: Option<&[f32]>,
        count: u64,
        watch: &dyn Watch,
        sink: &mut Sink<'_, E>,
    ) -> Result<(), SampleError<E>> {
        watch.total(count);
        let d = self.dim();
        let chunk = self.chunk() as u64;
        let progress = |done: usize| watch.advance(done as u64);
        // On the CPU, the packed weights, step table and time embeddings once for every chunk.
        let on = match self.gpu {
            Some(gpu) => On::<M>::Gpu(gpu),
            None => On::Cpu(Box::new(self.model.prepare(
                self.schedule,
                self.sampler,
                self.guidance,
            ))),
        };
        let mut first = 0u64;
        while first < count {
            if watch.stop() {
                return Err(SampleError::Stopped { done: first, count });
            }
            let n = (count - first).min(chunk) as usize;
            let init = match init {
                Some(points) => {
                    let at = first as usize * d;
                    Init::Given(&points[at..at + n * d])
                }
                None => Init::Noise,
            };
            let mut points = match &on {
                On::Gpu(gpu) => self
                    .model
                    .sample_gpu(gpu, self, (init, first, n), &progress)
                    .map_err(SampleError::Gpu)?,
                On::Cpu(cpu) => cpu.sample(init, self.seed, first, n, &progress),
            };
            let drawn = self.units.map(|units| {
                let drawn = points.clone();
                points.chunks_exact_mut(d).for_each(|p| units.to_data_in(p));
                drawn
            });
            let finite = |p: &[f32]| p.iter().all(|v| v.is_finite());
            if let Some(i) = points.chunks_exact(d).position(|p| !finite(p)) {
                let index = first + i as u64;
                let row = |xs: &[f32]| Point(xs[i * d..(i + 1) * d].to_vec());
                let cause = match (init, drawn) {
                    (_, Some(drawn)) if finite(&drawn[i * d..(i + 1) * d]) => {
                        Overflow::Units(row(&drawn))
                    }
                    (Init::Given(starts), _) => Overflow::Start(row(starts)),
                    (Init::Noise, _) => self.overflow_cause(index),
                };
                return Err(SampleError::NotFinite {
                    index,
                    point: row(&points),
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
        let zero = FlatModel::zero(self.model.layout());
        let prepared =
            batch::Prepared::float(Simd::detect(), &zero, self.schedule, self.sampler, None);
        let without_model = prepared.sample(Init::Noise, self.seed, index, 1, &|_| ());
        match without_model.iter().all(|v| v.is_finite()) {
            true => Overflow::Model,
            false => Overflow::Schedule(self.schedule.kind),
        }
    }
}
