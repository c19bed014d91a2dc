//! The batched host sampler (being written: see issue 3). Until then, a reference
//! implementation with the final signature: every sample is the core's scalar `sample`.

use rayon::prelude::*;
use tinyddpm_core::{Model, Sampler, Schedule};

/// Where each sample starts.
#[derive(Clone, Copy, Debug)]
pub enum Init<'a> {
    /// x_T from each sample's own noise stream.
    Noise,
    /// x_T given, one per sample (`len == count`).
    Given(&'a [[f32; 2]]),
}

/// Samples `first_index .. first_index + count` of `seed`, bit-identical to the core's
/// `sample`/`sample_from`, on `threads` threads (0 = all cores). `progress` is called with
/// the number of finished samples from any thread.
#[allow(clippy::too_many_arguments)]
pub fn sample_batch<const H: usize, const B: usize, const T: usize>(
    model: &Model<H, B>,
    schedule: &Schedule<T>,
    sampler: &Sampler,
    init: Init<'_>,
    seed: u64,
    first_index: u64,
    count: usize,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<[f32; 2]> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| {
        (0..count)
            .into_par_iter()
            .map(|i| {
                let index = first_index + i as u64;
                let x = match init {
                    Init::Noise => tinyddpm_core::sample(model, schedule, sampler, seed, index),
                    Init::Given(xs) => {
                        tinyddpm_core::sample_from(model, schedule, sampler, xs[i], seed, index)
                    }
                };
                progress(1);
                x
            })
            .collect()
    })
}
