//! The CUDA backend: bit-identical sampling and Adam training on an NVIDIA GPU, through
//! cudarc with the driver and NVRTC loaded at run time.
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

pub mod launch;
mod sample;
mod train;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DriverError, sys};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use sample::samples_per_block_max;

pub use sample::{SamplePlan, Wave, sample_on, sample_plan};
pub use train::{GpuTrainer, StateBuffers, step_plan};

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

impl CudaError {
    /// Wraps a driver error; only called with the driver loaded, so formatting is safe.
    fn driver(what: &'static str) -> impl FnOnce(DriverError) -> Self {
        move |e| Self::Driver {
            what,
            message: driver_message(&e),
        }
    }
}

/// The driver's name and description of `e` (needs the driver library loaded).
fn driver_message(e: &DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned());
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned());
    match (name, text) {
        (Ok(n), Ok(t)) => format!("{t} ({n})"),
        _ => format!("error code {:?}", e.0),
    }
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

/// Compiles `kernel` for `arch` (e.g. `compute_90`) with `defines` as `-D` options.
fn compile(kernel: KernelSource, arch: &str, defines: &[(&str, usize)]) -> Result<Ptx, CudaError> {
    let mut options = vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()];
    options.extend(defines.iter().map(|(k, v)| format!("-D{k}={v}")));
    let opts = CompileOptions {
        // Bits must match the CPU: no contraction into FMA, no flushing of subnormals,
        // IEEE-rounded division and square root.
        fmad: Some(false),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        options,
        name: Some(kernel.name.into()),
        ..Default::default()
    };
    let source = format!("{COMMON}\n{}", kernel.text);
    cudarc::nvrtc::compile_ptx_with_opts(source, opts).map_err(|e| CudaError::Compile {
        kernel: kernel.name,
        log: match e {
            CompileError::CompileError { log, .. } => log.to_string_lossy().trim().to_owned(),
            other => format!("{other:?}"),
        },
    })
}

/// Whether NVRTC's library can be loaded (`libnvrtc.so` on the library path).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library by name and drops the handle.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles every kernel source for `arch` at the seed model's size (H = 128, B = 3) with
/// the sampling tile an H200 gets, returning the sources' names. Needs NVRTC only (no
/// driver, no device): this is how CI checks the kernels without a GPU.
pub fn compile_all(arch: &str) -> Result<Vec<&'static str>, CudaError> {
    const H200_SMEM_OPTIN: usize = 232_448;
    let smax = samples_per_block_max(128, H200_SMEM_OPTIN)?;
    compile(SAMPLE, arch, &sample::defines::<128, 3>(smax))?;
    compile(TRAIN, arch, &train::defines(128, 3, 1000))?;
    Ok(vec![SAMPLE.name, TRAIN.name])
}

/// A usable CUDA device with its context and stream; kernels are compiled per model shape
/// on first use and cached.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    name: String,
    arch: String,
    sm_count: usize,
    smem_optin: usize,
    modules: Mutex<HashMap<ModuleKey, Arc<CudaModule>>>,
}

/// A compiled module's identity: its source and its `-D` options.
type ModuleKey = (&'static str, Vec<(&'static str, usize)>);

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .field("arch", &self.arch)
            .field("sm_count", &self.sm_count)
            .finish_non_exhaustive()
    }
}

/// The oldest driver API the 12.x bindings are used against (CUDA 12.0).
const MIN_DRIVER: i32 = 12_000;

