//! `tinyddpm train`: the seed notebook's training run on the CPU or the GPU, with checkpoints
//! and resume.
//!
//! One loop ([`drive`]) runs either device's trainer through [`Training`]. The loss log is
//! written as training goes, into the temporary file that becomes the log at the end (memory
//! stays bounded however many steps), and Ctrl-C stops between steps with nothing partial
//! written and the way to resume said.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::atomic::AtomicFile;
use tinyddpm::cuda::{Gpu, GpuTrainer};
use tinyddpm::input::Patience;
use tinyddpm::train::{
    CHUNK, CheckpointFile, MAX_BATCH, TrainConfig, Trainer, Training, write_checkpoint,
};
use tinyddpm::{csv, modelfile};
use tinyddpm_core::{Header, Schedule, ScheduleKind};

use super::interrupt::{self, Interrupted};
use super::say;
use super::{
    DefaultSamplerArgs, DeviceArg, T, device, dispatch, files, open_input, progress_bar,
    thread_count,
};

/// Steps the final loss averages.
const LOSS_TAIL: usize = 200;

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
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and
    /// save it as the model
    #[arg(long, allow_negative_numbers = true)]
    pub ema: Option<f32>,
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
    /// Hidden width H: 128 with 3 blocks (the seed) or 32 with 2 blocks (the
    /// microcontroller's) [default: 128, or the checkpoint's with --resume]
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Residual blocks B [default: 3, or 2 with --hidden 32, or the checkpoint's]
    #[arg(long)]
    pub blocks: Option<usize>,
    #[command(flatten)]
    pub default_sampler: DefaultSamplerArgs,
}

impl TrainArgs {
    /// The model shape asked for, one of H and B completing the other to a supported pair.
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

/// What a finished run reports.
pub struct Summary {
    /// Steps run by this invocation.
    pub steps: u64,
    /// Wall time of those steps, seconds.
    pub seconds: f64,
    /// Mean loss of the last (up to) 200 steps.
    pub final_loss: f32,
}

/// The loss log being written: rows go to the temporary file as steps finish, and only the
/// last [`LOSS_TAIL`] losses stay in memory, for the summary.
struct LossLog {
    file: AtomicFile,
    tail: VecDeque<f32>,
    path: PathBuf,
}

impl LossLog {
    /// Starts an empty log at `path`.
    fn create(path: &Path) -> Result<Self> {
        let mut log = Self {
            file: AtomicFile::create(path)
                .with_context(|| format!("cannot write the loss log {}", path.display()))?,
            tail: VecDeque::with_capacity(LOSS_TAIL),
            path: path.to_path_buf(),
        };
        csv::write_losses_header(&mut log.file).with_context(|| log.context())?;
        Ok(log)
    }

    /// Starts the log at `path` with the rows before step `start` of the log already there
    /// (the run being resumed), copied row by row: continued, not restarted, in bounded
    /// memory however long. A missing or unreadable log just starts a new one.
    fn resume(path: &Path, start: u64) -> Result<Self> {
        let mut log = Self::create(path)?;
        let Ok(old) = std::fs::File::open(path) else {
            return Ok(log);
        };
        let mut written = Ok(());
        let name = path.display().to_string();
        let copied = csv::visit_losses(old, &name, csv::MAX_LOSS_ROWS, |step, loss| {
            if step < start && written.is_ok() {
                written = log.push(step, loss);
            }
        });
        written?;
        match copied {
            Ok(_) => Ok(log),
            Err(_) => Self::create(path),
        }
    }

    fn context(&self) -> String {
        format!("cannot write the loss log {}", self.path.display())
    }

    fn push(&mut self, step: u64, loss: f32) -> Result<()> {
        if self.tail.len() == LOSS_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(loss);
        csv::write_loss_row(&mut self.file, step, loss).with_context(|| self.context())
    }

