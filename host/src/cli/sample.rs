//! `tinyddpm sample`: points from a model file, float or integer, through the batched
//! sampler, written as CSV.

use std::convert::Infallible;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::atomic::AtomicFile;
use tinyddpm::batch::{self, BatchModel, Init, SampleRequest, Simd};
use tinyddpm::csv;
use tinyddpm::cuda::Gpu;
use tinyddpm::input::Patience;
use tinyddpm::modelfile::{ModelFile, ModelFileError};
use tinyddpm_core::{Model, QModel, Sampler, Schedule};

use super::inspect::schedule_words;
use super::interrupt::{self, Interrupted};
use super::plot::read_model;
use super::{
    DeviceArg, SamplerArgs, T, describe, device, dispatch, files, open_input, progress_bar,
    thread_count,
};
use super::{say, tell};

/// Options of `tinyddpm sample`.
#[derive(Args, Clone, Debug)]
pub struct SampleArgs {
    /// The model file (from `train`, `import` or `quantize`)
    #[arg(long)]
    pub model: PathBuf,
    /// Number of samples (with --x-init: its row count, which this must then equal)
    #[arg(short = 'n', long = "count", required_unless_present = "x_init",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Seed: sample i uses the noise stream (seed, i), whatever the batch or thread count
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Start from these points instead of noise: a CSV whose first two columns are x, y
    /// (a header line allowed)
    #[arg(long)]
    pub x_init: Option<PathBuf>,
    /// Worker threads (0 = all cores); the samples do not depend on it
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where to sample (an integer model runs on the CPU)
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// The CSV file to write (`x,y`, one row per sample in index order)
    #[arg(long)]
    pub out: PathBuf,
}

/// Samples drawn per call of the sampler on the GPU: 8 MB of points on the host, and
/// calls long enough to keep the device busy.
const GPU_CHUNK: usize = 1 << 20;
/// Tiles per CPU thread in one call of the sampler: enough to balance the threads, few
/// enough that the memory of a chunk stays small and Ctrl-C is seen within seconds.
const TILES_PER_THREAD: usize = 64;
/// Lowers the chunk size (samples per sampler call), for tests of the streaming. It is
/// read only below the size the run would use anyway: no value of it can make a chunk,
/// and so the memory it holds, larger than without it.
const CHUNK_ENV: &str = "TINYDDPM_SAMPLE_CHUNK";

