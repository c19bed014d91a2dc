//! `tinyddpm plot …`: the seed notebook's figures as PNG files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use tinyddpm::batch::{Init, Prepared, Simd};
use tinyddpm::data::{DataSet, points};
use tinyddpm::input::Patience;
use tinyddpm::modelfile::ModelFile;
use tinyddpm::scores::Points;
use tinyddpm::{csv, data, plot};
use tinyddpm_core::condition::Evaluations;
use tinyddpm_core::file::Kind;
use tinyddpm_core::{Guidance, Sampler, Schedule, ScheduleKind};

use super::say;
use super::{MAX_POINTS, SamplerArgs, T, check_points, describe, files, open_input};

/// Points drawn in the forward-process grid.
pub const GRID_POINTS: u64 = 1000;
/// Chains drawn in the reverse-process grid: each runs every reverse step on the core's
/// scalar-order code (16 lanes, no wide SIMD), a few seconds for 500.
pub const REVERSE_POINTS: u64 = 500;

/// The figures.
#[derive(Subcommand, Clone, Debug)]
pub enum PlotCommand {
    /// The training loss per step and its moving average
    Loss {
        /// The loss log (CSV `step,loss`, as `train` writes it)
        #[arg(long)]
        losses: PathBuf,
        /// The PNG to write
        #[arg(long)]
        out: PathBuf,
    },
    /// A scatter plot of samples
    Samples {
        /// The samples (CSV, first two columns x, y)
        #[arg(long)]
        samples: PathBuf,
        /// The PNG to write
        #[arg(long)]
        out: PathBuf,
        /// Figure title
        #[arg(long, default_value = "Generated samples")]
        title: String,
    },
    /// True samples next to generated ones (or two sets of samples), on the same axes
    Compare {
        /// The generated samples (CSV), drawn on the right
        #[arg(long)]
        samples: PathBuf,
        /// The PNG to write
        #[arg(long)]
        out: PathBuf,
        /// Seed of the true samples (as many as generated ones)
        #[arg(long, default_value_t = 0, conflicts_with = "against")]
        seed: u64,
        /// The built-in data set the true samples are drawn from [default: swissroll]
        #[arg(long, value_name = "NAME", conflicts_with = "against")]
        data: Option<DataSet>,
        /// Draw these samples (CSV) on the left instead of true ones, e.g. a float model's
        /// beside its integer model's
        #[arg(long)]
        against: Option<PathBuf>,
        /// The panels' titles, left then right [default: "Real Swiss roll" (or the set's
        /// name) and "Generated"; with --against, the two files' names]
        #[arg(long, num_args = 2, value_names = ["LEFT", "RIGHT"])]
        labels: Option<Vec<String>>,
    },
    /// True samples noised to t = 0, 2, 5, 10, 20, 50 and 100 % of T
    Forward(ForwardArgs),
    /// Every built-in data set (fresh points), or samples of each from a folder
    Sets {
        /// The PNG to write
        #[arg(long)]
        out: PathBuf,
        /// Points per set
        #[arg(short = 'n', long = "count", default_value_t = GRID_POINTS,
              value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Seed of the points
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Draw DIR/NAME.csv (samples of a model of each set) instead of fresh points; a set
        /// without its file is left out
        #[arg(long, value_name = "DIR")]
        samples_from: Option<PathBuf>,
        /// Figure title [default: "Built-in data sets", or "Samples" with --samples-from]
        #[arg(long)]
        title: Option<String>,
    },
    /// The reverse chain from noise to samples, at several steps
    Reverse(ReverseArgs),
    /// Samples of every class of a model trained with --classes, one panel per guidance
    /// weight
    Guidance(GuidanceArgs),
    /// Sample quality against network evaluations, one line per sampler
    Quality {
        /// The scores: CSV `label,evaluations,mean_distance,p95_distance[,…]` with one header
        /// line, as benches/quality_samplers.sh writes them
        #[arg(long)]
        table: PathBuf,
        /// The label drawn as the level to reach (a dashed line)
        #[arg(long, default_value = "ddpm")]
        reference: String,
        /// The PNG to write
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `tinyddpm plot forward`.
#[derive(Args, Clone, Debug)]
pub struct ForwardArgs {
    /// The PNG to write
    #[arg(long)]
    pub out: PathBuf,
    /// Take the noise schedule from this model file [default: the seed's linear schedule]
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Points
    #[arg(short = 'n', long = "count", default_value_t = GRID_POINTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Seed of the points and of their noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The built-in data set the points are drawn from [default: swissroll]
    #[arg(long, value_name = "NAME", conflicts_with = "points")]
    pub data: Option<DataSet>,
    /// Noise the first -n points of this file instead (CSV or .npy, any D; a point of more
    /// than two coordinates is drawn by its first two), mapped into the model's space when
    /// --model's file records data units
    #[arg(long, value_name = "FILE")]
    pub points: Option<PathBuf>,
}

/// Options of `tinyddpm plot guidance`.
#[derive(Args, Clone, Debug)]
pub struct GuidanceArgs {
    /// The model file (a float model trained with --classes)
    #[arg(long)]
    pub model: PathBuf,
    /// The PNG to write
    #[arg(long)]
    pub out: PathBuf,
    /// Samples per class in each panel (samples 0..n of the seed, the same as `sample
    /// --class K --guidance W` draws)
    #[arg(short = 'n', long = "count", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub count: u64,
    /// The guidance weights, one panel each
    #[arg(long, value_delimiter = ',', default_values_t = [0.0, 1.0, 1.5, 2.0, 3.0, 5.0],
          num_args = 1..=12, allow_negative_numbers = true)]
    pub weights: Vec<f32>,
    /// Seed of the samples
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub sampler: SamplerArgs,
}

