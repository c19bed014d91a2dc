//! Races: every kernel's output must not depend on the order in which the threads of a block
//! run between barriers, nor on the order of the blocks, nor on what shared memory held
//! before the block wrote it. Each plan runs twice, in ascending order with NaN-filled shared
//! memory and in descending order with huge finite garbage, and after every launch every
//! buffer must hold the same bits in both.

use tinyddpm::batch::{FlatRequest, Init};
use tinyddpm::cuda::launch::{Device, Plan};
use tinyddpm::cuda::{sample_plan, step_plan};
use tinyddpm::data::{Normalize, PointSet, TrainingData};
use tinyddpm::flat::FlatModel;
use tinyddpm::train::{State, TrainConfig};
use tinyddpm_core::{Layout, Sampler, Schedule, ScheduleKind, Solver, Spacing};
use tinyddpm_cuda_emu::{Emulator, Order};

/// Runs `plan` launch by launch in both orders, comparing every buffer after each launch.
fn assert_order_independent(plan: &Plan) {
    let (forward, reverse) = (Emulator::new(Order::Forward), Emulator::new(Order::Reverse));
    let mut a = forward.load(plan).expect("load");
    let mut b = reverse.load(plan).expect("load");
    for (i, launch) in plan.launches.iter().enumerate() {
        a.run(i..i + 1, 1).expect("forward");
        b.run(i..i + 1, 1).expect("reverse");
        for buf in plan.buffer_ids() {
            let (x, y) = (a.read(buf).expect("read"), b.read(buf).expect("read"));
            if let Some(at) = x.iter().zip(&y).position(|(p, q)| p != q) {
                panic!(
                    "launch {i} ({}): buffer {} differs at byte {at} between thread orders",
                    launch.kernel,
                    buf.index()
                );
            }
        }
    }
}

/// On 2-D points, and on 3-D ones (an odd D: each draw drops a Gaussian) for the samplers
/// with a history.
#[test]
fn sampling_kernels_do_not_depend_on_thread_order() {
    let plane = FlatModel::of(&*tinyddpm::train::pytorch_init::<48, 2>(3));
    let layout = Layout::with_dim(40, 2, 3).expect("layout");
    let weights = (0..layout.len())
        .map(|n| ((n as f32 * 0.618_034).fract() - 0.5) * 0.3)
        .collect();
    let space = FlatModel::new(layout, weights).expect("the layout's count");
    let schedule = Schedule::<40>::new(ScheduleKind::COSINE).expect("schedule");
    let given: Vec<f32> = (0..3 * 257).map(|i| i as f32 * 0.01 - 1.0).collect();
    let samplers = [
        Sampler::Ddpm,
        Sampler::Ddim {
            steps: 9,
            eta: 0.5,
            spacing: Spacing::Linspace,
            clip: true,
        },
        Sampler::Multistep {
            solver: Solver::UniPc,
            steps: 6,
            spacing: Spacing::Karras,
        },
        Sampler::Multistep {
            solver: Solver::DpmPp3m,
            steps: 5,
            spacing: Spacing::LogSnr,
        },
    ];
    let runs = samplers
        .iter()
        .enumerate()
        .map(|(k, sampler)| (&plane, k, sampler))
        .chain(samplers[2..].iter().map(|sampler| (&space, 1, sampler)));
    for (model, k, sampler) in runs {
        let d = model.dim();
        let request = FlatRequest {
            model,
            schedule: &schedule,
            sampler,
            init: if k % 2 == 0 {
                Init::Noise
            } else {
                Init::Given(&given[..d * 257])
            },
            seed: 2,
            first: 5,
            count: 257,
        };
        let sp = sample_plan(&Emulator::default(), &request).expect("plan");
        assert_order_independent(&sp.plan);
    }
}

/// On the 2-D Swiss roll and on points of D = 3 (a shape the CLI does not name).
#[test]
fn training_kernels_do_not_depend_on_thread_order() {
    let values = (0..3 * 100).map(|i| (i * i % 37) as f32).collect();
    let points = PointSet::new("p3", 3, values, Normalize::Standard).expect("points");
    for (data, hidden, blocks) in [
        (TrainingData::default(), 48, 2),
        (TrainingData::Points(points.into()), 40, 2),
    ] {
        let config = TrainConfig {
            batch: 50,
            ema: Some(0.9),
            data,
            ..TrainConfig::default()
        };
        let state = State::new(config, hidden, blocks, ScheduleKind::SEED).expect("state");
        let plan = step_plan::<1000>(&state, hidden, blocks)
            .expect("plan")
            .plan;
        assert_order_independent(&plan);
    }
}
