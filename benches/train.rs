//! Benchmark: one training step (forward, backward, Adam) at batch 128, for each shape of
//! `TRAIN_SHAPES` (default the seed's, `128x3x2`: H×B×D, comma-separated), on 1 and 2 threads.
//!
//! Besides criterion's estimate of the seed shape, prints one summary line per shape and
//! thread count, the best and the median of five timed runs of many steps, as
//! `train shape=H×B×D threads=N ms_best=… ms_median=… gflops=… unfused_peak=…% fused_peak=…%`
//! (read by `benches/vs_torch_train.sh`): the arithmetic rate and its fraction of this
//! machine's multiply-add peak on as many threads, measured in the same process (`peak.rs`),
//! unfused and fused (training may fuse, as matrixmultiply's FMA kernels do; on Intel the
//! fused peak is twice the unfused one, on AMD's separate multiply and add pipes about the
//! same). Points of D ≠ 2 are standard normal rows, sampled as a file's are. With
//! `--features profile`, a line more per shape and thread count says where a step's time goes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tinyddpm::data::{Normalize, PointSet, TrainingData};
use tinyddpm::train::{TrainConfig, Trainer};
use tinyddpm_core::{NoiseStream, Schedule, ScheduleKind};

mod peak;

const BATCH: usize = 128;

/// A model shape: H, B, D.
#[derive(Clone, Copy, Debug)]
struct Shape {
    hidden: usize,
    blocks: usize,
    dim: usize,
}

impl Shape {
    const SEED: Self = Self {
        hidden: 128,
        blocks: 3,
        dim: 2,
    };

    /// "128x3x2".
    fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('x').map(|v| v.parse::<usize>().ok());
        let shape = Self {
            hidden: it.next()??,
            blocks: it.next()??,
            dim: it.next()??,
        };
        it.next().is_none().then_some(shape)
    }

    /// Multiply-adds per example: forward, weight gradients (the same count) and the input
    /// gradients of every layer but the two whose inputs are data (t and x).
    fn macs_per_example(self) -> usize {
        let Self {
            hidden: h,
            blocks: b,
            dim: d,
        } = self;
        let forward = h + h * h + d * h + 2 * b * h * h + h * d;
        let input_grads = h * h + 2 * b * h * h + h * d;
        2 * forward + input_grads
    }

    fn flop_per_step(self) -> f64 {
        (2 * self.macs_per_example() * BATCH) as f64
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.hidden, self.blocks, self.dim)
    }
}

/// The shapes of `TRAIN_SHAPES`, or the seed's.
fn shapes() -> Vec<Shape> {
    match std::env::var("TRAIN_SHAPES") {
        Ok(list) => list
            .split(',')
            .map(|s| Shape::parse(s).unwrap_or_else(|| panic!("TRAIN_SHAPES: bad shape {s:?}")))
            .collect(),
        Err(_) => vec![Shape::SEED],
    }
}

/// The trainer of `shape` on `threads` threads: the Swiss roll for D = 2, else 10,000 standard
/// normal rows.
fn trainer(shape: Shape, threads: usize) -> Trainer<1000> {
    let schedule = Schedule::<1000>::new(ScheduleKind::SEED).expect("seed schedule");
    let data = match shape.dim {
        2 => TrainingData::default(),
        dim => {
            let mut noise = NoiseStream::new(7, 0);
            let mut values = vec![0.0; 10_000 * dim];
            noise.fill_gaussians(&mut values);
            let set = PointSet::new("normal", dim, values, Normalize::None).expect("points");
            TrainingData::Points(Arc::new(set))
        }
    };
    let config = TrainConfig {
        threads,
        data,
        ..TrainConfig::default()
    };
    Trainer::new(config, shape.hidden, shape.blocks, &schedule).expect("the configuration")
}

fn train_step(c: &mut Criterion) {
    let mut t = trainer(Shape::SEED, 0);
    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements(Shape::SEED.flop_per_step() as u64));
    group.bench_function("step_seed_model_batch128 (elements = FLOP)", |b| {
        b.iter(|| black_box(t.step().expect("finite loss")))
    });
    group.finish();

    // `cargo bench -- --test` runs each bench once: keep the summary short there.
    let quick = std::env::args().any(|a| a == "--test");
    for shape in shapes() {
        // About two seconds a run at the seed shape, on any shape.
        let steps = if quick {
            20
        } else {
            (2000.0 * Shape::SEED.flop_per_step() / shape.flop_per_step()).clamp(50.0, 20_000.0)
                as u64
        };
        for threads in [1, 2] {
            let mut per_step: Vec<f64> = (0..5)
                .map(|_| {
                    let mut t = trainer(shape, threads);
                    let start = Instant::now();
                    for _ in 0..steps {
                        black_box(t.step().expect("finite loss"));
                    }
                    start.elapsed().as_secs_f64() / steps as f64
                })
                .collect();
            per_step.sort_by(f64::total_cmp);
            let (best, median) = (per_step[0], per_step[2]);
            let rate = shape.flop_per_step() / best;
            let unfused = peak::unfused_peak_gflops(threads) * 1e9;
            let fused = peak::fused_peak_gflops(threads) * 1e9;
            println!(
                "train shape={shape} threads={threads} ms_best={:.4} ms_median={:.4} \
                 gflops={:.1} unfused_peak={:.0}% fused_peak={:.0}% ({steps} steps, 5 runs; \
                 {:.1} MFLOP/step; peaks {:.0} / {:.0} GFLOP/s; loadavg {})",
                best * 1e3,
                median * 1e3,
                rate / 1e9,
                100.0 * rate / unfused,
                100.0 * rate / fused,
                shape.flop_per_step() / 1e6,
                unfused / 1e9,
                fused / 1e9,
                std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .trim(),
            );
            #[cfg(feature = "profile")]
            breakdown(shape, threads, steps);
        }
    }
}

/// Where a step's time goes (feature `profile`): one more run of `steps` steps, each phase in
/// microseconds a step — the thread-summed time of the data, the forward and backward matrix
/// products and the rest of the chunks' passes (activations, their derivatives, residual
/// sums, the loss), the wall time of the gradient sum, Adam and the EMA, and what is left of
/// the step's wall time once the threads' work is shared out (hand-offs and imbalance).
#[cfg(feature = "profile")]
fn breakdown(shape: Shape, threads: usize, steps: u64) {
    use tinyddpm::train::profile::{self, Phase};
    let mut t = trainer(shape, threads);
    profile::take();
    for _ in 0..steps {
        black_box(t.step().expect("finite loss"));
    }
    let nanos = profile::take();
    let us = |p: Phase| nanos[p as usize] as f64 / 1e3 / steps as f64;
    let (data, chunk, adam, step) = (
        us(Phase::Data),
        us(Phase::Chunk),
        us(Phase::Adam),
        us(Phase::Step),
    );
    let (fwd, bwd) = (us(Phase::ForwardGemm), us(Phase::BackwardGemm));
    let rest = step - adam - (data + chunk) / threads as f64;
    println!(
        "train breakdown shape={shape} threads={threads} step_us={step:.1}: thread-summed data \
         {data:.1}, forward GEMMs {fwd:.1}, backward GEMMs {bwd:.1}, the rest of the passes \
         {:.1}; Adam+EMA {adam:.1}; hand-offs and imbalance {rest:.1}",
        chunk - fwd - bwd
    );
}

criterion_group!(benches, train_step);
criterion_main!(benches);
