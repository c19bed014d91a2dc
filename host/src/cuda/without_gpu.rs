//! The stand-in for `gpu.rs` in a build without the `cuda` feature: the same names, no GPU.
//! [`Gpu`] has no values, so every method is unreachable by construction, and [`probe`] says
//! why there is none: the CLI's `--device auto` runs on the CPU, `--device cuda` is one line.

use super::launch::{Device, Plan, Session};
use super::{CudaError, FlatRequest, KernelSource, NoGpu};

/// Why this build has no GPU.
const WITHOUT: &str = "this tinyddpm was built without the `cuda` feature (no CUDA backend)";

/// A GPU, of which a build without the `cuda` feature has none.
#[derive(Debug)]
pub enum Gpu {}

/// Never finds a GPU: this build has no CUDA backend.
pub fn probe() -> Result<Gpu, NoGpu> {
    Err(NoGpu(WITHOUT.into()))
}

/// NVRTC is not looked for without the `cuda` feature.
pub fn nvrtc_available() -> bool {
    false
}

/// Nothing compiles the kernels without the `cuda` feature.
pub fn compile_all(_arch: &str) -> Result<Vec<&'static str>, CudaError> {
    Err(CudaError::Unsupported(WITHOUT.into()))
}

impl Gpu {
    /// The device's name.
    pub fn name(&self) -> &str {
        match *self {}
    }

    /// The NVRTC architecture the kernels are compiled for.
    pub fn arch(&self) -> &str {
        match *self {}
    }

    /// The samples of `request` on the GPU, D values a sample.
    pub fn sample<const T: usize>(
        &self,
        _: &FlatRequest<'_, T>,
        _: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<f32>, CudaError> {
        match *self {}
    }
}

impl Device for Gpu {
    fn smem_optin(&self) -> usize {
        match *self {}
    }

    fn sm_count(&self) -> usize {
        match *self {}
    }

    fn resident_blocks(
        &self,
        _: KernelSource,
        _: &[(&'static str, usize)],
        _: &'static str,
        _: u32,
        _: u32,
    ) -> Result<usize, CudaError> {
        match *self {}
    }

    fn load(&self, _: &Plan) -> Result<Box<dyn Session>, CudaError> {
        match *self {}
    }
}
