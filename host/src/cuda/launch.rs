//! Kernel launches as data, and what runs them.
//!
//! A [`Plan`] is everything one job asks of the device: the kernel source and its compile-time
//! sizes, the buffers with what they hold at the start, and the launches in order — which
//! kernel, its grid, block and dynamic shared memory, and its arguments as buffers and scalars
//! ([`Launch`]). Plans are built by one function per job (sampling: `sample::sample_plan`,
//! a training step: `train::step_plan`), so the launch geometry and the argument order exist
//! in one place only.
//!
//! A [`Device`] loads a plan into a [`Session`] that runs its launches and reads and writes its
//! buffers. There are two: the GPU through cudarc ([`super::Gpu`], in `gpu.rs`), and the CPU emulation of
//! the kernels in the test suite (`tests/cuda-emu`), which compiles the same kernel sources as
//! C++ and runs the very same plans.

use std::ops::Range;

use super::{CudaError, KernelSource};

/// One of a plan's buffers: its index in [`Plan::buffers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf(usize);

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
pub enum Arg {
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

/// A kernel argument as a device passes it: pointers resolved to addresses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A pointer (0 for null).
    Ptr(u64),
    /// An `int`.
    I32(i32),
    /// A `u64`.
    U64(u64),
    /// A `float`.
    F32(f32),
}

/// One kernel launch.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// The kernel's name in its source.
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
pub enum Fill {
    /// This many zero bytes (made on the device: activations take no host memory).
    Zeros(usize),
    /// These bytes.
    Bytes(Vec<u8>),
}

impl Fill {
    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Fill::Zeros(len) => *len,
            Fill::Bytes(bytes) => bytes.len(),
        }
    }

    /// Whether the buffer has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A job for the device: the kernels it needs, its buffers, and the launches that use them,
/// run in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The kernel source (compiled after `common.cu`).
    pub source: KernelSource,
    /// Its compile-time sizes (`-D` options), e.g. `HID` = 128.
    pub defines: Vec<(&'static str, usize)>,
    /// Every buffer, by its contents before the first launch.
    pub buffers: Vec<Fill>,
    /// The launches, in order.
    pub launches: Vec<Launch>,
}

