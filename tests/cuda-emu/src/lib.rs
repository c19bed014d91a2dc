//! The CUDA kernels on the CPU, for the test suite: the kernel sources of
//! `host/src/cuda/kernels` compiled as C++ (by `build.rs`, with `cpp/cuda_cpu.h` modelling
//! CUDA's execution model and `cpp/runtime.cpp` running launches) behind an [`Emulator`], a
//! [`Device`] that runs the very launch lists ([`Plan`]s) the GPU runs.
//!
//! Blocks run one after another; the threads of a block are fibers of the calling thread that
//! meet at `__syncthreads()`, run between barriers in ascending or descending order
//! ([`Order`]); shared memory is fresh per block and starts as garbage that depends on the
//! order. Buffers are heap allocations of exactly their size, so with the `sanitize` feature
//! (AddressSanitizer and UndefinedBehaviorSanitizer) an access past a buffer or a shared array
//! stops the test. See `cpp/cuda_cpu.h` for what is modelled and what is not.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ffi::{CStr, CString, c_char, c_int};
use std::ops::Range;
use std::ptr::NonNull;

use tinyddpm::cuda::launch::{Buf, Device, Plan, Session, Value, check_write};
use tinyddpm::cuda::{CudaError, KernelSource};

/// One compiled module, as `cuda_cpu.h` lays it out.
#[repr(C)]
struct Module {
    source: *const c_char,
    defines: *const c_char,
    kernels: *const std::ffi::c_void,
    count: usize,
}

/// A kernel argument as `cuda_cpu.h`'s `RawArg`.
#[repr(C)]
struct RawArg {
    kind: u32,
    bits: u64,
}

unsafe extern "C" {
    static emu_modules: [*const Module; 0];
    static emu_module_count: usize;
    fn emu_launch(
        module: *const Module,
        kernel: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        args: *const RawArg,
        count: usize,
        order: u32,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn emu_maths(input: *const u32, n: usize, out: *mut u32);
}

/// Words [`maths`] gives per input.
pub const MATHS_WORDS: usize = 12;

/// `common.cu`'s device maths on the CPU: for each input word, [`MATHS_WORDS`] words (see
/// `cpp/maths.cpp`): gelu, ln, sincos_turns, box_muller, two Gaussian pairs of a stream,
/// exp_nonpositive and gelu_derivative, as f32 bits.
pub fn maths(input: &[u32]) -> Vec<u32> {
    let mut out = vec![0u32; MATHS_WORDS * input.len()];
    // SAFETY: emu_maths reads `input.len()` words and writes MATHS_WORDS per input word into
    // `out`, which holds exactly that many.
    unsafe { emu_maths(input.as_ptr(), input.len(), out.as_mut_ptr()) };
    out
}

/// Whether the kernels were built with the sanitizers (the `sanitize` feature).
pub const SANITIZED: bool = cfg!(feature = "sanitize");

/// The order in which a launch runs its blocks, and the threads of a block between two
/// barriers; it also picks the garbage that shared memory starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Ascending indices; shared memory starts as 0xff bytes (NaN floats).
    Forward,
    /// Descending indices; shared memory starts as 0x7f bytes (finite floats near 3.4e38).
    Reverse,
}

/// A CPU standing in for a GPU: the geometry it reports, and the order it runs threads in.
#[derive(Clone, Copy, Debug)]
pub struct Emulator {
    /// Multiprocessors reported ([`Device::sm_count`]).
    pub sm_count: usize,
    /// Blocks of any kernel a multiprocessor holds ([`Device::resident_blocks`]).
    pub resident: usize,
    /// Shared memory a block may use ([`Device::smem_optin`]).
    pub smem_optin: usize,
    /// The thread and block order of every launch.
    pub order: Order,
}

impl Emulator {
    /// A small GPU (two multiprocessors of one block each, so that a few hundred samples
    /// already take several waves) with an H200's shared memory per block.
    pub fn new(order: Order) -> Self {
        Self {
            sm_count: 2,
            resident: 1,
            smem_optin: 232_448,
            order,
        }
    }
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new(Order::Forward)
    }
}

/// The compiled module of `source` with `defines`, or why there is none.
fn module(
    source: KernelSource,
    defines: &[(&'static str, usize)],
) -> Result<&'static Module, CudaError> {
    let sizes: Vec<String> = defines.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sizes = sizes.join(" ");
    // SAFETY: build.rs defines emu_module_count entries of emu_modules, each pointing to a
    // module with static lifetime whose strings are NUL-terminated literals.
    let modules: Vec<&'static Module> = unsafe {
        let first = std::ptr::addr_of!(emu_modules).cast::<*const Module>();
        (0..emu_module_count).map(|i| &**first.add(i)).collect()
    };
    // SAFETY: as above, every string is a NUL-terminated literal.
    let text = |p: *const c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy();
    modules
        .iter()
        .find(|m| text(m.source) == source.name && text(m.defines) == sizes)
        .copied()
        .ok_or_else(|| {
            let built: Vec<String> = modules
                .iter()
                .map(|m| format!("{} ({})", text(m.source), text(m.defines)))
                .collect();
            CudaError::Unsupported(format!(
                "the emulator has no {} built with {sizes:?}: add it to tests/cuda-emu/build.rs \
                 (built: {})",
                source.name,
                built.join(", ")
            ))
        })
}

