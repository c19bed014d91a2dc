//! `tinyddpm train`: the seed notebook's training run on the CPU or the GPU, on the Swiss roll,
//! another built-in data set or the user's points (a CSV or `.npy` file, normalized), with
//! checkpoints and resume — the library's training job ([`tinyddpm::run::train`]) from the
//! command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tinyddpm::cuda::Gpu;
use tinyddpm::data::labels::{self, LabelColumn};
use tinyddpm::data::points::{self, MAX_ROWS};
use tinyddpm::data::{Classes, DataSet, Normalize, PointSet, TrainingData};
use tinyddpm::input::Patience;
use tinyddpm::run::train::{LOSS_TAIL, Start, Summary, TrainJob};
use tinyddpm::scores::Points;
use tinyddpm::train::{CHUNK, CheckpointFile, MAX_BATCH, TrainConfig};

use super::jobs::run_job;
use super::say;
use super::{DefaultSamplerArgs, DeviceArg, device, files, open_input, thread_count};

/// Options of `tinyddpm train`.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Optimiser steps in total (with --resume: the step to stop at)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Examples per step [default: 128]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Adam learning rate [default: 0.001]
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Seed of the initial weights and of every batch [default: 42]
    #[arg(long)]
    pub seed: Option<u64>,
    /// The data to train on (the names from the library's list, so they cannot drift).
    #[arg(long, value_name = "NAME|FILE", value_parser = parse_data, help = format!(
        "The data to train on: a built-in set, {} (swissroll is the notebook's, the others \
         FFJORD's toy sets), or a CSV or .npy file of N rows × D columns, D from 1 to 16 \
         [default: swissroll, \
         or the checkpoint's with --resume; a file's run needs its file again]",
        DataSet::names()
    ))]
    pub data: Option<DataArg>,
    /// How a file's points are mapped before training (the model file records the map and
    /// every sample is mapped back): standard (per column minus the mean, divided by the
    /// standard deviation) or none; a built-in set takes none [default: standard for a file]
    #[arg(long, value_enum)]
    pub normalize: Option<NormalizeArg>,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and
    /// save it as the model (0.999 cut the sliced W2 of the moons' and the Swiss roll's models
    /// 3 to 9 times: the README's "Built-in data sets")
    #[arg(long, allow_negative_numbers = true)]
    pub ema: Option<f32>,
    /// Class conditioning (the labelled sets from the library's list).
    #[arg(long, conflicts_with = "resume", help = format!(
        "Condition the model on the data's labels (sets with labels: {}), for `sample --class          K --guidance W`: a learned embedding per class and one for \"no class\", the          unconditional model of classifier-free guidance (on the CPU; a resumed run keeps its \
         checkpoint's classes)",
        DataSet::labelled_names()
    ))]
    pub classes: bool,
    /// The column of a CSV given with --data that holds each row's class label (its index
    /// from 0, or its name in the header line); the other columns are the point. With
    /// --classes (or --resume of such a run: give it again)
    #[arg(long, value_name = "N|NAME")]
    pub label_column: Option<LabelColumn>,
    /// With --classes: the probability of dropping an example's label to "no class" while
    /// training [default: 0.1]
    #[arg(long, requires = "classes", allow_negative_numbers = true)]
    pub label_dropout: Option<f32>,
    /// Where to train
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// The model file to write
    #[arg(long)]
    pub out: PathBuf,
    /// The loss log to write (CSV `step,loss`) [default: the model path with extension
    /// .losses.csv]
    #[arg(long)]
    pub losses: Option<PathBuf>,
    /// Continue the run saved in this checkpoint (its batch, lr, seed and EMA apply)
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Write a training checkpoint (weights, Adam state, step) here, atomically
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Steps between checkpoints (one is always written at the end)
    #[arg(long, default_value_t = 1000, requires = "checkpoint",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// Worker threads (0 = all cores); the result does not depend on it
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Hidden width H, 16 to 512 [default: 128, or the checkpoint's with --resume]
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(16..=512))]
    pub hidden: Option<usize>,
    /// Residual blocks B, 1 to 8 [default: 3, or 2 with --hidden 32, or the checkpoint's]
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=8))]
    pub blocks: Option<usize>,
    #[command(flatten)]
    pub default_sampler: DefaultSamplerArgs,
}

/// What `--data` names: a built-in set, or a file.
#[derive(Clone, Debug, PartialEq)]
pub enum DataArg {
    /// A built-in set's name.
    Set(DataSet),
    /// A path that exists (a file, a FIFO, /dev/stdin).
    File(PathBuf),
}

