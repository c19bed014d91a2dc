//! The sampling kernels, run on the CPU through the launch lists the GPU runs, give the
//! core's bits (`tinyddpm_core::sample`, `sample_from`) for every sampler, both starts, and
//! batch sizes that leave partial tiles, partial blocks and several waves (the emulated
//! device holds 2 × 128 samples per wave), on 2-D points and on points of other D.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use tinyddpm::batch::{FlatRequest, Init};
use tinyddpm::cuda::sample_on;
use tinyddpm::flat::FlatModel;
use tinyddpm_core::{Layout, Model, Sampler, Schedule, ScheduleKind, Solver, Spacing};
use tinyddpm_cuda_emu::Emulator;

/// Batch sizes: one sample (a padded tile), 7 (two blocks, the second partial), 257 (two
/// waves, the second a single sample) and 1000 (four waves, the last in partial tiles).
const COUNTS: [usize; 4] = [1, 7, 257, 1000];

/// A short schedule, so that full DDPM chains stay cheap on the CPU.
fn short() -> Box<Schedule<40>> {
    Box::new(Schedule::new(ScheduleKind::COSINE).expect("cosine schedule"))
}

fn seed_schedule() -> Box<Schedule<1000>> {
    Box::new(Schedule::new(ScheduleKind::SEED).expect("seed schedule"))
}

/// Starting points of D coordinates for `Init::Given`, spread over the data's range and
/// beyond, one after another.
fn starts<const D: usize>(count: usize) -> Vec<[f32; D]> {
    (0..count)
        .map(|i| {
            std::array::from_fn(|c| {
                let shift = (c / 2) as f32 * 0.3;
                match c % 2 {
                    0 => (i as f32 * 0.37 + shift).sin() * 2.5,
                    _ => (i as f32 * 0.11 + shift).cos() * 1.5 - 0.2,
                }
            })
        })
        .collect()
}

/// Runs `sampler` for each of `counts` samples from noise and from given starts on the
/// emulated GPU and demands the core's bits for every sample.
fn assert_bit_identical<const H: usize, const B: usize, const D: usize, const T: usize>(
    model: &Model<H, B, D>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    counts: &[usize],
) {
    let device = Emulator::default();
    let flat = FlatModel::of(model);
    let (seed, first) = (11, 1_000_003);
    for &count in counts {
        let given = starts::<D>(count);
        for init in [Init::Noise, Init::Given(given.as_flattened())] {
            let finished = AtomicUsize::new(0);
            let request = FlatRequest {
                model: &flat,
                schedule,
                sampler,
                init,
                seed,
                first,
                count,
            };
            let got = sample_on(&device, &request, &|n| {
                finished.fetch_add(n, Ordering::Relaxed);
            })
            .unwrap_or_else(|e| panic!("{sampler:?}: {e}"));
            assert_eq!(finished.into_inner(), count, "progress of {sampler:?}");
            let want: Vec<[f32; D]> = (0..count)
                .into_par_iter()
                .map(|i| {
                    let index = first + i as u64;
                    match init {
                        Init::Noise => tinyddpm_core::sample(model, schedule, sampler, seed, index),
                        Init::Given(_) => {
                            let x = given[i];
                            tinyddpm_core::sample_from(model, schedule, sampler, x, seed, index)
                        }
                    }
                })
                .collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(got.len(), count * D, "{sampler:?}: values returned");
            // Bits of NaN would agree however they came about.
            assert!(got.iter().all(|v| v.is_finite()), "{sampler:?}: finite");
            let mismatch = bits(&got)
                .iter()
                .zip(bits(want.as_flattened()))
                .position(|(a, b)| *a != b);
            let from = if matches!(init, Init::Noise) {
                "noise"
            } else {
                "given starts"
            };
            assert_eq!(
                mismatch, None,
                "{sampler:?}, {count} samples of D = {D} from {from}: first mismatch (flat index)"
            );
        }
    }
}

