//! Kernel launches as data: which kernel, its grid, block and dynamic shared memory, and its
//! arguments as buffers and scalars ([`Launch`]), with the buffers they address and what
//! those hold at the start ([`Plan`]).
//!
//! A plan is built by one function (the training step's: `train::step_plan`) and run here
//! by cudarc ([`Loaded`]); a CPU emulation of the kernels can run the very same plan, so the
//! launch geometry and the argument order exist in one place only.

use std::sync::Arc;

use cudarc::driver::{
    CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg,
};

use super::{CudaError, Gpu};

/// One of a plan's buffers: its index in [`Plan::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Buf(usize);

impl Buf {
    /// Its index in [`Plan::buffers`].
    pub fn index(self) -> usize {
        self.0
    }

    /// The buffer's address, as a kernel argument.
    pub fn ptr(self) -> Arg {
        Arg::Ptr {
            buf: self,
            offset: 0,
        }
    }

    /// The address of f32 number `index` of the buffer, as a kernel argument.
    pub fn f32_at(self, index: usize) -> Arg {
        Arg::Ptr {
            buf: self,
            offset: 4 * index,
        }
    }
}

/// A kernel argument, in the kernel's parameter order and type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Arg {
    /// A pointer `offset` bytes into a buffer.
    Ptr {
        /// The buffer.
        buf: Buf,
        /// Bytes from its start.
        offset: usize,
    },
    /// A null pointer: an argument the kernel does not read in the mode it is given.
    Null,
    /// An `int`.
    I32(i32),
    /// A `u64` (`unsigned long long`).
    U64(u64),
    /// A `float`.
    F32(f32),
}

/// One kernel launch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Launch {
    /// The kernel's name in its source (`extern "C"`).
    pub kernel: &'static str,
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Dynamic shared memory per block, bytes.
    pub shared_bytes: u32,
    /// The arguments, in the kernel's order.
    pub args: Vec<Arg>,
}

/// What a buffer holds before the first launch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Init {
    /// This many zero bytes (made on the device: activations take no host memory).
    Zeros(usize),
    /// These bytes.
    Bytes(Vec<u8>),
}

impl Init {
    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Init::Zeros(len) => *len,
            Init::Bytes(bytes) => bytes.len(),
        }
    }
}

/// Buffers and the launches that use them, run in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Every buffer, by its contents before the first launch.
    pub buffers: Vec<Init>,
    /// The launches, in order.
    pub launches: Vec<Launch>,
}

impl Plan {
    /// A new buffer holding `bytes`.
    pub fn buffer(&mut self, bytes: Vec<u8>) -> Buf {
        self.buffers.push(Init::Bytes(bytes));
        Buf(self.buffers.len() - 1)
    }

