//! GPU training: the CPU trainer's run (same initial weights, same per-example data
//! streams, MSE, Adam with PyTorch's defaults, optional EMA) with every buffer on the device
//! (kernels in `kernels/train.cu`), from and to the CPU trainer's [`State`] and checkpoints.
//!
//! One optimiser step is a fixed list of kernel launches, built as data by [`step_plan`] in
//! the order of `train/net.rs` (each launch names the CPU function it mirrors). Its
//! step-dependent inputs (the step number for the data streams and Adam's bias correction)
//! are read from device memory, so the list is captured once into a CUDA graph and replayed,
//! which removes per-launch CPU overhead; losses are logged on the device and read back every
//! [`LOSS_LOG`] steps. A non-finite loss sets a device flag that turns every later update
//! into a no-op, so the weights stay those from before the failing step.

use tinyddpm_core::{Schedule, ScheduleKind};

use super::launch::{Arg, Buf, Device, Launch, Plan, Session};
use super::{CudaError, TRAIN, zero_seed_state};
use crate::data::TrainingData;
use crate::flat::FlatModel;
use crate::train::layout::{Dense, Layout};
use crate::train::{self, State, TrainConfig, TrainError, Training, adam};

/// Losses kept on the device between reads (steps per graph-replay chunk).
const LOSS_LOG: usize = 256;
/// Threads per block of every kernel (`mse_loss` reduces over exactly this many).
const THREADS: u32 = 256;
/// Rows of the Adam table (update numbers 1 …). Later updates reuse the last row: from
/// t = 20,000 on, β1^t and β2^t are below 2^-28 and both corrections round to exactly
/// `(−lr, 1.0)` in f32, as the CPU trainer's f64 arithmetic then also gives.
const ADAM_ROWS: usize = 20_000;
/// The device counters (`ctr` in train.cu): steps done, losses logged since the last read,
/// and the divergence flag (1: a loss, 2: a gradient was not finite).
const COUNTERS: usize = 3;

/// NVRTC `-D` options of `train.cu` for a model of `layout`'s shape (H, B, D) trained for a
/// `timesteps`-step schedule: each shape is a module of its own.
pub(super) fn defines(
    layout: &tinyddpm_core::Layout,
    timesteps: usize,
) -> Vec<(&'static str, usize)> {
    vec![
        ("HID", layout.hidden),
        ("NBLK", layout.blocks),
        ("DIM", layout.dim),
        ("NT", timesteps),
    ]
}

/// The device buffers a run's state lives in, and the step's log.
#[derive(Clone, Copy, Debug)]
pub struct StateBuffers {
    /// The weights, in file order.
    pub params: Buf,
    /// The last step's gradient, in file order.
    pub grads: Buf,
    /// Adam's first moment.
    pub adam_m: Buf,
    /// Adam's second moment.
    pub adam_v: Buf,
    /// The EMA weights (one unused float without an EMA).
    pub ema: Buf,
    /// The step counters (steps done, losses logged, divergence), u64 each.
    pub ctr: Buf,
    /// The losses of the steps since the counters were last reset, 256 floats.
    pub losses: Buf,
}

/// One training step as a launch list ([`step_plan`]).
#[derive(Clone, Debug)]
pub struct StepPlan {
    /// The buffers and launches.
    pub plan: Plan,
    /// Where the run's state lives among the buffers.
    pub buffers: StateBuffers,
    /// The model's shape (H, B, D).
    pub layout: tinyddpm_core::Layout,
}

