//! Training the core's model on the CPU: batches of a built-in data set or the user's points
//! ([`TrainingData`], the Swiss roll by default), a hand-written backward pass, Adam, optional EMA, and checkpoints
//! that resume bit for bit.
//!
//! ```no_run
//! # use tinyddpm::train::{TrainConfig, Trainer, Training};
//! # use tinyddpm_core::{Schedule, ScheduleKind};
//! # fn main() -> anyhow::Result<()> {
//! # let ckpt = std::path::Path::new("run.ckpt");
//! let schedule = Schedule::<1000>::new(ScheduleKind::SEED).unwrap();
//! let mut trainer = Trainer::<128, 3, 1000>::new(TrainConfig::default(), &schedule)?;
//! while trainer.step_index() < trainer.config().steps {
//!     let loss = trainer.step()?; // a NaN or infinite loss is an error; state kept
//!     if trainer.step_index() % 1000 == 0 {
//!         trainer.save_checkpoint(ckpt)?;
//!     }
//! }
//! let model = trainer.model(); // the EMA weights when `ema` is set
//! # Ok(()) }
//! ```
//!
//! [`Training`] is what a training loop needs of a trainer on any device: this CPU
//! [`Trainer`] and the GPU's [`GpuTrainer`](crate::cuda::GpuTrainer) both implement it, from
//! and to the same [`State`] and checkpoint files.
//!
//! A step: the batch is cut into chunks of [`CHUNK`] examples; the cores run the chunks'
//! forward and backward passes side by side (`net`), then Adam (`adam`) sums the chunks'
//! gradients in chunk order and updates the weights, split over the cores by element. The
//! result depends on the seed and the configuration, not on the number of threads.

mod act;
pub(crate) mod adam;
mod checkpoint;
mod gemm;
pub(crate) mod layout;
mod net;

use std::path::Path;

use rayon::prelude::*;
use tinyddpm_core::{Model, Schedule, ScheduleKind};

pub use adam::Adam;
pub use checkpoint::{
    CheckpointData, CheckpointFile, CheckpointFormatError, CheckpointInfo, DataMismatch,
    FORMAT as CHECKPOINT_FORMAT, PointsRecord, inspect as inspect_checkpoint,
};
pub use layout::params_of;

use crate::data::{Examples, TrainingData, forward_coefs};
use layout::{Layout, model_of};
use net::Chunk;

/// Examples per chunk: each core's share of the seed batch of 128, and a size at which the
/// matrix products still run near the library's peak.
pub const CHUNK: usize = 64;
/// The largest batch: each chunk of [`CHUNK`] examples holds its activations and a whole
/// gradient, about 1.2 MB for the seed model, so 65,536 examples take about 1.2 GB.
pub const MAX_BATCH: usize = 1 << 16;

/// Hyper-parameters of a run (the seed notebook's by [`Default`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Total optimiser steps of the run (the caller's loop bound; 10,000).
    pub steps: u64,
    /// Examples per step (128).
    pub batch: usize,
    /// Adam learning rate (1e-3).
    pub lr: f32,
    /// Seed of the initial weights and of every batch (42).
    pub seed: u64,
    /// Decay of an exponential moving average of the weights (e.g. 0.999), if any.
    pub ema: Option<f32>,
    /// Worker threads (0 = one per core). Results do not depend on it.
    pub threads: usize,
    /// What every batch is drawn from (the notebook's Swiss roll).
    pub data: TrainingData,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 10_000,
            batch: 128,
            lr: 1e-3,
            seed: 42,
            ema: None,
            threads: 0,
            data: TrainingData::default(),
        }
    }
}

impl TrainConfig {
    /// Checks every value's range; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 {
            return Err("batch size must be at least 1".into());
        }
        if self.batch > MAX_BATCH {
            return Err(format!(
                "batch size {} is too large: at most {MAX_BATCH} examples per step (each \
                 {CHUNK} hold about 1.2 MB of activations and gradients)",
                self.batch
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "learning rate must be positive and finite, not {}",
                self.lr
            ));
        }
        if let Some(d) = self.ema
            && !(0.0..1.0).contains(&d)
        {
            return Err(format!("EMA decay must be in [0, 1), not {d}"));
        }
        // Drawn with replacement, a batch could take fewer rows; but a file smaller than one
        // batch is most likely the wrong file.
        if let TrainingData::Points(points) = &self.data
            && points.len() < self.batch
        {
            return Err(format!(
                "{} has {} rows, fewer than the batch of {}",
                points.name(),
                points.len(),
                self.batch
            ));
        }
        Ok(())
    }
}

