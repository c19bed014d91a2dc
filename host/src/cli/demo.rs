//! `tinyddpm demo`: the main job in one command. Trains the seed configuration (on the Swiss
//! roll, or another built-in set), samples with the seed's DDPM, scores the samples and
//! draws every figure, all into one folder; with
//! `--quantize`, also the integer model, its samples and scores beside the float model's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::batch::{Prepared, Simd};
use tinyddpm::data::DataSet;
use tinyddpm::flat::FlatModel;
use tinyddpm::quantize::{Calibration, CalibrationData, quantize_model};
use tinyddpm::scores::Points;
use tinyddpm::{atomic, csv, data, modelfile, plot};
use tinyddpm_core::{QSeedModel, Sampler, Schedule, SeedModel};

use tinyddpm::run::sample::{SampleModel, Sampling};
use tinyddpm::run::train::{Start, TrainJob};
use tinyddpm::train::TrainConfig;

use super::eval::SetScores;
use super::jobs::{device_for, draw, run_job};
use super::plot::{GRID_POINTS, REVERSE_POINTS, data_name, real_label};
use super::shapes::SEED;
use super::{DeviceArg, T, check_points, describe, device, eval, files, interrupt, thread_count};
use super::{say, tell};

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

/// The further files of `demo --quantize`: the integer model, its samples and scores, and
/// the float and the integer samples side by side.
const QUANTIZE_OUTPUTS: [&str; 4] = [
    "model.q.tdm",
    "samples.q.csv",
    "metrics.q.json",
    "float_vs_int.png",
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
    /// Also quantize the trained model (`tinyddpm quantize`'s default calibration), sample
    /// the integer model (on the CPU) with the same seed and score it beside the float one
    #[arg(long)]
    pub quantize: bool,
    /// The built-in data set to train on [default: swissroll]
    #[arg(long, value_name = "NAME", help = format!(
        "The built-in data set to train on: {} [default: swissroll]",
        DataSet::names()
    ))]
    pub data: Option<DataSet>,
}

