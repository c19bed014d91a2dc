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
//! // H = 128, B = 3; D is the data's (2 for the Swiss roll)
//! let mut trainer = Trainer::new(TrainConfig::default(), 128, 3, &schedule)?;
//! while trainer.step_index() < trainer.config().steps {
//!     let loss = trainer.step()?; // a NaN or infinite loss is an error; state kept
//!     if trainer.step_index() % 1000 == 0 {
//!         trainer.save_checkpoint(ckpt)?;
//!     }
//! }
//! let model = trainer.model(); // the EMA weights when `ema` is set, any shape
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
pub mod profile;

use std::path::Path;

use rayon::prelude::*;
use tinyddpm_core::{Model, Schedule, ScheduleKind};

use crate::flat::FlatModel;

pub use adam::Adam;
pub use checkpoint::{
    CheckpointData, CheckpointFile, CheckpointFormatError, CheckpointInfo, DataMismatch,
    FORMAT as CHECKPOINT_FORMAT, PointsRecord, inspect as inspect_checkpoint,
};
pub use layout::params_of;

use crate::data::{Classes, DataSet, Examples, TrainingData, forward_coefs};
use layout::{Layout, model_of};
use net::Chunk;
use profile::{Phase, time};

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
    /// Class conditioning on the data's labels, if any (none: the notebook's model).
    pub classes: Option<Classes>,
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
            classes: None,
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
        if let Some(c) = self.classes {
            let labels = self.data.classes();
            if labels == 0 {
                return Err(format!(
                    "{} has no labels to condition on (sets with labels: {}; a CSV file's \
                     with --label-column)",
                    self.data,
                    DataSet::labelled_names()
                ));
            }
            if c.classes != labels {
                return Err(format!(
                    "{} has {labels} classes, not {}",
                    self.data, c.classes
                ));
            }
            if !(0.0..=1.0).contains(&c.dropout) {
                return Err(format!(
                    "label dropout must be a probability in [0, 1], not {}",
                    c.dropout
                ));
            }
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

/// The layout of a model of `hidden` units and `blocks` blocks on points of the data's D,
/// conditioned on the run's classes.
fn layout_for(hidden: usize, blocks: usize, config: &TrainConfig) -> Result<Layout, TrainError> {
    let classes = config.classes.map_or(0, |c| usize::from(c.classes));
    tinyddpm_core::Layout::with_dim(hidden, blocks, config.data.dim())
        .and_then(|l| l.with_classes(classes))
        .map(Layout::new)
        .ok_or_else(|| {
            TrainError::Config(format!(
                "a model of H={hidden} B={blocks} has more parameters than a usize counts"
            ))
        })
}

impl State {
    /// A fresh run of a model of `hidden` units and `blocks` blocks on points of the data's
    /// D: PyTorch-default initial weights drawn from `config.seed` (see [`pytorch_init`]),
    /// zero moments, the EMA starting at the weights.
    pub fn new(
        config: TrainConfig,
        hidden: usize,
        blocks: usize,
        schedule: ScheduleKind,
    ) -> Result<Self, TrainError> {
        let params = layout_for(hidden, blocks, &config)?.init(config.seed);
        Ok(Self {
            ema: config.ema.map(|_| params.clone()),
            adam: Adam::new(params.len()),
            params,
            schedule,
            step: 0,
            config,
        })
    }

    /// Checks that the state can go on training a model of `hidden` units and `blocks`
    /// blocks on a `T`-step schedule: the configuration in range, every array of the
    /// model's length (D being the data's), an EMA exactly when the configuration keeps one,
    /// a valid schedule. Returns the schedule and the model's layout. Both trainers check a
    /// state so before running it.
    pub(crate) fn check<const T: usize>(
        &self,
        hidden: usize,
        blocks: usize,
    ) -> Result<(Schedule<T>, Layout), TrainError> {
        self.config.validate().map_err(TrainError::Config)?;
        let layout = layout_for(hidden, blocks, &self.config)?;
        let arrays_fit = [&self.params, &self.adam.m, &self.adam.v]
            .into_iter()
            .chain(&self.ema)
            .all(|a| a.len() == layout.len);
        if !arrays_fit || self.ema.is_some() != self.config.ema.is_some() {
            return Err(TrainError::Config(
                "training state does not match the model's shape".into(),
            ));
        }
        let schedule = Schedule::new(self.schedule)
            .ok_or_else(|| TrainError::Config("invalid noise schedule".into()))?;
        Ok((schedule, layout))
    }
}

/// What a training loop needs of a trainer, whatever the device: run steps with a loss
/// callback, say where the run stands, and hand over its state and model. The CPU
/// [`Trainer`] and the GPU's [`GpuTrainer`](crate::cuda::GpuTrainer) implement it, so one
/// loop (`tinyddpm train`'s) drives both: checkpoints, the loss log, Ctrl-C, divergence.
pub trait Training {
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

    /// The model's shape: H, B, D and where each tensor lies.
    fn layout(&self) -> tinyddpm_core::Layout;

    /// The whole training state, as a checkpoint holds it (see [`write_checkpoint`]).
    fn state(&self) -> Result<State, Self::Error>;

    /// The model to save: the EMA weights when `ema` is set, the raw weights otherwise.
    fn model(&self) -> Result<FlatModel, Self::Error>;
}

/// Adam training of a model of any H and B on batches of `config.data` (D its points'),
/// schedule of `T` steps.
pub struct Trainer<const T: usize> {
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

impl<const T: usize> Trainer<T> {
    /// A fresh run of a model of `hidden` units and `blocks` blocks: PyTorch-default initial
    /// weights drawn from `config.seed`.
    pub fn new(
        config: TrainConfig,
        hidden: usize,
        blocks: usize,
        schedule: &Schedule<T>,
    ) -> Result<Self, TrainError> {
        let state = State::new(config, hidden, blocks, schedule.kind)?;
        Self::from_state(state, hidden, blocks)
    }

    /// Continues the run saved in `path` on `threads` worker threads (`None` or 0: one per
    /// core; the results do not depend on it, so it is not part of the checkpoint).
    pub fn resume(path: &Path, threads: Option<usize>) -> Result<Self, CheckpointError> {
        Self::resume_from(&CheckpointFile::read(path)?, threads)
    }

    /// [`Trainer::resume`] from a checkpoint already read, of the model shape it holds.
    pub fn resume_from(
        file: &CheckpointFile,
        threads: Option<usize>,
    ) -> Result<Self, CheckpointError> {
        Self::resume_as(file, file.shape()?, threads)
    }

    /// [`Trainer::resume_from`] for a run asked to be of H and B `shape`: a checkpoint of
    /// another shape is an error naming both.
    pub fn resume_as(
        file: &CheckpointFile,
        (hidden, blocks): (usize, usize),
        threads: Option<usize>,
    ) -> Result<Self, CheckpointError> {
        let mut state = file.state((hidden, blocks, T))?;
        state.config.threads = threads.unwrap_or(0);
        Self::from_state(state, hidden, blocks).map_err(|source| CheckpointError::Train {
            path: file.path().display().to_string(),
            source,
        })
    }

    /// Continues the run `state` (e.g. a GPU trainer's) of a model of `hidden` units and
    /// `blocks` blocks on the CPU.
    pub fn from_state(state: State, hidden: usize, blocks: usize) -> Result<Self, TrainError> {
        let (schedule, layout) = state.check::<T>(hidden, blocks)?;
        let config = state.config;
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
            .map(|first| {
                let n = CHUNK.min(config.batch - first);
                Chunk::new(&layout, first, n, config.classes)
            })
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
        time(Phase::Step, || self.step_untimed())
    }

    fn step_untimed(&mut self) -> Result<f32, TrainError> {
        let Self {
            config,
            coefs,
            layout,
            params,
            adam,
            ema,
            step,
            chunks,
            pool,
            ..
        } = self;
        let count = layout.dim() * config.batch;
        let (data, seed, at) = (&config.data, config.seed, *step);
        // One entry into the pool a step, the batch's passes and then the update: each entry
        // from outside wakes the workers and waits for them.
        let loss = pool.install(|| {
            let results: Vec<(f64, bool)> = chunks
                .par_iter_mut()
                .map(|c| {
                    time(Phase::Data, || {
                        c.examples.fill(data, coefs, seed, at, c.first)
                    });
                    time(Phase::Chunk, || c.forward_backward(params, layout, count))
                })
                .collect();
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
            time(Phase::Adam, || {
                adam.update(params, &mut first[0].grad, &more, config.lr, at + 1);
                if let (Some(e), Some(d)) = (ema.as_mut(), config.ema) {
                    adam::ema_update(e, params, d);
                }
            });
            Ok(loss)
        })?;
        *step += 1;
        Ok(loss)
    }

    /// The model to save: the EMA weights when `ema` is set, the raw weights otherwise.
    pub fn model(&self) -> FlatModel {
        self.flat(self.ema.as_ref().unwrap_or(&self.params))
    }

    /// The raw (non-averaged) weights.
    pub fn weights(&self) -> FlatModel {
        self.flat(&self.params)
    }

    fn flat(&self, params: &[f32]) -> FlatModel {
        FlatModel::new(self.layout.core, params.to_vec()).expect("the arrays fit the layout")
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
        write_checkpoint(
            path,
            &self.state(),
            (self.layout.hidden, self.layout.blocks.len(), T),
        )
    }

    /// Overwrites one weight (in the model file's parameter order): a fault-injection hook
    /// for tests of the divergence handling.
    #[doc(hidden)]
    pub fn set_weight(&mut self, index: usize, value: f32) {
        self.params[index] = value;
    }
}

impl<const T: usize> Training for Trainer<T> {
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

    fn layout(&self) -> tinyddpm_core::Layout {
        self.layout.core
    }

    fn state(&self) -> Result<State, TrainError> {
        Ok(Trainer::state(self))
    }

    fn model(&self) -> Result<FlatModel, TrainError> {
        Ok(Trainer::model(self))
    }
}

/// A model with PyTorch's default `nn.Linear` initialisation drawn from `seed` (weights and
/// biases uniform in ±1/√fan_in): the trainer's starting point, and a realistic untrained
/// model for tests and benchmarks.
pub fn pytorch_init<const H: usize, const B: usize>(seed: u64) -> Box<Model<H, B>> {
    model_of(&Layout::of::<H, B>().init(seed))
}

/// The batched forward pass: ε̂ for the examples' `x_t` and `t_input` (`[n × D]`, row-major),
/// one chunk, the trainer's arithmetic (matrix products, not the core's summation order).
pub fn predict_noise(model: &FlatModel, examples: &Examples) -> Vec<f32> {
    let (layout, mut chunk) = chunk_of(model, examples);
    chunk.forward(model.params(), &layout);
    chunk.prediction().to_vec()
}

/// The MSE loss of `model` on `examples` (mean over examples and their D coordinates, like
/// `nn.MSELoss`) and its gradient with respect to every parameter (a model of its shape),
/// from the trainer's hand-written backward pass.
pub fn loss_and_gradient(model: &FlatModel, examples: &Examples) -> (f32, FlatModel) {
    let (layout, mut chunk) = chunk_of(model, examples);
    let count = model.dim() * examples.len();
    let (sse, _) = chunk.forward_backward(model.params(), &layout, count);
    let grad = FlatModel::new(model.layout(), chunk.grad).expect("a gradient per parameter");
    ((sse / count as f64) as f32, grad)
}

/// One chunk holding `examples`, for `model`'s layout (which must be of their D).
fn chunk_of(model: &FlatModel, examples: &Examples) -> (Layout, Chunk) {
    assert_eq!(model.dim(), examples.dim, "the examples' D is the model's");
    let layout = Layout::new(model.layout());
    let mut chunk = Chunk::new(&layout, 0, examples.len(), examples.classes);
    chunk.examples.clone_from(examples);
    (layout, chunk)
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
