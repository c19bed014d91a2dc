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
use tinyddpm_core::condition::Evaluations;
use tinyddpm_core::{Guidance, Model, Step};

use super::Simd;
use super::executor::{Kernel, Prepare};
use crate::flat::FlatModel;
use kernel::OUT_J;
pub(crate) use kernel::Run;
use packed::Layers;

/// A float model prepared: its packed layers and every step's time embedding, for the
/// class asked for, and for ∅ too when guidance needs both predictions.
pub struct Float {
    pub(in crate::batch) simd: Simd,
    pub(in crate::batch) layers: Layers,
    pub(in crate::batch) tembs: Vec<f32>,
    /// ∅'s embeddings and the weight w, for a guided sample of two evaluations a step.
    pub(in crate::batch) guided: Option<(Vec<f32>, f32)>,
}

impl Float {
    /// `model` prepared for `simd` (available) and `steps`, its samples drawn for
    /// `guidance` (`None`: unconditionally, from ∅ for a conditioned model): each step's
    /// time embedding is the core's, computed once for every sample; `None` for a class the
    /// model does not have.
    pub(in crate::batch) fn new(
        simd: Simd,
        model: &FlatModel,
        steps: &[Step],
        guidance: Option<Guidance>,
    ) -> Option<Self> {
        let tembs = |class| {
            let row = model.class_row(class)?;
            let hidden = model.hidden();
            let mut tembs = vec![0.0; steps.len() * hidden];
            tembs
                .par_chunks_mut(hidden.max(1))
                .zip(steps)
                .for_each(|(temb, s)| model.class_time_embedding(s.t_input, row, temb));
            Some(tembs)
        };
        let (tembs, guided) = match Guidance::evaluations(guidance) {
            Evaluations::One(class) => (tembs(class)?, None),
            Evaluations::Two(g) => (tembs(Some(g.class))?, Some((tembs(None)?, g.weight))),
        };
        Some(Self {
            simd,
            layers: Layers::new(model, simd.tile_outputs(), OUT_J),
            tembs,
            guided,
        })
    }

    /// What a tile runs with: the step table, and the embeddings it predicts with.
    pub(in crate::batch) fn run<'a>(&'a self, steps: &'a [Step]) -> Run<'a> {
        Run {
            steps,
            tembs: &self.tembs,
            guided: self.guided.as_ref().map(|(t, w)| (&t[..], *w)),
        }
    }

    /// D: coordinates of a sample.
    pub(in crate::batch) fn dim(&self) -> usize {
        self.layers.dim()
    }
}

impl<const H: usize, const B: usize, const D: usize> Prepare for Model<H, B, D> {
    fn prepare(&self, simd: Simd, steps: &[Step]) -> Kernel {
        let unconditional = Float::new(simd, &FlatModel::of(self), steps, None);
        Kernel::Float(unconditional.expect("an unconditional model draws from ∅"))
    }
}
