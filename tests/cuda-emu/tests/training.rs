//! The training kernels, run on the CPU through the GPU trainer's own launch list, against
//! the CPU trainer (`tinyddpm::train`): each launch of a step against its CPU twin on the
//! same inputs, then 100 steps of `GpuTrainer` on the emulated device against `Trainer`, and
//! checkpoints each resumes from the other; on 2-D data and on points of D = 1 and 3, and on
//! shapes the CLI does not name.
//!
//! Where a kernel performs the CPU's operations in the CPU's order it must give the CPU's
//! bits: the batch (`Examples::fill`, of every data set; the points' cos/sin/exp are the C
//! library's here and libm's there, so a last-bit difference is allowed in x_t), the layer
//! epilogues (the core's
//! GELU and residual units), ∂loss/∂ε̂, the elementwise backward kernels (the core's GELU
//! derivative) and Adam with the EMA. The matrix products and the loss sum in another order
//! (32-wide tiles of fused multiply-adds against the CPU's blocked products, a tree of f32
//! partial sums against an f64 sum): each of those outputs must lie within the standard
//! bound on a sum of n rounded terms, (n + 2)·u·Σ|term|, u = 2⁻²⁴, of an f64 reference.

use tinyddpm::cuda::launch::{Arg, Device, Launch, Session};
use tinyddpm::cuda::{GpuTrainer, StepPlan, step_plan};
use tinyddpm::data::{DataSet, Examples, Normalize, PointSet, TrainingData, forward_coefs};
use tinyddpm::train::{State, TrainConfig, Trainer, Training, write_checkpoint};
use tinyddpm_core::gelu::{gelu, gelu_derivative};
use tinyddpm_core::model::{input_unit, residual_unit};
use tinyddpm_core::{Schedule, ScheduleKind};
use tinyddpm_cuda_emu::Emulator;

/// f32's unit roundoff.
const U: f64 = 1.0 / 16_777_216.0;
/// 1/√2 as the kernels and the CPU divide by it.
const SQRT_2: f32 = core::f32::consts::SQRT_2;

fn schedule() -> Box<Schedule<1000>> {
    Box::new(Schedule::new(ScheduleKind::SEED).expect("seed schedule"))
}

fn config(batch: usize) -> TrainConfig {
    TrainConfig {
        batch,
        seed: 5,
        ema: Some(0.99),
        threads: 1,
        ..TrainConfig::default()
    }
}

/// A run of `config` on a model of `hidden` units and `blocks` blocks, `steps` steps in on
/// the CPU: moments and EMA no longer trivial.
fn cpu_state(config: TrainConfig, hidden: usize, blocks: usize, steps: u64) -> State {
    let mut cpu = Trainer::<1000>::new(config, hidden, blocks, &schedule()).expect("CPU trainer");
    cpu.run(steps, &mut |_, _| {}).expect("CPU steps");
    cpu.state()
}

/// The integer argument `arg`.
fn int(arg: Arg) -> usize {
    match arg {
        Arg::I32(v) => usize::try_from(v).expect("a non-negative int"),
        other => panic!("{other:?} is not an int"),
    }
}