/// A step's activations and their gradients on the device, `[n × H]` floats unless noted,
/// named as in `train/net.rs` (`Chunk`). Where the CPU keeps GELU's derivative (`*_der`),
/// the device keeps the pre-activation (`*_pre`) and differentiates in the backward kernels.
struct Activations {
    /// The batch (`data/mod.rs`, `Examples`): x_t `[n × D]`.
    x_t: Buf,
    /// t / T, `[n]`.
    t_input: Buf,
    /// ε, `[n × D]`.
    noise: Buf,
    /// time_in(t), before GELU.
    time_pre: Buf,
    /// GELU(time_in(t)).
    time_act: Buf,
    /// The time embedding, time_out(time_act).
    temb: Buf,
    /// input(x_t), before GELU.
    input_pre: Buf,
    /// h_0 … h_B.
    h: Vec<Buf>,
    /// first_k(h_k) before GELU, per block.
    u_pre: Vec<Buf>,
    /// GELU(first_k(h_k)), per block.
    u: Vec<Buf>,
    /// second_k(u_k) before GELU, per block.
    v_pre: Vec<Buf>,
    /// ε̂, `[n × D]`.
    out: Buf,
    /// ∂loss/∂ε̂, `[n × D]` (net.rs overwrites `out` with it).
    d_out: Buf,
    /// ∂loss/∂h.
    dh: Buf,
    /// ∂loss/∂temb.
    dtemb: Buf,
    /// ∂loss/∂(second_k(u_k)), before GELU.
    dv: Buf,
    /// ∂loss/∂(first_k(h_k)), before GELU.
    du: Buf,
    /// ∂loss/∂(input(x_t)), before GELU (net.rs: `dh ⊙ input_der`, in place).
    d_input: Buf,
    /// ∂loss/∂(time_in(t)), before GELU (net.rs: `dv ⊙ time_der`, reusing `dv`).
    d_time: Buf,
}

impl Activations {
    fn new(plan: &mut Plan, n: usize, lay: &Layout) -> Self {
        let (nh, nd, blocks) = (n * lay.hidden, n * lay.dim(), lay.blocks.len());
        let mut layers = |count: usize| (0..count).map(|_| plan.zeros_f32(nh)).collect();
        let (h, u_pre, u, v_pre) = (
            layers(blocks + 1),
            layers(blocks),
            layers(blocks),
            layers(blocks),
        );
        let [time_pre, time_act, temb, input_pre] = std::array::from_fn(|_| plan.zeros_f32(nh));
        let [dh, dtemb, dv, du, d_input, d_time] = std::array::from_fn(|_| plan.zeros_f32(nh));
        Self {
            x_t: plan.zeros_f32(nd),
            t_input: plan.zeros_f32(n),
            noise: plan.zeros_f32(nd),
            time_pre,
            time_act,
            temb,
            input_pre,
            h,
            u_pre,
            u,
            v_pre,
            out: plan.zeros_f32(nd),
            d_out: plan.zeros_f32(nd),
            dh,
            dtemb,
            dv,
            du,
            d_input,
            d_time,
        }
    }
}

/// The epilogue of a layer's forward product (`linear_fwd`'s modes): what is made of
/// `y = x·Wᵀ + b` besides storing it.
#[derive(Clone, Copy)]
enum Forward {
    /// Nothing.
    Plain,
    /// `act = GELU(y)`.
    Gelu { act: Buf },
    /// The input layer: `h0 = GELU(y) + temb`.
    Input { h0: Buf, temb: Buf },
    /// A block's second layer: `next = (GELU(y) + h + temb)/√2`.
    Residual { next: Buf, h: Buf, temb: Buf },
}

/// The epilogue of a layer's input gradient (`linear_bwd_input`'s modes), `v = dy·W`.
#[derive(Clone, Copy)]
enum Backward {
    /// `dx = v`.
    Plain,
    /// `dx = v ⊙ GELU'(pre)`: through the GELU in front of the layer.
    Gelu { pre: Buf },
    /// `dx = v + dx/√2`, in place: a block's first layer adds to the skip path's gradient.
    Residual,
}

/// Builds one step's launches: the layer kernels over the batch of `rows`, with the
/// parameters and gradients at the layout's offsets.
struct Launches {
    rows: usize,
    params: Buf,
    grads: Buf,
    ctr: Buf,
    list: Vec<Launch>,
}

