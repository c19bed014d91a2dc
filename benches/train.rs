//! Benchmark: one training step (forward, backward, Adam) of the seed model, batch 128.
//!
//! Besides criterion's estimate, prints the best and the median of five timed runs of many
//! steps as `train_step_ms_best=… train_step_ms_median=…` (read by
//! `benches/vs_torch_train.sh`), with the arithmetic rate and its fraction of this machine's
//! two-thread multiply-add peak, measured in the same process (`peak.rs`): unfused, and
//! fused (training may fuse, as matrixmultiply's FMA kernels do; on Intel the fused peak is
//! twice the unfused one, on AMD's separate multiply and add pipes about the same).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tinyddpm::train::{TrainConfig, Trainer};
use tinyddpm_core::{Schedule, ScheduleKind};

mod peak;

const H: usize = 128;
const B: usize = 3;
const BATCH: usize = 128;

/// Multiply-adds per example: forward, weight gradients (the same count) and the input
/// gradients of every layer but the two whose inputs are data (t and x).
const MACS_PER_EXAMPLE: usize = {
    let forward = H + H * H + 2 * H + 2 * B * H * H + 2 * H;
    let input_grads = H * H + 2 * B * H * H + 2 * H;
    2 * forward + input_grads
};
const FLOP_PER_STEP: f64 = (2 * MACS_PER_EXAMPLE * BATCH) as f64;

fn trainer() -> Trainer<1000> {
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("seed schedule");
    Trainer::new(TrainConfig::default(), H, B, &schedule).expect("seed configuration")
}

fn train_step(c: &mut Criterion) {
    let mut t = trainer();
    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements(FLOP_PER_STEP as u64));
    group.bench_function("step_seed_model_batch128 (elements = FLOP)", |b| {
        b.iter(|| black_box(t.step().expect("finite loss")))
    });
    group.finish();

    // `cargo bench -- --test` runs each bench once: keep the summary short there.
    let steps = if std::env::args().any(|a| a == "--test") {
        20
    } else {
        2000
    };
    let mut per_step: Vec<f64> = (0..5)
        .map(|_| {
            let mut t = trainer();
            let start = Instant::now();
            for _ in 0..steps {
                black_box(t.step().expect("finite loss"));
            }
            start.elapsed().as_secs_f64() / steps as f64
        })
        .collect();
    per_step.sort_by(f64::total_cmp);
    let (best, median) = (per_step[0], per_step[2]);
    let rate = FLOP_PER_STEP / best;
    let peak_flops = peak::unfused_peak_gflops(2) * 1e9;
    let fused_flops = peak::fused_peak_gflops(2) * 1e9;
    println!(
        "train_step_ms_best={:.4} train_step_ms_median={:.4} ({steps} steps, 5 runs; \
         {:.1} MFLOP/step; best {:.1} GFLOP/s, {:.0} % of the {:.0} GFLOP/s two-core unfused \
         peak, {:.0} % of the {:.0} GFLOP/s fused one; loadavg {})",
        best * 1e3,
        median * 1e3,
        FLOP_PER_STEP / 1e6,
        rate / 1e9,
        100.0 * rate / peak_flops,
        peak_flops / 1e9,
        100.0 * rate / fused_flops,
        fused_flops / 1e9,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim(),
    );
}

criterion_group!(benches, train_step);
criterion_main!(benches);
