//! The latency path: one sample at a time, each layer vectorised across its outputs
//! (lanes = outputs), each lane the core's sequential sum.

use tinyddpm_core::Model;

use super::Simd;
use super::float::kernel::Batch1Scratch;
use super::float::packed::Layers;
use crate::flat::FlatModel;

/// A model prepared for one sample at a time (lowest latency): each layer vectorised across
/// its outputs, weights re-laid-out once. Same bits as the core's `time_embedding` and
/// `predict_noise`.
#[derive(Clone, Debug)]
pub struct Batch1<const H: usize, const B: usize> {
    simd: Simd,
    layers: Layers,
    scratch: Batch1Scratch,
    temb: Vec<f32>,
}

impl<const H: usize, const B: usize> Batch1<H, B> {
    /// `model` prepared for `simd`. Panics if the CPU lacks it.
    pub fn new(model: &Model<H, B>, simd: Simd) -> Self {
        simd.require();
        let flat = FlatModel::of(model);
        let layers = Layers::new(&flat, simd.batch1_outputs(), simd.batch1_lanes());
        let scratch = Batch1Scratch::new(&layers);
        let temb = vec![0.0; layers.input.bias.len()];
        Self {
            simd,
            layers,
            scratch,
            temb,
        }
    }

    /// The time embedding for `t_input` (= t/T): the core's `Model::time_embedding`.
    pub fn time_embedding(&mut self, t_input: f32) -> [f32; H] {
        let Self {
            simd,
            layers,
            scratch,
            temb,
        } = self;
        simd.batch1_time_embedding(layers, t_input, scratch, temb);
        core::array::from_fn(|j| temb[j])
    }

    /// Predicted noise ε̂(x, t) given that step's time embedding: the core's
    /// `Model::predict_noise` for one sample.
    pub fn predict_noise(&mut self, x: [f32; 2], temb: &[f32; H]) -> [f32; 2] {
        let Self {
            simd,
            layers,
            scratch,
            temb: padded,
        } = self;
        padded[..H].copy_from_slice(temb);
        let mut eps = [0.0; 2];
        simd.batch1_predict_noise(layers, &x, padded, scratch, &mut eps);
        eps
    }
}
