//! Benchmark: the host sampler's throughput (DDPM-1000, DDIM-50) and batch-1 latency, for the
//! float model and its quantized integer model.
//!
//! Criterion measures each job; a summary then times the same jobs directly (best of a few
//! runs) and prints GFLOP/s = 2 × multiply-adds / time against this machine's unfused
//! multiply-then-add peak for the path's own vector width, measured in the same process
//! (`peak.rs`). `TINYDDPM_SIMD=avx2` measures the AVX2 path on a CPU that also has AVX-512;
//! `TINYDDPM_BENCH_NO_INT=1` skips the integer table. The DDPM job is measured on
//! `DDPM_SAMPLES` samples and scaled to 10,000; `TINYDDPM_BENCH_FULL=1` also runs the full
//! 10,000 × 1,000 job once. The integer table runs each job on the float and the integer model
//! alternately (best and median of a few runs each, so that both see the same load) and prints
//! the integer/float throughput ratio, on every integer path this CPU has.
//! `cargo bench --bench sampler -- --test` is a quick smoke run;
//! `-- none` skips criterion and prints only the summary, whose `RESULT` lines
//! benches/vs_torch_sample.sh reads.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;

mod peak;
use tinyddpm::batch::{self, Batch1, BatchModel, Init, SampleRequest, Simd};
use tinyddpm::flat::FlatModel;
use tinyddpm::quantize::{Calibration, quantize_model};
use tinyddpm_core::{QSeedModel, Sampler, Schedule, ScheduleKind, SeedModel};

/// Multiply-adds of one sample-step's forward pass (time embedding shared).
const MACS_PER_SAMPLE_STEP: f64 = 98_816.0;
/// Multiply-adds of one time embedding.
const MACS_TEMB: f64 = 16_512.0;
/// Samples of the measured DDPM job (a multiple of the AVX-512 tile and of 2 threads).
const DDPM_SAMPLES: usize = 960;
/// Samples of the full jobs.
const SAMPLES: usize = 10_000;

/// PyTorch's default `nn.Linear` init, U(±1/√fan_in): a realistic untrained model.
fn model() -> Box<SeedModel> {
    tinyddpm::train::pytorch_init(7)
}

struct Job {
    name: &'static str,
    sampler: Sampler,
    count: usize,
}

const JOBS: [Job; 2] = [
    Job {
        name: "ddpm1000",
        sampler: Sampler::Ddpm,
        count: DDPM_SAMPLES,
    },
    Job {
        name: "ddim50",
        sampler: Sampler::DDIM_DEFAULT,
        count: SAMPLES,
    },
];

/// Runs of each job in the integer table.
const RUNS: usize = 5;

fn run<M: BatchModel<128, 3>>(
    model: &M,
    s: &Schedule<1000>,
    job: &Job,
    simd: Simd,
    threads: usize,
) {
    black_box(
        batch::sample_with(
            simd,
            &SampleRequest {
                model,
                schedule: s,
                sampler: &job.sampler,
                init: Init::Noise,
                seed: 42,
                first: 0,
                count: job.count,
            },
            threads,
            &|_| {},
        )
        .expect("worker threads"),
    );
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("runs")
}

