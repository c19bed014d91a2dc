//! `tinyddpm demo`: the main job in one command. Trains the seed configuration, samples with
//! the seed's DDPM, scores the samples and draws every figure, all into one folder.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::batch::{Init, Request};
use tinyddpm::{atomic, csv, data, modelfile, plot};
use tinyddpm_core::Sampler;

use super::plot::{ForwardArgs, GRID_POINTS, REVERSE_POINTS};
use super::sample::Draw;
use super::train::{self, TrainArgs, train_on};
use super::{DeviceArg, T, check_points, describe, device, eval, files, interrupt};

/// The files `demo` writes, in its folder.
const OUTPUTS: [&str; 9] = [
    "model.tdm",
    "losses.csv",
    "samples.csv",
    "metrics.json",
    "loss.png",
    "samples.png",
    "compare.png",
    "forward.png",
    "reverse.png",
];

/// Options of `tinyddpm demo`.
#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// The folder to write everything into
    #[arg(long, default_value = "out/demo")]
    pub out_dir: PathBuf,
    /// Where to train and sample
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Training steps (the seed's 10,000; fewer for a quick look)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Samples to draw
    #[arg(short = 'n', long = "count", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Seed of training and sampling
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (0 = all cores)
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Runs `tinyddpm demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let begin = Instant::now();
    // Every argument and output is checked before the training starts: a failure after it
    // would leave a new model beside the old samples and figures.
    check_points("-n", args.count)?;
    let threads = files::threads(args.threads);
    let gpu = device(args.device)?;
    let dir = &args.out_dir;
    if dir.exists() && !dir.is_dir() {
        bail!("--out-dir {} is not a folder", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = |name: &str| dir.join(name);
    let paths = OUTPUTS.map(file);
    let outputs: Vec<(&str, &std::path::Path)> = OUTPUTS
        .iter()
        .zip(&paths)
        .map(|(name, path)| (*name, path.as_path()))
        .collect();
    files::check(&[], &outputs, &[])?;

    let train_args = TrainArgs {
        steps: args.steps,
        batch: None,
        lr: None,
        seed: Some(args.seed),
        ema: None,
        device: args.device,
        out: file("model.tdm"),
        losses: Some(file("losses.csv")),
        resume: None,
        checkpoint: None,
        checkpoint_every: 1000,
        threads,
        hidden: Some(128),
        blocks: Some(3),
    };
    train::check(&train_args)?;
    let trained = train_on(&train_args, gpu.as_ref())?;
    eprintln!(
        "trained {} steps in {:.1} s ({:.3} ms/step)",
        trained.steps,
        trained.seconds,
        1e3 * trained.seconds / trained.steps as f64
    );

    let (model, header) = modelfile::load::<128, 3>(&file("model.tdm"))?;
    let schedule = header.schedule::<T>()?;
    let sampler = Sampler::Ddpm;
    let sampling = Instant::now();
    let points = Draw {
        gpu: gpu.as_ref(),
        model: &*model,
        schedule: &schedule,
        sampler: &sampler,
        seed: args.seed,
        threads,
    }
    .collect(args.count)?;
    let sample_seconds = sampling.elapsed().as_secs_f64();
    eprintln!(
        "sampled {} points in {sample_seconds:.1} s ({})",
        points.len(),
        describe(&sampler)
    );
    csv::write_points(&file("samples.csv"), &points)?;

    // Ctrl-C after the samples were drawn stops before the next file; those written stay.
    let kept = || format!("{} holds what was written so far", dir.display());
    interrupt::check(kept)?;
    let metrics = eval::score(&points, 0)?;
    atomic::write(
        &file("metrics.json"),
        format!("{}\n", metrics.to_json()).as_bytes(),
    )
    .with_context(|| format!("cannot write {}", file("metrics.json").display()))?;

    interrupt::check(kept)?;
    let losses = csv::read_losses(&file("losses.csv"))?;
    plot::loss_curve(&file("loss.png"), &losses)?;
    let title = format!("Generated samples ({} points, DDPM)", points.len());
    plot::samples(&file("samples.png"), &points, &title)?;
    let real = data::true_samples(points.len(), 0);
    plot::compare(&file("compare.png"), &real, &points)?;
    interrupt::check(kept)?;
    super::plot::forward(&ForwardArgs {
        out: file("forward.png"),
        model: None,
        count: GRID_POINTS,
        seed: 0,
    })?;
    // The chains of the first samples drawn above: the last frame is those very points.
    let count = REVERSE_POINTS.min(args.count) as usize;
    interrupt::check(kept)?;
    let request = Request {
        model: &model,
        schedule: &schedule,
        sampler: &sampler,
        init: Init::Noise,
        seed: args.seed,
        first: 0,
        count,
    };
    let frames = super::plot::reverse_frames(&request);
    plot::reverse_grid(&file("reverse.png"), &frames, &describe(&sampler))?;

    println!("{}", eval::table(&metrics, 0).trim_end());
    println!(
        "wrote model.tdm, losses.csv, samples.csv, metrics.json, loss.png, samples.png, \
         compare.png, forward.png, reverse.png to {} in {:.1} s",
        dir.display(),
        begin.elapsed().as_secs_f64()
    );
    Ok(())
}
