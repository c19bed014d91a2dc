//! The latency path: one sample at a time, each layer vectorised across its outputs
//! (lanes = outputs), each lane the core's sequential sum.

use tinyddpm_core::condition::add_class;
use tinyddpm_core::{PredictNoiseIn, Step};

use super::Simd;
use super::float::kernel::Batch1Scratch;
use super::float::packed::Layers;
use crate::flat::FlatModel;

/// A float model of any shape prepared for one sample at a time (lowest latency): each
/// layer vectorised across its outputs, weights re-laid-out once. Same bits as the core's
/// `time_embedding` and `predict_noise`; a model conditioned on classes runs as its
/// unconditional model, ∅'s row added to every time embedding.
#[derive(Clone, Debug)]
pub struct Batch1 {
    simd: Simd,
    layers: Layers,
    scratch: Batch1Scratch,
    /// The time embedding of `t_input` (padded hidden length), when one was computed.
    temb: Vec<f32>,
    t_input: Option<f32>,
    /// ∅'s row of the class embedding (empty for an unconditional model).
    unconditional: Vec<f32>,
}

impl Batch1 {
    /// `model` prepared for `simd`. Panics if the CPU lacks it.
    pub fn new(model: &FlatModel, simd: Simd) -> Self {
        simd.require();
        let layers = Layers::new(model, simd.batch1_outputs(), simd.batch1_lanes());
        let scratch = Batch1Scratch::new(&layers);
        let temb = vec![0.0; layers.input.bias.len()];
        Self {
            simd,
            layers,
            scratch,
            temb,
            t_input: None,
            unconditional: model.class_row(None).unwrap_or_default().to_vec(),
        }
    }

    /// The time embedding for `t_input` (= t/T), H values: the core's
    /// `Model::time_embedding` (plus ∅'s row for a conditioned model).
    pub fn time_embedding(&mut self, t_input: f32) -> &[f32] {
        let Self {
            simd,
            layers,
            scratch,
            temb,
            ..
        } = self;
        simd.batch1_time_embedding(layers, t_input, scratch, temb);
        add_class(temb, &self.unconditional);
        self.t_input = Some(t_input);
        &self.temb[..self.layers.input.outputs]
    }

    /// Predicted noise ε̂(x, t) into `eps` (both D long) at the time of the last
    /// [`Batch1::time_embedding`]: the core's `Model::predict_noise` for one sample.
    pub fn predict_noise(&mut self, x: &[f32], eps: &mut [f32]) {
        let Self {
            simd,
            layers,
            scratch,
            temb,
            ..
        } = self;
        simd.batch1_predict_noise(layers, x, temb, scratch, eps);
    }
}

/// The predictor of the core's chain and scores: the time embedding is computed when a
/// step's time differs from the last one's (the anomaly score evaluates each time several
/// times in a row).
impl PredictNoiseIn<f32> for Batch1 {
    fn predict_noise_in(&mut self, _k: usize, step: &Step, x: &[f32], eps: &mut [f32]) {
        if self.t_input != Some(step.t_input) {
            self.time_embedding(step.t_input);
        }
        self.predict_noise(x, eps);
    }
}
