//! The command line's face of the library's jobs ([`tinyddpm::run`]): a progress bar on
//! stderr, the stop signals watched ([`interrupt`]), the device resolved for each model
//! kind, and the jobs' errors in the command line's words.

use anyhow::{Result, anyhow};
use indicatif::ProgressBar;
use tinyddpm::cuda::Gpu;
use tinyddpm::run::Watch;
use tinyddpm::run::sample::{Overflow, SampleError, SampleModel, Sampling, Sink};
use tinyddpm::run::train::{self as job, Start, Summary, TrainJob, TrainJobError};

use super::interrupt::{self, Interrupted};
use super::{DeviceArg, device, progress_bar, tell};

/// A job's progress as a bar on stderr; a stop signal ([`interrupt::watch`]) stops it.
pub struct BarWatch(pub ProgressBar);

impl Watch for BarWatch {
    fn total(&self, n: u64) {
        self.0.set_length(n);
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn status(&self, status: &str) {
        self.0.set_message(status.to_string());
    }

    fn stop(&self) -> bool {
        interrupt::requested()
    }
}

/// Resolves `--device` for a model kind: [`device`] for the float model; an integer model
/// runs on the CPU whatever was asked, saying so when the GPU was.
pub fn device_for<M: SampleModel>(arg: DeviceArg) -> Result<Option<M::Gpu>> {
    if !M::ON_GPU {
        if arg != DeviceArg::Cpu {
            tell!("note: integer models run on the CPU: the GPU kernels run float models only");
        }
        return Ok(None);
    }
    Ok(device(arg)?.and_then(M::on))
}

/// Draws `0..count` with `sampling` into `sink`, with a progress bar and the stop signals
/// watched; the errors in the command line's words.
pub fn draw<M: SampleModel>(
    sampling: &Sampling<'_, M>,
    init: Option<&[f32]>,
    count: u64,
    sink: &mut Sink<'_, anyhow::Error>,
) -> Result<()> {
    interrupt::watch()?;
    let watch = BarWatch(progress_bar(0, "sample"));
    let drawn = sampling.run(init, count, &watch, &mut |points| {
        sink(points).map_err(SinkError)
    });
    match drawn {
        Ok(()) => {
            watch.0.finish_and_clear();
            Ok(())
        }
        Err(e) => {
            watch.0.abandon();
            Err(match e {
                SampleError::Stopped { done, count } => Interrupted::new(format!(
                    "interrupted after {done} of {count} samples; no samples were written"
                ))
                .into(),
                SampleError::NotFinite {
                    index,
                    point,
                    cause,
                } => {
                    let cause = match cause {
                        Overflow::Start(row) => format!("its --x-init row is {row}"),
                        Overflow::Model => {
                            "the model's output overflows: see `tinyddpm inspect`".into()
                        }
                        schedule => schedule.to_string(),
                    };
                    anyhow!("sample {index} is not finite {point}; {cause}; nothing was written")
                }
                SampleError::Sink(SinkError(e)) => e,
                e => e.into(),
            })
        }
    }
}

/// A sink's error, carried through the job as an error type.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct SinkError(anyhow::Error);

/// Runs `job` for the shape (`hidden`, `blocks`) on the GPU when given, else on the CPU
/// (both take any shape and D), with a progress bar and the stop signals watched; the errors
/// in the command line's words.
pub fn run_job(
    job: &TrainJob,
    hidden: usize,
    blocks: usize,
    start: Start<'_>,
    gpu: Option<&Gpu>,
) -> Result<Summary> {
    interrupt::watch()?;
    let watch = BarWatch(progress_bar(0, "train"));
    let shape = (hidden, blocks);
    let trained = match gpu {
        Some(gpu) => job::train_gpu(job, start, shape, gpu, &watch),
        None => job::train(job, start, shape, &watch),
    }
    .map_err(job_error);
    match trained {
        Ok(_) => watch.0.finish_and_clear(),
        Err(_) => watch.0.abandon(),
    }
    trained
}

/// A training job's error; a stop is an [`Interrupted`] (exit 128 + the signal).
fn job_error(e: TrainJobError) -> anyhow::Error {
    match e {
        TrainJobError::Stopped { .. } => Interrupted::new(e.to_string()).into(),
        e => e.into(),
    }
}