/// Why training cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss was NaN or infinite; the trainer's state is the one before that step.
    #[error("training diverged at step {step}: loss is {loss} (lower the learning rate?)")]
    NonFinite {
        /// Index of the failed step (0-based).
        step: u64,
        /// The non-finite loss.
        loss: f32,
    },
    /// The loss was finite but a gradient overflowed; the state is the one before the step.
    #[error("training diverged at step {step}: a gradient is not finite (loss {loss})")]
    NonFiniteGradient {
        /// Index of the failed step (0-based).
        step: u64,
        /// The step's (finite) loss.
        loss: f32,
    },
    /// A configuration value is out of range.
    #[error("invalid training configuration: {0}")]
    Config(String),
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a usable checkpoint for this model shape.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        source: CheckpointFormatError,
    },
    /// The saved configuration cannot run here (e.g. its threads cannot start).
    #[error("{path}: {source}")]
    Train {
        /// The file.
        path: String,
        /// Why.
        source: TrainError,
    },
}

/// Everything a training run is, on any device and in its checkpoint: the configuration,
/// the schedule, the steps done, the weights, Adam's moments and the EMA weights (all in the
/// model file's parameter order). The data need no state: step `s`'s batch is a function of
/// the data (a set, or the points), the seed and `s` (see [`crate::data`]).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// The run's configuration (`threads` is not saved: the results do not depend on it).
    pub config: TrainConfig,
    /// The schedule the run trains for.
    pub schedule: ScheduleKind,
    /// Optimiser steps done.
    pub step: u64,
    /// The raw weights.
    pub params: Vec<f32>,
    /// Adam's moments.
    pub adam: Adam,
    /// The EMA weights, when `config.ema` is set.
    pub ema: Option<Vec<f32>>,
}

impl State {
    /// A fresh run of a `Model<H, B>`: PyTorch-default initial weights drawn from
    /// `config.seed` (see [`pytorch_init`]), zero moments, the EMA starting at the weights.
    pub fn new<const H: usize, const B: usize>(
        config: TrainConfig,
        schedule: ScheduleKind,
    ) -> Self {
        let params = Layout::of::<H, B>().init(config.seed);
        Self {
            ema: config.ema.map(|_| params.clone()),
            adam: Adam::new(params.len()),
            params,
            schedule,
            step: 0,
            config,
        }
    }

    /// Checks that the state can go on training a `Model<H, B>` on a `T`-step schedule: the
    /// configuration in range, every array of the model's length, an EMA exactly when the
    /// configuration keeps one, a valid schedule (returned).
    pub fn check<const H: usize, const B: usize, const T: usize>(
        &self,
    ) -> Result<Schedule<T>, TrainError> {
        self.config.validate().map_err(TrainError::Config)?;
        let arrays_fit = [&self.params, &self.adam.m, &self.adam.v]
            .into_iter()
            .chain(&self.ema)
            .all(|a| a.len() == Model::<H, B>::PARAMS);
        if !arrays_fit || self.ema.is_some() != self.config.ema.is_some() {
            return Err(TrainError::Config(
                "training state does not match the model's shape".into(),
            ));
        }
        Schedule::new(self.schedule)
            .ok_or_else(|| TrainError::Config("invalid noise schedule".into()))
    }
}

/// What a training loop needs of a trainer, whatever the device: run steps with a loss
/// callback, say where the run stands, and hand over its state and model. The CPU
/// [`Trainer`] and the GPU's [`GpuTrainer`](crate::cuda::GpuTrainer) implement it, so one
/// loop (`tinyddpm train`'s) drives both: checkpoints, the loss log, Ctrl-C, divergence.
pub trait Training<const H: usize, const B: usize> {
    /// Why a call fails: a diverged step ([`TrainError`]), or the device.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The most steps one [`Training::run`] should be asked for: a caller that looks at
    /// Ctrl-C between calls reacts within that many steps. (The GPU's steps are replays of
    /// one captured graph, whose losses are read back in batches of this size.)
    const STEPS_PER_CALL: u64;

    /// Runs `steps` optimiser steps, calling `on_loss(step, loss)` for each in order. A
    /// non-finite loss or gradient stops the run with its state from before that step and an
    /// error naming it.
    fn run(&mut self, steps: u64, on_loss: &mut dyn FnMut(u64, f32)) -> Result<(), Self::Error>;

    /// Steps done so far.
    fn step_index(&self) -> u64;

