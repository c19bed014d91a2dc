//! Cross-crate tests of the CUDA backend.
//!
//! Everywhere: every kernel source compiles through NVRTC (when libnvrtc is loadable; CI
//! installs it with `scripts/install-nvrtc.sh`), `probe` never panics, and the CLI's
//! `--device cuda` fails with one line when there is no GPU. (The kernels themselves run on
//! every machine in `tests/cuda-emu`, on the CPU.)
//!
//! With a GPU: sampling is bit-identical to the core for every sampler, and one training
//! step (data, forward, loss, backward, Adam) agrees with CPU references to a tolerance.
//! Without one these print "skipped: no CUDA device" and pass. (The GPU's timings are
//! `benches/cuda.rs`.)

use std::process::Command;

use rayon::prelude::*;

use tinyddpm::batch::{FlatRequest, Init};
use tinyddpm::cuda::{self, Gpu, GpuTrainer};
use tinyddpm::data::Examples;
use tinyddpm::flat::FlatModel;
use tinyddpm::train::{Adam, State, TrainConfig, Training, params_of};
use tinyddpm_core::file::Header;
use tinyddpm_core::{Model, Sampler, Schedule, ScheduleKind, Solver, Spacing};

type Seed = Model<128, 3>;

/// The probed GPU, or `None` after printing why the test is skipped.
fn gpu() -> Option<Gpu> {
    match cuda::probe() {
        Ok(gpu) => Some(gpu),
        Err(reason) => {
            println!("skipped: no CUDA device ({reason})");
            None
        }
    }
}

/// A model with PyTorch's default initialisation (±1/√fan_in), not all zero.
fn model(seed: u64) -> Box<Seed> {
    tinyddpm::train::pytorch_init(seed)
}

fn schedule() -> Box<Schedule<1000>> {
    Box::new(Schedule::new(ScheduleKind::SEED).expect("seed schedule"))
}

/// Asserts |got − want| ≤ abs + rel·|want| everywhere, printing the first mismatches.
fn assert_close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| {
            // written so that a NaN counts as a mismatch
            let within = (got[i] - want[i]).abs() <= abs + rel * want[i].abs();
            !within
        })
        .collect();
    for &i in bad.iter().take(10) {
        eprintln!("{what}[{i}]: got {:e}, want {:e}", got[i], want[i]);
    }
    assert!(
        bad.is_empty(),
        "{what}: {} of {} outside tolerance",
        bad.len(),
        got.len()
    );
}

