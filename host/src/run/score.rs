//! The scoring job: the core's [`anomaly_score_in`] of every point of a set, in parallel —
//! each point's score depends on its index and nothing else, so any thread count gives the
//! same bits, and they are the bits of the core's scalar function on any other backend.

use rayon::prelude::*;
use tinyddpm_core::{PredictNoiseIn, Schedule, Units, anomaly_score_in};

use super::T;

/// Points scored per parallel task: enough work (32 forward passes each) to pay for the
/// hand-off and for a fresh predictor.
const CHUNK: usize = 256;

/// The anomaly score of each point of `points` (`dim` values a point, in the data's units;
/// `units` from the model file), point `i` noised from stream `i` of `seed`. `predictor`
/// makes the model's predictor for one task (a [`crate::batch::Batch1`] of the float
/// model, or the core's model behind [`tinyddpm_core::Fixed`]).
pub fn scores<P: PredictNoiseIn<f32>>(
    predictor: impl Fn() -> P + Sync,
    schedule: &Schedule<T>,
    units: Option<&Units>,
    seed: u64,
    points: &[f32],
    dim: usize,
) -> Vec<f32> {
    let dim = dim.max(1);
    let mut out = vec![0.0; points.len() / dim];
    out.par_chunks_mut(CHUNK)
        .zip(points.par_chunks(CHUNK * dim))
        .enumerate()
        .for_each(|(chunk, (out, points))| {
            let mut model = predictor();
            for (i, (o, x)) in out.iter_mut().zip(points.chunks_exact(dim)).enumerate() {
                let index = (chunk * CHUNK + i) as u64;
                *o = anomaly_score_in(&mut model, schedule, units, seed, index, x);
            }
        });
    out
}