impl Launches {
    /// Grid of the 32 × 32 output tiles of an `m × cols` product.
    fn tiles(m: usize, cols: usize) -> [u32; 3] {
        [cols.div_ceil(32) as u32, m.div_ceil(32) as u32, 1]
    }

    fn push(&mut self, kernel: &'static str, grid: [u32; 3], args: Vec<Arg>) {
        self.list.push(Launch {
            kernel,
            grid,
            block: [THREADS, 1, 1],
            shared_bytes: 0,
            args,
        });
    }

    /// An elementwise kernel over `count` elements.
    fn elementwise(&mut self, kernel: &'static str, count: usize, args: Vec<Arg>) {
        let grid = [count.div_ceil(THREADS as usize) as u32, 1, 1];
        self.push(kernel, grid, args);
    }

    /// `y = x·Wᵀ + b` and its epilogue (net.rs `linear`, and what follows it).
    fn linear(&mut self, d: Dense, x: Buf, y: Buf, epilogue: Forward) {
        let (mode, out2, aux1, aux2) = match epilogue {
            Forward::Plain => (0, Arg::Null, Arg::Null, Arg::Null),
            Forward::Gelu { act } => (1, act.ptr(), Arg::Null, Arg::Null),
            Forward::Residual { next, h, temb } => (2, next.ptr(), h.ptr(), temb.ptr()),
            Forward::Input { h0, temb } => (3, h0.ptr(), Arg::Null, temb.ptr()),
        };
        let args = vec![
            x.ptr(),
            self.params.f32_at(d.w),
            self.params.f32_at(d.b),
            Arg::I32(self.rows as i32),
            Arg::I32(d.o as i32),
            Arg::I32(d.i as i32),
            Arg::I32(mode),
            y.ptr(),
            out2,
            aux1,
            aux2,
        ];
        self.push("linear_fwd", Self::tiles(self.rows, d.o), args);
    }

    /// The layer's weight and bias gradients from its output gradient `dy` and input `x`
    /// (net.rs `param_grads`); a non-finite one flags the step.
    fn param_grads(&mut self, d: Dense, x: Buf, dy: Buf) {
        let args = vec![
            dy.ptr(),
            x.ptr(),
            Arg::I32(self.rows as i32),
            Arg::I32(d.o as i32),
            Arg::I32(d.i as i32),
            self.grads.f32_at(d.w),
            self.grads.f32_at(d.b),
            self.ctr.ptr(),
        ];
        self.push("linear_wgrad", Self::tiles(d.o, d.i + 1), args);
    }

    /// `dx = dy·W` and its epilogue (net.rs `input_grad`, and what follows it).
    fn input_grad(&mut self, d: Dense, dy: Buf, dx: Buf, epilogue: Backward) {
        let (mode, aux) = match epilogue {
            Backward::Plain => (0, Arg::Null),
            Backward::Gelu { pre } => (1, pre.ptr()),
            Backward::Residual => (2, dx.ptr()),
        };
        let args = vec![
            dy.ptr(),
            self.params.f32_at(d.w),
            Arg::I32(self.rows as i32),
            Arg::I32(d.o as i32),
            Arg::I32(d.i as i32),
            Arg::I32(mode),
            dx.ptr(),
            aux,
        ];
        self.push("linear_bwd_input", Self::tiles(self.rows, d.i), args);
    }

