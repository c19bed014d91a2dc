//! The training job: a new or resumed run on the CPU or the GPU, driven to its step count
//! through one loop ([`train`]) over either device's trainer ([`Training`]), with the loss
//! log, checkpoints, stopping and divergence handled the same way for both.
//!
//! The loss log is written as training goes, into the temporary file that becomes the log
//! at the end (memory stays bounded however many steps); a stop between calls of steps
//! writes nothing partial and says from which checkpoint to continue.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tinyddpm_core::{Header, Sampler, Schedule, ScheduleKind};

use super::{T, Watch};
use crate::atomic::AtomicFile;
use crate::csv;
use crate::cuda::{Gpu, GpuTrainer};
use crate::data::TrainingData;
use crate::modelfile::{self, ModelFileError};
use crate::train::{
    CheckpointFile, DataMismatch, TrainConfig, Trainer, Training, write_checkpoint,
};

/// Steps the final loss averages.
pub const LOSS_TAIL: usize = 200;

/// A training run's settings, resolved and checked.
#[derive(Clone, Debug)]
pub struct TrainJob {
    /// The step to stop at (a resumed run continues up to it).
    pub steps: u64,
    /// The model file to write at the end.
    pub out: PathBuf,
    /// The loss log (CSV `step,loss`).
    pub losses: PathBuf,
    /// Where to write checkpoints, and every how many steps (one is always written at the
    /// end).
    pub checkpoint: Option<(PathBuf, u64)>,
    /// The sampler the model file names as its default.
    pub default_sampler: Sampler,
}

/// How the run starts.
pub enum Start<'a> {
    /// A new run: initial weights and batches from the configuration's seed, points of its
    /// data.
    New(TrainConfig),
    /// The run a checkpoint file holds (from either trainer), read from `path`.
    Resume {
        /// The checkpoint, read.
        file: &'a CheckpointFile,
        /// Where it was read from: the checkpoint a failure before the first new one
        /// leaves to continue from.
        path: &'a Path,
        /// CPU worker threads (the results do not depend on them).
        threads: usize,
        /// The data the caller gives, if any: a checkpoint of other data is refused (its run
        /// continues only on the set or the points it began with). A run on points needs
        /// them given.
        data: Option<TrainingData>,
    },
}

/// What a finished run reports.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Steps run by this job.
    pub steps: u64,
    /// Wall time of those steps, seconds.
    pub seconds: f64,
    /// Mean loss of the last (up to) [`LOSS_TAIL`] steps.
    pub final_loss: f32,
}

/// Where a run that stops now can continue from: the last checkpoint written (or resumed
/// from) and its step.
#[derive(Clone, Debug, Default)]
pub struct LastCheckpoint(pub Option<(PathBuf, u64)>);

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

    /// "the last checkpoint is c.ckpt at step 50: continue with `--resume c.ckpt`", or that
    /// there is none.
    fn continue_from(&self) -> String {
        match &self.0 {
            Some((path, at)) => format!(
                "the last checkpoint is {} at step {at}: continue with `--resume {}`",
                path.display(),
                path.display()
            ),
            None => "no checkpoint was written, so the run cannot be resumed".to_string(),
        }
    }
}

