//! `tinyddpm sample`: points from a model file through the batched sampler, written as CSV.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::batch::{self, Init, Request};
use tinyddpm::cuda::Gpu;
use tinyddpm::{csv, modelfile};
use tinyddpm_core::Sampler;

use super::{DeviceArg, SamplerArgs, T, check_folder, describe, device, dispatch, progress_bar};

/// Options of `tinyddpm sample`.
#[derive(Args, Clone, Debug)]
pub struct SampleArgs {
    /// The model file (from `train` or `import`)
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
    /// Where to sample
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// The CSV file to write (`x,y`, one row per sample in index order)
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `tinyddpm sample`.
pub fn run(args: &SampleArgs) -> Result<()> {
    let gpu = device(args.device)?;
    check_folder(&args.out)?;
    let init = match &args.x_init {
        Some(path) => {
            let points = csv::read_points(path).context("cannot read --x-init")?;
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
    let header = modelfile::read_header(&args.model).context("cannot load the model")?;
    let count = init
        .as_ref()
        .map_or(args.count.unwrap_or(0) as usize, Vec::len);
    let begin = Instant::now();
    let (points, sampler) = dispatch!(
        header.hidden,
        header.blocks,
        load_and_sample(args, gpu.as_ref(), init.as_deref(), count)
    )?;
    csv::write_points(&args.out, &points).context("cannot write the samples")?;
    println!(
        "wrote {count} samples to {} ({}, seed {}, {:.1} s)",
        args.out.display(),
        describe(&sampler),
        args.seed,
        begin.elapsed().as_secs_f64()
    );
    Ok(())
}

fn load_and_sample<const H: usize, const B: usize>(
    args: &SampleArgs,
    gpu: Option<&Gpu>,
    init: Option<&[[f32; 2]]>,
    count: usize,
) -> Result<(Vec<[f32; 2]>, Sampler)> {
    let (model, header) = modelfile::load::<H, B>(&args.model).context("cannot load the model")?;
    let schedule = header.schedule::<T>().context("cannot use the model")?;
    let sampler = args.sampler.resolve(header.sampler)?;
    let request = Request {
        model: &model,
        schedule: &schedule,
        sampler: &sampler,
        init: init.map_or(Init::Noise, Init::Given),
        seed: args.seed,
        first: 0,
        count,
    };
    let points = draw(gpu, &request, args.threads)?;
    Ok((points, sampler))
}

/// The samples of `request` with a progress bar, on the GPU when one is given (the same bits
/// either way).
pub fn draw<const H: usize, const B: usize>(
    gpu: Option<&Gpu>,
    request: &Request<'_, H, B, T>,
    threads: usize,
) -> Result<Vec<[f32; 2]>> {
    let bar = progress_bar(request.count as u64, "sample");
    let progress = |done: usize| bar.inc(done as u64);
    let points = match gpu {
        Some(gpu) => gpu
            .sample(request, &progress)
            .context("GPU sampling failed")?,
        None => batch::sample(request, threads, &progress),
    };
    bar.finish_and_clear();
    Ok(points)
}
