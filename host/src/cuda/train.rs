//! GPU training: the CPU trainer's run (same initial weights, same per-example data
//! streams, MSE, Adam with PyTorch's defaults, optional EMA) with every buffer on the device
//! (kernels in `kernels/train.cu`).
//!
//! One optimiser step is a fixed list of kernel launches ([`Launch`]) whose step-dependent
//! inputs (the step number for the data streams and Adam's bias correction) are read from
//! device memory. The list is captured once into a CUDA graph and replayed, which removes
//! per-launch CPU overhead; losses are logged on the device and read back every
//! [`LOSS_LOG`] steps. A non-finite loss sets a device flag that turns every later update
//! into a no-op, so the weights stay those from before the failing step.

use std::path::Path;
use std::sync::Arc;

use cudarc::driver::{
    CudaFunction, CudaGraph, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg, sys,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro128PlusPlus;
use tinyddpm_core::{Model, Schedule, ScheduleKind};

use super::{CudaError, Gpu, TRAIN};
use crate::train::adam::Adam;
use crate::train::{self, TrainConfig, TrainError, Trainer, checkpoint};

/// Losses kept on the device between reads (steps per graph-replay chunk).
const LOSS_LOG: usize = 256;
/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;

/// NVRTC `-D` options of `train.cu`.
pub(super) fn defines(
    hidden: usize,
    blocks: usize,
    timesteps: usize,
) -> Vec<(&'static str, usize)> {
    vec![("HID", hidden), ("NBLK", blocks), ("NT", timesteps)]
}

/// Adam's per-step scalars for update number `t` (1-based), as the CPU trainer computes
/// them (adam.rs): `(−lr/(1 − β1^t), √(1 − β2^t))`, in f64 rounded to f32.
fn adam_coefs(lr: f32, t: u64) -> [f32; 2] {
    let t = t as f64;
    let bc1 = 1.0 - libm::pow(0.9, t);
    let bc2 = 1.0 - libm::pow(0.999, t);
    [-(f64::from(lr) / bc1) as f32, libm::sqrt(bc2) as f32]
}

/// Rows of the Adam table (update numbers 1 …). Later updates reuse the last row: from
/// t = 20,000 on, β1^t and β2^t are below 2^-28 and both corrections round to exactly
/// `(−lr, 1.0)` in f32, as the CPU trainer's f64 arithmetic then also gives.
const ADAM_ROWS: usize = 20_000;

/// The model's parameters in file order (weight row-major, then bias, layer by layer).
pub(super) fn flat_params<const H: usize, const B: usize>(model: &Model<H, B>) -> Vec<f32> {
    let mut p = Vec::with_capacity(Model::<H, B>::PARAMS);
    model.for_each_param(|w| p.push(w));
    p
}

/// The model whose parameters in file order are `p` (`p.len() == Model::PARAMS`).
fn model_from<const H: usize, const B: usize>(p: &[f32]) -> Box<Model<H, B>> {
    let mut model = crate::modelfile::boxed_zero::<H, B>();
    let mut values = p.iter().copied();
    model.for_each_param_mut(|w| *w = values.next().unwrap_or(0.0));
    model
}

/// A dense layer `i → o` in the flat vector: weight at `w`, bias at `b`.
#[derive(Clone, Copy, Debug)]
struct Dense {
    i: usize,
    o: usize,
    w: usize,
    b: usize,
}

/// Every layer's place in the flat vector, in file order.
#[derive(Clone, Debug)]
struct Layers {
    time_in: Dense,
    time_out: Dense,
    input: Dense,
    blocks: Vec<[Dense; 2]>,
    output: Dense,
}

impl Layers {
    fn of(hidden: usize, blocks: usize) -> Self {
        let mut at = 0;
        let mut dense = |i: usize, o: usize| {
            let d = Dense {
                i,
                o,
                w: at,
                b: at + i * o,
            };
            at += i * o + o;
            d
        };
        Self {
            time_in: dense(1, hidden),
            time_out: dense(hidden, hidden),
            input: dense(2, hidden),
            blocks: (0..blocks)
                .map(|_| [dense(hidden, hidden), dense(hidden, hidden)])
                .collect(),
            output: dense(hidden, 2),
        }
    }
}

/// Everything a training run is, as the CPU trainer checkpoints it: the configuration, the
/// schedule, steps done, the weights, Adam's moments and the EMA weights (all in file order).
/// The data streams need no state: step `s`'s batch is a function of the seed and `s`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// The run's hyper-parameters.
    pub config: TrainConfig,
    /// The schedule the model is trained for.
    pub schedule: ScheduleKind,
    /// Optimiser steps done.
    pub step: u64,
    /// The raw weights.
    pub params: Vec<f32>,
    /// Adam's first moment.
    pub adam_m: Vec<f32>,
    /// Adam's second moment.
    pub adam_v: Vec<f32>,
    /// The EMA weights, when `config.ema` is set.
    pub ema: Option<Vec<f32>>,
}