    /// Puts the log in place; returns the mean of its last losses.
    fn commit(self) -> Result<f32> {
        let context = self.context();
        let mean = self.tail.iter().sum::<f32>() / self.tail.len().max(1) as f32;
        self.file.commit().context(context)?;
        Ok(mean)
    }
}

/// Runs `tinyddpm train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let summary = train(args)?;
    say!(
        "trained {} steps in {:.1} s ({:.3} ms/step), loss {:.4} (mean of the last 200 steps)",
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
    let gpu = device(args.device)?;
    check(args)?;
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
    let inputs: Vec<(&str, &Path)> = args
        .resume
        .iter()
        .map(|p| ("--resume", p.as_path()))
        .collect();
    // Resuming from a checkpoint and checkpointing into the same file is the usual way to
    // continue a run: the checkpoint is read whole before the first new one replaces it.
    files::check(&inputs, &outputs, &[("--resume", "--checkpoint")])?;
    args.default_sampler.resolve()?;
    if let Some(batch) = args.batch {
        check_batch(batch, "--batch")?;
    }
    Ok(())
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
            Some(CheckpointFile::from_reader(file, path).context(RESUME)?)
        }
        None => None,
    };
    let (hidden, blocks) = match &resume {
        Some(checkpoint) => {
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
    dispatch!(hidden, blocks, train_shape(args, resume.as_ref(), gpu))
}

/// Starts (or resumes) the run on its device and drives it.
fn train_shape<const H: usize, const B: usize>(
    args: &TrainArgs,
    resume: Option<&CheckpointFile>,
    gpu: Option<&Gpu>,
) -> Result<Summary> {
    const RESUME: &str = "cannot resume training";
    let threads = thread_count();
    let seed_schedule =
        || Schedule::<T>::new(ScheduleKind::SEED).context("the seed noise schedule is invalid");
    match (gpu, resume) {
        (Some(gpu), Some(checkpoint)) => drive(
            args,
            GpuTrainer::<H, B, T>::resume_from(gpu, checkpoint).context(RESUME)?,
        ),
        (Some(gpu), None) => drive(
            args,
            GpuTrainer::<H, B, T>::new(gpu, new_config(args, threads), &seed_schedule()?)?,
        ),
        (None, Some(checkpoint)) => drive(
            args,
            Trainer::<H, B, T>::resume_from(checkpoint, Some(threads)).context(RESUME)?,
        ),
        (None, None) => drive(
            args,
            Trainer::<H, B, T>::new(new_config(args, threads), &seed_schedule()?)?,
        ),
    }
}

/// The configuration of a new run from the command line.
fn new_config(args: &TrainArgs, threads: usize) -> TrainConfig {
    let defaults = TrainConfig::default();
    TrainConfig {
        steps: args.steps,
        batch: args.batch.map_or(defaults.batch, |b| b as usize),
        lr: args.lr.unwrap_or(defaults.lr),
        seed: args.seed.unwrap_or(defaults.seed),
        ema: args.ema,
        threads,
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

/// Where a run that stops now can continue from: the last checkpoint written (or resumed
/// from) and its step.
struct LastCheckpoint(Option<(PathBuf, u64)>);

impl LastCheckpoint {
    /// "; the last checkpoint c.ckpt (step 50) is intact", or nothing.
    fn intact(&self) -> String {
        match &self.0 {
            Some((path, at)) => format!(
                "; the last checkpoint {} (step {at}) is intact",
                path.display()
            ),
            None => String::new(),
        }
    }

    /// "; the last checkpoint c.ckpt (step 50) is intact: continue with `--resume c.ckpt`",
    /// or nothing.
    fn resumable(&self) -> String {
        match &self.0 {
            Some((path, _)) => format!(
                "{}: continue with `--resume {}`",
                self.intact(),
                path.display()
            ),
            None => String::new(),
        }
    }

    /// The error of a run stopped by Ctrl-C before step `step` ran.
    fn interrupted(&self, step: u64) -> anyhow::Error {
        let resume = match &self.0 {
            Some((path, at)) => format!(
                "the last checkpoint is {} at step {at}: continue with `--resume {}`",
                path.display(),
                path.display()
            ),
            None => "no checkpoint was written, so the run cannot be resumed".to_string(),
        };
        Interrupted::new(format!(
            "interrupted at step {step}; no model was written; {resume}"
        ))
        .into()
    }
}

/// Runs `trainer` to `--steps` as `args` say, on whichever device: the loss log, a
/// checkpoint every `--checkpoint-every` steps and at the end, Ctrl-C between calls of
/// [`Training::run`], divergence naming the intact checkpoint; then the model file.
fn drive<const H: usize, const B: usize, R: Training<H, B>>(
    args: &TrainArgs,
    mut trainer: R,
) -> Result<Summary> {
    let start = trainer.step_index();
    if start >= args.steps {
        bail!("the checkpoint is already at step {start}: ask for more --steps");
    }
    trainer.set_steps(args.steps);
    let mut log = start_log(args, start)?;
    // The checkpoint a failure leaves to resume from, and its step.
    let mut last = LastCheckpoint(args.resume.clone().map(|path| (path, start)));
    interrupt::watch()?;
    let bar = progress_bar(args.steps - start, "train");
    let begin = Instant::now();
    while trainer.step_index() < args.steps {
        let step = trainer.step_index();
        if interrupt::requested() {
            bar.abandon();
            return Err(last.interrupted(step));
        }
        let until_checkpoint = match &args.checkpoint {
            Some(_) => args.checkpoint_every - step % args.checkpoint_every,
            None => u64::MAX,
        };
        let steps = until_checkpoint
            .min(args.steps - step)
            .min(R::STEPS_PER_CALL);
        let mut logged = Ok(());
        let run = trainer.run(steps, &mut |step, loss| {
            if logged.is_ok() {
                logged = log.push(step, loss);
            }
            bar.inc(1);
            if step % 20 == 0 {
                bar.set_message(format!("loss {loss:.4}"));
            }
        });
        if let Err(e) = logged {
            bar.abandon();
            bail!("{e:#}; no model was written{}", last.resumable());
        }
        if let Err(e) = run {
            bar.abandon();
            bail!("{e}; no model was written{}", last.intact());
        }
        let at = trainer.step_index();
        if let Some(path) = &args.checkpoint
            && (at % args.checkpoint_every == 0 || at == args.steps)
        {
            let context = || checkpoint_context(path, at);
            let state = trainer.state().with_context(context)?;
            write_checkpoint(path, &state, (H, B, T)).with_context(context)?;
            last = LastCheckpoint(Some((path.clone(), at)));
        }
    }
    let seconds = begin.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let header = Header::new::<H, B, T>(trainer.schedule_kind(), args.default_sampler.resolve()?);
    let model = trainer.model().context("cannot read the trained model")?;
    modelfile::save(&args.out, &model, &header).context("cannot write the model")?;
    let final_loss = log.commit()?;
    Ok(Summary {
        steps: args.steps - start,
        seconds,
        final_loss,
    })
}

fn checkpoint_context(path: &Path, step: u64) -> String {
    format!(
        "cannot write the checkpoint {} at step {step}; no model was written",
        path.display()
    )
}

/// The loss log, continuing the resumed run's log up to its checkpoint.
fn start_log(args: &TrainArgs, start: u64) -> Result<LossLog> {
    let losses_path = args.losses_path();
    match &args.resume {
        Some(_) => LossLog::resume(&losses_path, start),
        None => LossLog::create(&losses_path),
    }
}
