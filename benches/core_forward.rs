//! The core's scalar forward pass per sample-step (batch 1, one core): the reference every
//! fast path is measured against. Prints GFLOP/s and the fraction of one core's unfused
//! multiply-then-add peak, measured in the same process (`peak.rs`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tinyddpm_core::SeedModel;

mod peak;

/// Multiply-adds of one sample-step without / with the time embedding (docs/DESIGN.md).
const MACS_BODY: f64 = 98_816.0;
const MACS_TEMB: f64 = 16_512.0;

/// PyTorch's default `nn.Linear` init, U(±1/√fan_in): a realistic untrained model.
fn model() -> Box<SeedModel> {
    tinyddpm::train::pytorch_init(7)
}

fn report(name: &str, seconds: f64, macs: f64, peak: f64) {
    let gflops = 2.0 * macs / seconds / 1e9;
    println!(
        "{name}: {:.2} µs, {gflops:.2} GFLOP/s = {:.1} % of one core's measured unfused peak ({peak:.0} GFLOP/s)",
        seconds * 1e6,
        100.0 * gflops / peak
    );
}

fn bench(c: &mut Criterion) {
    let m = model();
    let temb = m.time_embedding(0.5);
    let mut g = c.benchmark_group("core_scalar");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("predict_noise", |b| {
        b.iter(|| m.predict_noise(black_box([0.3f32, -0.7]), black_box(&temb)))
    });
    g.bench_function("time_embedding", |b| {
        b.iter(|| m.time_embedding(black_box(0.5)))
    });
    g.finish();

    // A plain timing loop for the printed ratio (criterion's own estimate is in its report).
    let peak = peak::unfused_peak_gflops(1);
    let n = 20_000;
    let start = std::time::Instant::now();
    for i in 0..n {
        black_box(m.predict_noise(black_box([i as f32 * 1e-4, 0.5]), &temb));
    }
    report(
        "predict_noise (per sample-step)",
        start.elapsed().as_secs_f64() / n as f64,
        MACS_BODY,
        peak,
    );
    let start = std::time::Instant::now();
    for i in 0..n {
        black_box(m.time_embedding(black_box(i as f32 * 1e-5)));
    }
    report(
        "time_embedding (per step)",
        start.elapsed().as_secs_f64() / n as f64,
        MACS_TEMB,
        peak,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
