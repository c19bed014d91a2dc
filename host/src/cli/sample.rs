//! `tinyddpm sample`: points from a model file, float or integer, through the batched
//! sampler, written as CSV.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::atomic::AtomicFile;
use tinyddpm::csv;
use tinyddpm::cuda::check_sample_shape;
use tinyddpm::flatq::FlatQModel;
use tinyddpm::modelfile::ModelFile;
use tinyddpm::run::sample::{SampleModel, Sampling};
use tinyddpm_core::file::Kind;
use tinyddpm_core::{Guidance, Sampler};

use super::jobs::{device_for, draw};
use super::plot::read_model;
use super::thread_count;
use super::{DeviceArg, SamplerArgs, T, describe, device, files, read_model_points};
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
    /// Start from these points x_T instead of noise (the model's space): a CSV (a header line
    /// allowed) or .npy of the model's D columns
    #[arg(long)]
    pub x_init: Option<PathBuf>,
    /// Worker threads (0 = all cores); the samples do not depend on it
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Where to sample (an integer model runs on the CPU)
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Draw every sample of this class, 0 to C − 1, from a model trained with --classes
    /// [default: none, the model's unconditional "no class"]
    #[arg(long, value_name = "K")]
    pub class: Option<u16>,
    /// Classifier-free guidance weight w with --class: ε̂(∅) + w·(ε̂(K) − ε̂(∅)); 1 is the
    /// conditional model alone, 0 the unconditional one, above 1 follows the class more
    /// closely (two network evaluations a step instead of one)
    #[arg(
        long,
        value_name = "W",
        requires = "class",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub guidance: f32,
    /// The CSV file to write (`x,y`, one row per sample in index order)
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinyddpm sample`.
pub fn run(args: &SampleArgs) -> Result<()> {
    let mut inputs = vec![("--model", args.model.as_path())];
    if let Some(path) = &args.x_init {
        inputs.push(("--x-init", path.as_path()));
    }
    files::check(&inputs, &[("--out", &args.out)], &[])?;
    let file = read_model(&args.model, "--model")?;
    let guidance = guidance(args, file.header.classes)?;
    let init = match &args.x_init {
        Some(path) => {
            let dim = usize::from(file.header.data.dim);
            let cloud = read_model_points(path, "--x-init", csv::MAX_ROWS, dim)?;
            let rows = cloud.len() as u64;
            if let Some(n) = args.count
                && n != rows
            {
                bail!("-n {n} does not match --x-init, which has {rows} rows");
            }
            Some((cloud.values().to_vec(), rows))
        }
        None => None,
    };
    let count = init.as_ref().map_or(args.count.unwrap_or(0), |p| p.1);
    let init = init.as_ref().map(|p| p.0.as_slice());
    // Each row is at least "0,0\n": a file the disk cannot hold is refused before any work.
    let least = count.checked_mul(4).and_then(|b| b.checked_add(4));
    files::check_space(&args.out, least, &format!("{count} samples"))?;
    let begin = Instant::now();
    // Either kind runs whatever its shape: a float model on the GPU those its kernels hold
    // (another is refused before any device is probed, or runs on the CPU under `auto`), an
    // integer model on the CPU.
    let sampler = match file.kind {
        Kind::Float => {
            let model = file.flat().context("cannot load the model")?;
            let held = check_sample_shape(&model.layout());
            let gpu = match (args.device, held) {
                (DeviceArg::Cuda, Err(why)) => bail!("--device cuda: {why}"),
                (DeviceArg::Auto, Err(why)) => {
                    tell!("note: running on the CPU ({why})");
                    None
                }
                (device_arg, _) => device(device_arg)?,
            };
            write_samples(args, &file, &model, gpu.as_ref(), (init, count), guidance)?
        }
        Kind::Integer => {
            device_for::<FlatQModel>(args.device)?;
            let model = file.flat_integer().context("cannot load the model")?;
            write_samples(args, &file, &model, None, (init, count), guidance)?
        }
    };
    say!(
        "wrote {count} samples to {} ({}, seed {}, {:.1} s)",
        args.out.display(),
        describe(&sampler),
        args.seed,
        begin.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--class` and `--guidance` for a model of `classes` classes: a class it has and a
/// finite weight of at least 0.
fn guidance(args: &SampleArgs, classes: u16) -> Result<Option<Guidance>> {
    let Some(class) = args.class else {
        return Ok(None);
    };
    if classes == 0 {
        bail!(
            "--class {class}: {} is not conditioned on classes (train it with --classes)",
            args.model.display()
        );
    }
    if class >= classes {
        bail!(
            "--class {class}: the model has {classes} classes, 0 to {}",
            classes - 1
        );
    }
    Guidance::new(class, args.guidance)
        .map(Some)
        .with_context(|| {
            format!(
                "--guidance {} must be a finite weight of at least 0",
                args.guidance
            )
        })
}

/// Samples `model` into the output file as they are drawn, chunk by chunk: memory stays
/// bounded whatever `-n` is, and the file appears (atomically) only when every sample is
/// written.
fn write_samples<M: SampleModel>(
    args: &SampleArgs,
    file: &ModelFile,
    model: &M,
    gpu: Option<&M::Gpu>,
    (init, count): (Option<&[f32]>, u64),
    guidance: Option<Guidance>,
) -> Result<Sampler> {
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let sampler = args.sampler.resolve(file.header.sampler)?;
    let dim = model.layout().dim;
    let write_error = || format!("cannot write the samples to {}", args.out.display());
    let mut out = AtomicFile::create(&args.out).with_context(write_error)?;
    csv::write_points_header(&mut out, dim).with_context(write_error)?;
    let sampling = Sampling {
        gpu,
        model,
        schedule: &schedule,
        sampler: &sampler,
        seed: args.seed,
        units: file.header.data.units.as_ref(),
        threads: thread_count(),
        guidance,
    };
    draw(&sampling, init, count, &mut |points| {
        csv::write_point_rows(&mut out, points, dim).with_context(write_error)
    })?;
    out.commit().with_context(write_error)?;
    Ok(sampler)
}