    /// net.rs `forward_impl`, from the batch to ε̂.
    fn forward(&mut self, lay: &Layout, a: &Activations) {
        // linear(time_in), GELU; linear(time_out).
        let act = a.time_act;
        self.linear(lay.time_in, a.t_input, a.time_pre, Forward::Gelu { act });
        self.linear(lay.time_out, a.time_act, a.temb, Forward::Plain);
        // linear(input), GELU, + temb.
        let (h0, temb) = (a.h[0], a.temb);
        self.linear(lay.input, a.x_t, a.input_pre, Forward::Input { h0, temb });
        for (k, [first, second]) in lay.blocks.iter().enumerate() {
            // linear(first_k), GELU: u_k.
            let act = a.u[k];
            self.linear(*first, a.h[k], a.u_pre[k], Forward::Gelu { act });
            // linear(second_k), GELU, then (v + h_k + temb)/√2: h_{k+1}.
            let (next, h) = (a.h[k + 1], a.h[k]);
            let residual = Forward::Residual { next, h, temb };
            self.linear(*second, a.u[k], a.v_pre[k], residual);
        }
        self.linear(lay.output, a.h[lay.blocks.len()], a.out, Forward::Plain);
    }

    /// net.rs `forward_backward_impl` after the loss: every layer's gradients, last layer
    /// first, from ∂loss/∂ε̂.
    fn backward(&mut self, lay: &Layout, a: &Activations) {
        let nh = self.rows * lay.hidden;
        // param_grads(output); input_grad(output) into dh.
        self.param_grads(lay.output, a.h[lay.blocks.len()], a.d_out);
        self.input_grad(lay.output, a.d_out, a.dh, Backward::Plain);
        for (k, [first, second]) in lay.blocks.iter().enumerate().rev() {
            // dh /= √2; dtemb += dh (written by the last block); dv = dh ⊙ v_der.
            let last_block = Arg::I32(i32::from(k + 1 == lay.blocks.len()));
            let residual_args = vec![
                a.dh.ptr(),
                a.v_pre[k].ptr(),
                Arg::I32(nh as i32),
                last_block,
                a.dv.ptr(),
                a.dtemb.ptr(),
            ];
            self.elementwise("residual_grad", nh, residual_args);
            // param_grads(second_k); input_grad(second_k) ⊙ u_der: du.
            self.param_grads(*second, a.u[k], a.dv);
            let pre = a.u_pre[k];
            self.input_grad(*second, a.dv, a.du, Backward::Gelu { pre });
            // param_grads(first_k); input_grad(first_k) with beta = 1: dh = du·W + dh/√2.
            self.param_grads(*first, a.h[k], a.du);
            self.input_grad(*first, a.du, a.dh, Backward::Residual);
        }
        // dtemb += dh (written when there are no blocks); dh ⊙ input_der.
        let input_args = vec![
            a.dh.ptr(),
            a.input_pre.ptr(),
            Arg::I32(nh as i32),
            Arg::I32(i32::from(lay.blocks.is_empty())),
            a.d_input.ptr(),
            a.dtemb.ptr(),
        ];
        self.elementwise("input_grad", nh, input_args);
        // param_grads(input); param_grads(time_out); input_grad(time_out) ⊙ time_der;
        // param_grads(time_in).
        self.param_grads(lay.input, a.x_t, a.d_input);
        self.param_grads(lay.time_out, a.time_act, a.dtemb);
        let pre = a.time_pre;
        self.input_grad(lay.time_out, a.dtemb, a.d_time, Backward::Gelu { pre });
        self.param_grads(lay.time_in, a.t_input, a.d_time);
    }
}