/// A kernel argument of a recorded launch.
#[derive(Clone, Copy, Debug)]
enum Arg {
    /// A device address (a buffer, or an offset into one).
    Ptr(u64),
    I32(i32),
    U64(u64),
    F32(f32),
}

/// One recorded kernel launch of a training step.
struct Launch {
    func: CudaFunction,
    grid: (u32, u32),
    block: u32,
    args: Vec<Arg>,
}

/// The device buffers of a run. Kernels address them through raw device pointers recorded
/// in the step's launch list, so they live exactly as long as the trainer.
struct Buffers {
    params: CudaSlice<f32>,
    grads: CudaSlice<f32>,
    adam_m: CudaSlice<f32>,
    adam_v: CudaSlice<f32>,
    ema: CudaSlice<f32>,
    ctr: CudaSlice<u64>,
    losses: CudaSlice<f32>,
    /// Constant inputs: the forward-process coefficients and the zero-seed state.
    consts: Vec<CudaSlice<u8>>,
    /// Activations and their gradients.
    scratch: Vec<CudaSlice<f32>>,
}

/// Adam training on the GPU; see the module docs.
pub struct GpuTrainer<const H: usize, const B: usize, const T: usize> {
    stream: Arc<CudaStream>,
    config: TrainConfig,
    schedule: ScheduleKind,
    step: u64,
    buffers: Buffers,
    launches: Vec<Launch>,
    /// Whether steps replay a captured CUDA graph (the default) or launch each kernel.
    use_graph: bool,
    graph: Option<CudaGraph>,
}

impl<const H: usize, const B: usize, const T: usize> GpuTrainer<H, B, T> {
    /// A fresh run with the CPU trainer's initial weights for `config.seed`.
    pub fn new(gpu: &Gpu, config: TrainConfig, schedule: &Schedule<T>) -> Result<Self, CudaError> {
        let cpu = Trainer::<H, B, T>::new(config.clone(), schedule)?;
        let params = flat_params(&*cpu.weights());
        let len = params.len();
        let state = TrainState {
            ema: config.ema.map(|_| params.clone()),
            config,
            schedule: schedule.kind,
            step: 0,
            params,
            adam_m: vec![0.0; len],
            adam_v: vec![0.0; len],
        };
        Self::from_state(gpu, state, schedule)
    }