/// The best and the median of `times`.
fn best_median(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

fn gflops(macs: f64, time: Duration) -> f64 {
    2.0 * macs / time.as_secs_f64() / 1e9
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

/// The peak that bounds `simd`: the unfused multiply-add limit of its own vector width.
fn path_peak(simd: Simd, threads: usize) -> f64 {
    match simd {
        Simd::Avx512Vnni | Simd::Avx512 => peak::peak_gflops(peak::Width::Avx512, threads, false),
        Simd::Avx2 => peak::peak_gflops(peak::Width::Avx2, threads, false),
        Simd::Portable => peak::unfused_peak_gflops(threads),
    }
}

/// The float path to measure: `TINYDDPM_SIMD=avx2|avx512|portable` forces one (to tune the
/// AVX2 tiles on a machine that also has AVX-512), else the widest.
fn float_path() -> Simd {
    let forced = match std::env::var("TINYDDPM_SIMD").as_deref() {
        Ok("avx512") => Some(Simd::Avx512),
        Ok("avx2") => Some(Simd::Avx2),
        Ok("portable") => Some(Simd::Portable),
        _ => None,
    };
    forced
        .filter(|s| s.is_available())
        .unwrap_or_else(Simd::detect)
}

fn summary(model: &SeedModel, s: &Schedule<1000>, simd: Simd) {
    let peaks = [1, 2].map(|threads| path_peak(simd, threads));
    println!(
        "\nsummary ({simd:?}); measured unfused peak of its width {:.0} GFLOP/s on 1 thread, {:.0} on 2; load {}",
        peaks[0],
        peaks[1],
        loadavg().trim()
    );
    for (threads, peak) in [1, 2].into_iter().zip(peaks) {
        let peak = peak.round();
        for job in &JOBS {
            let steps = job.sampler.num_steps(1000) as f64;
            let macs = job.count as f64 * steps * MACS_PER_SAMPLE_STEP + steps * MACS_TEMB;
            let t = best_of(3, || run(model, s, job, simd, threads));
            let g = gflops(macs, t);
            let full = t.as_secs_f64() * SAMPLES as f64 / job.count as f64;
            println!(
                "{:9} {} thread(s): {:>6} samples in {:8.3} s ({:.3} s per 10,000): \
                 {g:6.1} GFLOP/s, {:4.1} % of {peak} GFLOP/s",
                job.name,
                threads,
                job.count,
                t.as_secs_f64(),
                full,
                100.0 * g / peak
            );
            if threads == 2 {
                println!("RESULT {}_per10k_s {full}", job.name);
            }
        }
    }
    let mut b1 = Batch1::new(&FlatModel::of(model), simd);
    b1.time_embedding(0.5);
    let mut eps = [0.0f32; 2];
    let calls = 200_000;
    let t = best_of(3, || {
        for i in 0..calls {
            b1.predict_noise(black_box(&[i as f32 * 1e-6, 0.5]), &mut eps);
            black_box(eps);
        }
    }) / calls;
    let t2 = best_of(3, || {
        for i in 0..calls {
            b1.time_embedding(black_box(0.5));
            b1.predict_noise(black_box(&[i as f32 * 1e-6, 0.5]), &mut eps);
            black_box(eps);
        }
    }) / calls;
    println!(
        "batch-1 forward: {:.3} µs with a precomputed time embedding ({:.1} GFLOP/s), \
         {:.3} µs including it",
        t.as_secs_f64() * 1e6,
        gflops(MACS_PER_SAMPLE_STEP, t),
        t2.as_secs_f64() * 1e6
    );
    println!("RESULT batch1_us {}", t.as_secs_f64() * 1e6);
    println!("RESULT batch1_temb_us {}", t2.as_secs_f64() * 1e6);
    if std::env::var_os("TINYDDPM_BENCH_FULL").is_some() {
        let job = Job {
            name: "ddpm1000-full",
            sampler: Sampler::Ddpm,
            count: SAMPLES,
        };
        let t = best_of(1, || run(model, s, &job, simd, 0));
        let g = gflops(SAMPLES as f64 * 1000.0 * MACS_PER_SAMPLE_STEP, t);
        println!(
            "full DDPM 10,000 × 1,000, all cores: {:.3} s, {g:.1} GFLOP/s, {:.1} % of {:.0}; load {}",
            t.as_secs_f64(),
            100.0 * g / peaks[1],
            peaks[1],
            loadavg().trim()
        );
        println!("RESULT ddpm1000_full_s {}", t.as_secs_f64());
    }
}

/// Float against integer on the same jobs, `RUNS` alternating runs each: samples per second,
/// best and median, and the ratio of the bests (and of the medians).
fn integer_summary(model: &SeedModel, q: &QSeedModel, s: &Schedule<1000>) {
    println!(
        "\nweights read per forward pass: f32 {} B (model {} B); int8 {} B as stored \
         (model {} B), {} B as the integer tiles read them (int16 pairs)",
        MACS_PER_SAMPLE_STEP as usize * 4,
        std::mem::size_of::<SeedModel>(),
        MACS_PER_SAMPLE_STEP as usize,
        QSeedModel::BYTES,
        MACS_PER_SAMPLE_STEP as usize * 2
    );
    let float_simd = Simd::detect();
    let paths: Vec<Simd> = Simd::ALL
        .into_iter()
        .filter(|p| p.is_available() && *p != Simd::Portable)
        .collect();
    for threads in [1, 2] {
        for job in &JOBS {
            let per_s = |t: Duration| job.count as f64 / t.as_secs_f64();
            let mut float = Vec::new();
            let mut int: Vec<Vec<Duration>> = vec![Vec::new(); paths.len()];
            for _ in 0..RUNS {
                float.push(best_of(1, || run(model, s, job, float_simd, threads)));
                for (times, &p) in int.iter_mut().zip(&paths) {
                    times.push(best_of(1, || run(q, s, job, p, threads)));
                }
            }
            let (fb, fm) = best_median(float);
            println!(
                "{:9} {threads} thread(s): float {float_simd:?} {:9.0} samples/s best, {:9.0} median; load {}",
                job.name,
                per_s(fb),
                per_s(fm),
                loadavg().trim()
            );
            for (times, p) in int.into_iter().zip(&paths) {
                let (ib, im) = best_median(times);
                println!(
                    "{:9} {threads} thread(s): int {p:?} {:9.0} samples/s best, {:9.0} median: \
                     {:.2}× float (best), {:.2}× (median)",
                    job.name,
                    per_s(ib),
                    per_s(im),
                    fb.as_secs_f64() / ib.as_secs_f64(),
                    fm.as_secs_f64() / im.as_secs_f64()
                );
                if threads == 2 && *p == Simd::detect() {
                    println!(
                        "RESULT int_{}_ratio {}",
                        job.name,
                        fb.as_secs_f64() / ib.as_secs_f64()
                    );
                }
            }
        }
    }
}

fn main() {
    let model = model();
    let s = Schedule::<1000>::new(ScheduleKind::SEED).expect("schedule");
    let simd = float_path();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    for job in &JOBS {
        c.bench_function(&format!("sample/{}/{}", job.name, job.count), |b| {
            b.iter(|| run(&*model, &s, job, simd, 0))
        });
    }
    let mut b1 = Batch1::new(&FlatModel::of(&*model), simd);
    b1.time_embedding(0.5);
    let mut eps = [0.0f32; 2];
    c.bench_function("forward/batch1", |b| {
        b.iter(|| {
            b1.predict_noise(black_box(&[0.3, -0.2]), &mut eps);
            black_box(eps)
        })
    });
    c.bench_function("forward/batch1+temb", |b| {
        b.iter(|| {
            b1.time_embedding(black_box(0.5));
            b1.predict_noise(black_box(&[0.3, -0.2]), &mut eps);
            black_box(eps)
        })
    });
    c.final_summary();
    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    if !test_mode {
        summary(&model, &s, simd);
        if std::env::var_os("TINYDDPM_BENCH_NO_INT").is_none() {
            let (q, _) = quantize_model(&*model, &s, &Calibration::default()).expect("quantizable");
            integer_summary(&model, &q, &s);
        }
    }
}