/// Options of `tinyddpm plot reverse`.
#[derive(Args, Clone, Debug)]
pub struct ReverseArgs {
    /// The model file (float or integer)
    #[arg(long)]
    pub model: PathBuf,
    /// The PNG to write
    #[arg(long)]
    pub out: PathBuf,
    /// Chains drawn (samples 0..n of the seed, the same as `sample` draws)
    #[arg(short = 'n', long = "count", default_value_t = REVERSE_POINTS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Seed of the chains
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub sampler: SamplerArgs,
}

/// Runs `tinyddpm plot …`.
pub fn run(command: &PlotCommand) -> Result<()> {
    let (inputs, out): (Vec<(&str, PathBuf)>, _) = match command {
        PlotCommand::Loss { losses, out } => (vec![("--losses", losses.clone())], out),
        PlotCommand::Samples { samples, out, .. } => (vec![("--samples", samples.clone())], out),
        PlotCommand::Compare {
            samples,
            out,
            against,
            ..
        } => {
            let mut inputs = vec![("--samples", samples.clone())];
            inputs.extend(against.iter().map(|a| ("--against", a.clone())));
            (inputs, out)
        }
        PlotCommand::Forward(args) => (
            (args.model.iter().map(|m| ("--model", m.clone())))
                .chain(args.points.iter().map(|p| ("--points", p.clone())))
                .collect(),
            &args.out,
        ),
        PlotCommand::Reverse(args) => (vec![("--model", args.model.clone())], &args.out),
        PlotCommand::Guidance(args) => (vec![("--model", args.model.clone())], &args.out),
        PlotCommand::Quality { table, out, .. } => (vec![("--table", table.clone())], out),
        PlotCommand::Sets {
            out, samples_from, ..
        } => {
            let files = samples_from.iter().flat_map(|dir| {
                DataSet::ALL.map(|set| ("--samples-from", dir.join(format!("{set}.csv"))))
            });
            (files.collect(), out)
        }
    };
    let inputs: Vec<(&str, &std::path::Path)> =
        inputs.iter().map(|(f, p)| (*f, p.as_path())).collect();
    files::check(&inputs, &[("--out", out)], &[])?;
    match command {
        PlotCommand::Loss { losses, out } => {
            let series = read_loss_series(losses, "--losses")?;
            plot::loss_curve(out, &series)?;
        }
        PlotCommand::Samples {
            samples,
            out,
            title,
        } => {
            let points = read_cloud_points(samples, "--samples")?;
            let title = format!("{title} ({} points)", points.len());
            plot::samples_of_any_dim(out, &points, &title)?;
        }
        PlotCommand::Compare {
            samples,
            out,
            seed,
            data,
            against,
            labels,
        } => {
            let points = read_cloud_points(samples, "--samples")?;
            let (left, names) = match against {
                Some(path) => {
                    let left = read_cloud_points(path, "--against")?;
                    if left.dim() != points.dim() {
                        bail!(
                            "--against {} has {} columns, --samples {} has {}",
                            path.display(),
                            left.dim(),
                            samples.display(),
                            points.dim()
                        );
                    }
                    (left, [path, samples].map(|p| p.display().to_string()))
                }
                None => {
                    if points.dim() != 2 {
                        bail!(
                            "--samples {} has {} columns and the built-in sets 2: give points \
                             of its width to compare with --against FILE",
                            samples.display(),
                            points.dim()
                        );
                    }
                    let set = data.unwrap_or_default();
                    let real = data::true_samples(set, points.len(), *seed);
                    let real = Points::from_pairs(&real)?;
                    (real, [real_label(set), "Generated".into()])
                }
            };
            let [left_label, right_label] = match labels.as_deref() {
                Some([left, right]) => [left, right],
                _ => [&names[0], &names[1]],
            };
            plot::compare_of_any_dim(out, (left_label, &left), (right_label, &points))?;
        }
        PlotCommand::Forward(args) => forward(args)?,
        PlotCommand::Sets {
            out,
            count,
            seed,
            samples_from,
            title,
        } => sets(
            out,
            *count,
            *seed,
            samples_from.as_deref(),
            title.as_deref(),
        )?,
        PlotCommand::Reverse(args) => reverse(args)?,
        PlotCommand::Guidance(args) => guidance(args)?,
        PlotCommand::Quality {
            table,
            reference,
            out,
        } => {
            let file = open_input(table, "--table", Patience::Unbounded)
                .context("cannot read the quality table")?;
            let name = table.display().to_string();
            let rows = csv::read_labeled_from::<3>(file, &name, MAX_QUALITY_ROWS)
                .context("cannot read the quality table")?;
            let rows: Vec<plot::QualityRow> = rows
                .into_iter()
                .map(|(sampler, [evaluations, mean, p95])| plot::QualityRow {
                    sampler,
                    evaluations: evaluations as u32,
                    mean_distance: mean.into(),
                    p95_distance: p95.into(),
                })
                .collect();
            plot::quality(out, &rows, reference)?;
        }
    }
    say!("wrote {}", out.display());
    Ok(())
}

