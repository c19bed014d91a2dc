//! The GPU itself, through cudarc: finding one that works ([`probe`]), compiling the kernels
//! with NVRTC, and running plans on it ([`Gpu`] as a [`Device`]). Only this file needs cudarc,
//! and only with the `cuda` feature; without it `without_gpu.rs` stands in.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaModule, CudaSlice, CudaStream, DevicePtr,
    DriverError, LaunchConfig, PushKernelArg, sys,
};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use tinyddpm_core::Layout;

use super::launch::{Buf, Device, Fill, Plan, Session, Value, check_write};
use super::sample::{self, sample_on, samples_per_block_max};
use super::{COMMON, CudaError, FlatRequest, KernelSource, NoGpu, SAMPLE, TRAIN, train};

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

/// The seed model's layout (H = 128, B = 3, 2-D points): the shape the kernels are first
/// compiled at.
const SEED: Layout = Layout::of::<128, 3>();

/// Compiles every kernel source for `arch` at the seed model's size, the sampler with the
/// sampling tile an H200 gets, and both also for the narrowest and widest points (D = 1,
/// odd, on the smallest H; D = 16), returning the sources' names. Needs NVRTC only (no
/// driver, no device): this is how CI checks the kernels without a GPU.
pub fn compile_all(arch: &str) -> Result<Vec<&'static str>, CudaError> {
    const H200_SMEM_OPTIN: usize = 232_448;
    let narrowest = Layout::of_dim::<32, 1, 1>();
    let widest = Layout::of_dim::<128, 3, { tinyddpm_core::units::MAX_DIM }>();
    for layout in [SEED, narrowest, widest] {
        let smax = samples_per_block_max(&layout, H200_SMEM_OPTIN)?;
        compile(SAMPLE, arch, &sample::defines(&layout, smax))?;
        compile(TRAIN, arch, &train::defines(&layout, 1000))?;
    }
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
    samples_per_block_max(&SEED, gpu.smem_optin)
        .and_then(|smax| gpu.module(SAMPLE, sample::defines(&SEED, smax)))
        .and_then(|_| gpu.module(TRAIN, train::defines(&SEED, 1000)))
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

/// A launch resolved on the GPU: its function, configuration and arguments.
struct Ready {
    func: CudaFunction,
    config: LaunchConfig,
    args: Vec<Value>,
}

/// A plan loaded on the GPU: its buffers allocated and filled, every launch resolved.
/// Kernels address the buffers through the raw device pointers resolved here, so the
/// buffers live exactly as long as this.
struct GpuSession {
    stream: Arc<CudaStream>,
    buffers: Vec<CudaSlice<u8>>,
    launches: Vec<Ready>,
    use_graph: bool,
    /// The whole plan captured once, when graphs are on.
    graph: Option<CudaGraph>,
}

