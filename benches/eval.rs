//! Benchmark: scoring a million points with `tinyddpm::eval::evaluate` (the CSV parsing of
//! `tinyddpm eval` excluded), and the nearest-point search against the previous grid search.
//!
//! Criterion measures `evaluate` on 1,000,000 model-like points (true samples moved by up to
//! ±0.1, one in a hundred anywhere in [−2, 2]²). A summary then prints the best of three runs
//! as points per second, and times `nearest` against `GridSearch::nearest` (the previous
//! method) side by side on the first `SUBSET` points, both over rayon's threads, as a
//! speed-up. `cargo bench --bench eval -- --test` is a quick smoke run.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use tinyddpm::data::{DataSet, true_samples};
use tinyddpm::eval::{ENERGY_CAP, GridSearch, evaluate, nearest};

mod machine;
use machine::{best_of, cpu_name, load_average};

/// Points of the scoring job.
const POINTS: usize = 1_000_000;
/// Points on which the previous search is timed (~6–11 µs each on one core).
const SUBSET: usize = 20_000;

/// `n` model-like points, a pure function of `n`.
fn points(n: usize) -> Vec<[f32; 2]> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut uniform =
        |lo: f32, hi: f32| lo + (hi - lo) * (rng.next_u32() >> 8) as f32 / 16_777_216.0;
    true_samples(DataSet::SwissRoll, n, 1)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 100 == 0 {
                [uniform(-2.0, 2.0), uniform(-2.0, 2.0)]
            } else {
                [p[0] + uniform(-0.1, 0.1), p[1] + uniform(-0.1, 0.1)]
            }
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let (n, subset) = if quick {
        (20_000, 2_000)
    } else {
        (POINTS, SUBSET)
    };
    let samples = points(n);
    let reference = true_samples(DataSet::SwissRoll, ENERGY_CAP, 2);

    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let mut group = c.benchmark_group("eval");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(format!("evaluate_{n}_points"), |b| {
        b.iter(|| black_box(evaluate(&samples, &reference).expect("finite points")))
    });
    group.finish();
    c.final_summary();

    let scoring = best_of(3, || {
        black_box(evaluate(&samples, &reference).expect("finite points"));
    });
    let subset: Vec<[f64; 2]> = samples[..subset]
        .iter()
        .map(|p| [p[0] as f64, p[1] as f64])
        .collect();
    let grid = GridSearch::new();
    let new = best_of(3, || {
        black_box(subset.par_iter().map(|&p| nearest(p)).collect::<Vec<_>>());
    });
    let old = best_of(3, || {
        black_box(
            subset
                .par_iter()
                .map(|&p| grid.nearest(p))
                .collect::<Vec<_>>(),
        );
    });
    let per_point = |t: f64| t / subset.len() as f64 * 1e9;
    println!(
        "eval_points_per_s={:.3e} eval_{n}_s={scoring:.3} nearest_speedup={:.1} \
         (nearest {:.0} ns/point, previous grid search {:.0} ns/point on {} points; \
         {} rayon threads; {}; loadavg {})",
        n as f64 / scoring,
        old / new,
        per_point(new),
        per_point(old),
        subset.len(),
        rayon::current_num_threads(),
        cpu_name(),
        load_average(),
    );
}