    /// Continues the run `state` (e.g. read from a CPU trainer's checkpoint) on the GPU.
    pub fn from_state(
        gpu: &Gpu,
        state: TrainState,
        schedule: &Schedule<T>,
    ) -> Result<Self, CudaError> {
        let len = Model::<H, B>::PARAMS;
        let n = state.config.batch;
        let lens_ok = [&state.params, &state.adam_m, &state.adam_v]
            .into_iter()
            .chain(state.ema.as_ref())
            .all(|v| v.len() == len);
        if !lens_ok || state.ema.is_some() != state.config.ema.is_some() {
            return Err(CudaError::Unsupported(
                "training state does not match the model's shape".into(),
            ));
        }
        if n == 0 || i32::try_from(n * H.max(2)).is_err() {
            return Err(CudaError::Unsupported(format!("batch size {n}")));
        }
        let module = gpu.module(TRAIN, defines(H, B, T))?;
        let f = |name| Gpu::function(&module, name);
        let s = gpu.stream.clone();
        let driver = CudaError::driver;

        let coefs: Vec<f32> = (0..T)
            .flat_map(|t| {
                let (a, b) = schedule.forward_coefs(t);
                [a, b]
            })
            .collect();
        let fallback = Xoshiro128PlusPlus::from_seed([0; 16]).state();
        let coef_bytes: Vec<u8> = coefs.iter().flat_map(|c| c.to_le_bytes()).collect();
        let adam_bytes: Vec<u8> = (0..ADAM_ROWS as u64)
            .flat_map(|t| adam_coefs(state.config.lr, t + 1))
            .flat_map(f32::to_le_bytes)
            .collect();
        let consts = vec![
            s.clone_htod(&coef_bytes).map_err(driver("upload"))?,
            s.clone_htod(&fallback).map_err(driver("upload"))?,
            s.clone_htod(&adam_bytes).map_err(driver("upload"))?,
        ];
        let ema_init = state.ema.clone().unwrap_or_else(|| vec![0.0; 1]);
        let mut buffers = Buffers {
            params: s.clone_htod(&state.params).map_err(driver("upload"))?,
            grads: s.alloc_zeros(len).map_err(driver("allocation"))?,
            adam_m: s.clone_htod(&state.adam_m).map_err(driver("upload"))?,
            adam_v: s.clone_htod(&state.adam_v).map_err(driver("upload"))?,
            ema: s.clone_htod(&ema_init).map_err(driver("upload"))?,
            ctr: s
                .clone_htod(&[state.step, 0, 0])
                .map_err(driver("upload"))?,
            losses: s.alloc_zeros(LOSS_LOG).map_err(driver("allocation"))?,
            consts,
            scratch: Vec::new(),
        };

        // Activations: x, t/T, ε (2n, n, 2n); per layer [n × H]; out and d/d(out) (2n).
        let mut alloc = |count: usize| -> Result<u64, CudaError> {
            let buf: CudaSlice<f32> = s.alloc_zeros(count).map_err(driver("allocation"))?;
            let p = ptr(&buf, &s);
            buffers.scratch.push(buf);
            Ok(p)
        };
        let nh = n * H;
        let (x, tin, eps) = (alloc(2 * n)?, alloc(n)?, alloc(2 * n)?);
        let (zt, ht, temb, z0) = (alloc(nh)?, alloc(nh)?, alloc(nh)?, alloc(nh)?);
        let hs: Vec<u64> = (0..=B).map(|_| alloc(nh)).collect::<Result<_, _>>()?;
        let za: Vec<u64> = (0..B).map(|_| alloc(nh)).collect::<Result<_, _>>()?;
        let us: Vec<u64> = (0..B).map(|_| alloc(nh)).collect::<Result<_, _>>()?;
        let zc: Vec<u64> = (0..B).map(|_| alloc(nh)).collect::<Result<_, _>>()?;
        let (out, dout) = (alloc(2 * n)?, alloc(2 * n)?);
        let (dh, dc, da, dz0, dtemb, dzt) = (
            alloc(nh)?,
            alloc(nh)?,
            alloc(nh)?,
            alloc(nh)?,
            alloc(nh)?,
            alloc(nh)?,
        );

        let p = ptr(&buffers.params, &s);
        let g = ptr(&buffers.grads, &s);
        let ctr = ptr(&buffers.ctr, &s);
        let losses = ptr(&buffers.losses, &s);
        let coef_ptr = ptr(&buffers.consts[0], &s);
        let fallback_ptr = ptr(&buffers.consts[1], &s);
        let adam_ptr = ptr(&buffers.consts[2], &s);
        let at = |base: u64, offset: usize| Arg::Ptr(base + 4 * offset as u64);
        let layers = Layers::of(H, B);
        let rows = n as i32;
        let elems = |count: usize| (count.div_ceil(THREADS as usize) as u32, 1);
        let tiles = |m: usize, cols: usize| (cols.div_ceil(32) as u32, m.div_ceil(32) as u32);
        use Arg::{F32, I32, Ptr, U64};

        let fwd_fn = f("linear_fwd")?;
        let bwd_fn = f("linear_bwd_input")?;
        let wgrad_fn = f("linear_wgrad")?;
        let resid_fn = f("residual_grad")?;
        let fwd =
            |d: Dense, x: u64, mode: i32, out1: u64, out2: u64, aux1: u64, aux2: u64| Launch {
                func: fwd_fn.clone(),
                grid: tiles(n, d.o),
                block: THREADS,
                args: vec![
                    Ptr(x),
                    at(p, d.w),
                    at(p, d.b),
                    I32(rows),
                    I32(d.o as i32),
                    I32(d.i as i32),
                    I32(mode),
                    Ptr(out1),
                    Ptr(out2),
                    Ptr(aux1),
                    Ptr(aux2),
                ],
            };
        let bwd = |d: Dense, dy: u64, mode: i32, dx: u64, aux: u64| Launch {
            func: bwd_fn.clone(),
            grid: tiles(n, d.i),
            block: THREADS,
            args: vec![
                Ptr(dy),
                at(p, d.w),
                I32(rows),
                I32(d.o as i32),
                I32(d.i as i32),
                I32(mode),
                Ptr(dx),
                Ptr(aux),
            ],
        };
        let wgrad = |d: Dense, dy: u64, x: u64| Launch {
            func: wgrad_fn.clone(),
            grid: tiles(d.o, d.i + 1),
            block: THREADS,
            args: vec![
                Ptr(dy),
                Ptr(x),
                I32(rows),
                I32(d.o as i32),
                I32(d.i as i32),
                at(g, d.w),
                at(g, d.b),
                Ptr(ctr),
            ],
        };
        // Epilogue modes of train.cu.
        const FWD_PLAIN: i32 = 0;
        const FWD_GELU: i32 = 1;
        const FWD_RESIDUAL: i32 = 2;
        const FWD_INPUT: i32 = 3;
        const BWD_PLAIN: i32 = 0;
        const BWD_GELU: i32 = 1;
        const BWD_RESIDUAL: i32 = 2;
        const NONE: u64 = 0;

        let mut l = vec![Launch {
            func: f("make_batch")?,
            grid: elems(n),
            block: THREADS,
            args: vec![
                U64(crate::data::train_stream_key(state.config.seed)),
                Ptr(ctr),
                I32(rows),
                Ptr(coef_ptr),
                Ptr(fallback_ptr),
                Ptr(x),
                Ptr(tin),
                Ptr(eps),
            ],
        }];
        // Forward.
        l.push(fwd(layers.time_in, tin, FWD_GELU, zt, ht, NONE, NONE));
        l.push(fwd(layers.time_out, ht, FWD_PLAIN, temb, NONE, NONE, NONE));
        l.push(fwd(layers.input, x, FWD_INPUT, z0, hs[0], NONE, temb));
        for (b, [first, second]) in layers.blocks.iter().enumerate() {
            l.push(fwd(*first, hs[b], FWD_GELU, za[b], us[b], NONE, NONE));
            l.push(fwd(
                *second,
                us[b],
                FWD_RESIDUAL,
                zc[b],
                hs[b + 1],
                hs[b],
                temb,
            ));
        }
        l.push(fwd(layers.output, hs[B], FWD_PLAIN, out, NONE, NONE, NONE));
        l.push(Launch {
            func: f("mse_loss")?,
            grid: (1, 1),
            block: THREADS,
            args: vec![
                Ptr(out),
                Ptr(eps),
                I32(rows),
                Ptr(dout),
                Ptr(ctr),
                Ptr(losses),
            ],
        });
        // Backward, last layer first.
        l.push(wgrad(layers.output, dout, hs[B]));
        l.push(bwd(layers.output, dout, BWD_PLAIN, dh, NONE));
        for (b, [first, second]) in layers.blocks.iter().enumerate().rev() {
            l.push(Launch {
                func: resid_fn.clone(),
                grid: elems(nh),
                block: THREADS,
                args: vec![
                    Ptr(dh),
                    Ptr(zc[b]),
                    I32(nh as i32),
                    I32(i32::from(b + 1 == B)),
                    Ptr(dc),
                    Ptr(dtemb),
                ],
            });
            l.push(wgrad(*second, dc, us[b]));
            l.push(bwd(*second, dc, BWD_GELU, da, za[b]));
            l.push(wgrad(*first, da, hs[b]));
            l.push(bwd(*first, da, BWD_RESIDUAL, dh, dh));
        }
        l.push(Launch {
            func: f("input_grad")?,
            grid: elems(nh),
            block: THREADS,
            args: vec![
                Ptr(dh),
                Ptr(z0),
                I32(nh as i32),
                I32(i32::from(B == 0)),
                Ptr(dz0),
                Ptr(dtemb),
            ],
        });
        l.push(wgrad(layers.input, dz0, x));
        l.push(wgrad(layers.time_out, dtemb, ht));
        l.push(bwd(layers.time_out, dtemb, BWD_GELU, dzt, zt));
        l.push(wgrad(layers.time_in, dzt, tin));
        // Update.
        l.push(Launch {
            func: f("adam")?,
            grid: elems(len),
            block: THREADS,
            args: vec![
                Ptr(p),
                Ptr(g),
                Ptr(ptr(&buffers.adam_m, &s)),
                Ptr(ptr(&buffers.adam_v, &s)),
                Ptr(ptr(&buffers.ema, &s)),
                I32(len as i32),
                F32(state.config.ema.unwrap_or(-1.0)),
                Ptr(adam_ptr),
                I32(ADAM_ROWS as i32),
                Ptr(ctr),
            ],
        });
        l.push(Launch {
            func: f("advance")?,
            grid: (1, 1),
            block: 1,
            args: vec![Ptr(ctr)],
        });

        Ok(Self {
            stream: s,
            config: state.config,
            schedule: state.schedule,
            step: state.step,
            buffers,
            launches: l,
            use_graph: true,
            graph: None,
        })
    }