fn small_model() -> Box<Model<48, 2>> {
    tinyddpm::train::pytorch_init(7)
}

#[test]
fn ddpm_samplers_give_the_cores_bits() {
    let (m, s) = (small_model(), short());
    for sampler in [Sampler::Ddpm, Sampler::DdpmPosterior] {
        assert_bit_identical(&*m, &s, &sampler, &COUNTS);
    }
}

#[test]
fn ddim_with_eta_clipping_and_spacings_gives_the_cores_bits() {
    let (m, s) = (small_model(), short());
    for (steps, eta, spacing, clip) in [
        (20, 0.0, Spacing::Trailing, false),
        (13, 1.0, Spacing::Leading, false),
        (40, 0.5, Spacing::Linspace, true),
        (7, 0.0, Spacing::Trailing, true),
    ] {
        let sampler = Sampler::Ddim {
            steps,
            eta,
            spacing,
            clip,
        };
        assert_bit_identical(&*m, &s, &sampler, &COUNTS);
    }
}

/// Each solver on each of its spacings, at step counts that reach every order (3M is third
/// order from its third step, and second order on its second-to-last below 15 steps).
fn multistep(solver: Solver) {
    let (m, s) = (small_model(), short());
    let steps = match solver {
        Solver::DpmPp2m => [20, 7, 39],
        Solver::DpmPp3m => [16, 14, 3],
        Solver::DpmPp2mSde => [20, 5, 1],
        Solver::UniPc => [20, 2, 13],
    };
    for (spacing, steps) in Solver::SPACINGS.into_iter().zip(steps) {
        let sampler = Sampler::Multistep {
            solver,
            steps,
            spacing,
        };
        assert_bit_identical(&*m, &s, &sampler, &COUNTS);
    }
}

#[test]
fn dpm_solver_2m_gives_the_cores_bits() {
    multistep(Solver::DpmPp2m);
}

#[test]
fn dpm_solver_3m_gives_the_cores_bits() {
    multistep(Solver::DpmPp3m);
}

#[test]
fn dpm_solver_2m_sde_gives_the_cores_bits() {
    multistep(Solver::DpmPp2mSde);
}

#[test]
fn unipc_gives_the_cores_bits() {
    multistep(Solver::UniPc);
}

/// Chains longer than one launch (100 steps): x, the noise stream and the multistep history
/// carry over from launch to launch.
#[test]
fn chains_longer_than_one_launch_give_the_cores_bits() {
    let (m, s) = (small_model(), seed_schedule());
    let samplers = [
        Sampler::Ddpm,
        Sampler::Multistep {
            solver: Solver::UniPc,
            steps: 230,
            spacing: Spacing::LogSnr,
        },
        Sampler::Multistep {
            solver: Solver::DpmPp3m,
            steps: 150,
            spacing: Spacing::Karras,
        },
        Sampler::Multistep {
            solver: Solver::DpmPp2mSde,
            steps: 120,
            spacing: Spacing::Linspace,
        },
    ];
    for sampler in samplers {
        assert_bit_identical(&*m, &s, &sampler, &[7]);
    }
}

/// More samples than one `sample_init` block (1,024) and ten waves of `sample_steps`.
#[test]
fn many_waves_give_the_cores_bits() {
    let (m, s) = (small_model(), short());
    let sampler = Sampler::Ddim {
        steps: 3,
        eta: 1.0,
        spacing: Spacing::Trailing,
        clip: false,
    };
    assert_bit_identical(&*m, &s, &sampler, &[2500]);
}

/// The seed model's shape (H = 128, B = 3), at the tile size an H200 runs it with.
#[test]
fn the_seed_model_gives_the_cores_bits() {
    let m = tinyddpm::train::pytorch_init::<128, 3>(8);
    let s = seed_schedule();
    let sampler = Sampler::Ddim {
        steps: 10,
        eta: 0.5,
        spacing: Spacing::Trailing,
        clip: false,
    };
    assert_bit_identical(&*m, &s, &sampler, &[257]);
    assert_bit_identical(&*m, &s, &Sampler::multistep(Solver::DpmPp2m), &[7]);
}