    /// The run's configuration.
    fn config(&self) -> &TrainConfig;

    /// Changes the run's total step count (e.g. to extend a resumed run); checkpoints record it.
    fn set_steps(&mut self, steps: u64);

    /// The noise schedule the run trains for (for the model file's header).
    fn schedule_kind(&self) -> ScheduleKind;

    /// The whole training state, as a checkpoint holds it (see [`write_checkpoint`]).
    fn state(&self) -> Result<State, Self::Error>;

    /// The model to save: the EMA weights when `ema` is set, the raw weights otherwise.
    fn model(&self) -> Result<Box<Model<H, B>>, Self::Error>;
}

/// Adam training of a `Model<H, B>` on batches of `config.data`, schedule of `T` steps.
pub struct Trainer<const H: usize, const B: usize, const T: usize> {
    config: TrainConfig,
    schedule: ScheduleKind,
    /// `forward_coefs(t)` for every t.
    coefs: Vec<(f32, f32)>,
    layout: Layout,
    params: Vec<f32>,
    adam: Adam,
    ema: Option<Vec<f32>>,
    step: u64,
    chunks: Vec<Chunk>,
    pool: rayon::ThreadPool,
}

impl<const H: usize, const B: usize, const T: usize> Trainer<H, B, T> {
    /// A fresh run: PyTorch-default initial weights drawn from `config.seed`.
    pub fn new(config: TrainConfig, schedule: &Schedule<T>) -> Result<Self, TrainError> {
        Self::from_state(State::new::<H, B>(config, schedule.kind))
    }

    /// Continues the run saved in `path` on `threads` worker threads (`None` or 0: one per
    /// core; the results do not depend on it, so it is not part of the checkpoint).
    pub fn resume(path: &Path, threads: Option<usize>) -> Result<Self, CheckpointError> {
        Self::resume_from(&CheckpointFile::read(path)?, threads)
    }

    /// [`Trainer::resume`] from a checkpoint already read.
    pub fn resume_from(
        file: &CheckpointFile,
        threads: Option<usize>,
    ) -> Result<Self, CheckpointError> {
        let mut state = file.state((H, B, T))?;
        state.config.threads = threads.unwrap_or(0);
        Self::from_state(state).map_err(|source| CheckpointError::Train {
            path: file.path().display().to_string(),
            source,
        })
    }

    /// Continues the run `state` (e.g. a GPU trainer's) on the CPU.
    pub fn from_state(state: State) -> Result<Self, TrainError> {
        let schedule = state.check::<H, B, T>()?;
        let config = state.config;
        let layout = Layout::of::<H, B>();
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| TrainError::Config(format!("cannot start {threads} threads: {e}")))?;
        let chunks = (0..config.batch)
            .step_by(CHUNK)
            .map(|first| Chunk::new(&layout, first, CHUNK.min(config.batch - first)))
            .collect();
        Ok(Self {
            coefs: forward_coefs(&schedule),
            schedule: state.schedule,
            config,
            layout,
            params: state.params,
            adam: state.adam,
            ema: state.ema,
            step: state.step,
            chunks,
            pool,
        })
    }

    /// One optimiser step on a fresh batch; returns that batch's loss (before the update).
    /// On a non-finite loss or gradient nothing changes and the error names the step.
    pub fn step(&mut self) -> Result<f32, TrainError> {
        let Self {
            config,
            coefs,
            layout,
            params,
            chunks,
            step,
            ..
        } = self;
        let (data, seed, count, at) = (&config.data, config.seed, 2 * config.batch, *step);
        let results: Vec<(f64, bool)> = self.pool.install(|| {
            chunks
                .par_iter_mut()
                .map(|c| {
                    c.examples.fill(data, coefs, seed, at, c.first);
                    c.forward_backward(params, layout, count)
                })
                .collect()
        });
        let sse: f64 = results.iter().map(|r| r.0).sum();
        let loss = (sse / count as f64) as f32;
        if !loss.is_finite() {
            return Err(TrainError::NonFinite { step: at, loss });
        }
        if results.iter().any(|r| !r.1) {
            return Err(TrainError::NonFiniteGradient { step: at, loss });
        }
        let (first, rest) = chunks.split_at_mut(1);
        let more: Vec<&[f32]> = rest.iter().map(|c| c.grad.as_slice()).collect();
        let (adam, ema, lr) = (&mut self.adam, &mut self.ema, config.lr);
        let decay = config.ema;
        self.pool.install(|| {
            adam.update(params, &mut first[0].grad, &more, lr, at + 1);
            if let (Some(e), Some(d)) = (ema, decay) {
                adam::ema_update(e, params, d);
            }
        });
        *step += 1;
        Ok(loss)
    }

    /// The model to save: the EMA weights when `ema` is set, the raw weights otherwise.
    pub fn model(&self) -> Box<Model<H, B>> {
        model_of(self.ema.as_ref().unwrap_or(&self.params))
    }

    /// The raw (non-averaged) weights.
    pub fn weights(&self) -> Box<Model<H, B>> {
        model_of(&self.params)
    }

    /// The whole training state (a copy), as [`Trainer::save_checkpoint`] writes it.
    pub fn state(&self) -> State {
        State {
            config: self.config.clone(),
            schedule: self.schedule,
            step: self.step,
            params: self.params.clone(),
            adam: self.adam.clone(),
            ema: self.ema.clone(),
        }
    }

    /// Writes the whole training state to `path` atomically (temporary file + rename).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), CheckpointError> {
        write_checkpoint(path, &self.state(), (H, B, T))
    }

    /// Overwrites one weight (in the model file's parameter order): a fault-injection hook
    /// for tests of the divergence handling.
    #[doc(hidden)]
    pub fn set_weight(&mut self, index: usize, value: f32) {
        self.params[index] = value;
    }
}