/// One training step of the run `state` of a model of `hidden` units and `blocks` blocks
/// (D its data's) on a `T`-step schedule, as data: the buffers (the state's contents, the
/// constants, the activations) and the kernel launches in the order of `train/net.rs`, each
/// commented with the CPU function it mirrors. [`GpuTrainer`] runs it on its device, the GPU
/// or the test suite's CPU emulation of the kernels. The state is checked as the CPU
/// trainer checks it, and its sizes against the kernels' `int` indices.
pub fn step_plan<const T: usize>(
    state: &State,
    hidden: usize,
    blocks: usize,
) -> Result<StepPlan, CudaError> {
    let (schedule, lay) = state.check::<T>(hidden, blocks)?;
    let n = state.config.batch;
    let len = state.params.len();
    // The kernels index a batch's activations ([n × H] and [n × D]) and the parameters with
    // an `int`.
    if i32::try_from(n * hidden.max(lay.dim())).is_err() {
        return Err(CudaError::Unsupported(format!(
            "a batch of {n} examples of H={hidden}"
        )));
    }
    if i32::try_from(len).is_err() {
        return Err(CudaError::Unsupported(format!(
            "a model of {len} parameters (H={hidden} B={blocks})"
        )));
    }
    let mut plan = Plan::new(TRAIN, defines(&lay.core, T));
    let coefs: Vec<f32> = (0..T)
        .flat_map(|t| <[f32; 2]>::from(schedule.forward_coefs(t)))
        .collect();
    let adam_table: Vec<f32> = (1..=ADAM_ROWS as u64)
        .flat_map(|t| adam::step_scalars(state.config.lr, t))
        .collect();
    let counters: [u64; COUNTERS] = [state.step, 0, 0];
    let bufs = StateBuffers {
        params: plan.f32s(&state.params),
        grads: plan.zeros_f32(len),
        adam_m: plan.f32s(&state.adam.m),
        adam_v: plan.f32s(&state.adam.v),
        ema: plan.f32s(state.ema.as_deref().unwrap_or(&[0.0])),
        ctr: plan.buffer(counters.iter().flat_map(|c| c.to_le_bytes()).collect()),
        losses: plan.zeros_f32(LOSS_LOG),
    };
    let coefs = plan.f32s(&coefs);
    let zero_seed = plan.buffer(zero_seed_state());
    let adam_table = plan.f32s(&adam_table);
    let a = Activations::new(&mut plan, n, &lay);
    let rows = Arg::I32(n as i32);
    let mut l = Launches {
        rows: n,
        params: bufs.params,
        grads: bufs.grads,
        ctr: bufs.ctr,
        list: Vec::new(),
    };

    // data/mod.rs `Examples::fill`: the step's batch of the run's data from its streams.
    // A point set's rows (of D values) are uploaded once, normalized (a built-in set reads
    // none: one unused float).
    let key = crate::data::train_stream_key(state.config.seed);
    let (points, npoints) = match &state.config.data {
        TrainingData::Points(p) => (plan.f32s(p.values()), p.len()),
        TrainingData::Set(_) => (plan.f32s(&[0.0]), 0),
    };
    let batch_args = vec![
        Arg::U64(key),
        Arg::I32(i32::from(state.config.data.tag())),
        points.ptr(),
        // At most `MAX_ROWS` (10⁷) rows: an i32.
        Arg::I32(npoints as i32),
        bufs.ctr.ptr(),
        rows,
        coefs.ptr(),
        zero_seed.ptr(),
        a.x_t.ptr(),
        a.t_input.ptr(),
        a.noise.ptr(),
    ];
    l.elementwise("make_batch", n, batch_args);

    l.forward(&lay, &a);

    // net.rs `forward_backward_impl`: the loss (logged) and ∂loss/∂ε̂ = 2(ε̂ − ε)/count.
    let loss_args = vec![
        a.out.ptr(),
        a.noise.ptr(),
        rows,
        a.d_out.ptr(),
        bufs.ctr.ptr(),
        bufs.losses.ptr(),
    ];
    l.push("mse_loss", [1, 1, 1], loss_args);
    l.backward(&lay, &a);

    // adam.rs `Adam::update` and `ema_update` (skipped once the step diverged).
    let adam_args = vec![
        bufs.params.ptr(),
        bufs.grads.ptr(),
        bufs.adam_m.ptr(),
        bufs.adam_v.ptr(),
        bufs.ema.ptr(),
        Arg::I32(len as i32),
        Arg::F32(state.config.ema.unwrap_or(-1.0)),
        adam_table.ptr(),
        Arg::I32(ADAM_ROWS as i32),
        bufs.ctr.ptr(),
    ];
    l.elementwise("adam", len, adam_args);
    // `Trainer::step`'s `step += 1`, and the loss log's.
    l.list.push(Launch {
        kernel: "advance",
        grid: [1, 1, 1],
        block: [1, 1, 1],
        shared_bytes: 0,
        args: vec![bufs.ctr.ptr()],
    });

    plan.launches = l.list;
    Ok(StepPlan {
        plan,
        buffers: bufs,
        layout: lay.core,
    })
}

