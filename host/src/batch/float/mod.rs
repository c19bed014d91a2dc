//! The float model's tiles ([`Model`]): its kernels, lane types and packed layers.
//!
//! Identity with the core holds because each lane performs the scalar sequence: the dense
//! layers vectorise across samples or outputs, never across the summation index, multiply
//! and add are separate instructions, and GELU and the reverse update are the core's generic
//! code instantiated on the vector types (vectors.rs).

pub(super) mod kernel;
pub(super) mod packed;
pub(super) mod vectors;

use rayon::prelude::*;
use tinyddpm_core::{Model, Step};

use super::Simd;
use super::executor::{Kernel, Prepare};
use crate::flat::FlatModel;
use kernel::OUT_J;
use packed::Layers;

/// A float model prepared: its packed layers and every step's time embedding.
pub struct Float {
    pub(in crate::batch) simd: Simd,
    pub(in crate::batch) layers: Layers,
    pub(in crate::batch) tembs: Vec<f32>,
}

impl Float {
    /// `model` prepared for `simd` (available) and `steps`: each step's time embedding is the
    /// core's, computed once for every sample.
    pub(in crate::batch) fn new(simd: Simd, model: &FlatModel, steps: &[Step]) -> Self {
        let hidden = model.hidden();
        let mut tembs = vec![0.0; steps.len() * hidden];
        tembs
            .par_chunks_mut(hidden.max(1))
            .zip(steps)
            .for_each(|(temb, s)| model.time_embedding(s.t_input, temb));
        Self {
            simd,
            layers: Layers::new(model, simd.tile_outputs(), OUT_J),
            tembs,
        }
    }

    /// D: coordinates of a sample.
    pub(in crate::batch) fn dim(&self) -> usize {
        self.layers.dim()
    }
}

impl<const H: usize, const B: usize, const D: usize> Prepare for Model<H, B, D> {
    fn prepare(&self, simd: Simd, steps: &[Step]) -> Kernel {
        Kernel::Float(Float::new(simd, &FlatModel::of(self), steps))
    }
}
