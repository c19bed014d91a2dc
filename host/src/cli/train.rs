//! `tinyddpm train`: the seed notebook's training run on the CPU, with checkpoints and resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tinyddpm::cuda::{Gpu, GpuTrainer};
use tinyddpm::train::{CheckpointError, CheckpointFormatError, TrainConfig, Trainer};
use tinyddpm::{csv, modelfile};
use tinyddpm_core::{Header, Sampler, Schedule, ScheduleKind};

use super::{DeviceArg, T, check_folder, device, dispatch, progress_bar};

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
}

impl TrainArgs {
    /// The model shape asked for, one of H and B completing the other to a supported pair.
    fn shape(&self) -> (usize, usize) {
        match (self.hidden, self.blocks) {
            (Some(h), Some(b)) => (h, b),
            (Some(32), None) | (None, Some(2)) => (32, 2),
            (Some(h), None) => (h, 3),
            (None, Some(b)) => (128, b),
            (None, None) => (128, 3),
        }
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

impl Summary {
    fn new(steps: u64, seconds: f64, losses: &[(u64, f32)]) -> Self {
        let tail = &losses[losses.len().saturating_sub(200)..];
        Self {
            steps,
            seconds,
            final_loss: tail.iter().map(|l| l.1).sum::<f32>() / tail.len() as f32,
        }
    }
}

/// Runs `tinyddpm train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let summary = train(args)?;
    println!(
        "trained {} steps in {:.1} s ({:.3} ms/step), loss {:.4} (mean of the last 200 steps)",
        summary.steps,
        summary.seconds,
        1e3 * summary.seconds / summary.steps as f64,
        summary.final_loss
    );
    println!(
        "wrote {} and {}",
        args.out.display(),
        args.losses_path().display()
    );
    Ok(())
}

/// Trains as `args` says and writes the model and the loss log.
pub fn train(args: &TrainArgs) -> Result<Summary> {
    train_on(args, device(args.device)?.as_ref())
}

/// [`train`] on a resolved device: the GPU when given, else the CPU.
pub fn train_on(args: &TrainArgs, gpu: Option<&Gpu>) -> Result<Summary> {
    let outputs = [
        Some(&args.out),
        Some(&args.losses_path()),
        args.checkpoint.as_ref(),
    ];
    outputs
        .into_iter()
        .flatten()
        .try_for_each(|p| check_folder(p))?;
    let (hidden, blocks) = args.shape();
    if let Some(gpu) = gpu {
        return dispatch!(hidden, blocks, train_shape_gpu(args, gpu));
    }
    let result = dispatch!(hidden, blocks, train_shape(args));
    // Resuming without a shape given: the checkpoint's shape is the one meant.
    if let Err(e) = &result
        && args.resume.is_some()
        && args.hidden.is_none()
        && args.blocks.is_none()
        && let Some(CheckpointError::Format {
            source: CheckpointFormatError::Shape { hidden, blocks, .. },
            ..
        }) = e.downcast_ref()
    {
        return dispatch!(*hidden, *blocks, train_shape(args));
    }
    result
}

/// The configuration of a new run from the command line.
fn new_config(args: &TrainArgs) -> TrainConfig {
    let defaults = TrainConfig::default();
    TrainConfig {
        steps: args.steps,
        batch: args.batch.map_or(defaults.batch, |b| b as usize),
        lr: args.lr.unwrap_or(defaults.lr),
        seed: args.seed.unwrap_or(defaults.seed),
        ema: args.ema,
        threads: args.threads,
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

/// Trains on the GPU: the same data streams, initialisation, Adam and checkpoint files as
/// the CPU trainer; steps run in graph replays between checkpoints.
fn train_shape_gpu<const H: usize, const B: usize>(args: &TrainArgs, gpu: &Gpu) -> Result<Summary> {
    let mut trainer = match &args.resume {
        Some(path) => {
            refuse_changes_on_resume(args)?;
            GpuTrainer::<H, B, T>::resume(gpu, path).context("cannot resume training")?
        }
        None => {
            let schedule = Schedule::<T>::new(ScheduleKind::SEED)
                .context("the seed noise schedule is invalid")?;
            GpuTrainer::new(gpu, new_config(args), &schedule)?
        }
    };
    let start = trainer.step_index();
    if start >= args.steps {
        bail!("the checkpoint is already at step {start}: ask for more --steps");
    }
    let mut losses = match &args.resume {
        Some(_) => earlier_losses(&args.losses_path(), start),
        None => Vec::new(),
    };
    let bar = progress_bar(args.steps - start, "train");
    let begin = Instant::now();
    while trainer.step_index() < args.steps {
        let step = trainer.step_index();
        let until_checkpoint = match &args.checkpoint {
            Some(_) => args.checkpoint_every - step % args.checkpoint_every,
            None => u64::MAX,
        };
        let run = trainer.run(
            until_checkpoint.min(args.steps - step),
            &mut |step, loss| {
                losses.push((step, loss));
                bar.inc(1);
            },
        );
        if let Err(e) = run {
            bar.abandon();
            bail!("GPU training failed: {e}; no model was written");
        }
        if let Some(path) = &args.checkpoint {
            trainer.save_checkpoint(path)?;
        }
    }
    let seconds = begin.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let header = Header::new::<H, B, T>(trainer.schedule_kind(), Sampler::Ddpm);
    modelfile::save(&args.out, &*trainer.model()?, &header).context("cannot write the model")?;
    csv::write_losses(&args.losses_path(), &losses).context("cannot write the loss log")?;
    Ok(Summary::new(args.steps - start, seconds, &losses))
}

fn train_shape<const H: usize, const B: usize>(args: &TrainArgs) -> Result<Summary> {
    let mut trainer = match &args.resume {
        Some(path) => {
            refuse_changes_on_resume(args)?;
            Trainer::<H, B, T>::resume(path, Some(args.threads))
                .context("cannot resume training")?
        }
        None => {
            let schedule = Schedule::<T>::new(ScheduleKind::SEED)
                .context("the seed noise schedule is invalid")?;
            Trainer::new(new_config(args), &schedule)?
        }
    };
    let start = trainer.step_index();
    if start >= args.steps {
        bail!("the checkpoint is already at step {start}: ask for more --steps");
    }
    trainer.set_steps(args.steps);
    let losses_path = args.losses_path();
    let mut losses = match &args.resume {
        Some(_) => earlier_losses(&losses_path, start),
        None => Vec::new(),
    };
    // The checkpoint a failure leaves to resume from, and its step.
    let mut last_checkpoint = args.resume.clone().map(|path| (path, start));
    let bar = progress_bar(args.steps - start, "train");
    let begin = Instant::now();
    while trainer.step_index() < args.steps {
        let step = trainer.step_index();
        let loss = trainer.step().map_err(|e| {
            bar.abandon();
            let kept = match &last_checkpoint {
                Some((path, at)) => format!(
                    "; the last checkpoint {} (step {at}) is intact",
                    path.display()
                ),
                None => String::new(),
            };
            anyhow::anyhow!("{e}; no model was written{kept}")
        })?;
        losses.push((step, loss));
        bar.inc(1);
        if step % 20 == 0 {
            bar.set_message(format!("loss {loss:.4}"));
        }
        if let Some(path) = &args.checkpoint
            && (step + 1) % args.checkpoint_every == 0
        {
            trainer.save_checkpoint(path)?;
            last_checkpoint = Some((path.clone(), step + 1));
        }
    }
    let seconds = begin.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(path) = &args.checkpoint {
        trainer.save_checkpoint(path)?;
    }
    let header = Header::new::<H, B, T>(trainer.schedule_kind(), Sampler::Ddpm);
    modelfile::save(&args.out, &trainer.model(), &header).context("cannot write the model")?;
    csv::write_losses(&losses_path, &losses).context("cannot write the loss log")?;
    Ok(Summary::new(args.steps - start, seconds, &losses))
}

/// The loss log of the run being resumed, up to its checkpoint: continued, not restarted.
/// A missing or unreadable log just starts a new one.
fn earlier_losses(path: &Path, start: u64) -> Vec<(u64, f32)> {
    csv::read_losses(path)
        .map(|rows| rows.into_iter().filter(|r| r.0 < start).collect())
        .unwrap_or_default()
}