#[test]
fn every_kernel_source_compiles_with_nvrtc() {
    if !cuda::nvrtc_available() {
        println!("skipped: NVRTC not found (run scripts/install-nvrtc.sh)");
        return;
    }
    match cuda::compile_all("compute_90") {
        Ok(names) => println!("compiled for compute_90: {}", names.join(", ")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn probe_returns_a_one_line_reason_or_a_device() {
    match cuda::probe() {
        Ok(gpu) => println!("CUDA device: {} ({})", gpu.name(), gpu.arch()),
        Err(reason) => {
            let text = reason.to_string();
            println!("probe: {text}");
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        }
    }
}

#[test]
fn cli_device_cuda_without_a_gpu_fails_with_one_line() {
    let Some(exe) = option_env!("CARGO_BIN_EXE_tinyddpm") else {
        println!("skipped: the tinyddpm binary is not part of this build yet");
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let model_path = dir.path().join("model.tdm");
    let header = Header::new::<128, 3, 1000>(ScheduleKind::SEED, Sampler::Ddpm);
    tinyddpm::modelfile::save(&model_path, &*model(1), &header).expect("model file");
    let out = dir.path().join("samples.csv");
    let run = Command::new(exe)
        .args([
            "sample", "--device", "cuda", "-n", "4", "--seed", "1", "--model",
        ])
        .arg(&model_path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run tinyddpm");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    if cuda::probe().is_ok() {
        assert!(run.status.success(), "with a GPU: {stderr}");
        return;
    }
    assert!(
        !run.status.success(),
        "--device cuda without a GPU must fail"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr:?}");
    assert!(!out.exists(), "no output file on failure");
}

/// Every sampler the core offers, with the step counts kept small where the sampler allows.
fn samplers() -> Vec<Sampler> {
    let mut all = vec![Sampler::Ddpm, Sampler::DdpmPosterior, Sampler::DDIM_DEFAULT];
    all.extend(Solver::NAMED.map(|(_, solver)| Sampler::multistep(solver)));
    all.push(Sampler::Multistep {
        solver: Solver::DpmPp3m,
        steps: 150,
        spacing: Spacing::Karras,
    });
    for (spacing, eta, clip) in [
        (Spacing::Leading, 1.0, false),
        (Spacing::Linspace, 0.5, true),
        (Spacing::Trailing, 0.0, true),
    ] {
        all.push(Sampler::Ddim {
            steps: 37,
            eta,
            spacing,
            clip,
        });
    }
    all
}

#[test]
fn gpu_sampling_is_bit_identical_to_the_core_for_every_sampler() {
    let Some(gpu) = gpu() else { return };
    let m = model(7);
    let s = schedule();
    for sampler in samplers() {
        // More samples than one thread block's tile, an offset first index, an odd count.
        let (seed, first, count) = (11, 1_000_003, 301);
        let got = gpu
            .sample(
                &FlatRequest {
                    model: &FlatModel::of(&*m),
                    schedule: &s,
                    sampler: &sampler,
                    init: Init::Noise,
                    seed,
                    first,
                    count,
                },
                &|_| {},
            )
            .expect("GPU sampling");
        let got = got.as_chunks::<2>().0;
        let want: Vec<[f32; 2]> = (0..count as u64)
            .into_par_iter()
            .map(|i| tinyddpm_core::sample(&*m, &s, &sampler, seed, first + i))
            .collect();
        let bits = |v: &[[f32; 2]]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mismatch = bits(got).iter().zip(bits(&want)).position(|(a, b)| *a != b);
        assert_eq!(mismatch, None, "{sampler:?}: first mismatch (flat index)");
    }
}

#[test]
fn gpu_sampling_spans_several_launch_waves() {
    let Some(gpu) = gpu() else { return };
    let m = model(12);
    let s = schedule();
    let sampler = Sampler::DDIM_DEFAULT;
    // More samples than one wave of thread blocks fills on any current GPU (an H200 holds
    // 132 × 128), so the batch is split; check samples spread over every part.
    let count = 60_000;
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let got = gpu
        .sample(
            &FlatRequest {
                model: &FlatModel::of(&*m),
                schedule: &s,
                sampler: &sampler,
                init: Init::Noise,
                seed: 4,
                first: 0,
                count,
            },
            &|n| {
                finished.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .expect("GPU sampling");
    let got = got.as_chunks::<2>().0;
    assert_eq!(finished.into_inner(), count);
    let picks: Vec<usize> = (0..count).step_by(997).chain([count - 1]).collect();
    for i in picks {
        let want = tinyddpm_core::sample(&*m, &s, &sampler, 4, i as u64);
        assert_eq!(
            got[i].map(f32::to_bits),
            want.map(f32::to_bits),
            "sample {i}"
        );
    }
}

#[test]
fn gpu_sampling_from_given_starts_matches_sample_from() {
    let Some(gpu) = gpu() else { return };
    let m = model(8);
    let s = schedule();
    let sampler = Sampler::DDIM_DEFAULT;
    let starts: Vec<[f32; 2]> = (0..50)
        .map(|i| [i as f32 * 0.1 - 2.5, 1.0 - i as f32 * 0.03])
        .collect();
    let got = gpu
        .sample(
            &FlatRequest {
                model: &FlatModel::of(&*m),
                schedule: &s,
                sampler: &sampler,
                init: Init::Given(starts.as_flattened()),
                seed: 3,
                first: 0,
                count: starts.len(),
            },
            &|_| {},
        )
        .expect("GPU sampling");
    for (i, (g, x0)) in got.as_chunks::<2>().0.iter().zip(&starts).enumerate() {
        let want = tinyddpm_core::sample_from(&*m, &s, &sampler, *x0, 3, i as u64);
        assert_eq!(g.map(f32::to_bits), want.map(f32::to_bits), "sample {i}");
    }
}

#[test]
fn gpu_sampling_handles_the_all_zero_stream_seed() {
    let Some(gpu) = gpu() else { return };
    // stream_seed(−γ, −γ) is all zero bytes, which rand_xoshiro remaps to a fixed state.
    let minus_gamma = 0u64.wrapping_sub(0x9e37_79b9_7f4a_7c15);
    let m = model(9);
    let s = schedule();
    let sampler = Sampler::DDIM_DEFAULT;
    let got = gpu
        .sample(
            &FlatRequest {
                model: &FlatModel::of(&*m),
                schedule: &s,
                sampler: &sampler,
                init: Init::Noise,
                seed: minus_gamma,
                first: minus_gamma,
                count: 1,
            },
            &|_| {},
        )
        .expect("GPU sampling");
    let want = tinyddpm_core::sample(&*m, &s, &sampler, minus_gamma, minus_gamma);
    let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want.map(f32::to_bits));
}

/// Step `step`'s training batch under `seed`, as the CPU trainer draws it.
fn batch_of(seed: u64, step: u64, batch: usize, s: &Schedule<1000>) -> Examples {
    let mut ex = Examples::new(batch, 2);
    ex.fill(
        tinyddpm::data::DataSet::SwissRoll,
        &tinyddpm::data::forward_coefs(s),
        seed,
        step,
        0,
    );
    ex
}

/// Mean squared error of the core's forward pass (the sampling arithmetic) on `ex`.
fn core_loss(m: &Seed, ex: &Examples) -> f64 {
    let mut sum = 0.0f64;
    for i in 0..ex.len() {
        let temb = m.time_embedding(ex.t_input[i]);
        let eps = m.predict_noise([ex.x_t[2 * i], ex.x_t[2 * i + 1]], &temb);
        for (e, z) in eps.iter().zip(&ex.noise[2 * i..2 * i + 2]) {
            let d = f64::from(*e) - f64::from(*z);
            sum += d * d;
        }
    }
    sum / (2 * ex.len()) as f64
}

#[test]
fn gpu_training_step_matches_cpu_references() {
    let Some(gpu) = gpu() else { return };
    let s = schedule();
    let (seed, batch, at) = (5, 128, 3);
    let m0 = model(10);
    let p0 = params_of(&m0);
    let n = p0.len();
    let config = TrainConfig {
        seed,
        batch,
        ema: Some(0.99),
        ..TrainConfig::default()
    };
    let state = State {
        config: config.clone(),
        schedule: ScheduleKind::SEED,
        step: at,
        params: p0.clone(),
        adam: Adam::new(n),
        ema: Some(p0.clone()),
    };
    let mut trainer = GpuTrainer::<1000>::from_state(&gpu, state, 128, 3).expect("trainer");
    let loss = trainer.step().expect("step");

    // Data + forward + loss: the CPU trainer's batch of that step through the core's pass.
    let ex = batch_of(seed, at, batch, &s);
    assert_close("loss", &[loss], &[core_loss(&m0, &ex) as f32], 1e-6, 1e-4);

    // Backward: the CPU trainer's hand-written gradient on the same batch.
    let (cpu_loss, cpu_grad) =
        tinyddpm::train::loss_and_gradient(&tinyddpm::flat::FlatModel::of(&*m0), &ex);
    assert_close("loss vs CPU trainer", &[loss], &[cpu_loss], 1e-6, 1e-4);
    let g = trainer.gradients().expect("gradients");
    assert_close("gradient", &g, cpu_grad.params(), 1e-6, 1e-3);

    // Adam (zero moments, update number 4) and the EMA in the CPU trainer's f32 sequence,
    // from the GPU's own gradients.
    let after = trainer.state().expect("state");
    assert_eq!(after.step, at + 1);
    let t = f64::from(at as u32 + 1);
    let neg_step = -(1e-3f64 / (1.0 - 0.9f64.powf(t))) as f32;
    let bc2_sqrt = (1.0 - 0.999f64.powf(t)).sqrt() as f32;
    let mut p1 = vec![0.0f32; n];
    let mut ema = vec![0.0f32; n];
    for i in 0..n {
        let m = 0.1f32 * g[i];
        let v = 0.001f32 * g[i] * g[i];
        p1[i] = p0[i] + neg_step * m / (v.sqrt() / bc2_sqrt + 1e-8);
        ema[i] = p0[i] + 0.01f32 * (p1[i] - p0[i]);
    }
    assert_close("params after Adam", &after.params, &p1, 1e-7, 1e-6);
    assert_close("EMA", after.ema.as_deref().unwrap_or(&[]), &ema, 1e-7, 1e-6);
}

#[test]
fn gpu_training_keeps_the_state_before_a_non_finite_loss() {
    let Some(gpu) = gpu() else { return };
    let mut p = params_of(&model(11));
    p[5] = f32::INFINITY;
    let n = p.len();
    let state = State {
        config: TrainConfig::default(),
        schedule: ScheduleKind::SEED,
        step: 0,
        params: p.clone(),
        adam: Adam::new(n),
        ema: None,
    };
    let mut trainer = GpuTrainer::<1000>::from_state(&gpu, state, 128, 3).expect("trainer");
    let err = trainer
        .step()
        .expect_err("an infinite weight gives a non-finite loss");
    assert!(err.to_string().contains("step 0"), "{err}");
    assert_eq!(trainer.step_index(), 0);
    let after = trainer.state().expect("state");
    assert_eq!(
        after.params.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        p.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
}