/// The floats a pointer argument addresses, to the end of its buffer (empty for null).
fn floats(session: &dyn Session, arg: Arg) -> Vec<f32> {
    match arg {
        Arg::Ptr { buf, offset } => session.read_f32(buf).expect("read")[offset / 4..].to_vec(),
        Arg::Null => Vec::new(),
        other => panic!("{other:?} is not a pointer"),
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Asserts `got` equals `want` bit for bit, naming the first difference.
fn assert_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = bits(got).iter().zip(bits(want)).position(|(a, b)| *a != b) {
        panic!("{what}[{i}]: kernel {:e}, CPU {:e}", got[i], want[i]);
    }
}

/// Asserts |got − want| ≤ bound elementwise (NaN fails).
fn assert_within(what: &str, got: &[f32], want: &[f64], bound: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for i in 0..got.len() {
        let err = (f64::from(got[i]) - want[i]).abs();
        assert!(
            err <= bound[i],
            "{what}[{i}]: kernel {:e}, f64 reference {:e}, off by {err:e} > bound {:e}",
            got[i],
            want[i],
            bound[i]
        );
    }
}

/// `Σ_k a(k)·b(k)` over `n` terms in f64, and the bound (n + 2)·u·Σ|a·b| on the error of
/// an f32 evaluation in any order (fused or not).
fn dot(n: usize, term: impl Fn(usize) -> f64) -> (f64, f64) {
    let (mut sum, mut abs) = (0.0, 0.0);
    for k in 0..n {
        let t = term(k);
        sum += t;
        abs += t.abs();
    }
    (sum, (n + 2) as f64 * U * abs)
}

/// Runs one step's launches one at a time on the emulator and checks each against its CPU
/// twin; Adam's gradient is replaced by the CPU trainer's, so that the updated state must be
/// the CPU trainer's bit for bit. `state` must be a CPU run of one chunk (batch ≤ 64) of a
/// model of `hidden` units and `blocks` blocks, whose gradient is `loss_and_gradient`'s.
fn check_every_launch(state: State, hidden: usize, blocks: usize) {
    let s = schedule();
    let StepPlan { plan, buffers, .. } =
        step_plan::<1000>(&state, hidden, blocks).expect("step plan");
    let device = Emulator::default();
    let mut session = device.load(&plan).expect("load");
    let (n, dim) = (state.config.batch, state.config.data.dim());

    // The CPU trainer's step on the same state: its batch, gradient, loss and update.
    let mut cpu = Trainer::<1000>::from_state(state.clone(), hidden, blocks).expect("CPU trainer");
    let mut examples = Examples::new(n, dim);
    let c = &state.config;
    examples.fill(&c.data, &forward_coefs(&s), c.seed, state.step, 0);
    let (_, cpu_grad) = tinyddpm::train::loss_and_gradient(&cpu.weights(), &examples);
    let cpu_grad = cpu_grad.params().to_vec();
    let cpu_loss = cpu.step().expect("CPU step");
    let after = cpu.state();

    let mut seen = std::collections::BTreeSet::new();
    for (i, launch) in plan.launches.iter().enumerate() {
        let Launch { kernel, args, .. } = launch;
        let a = args.as_slice();
        seen.insert(*kernel);
        if *kernel == "adam" {
            session
                .write(buffers.grads, &f32_bytes(&cpu_grad))
                .expect("write");
        }
        let before: Vec<Vec<f32>> = a.iter().map(|&arg| pointee(&*session, arg)).collect();
        session.run(i..i + 1, 1).expect("launch");
        let now = |k: usize| floats(&*session, a[k]);
        match *kernel {
            "make_batch" => assert_batch(&state.config.data, &*session, a, &examples),
            "linear_fwd" => {
                let (x, w, bias) = (&before[0], &before[1], &before[2]);
                let (rows, out, inp, mode) = (int(a[3]), int(a[4]), int(a[5]), int(a[6]));
                let (mut want, mut bound) = (Vec::new(), Vec::new());
                for r in 0..rows {
                    for j in 0..out {
                        let (sum, err) = dot(inp, |k| {
                            f64::from(w[j * inp + k]) * f64::from(x[r * inp + k])
                        });
                        want.push(sum + f64::from(bias[j]));
                        bound.push(err + 2.0 * U * (sum.abs() + f64::from(bias[j]).abs()));
                    }
                }
                let y = &now(7)[..rows * out];
                assert_within(&format!("launch {i} linear_fwd"), y, &want, &bound);
                // The epilogue: the core's units on the kernel's own y, bit for bit.
                let epilogue: Vec<f32> = (0..rows * out)
                    .map(|o| match mode {
                        1 => gelu(y[o]),
                        2 => residual_unit(y[o], before[9][o], before[10][o]),
                        3 => input_unit(y[o], before[10][o]),
                        _ => 0.0,
                    })
                    .collect();
                if mode != 0 {
                    assert_bits(
                        &format!("launch {i} epilogue"),
                        &now(8)[..rows * out],
                        &epilogue,
                    );
                }
            }
            "mse_loss" => {
                let (out, eps, rows) = (&before[0], &before[1], int(a[2]));
                let count = dim * rows;
                let scale = 2.0 / count as f32;
                let d_out: Vec<f32> = (0..count).map(|e| (out[e] - eps[e]) * scale).collect();
                assert_bits("d_out", &now(3)[..count], &d_out);
                let (sse, err) = dot(count, |e| {
                    let d = f64::from(out[e] - eps[e]);
                    d * d
                });
                let loss = now(5)[0];
                let mean = sse / count as f64;
                assert_within("loss", &[loss], &[mean], &[err / count as f64 + U * mean]);
                // The CPU's loss comes from its own forward pass (the products' rounding).
                assert!(
                    (loss - cpu_loss).abs() <= 1e-4 * cpu_loss,
                    "{loss} vs CPU {cpu_loss}"
                );
            }
            "linear_wgrad" => {
                let (dy, x) = (&before[0], &before[1]);
                let (rows, out, inp) = (int(a[2]), int(a[3]), int(a[4]));
                let (dw, db) = (now(5), now(6));
                let (mut got, mut want, mut bound) = (Vec::new(), Vec::new(), Vec::new());
                for j in 0..out {
                    for k in 0..=inp {
                        let xv = |r: usize| {
                            if k < inp {
                                f64::from(x[r * inp + k])
                            } else {
                                1.0
                            }
                        };
                        let (sum, err) = dot(rows, |r| f64::from(dy[r * out + j]) * xv(r));
                        got.push(if k < inp { dw[j * inp + k] } else { db[j] });
                        want.push(sum);
                        bound.push(err);
                    }
                }
                assert_within(&format!("launch {i} linear_wgrad"), &got, &want, &bound);
            }
            "linear_bwd_input" => {
                let (dy, w, aux) = (&before[0], &before[1], &before[7]);
                let (rows, out, inp, mode) = (int(a[2]), int(a[3]), int(a[4]), int(a[5]));
                let dx = &now(6)[..rows * inp];
                let (mut want, mut bound) = (Vec::new(), Vec::new());
                for r in 0..rows {
                    for k in 0..inp {
                        let o = r * inp + k;
                        let (v, err) = dot(out, |j| {
                            f64::from(dy[r * out + j]) * f64::from(w[j * inp + k])
                        });
                        let (value, err) = match mode {
                            1 => {
                                let d = f64::from(gelu_derivative(aux[o]));
                                (v * d, err * d.abs())
                            }
                            2 => (v + f64::from(aux[o] / SQRT_2), err),
                            _ => (v, err),
                        };
                        want.push(value);
                        bound.push(err + 2.0 * U * value.abs());
                    }
                }
                assert_within(&format!("launch {i} linear_bwd_input"), dx, &want, &bound);
            }
            "residual_grad" | "input_grad" => {
                // net.rs: dh /= √2 (blocks only); dtemb += dh; dv = dh ⊙ GELU'(pre).
                let (dh, pre, len, first) = (&before[0], &before[1], int(a[2]), int(a[3]));
                let g: Vec<f32> = dh[..len]
                    .iter()
                    .map(|&d| {
                        if *kernel == "residual_grad" {
                            d / SQRT_2
                        } else {
                            d
                        }
                    })
                    .collect();
                let dv: Vec<f32> = (0..len).map(|e| g[e] * gelu_derivative(pre[e])).collect();
                let dtemb: Vec<f32> = (0..len)
                    .map(|e| {
                        if first == 1 {
                            g[e]
                        } else {
                            before[5][e] + g[e]
                        }
                    })
                    .collect();
                assert_bits(&format!("launch {i} {kernel}"), &now(4)[..len], &dv);
                assert_bits(&format!("launch {i} dtemb"), &now(5)[..len], &dtemb);
            }
            "adam" => {
                let len = int(a[5]);
                assert_bits("params after Adam", &now(0)[..len], &after.params);
                assert_bits("Adam m", &now(2)[..len], &after.adam.m);
                assert_bits("Adam v", &now(3)[..len], &after.adam.v);
                let ema = after.ema.as_deref().expect("an EMA");
                assert_bits("EMA", &now(4)[..len], ema);
            }
            "advance" => {
                let ctr = session.read(buffers.ctr).expect("counters");
                let step = u64::from_le_bytes(ctr[..8].try_into().expect("8 bytes"));
                assert_eq!(step, state.step + 1);
            }
            other => panic!("a launch of an unknown kernel {other}"),
        }
        // After the whole backward pass (Adam's launch is next), the kernels' gradient is
        // the CPU trainer's to within the products' bounds compounded through the layers.
        if plan.launches.get(i + 1).map(|l| l.kernel) == Some("adam") {
            let g = session.read_f32(buffers.grads).expect("gradient");
            let scale = cpu_grad.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (k, (&got, &want)) in g.iter().zip(&cpu_grad).enumerate() {
                assert!(
                    (got - want).abs() <= 1e-5 * scale,
                    "gradient[{k}]: kernels {got:e}, CPU {want:e} (largest {scale:e})"
                );
            }
        }
    }
    assert_eq!(seen.len(), 9, "every training kernel ran: {seen:?}");
}

/// Asserts that `make_batch`'s outputs (its arguments `args`, run) are the CPU's batch
/// `examples` of `data`: t and ε bit for bit — so the kernel's point took the data's draws
/// from the stream. For a point set x_t is bit for bit too (its rows are copied, and
/// `signal·x₀ + noise·ε` is two rounded products and a rounded sum on both sides); for a
/// built-in set x_t is within a few ulps (the C library's cos/sin/exp against libm's) of the
/// larger of x_t and the set's extent: an ulp of an angle's cosine moves a point by ulps of
/// the set's scale, however near the origin the point lies (for the Swiss roll, of extent
/// 1, this is the bound the spiral has always been held to).
fn assert_batch(data: &TrainingData, session: &dyn Session, args: &[Arg], examples: &Examples) {
    let (n, nd) = (examples.len(), examples.dim * examples.len());
    let out = |k: usize| floats(session, args[k]);
    assert_bits(&format!("{data} t_input"), &out(9)[..n], &examples.t_input);
    assert_bits(&format!("{data} noise"), &out(10)[..nd], &examples.noise);
    let x = &out(8)[..nd];
    let set = match data {
        TrainingData::Set(set) => *set,
        TrainingData::Points(_) => {
            assert_bits(&format!("{data} x_t"), x, &examples.x_t);
            return;
        }
    };
    for (j, (&g, &w)) in x.iter().zip(&examples.x_t).enumerate() {
        assert!(
            (g - w).abs() <= 4.0 * f32::EPSILON * w.abs().max(set.extent()),
            "{set} x_t[{j}]: kernel {g:e}, CPU {w:e}"
        );
    }
    let (got, want) = (bits(x), bits(&examples.x_t));
    let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
    println!(
        "{set} x_t: {differ} of {} differ in their last bits",
        x.len()
    );
}

/// 1,000 standardized points of `dim` (1 to 3) columns of an uneven cloud (a parabola of
/// rows, offset and scaled, and a cubic), so that rows differ in every bit.
fn points(dim: usize) -> TrainingData {
    let values = (0..1000)
        .flat_map(|i| {
            let x = i as f32 / 77.0 - 6.0;
            [
                100.0 + 10.0 * x,
                -50.0 + 0.5 * x * x,
                7.0 - x * x * x / 40.0,
            ]
            .into_iter()
            .take(dim)
        })
        .collect();
    let points = PointSet::new("cloud", dim, values, Normalize::Standard).expect("points");
    TrainingData::Points(points.into())
}

/// The 2-D point set.
fn point_set() -> TrainingData {
    points(2)
}

/// The shapes (H, B) the emulator is built for on points of D = 1 and 3 (neither one the CLI
/// names), and those points.
fn other_d() -> [(TrainingData, usize, usize); 2] {
    [(points(1), 24, 1), (points(3), 40, 2)]
}

/// Every data set, and point sets of D = 1, 2 and 3: the emulated `make_batch` of a step draws
/// the CPU's batch (`Examples::fill`).
#[test]
fn every_data_sets_batch_matches_the_cpus() {
    let s = schedule();
    let every = DataSet::ALL
        .map(|set| (TrainingData::from(set), 48, 2))
        .into_iter()
        .chain([(point_set(), 48, 2)])
        .chain(other_d());
    for (data, hidden, blocks) in every {
        let state = State::new(
            TrainConfig {
                data: data.clone(),
                ..config(300)
            },
            hidden,
            blocks,
            s.kind,
        )
        .expect("state");
        let state = State { step: 11, ..state };
        let StepPlan { plan, .. } = step_plan::<1000>(&state, hidden, blocks).expect("plan");
        let launch = &plan.launches[0];
        assert_eq!(launch.kernel, "make_batch");
        let mut session = Emulator::default().load(&plan).expect("load");
        session.run(0..1, 1).expect("launch");
        let mut examples = Examples::new(300, data.dim());
        examples.fill(&data, &forward_coefs(&s), state.config.seed, state.step, 0);
        assert_batch(&data, &*session, &launch.args, &examples);
    }
}

/// A pointer argument's floats before a launch (empty for null or a scalar).
fn pointee(session: &dyn Session, arg: Arg) -> Vec<f32> {
    match arg {
        Arg::Ptr { .. } => floats(session, arg),
        _ => Vec::new(),
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// H = 48 (a partial 32-wide tile of outputs) and 50 examples (a partial tile of rows).
#[test]
fn every_training_launch_matches_its_cpu_twin() {
    check_every_launch(cpu_state(config(50), 48, 2, 3), 48, 2);
}

/// The seed model's shape.
#[test]
fn every_training_launch_of_the_seed_model_matches_its_cpu_twin() {
    check_every_launch(cpu_state(config(64), 128, 3, 2), 128, 3);
}

/// Points of D = 1 (an odd D: a Gaussian of the last pair dropped) and D = 3, on shapes the
/// CLI does not name: every launch still matches its CPU twin.
#[test]
fn every_training_launch_on_points_of_other_d_matches_its_cpu_twin() {
    for (data, hidden, blocks) in other_d() {
        let config = TrainConfig { data, ..config(50) };
        check_every_launch(cpu_state(config, hidden, blocks, 3), hidden, blocks);
    }
}

/// Relative difference of two losses.
fn relative(a: f32, b: f32) -> f32 {
    (a - b).abs() / b.abs()
}

/// 100 steps of the GPU trainer on the emulated device follow the CPU trainer's loss curve,
/// and each resumes the other's checkpoint.
#[test]
fn a_hundred_emulated_steps_follow_the_cpu_trainer_and_resume_across_trainers() {
    let s = schedule();
    let config = config(128);
    let device = Emulator::default();
    let mut cpu = Trainer::<1000>::new(config.clone(), 48, 2, &s).expect("CPU trainer");
    let mut gpu = GpuTrainer::<1000>::new(&device, config, 48, 2, &s).expect("GPU trainer");
    let (mut cpu_losses, mut gpu_losses) = (Vec::new(), Vec::new());
    cpu.run(100, &mut |_, l| cpu_losses.push(l))
        .expect("CPU steps");
    gpu.run(100, &mut |_, l| gpu_losses.push(l))
        .expect("emulated steps");
    assert_eq!(gpu.step_index(), 100);
    let worst = (0..100)
        .map(|k| relative(gpu_losses[k], cpu_losses[k]))
        .fold(0.0f32, f32::max);
    println!("100 steps: worst relative loss difference {worst:e}");
    // The products' rounding (checked per launch above) moves the weights apart slowly: after
    // 100 steps the losses of the same batches differ by about 1e-7 of their value; 1e-5
    // leaves room for other compilers' code while still catching any real difference in the
    // maths (one wrong term moves the first losses by far more).
    assert!(worst <= 1e-5, "losses drift apart: {worst:e}");

    // The emulated run's checkpoint, resumed by the CPU trainer: the same state, and the
    // next steps follow the CPU run's.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("emulated.ckpt");
    let state = gpu.state().expect("state");
    write_checkpoint(&path, &state, (48, 2, 1000)).expect("checkpoint");
    let mut resumed = Trainer::<1000>::resume(&path, Some(1)).expect("CPU resume");
    let restored = resumed.state();
    assert!(restored.params == state.params && restored.adam == state.adam);
    assert!(restored.ema == state.ema && restored.step == 100);
    for _ in 0..5 {
        let (a, b) = (resumed.step().expect("resumed"), cpu.step().expect("CPU"));
        assert!(relative(a, b) <= 1e-5, "resumed loss {a} vs {b}");
    }

    // And the other way: the CPU run's checkpoint resumed on the emulated device.
    let path = dir.path().join("cpu.ckpt");
    cpu.save_checkpoint(&path).expect("checkpoint");
    let mut back = GpuTrainer::<1000>::resume(&device, &path).expect("GPU resume");
    let (resumed, saved) = (back.state().expect("state"), cpu.state());
    assert!(resumed.params == saved.params && resumed.adam == saved.adam);
    assert!(resumed.ema == saved.ema && resumed.step == saved.step);
    let (a, b) = (back.step().expect("resumed"), cpu.step().expect("CPU"));
    assert!(relative(a, b) <= 1e-5, "resumed loss {a} vs {b}");
}

/// An infinite weight: the emulated trainer stops at that step with the state from before
/// it, as the CPU trainer does.
#[test]
fn emulated_training_keeps_the_state_before_a_non_finite_loss() {
    let mut state = cpu_state(config(32), 48, 2, 1);
    state.params[5] = f32::INFINITY;
    let mut gpu = GpuTrainer::<1000>::from_state(&Emulator::default(), state.clone(), 48, 2)
        .expect("trainer");
    let err = gpu
        .step()
        .expect_err("an infinite weight gives a non-finite loss");
    assert!(err.to_string().contains("step 1"), "{err}");
    assert_eq!(gpu.step_index(), 1);
    let after = gpu.state().expect("state");
    assert!(
        after
            .params
            .iter()
            .zip(&state.params)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert!(after.adam == state.adam && after.ema == state.ema);
}

/// A run on points: the emulated trainer follows the CPU trainer's losses, and a CPU
/// checkpoint of the run resumes on the emulated device given the same points (and only
/// then), with the CPU's state.
#[test]
fn a_run_on_points_follows_the_cpu_and_resumes_on_the_device_given_its_points() {
    let s = schedule();
    let config = TrainConfig {
        data: point_set(),
        ..config(128)
    };
    let device = Emulator::default();
    let mut cpu = Trainer::<1000>::new(config.clone(), 48, 2, &s).expect("CPU trainer");
    let mut gpu = GpuTrainer::<1000>::new(&device, config, 48, 2, &s).expect("GPU trainer");
    for _ in 0..5 {
        let (a, b) = (gpu.step().expect("emulated"), cpu.step().expect("CPU"));
        assert!(relative(a, b) <= 1e-5, "emulated loss {a} vs {b}");
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("points.ckpt");
    cpu.save_checkpoint(&path).expect("checkpoint");
    let file = tinyddpm::train::CheckpointFile::read(&path).expect("read");
    let e = GpuTrainer::<1000>::resume_from(&device, &file).err();
    assert!(e.is_some_and(|e| e.to_string().contains("--data FILE")));
    let given = file
        .with_data(&point_set())
        .expect("file")
        .expect("the run's points");
    let mut back = GpuTrainer::<1000>::resume_from(&device, &given).expect("resume");
    let (resumed, saved) = (back.state().expect("state"), cpu.state());
    assert!(resumed.params == saved.params && resumed.adam == saved.adam);
    assert!(resumed.config.data == saved.config.data && resumed.step == saved.step);
    let (a, b) = (back.step().expect("resumed"), cpu.step().expect("CPU"));
    assert!(relative(a, b) <= 1e-5, "resumed loss {a} vs {b}");
}

/// Asserts that two states are the same run at the same step, bit for bit (the worker
/// threads aside: a checkpoint does not keep them).
fn assert_same_run(a: &State, b: &State) {
    assert_bits("params", &a.params, &b.params);
    assert_bits("Adam m", &a.adam.m, &b.adam.m);
    assert_bits("Adam v", &a.adam.v, &b.adam.v);
    assert_bits(
        "EMA",
        a.ema.as_deref().unwrap_or(&[]),
        b.ema.as_deref().unwrap_or(&[]),
    );
    assert_eq!((a.step, &a.config.data), (b.step, &b.config.data));
}

/// Points of D = 1 and 3 on shapes the CLI does not name: the emulated trainer follows the
/// CPU trainer's losses, has the run's layout, and each trainer resumes the other's
/// checkpoint (given the points) with the same state.
#[test]
fn runs_on_points_of_other_d_follow_the_cpu_and_resume_across_trainers() {
    let s = schedule();
    let device = Emulator::default();
    let dir = tempfile::tempdir().expect("temporary folder");
    for (data, hidden, blocks) in other_d() {
        let dim = data.dim();
        let config = TrainConfig {
            data: data.clone(),
            ..config(100)
        };
        let mut cpu = Trainer::<1000>::new(config.clone(), hidden, blocks, &s).expect("CPU");
        let mut gpu =
            GpuTrainer::<1000>::new(&device, config, hidden, blocks, &s).expect("GPU trainer");
        let layout = gpu.layout();
        assert_eq!(
            (layout.hidden, layout.blocks, layout.dim),
            (hidden, blocks, dim)
        );
        assert_eq!(layout, cpu.layout());
        for _ in 0..10 {
            let (a, b) = (gpu.step().expect("emulated"), cpu.step().expect("CPU"));
            assert!(relative(a, b) <= 1e-5, "D={dim}: emulated loss {a} vs {b}");
        }
        let model = gpu.model().expect("model");
        assert_eq!(model.layout(), layout);

        // The emulated run's checkpoint, resumed by the CPU trainer given the points.
        let path = dir.path().join(format!("emulated{dim}.ckpt"));
        let state = gpu.state().expect("state");
        write_checkpoint(&path, &state, (hidden, blocks, 1000)).expect("checkpoint");
        let file = tinyddpm::train::CheckpointFile::read(&path).expect("read");
        let given = file
            .with_data(&data)
            .expect("file")
            .expect("the run's points");
        let mut resumed = Trainer::<1000>::resume_from(&given, Some(1)).expect("CPU resume");
        assert_same_run(&resumed.state(), &state);
        let (a, b) = (resumed.step().expect("resumed"), cpu.step().expect("CPU"));
        assert!(relative(a, b) <= 1e-5, "D={dim}: resumed loss {a} vs {b}");

        // And the CPU run's checkpoint resumed on the emulated device, as the shape asked.
        let path = dir.path().join(format!("cpu{dim}.ckpt"));
        cpu.save_checkpoint(&path).expect("checkpoint");
        let file = tinyddpm::train::CheckpointFile::read(&path).expect("read");
        let given = file
            .with_data(&data)
            .expect("file")
            .expect("the run's points");
        let mut back =
            GpuTrainer::<1000>::resume_as(&device, &given, (hidden, blocks)).expect("resume");
        assert_same_run(&back.state().expect("state"), &cpu.state());
        let (a, b) = (back.step().expect("resumed"), cpu.step().expect("CPU"));
        assert!(relative(a, b) <= 1e-5, "D={dim}: resumed loss {a} vs {b}");
        let e = GpuTrainer::<1000>::resume_as(&device, &given, (hidden, blocks + 1)).err();
        assert!(e.is_some(), "a checkpoint of another shape is refused");
    }
}
