//! The seed notebook's time-embedded MLP, weights in const-generic fixed arrays.
//!
//! ```text
//! temb = Linear(H,H)(GELU(Linear(1,H)(t/T)))           once per time step, shared
//! h    = GELU(Linear(2,H)(x)) + temb
//! B ×:   h = (GELU(Linear(H,H)(GELU(Linear(H,H)(h)))) + h + temb) / √2
//! ε̂    = Linear(H,2)(h)
//! ```
//! The time embedding does not depend on x: [`Model::time_embedding`] computes it once per
//! step and [`Model::predict_noise`] reuses it for any number of samples (lanes of `R`).

use crate::gelu::gelu;
use crate::linear::Linear;
use crate::real::Real;

/// One residual block: two H×H layers, each followed by GELU.
#[derive(Clone, Debug, PartialEq)]
pub struct Block<const H: usize> {
    /// `hidden_layers.i.0`
    pub first: Linear<H, H>,
    /// `hidden_layers.i.2`
    pub second: Linear<H, H>,
}

impl<const H: usize> Block<H> {
    /// Zero weights.
    pub const ZERO: Self = Self {
        first: Linear::ZERO,
        second: Linear::ZERO,
    };
}

/// The whole model: `H` hidden units, `B` residual blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<const H: usize, const B: usize> {
    /// `time_embed.embed.0`: t/T → H
    pub time_in: Linear<1, H>,
    /// `time_embed.embed.2`: H → H
    pub time_out: Linear<H, H>,
    /// `input_layer.0`: x → H
    pub input: Linear<2, H>,
    /// `hidden_layers.0 .. B`
    pub blocks: [Block<H>; B],
    /// `output_layer`: H → ε̂
    pub output: Linear<H, 2>,
}

/// The seed notebook's size: H = 128, B = 3, 116,482 parameters.
pub type SeedModel = Model<128, 3>;

/// `h / √2` as the notebook writes it (`h / math.sqrt(2)`: a true division by f32 √2).
const SQRT_2: f32 = core::f32::consts::SQRT_2;

impl<const H: usize, const B: usize> Model<H, B> {
    /// All parameters zero (a `const`, so a model can live in a `static`).
    pub const ZERO: Self = Self {
        time_in: Linear::ZERO,
        time_out: Linear::ZERO,
        input: Linear::ZERO,
        blocks: [Block::ZERO; B],
        output: Linear::ZERO,
    };

    /// Number of parameters.
    pub const PARAMS: usize = Linear::<1, H>::PARAMS
        + Linear::<H, H>::PARAMS
        + Linear::<2, H>::PARAMS
        + B * 2 * Linear::<H, H>::PARAMS
        + Linear::<H, 2>::PARAMS;

    /// The time embedding for network input `t_input` (= t/T), shared by every sample.
    pub fn time_embedding(&self, t_input: f32) -> [f32; H] {
        let mut hidden = [0.0f32; H];
        self.time_in.forward(&[t_input], &mut hidden);
        hidden.iter_mut().for_each(|v| *v = gelu(*v));
        let mut temb = [0.0f32; H];
        self.time_out.forward(&hidden, &mut temb);
        temb
    }

    /// Predicted noise ε̂(x, t) for the lanes of `x`, given that step's time embedding.
    pub fn predict_noise<R: Real>(&self, x: [R; 2], temb: &[f32; H]) -> [R; 2] {
        let mut h = [R::splat(0.0); H];
        let mut u = [R::splat(0.0); H];
        let mut v = [R::splat(0.0); H];
        self.input.forward(&x, &mut h);
        for (hj, &tj) in h.iter_mut().zip(temb) {
            *hj = gelu(*hj) + R::splat(tj);
        }
        for block in &self.blocks {
            block.first.forward(&h, &mut u);
            u.iter_mut().for_each(|a| *a = gelu(*a));
            block.second.forward(&u, &mut v);
            for ((hj, &vj), &tj) in h.iter_mut().zip(&v).zip(temb) {
                *hj = (gelu(vj) + *hj + R::splat(tj)) / R::splat(SQRT_2);
            }
        }
        let mut out = [R::splat(0.0); 2];
        self.output.forward(&h, &mut out);
        out
    }

    /// Every parameter in file (and PyTorch `state_dict`) order.
    pub fn for_each_param(&self, mut f: impl FnMut(f32)) {
        self.time_in.for_each_param(&mut f);
        self.time_out.for_each_param(&mut f);
        self.input.for_each_param(&mut f);
        for b in &self.blocks {
            b.first.for_each_param(&mut f);
            b.second.for_each_param(&mut f);
        }
        self.output.for_each_param(&mut f);
    }

    /// Every parameter in file order, mutably.
    pub fn for_each_param_mut(&mut self, mut f: impl FnMut(&mut f32)) {
        self.time_in.for_each_param_mut(&mut f);
        self.time_out.for_each_param_mut(&mut f);
        self.input.for_each_param_mut(&mut f);
        for b in &mut self.blocks {
            b.first.for_each_param_mut(&mut f);
            b.second.for_each_param_mut(&mut f);
        }
        self.output.for_each_param_mut(&mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_model_has_the_notebooks_parameter_count() {
        assert_eq!(SeedModel::PARAMS, 116_482);
        assert_eq!(core::mem::size_of::<SeedModel>(), 465_928);
    }
}