    /// Enqueues one step's launches on the stream.
    fn enqueue_step(&self) -> Result<(), CudaError> {
        for launch in &self.launches {
            let mut b = self.stream.launch_builder(&launch.func);
            for arg in &launch.args {
                match arg {
                    Arg::Ptr(v) | Arg::U64(v) => b.arg(v),
                    Arg::I32(v) => b.arg(v),
                    Arg::F32(v) => b.arg(v),
                };
            }
            // SAFETY: every pointer argument addresses a buffer owned by `self.buffers`
            // (alive as long as `self`), at an offset and for a length computed in
            // `from_state` from the same sizes the buffers were allocated with; the
            // argument list matches the kernel's signature in train.cu (same order and
            // types: 8-byte pointers/u64, 4-byte int/float).
            unsafe {
                b.launch(LaunchConfig {
                    grid_dim: (launch.grid.0, launch.grid.1, 1),
                    block_dim: (launch.block, 1, 1),
                    shared_mem_bytes: 0,
                })
            }
            .map_err(CudaError::driver("launch"))?;
        }
        Ok(())
    }

    /// Runs `steps` optimiser steps (graph replays), calling `on_loss(step, loss)` for each
    /// in order. Stops at a non-finite loss with [`TrainError::NonFinite`], the weights
    /// then being those before that step.
    pub fn run(&mut self, steps: u64, on_loss: &mut dyn FnMut(u64, f32)) -> Result<(), CudaError> {
        let driver = CudaError::driver;
        if self.use_graph && self.graph.is_none() {
            self.stream
                .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(driver("graph capture"))?;
            let enqueued = self.enqueue_step();
            let graph = self
                .stream
                .end_capture(
                    sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH,
                )
                .map_err(driver("graph capture"));
            enqueued?;
            self.graph = graph?;
        }
        let mut left = steps;
        while left > 0 {
            let chunk = left.min(LOSS_LOG as u64);
            for _ in 0..chunk {
                match &self.graph {
                    Some(g) => g.launch().map_err(driver("graph launch"))?,
                    None => self.enqueue_step()?,
                }
            }
            let ctr = self
                .stream
                .clone_dtoh(&self.buffers.ctr)
                .map_err(driver("download"))?;
            let losses = self
                .stream
                .clone_dtoh(&self.buffers.losses)
                .map_err(driver("download"))?;
            let logged = ctr[1] as usize;
            for (i, &loss) in losses[..logged].iter().enumerate() {
                on_loss(self.step + i as u64, loss);
            }
            self.step = ctr[0];
            let (step, loss) = (self.step, losses[logged]);
            match ctr[2] {
                0 => {}
                1 => return Err(TrainError::NonFinite { step, loss }.into()),
                _ => return Err(TrainError::NonFiniteGradient { step, loss }.into()),
            }
            self.stream
                .memcpy_htod(&[self.step, 0, 0], &mut self.buffers.ctr)
                .map_err(driver("upload"))?;
            left -= chunk;
        }
        Ok(())
    }