/// Adam training of a model of any H and B on batches of `config.data` (D its points') on
/// the GPU (or any [`Device`]), schedule of `T` steps; see the module docs.
pub struct GpuTrainer<const T: usize> {
    config: TrainConfig,
    schedule: ScheduleKind,
    /// The model's shape (H, B, D), for the model file and checkpoints.
    layout: tinyddpm_core::Layout,
    step: u64,
    buffers: StateBuffers,
    /// The step's launches, loaded.
    session: Box<dyn Session>,
    /// How many launches one step is.
    launches: usize,
}

impl<const T: usize> GpuTrainer<T> {
    /// A fresh run of a model of `hidden` units and `blocks` blocks with the CPU trainer's
    /// initial weights for `config.seed`.
    pub fn new(
        device: &dyn Device,
        config: TrainConfig,
        hidden: usize,
        blocks: usize,
        schedule: &Schedule<T>,
    ) -> Result<Self, CudaError> {
        let state = State::new(config, hidden, blocks, schedule.kind)?;
        Self::from_state(device, state, hidden, blocks)
    }

    /// Continues on `device` the run a checkpoint file (from either trainer) holds.
    pub fn resume(device: &dyn Device, path: &std::path::Path) -> Result<Self, CudaError> {
        Self::resume_from(device, &train::CheckpointFile::read(path)?)
    }

    /// [`GpuTrainer::resume`] from a checkpoint already read, of the model shape it holds.
    pub fn resume_from(
        device: &dyn Device,
        file: &train::CheckpointFile,
    ) -> Result<Self, CudaError> {
        Self::resume_as(device, file, file.shape()?)
    }

    /// [`GpuTrainer::resume_from`] for a run asked to be of H and B `shape`: a checkpoint of
    /// another shape is an error naming both.
    pub fn resume_as(
        device: &dyn Device,
        file: &train::CheckpointFile,
        (hidden, blocks): (usize, usize),
    ) -> Result<Self, CudaError> {
        Self::from_state(device, file.state((hidden, blocks, T))?, hidden, blocks)
    }

    /// Continues the run `state` (e.g. a CPU trainer's) of a model of `hidden` units and
    /// `blocks` blocks on `device`. Steps replay one captured CUDA graph where the device has
    /// them.
    pub fn from_state(
        device: &dyn Device,
        state: State,
        hidden: usize,
        blocks: usize,
    ) -> Result<Self, CudaError> {
        if state.config.classes.is_some() {
            let why = "the GPU trainer is not conditioned on classes yet: train on the CPU";
            return Err(TrainError::Config(why.into()).into());
        }
        let StepPlan {
            plan,
            buffers,
            layout,
        } = step_plan::<T>(&state, hidden, blocks)?;
        let mut session = device.load(&plan)?;
        session.use_graph(true);
        Ok(Self {
            config: state.config,
            schedule: state.schedule,
            layout,
            step: state.step,
            buffers,
            session,
            launches: plan.launches.len(),
        })
    }

    /// Chooses between replaying a captured CUDA graph per step (the default) and launching
    /// each kernel from the CPU; both compute the same thing, the benchmark compares them.
    pub fn use_graph(&mut self, on: bool) {
        self.session.use_graph(on);
    }

    /// One optimiser step; returns that batch's loss (before the update).
    pub fn step(&mut self) -> Result<f32, CudaError> {
        let mut last = f32::NAN;
        self.run(1, &mut |_, loss| last = loss)?;
        Ok(last)
    }