impl<const H: usize, const B: usize, const T: usize> Training<H, B> for Trainer<H, B, T> {
    type Error = TrainError;

    /// One step per call, as [`Trainer::step`]: nothing is gained by batching them.
    const STEPS_PER_CALL: u64 = 1;

    fn run(&mut self, steps: u64, on_loss: &mut dyn FnMut(u64, f32)) -> Result<(), TrainError> {
        for _ in 0..steps {
            let step = self.step;
            on_loss(step, self.step()?);
        }
        Ok(())
    }

    fn step_index(&self) -> u64 {
        self.step
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn set_steps(&mut self, steps: u64) {
        self.config.steps = steps;
    }

    fn schedule_kind(&self) -> ScheduleKind {
        self.schedule
    }

    fn state(&self) -> Result<State, TrainError> {
        Ok(Trainer::state(self))
    }

    fn model(&self) -> Result<Box<Model<H, B>>, TrainError> {
        Ok(Trainer::model(self))
    }
}

/// A model with PyTorch's default `nn.Linear` initialisation drawn from `seed` (weights and
/// biases uniform in ±1/√fan_in): the trainer's starting point, and a realistic untrained
/// model for tests and benchmarks.
pub fn pytorch_init<const H: usize, const B: usize>(seed: u64) -> Box<Model<H, B>> {
    model_of(&Layout::of::<H, B>().init(seed))
}

/// The batched forward pass: ε̂ for the examples' `x_t` and `t_input` (`[n × 2]`, row-major),
/// one chunk, the trainer's arithmetic (matrix products, not the core's summation order).
pub fn predict_noise<const H: usize, const B: usize>(
    model: &Model<H, B>,
    examples: &Examples,
) -> Vec<f32> {
    let layout = Layout::of::<H, B>();
    let mut chunk = Chunk::new(&layout, 0, examples.len());
    chunk.examples.clone_from(examples);
    chunk.forward(&params_of(model), &layout);
    chunk.prediction().to_vec()
}

/// The MSE loss of `model` on `examples` (mean over examples and both coordinates, like
/// `nn.MSELoss`) and its gradient with respect to every parameter, from the trainer's
/// hand-written backward pass.
pub fn loss_and_gradient<const H: usize, const B: usize>(
    model: &Model<H, B>,
    examples: &Examples,
) -> (f32, Box<Model<H, B>>) {
    let layout = Layout::of::<H, B>();
    let mut chunk = Chunk::new(&layout, 0, examples.len());
    chunk.examples.clone_from(examples);
    let (sse, _) = chunk.forward_backward(&params_of(model), &layout, 2 * examples.len());
    (
        (sse / (2 * examples.len()) as f64) as f32,
        model_of(&chunk.grad),
    )
}

/// Writes `state` of a model of `shape` (H, B, T) as a checkpoint at `path`, atomically
/// (temporary file + rename): the one format every trainer resumes from.
pub fn write_checkpoint(
    path: &Path,
    state: &State,
    shape: (usize, usize, usize),
) -> Result<(), CheckpointError> {
    let bytes = checkpoint::encode(state, shape);
    crate::atomic::write(path, &bytes).map_err(|source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    })
}