/// The most rows of a quality table read: far more points than its lines can show.
const MAX_QUALITY_ROWS: usize = 100_000;

/// The points of a figure, any D, at most [`MAX_POINTS`].
fn read_cloud_points(path: &Path, flag: &str) -> Result<Points> {
    let what = match flag {
        "--samples" => "the samples".to_string(),
        _ => flag.to_string(),
    };
    let file = open_input(path, flag, Patience::Unbounded)
        .with_context(|| format!("cannot read {what}"))?;
    let name = path.display().to_string();
    points::read_cloud(file, &name, MAX_POINTS as usize)
        .with_context(|| format!("cannot read {what}"))
}

/// The 2-D points of a figure that draws two sets on one pair of axes; points of another D
/// are one line naming the figure that draws them.
fn read_figure_points(path: &Path, flag: &str) -> Result<Vec<[f32; 2]>> {
    let cloud = read_cloud_points(path, flag)?;
    if cloud.dim() != 2 {
        bail!(
            "{flag} {} has {} columns: this figure draws 2-D points (`tinyddpm plot samples` \
             draws points of any D)",
            path.display(),
            cloud.dim()
        );
    }
    Ok(cloud.values().as_chunks::<2>().0.to_vec())
}

/// A loss log, read row by row into a series of bounded size.
pub fn read_loss_series(path: &Path, flag: &str) -> Result<plot::LossSeries> {
    let file = open_input(path, flag, Patience::Unbounded).context("cannot read the loss log")?;
    let mut series = plot::LossSeries::new();
    let name = path.display().to_string();
    csv::visit_losses(file, &name, csv::MAX_LOSS_ROWS, |step, loss| {
        series.push(step, loss)
    })
    .context("cannot read the loss log")?;
    Ok(series)
}