    /// The gradient of the last step's loss, in file order (for checks against the CPU).
    pub fn gradients(&self) -> Result<Vec<f32>, CudaError> {
        self.session.read_f32(self.buffers.grads)
    }
}

impl<const T: usize> Training for GpuTrainer<T> {
    type Error = CudaError;

    const STEPS_PER_CALL: u64 = LOSS_LOG as u64;

    /// Graph replays, read back every [`Training::STEPS_PER_CALL`] steps. Stops at a
    /// non-finite loss with [`TrainError::NonFinite`], the weights then being those before
    /// that step.
    fn run(&mut self, steps: u64, on_loss: &mut dyn FnMut(u64, f32)) -> Result<(), CudaError> {
        let mut left = steps;
        while left > 0 {
            let chunk = left.min(LOSS_LOG as u64);
            self.session.run(0..self.launches, chunk)?;
            let ctr: Vec<u64> = self
                .session
                .read(self.buffers.ctr)?
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            let losses = self.session.read_f32(self.buffers.losses)?;
            let logged = ctr[1] as usize;
            for (i, &loss) in losses[..logged].iter().enumerate() {
                on_loss(self.step + i as u64, loss);
            }
            self.step = ctr[0];
            if ctr[2] != 0 {
                // The failing step's loss follows the logged ones (a full log has no failure).
                let (step, loss) = (self.step, losses.get(logged).copied().unwrap_or(f32::NAN));
                return Err(match ctr[2] {
                    1 => TrainError::NonFinite { step, loss },
                    _ => TrainError::NonFiniteGradient { step, loss },
                }
                .into());
            }
            let reset: Vec<u8> = [self.step, 0, 0]
                .iter()
                .flat_map(|c| c.to_le_bytes())
                .collect();
            self.session.write(self.buffers.ctr, &reset)?;
            left -= chunk;
        }
        Ok(())
    }

    fn step_index(&self) -> u64 {
        self.step
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn set_steps(&mut self, steps: u64) {
        self.config.steps = steps;
    }

    fn schedule_kind(&self) -> ScheduleKind {
        self.schedule
    }

    fn layout(&self) -> tinyddpm_core::Layout {
        self.layout
    }

    fn state(&self) -> Result<State, CudaError> {
        let read = |buf| self.session.read_f32(buf);
        Ok(State {
            config: self.config.clone(),
            schedule: self.schedule,
            step: self.step,
            params: read(self.buffers.params)?,
            adam: train::Adam {
                m: read(self.buffers.adam_m)?,
                v: read(self.buffers.adam_v)?,
            },
            ema: match self.config.ema {
                Some(_) => Some(read(self.buffers.ema)?),
                None => None,
            },
        })
    }

    fn model(&self) -> Result<FlatModel, CudaError> {
        let src = match self.config.ema {
            Some(_) => self.buffers.ema,
            None => self.buffers.params,
        };
        let params = self.session.read_f32(src)?;
        Ok(FlatModel::new(self.layout(), params).expect("the weight buffer is the model's"))
    }
}

#[cfg(test)]
mod tests {
    use rand_core::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro128PlusPlus;
    use tinyddpm_core::noise::{box_muller, stream_seed};

    use super::super::launch::tests::assert_launches_match_signatures;
    use super::*;
    use crate::data::{DataSet, Examples, Normalize, PointSet, forward_coefs};

    /// 100 points of 3 columns.
    fn points3() -> TrainingData {
        let values = (0..3 * 100).map(|i| (i * i % 31) as f32).collect();
        let points = PointSet::new("p3", 3, values, Normalize::Standard).expect("points");
        TrainingData::Points(points.into())
    }

