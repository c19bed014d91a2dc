//! Benchmark: `tinyddpm::scores::compare` on 10,000 × 10,000 points (every score: sliced
//! W2, MMD², energy distance, precision/recall/density/coverage) at d = 2 and d = 16.
//!
//! Criterion measures each width; a summary then prints the best of three runs per width
//! with the thread count, the CPU and the load. `cargo bench --bench scores -- --test` is a
//! quick smoke run (1,000 points).

use std::hint::black_box;

use criterion::Criterion;
use tinyddpm::scores::{Points, compare};

mod machine;
use machine::{best_of, cpu_name, load_average};

/// Points of each side.
const POINTS: usize = 10_000;

/// `n` points of N(shift, I) in `dim` coordinates ([`Points::gaussian`]).
fn cloud(n: usize, dim: usize, seed: u64, shift: f32) -> Points {
    Points::gaussian(n, dim, seed, shift).expect("finite points of 1 to 16 coordinates")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let n = if quick { 1_000 } else { POINTS };
    let sets: Vec<(usize, Points, Points)> = [2, 16]
        .into_iter()
        .map(|dim| (dim, cloud(n, dim, 1, 0.1), cloud(n, dim, 2, 0.0)))
        .collect();

    let mut c = Criterion::default().configure_from_args().sample_size(10);
    let mut group = c.benchmark_group("scores");
    for (dim, fake, real) in &sets {
        group.bench_function(format!("compare_{n}x{n}_d{dim}"), |b| {
            b.iter(|| black_box(compare(fake, real).expect("valid sets")))
        });
    }
    group.finish();
    c.final_summary();

    let times: Vec<String> = sets
        .iter()
        .map(|(dim, fake, real)| {
            let t = best_of(3, || {
                black_box(compare(fake, real).expect("valid sets"));
            });
            format!("scores_{n}x{n}_d{dim}_s={t:.3}")
        })
        .collect();
    println!(
        "{} ({} rayon threads; {}; loadavg {})",
        times.join(" "),
        rayon::current_num_threads(),
        cpu_name(),
        load_average(),
    );
}