/// A model file named by `flag`, read once.
pub fn read_model(path: &Path, flag: &str) -> Result<ModelFile> {
    let file = open_input(path, flag, Patience::Unbounded).context("cannot load the model")?;
    ModelFile::from_reader(file, path).context("cannot load the model")
}

/// Draws the forward-process grid.
pub fn forward(args: &ForwardArgs) -> Result<()> {
    check_points("-n", args.count)?;
    let model = match &args.model {
        Some(path) => Some(read_model(path, "--model")?),
        None => None,
    };
    let schedule = match &model {
        Some(file) => file.schedule::<T>().context("cannot use the model")?,
        None => Schedule::<T>::new(ScheduleKind::SEED).context("the seed schedule is invalid")?,
    };
    let count = args.count as usize;
    let (points, name) = match &args.points {
        Some(path) => {
            let all = read_cloud_points(path, "--points")?;
            let d = all.dim();
            let mut values = all.values()[..count.min(all.len()) * d].to_vec();
            let units = model.as_ref().and_then(|m| m.header.data.units);
            if let Some(units) = units.filter(|u| u.is_valid(d)) {
                values.chunks_exact_mut(d).for_each(|p| units.to_model(p));
            }
            let points = Points::new(d, values)
                .context("--points: a point leaves f32's range in the model's space")?;
            (points, forward_title(&path.display().to_string(), d))
        }
        None => {
            let set = args.data.unwrap_or_default();
            let pairs = data::true_samples(set, count, args.seed);
            (Points::from_pairs(&pairs)?, data_name(set))
        }
    };
    let frames = plot::forward_frames(&points, &schedule, args.seed);
    Ok(plot::forward_grid(&args.out, &frames, &name)?)
}

/// `set` in a figure's title: "the Swiss roll", "the moons set".
pub fn data_name(set: DataSet) -> String {
    match set {
        DataSet::SwissRoll => "the Swiss roll".to_string(),
        other => format!("the {other} set"),
    }
}

/// The left panel's title for true samples of `set`.
pub fn real_label(set: DataSet) -> String {
    match set {
        DataSet::SwissRoll => "Real Swiss roll".into(),
        other => format!("Real {other}"),
    }
}

/// Draws every built-in set: `count` fresh points of each, or each set's samples from
/// `DIR/NAME.csv`.
fn sets(
    out: &Path,
    count: u64,
    seed: u64,
    samples_from: Option<&Path>,
    title: Option<&str>,
) -> Result<()> {
    check_points("-n", count)?;
    let mut frames = Vec::new();
    for set in DataSet::ALL {
        let points = match samples_from {
            None => data::true_samples(set, count as usize, seed),
            Some(dir) => {
                let path = dir.join(format!("{set}.csv"));
                if !path.exists() {
                    continue;
                }
                read_figure_points(&path, "--samples-from")?
            }
        };
        frames.push(plot::Frame {
            label: set.to_string(),
            points,
        });
    }
    if frames.is_empty() {
        bail!(
            "--samples-from holds no NAME.csv of a built-in set (NAME: {})",
            DataSet::names()
        );
    }
    let default = match samples_from {
        None => "Built-in data sets",
        Some(_) => "Samples",
    };
    Ok(plot::sets_grid(out, &frames, title.unwrap_or(default))?)
}