impl Plan {
    /// A plan without buffers or launches for the kernels of `source` compiled with `defines`.
    pub fn new(source: KernelSource, defines: Vec<(&'static str, usize)>) -> Self {
        Self {
            source,
            defines,
            buffers: Vec::new(),
            launches: Vec::new(),
        }
    }

    /// A new buffer holding `bytes`.
    pub fn buffer(&mut self, bytes: Vec<u8>) -> Buf {
        self.buffers.push(Fill::Bytes(bytes));
        Buf(self.buffers.len() - 1)
    }

    /// A new buffer holding `values`.
    pub fn f32s(&mut self, values: &[f32]) -> Buf {
        self.buffer(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    /// A new buffer of `count` zero floats.
    pub fn zeros_f32(&mut self, count: usize) -> Buf {
        self.buffers.push(Fill::Zeros(4 * count));
        Buf(self.buffers.len() - 1)
    }

    /// Every buffer, in order.
    pub fn buffer_ids(&self) -> impl Iterator<Item = Buf> + use<> {
        (0..self.buffers.len()).map(Buf)
    }

    /// Every launch's arguments with each buffer at `addresses[buffer index]`. A pointer
    /// argument at or beyond the end of its buffer is refused, before anything runs.
    pub fn resolve(&self, addresses: &[u64]) -> Result<Vec<Vec<Value>>, CudaError> {
        self.launches
            .iter()
            .map(|launch| {
                launch
                    .args
                    .iter()
                    .map(|arg| match *arg {
                        Arg::Ptr { buf, offset } => match self.buffers.get(buf.0) {
                            Some(init) if offset < init.len() => {
                                Ok(Value::Ptr(addresses[buf.0] + offset as u64))
                            }
                            _ => Err(CudaError::Unsupported(format!(
                                "a launch of {} points outside its buffer",
                                launch.kernel
                            ))),
                        },
                        Arg::Null => Ok(Value::Ptr(0)),
                        Arg::I32(v) => Ok(Value::I32(v)),
                        Arg::U64(v) => Ok(Value::U64(v)),
                        Arg::F32(v) => Ok(Value::F32(v)),
                    })
                    .collect()
            })
            .collect()
    }
}

/// Refuses a write of `bytes` into a buffer of `len` bytes that it would overrun.
pub fn check_write(len: usize, bytes: &[u8]) -> Result<(), CudaError> {
    if bytes.len() > len {
        return Err(CudaError::Unsupported(format!(
            "{} bytes written into a buffer of {len}",
            bytes.len()
        )));
    }
    Ok(())
}

/// What runs plans: the GPU ([`super::Gpu`]), or a CPU emulation of the kernels (the test suite's).
pub trait Device {
    /// Dynamic shared memory a thread block may use, bytes.
    fn smem_optin(&self) -> usize;

    /// Multiprocessors: blocks that run at the same time, per block each can hold.
    fn sm_count(&self) -> usize;

    /// How many blocks of `kernel` (of `source` compiled with `defines`) with `threads`
    /// threads and `shared_bytes` of dynamic shared memory one multiprocessor holds at once.
    fn resident_blocks(
        &self,
        source: KernelSource,
        defines: &[(&'static str, usize)],
        kernel: &'static str,
        threads: u32,
        shared_bytes: u32,
    ) -> Result<usize, CudaError>;

    /// Compiles what `plan` needs, makes its buffers and resolves its launches.
    fn load(&self, plan: &Plan) -> Result<Box<dyn Session>, CudaError>;
}

/// A plan loaded on a [`Device`]: its buffers and its launches, ready to run.
pub trait Session {
    /// Runs the plan's launches `launches`, in order, `times` times over. They may still be
    /// running on return: reads wait for them, and so does [`Session::finish`].
    fn run(&mut self, launches: Range<usize>, times: u64) -> Result<(), CudaError>;

    /// Waits until every launch run so far has finished.
    fn finish(&mut self) -> Result<(), CudaError>;

    /// The contents of buffer `buf` (after every launch run so far).
    fn read(&self, buf: Buf) -> Result<Vec<u8>, CudaError>;

    /// Overwrites the start of buffer `buf` with `bytes` (no longer than the buffer), after
    /// every launch run so far.
    fn write(&mut self, buf: Buf, bytes: &[u8]) -> Result<(), CudaError>;

    /// Whether repeated runs of the whole plan replay one captured CUDA graph (off until
    /// asked for; a device without graphs ignores it).
    fn use_graph(&mut self, on: bool) {
        let _ = on;
    }

    /// The contents of buffer `buf`, as floats.
    fn read_f32(&self, buf: Buf) -> Result<Vec<f32>, CudaError> {
        let bytes = self.read(buf)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The entry points of a kernel source (`KERNEL void name(…)`) with their parameters as
    /// the kinds of [`Arg`] they take.
    fn signatures(source: &str) -> Vec<(String, Vec<&'static str>)> {
        source
            .split("KERNEL void ")
            .skip(1)
            .map(|rest| {
                let rest = match rest.strip_prefix("__launch_bounds__(") {
                    Some(bounded) => bounded.split_once(')').expect("closed bounds").1,
                    None => rest,
                };
                let (name, rest) = rest.split_once('(').expect("a parameter list");
                let (params, _) = rest.split_once(')').expect("a closed parameter list");
                let kinds = params
                    .split(',')
                    .map(|p| match p.trim() {
                        p if p.contains('*') => "pointer",
                        p if p.starts_with("int ") => "int",
                        p if p.starts_with("u64 ") => "u64",
                        p if p.starts_with("float ") => "float",
                        p => panic!("{name}: parameter {p:?}"),
                    })
                    .collect();
                (name.trim().to_string(), kinds)
            })
            .collect()
    }

    /// Asserts that `plan`'s source has `kernels` entry points and that every launch names
    /// one of them and passes its parameters in its order and types, with every pointer
    /// inside its buffer.
    pub(in super::super) fn assert_launches_match_signatures(plan: &Plan, kernels: usize) {
        let signatures = signatures(plan.source.text);
        assert_eq!(signatures.len(), kernels, "{signatures:?}");
        for launch in &plan.launches {
            let (_, params) = signatures
                .iter()
                .find(|(name, _)| name == launch.kernel)
                .unwrap_or_else(|| panic!("no kernel {}", launch.kernel));
            let kinds: Vec<&str> = launch
                .args
                .iter()
                .map(|arg| match *arg {
                    Arg::Ptr { buf, offset } => {
                        let len = plan.buffers[buf.index()].len();
                        assert!(offset < len, "{}: offset {offset} of {len}", launch.kernel);
                        "pointer"
                    }
                    Arg::Null => "pointer",
                    Arg::I32(_) => "int",
                    Arg::U64(_) => "u64",
                    Arg::F32(_) => "float",
                })
                .collect();
            assert_eq!(&kinds, params, "{}", launch.kernel);
        }
    }
}
