//! The integer model's tiles ([`QModel`]): its kernels, lane types and packed layers.
//!
//! They have the float tiles' shape, lanes = samples, with int16 activations paired for
//! `vpmaddwd` (AVX2, AVX-512BW) or AVX-512 VNNI's `vpdpwssd`, and int32 sums: integer sums
//! are exact, so they may run in any order; the per-element requantization, GELU and residual
//! are the specification's (`tinyddpm_core::quant`), and the chain's reverse step the core's
//! f32 code, as on the float model. The integer time embedding is the core's, once per step.

pub(super) mod kernel;
pub(super) mod packed;
pub(super) mod vectors;

use rayon::prelude::*;
use tinyddpm_core::{Lanes, PredictNoise, QModel, Step};

use super::Simd;
use super::executor::{Executor, FRAME_LANES, Kernel, Prepare};
use packed::QLayers;

/// An integer model prepared: its packed layers and every step's integer time embedding
/// (the core's `QModel::time_embedding`) at `tembs[k·stride ..]`, `stride` the hidden width
/// rounded up to whole pairs (the padding unit's embedding is 0).
pub struct Integer {
    pub(in crate::batch) simd: Simd,
    pub(in crate::batch) layers: QLayers,
    pub(in crate::batch) tembs: Vec<i16>,
    pub(in crate::batch) stride: usize,
}

impl<const H: usize, const B: usize, const D: usize> Prepare for QModel<H, B, D> {
    fn prepare(&self, simd: Simd, steps: &[Step]) -> Kernel {
        let stride = H.next_multiple_of(2);
        let mut tembs = vec![0; steps.len() * stride];
        tembs
            .par_chunks_mut(stride)
            .zip(steps)
            .for_each(|(t, s)| t[..H].copy_from_slice(&self.time_embedding(s.t_input)));
        Kernel::Integer(Integer {
            simd,
            layers: QLayers::new(self, simd.tile_outputs()),
            tembs,
            stride,
        })
    }
}

impl<const H: usize, const B: usize> Executor for QModel<H, B> {
    fn lanes(&self) -> impl PredictNoise<Lanes<FRAME_LANES>> + '_ {
        self
    }
}