impl Device for Gpu {
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
        kernel: &'static str,
        threads: u32,
        shared_bytes: u32,
    ) -> Result<usize, CudaError> {
        let func = Gpu::function(&self.module(source, defines.to_vec())?, kernel)?;
        allow_shared(&func, shared_bytes)?;
        let blocks = func
            .occupancy_max_active_blocks_per_multiprocessor(threads, shared_bytes as usize, None)
            .map_err(CudaError::driver("occupancy query"))?;
        Ok(blocks as usize)
    }

    fn load(&self, plan: &Plan) -> Result<Box<dyn Session>, CudaError> {
        let module = self.module(plan.source, plan.defines.clone())?;
        let stream = self.stream.clone();
        let buffers = plan
            .buffers
            .iter()
            .map(|fill| match fill {
                Fill::Zeros(len) => stream.alloc_zeros(*len),
                Fill::Bytes(bytes) => stream.clone_htod(bytes),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(CudaError::driver("upload"))?;
        // Event tracking is off (one stream orders everything), so the guard that comes with
        // the address has nothing to record.
        let addresses: Vec<u64> = buffers.iter().map(|b| b.device_ptr(&stream).0).collect();
        let launches = plan
            .launches
            .iter()
            .zip(plan.resolve(&addresses)?)
            .map(|(launch, args)| {
                let func = Gpu::function(&module, launch.kernel)?;
                allow_shared(&func, launch.shared_bytes)?;
                let [gx, gy, gz] = launch.grid;
                let [bx, by, bz] = launch.block;
                Ok(Ready {
                    func,
                    config: LaunchConfig {
                        grid_dim: (gx, gy, gz),
                        block_dim: (bx, by, bz),
                        shared_mem_bytes: launch.shared_bytes,
                    },
                    args,
                })
            })
            .collect::<Result<_, CudaError>>()?;
        Ok(Box::new(GpuSession {
            stream,
            buffers,
            launches,
            use_graph: false,
            graph: None,
        }))
    }
}

/// Lets `func` use `bytes` of dynamic shared memory: beyond 48 KiB a kernel must opt in.
fn allow_shared(func: &CudaFunction, bytes: u32) -> Result<(), CudaError> {
    if bytes > 0 {
        func.set_attribute(
            sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            bytes as i32,
        )
        .map_err(CudaError::driver("kernel attribute"))?;
    }
    Ok(())
}

impl GpuSession {
    /// Enqueues launches `range`, in order, on the stream.
    fn enqueue(&self, range: Range<usize>) -> Result<(), CudaError> {
        for launch in &self.launches[range] {
            let mut b = self.stream.launch_builder(&launch.func);
            for arg in &launch.args {
                match arg {
                    Value::Ptr(v) | Value::U64(v) => b.arg(v),
                    Value::I32(v) => b.arg(v),
                    Value::F32(v) => b.arg(v),
                };
            }
            // SAFETY: every pointer argument addresses a buffer owned by `self` (alive as
            // long as `self`), at an offset checked by `Plan::resolve` to lie inside it, and
            // the plan that built the launch computed its grid and the lengths the kernel
            // touches from the same sizes the buffers were made with; the arguments follow
            // the kernel's signature (order and types: 8-byte pointers/u64, 4-byte
            // int/float), as the plan's one builder function writes them.
            unsafe { b.launch(launch.config) }.map_err(CudaError::driver("launch"))?;
        }
        Ok(())
    }

    /// Captures the whole plan's launches into a CUDA graph.
    fn capture(&mut self) -> Result<(), CudaError> {
        let driver = CudaError::driver;
        self.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(driver("graph capture"))?;
        let enqueued = self.enqueue(0..self.launches.len());
        let graph = self
            .stream
            .end_capture(
                sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH,
            )
            .map_err(driver("graph capture"));
        enqueued?;
        self.graph = graph?;
        Ok(())
    }
}

impl Session for GpuSession {
    fn run(&mut self, launches: Range<usize>, times: u64) -> Result<(), CudaError> {
        let whole = launches == (0..self.launches.len());
        if self.use_graph && whole && self.graph.is_none() {
            self.capture()?;
        }
        for _ in 0..times {
            match &self.graph {
                Some(g) if whole => g.launch().map_err(CudaError::driver("graph launch"))?,
                _ => self.enqueue(launches.clone())?,
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), CudaError> {
        self.stream
            .synchronize()
            .map_err(CudaError::driver("synchronize"))
    }

    fn read(&self, buf: Buf) -> Result<Vec<u8>, CudaError> {
        self.stream
            .clone_dtoh(&self.buffers[buf.index()])
            .map_err(CudaError::driver("download"))
    }

    fn write(&mut self, buf: Buf, bytes: &[u8]) -> Result<(), CudaError> {
        let dst = &mut self.buffers[buf.index()];
        check_write(dst.len(), bytes)?;
        self.stream
            .memcpy_htod(bytes, dst)
            .map_err(CudaError::driver("upload"))
    }

    fn use_graph(&mut self, on: bool) {
        self.use_graph = on;
        if !on {
            self.graph = None;
        }
    }
}

impl Gpu {
    /// The samples of `request` on the GPU, D values a sample ([`sample_on`] this device).
    pub fn sample<const T: usize>(
        &self,
        request: &FlatRequest<'_, T>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<f32>, CudaError> {
        sample_on(self, request, progress)
    }
}
