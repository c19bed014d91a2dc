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
use tinyddpm_core::units::MAX_DIM;
use tinyddpm_core::{Lanes, PredictNoiseIn, QModel, Step};

use crate::flatq::FlatQModel;

use super::Simd;
use super::executor::{Kernel, Prepare};
use crate::batch::float::vectors::Tile;
use kernel::QTileBuffers;
use packed::QLayers;
use vectors::PortableI32;

/// An integer model prepared: its packed layers and every step's integer time embedding
/// (the core's `time_embedding_in`) at `tembs[k·stride ..]`, `stride` the hidden width
/// rounded up to whole pairs (the padding unit's embedding is 0).
pub struct Integer {
    pub(in crate::batch) simd: Simd,
    pub(in crate::batch) layers: QLayers,
    pub(in crate::batch) tembs: Vec<i16>,
    pub(in crate::batch) stride: usize,
}

impl Prepare for FlatQModel {
    fn prepare(&self, simd: Simd, steps: &[Step]) -> Kernel {
        let hidden = self.layout().hidden;
        let stride = hidden.next_multiple_of(2);
        let mut tembs = vec![0; steps.len() * stride];
        tembs
            .par_chunks_mut(stride)
            .zip(steps)
            .for_each(|(t, s)| self.time_embedding(s.t_input, &mut t[..hidden]));
        Kernel::Integer(Integer {
            simd,
            layers: QLayers::new(&self.params(), simd.tile_outputs()),
            tembs,
            stride,
        })
    }
}

/// The const-generic model, through its sections: one preparation for every integer model.
impl<const H: usize, const B: usize, const D: usize> Prepare for QModel<H, B, D> {
    fn prepare(&self, simd: Simd, steps: &[Step]) -> Kernel {
        FlatQModel::of(self).prepare(simd, steps)
    }
}

/// An integer model of any shape for one sample at a time (the anomaly score's predictor):
/// the portable integer tile on one lane, each step's time embedding computed when a step's
/// time differs from the last one's. Same bits as the core's `QModel::predict_noise`.
#[derive(Clone, Debug)]
pub struct QBatch1 {
    model: FlatQModel,
    layers: QLayers,
    buf: QTileBuffers<PortableI32<1>, 1>,
    /// The time embedding of `t_input`, padded to whole pairs.
    temb: Vec<i16>,
    t_input: Option<f32>,
}

/// Outputs per block of the one-lane tile's layers (any even width gives the same sums).
const BATCH1_J: usize = 2;

impl QBatch1 {
    /// `model` prepared for one sample at a time.
    pub fn new(model: &FlatQModel) -> Self {
        let layout = model.layout();
        let hidden = layout.hidden;
        Self {
            model: model.clone(),
            layers: QLayers::new(&model.params(), BATCH1_J),
            buf: QTileBuffers::new(hidden.div_ceil(2), layout.dim),
            temb: vec![0; hidden.next_multiple_of(2)],
            t_input: None,
        }
    }
}

impl PredictNoiseIn<f32> for QBatch1 {
    fn predict_noise_in(&mut self, _k: usize, step: &Step, x: &[f32], eps: &mut [f32]) {
        if self.t_input != Some(step.t_input) {
            let hidden = self.model.layout().hidden;
            self.model
                .time_embedding(step.t_input, &mut self.temb[..hidden]);
            self.t_input = Some(step.t_input);
        }
        let d = x.len().min(MAX_DIM);
        let mut xs = [Tile([Lanes([0.0])]); MAX_DIM];
        for (t, &v) in xs.iter_mut().zip(x) {
            *t = Tile([Lanes([v])]);
        }
        let mut out = [Tile([Lanes([0.0])]); MAX_DIM];
        kernel::predict_noise_tile::<PortableI32<1>, 1, BATCH1_J>(
            &self.layers,
            &xs[..d],
            &self.temb,
            &mut self.buf,
            &mut out[..d],
        );
        for (e, t) in eps.iter_mut().zip(&out[..d]) {
            *e = t.0[0].0[0];
        }
    }
}