impl Device for Emulator {
    fn smem_optin(&self) -> usize {
        self.smem_optin
    }

    fn sm_count(&self) -> usize {
        self.sm_count
    }

    fn resident_blocks(
        &self,
        source: KernelSource,
        defines: &[(&'static str, usize)],
        _kernel: &'static str,
        _threads: u32,
        _shared_bytes: u32,
    ) -> Result<usize, CudaError> {
        module(source, defines)?;
        Ok(self.resident)
    }

    fn load(&self, plan: &Plan) -> Result<Box<dyn Session>, CudaError> {
        let module = module(plan.source, &plan.defines)?;
        let buffers: Vec<Memory> = plan.buffers.iter().map(Memory::new).collect();
        let addresses: Vec<u64> = buffers.iter().map(|m| m.ptr.as_ptr() as u64).collect();
        let launches = plan
            .launches
            .iter()
            .zip(plan.resolve(&addresses)?)
            .map(|(launch, args)| Resolved {
                kernel: CString::new(launch.kernel).expect("a kernel name without NUL"),
                grid: launch.grid,
                block: launch.block,
                shared_bytes: launch.shared_bytes,
                args: args.into_iter().map(raw).collect(),
            })
            .collect();
        Ok(Box::new(EmulatedSession {
            module,
            buffers,
            launches,
            order: self.order,
        }))
    }
}

fn raw(value: Value) -> RawArg {
    match value {
        Value::Ptr(p) => RawArg { kind: 0, bits: p },
        Value::I32(v) => RawArg {
            kind: 1,
            bits: u64::from(v as u32),
        },
        Value::U64(v) => RawArg { kind: 2, bits: v },
        Value::F32(v) => RawArg {
            kind: 3,
            bits: u64::from(v.to_bits()),
        },
    }
}

/// A buffer: one heap allocation of exactly its length (so that AddressSanitizer knows where
/// it ends), aligned as `cudaMalloc`'s.
struct Memory {
    ptr: NonNull<u8>,
    len: usize,
}

impl Memory {
    const ALIGN: usize = 256;

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len.max(1), Self::ALIGN).expect("a buffer size")
    }

    fn new(init: &tinyddpm::cuda::launch::Init) -> Self {
        let len = init.len();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(Self::layout(len)) };
        let ptr =
            NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(Self::layout(len)));
        let mut memory = Self { ptr, len };
        if let tinyddpm::cuda::launch::Init::Bytes(bytes) = init {
            memory.bytes_mut().copy_from_slice(bytes);
        }
        memory
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` holds `len` initialised bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.len)) };
    }
}

/// A launch with its arguments resolved to this session's buffers.
struct Resolved {
    kernel: CString,
    grid: [u32; 3],
    block: [u32; 3],
    shared_bytes: u32,
    args: Vec<RawArg>,
}

/// A plan loaded into the emulator.
struct EmulatedSession {
    module: &'static Module,
    buffers: Vec<Memory>,
    launches: Vec<Resolved>,
    order: Order,
}

impl Session for EmulatedSession {
    fn run(&mut self, launches: Range<usize>, times: u64) -> Result<(), CudaError> {
        for _ in 0..times {
            for launch in &self.launches[launches.clone()] {
                let mut err = [0 as c_char; 512];
                // SAFETY: the module and kernel name are valid C strings; grid and block hold
                // three words each; every pointer argument points into a buffer of `self`
                // (checked by `Plan::resolve`), alive during the call, and the kernel's
                // accesses stay inside them exactly when the plan is right, which is what the
                // tests check (with the sanitizers, an access outside stops the process).
                let failed = unsafe {
                    emu_launch(
                        self.module,
                        launch.kernel.as_ptr(),
                        launch.grid.as_ptr(),
                        launch.block.as_ptr(),
                        launch.shared_bytes,
                        launch.args.as_ptr(),
                        launch.args.len(),
                        u32::from(self.order == Order::Reverse),
                        err.as_mut_ptr(),
                        err.len(),
                    )
                };
                if failed != 0 {
                    // SAFETY: emu_launch wrote a NUL-terminated message into `err`.
                    let message = unsafe { CStr::from_ptr(err.as_ptr()) };
                    return Err(CudaError::Driver {
                        what: "emulated launch",
                        message: message.to_string_lossy().into_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), CudaError> {
        Ok(())
    }

    fn read(&self, buf: Buf) -> Result<Vec<u8>, CudaError> {
        Ok(self.buffers[buf.index()].bytes().to_vec())
    }

    fn write(&mut self, buf: Buf, bytes: &[u8]) -> Result<(), CudaError> {
        let memory = &mut self.buffers[buf.index()];
        check_write(memory.len, bytes)?;
        memory.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}