    /// Chooses between replaying a captured CUDA graph per step (the default) and launching
    /// each kernel from the CPU; both compute the same thing, the benchmark compares them.
    pub fn use_graph(&mut self, on: bool) {
        self.use_graph = on;
        if !on {
            self.graph = None;
        }
    }

    /// One optimiser step; returns that batch's loss (before the update).
    pub fn step(&mut self) -> Result<f32, CudaError> {
        let mut last = f32::NAN;
        self.run(1, &mut |_, loss| last = loss)?;
        Ok(last)
    }

    /// Steps done so far.
    pub fn step_index(&self) -> u64 {
        self.step
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The noise schedule the run trains for.
    pub fn schedule_kind(&self) -> ScheduleKind {
        self.schedule
    }

    /// Writes the whole training state to `path` in the CPU trainer's checkpoint format,
    /// atomically: either trainer resumes from it.
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), CudaError> {
        let state = self.state()?;
        let state = checkpoint::State {
            config: state.config,
            schedule: state.schedule,
            step: state.step,
            params: state.params,
            adam: Adam {
                m: state.adam_m,
                v: state.adam_v,
            },
            ema: state.ema,
        };
        Ok(train::write_checkpoint(path, &state, (H, B, T))?)
    }

    /// Continues on the GPU the run a checkpoint file (from either trainer) holds.
    pub fn resume(gpu: &Gpu, path: &Path) -> Result<Self, CudaError> {
        let state = train::read_checkpoint(path, (H, B, T))?;
        let schedule = Schedule::<T>::new(state.schedule).ok_or_else(|| {
            CudaError::Unsupported("the checkpoint's noise schedule is invalid".into())
        })?;
        let state = TrainState {
            config: state.config,
            schedule: state.schedule,
            step: state.step,
            params: state.params,
            adam_m: state.adam.m,
            adam_v: state.adam.v,
            ema: state.ema,
        };
        Self::from_state(gpu, state, &schedule)
    }