/// `--data`: a built-in name when it is one, else a path that exists; neither is one line
/// that lists the names.
pub fn parse_data(s: &str) -> std::result::Result<DataArg, String> {
    match s.parse::<DataSet>() {
        Ok(set) => Ok(DataArg::Set(set)),
        Err(unknown) if std::fs::symlink_metadata(s).is_err() => {
            Err(format!("no such file, and {unknown}"))
        }
        Err(_) => Ok(DataArg::File(PathBuf::from(s))),
    }
}

/// `--normalize`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NormalizeArg {
    /// Per column: minus the mean, divided by the (population) standard deviation.
    Standard,
    /// The values as they are.
    None,
}

impl From<NormalizeArg> for Normalize {
    fn from(arg: NormalizeArg) -> Self {
        match arg {
            NormalizeArg::Standard => Normalize::Standard,
            NormalizeArg::None => Normalize::None,
        }
    }
}

impl TrainArgs {
    /// The model shape asked for, one of H and B completing the other to a named pair.
    fn shape(&self) -> (usize, usize) {
        super::shapes::complete(self.hidden, self.blocks)
    }

    /// The loss log's path.
    pub fn losses_path(&self) -> PathBuf {
        self.losses
            .clone()
            .unwrap_or_else(|| self.out.with_extension("losses.csv"))
    }
}

/// Runs `tinyddpm train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let summary = train(args)?;
    say!(
        "trained {} steps in {:.1} s ({:.3} ms/step), loss {:.4} (mean of the last {LOSS_TAIL} \
         steps)",
        summary.steps,
        summary.seconds,
        1e3 * summary.seconds / summary.steps as f64,
        summary.final_loss
    );
    say!(
        "wrote {} and {}",
        args.out.display(),
        args.losses_path().display()
    );
    Ok(())
}

/// Trains as `args` says and writes the model and the loss log.
pub fn train(args: &TrainArgs) -> Result<Summary> {
    check(args)?;
    let gpu = device(args.device)?;
    train_on(args, gpu.as_ref())
}

/// Checks every argument and file before any work: the outputs can be written and are
/// neither inputs nor each other, and the batch fits in memory.
pub fn check(args: &TrainArgs) -> Result<()> {
    let losses = args.losses_path();
    let mut outputs = vec![
        ("--out", args.out.as_path()),
        ("--losses", losses.as_path()),
    ];
    if let Some(path) = &args.checkpoint {
        outputs.push(("--checkpoint", path.as_path()));
    }
    let mut inputs: Vec<(&str, &Path)> = args
        .resume
        .iter()
        .map(|p| ("--resume", p.as_path()))
        .collect();
    if let Some(DataArg::File(path)) = &args.data {
        inputs.push(("--data", path.as_path()));
    }
    // Resuming from a checkpoint and checkpointing into the same file is the usual way to
    // continue a run: the checkpoint is read whole before the first new one replaces it.
    files::check(&inputs, &outputs, &[("--resume", "--checkpoint")])?;
    args.default_sampler.resolve()?;
    if let Some(batch) = args.batch {
        check_batch(batch, "--batch")?;
    }
    if args.label_column.is_some() {
        if !args.classes && args.resume.is_none() {
            bail!(
                "--label-column needs --classes: the labels are what the model is conditioned on"
            );
        }
        if !matches!(args.data, Some(DataArg::File(_))) {
            bail!("--label-column applies to a CSV file given with --data");
        }
    }
    if args.classes && args.device == DeviceArg::Cuda {
        bail!("--classes trains on the CPU only: the GPU trainer is not conditioned yet");
    }
    if args.normalize == Some(NormalizeArg::Standard)
        && !matches!(args.data, Some(DataArg::File(_)))
    {
        bail!(
            "--normalize standard applies to a file given with --data: a built-in set is \
             trained on as it is"
        );
    }
    Ok(())
}

/// The data `--data` names, a file read and normalized (none given: `None`).
fn training_data(args: &TrainArgs) -> Result<Option<TrainingData>> {
    Ok(match &args.data {
        None => None,
        Some(DataArg::Set(set)) => Some(TrainingData::Set(*set)),
        Some(DataArg::File(path)) => {
            let normalize = args.normalize.map_or(Normalize::Standard, Normalize::from);
            let points = match &args.label_column {
                None => read_data_file(path, normalize)?.1,
                Some(column) => read_labelled_file(path, column, normalize)?,
            };
            Some(TrainingData::Points(Arc::new(points)))
        }
    })
}

