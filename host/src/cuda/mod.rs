//! The CUDA backend (being written: issue 6). This stub fixes the interface the CLI uses:
//! [`probe`] never panics and says in one line why no GPU can be used.

use std::fmt;

/// Why the GPU cannot be used, in one line.
#[derive(Debug, Clone)]
pub struct NoGpu(pub String);

impl fmt::Display for NoGpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoGpu {}

/// A usable CUDA device with its compiled kernels.
pub struct Gpu {
    _private: (),
}

/// Finds a usable GPU: driver library, a device, NVRTC. Never panics.
pub fn probe() -> Result<Gpu, NoGpu> {
    Err(NoGpu("CUDA backend not built yet".into()))
}