/// A model kind the CLI samples, both through one code path ([`Draw`]): the float [`Model`],
/// on the CPU or the GPU, and the integer [`QModel`], on the CPU only (the GPU kernels run
/// float models).
pub trait ModelKind<const H: usize, const B: usize>: BatchModel<H, B> {
    /// The GPU this kind samples on: [`Gpu`] for the float model; for the integer model a
    /// type without values, so that no GPU can be given to it.
    type Gpu;
    /// The model of this kind and shape a model file holds.
    fn decode(file: &ModelFile) -> Result<Box<Self>, ModelFileError>;
    /// Resolves `--device` for this kind (see [`device`]).
    fn device(arg: DeviceArg) -> Result<Option<Self::Gpu>>;
    /// The samples of `request` on `gpu`.
    fn sample_gpu(
        gpu: &Self::Gpu,
        request: &SampleRequest<'_, H, B, T, Self>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>>;
}

impl<const H: usize, const B: usize> ModelKind<H, B> for Model<H, B> {
    type Gpu = Gpu;
    fn decode(file: &ModelFile) -> Result<Box<Self>, ModelFileError> {
        file.float()
    }
    fn device(arg: DeviceArg) -> Result<Option<Gpu>> {
        device(arg)
    }
    fn sample_gpu(
        gpu: &Gpu,
        request: &SampleRequest<'_, H, B, T, Self>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>> {
        gpu.sample(request, progress).context("GPU sampling failed")
    }
}

impl<const H: usize, const B: usize> ModelKind<H, B> for QModel<H, B> {
    type Gpu = Infallible;
    fn decode(file: &ModelFile) -> Result<Box<Self>, ModelFileError> {
        file.integer()
    }
    /// The CPU, whatever was asked, saying so when the GPU was.
    fn device(arg: DeviceArg) -> Result<Option<Infallible>> {
        if arg != DeviceArg::Cpu {
            tell!("note: integer models run on the CPU: the GPU kernels run float models only");
        }
        Ok(None)
    }
    fn sample_gpu(
        gpu: &Infallible,
        _: &SampleRequest<'_, H, B, T, Self>,
        _: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<[f32; 2]>> {
        match *gpu {}
    }
}

/// Runs `tinyddpm sample`.
pub fn run(args: &SampleArgs) -> Result<()> {
    let mut inputs = vec![("--model", args.model.as_path())];
    if let Some(path) = &args.x_init {
        inputs.push(("--x-init", path.as_path()));
    }
    files::check(&inputs, &[("--out", &args.out)], &[])?;
    let file = read_model(&args.model, "--model")?;
    let init = match &args.x_init {
        Some(path) => {
            let reader = open_input(path, "--x-init", Patience::Unbounded)
                .context("cannot read --x-init")?;
            let name = path.display().to_string();
            let points = csv::read_rows_from::<2>(reader, &name, csv::MAX_ROWS)
                .context("cannot read --x-init")?;
            if let Some(n) = args.count
                && n != points.len() as u64
            {
                bail!(
                    "-n {n} does not match --x-init, which has {} rows",
                    points.len()
                );
            }
            Some(points)
        }
        None => None,
    };
    let count = init
        .as_ref()
        .map_or(args.count.unwrap_or(0), |p| p.len() as u64);
    // Each row is at least "0,0\n": a file the disk cannot hold is refused before any work.
    let least = count.checked_mul(4).and_then(|b| b.checked_add(4));
    files::check_space(&args.out, least, &format!("{count} samples"))?;
    let begin = Instant::now();
    let header = &file.header;
    let sampler = dispatch!(
        file.kind,
        header.hidden,
        header.blocks,
        decode_and_sample(args, &file, init.as_deref(), count)
    )?;
    say!(
        "wrote {count} samples to {} ({}, seed {}, {:.1} s)",
        args.out.display(),
        describe(&sampler),
        args.seed,
        begin.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Samples into the output file as they are drawn, chunk by chunk: memory stays bounded
/// whatever `-n` is, and the file appears (atomically) only when every sample is written.
fn decode_and_sample<const H: usize, const B: usize, M: ModelKind<H, B>>(
    args: &SampleArgs,
    file: &ModelFile,
    init: Option<&[[f32; 2]]>,
    count: u64,
) -> Result<Sampler> {
    let model = M::decode(file).context("cannot load the model")?;
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let sampler = args.sampler.resolve(file.header.sampler)?;
    let gpu = M::device(args.device)?;
    let write_error = || format!("cannot write the samples to {}", args.out.display());
    let mut out = AtomicFile::create(&args.out).with_context(write_error)?;
    csv::write_points_header(&mut out).with_context(write_error)?;
    let sink = &mut |points: &[[f32; 2]]| {
        csv::write_point_rows(&mut out, points).with_context(write_error)
    };
    let draw = Draw {
        gpu: gpu.as_ref(),
        model: &*model,
        schedule: &schedule,
        sampler: &sampler,
        seed: args.seed,
        threads: thread_count(),
    };
    draw.run(init, count, sink)?;
    out.commit().with_context(write_error)?;
    Ok(sampler)
}

/// What to sample with: samples `i` of `seed` are the same bits whatever the device, the
/// thread count or the chunking.
pub struct Draw<'a, const H: usize, const B: usize, M: ModelKind<H, B>> {
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
    /// CPU worker threads: the run's pool ([`thread_count`]), whose size sets the chunks.
    pub threads: usize,
}

impl<const H: usize, const B: usize, M: ModelKind<H, B>> Draw<'_, H, B, M> {
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
    /// points), passing them to `sink` in index order, a chunk at a time, with a progress bar.
    /// Fails, naming its index, at the first sample that is not finite, and stops between
    /// chunks at Ctrl-C once [`interrupt::watch`] runs.
    pub fn run(
        &self,
        init: Option<&[[f32; 2]]>,
        count: u64,
        sink: &mut dyn FnMut(&[[f32; 2]]) -> Result<()>,
    ) -> Result<()> {
        interrupt::watch()?;
        let chunk = self.chunk() as u64;
        let bar = progress_bar(count, "sample");
        let progress = |done: usize| bar.inc(done as u64);
        let mut first = 0u64;
        while first < count {
            if interrupt::requested() {
                bar.abandon();
                return Err(Interrupted::new(format!(
                    "interrupted after {first} of {count} samples; no samples were written"
                ))
                .into());
            }
            let n = (count - first).min(chunk) as usize;
            let init = match init {
                Some(points) => Init::Given(&points[first as usize..first as usize + n]),
                None => Init::Noise,
            };
            let request = SampleRequest {
                model: self.model,
                schedule: self.schedule,
                sampler: self.sampler,
                init,
                seed: self.seed,
                first,
                count: n,
            };
            let points = match self.gpu {
                Some(gpu) => M::sample_gpu(gpu, &request, &progress)?,
                None => batch::sample(&request, 0, &progress)?,
            };
            if let Some(i) = points.iter().position(|p| !p.iter().all(|v| v.is_finite())) {
                bar.abandon();
                let [x, y] = points[i];
                let index = first + i as u64;
                let cause = match init {
                    Init::Given(starts) => {
                        let [x0, y0] = starts[i];
                        format!("its --x-init row is ({x0}, {y0})")
                    }
                    Init::Noise => self.overflow_cause(index),
                };
                bail!("sample {index} is not finite ({x}, {y}); {cause}; nothing was written");
            }
            sink(&points)?;
            first += n as u64;
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Why sample `index` from noise overflowed: the same chain with a model that predicts
    /// no noise at all isolates the schedule and sampler from the network.
    fn overflow_cause(&self, index: u64) -> String {
        let zero = tinyddpm::modelfile::boxed_zero::<H, B>();
        let without_model =
            tinyddpm_core::sample(&zero, self.schedule, self.sampler, self.seed, index);
        match without_model.iter().all(|v| v.is_finite()) {
            true => "the model's output overflows: see `tinyddpm inspect`".into(),
            false => format!(
                "the noise schedule ({}) makes the reverse process overflow even with a \
                 network that predicts no noise",
                schedule_words(&self.schedule.kind)
            ),
        }
    }

    /// Samples `0..count` from noise into memory (see [`Draw::run`]).
    pub fn collect(&self, count: u64) -> Result<Vec<[f32; 2]>> {
        let mut points = Vec::new();
        self.run(None, count, &mut |chunk| {
            points.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(points)
    }
}
