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
use tinyddpm_core::{Lanes, Model, NoiseStream, PredictNoise, Step};

use super::Simd;
use super::executor::{Executor, FRAME_LANES};
use packed::Layers;

/// A float model prepared: its packed layers and every step's time embedding.
pub struct Float {
    simd: Simd,
    layers: Layers,
    tembs: Vec<f32>,
}

impl<const H: usize, const B: usize> Executor for Model<H, B> {
    type Prepared = Float;
    fn prepare(&self, simd: Simd, steps: &[Step]) -> Float {
        let tembs: Vec<[f32; H]> = steps
            .par_iter()
            .map(|s| self.time_embedding(s.t_input))
            .collect();
        Float {
            simd,
            layers: Layers::new(self, simd.tile_outputs(), 2),
            tembs: tembs.into_flattened(),
        }
    }
    fn run_tile(p: &Float, steps: &[Step], x: &mut [[f32; 2]], noise: &mut [NoiseStream]) {
        p.simd.float_tile(&p.layers, steps, &p.tembs, x, noise)
    }
    fn lanes(&self) -> impl PredictNoise<Lanes<FRAME_LANES>> + '_ {
        self
    }
}