    /// The whole training state, for the CPU trainer's checkpoint.
    pub fn state(&self) -> Result<TrainState, CudaError> {
        let get = |b: &CudaSlice<f32>| {
            self.stream
                .clone_dtoh(b)
                .map_err(CudaError::driver("download"))
        };
        Ok(TrainState {
            config: self.config.clone(),
            schedule: self.schedule,
            step: self.step,
            params: get(&self.buffers.params)?,
            adam_m: get(&self.buffers.adam_m)?,
            adam_v: get(&self.buffers.adam_v)?,
            ema: match self.config.ema {
                Some(_) => Some(get(&self.buffers.ema)?),
                None => None,
            },
        })
    }

    /// The raw (non-averaged) weights.
    pub fn weights(&self) -> Result<Box<Model<H, B>>, CudaError> {
        let p = self
            .stream
            .clone_dtoh(&self.buffers.params)
            .map_err(CudaError::driver("download"))?;
        Ok(model_from(&p))
    }

    /// The model to save: the EMA weights when `ema` is set, the raw weights otherwise.
    pub fn model(&self) -> Result<Box<Model<H, B>>, CudaError> {
        let src = match self.config.ema {
            Some(_) => &self.buffers.ema,
            None => &self.buffers.params,
        };
        let p = self
            .stream
            .clone_dtoh(src)
            .map_err(CudaError::driver("download"))?;
        Ok(model_from(&p))
    }

    /// The gradient of the last step's loss, in file order (for checks against the CPU).
    pub fn gradients(&self) -> Result<Vec<f32>, CudaError> {
        self.stream
            .clone_dtoh(&self.buffers.grads)
            .map_err(CudaError::driver("download"))
    }
}

/// The raw device address of `buf`. Event tracking is off (one stream orders everything),
/// so the returned guard has nothing to record.
fn ptr<T>(buf: &CudaSlice<T>, stream: &CudaStream) -> u64 {
    buf.device_ptr(stream).0
}

#[cfg(test)]
mod tests {
    use rand_core::Rng;
    use tinyddpm_core::noise::{box_muller, stream_seed};

    use super::*;
    use crate::data::{Examples, forward_coefs};

    /// `make_batch` derives each row from stream (train_stream_key(seed) + step, row):
    /// the same stream, t and noise as the CPU trainer's data (`Examples::fill`).
    #[test]
    fn device_batches_use_the_cpu_trainers_streams() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
        let (seed, step) = (42, 7);
        let mut ex = Examples::with_len(64);
        ex.fill(&forward_coefs(&schedule), seed, step, 0);
        let base = crate::data::train_stream_key(seed).wrapping_add(step);
        for i in 0..64 {
            let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, i as u64));
            rng.next_u32();
            let t = (u64::from(rng.next_u32()) * 1000) >> 32;
            let z = box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8);
            assert_eq!(ex.t_input[i], t as f32 / 1000.0, "row {i}");
            assert_eq!(ex.noise[2 * i..2 * i + 2], z, "row {i}");
        }
    }

    #[test]
    fn adam_rows_reach_their_limit_by_the_last_row() {
        assert_eq!(adam_coefs(1e-3, ADAM_ROWS as u64), [-1e-3, 1.0]);
        assert_ne!(adam_coefs(1e-3, 10_000)[1], 1.0);
    }
}