/// The points and labels of the CSV `path` given as `--data` with `--label-column`,
/// normalized as `normalize` says (the labels' column left out).
fn read_labelled_file(path: &Path, column: &LabelColumn, normalize: Normalize) -> Result<PointSet> {
    let what = "cannot read the training data";
    let file = open_input(path, "--data", Patience::Unbounded).context(what)?;
    let name = path.display().to_string();
    let labelled = labels::read_labelled(file, &name, MAX_ROWS, column).context(what)?;
    let points = labelled.points();
    let set = PointSet::new(&name, points.dim(), points.values().to_vec(), normalize);
    set.and_then(|s| s.with_labels(labelled.labels().to_vec()))
        .context(what)
}

/// The points of the file `path` given as `--data`, read once: as they are (the data's
/// units, what samples are scored against) and normalized as `normalize` says (what the
/// trainer draws).
pub fn read_data_file(path: &Path, normalize: Normalize) -> Result<(Points, PointSet)> {
    let what = "cannot read the training data";
    let file = open_input(path, "--data", Patience::Unbounded).context(what)?;
    let name = path.display().to_string();
    let (dim, values) = points::read_rows(file, &name, MAX_ROWS).context(what)?;
    let raw = Points::new(dim, values.clone()).context(what)?;
    Ok((
        raw,
        PointSet::new(&name, dim, values, normalize).context(what)?,
    ))
}

fn check_batch(batch: u64, what: &str) -> Result<()> {
    if batch > MAX_BATCH as u64 {
        bail!(
            "{what} {batch} is too large: at most {MAX_BATCH} examples per step (each {CHUNK} \
             hold about 1.2 MB of activations and gradients)"
        );
    }
    Ok(())
}

/// [`train`] on a resolved device (the GPU when given, else the CPU), `args` checked.
pub fn train_on(args: &TrainArgs, gpu: Option<&Gpu>) -> Result<Summary> {
    const RESUME: &str = "cannot resume training";
    let resume = match &args.resume {
        Some(path) => {
            refuse_changes_on_resume(args)?;
            let file = open_input(path, "--resume", Patience::Unbounded).context(RESUME)?;
            Some((
                CheckpointFile::from_reader(file, path).context(RESUME)?,
                path,
            ))
        }
        None => None,
    };
    let (hidden, blocks) = match &resume {
        Some((checkpoint, _)) => {
            let info = checkpoint.info().context(RESUME)?;
            check_batch(info.batch, "the checkpoint's batch")?;
            // Resuming without a shape given: the checkpoint's shape is the one meant.
            match (args.hidden, args.blocks) {
                (None, None) => (info.hidden as usize, info.blocks as usize),
                _ => args.shape(),
            }
        }
        None => args.shape(),
    };
    let job = TrainJob {
        steps: args.steps,
        out: args.out.clone(),
        losses: args.losses_path(),
        checkpoint: args
            .checkpoint
            .clone()
            .map(|path| (path, args.checkpoint_every)),
        default_sampler: args.default_sampler.resolve()?,
    };
    let threads = thread_count();
    let data = training_data(args)?;
    let start = match &resume {
        Some((file, path)) => Start::Resume {
            file,
            path,
            threads,
            data,
        },
        None => Start::New(new_config(args, threads, data.unwrap_or_default())),
    };
    run_job(&job, hidden, blocks, start, gpu)
}

/// The configuration of a new run on `data` from the command line.
fn new_config(args: &TrainArgs, threads: usize, data: TrainingData) -> TrainConfig {
    let defaults = TrainConfig::default();
    let classes = args.classes.then(|| Classes {
        classes: data.classes(),
        dropout: args.label_dropout.unwrap_or(Classes::DROPOUT),
    });
    TrainConfig {
        classes,
        steps: args.steps,
        batch: args.batch.map_or(defaults.batch, |b| b as usize),
        lr: args.lr.unwrap_or(defaults.lr),
        seed: args.seed.unwrap_or(defaults.seed),
        ema: args.ema,
        threads,
        data,
    }
}

/// `--batch`, `--lr`, `--seed` and `--ema` are the checkpoint's when resuming.
fn refuse_changes_on_resume(args: &TrainArgs) -> Result<()> {
    let fixed = [
        ("--batch", args.batch.is_some()),
        ("--lr", args.lr.is_some()),
        ("--seed", args.seed.is_some()),
        ("--ema", args.ema.is_some()),
    ];
    match fixed.iter().find(|f| f.1) {
        Some((name, _)) => bail!("{name} cannot be changed when resuming: the checkpoint holds it"),
        None => Ok(()),
    }
}
