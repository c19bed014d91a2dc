//! The CUDA backend: bit-identical sampling and Adam training on an NVIDIA GPU, through
//! cudarc with the driver and NVRTC loaded at run time.
//!
//! The GPU is behind the default feature `cuda` (`gpu.rs`, the only file that uses cudarc);
//! built without it, [`probe`] says so and everything else — the plans, the kernels' sources,
//! the [`launch::Device`] the CPU emulation implements — is still here.
//!
//! Nothing here needs CUDA at build time. [`probe`] finds a usable GPU (driver library, a
//! new-enough driver, a device, NVRTC able to compile for it) without ever panicking: cudarc
//! panics when a library is missing, so every library is checked for before cudarc touches
//! it, and a driver error is only formatted once the driver is known to be loaded (its
//! message comes from the driver).
//!
//! Kernels are CUDA C under `kernels/`, compiled at run time by NVRTC for the device's
//! architecture with `--fmad=false --ftz=false --prec-div=true --prec-sqrt=true`. The
//! sampling kernels copy the core's arithmetic line for line (see `kernels/common.cu`) and
//! return the core's bits ([`Gpu::sample`]); training ([`GpuTrainer`]) agrees with the CPU
//! trainer to rounding, and saves the same checkpoint and model files.
//!
//! Every job is a launch list built as data ([`launch::Plan`]: [`sample_plan`],
//! [`step_plan`]) and run by a [`launch::Device`]: the GPU, or the CPU emulation of the
//! kernels with which the test suite runs these very plans on machines without a GPU.

#[cfg(feature = "cuda")]
mod gpu;
pub mod launch;
mod sample;
mod train;
#[cfg(not(feature = "cuda"))]
mod without_gpu;

use std::fmt;

use crate::batch::FlatRequest;

#[cfg(feature = "cuda")]
pub use gpu::{Gpu, compile_all, nvrtc_available, probe};
#[cfg(not(feature = "cuda"))]
pub use without_gpu::{Gpu, compile_all, nvrtc_available, probe};

pub use sample::{SamplePlan, Wave, check_sample_shape, sample_on, sample_plan};
pub use train::{GpuTrainer, StateBuffers, StepPlan, step_plan};

/// Why the GPU cannot be used, in one line.
#[derive(Debug, Clone)]
pub struct NoGpu(pub String);

impl fmt::Display for NoGpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoGpu {}

/// A failure while running on the GPU (after a successful [`probe`]).
#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    /// A CUDA driver call failed.
    #[error("CUDA {what}: {message}")]
    Driver {
        /// What was being done.
        what: &'static str,
        /// The driver's description of the error.
        message: String,
    },
    /// NVRTC rejected a kernel source.
    #[error("NVRTC could not compile {kernel}: {log}")]
    Compile {
        /// The kernel source's name.
        kernel: &'static str,
        /// NVRTC's log (or error, when there is no log).
        log: String,
    },
    /// The model or request has a shape these kernels do not handle.
    #[error("unsupported on the GPU: {0}")]
    Unsupported(String),
    /// The sampler's parameters do not fit the schedule.
    #[error(transparent)]
    Sampler(#[from] tinyddpm_core::SamplerError),
    /// Training stopped (a non-finite loss) or its configuration is invalid.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] crate::train::CheckpointError),
}

/// A kernel source file, compiled as `common.cu` followed by the file itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSource {
    /// The file's name, e.g. `sample.cu`.
    pub name: &'static str,
    /// Its text.
    pub text: &'static str,
}

/// The device maths every kernel source starts with.
pub const COMMON: &str = include_str!("kernels/common.cu");
/// The sampling kernels.
pub const SAMPLE: KernelSource = KernelSource {
    name: "sample.cu",
    text: include_str!("kernels/sample.cu"),
};
/// The training kernels.
pub const TRAIN: KernelSource = KernelSource {
    name: "train.cu",
    text: include_str!("kernels/train.cu"),
};

/// rand_xoshiro's state for an all-zero seed (it remaps that seed), as 16 bytes: the kernels'
/// `zero_fallback` (see `stream_new` in `common.cu`).
fn zero_seed_state() -> Vec<u8> {
    use rand_core::SeedableRng;
    rand_xoshiro::Xoshiro128PlusPlus::from_seed([0; 16])
        .state()
        .to_vec()
}