/// Finds a usable GPU: driver library, a driver new enough for NVRTC's PTX, a device, and
/// NVRTC able to compile the kernels for it. Never panics; the error is one line.
pub fn probe() -> Result<Gpu, NoGpu> {
    // SAFETY: dlopen attempts by library name; nothing is called in the libraries.
    if !unsafe { sys::is_culib_present() } {
        return Err(NoGpu(
            "no CUDA driver: libcuda.so not found (no NVIDIA driver installed)".into(),
        ));
    }
    if !nvrtc_available() {
        return Err(NoGpu(
            "NVRTC not found: put libnvrtc.so (CUDA 12.x, e.g. from scripts/install-nvrtc.sh) \
             on LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let driver = driver_version()?;
    let nvrtc = nvrtc_version()?;
    if driver < MIN_DRIVER {
        return Err(NoGpu(format!(
            "CUDA driver too old: it supports CUDA {}, 12.0 or newer is needed",
            version_text(driver)
        )));
    }
    if nvrtc > driver {
        return Err(NoGpu(format!(
            "NVRTC {} is newer than the driver (CUDA {}): the driver cannot load its PTX; \
             use an NVRTC no newer than the driver",
            version_text(nvrtc),
            version_text(driver)
        )));
    }
    fn no_gpu(what: &'static str) -> impl Fn(DriverError) -> NoGpu {
        move |e| NoGpu(format!("{what}: {}", driver_message(&e)))
    }
    let count = CudaContext::device_count().map_err(no_gpu("no usable CUDA device"))?;
    if count < 1 {
        return Err(NoGpu("no CUDA device found".into()));
    }
    let ctx = CudaContext::new(0).map_err(no_gpu("cannot open CUDA device 0"))?;
    let name = ctx.name().map_err(no_gpu("cannot query CUDA device 0"))?;
    let (major, minor) = ctx
        .compute_capability()
        .map_err(no_gpu("cannot query CUDA device 0"))?;
    let attr = |a| {
        ctx.attribute(a)
            .map(|v| v.max(0) as usize)
            .map_err(no_gpu("cannot query CUDA device 0"))
    };
    let sm_count = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
    let smem_optin =
        attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?;
    // SAFETY: the backend runs all its work on the one stream created below, so stream
    // order alone orders every read and write; cudarc's per-buffer events are not needed
    // (and would otherwise be recorded into captured graphs).
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx
        .new_stream()
        .map_err(no_gpu("cannot create a CUDA stream"))?;
    let gpu = Gpu {
        ctx,
        stream,
        name,
        arch: format!("compute_{major}{minor}"),
        sm_count: sm_count.max(1),
        smem_optin,
        modules: Mutex::new(HashMap::new()),
    };
    // Compiling the seed-size kernels now turns "NVRTC cannot target this GPU" and "the
    // device is too small for the sampling tile" into a probe failure with its reason.
    samples_per_block_max(128, gpu.smem_optin)
        .and_then(|smax| gpu.module(SAMPLE, sample::defines::<128, 3>(smax)))
        .and_then(|_| gpu.module(TRAIN, train::defines(128, 3, 1000)))
        .map_err(|e| NoGpu(first_line(&e.to_string())))?;
    Ok(gpu)
}

/// The CUDA version the driver supports (e.g. 12080 for 12.8).
fn driver_version() -> Result<i32, NoGpu> {
    let mut v = 0;
    // SAFETY: libcuda is loaded (checked by the caller); cuDriverGetVersion exists in every
    // driver and writes one int.
    let r = unsafe { sys::cuDriverGetVersion(&mut v) };
    if r != sys::CUresult::CUDA_SUCCESS {
        return Err(NoGpu(format!(
            "the CUDA driver does not report its version ({r:?})"
        )));
    }
    Ok(v)
}

/// NVRTC's version in the driver's numbering (major·1000 + minor·10).
fn nvrtc_version() -> Result<i32, NoGpu> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: libnvrtc is loaded (checked by the caller); nvrtcVersion writes two ints.
    let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if r != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(NoGpu(format!("NVRTC does not report its version ({r:?})")));
    }
    Ok(major * 1000 + minor * 10)
}

fn version_text(v: i32) -> String {
    format!("{}.{}", v / 1000, v % 1000 / 10)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

impl Gpu {
    /// The device's name, e.g. "NVIDIA H200".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The NVRTC architecture the kernels are compiled for, e.g. `compute_90`.
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// `kernel` compiled with `defines` and loaded, compiled on first use.
    fn module(
        &self,
        kernel: KernelSource,
        defines: Vec<(&'static str, usize)>,
    ) -> Result<Arc<CudaModule>, CudaError> {
        let key = (kernel.name, defines);
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.get(&key) {
            return Ok(m.clone());
        }
        let ptx = compile(kernel, &self.arch, &key.1)?;
        let module = self
            .ctx
            .load_module(ptx)
            .map_err(CudaError::driver("module load"))?;
        modules.insert(key, module.clone());
        Ok(module)
    }

    /// Function `name` of `module`.
    fn function(module: &Arc<CudaModule>, name: &str) -> Result<CudaFunction, CudaError> {
        module
            .load_function(name)
            .map_err(CudaError::driver("kernel lookup"))
    }
}