/// Runs `tinyddpm demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let begin = Instant::now();
    // Every argument and output is checked before the training starts: a failure after it
    // would leave a new model beside the old samples and figures.
    check_points("-n", args.count)?;
    let threads = thread_count();
    let gpu = device(args.device)?;
    // The integer model samples on the CPU: said once when the float model runs on the GPU.
    let int_gpu = match (args.quantize, &gpu) {
        (true, Some(_)) => device_for::<QSeedModel>(args.device)?,
        _ => None,
    };
    let dir = &args.out_dir;
    if dir.exists() && !dir.is_dir() {
        bail!("--out-dir {} is not a folder", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = |name: &str| dir.join(name);
    let names: Vec<&str> = match args.quantize {
        true => OUTPUTS.iter().chain(&QUANTIZE_OUTPUTS).copied().collect(),
        false => OUTPUTS.to_vec(),
    };
    let paths: Vec<PathBuf> = names.iter().map(|name| file(name)).collect();
    let outputs: Vec<(&str, &Path)> = names
        .iter()
        .zip(&paths)
        .map(|(name, path)| (*name, path.as_path()))
        .collect();
    files::check(&[], &outputs, &[])?;

    // The seed recipe: its batch, learning rate and no EMA, DDPM as the file's sampler.
    let job = TrainJob {
        steps: args.steps,
        out: file("model.tdm"),
        losses: file("losses.csv"),
        checkpoint: None,
        default_sampler: Sampler::Ddpm,
    };
    let set = args.data.unwrap_or_default();
    let config = TrainConfig {
        steps: args.steps,
        seed: args.seed,
        threads,
        data: set.into(),
        ..TrainConfig::default()
    };
    let (hidden, blocks) = SEED;
    let trained = run_job(&job, hidden, blocks, Start::New(config), gpu.as_ref())?;
    tell!(
        "trained {} steps in {:.1} s ({:.3} ms/step)",
        trained.steps,
        trained.seconds,
        1e3 * trained.seconds / trained.steps as f64
    );

    let (model, header) = modelfile::load::<128, 3, SeedModel>(&file("model.tdm"))?;
    let schedule = header.schedule::<T>()?;
    let sampler = Sampler::Ddpm;
    let draw = Drawing {
        schedule: &schedule,
        sampler: &sampler,
        seed: args.seed,
        threads,
        count: args.count,
    };
    let points = draw.samples("float", &FlatModel::of(&*model), gpu.as_ref())?;
    csv::write_points(&file("samples.csv"), &points)?;

    // Ctrl-C after the samples were drawn stops before the next file; those written stay.
    let kept = || format!("{} holds what was written so far", dir.display());
    interrupt::check(kept)?;
    let metrics = eval::score_set(&points, set, 0)?;
    write_metrics(&file("metrics.json"), &metrics)?;

    interrupt::check(kept)?;
    let losses = super::plot::read_loss_series(&file("losses.csv"), "losses.csv")?;
    plot::loss_curve(&file("loss.png"), &losses)?;
    let title = format!("Generated samples ({} points, DDPM)", points.len());
    plot::samples(&file("samples.png"), &points, &title)?;
    let real = data::true_samples(set, points.len(), 0);
    plot::compare(
        &file("compare.png"),
        (&real_label(set), &real),
        ("Generated", &points),
    )?;
    interrupt::check(kept)?;
    let truth = data::true_samples(set, GRID_POINTS as usize, 0);
    plot::forward_grid(
        &file("forward.png"),
        &plot::forward_frames(&Points::from_pairs(&truth)?, &schedule, 0),
        &data_name(set),
    )?;
    // The chains of the first samples drawn above: the last frame is those very points.
    let count = REVERSE_POINTS.min(args.count) as usize;
    interrupt::check(kept)?;
    let prepared = Prepared::new(Simd::detect(), &*model, &schedule, &sampler);
    let frames = plot::reverse_frames(&prepared, (&schedule, &sampler), args.seed, count);
    plot::reverse_grid(&file("reverse.png"), &frames, &describe(&sampler))?;

    let int_metrics = match args.quantize {
        true => {
            interrupt::check(kept)?;
            let q = quantized(&model, &header, &schedule, set, &file("model.q.tdm"))?;
            interrupt::check(kept)?;
            let int_points = draw.samples("integer", &*q, int_gpu.as_ref())?;
            csv::write_points(&file("samples.q.csv"), &int_points)?;
            interrupt::check(kept)?;
            let int_metrics = eval::score_set(&int_points, set, 0)?;
            write_metrics(&file("metrics.q.json"), &int_metrics)?;
            plot::compare(
                &file("float_vs_int.png"),
                (&label("Float model", &metrics), &points),
                (&label("Integer model", &int_metrics), &int_points),
            )?;
            Some(int_metrics)
        }
        false => None,
    };

    match &int_metrics {
        None => say!("{}", metrics.table(0).trim_end()),
        Some(int) => {
            say!("float model (model.tdm):\n{}", metrics.table(0).trim_end());
            say!("integer model (model.q.tdm):\n{}", int.table(0).trim_end());
        }
    }
    say!(
        "wrote {} to {} in {:.1} s",
        names.join(", "),
        dir.display(),
        begin.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What `demo` samples with, for either model kind.
struct Drawing<'a> {
    schedule: &'a Schedule<T>,
    sampler: &'a Sampler,
    seed: u64,
    threads: usize,
    count: u64,
}

impl Drawing<'_> {
    /// Samples `0..count` of the seed from `model` (the `kind` named in the note), timed.
    fn samples<M: SampleModel>(
        &self,
        kind: &str,
        model: &M,
        gpu: Option<&M::Gpu>,
    ) -> Result<Vec<[f32; 2]>> {
        let begin = Instant::now();
        let sampling = Sampling {
            gpu,
            model,
            schedule: self.schedule,
            sampler: self.sampler,
            seed: self.seed,
            units: None,
            threads: self.threads,
        };
        let mut points = Vec::new();
        draw(&sampling, None, self.count, &mut |chunk| {
            points.extend(chunk.as_chunks::<2>().0);
            Ok(())
        })?;
        tell!(
            "sampled {} points from the {kind} model in {:.1} s ({})",
            points.len(),
            begin.elapsed().as_secs_f64(),
            describe(self.sampler)
        );
        Ok(points)
    }
}

/// The trained model quantized with the default calibration on its data set, written to
/// `path`.
fn quantized(
    model: &SeedModel,
    header: &tinyddpm_core::Header,
    schedule: &Schedule<T>,
    set: DataSet,
    path: &Path,
) -> Result<Box<QSeedModel>> {
    let begin = Instant::now();
    let calibration = Calibration {
        data: CalibrationData::Set(set),
        ..Calibration::default()
    };
    let (q, report) =
        quantize_model(model, schedule, &calibration).context("cannot quantize the model")?;
    modelfile::save(path, &*q, header)?;
    tell!(
        "quantized in {:.1} s ({} calibration inputs, {} activations clipped)",
        begin.elapsed().as_secs_f64(),
        report.samples,
        report.clipped()
    );
    Ok(q)
}

/// A panel title with the samples' headline score.
fn label(model: &str, metrics: &SetScores) -> String {
    format!("{model}, {}", metrics.headline())
}

/// Writes the scores as one JSON object.
fn write_metrics(path: &Path, metrics: &SetScores) -> Result<()> {
    atomic::write(path, format!("{}\n", metrics.json()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
