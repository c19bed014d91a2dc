//! `tinyddpm demo`: the main job in one command. Trains the seed configuration (on the Swiss
//! roll, another built-in set or the points of a file, any D), samples with the seed's DDPM,
//! scores the samples and draws every figure, all into one folder; with `--quantize`, also
//! the integer model, its samples and scores beside the float model's.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::batch::{Prepared, Simd};
use tinyddpm::data::{DataSet, Normalize, PointSet, TrainingData};
use tinyddpm::flatq::FlatQModel;
use tinyddpm::modelfile::ModelFile;
use tinyddpm::quantize::{Calibration, CalibrationData, quantize};
use tinyddpm::scores::Points;
use tinyddpm::{atomic, csv, data, modelfile, plot};
use tinyddpm_core::{Sampler, Schedule, Units};

use tinyddpm::run::sample::{SampleModel, Sampling};
use tinyddpm::run::train::{Start, TrainJob};
use tinyddpm::train::TrainConfig;

use super::eval::SetScores;
use super::jobs::{device_for, draw, run_job};
use super::plot::{GRID_POINTS, REVERSE_POINTS, data_name, read_model, real_label};
use super::plot::{forward_title, reverse_title};
use super::shapes::SEED;
use super::train::{DataArg, parse_data, read_data_file};
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
    /// The data to train on: a built-in set or a file of points [default: swissroll]
    #[arg(long, value_name = "NAME|FILE", value_parser = parse_data, help = format!(
        "The data to train on: a built-in set, {}, or a CSV or .npy file of N rows × D \
         columns, D from 1 to 16, normalized per column (mean 0, deviation 1) for training; \
         its samples are scored against and drawn beside the file's points \
         [default: swissroll]",
        DataSet::names()
    ))]
    pub data: Option<DataArg>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and
    /// sample it (`train --ema`): the seed recipe's last weights are noisy, the average is not
    #[arg(long, allow_negative_numbers = true)]
    pub ema: Option<f32>,
}

/// What the demo trains on, and what its samples are scored against and drawn beside.
enum Source {
    /// A built-in set: its fresh samples.
    Set(DataSet),
    /// A file's points: the trainer's (normalized) and the file's own (its units).
    File {
        name: String,
        points: Arc<PointSet>,
        raw: Points,
    },
}

impl Source {
    fn read(arg: Option<&DataArg>) -> Result<Self> {
        Ok(match arg {
            None => Self::Set(DataSet::default()),
            Some(DataArg::Set(set)) => Self::Set(*set),
            Some(DataArg::File(path)) => {
                let (raw, points) = read_data_file(path, Normalize::Standard)?;
                Self::File {
                    name: path.display().to_string(),
                    points: Arc::new(points),
                    raw,
                }
            }
        })
    }

    fn training_data(&self) -> TrainingData {
        match self {
            Self::Set(set) => TrainingData::Set(*set),
            Self::File { points, .. } => TrainingData::Points(points.clone()),
        }
    }

    /// The scores of `samples` (data units): against fresh samples of a set (seed 0), or
    /// against every point of the file.
    fn score(&self, samples: &Points) -> Result<SetScores> {
        match self {
            Self::Set(set) => {
                let pairs = samples.values().as_chunks::<2>().0;
                eval::score_set(pairs, *set, 0)
            }
            Self::File { name, raw, .. } => SetScores::against_points(samples, raw, name),
        }
    }

    /// The data for the figure beside `n` samples, and its panel's title: `n` fresh points
    /// of a set, or the file's first `n` rows.
    fn real(&self, n: usize) -> Result<(Points, String)> {
        Ok(match self {
            Self::Set(set) => (
                Points::from_pairs(&data::true_samples(*set, n, 0))?,
                real_label(*set),
            ),
            Self::File { name, raw, .. } => (
                first_rows(raw.dim(), raw.values(), n)?,
                format!("Data ({name})"),
            ),
        })
    }

    /// The forward figure's points in the model's space (the trainer's x₀) and its name.
    fn forward_points(&self, n: usize) -> Result<(Points, String)> {
        Ok(match self {
            Self::Set(set) => (
                Points::from_pairs(&data::true_samples(*set, n, 0))?,
                data_name(*set),
            ),
            Self::File { name, points, .. } => (
                first_rows(points.dim(), points.values(), n)?,
                forward_title(name, points.dim()),
            ),
        })
    }

    /// The quantizer's calibration x₀.
    fn calibration(&self) -> Result<CalibrationData> {
        Ok(match self {
            Self::Set(set) => CalibrationData::Set(*set),
            Self::File { points, .. } => {
                CalibrationData::Points(Points::new(points.dim(), points.values().to_vec())?)
            }
        })
    }
}

