//! A tile of samples through the core's chain: their points loaded into the tile's lanes,
//! every step run by `chain_in` with the tile's predictor, the results stored back — and,
//! for the reverse-process figure, the states before chosen steps kept.

use tinyddpm_core::units::MAX_DIM;
use tinyddpm_core::{NoiseStream, PredictNoiseIn, Real, Step, chain_in};

use super::float::vectors::{Lane, Tile};

/// The chain's states to keep: before each step `k` in `steps` (`k` equal to the number of
/// steps is the result), every sample's D values, appended to `rows` in `steps`' order.
pub(crate) struct Kept<'a> {
    /// Steps to keep the state before, ascending.
    pub(crate) steps: &'a [usize],
    /// The kept states: per kept step, the tile's samples one after another.
    pub(crate) rows: &'a mut Vec<f32>,
}

impl Kept<'_> {
    /// Keeps the state `x` before step `k` if `k` is one of the steps, for the first
    /// `samples` lanes.
    #[inline(always)]
    fn record<V: Lane, const S: usize>(&mut self, k: usize, x: &[Tile<V, S>], samples: usize) {
        for _ in self.steps.iter().filter(|&&s| s == k) {
            for i in 0..samples {
                self.rows.extend(x.iter().map(|c| c.lane(i)));
            }
        }
    }
}

/// Runs `steps` for up to `S·LANES` samples with `model`: `x` holds their x_T, `d` values a
/// sample, `noise` their streams (already past x_T's draw); `x` is overwritten with x_0.
/// Lanes past the samples given are padding (x = 0, z = 0) whose results are dropped.
#[inline(always)]
pub(crate) fn run_chain<V: Lane, const S: usize>(
    model: impl PredictNoiseIn<Tile<V, S>>,
    (steps, d): (&[Step], usize),
    x: &mut [f32],
    noise: &mut [NoiseStream],
    mut kept: Option<&mut Kept<'_>>,
) {
    let samples = noise.len();
    assert!(d <= MAX_DIM && x.len() == samples * d && samples <= S * V::LANES);
    let mut xv = [Tile([V::splat(0.0); S]); MAX_DIM];
    let xv = &mut xv[..d];
    for (i, p) in x.chunks_exact(d).enumerate() {
        for (c, &v) in xv.iter_mut().zip(p) {
            c.set_lane(i, v);
        }
    }
    chain_in(model, steps.iter().copied(), xv, noise, |k, x| {
        if let Some(kept) = kept.as_deref_mut() {
            kept.record(k, x, samples);
        }
    });
    for (i, p) in x.chunks_exact_mut(d).enumerate() {
        for (v, c) in p.iter_mut().zip(xv.iter()) {
            *v = c.lane(i);
        }
    }
}