/// Draws the reverse-process grid, for a float or an integer model of any shape.
pub fn reverse(args: &ReverseArgs) -> Result<()> {
    check_points("-n", args.count)?;
    let file = read_model(&args.model, "--model")?;
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let sampler: Sampler = args.sampler.resolve(file.header.sampler)?;
    let (simd, load) = (Simd::detect(), "cannot load the model");
    let prepared = match file.kind {
        Kind::Float => {
            Prepared::float(simd, &file.flat().context(load)?, &schedule, &sampler, None)
        }
        Kind::Integer => Prepared::new(
            simd,
            &file.flat_integer().context(load)?,
            &schedule,
            &sampler,
        ),
    };
    let run = (&schedule, &sampler);
    let frames = plot::reverse_frames(&prepared, run, args.seed, args.count as usize);
    let title = reverse_title(&sampler, prepared.dim());
    plot::reverse_grid(&args.out, &frames, &title)?;
    Ok(())
}

/// Draws every class of a conditioned float model at each guidance weight: samples
/// `0..n` of the seed for each (class, weight), as `sample --class --guidance` draws them.
pub fn guidance(args: &GuidanceArgs) -> Result<()> {
    let file = read_model(&args.model, "--model")?;
    let classes = file.header.classes;
    if classes == 0 {
        bail!(
            "{} is not conditioned on classes (train it with --classes)",
            args.model.display()
        );
    }
    if let Some(w) = args
        .weights
        .iter()
        .find(|&&w| Guidance::new(0, w).is_none())
    {
        bail!("--weights {w} is not a finite weight of at least 0");
    }
    let schedule = file.schedule::<T>().context("cannot use the model")?;
    let sampler: Sampler = args.sampler.resolve(file.header.sampler)?;
    let model = file.flat().context("cannot load the model")?;
    let count = args.count as usize;
    let frames: Vec<plot::ClassFrame> = args
        .weights
        .iter()
        .map(|&w| {
            let draw = |g| {
                let p = Prepared::float(Simd::detect(), &model, &schedule, &sampler, g);
                let rows = p.sample(Init::Noise, args.seed, 0, count, &|_| ());
                plot::drawn(&rows, p.dim())
            };
            // A weight of one evaluation with ∅ (w = 0) draws the same samples for every
            // class: drawn once.
            let classes = match Guidance::evaluations(Guidance::new(0, w)) {
                Evaluations::One(None) => vec![draw(None); usize::from(classes)],
                _ => (0..classes).map(|c| draw(Guidance::new(c, w))).collect(),
            };
            // At w = 0 every class draws ∅'s samples: the same points in each colour.
            let label = match w {
                0.0 => "w = 0 (no class: the same for all)".to_string(),
                w => format!("w = {w}"),
            };
            plot::ClassFrame { label, classes }
        })
        .collect();
    let title = format!(
        "Classifier-free guidance: {count} samples of each of {classes} classes ({})",
        reverse_title(&sampler, model.dim())
    );
    plot::guidance_grid(&args.out, &frames, &title)?;
    Ok(())
}

/// The forward figure's name of points of D coordinates called `name`: which coordinates
/// are drawn, for D ≠ 2.
pub fn forward_title(name: &str, d: usize) -> String {
    match d {
        2 => name.to_owned(),
        1 => format!("{name} (D = 1, at height 0)"),
        d => format!("{name} (x0, x1 of D = {d})"),
    }
}

/// The reverse figure's sampler line for a model of D coordinates: which are drawn, for
/// D ≠ 2.
pub fn reverse_title(sampler: &Sampler, d: usize) -> String {
    match d {
        1 => format!("{}; x0 of D = 1", describe(sampler)),
        2 => describe(sampler),
        d => format!("{}; x0, x1 of D = {d}", describe(sampler)),
    }
}