/// Why a training job stopped. Every message after the start says that no model was
/// written and which checkpoint is intact.
#[derive(Debug, thiserror::Error)]
pub enum TrainJobError {
    /// The run could not start (an invalid configuration, a device failure).
    #[error("cannot start training: {0}")]
    Start(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The resumed checkpoint cannot be continued.
    #[error("cannot resume training: {0}")]
    Resume(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The resumed checkpoint's run trains on other data than those given.
    #[error("cannot resume training: {0}")]
    Data(#[source] DataMismatch),
    /// A resumed run already reached the step asked for.
    #[error("the checkpoint is already at step {0}: ask for more --steps")]
    AlreadyDone(u64),
    /// The watch asked to stop before step `step`.
    #[error("interrupted at step {step}; no model was written; {}", last.continue_from())]
    Stopped {
        /// The first step not run.
        step: u64,
        /// What can be resumed.
        last: LastCheckpoint,
    },
    /// A step diverged (or the device failed).
    #[error("{source}; no model was written{}", last.intact())]
    Failed {
        /// The trainer's error.
        source: Box<dyn std::error::Error + Send + Sync>,
        /// What is intact.
        last: LastCheckpoint,
    },
    /// The loss log could not be written.
    #[error("cannot write the loss log {}: {source}; no model was written{}",
            path.display(), last.resumable())]
    LossLog {
        /// The log.
        path: PathBuf,
        /// Why.
        source: io::Error,
        /// What can be resumed.
        last: LastCheckpoint,
    },
    /// A checkpoint could not be made or written.
    #[error("cannot write the checkpoint {} at step {step}; no model was written: {source}",
            path.display())]
    Checkpoint {
        /// The checkpoint.
        path: PathBuf,
        /// Its step.
        step: u64,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The trained model could not be read back from the device.
    #[error("cannot read the trained model: {0}")]
    ReadModel(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The model file could not be written.
    #[error("cannot write the model: {0}")]
    Model(#[source] ModelFileError),
}

/// The loss log being written: rows go to the temporary file as steps finish, and only the
/// last [`LOSS_TAIL`] losses stay in memory, for the summary.
struct LossLog {
    file: AtomicFile,
    tail: VecDeque<f32>,
}

impl LossLog {
    /// Starts an empty log at `path`.
    fn create(path: &Path) -> io::Result<Self> {
        let mut log = Self {
            file: AtomicFile::create(path)?,
            tail: VecDeque::with_capacity(LOSS_TAIL),
        };
        csv::write_losses_header(&mut log.file)?;
        Ok(log)
    }

    /// Starts the log at `path` with the rows before step `start` of the log already there
    /// (the run being resumed), copied row by row: continued, not restarted, in bounded
    /// memory however long. A missing or unreadable log just starts a new one.
    fn resume(path: &Path, start: u64) -> io::Result<Self> {
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

    fn push(&mut self, step: u64, loss: f32) -> io::Result<()> {
        if self.tail.len() == LOSS_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(loss);
        csv::write_loss_row(&mut self.file, step, loss)
    }

    /// Puts the log in place; returns the mean of its last losses.
    fn commit(self) -> io::Result<f32> {
        let mean = self.tail.iter().sum::<f32>() / self.tail.len().max(1) as f32;
        self.file.commit()?;
        Ok(mean)
    }
}

/// Boxes a device's or trainer's error.
fn boxed(
    e: impl std::error::Error + Send + Sync + 'static,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// Runs `job` on the CPU from `start`, a model of `hidden` units and `blocks` blocks on
/// points of the data's D (a resumed run's shape must be its checkpoint's): the model file,
/// the loss log and the checkpoints as [`TrainJob`] says.
pub fn train(
    job: &TrainJob,
    start: Start<'_>,
    (hidden, blocks): (usize, usize),
    watch: &dyn Watch,
) -> Result<Summary, TrainJobError> {
    with_data(start, |start, resumed| match start {
        Start::Resume { file, threads, .. } => {
            let trainer = Trainer::<T>::resume_as(file, (hidden, blocks), Some(threads))
                .map_err(|e| TrainJobError::Resume(boxed(e)))?;
            drive(job, trainer, resumed, watch)
        }
        Start::New(config) => {
            let trainer = Trainer::<T>::new(config, hidden, blocks, &seed_schedule()?)
                .map_err(|e| TrainJobError::Start(boxed(e)))?;
            drive(job, trainer, resumed, watch)
        }
    })
}

/// [`train`] on `gpu`: any shape and D the CPU trainer takes.
pub fn train_gpu(
    job: &TrainJob,
    start: Start<'_>,
    (hidden, blocks): (usize, usize),
    gpu: &Gpu,
    watch: &dyn Watch,
) -> Result<Summary, TrainJobError> {
    with_data(start, |start, resumed| match start {
        Start::Resume { file, .. } => drive(
            job,
            GpuTrainer::<T>::resume_as(gpu, file, (hidden, blocks))
                .map_err(|e| TrainJobError::Resume(boxed(e)))?,
            resumed,
            watch,
        ),
        Start::New(config) => drive(
            job,
            GpuTrainer::<T>::new(gpu, config, hidden, blocks, &seed_schedule()?)
                .map_err(|e| TrainJobError::Start(boxed(e)))?,
            resumed,
            watch,
        ),
    })
}

/// The seed notebook's noise schedule, every new run's.
fn seed_schedule() -> Result<Schedule<T>, TrainJobError> {
    Schedule::<T>::new(ScheduleKind::SEED)
        .ok_or_else(|| TrainJobError::Start("the seed noise schedule is invalid".into()))
}

/// Runs `run` on `start` with a resumed run's data checked and given: a resumed run's data
/// are its checkpoint's, so those given must be them (checked before a device is set up for
/// them), and a run on points draws from the points given. `run` also gets the checkpoint
/// resumed from, if any.
fn with_data<R>(
    start: Start<'_>,
    run: impl FnOnce(Start<'_>, Option<PathBuf>) -> Result<R, TrainJobError>,
) -> Result<R, TrainJobError> {
    let resumed = match &start {
        Start::Resume { path, .. } => Some(path.to_path_buf()),
        Start::New(_) => None,
    };
    let given;
    let start = match start {
        Start::Resume {
            file,
            path,
            threads,
            data: Some(asked),
        } => {
            given = file
                .with_data(&asked)
                .map_err(|e| TrainJobError::Resume(boxed(e)))?
                .map_err(TrainJobError::Data)?;
            Start::Resume {
                file: &given,
                path,
                threads,
                data: Some(asked),
            }
        }
        start => start,
    };
    run(start, resumed)
}

/// Runs `trainer` to the job's step count on whichever device: the loss log, a checkpoint
/// every so many steps and at the end, a stop between calls of [`Training::run`],
/// divergence naming the intact checkpoint; then the model file.
fn drive<R: Training>(
    job: &TrainJob,
    mut trainer: R,
    resumed: Option<PathBuf>,
    watch: &dyn Watch,
) -> Result<Summary, TrainJobError> {
    let start = trainer.step_index();
    if start >= job.steps {
        return Err(TrainJobError::AlreadyDone(start));
    }
    trainer.set_steps(job.steps);
    let layout = trainer.layout();
    watch.total(job.steps - start);
    // The checkpoint a failure leaves to resume from, and its step.
    let mut last = LastCheckpoint(resumed.map(|path| (path, start)));
    let log = match last.0 {
        Some(_) => LossLog::resume(&job.losses, start),
        None => LossLog::create(&job.losses),
    };
    let mut log = log.map_err(|source| TrainJobError::LossLog {
        path: job.losses.clone(),
        source,
        last: last.clone(),
    })?;
    let begin = Instant::now();
    while trainer.step_index() < job.steps {
        let step = trainer.step_index();
        if watch.stop() {
            return Err(TrainJobError::Stopped { step, last });
        }
        let until_checkpoint = match &job.checkpoint {
            Some((_, every)) => every - step % every,
            None => u64::MAX,
        };
        let steps = until_checkpoint
            .min(job.steps - step)
            .min(R::STEPS_PER_CALL);
        let mut logged = Ok(());
        let run = trainer.run(steps, &mut |step, loss| {
            if logged.is_ok() {
                logged = log.push(step, loss);
            }
            watch.advance(1);
            if step % 20 == 0 {
                watch.status(&format!("loss {loss:.4}"));
            }
        });
        if let Err(source) = logged {
            return Err(TrainJobError::LossLog {
                path: job.losses.clone(),
                source,
                last,
            });
        }
        if let Err(e) = run {
            return Err(TrainJobError::Failed {
                source: boxed(e),
                last,
            });
        }
        let at = trainer.step_index();
        if let Some((path, every)) = &job.checkpoint
            && (at.is_multiple_of(*every) || at == job.steps)
        {
            let failed = |source| TrainJobError::Checkpoint {
                path: path.clone(),
                step: at,
                source,
            };
            let state = trainer.state().map_err(|e| failed(boxed(e)))?;
            let shape = (layout.hidden, layout.blocks, T);
            write_checkpoint(path, &state, shape).map_err(|e| failed(boxed(e)))?;
            last = LastCheckpoint(Some((path.clone(), at)));
        }
    }
    let seconds = begin.elapsed().as_secs_f64();
    // The data's record: D, the source and the units (written only when not the Swiss
    // roll's, so the notebook's model files keep their bytes).
    let header = Header {
        hidden: layout.hidden as u32,
        blocks: layout.blocks as u32,
        timesteps: T as u32,
        schedule: trainer.schedule_kind(),
        sampler: job.default_sampler,
        data: trainer.config().data.model_data(),
        classes: trainer.layout().classes as u16,
    };
    let model = trainer
        .model()
        .map_err(|e| TrainJobError::ReadModel(boxed(e)))?;
    modelfile::save_flat(&job.out, &model, &header).map_err(TrainJobError::Model)?;
    let final_loss = log.commit().map_err(|source| TrainJobError::LossLog {
        path: job.losses.clone(),
        source,
        last: LastCheckpoint::default(),
    })?;
    Ok(Summary {
        steps: job.steps - start,
        seconds,
        final_loss,
    })
}