    /// `make_batch` derives each row from stream (train_stream_key(seed) + step, row):
    /// the same stream, t and noise as the CPU trainer's data (`Examples::fill`): after the
    /// point's draws (one for the Swiss roll's and a point set's row), t, then ⌈D/2⌉ pairs,
    /// the last one's second value dropped for an odd D.
    #[test]
    fn device_batches_use_the_cpu_trainers_streams() {
        let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
        let (seed, step) = (42, 7);
        let base = crate::data::train_stream_key(seed).wrapping_add(step);
        for data in [DataSet::SwissRoll.into(), points3()] {
            let dim = data.dim();
            let mut ex = Examples::new(64, dim);
            ex.fill(&data, &forward_coefs(&schedule), seed, step, 0);
            for i in 0..64 {
                let mut rng = Xoshiro128PlusPlus::from_seed(stream_seed(base, i as u64));
                rng.next_u32();
                let t = (u64::from(rng.next_u32()) * 1000) >> 32;
                let z: Vec<f32> = (0..dim.div_ceil(2))
                    .flat_map(|_| box_muller(rng.next_u32() >> 8, rng.next_u32() >> 8))
                    .collect();
                assert_eq!(ex.t_input[i], t as f32 / 1000.0, "{data} row {i}");
                assert_eq!(ex.noise[dim * i..dim * (i + 1)], z[..dim], "{data} row {i}");
            }
        }
    }

    /// Every launch of the step names a kernel of train.cu and passes its parameters in its
    /// order and types, with every pointer inside its buffer, for any B and D; the batch's
    /// buffers are [n × D].
    #[test]
    fn the_step_plan_matches_the_kernels_signatures() {
        for (blocks, data) in [
            (0, TrainingData::default()),
            (1, TrainingData::default()),
            (3, TrainingData::default()),
            (2, points3()),
        ] {
            let dim = data.dim();
            let config = TrainConfig {
                batch: 100,
                ema: Some(0.9),
                data,
                ..TrainConfig::default()
            };
            let state = State::new(config, 16, blocks, ScheduleKind::SEED).expect("state");
            let StepPlan { plan, layout, .. } =
                step_plan::<1000>(&state, 16, blocks).expect("plan");
            // batch, 3 forward products, 2 per block, output, loss, 2 backward launches
            // for the output, 5 per block, input grad, 5 for the first three layers, Adam,
            // advance
            assert_eq!(
                plan.launches.len(),
                1 + 4 + 2 * blocks + 1 + 2 + 5 * blocks + 5 + 2
            );
            assert_eq!(
                layout,
                tinyddpm_core::Layout::with_dim(16, blocks, dim).unwrap()
            );
            assert_eq!(plan.defines, defines(&layout, 1000));
            assert_launches_match_signatures(&plan, 9);
            // make_batch's x_t and ε, and the loss's ε̂, ε and ∂loss/∂ε̂: 100 × D floats each.
            for (kernel, args) in [("make_batch", &[8, 10][..]), ("mse_loss", &[0, 1, 3])] {
                let launch = plan.launches.iter().find(|l| l.kernel == kernel).unwrap();
                for &k in args {
                    let Arg::Ptr { buf, .. } = launch.args[k] else {
                        panic!("{kernel}: argument {k} is a pointer")
                    };
                    assert_eq!(plan.buffers[buf.index()].len(), 4 * 100 * dim, "{kernel}");
                }
            }
        }
    }

    /// A state of another shape than the one asked for is refused, as the CPU trainer
    /// refuses it.
    #[test]
    fn the_step_plan_checks_the_state() {
        let state = State::new(TrainConfig::default(), 16, 1, ScheduleKind::SEED).expect("state");
        let e = step_plan::<1000>(&state, 16, 2).expect_err("refused");
        assert!(
            e.to_string().contains("does not match the model's shape"),
            "{e}"
        );
    }

    #[test]
    fn adam_rows_reach_their_limit_by_the_last_row() {
        assert_eq!(adam::step_scalars(1e-3, ADAM_ROWS as u64), [-1e-3, 1.0]);
        assert_ne!(adam::step_scalars(1e-3, 10_000)[1], 1.0);
    }
}