#[test]
fn the_all_zero_stream_seed_gives_the_cores_bits() {
    // stream_seed(−γ, −γ) is all zero bytes, which rand_xoshiro remaps to a fixed state.
    let minus_gamma = 0u64.wrapping_sub(0x9e37_79b9_7f4a_7c15);
    let (m, s) = (small_model(), short());
    let sampler = Sampler::Ddpm;
    let request = FlatRequest {
        model: &FlatModel::of(&*m),
        schedule: &s,
        sampler: &sampler,
        init: Init::Noise,
        seed: minus_gamma,
        first: minus_gamma,
        count: 1,
    };
    let got = sample_on(&Emulator::default(), &request, &|_| {}).expect("sampling");
    let want = tinyddpm_core::sample(&*m, &s, &sampler, minus_gamma, minus_gamma);
    let got: Vec<u32> = got.iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want.map(f32::to_bits));
}

/// A model of shape (H, B, D) with PyTorch's default initialisation bounds (uniform in
/// ±1/√fan_in), from a fixed sequence: a network whose chains stay finite.
fn model_of_shape<const H: usize, const B: usize, const D: usize>() -> Box<Model<H, B, D>> {
    let layout = Layout::of_dim::<H, B, D>();
    let mut params = vec![0.0f32; layout.len()];
    let mut n = 0u32;
    for layer in layout.iter() {
        let bound = 1.0 / (layer.i as f32).sqrt();
        for v in &mut params[layer.w..layer.end()] {
            n += 1;
            *v = bound * (2.0 * (n as f32 * 0.618_034).fract() - 1.0);
        }
    }
    let flat = FlatModel::new(layout, params).expect("the layout's count");
    flat.to_model().expect("the layout's shape")
}

/// One sampler of each family (DDPM, DDIM, each multistep solver), on few steps of the short
/// schedule, at batch sizes of a padded tile, a partial block and two waves; and a chain
/// longer than one launch, whose history of D coordinates carries over between launches.
fn every_family<const H: usize, const B: usize, const D: usize>() {
    let (m, s) = (model_of_shape::<H, B, D>(), short());
    let mut samplers = vec![
        Sampler::DdpmPosterior,
        Sampler::Ddim {
            steps: 9,
            eta: 0.5,
            spacing: Spacing::Linspace,
            clip: true,
        },
    ];
    for (solver, spacing, steps) in [
        (Solver::DpmPp2m, Spacing::LogSnr, 7),
        (Solver::DpmPp3m, Spacing::Karras, 6),
        (Solver::DpmPp2mSde, Spacing::Linspace, 5),
        (Solver::UniPc, Spacing::Karras, 6),
    ] {
        samplers.push(Sampler::Multistep {
            solver,
            steps,
            spacing,
        });
    }
    for sampler in samplers {
        assert_bit_identical(&*m, &s, &sampler, &[1, 7, 257]);
    }
    assert_bit_identical(&*m, &s, &Sampler::Ddpm, &[7]);
    let long = Sampler::Multistep {
        solver: Solver::UniPc,
        steps: 130,
        spacing: Spacing::LogSnr,
    };
    assert_bit_identical(&*m, &seed_schedule(), &long, &[5]);
}

#[test]
fn one_dimensional_points_give_the_cores_bits() {
    every_family::<32, 1, 1>();
}

#[test]
fn three_dimensional_points_give_the_cores_bits() {
    every_family::<40, 2, 3>();
}

#[test]
fn eight_dimensional_points_give_the_cores_bits() {
    every_family::<48, 1, 8>();
}

#[test]
fn sixteen_dimensional_points_give_the_cores_bits() {
    every_family::<32, 2, 16>();
}