/// The first `n` rows (all of them when there are fewer) of the row-major points `values`
/// of `dim` coordinates.
fn first_rows(dim: usize, values: &[f32], n: usize) -> Result<Points> {
    let rows = n.min(values.len() / dim);
    Ok(Points::new(dim, values[..rows * dim].to_vec())?)
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
        (true, Some(_)) => device_for::<FlatQModel>(args.device)?,
        _ => None,
    };
    let dir = &args.out_dir;
    if dir.exists() && !dir.is_dir() {
        bail!("--out-dir {} is not a folder", dir.display());
    }
    // The data is read, and the run checked against it, before the folder is made.
    let source = Source::read(args.data.as_ref())?;
    let config = TrainConfig {
        steps: args.steps,
        seed: args.seed,
        threads,
        data: source.training_data(),
        ema: args.ema,
        ..TrainConfig::default()
    };
    config.validate().map_err(anyhow::Error::msg)?;
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
    let inputs: Vec<(&str, &Path)> = match &args.data {
        Some(DataArg::File(path)) => vec![("--data", path.as_path())],
        _ => Vec::new(),
    };
    files::check(&inputs, &outputs, &[])?;

    // The seed recipe: its batch and learning rate (no EMA unless asked), DDPM as the file's
    // sampler.
    let job = TrainJob {
        steps: args.steps,
        out: file("model.tdm"),
        losses: file("losses.csv"),
        checkpoint: None,
        default_sampler: Sampler::Ddpm,
    };
    let (hidden, blocks) = SEED;
    let trained = run_job(&job, hidden, blocks, Start::New(config), gpu.as_ref())?;
    tell!(
        "trained {} steps in {:.1} s ({:.3} ms/step)",
        trained.steps,
        trained.seconds,
        1e3 * trained.seconds / trained.steps as f64
    );

    let trained = read_model(&file("model.tdm"), "model.tdm")?;
    let model = trained.flat().context("cannot load the model")?;
    let schedule = trained.schedule::<T>().context("cannot use the model")?;
    let sampler = Sampler::Ddpm;
    let draw = Drawing {
        schedule: &schedule,
        sampler: &sampler,
        seed: args.seed,
        threads,
        count: args.count,
        units: trained.header.data.units.as_ref(),
    };
    let points = draw.samples("float", &model, gpu.as_ref())?;
    csv::write_cloud(&file("samples.csv"), &points)?;

    // Ctrl-C after the samples were drawn stops before the next file; those written stay.
    let kept = || format!("{} holds what was written so far", dir.display());
    interrupt::check(kept)?;
    let metrics = source.score(&points)?;
    write_metrics(&file("metrics.json"), &metrics)?;

    interrupt::check(kept)?;
    let losses = super::plot::read_loss_series(&file("losses.csv"), "losses.csv")?;
    plot::loss_curve(&file("loss.png"), &losses)?;
    let title = format!("Generated samples ({} points, DDPM)", points.len());
    plot::samples_of_any_dim(&file("samples.png"), &points, &title)?;
    let (real, real_label) = source.real(points.len())?;
    plot::compare_of_any_dim(
        &file("compare.png"),
        (&real_label, &real),
        ("Generated", &points),
    )?;
    interrupt::check(kept)?;
    let (x0, data_name) = source.forward_points(GRID_POINTS as usize)?;
    plot::forward_grid(
        &file("forward.png"),
        &plot::forward_frames(&x0, &schedule, 0),
        &data_name,
    )?;
    // The chains of the first samples drawn above: the last frame is those very points.
    let count = REVERSE_POINTS.min(args.count) as usize;
    interrupt::check(kept)?;
    let prepared = Prepared::float(Simd::detect(), &model, &schedule, &sampler, None);
    let frames = plot::reverse_frames(&prepared, (&schedule, &sampler), args.seed, count);
    let title = reverse_title(&sampler, prepared.dim());
    plot::reverse_grid(&file("reverse.png"), &frames, &title)?;

    let int_metrics = match args.quantize {
        true => {
            interrupt::check(kept)?;
            let calibration = source.calibration()?;
            let q = quantized(
                &trained,
                &model,
                &schedule,
                calibration,
                &file("model.q.tdm"),
            )?;
            interrupt::check(kept)?;
            let int_points = draw.samples("integer", &q, int_gpu.as_ref())?;
            csv::write_cloud(&file("samples.q.csv"), &int_points)?;
            interrupt::check(kept)?;
            let int_metrics = source.score(&int_points)?;
            write_metrics(&file("metrics.q.json"), &int_metrics)?;
            plot::compare_of_any_dim(
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
    /// The model file's map to the data's units.
    units: Option<&'a Units>,
}

impl Drawing<'_> {
    /// Samples `0..count` of the seed from `model` (the `kind` named in the note), timed.
    fn samples<M: SampleModel>(
        &self,
        kind: &str,
        model: &M,
        gpu: Option<&M::Gpu>,
    ) -> Result<Points> {
        let begin = Instant::now();
        let sampling = Sampling {
            gpu,
            model,
            schedule: self.schedule,
            sampler: self.sampler,
            seed: self.seed,
            units: self.units,
            threads: self.threads,
            guidance: None,
        };
        let mut values = Vec::new();
        draw(&sampling, None, self.count, &mut |chunk| {
            values.extend_from_slice(chunk);
            Ok(())
        })?;
        let points = Points::new(sampling.dim(), values)?;
        tell!(
            "sampled {} points from the {kind} model in {:.1} s ({})",
            points.len(),
            begin.elapsed().as_secs_f64(),
            describe(self.sampler)
        );
        Ok(points)
    }
}

/// The trained model (`file`, read as `model`) quantized with the default calibration on
/// `data`, written to `path`.
fn quantized(
    file: &ModelFile,
    model: &tinyddpm::flat::FlatModel,
    schedule: &Schedule<T>,
    data: CalibrationData,
    path: &Path,
) -> Result<FlatQModel> {
    let begin = Instant::now();
    let calibration = Calibration {
        data,
        ..Calibration::default()
    };
    let (q, report) =
        quantize(model, schedule, &calibration).context("cannot quantize the model")?;
    modelfile::save_flat_integer(path, &q, &file.header)?;
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
