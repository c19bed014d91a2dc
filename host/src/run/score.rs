//! The scoring job: the core's [`anomaly_score`] of every point of a set, in parallel — each
//! point's score depends on its index and nothing else, so any thread count gives the same
//! bits, and they are the bits of the core's scalar function on any other backend.

use rayon::prelude::*;
use tinyddpm_core::{PredictNoise, Schedule, Units, anomaly_score};

use super::T;

/// Points scored per parallel task: enough work (8 forward passes each) to pay for the
/// hand-off.
const CHUNK: usize = 256;

/// The anomaly score of each of `points` (in the data's units; `units` from the model file),
/// point `i` noised from stream `i` of `seed`.
pub fn scores<M: Sync>(
    model: &M,
    schedule: &Schedule<T>,
    units: Option<&Units>,
    seed: u64,
    points: &[[f32; 2]],
) -> Vec<f32>
where
    for<'a> &'a M: PredictNoise<f32>,
{
    let mut out = vec![0.0; points.len()];
    out.par_chunks_mut(CHUNK)
        .zip(points.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(chunk, (out, points))| {
            for (i, (o, &x)) in out.iter_mut().zip(points).enumerate() {
                let index = (chunk * CHUNK + i) as u64;
                *o = anomaly_score(model, schedule, units, seed, index, x);
            }
        });
    out
}