    /// A new buffer holding `values`.
    pub fn f32s(&mut self, values: &[f32]) -> Buf {
        self.buffer(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// A new buffer of `count` zero floats.
    pub fn zeros_f32(&mut self, count: usize) -> Buf {
        self.buffers.push(Init::Zeros(4 * count));
        Buf(self.buffers.len() - 1)
    }
}

/// A kernel argument as cudarc pushes it.
enum Raw {
    U64(u64),
    I32(i32),
    F32(f32),
}

/// A launch resolved on the device: its function, configuration and raw arguments.
struct Ready {
    func: CudaFunction,
    config: LaunchConfig,
    args: Vec<Raw>,
}

/// A plan loaded on the device: its buffers allocated and filled, every launch resolved.
/// Kernels address the buffers through the raw device pointers resolved here, so the
/// buffers live exactly as long as this.
pub(crate) struct Loaded {
    buffers: Vec<CudaSlice<u8>>,
    launches: Vec<Ready>,
}

impl Loaded {
    /// Uploads `plan`'s buffers on `stream` and resolves its launches in `module`. A pointer
    /// argument beyond its buffer is refused here, before anything runs.
    pub fn new(
        plan: &Plan,
        module: &Arc<CudaModule>,
        stream: &Arc<CudaStream>,
    ) -> Result<Self, CudaError> {
        let buffers = plan
            .buffers
            .iter()
            .map(|init| match init {
                Init::Zeros(len) => stream.alloc_zeros(*len),
                Init::Bytes(bytes) => stream.clone_htod(bytes),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(CudaError::driver("upload"))?;
        // Event tracking is off (one stream orders everything), so the guard that comes with
        // the address has nothing to record.
        let addresses: Vec<u64> = buffers.iter().map(|b| b.device_ptr(stream).0).collect();
        let launches = plan
            .launches
            .iter()
            .map(|launch| {
                let args = launch
                    .args
                    .iter()
                    .map(|arg| match *arg {
                        Arg::Ptr { buf, offset } => match plan.buffers.get(buf.index()) {
                            Some(init) if offset < init.len() => {
                                Ok(Raw::U64(addresses[buf.0] + offset as u64))
                            }
                            _ => Err(CudaError::Unsupported(format!(
                                "a launch of {} points outside its buffer",
                                launch.kernel
                            ))),
                        },
                        Arg::Null => Ok(Raw::U64(0)),
                        Arg::I32(v) => Ok(Raw::I32(v)),
                        Arg::U64(v) => Ok(Raw::U64(v)),
                        Arg::F32(v) => Ok(Raw::F32(v)),
                    })
                    .collect::<Result<_, _>>()?;
                let [gx, gy, gz] = launch.grid;
                let [bx, by, bz] = launch.block;
                Ok(Ready {
                    func: Gpu::function(module, launch.kernel)?,
                    config: LaunchConfig {
                        grid_dim: (gx, gy, gz),
                        block_dim: (bx, by, bz),
                        shared_mem_bytes: launch.shared_bytes,
                    },
                    args,
                })
            })
            .collect::<Result<_, CudaError>>()?;
        Ok(Self { buffers, launches })
    }

    /// Enqueues every launch, in order, on `stream`.
    pub fn enqueue(&self, stream: &Arc<CudaStream>) -> Result<(), CudaError> {
        for launch in &self.launches {
            let mut b = stream.launch_builder(&launch.func);
            for arg in &launch.args {
                match arg {
                    Raw::U64(v) => b.arg(v),
                    Raw::I32(v) => b.arg(v),
                    Raw::F32(v) => b.arg(v),
                };
            }
            // SAFETY: every pointer argument addresses a buffer owned by `self` (alive as
            // long as `self`), at an offset checked in `new` to lie inside it, and the plan
            // that built the launch computed its grid and the lengths the kernel touches from
            // the same sizes the buffers were made with; the arguments follow the kernel's
            // signature (order and types: 8-byte pointers/u64, 4-byte int/float), as the
            // plan's one builder function writes them.
            unsafe { b.launch(launch.config) }.map_err(CudaError::driver("launch"))?;
        }
        Ok(())
    }

    /// The contents of buffer `buf`.
    pub fn read(&self, stream: &Arc<CudaStream>, buf: Buf) -> Result<Vec<u8>, CudaError> {
        stream
            .clone_dtoh(&self.buffers[buf.0])
            .map_err(CudaError::driver("download"))
    }

    /// The contents of buffer `buf`, as floats.
    pub fn read_f32(&self, stream: &Arc<CudaStream>, buf: Buf) -> Result<Vec<f32>, CudaError> {
        let bytes = self.read(stream, buf)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// Overwrites the start of buffer `buf` with `bytes` (no longer than the buffer).
    pub fn write(
        &mut self,
        stream: &Arc<CudaStream>,
        buf: Buf,
        bytes: &[u8],
    ) -> Result<(), CudaError> {
        let dst = &mut self.buffers[buf.0];
        if bytes.len() > dst.len() {
            return Err(CudaError::Unsupported(format!(
                "{} bytes written into a buffer of {}",
                bytes.len(),
                dst.len()
            )));
        }
        stream
            .memcpy_htod(bytes, dst)
            .map_err(CudaError::driver("upload"))
    }
}
