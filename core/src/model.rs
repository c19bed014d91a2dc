//! The seed notebook's time-embedded MLP, weights in const-generic fixed arrays, on points x of
//! D coordinates (the notebook's D = 2):
//!
//! ```text
//! temb = Linear(H,H)(GELU(Linear(1,H)(t/T)))           once per time step, shared
//! h    = GELU(Linear(D,H)(x)) + temb
//! B ×:   h = (GELU(Linear(H,H)(GELU(Linear(H,H)(h)))) + h + temb) / √2
//! ε̂    = Linear(H,D)(h)
//! ```
//! D changes only the input and output layers' widths: every sum keeps its order, so a
//! `Model<H, B>` (D = 2 by default) computes the bits it always did.
//! The time embedding does not depend on x: [`Model::time_embedding`] computes it once per
//! step and [`Model::predict_noise`] reuses it for any number of samples (lanes of `R`).

use core::fmt;

use crate::gelu::gelu;
use crate::layout::Layout;
use crate::linear::{Linear, Tensors, dense};
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

/// A layer of the model, named as in the seed notebook's PyTorch module tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `time_embed.embed.0`
    TimeIn,
    /// `time_embed.embed.2`
    TimeOut,
    /// `input_layer.0`
    Input,
    /// `hidden_layers.{i}.0`
    BlockFirst(usize),
    /// `hidden_layers.{i}.2`
    BlockSecond(usize),
    /// `output_layer`
    Output,
}

/// A tensor's PyTorch `state_dict` key, e.g. `hidden_layers.1.2.weight`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorName {
    /// A layer's weight, `[out, in]`.
    Weight(Layer),
    /// A layer's bias, `[out]`.
    Bias(Layer),
    /// The class embedding of a conditioned model, `[C + 1, H]` (`class_embed.weight`).
    ClassEmbedding,
}

impl TensorName {
    pub(crate) const fn weight(layer: Layer) -> Self {
        Self::Weight(layer)
    }

    pub(crate) const fn bias(layer: Layer) -> Self {
        Self::Bias(layer)
    }

    /// The class embedding's name: no layer owns it.
    pub const CLASS_EMBEDDING: Self = Self::ClassEmbedding;

    /// The layer whose weight or bias this is; `None` for the class embedding.
    pub const fn layer(&self) -> Option<Layer> {
        match *self {
            Self::Weight(layer) | Self::Bias(layer) => Some(layer),
            Self::ClassEmbedding => None,
        }
    }

    /// Whether this is a layer's bias.
    pub const fn is_bias(&self) -> bool {
        matches!(self, Self::Bias(_))
    }
}

impl fmt::Display for Layer {
    /// The layer's PyTorch module path, e.g. `hidden_layers.1.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Layer::TimeIn => f.write_str("time_embed.embed.0"),
            Layer::TimeOut => f.write_str("time_embed.embed.2"),
            Layer::Input => f.write_str("input_layer.0"),
            Layer::BlockFirst(i) => write!(f, "hidden_layers.{i}.0"),
            Layer::BlockSecond(i) => write!(f, "hidden_layers.{i}.2"),
            Layer::Output => f.write_str("output_layer"),
        }
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Weight(layer) => write!(f, "{layer}.weight"),
            Self::Bias(layer) => write!(f, "{layer}.bias"),
            Self::ClassEmbedding => f.write_str("class_embed.weight"),
        }
    }
}

/// The whole model: `H` hidden units, `B` residual blocks, points of `D` coordinates (the
/// notebook's 2 unless named: `Model<H, B>` is `Model<H, B, 2>`). A model file holds
/// 1 ≤ D ≤ [`MAX_DIM`](crate::units::MAX_DIM).
#[derive(Clone, Debug, PartialEq)]
pub struct Model<const H: usize, const B: usize, const D: usize = 2> {
    /// `time_embed.embed.0`: t/T → H
    pub time_in: Linear<1, H>,
    /// `time_embed.embed.2`: H → H
    pub time_out: Linear<H, H>,
    /// `input_layer.0`: x (D) → H
    pub input: Linear<D, H>,
    /// `hidden_layers.0 .. B`
    pub blocks: [Block<H>; B],
    /// `output_layer`: H → ε̂ (D)
    pub output: Linear<H, D>,
}

/// An intermediate tensor of the forward pass, as [`Model::time_embedding_observed`] and
/// [`Model::predict_noise_observed`] show it (the quantizer calibrates its scales on them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    /// `time_in`'s output, before its GELU.
    TimePre,
    /// Its GELU: `time_out`'s input.
    TimeHidden,
    /// `time_out`'s output: the time embedding.
    Temb,
    /// `input`'s output, before its GELU.
    InputPre,
    /// The residual stream h before block `i` (`i < B`) or before the output layer (`i = B`).
    Stream(usize),
    /// Block `i`'s first layer's output, before its GELU.
    FirstPre(usize),
    /// Its GELU: block `i`'s second layer's input.
    Hidden(usize),
    /// Block `i`'s second layer's output, before its GELU.
    SecondPre(usize),
    /// The output layer's result, ε̂.
    Eps,
}

/// The seed notebook's size: H = 128, B = 3, 116,482 parameters.
pub type SeedModel = Model<128, 3>;

/// `h / √2` as the notebook writes it (`h / math.sqrt(2)`: a true division by f32 √2).
const SQRT_2: f32 = core::f32::consts::SQRT_2;

/// One unit of the first hidden state: `GELU(input(x)) + temb`. Public so that fast paths
/// (SIMD tiles, lanes across outputs) wire the model with this code, not a copy.
#[inline(always)]
pub fn input_unit<R: Real>(pre_activation: R, temb: R) -> R {
    gelu(pre_activation) + temb
}

/// One unit of a residual block's output: `(GELU(second(u)) + h + temb) / √2`, in the
/// notebook's order (`h = layer(h); h = h + h_prev; h = h + t_emb; h = h / sqrt(2)`).
#[inline(always)]
pub fn residual_unit<R: Real>(second_pre_activation: R, h_prev: R, temb: R) -> R {
    (gelu(second_pre_activation) + h_prev + temb) / R::splat(SQRT_2)
}

/// The time embedding `time_out(GELU(time_in(t_input)))` of a model whose H is known only
/// at run time, from its `time_in` and `time_out` tensors ([`Model::tensors`]' (weight,
/// bias) pairs): `hidden` is scratch and `temb` receives the embedding, both H long.
/// [`Model::time_embedding_observed`] is this function on its arrays; `tap` sees
/// [`Tap::TimePre`], [`Tap::TimeHidden`] and [`Tap::Temb`].
#[inline(always)]
pub fn time_embedding_in(
    (w_in, b_in): (&[f32], &[f32]),
    (w_out, b_out): (&[f32], &[f32]),
    t_input: f32,
    (hidden, temb): (&mut [f32], &mut [f32]),
    mut tap: impl FnMut(Tap, &[f32]),
) {
    dense(w_in, b_in, &[t_input], hidden);
    tap(Tap::TimePre, hidden);
    hidden.iter_mut().for_each(|v| *v = gelu(*v));
    tap(Tap::TimeHidden, hidden);
    dense(w_out, b_out, hidden, temb);
    tap(Tap::Temb, temb);
}

/// The noise prediction ε̂(x, t) of a model whose shape is known only at run time, from its
/// `input` and `output` layers and its `blocks` (each block's first and second layer):
/// `x` is D long, `temb` H long, `h`, `u`, `v` are H-long scratch and `out` receives ε̂ (D
/// long). [`Model::predict_noise_observed`] is this function on its arrays; `tap` sees every
/// [`Tap`] as it is computed.
#[inline(always)]
pub fn predict_noise_in<'m, R: Real>(
    input: Tensors<'m>,
    blocks: impl Iterator<Item = [Tensors<'m>; 2]>,
    output: Tensors<'m>,
    (x, temb): (&[R], &[f32]),
    (h, u, v): (&mut [R], &mut [R], &mut [R]),
    out: &mut [R],
    mut tap: impl FnMut(Tap, &[R]),
) {
    dense(input.0, input.1, x, h);
    tap(Tap::InputPre, h);
    for (hj, &tj) in h.iter_mut().zip(temb) {
        *hj = input_unit(*hj, R::splat(tj));
    }
    let mut count = 0;
    for (i, [first, second]) in blocks.enumerate() {
        tap(Tap::Stream(i), h);
        dense(first.0, first.1, h, u);
        tap(Tap::FirstPre(i), u);
        u.iter_mut().for_each(|a| *a = gelu(*a));
        tap(Tap::Hidden(i), u);
        dense(second.0, second.1, u, v);
        tap(Tap::SecondPre(i), v);
        for ((hj, &vj), &tj) in h.iter_mut().zip(&*v).zip(temb) {
            *hj = residual_unit(vj, *hj, R::splat(tj));
        }
        count = i + 1;
    }
    tap(Tap::Stream(count), h);
    dense(output.0, output.1, h, out);
    tap(Tap::Eps, out);
}

impl<const H: usize, const B: usize, const D: usize> Model<H, B, D> {
    /// All parameters zero (a `const`, so a model can live in a `static`).
    pub const ZERO: Self = Self {
        time_in: Linear::ZERO,
        time_out: Linear::ZERO,
        input: Linear::ZERO,
        blocks: [Block::ZERO; B],
        output: Linear::ZERO,
    };

    /// Number of parameters.
    pub const PARAMS: usize = Layout::of_dim::<H, B, D>().len();

    /// The time embedding for network input `t_input` (= t/T), shared by every sample.
    #[inline]
    pub fn time_embedding(&self, t_input: f32) -> [f32; H] {
        self.time_embedding_observed(t_input, |_, _| ())
    }

    /// [`Model::time_embedding`], showing `tap` each intermediate tensor ([`Tap::TimePre`],
    /// [`Tap::TimeHidden`], [`Tap::Temb`]) as it is computed: the same code, the same bits.
    #[inline(always)]
    pub fn time_embedding_observed(&self, t_input: f32, tap: impl FnMut(Tap, &[f32])) -> [f32; H] {
        let (mut hidden, mut temb) = ([0.0f32; H], [0.0f32; H]);
        time_embedding_in(
            self.time_in.tensors(),
            self.time_out.tensors(),
            t_input,
            (&mut hidden, &mut temb),
            tap,
        );
        temb
    }

    /// Predicted noise ε̂(x, t) for the lanes of `x`, given that step's time embedding.
    #[inline]
    pub fn predict_noise<R: Real>(&self, x: [R; D], temb: &[f32; H]) -> [R; D] {
        self.predict_noise_observed(x, temb, |_, _| ())
    }

    /// [`Model::predict_noise`], showing `tap` each intermediate tensor ([`Tap`]) as it is
    /// computed: [`predict_noise_in`] on the model's arrays, so the same code and the same
    /// bits (an empty `tap` compiles away).
    #[inline(always)]
    pub fn predict_noise_observed<R: Real>(
        &self,
        x: [R; D],
        temb: &[f32; H],
        tap: impl FnMut(Tap, &[R]),
    ) -> [R; D] {
        let (mut h, mut u, mut v) = ([R::splat(0.0); H], [R::splat(0.0); H], [R::splat(0.0); H]);
        let mut out = [R::splat(0.0); D];
        predict_noise_in(
            self.input.tensors(),
            self.blocks
                .iter()
                .map(|b| [b.first.tensors(), b.second.tensors()]),
            self.output.tensors(),
            (&x, temb),
            (&mut h, &mut u, &mut v),
            &mut out,
            tap,
        );
        out
    }

    /// Layer `layer`'s weight (`[out][in]` row-major) and bias: the one place that maps a
    /// [`Layer`] to its field.
    pub const fn tensors(&self, layer: Layer) -> Tensors<'_> {
        match layer {
            Layer::TimeIn => self.time_in.tensors(),
            Layer::TimeOut => self.time_out.tensors(),
            Layer::Input => self.input.tensors(),
            Layer::BlockFirst(i) => self.blocks[i].first.tensors(),
            Layer::BlockSecond(i) => self.blocks[i].second.tensors(),
            Layer::Output => self.output.tensors(),
        }
    }

    /// [`Model::tensors`], writable.
    pub const fn tensors_mut(&mut self, layer: Layer) -> (&mut [f32], &mut [f32]) {
        match layer {
            Layer::TimeIn => (
                self.time_in.weight.as_flattened_mut(),
                &mut self.time_in.bias,
            ),
            Layer::TimeOut => (
                self.time_out.weight.as_flattened_mut(),
                &mut self.time_out.bias,
            ),
            Layer::Input => (self.input.weight.as_flattened_mut(), &mut self.input.bias),
            Layer::BlockFirst(i) => {
                let l = &mut self.blocks[i].first;
                (l.weight.as_flattened_mut(), &mut l.bias)
            }
            Layer::BlockSecond(i) => {
                let l = &mut self.blocks[i].second;
                (l.weight.as_flattened_mut(), &mut l.bias)
            }
            Layer::Output => (self.output.weight.as_flattened_mut(), &mut self.output.bias),
        }
    }

    /// The model whose parameters, in file order, are `params`; `None` unless it holds
    /// exactly [`Model::PARAMS`]. A `const fn`, so a `static` model can be built from a flat
    /// table at compile time.
    pub const fn from_params(params: &[f32]) -> Option<Self> {
        let lay = Layout::of_dim::<H, B, D>();
        if params.len() != lay.len() {
            return None;
        }
        let mut model = Self::ZERO;
        let mut n = 0;
        while n < lay.layers() {
            let d = lay.dense(lay.layer(n));
            let (w, b) = model.tensors_mut(d.layer);
            let mut k = 0;
            while k < w.len() {
                w[k] = params[d.w + k];
                k += 1;
            }
            k = 0;
            while k < b.len() {
                b[k] = params[d.b + k];
                k += 1;
            }
            n += 1;
        }
        Some(model)
    }

    /// Every tensor with its PyTorch `state_dict` name and shape (`[out, in]` or `[out]`),
    /// in file order: for each layer its weight (row-major), then its bias.
    pub fn for_each_tensor(&self, mut f: impl FnMut(TensorName, &[usize], &[f32])) {
        // An unconditioned layout: every tensor is a layer's.
        Layout::of_dim::<H, B, D>().for_each_tensor(|name, shape, _| {
            if let Some(layer) = name.layer() {
                let (w, b) = self.tensors(layer);
                f(name, shape, if name.is_bias() { b } else { w });
            }
        });
    }

    /// [`Model::for_each_tensor`], mutably.
    pub fn for_each_tensor_mut(&mut self, mut f: impl FnMut(TensorName, &[usize], &mut [f32])) {
        Layout::of_dim::<H, B, D>().for_each_tensor(|name, shape, _| {
            if let Some(layer) = name.layer() {
                let (w, b) = self.tensors_mut(layer);
                f(name, shape, if name.is_bias() { b } else { w });
            }
        });
    }

    /// Every parameter in file order.
    pub fn for_each_param(&self, mut f: impl FnMut(f32)) {
        self.for_each_tensor(|_, _, data| data.iter().for_each(|&p| f(p)));
    }

    /// Every parameter in file order, mutably.
    pub fn for_each_param_mut(&mut self, mut f: impl FnMut(&mut f32)) {
        self.for_each_tensor_mut(|_, _, data| data.iter_mut().for_each(&mut f));
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

    #[test]
    fn tensor_names_and_shapes_follow_the_state_dict() {
        extern crate std;
        use std::{format, string::String, vec::Vec};
        let model = Model::<4, 2>::ZERO;
        let mut seen: Vec<(String, Vec<usize>)> = Vec::new();
        model.for_each_tensor(|name, shape, data| {
            assert_eq!(shape.iter().product::<usize>(), data.len());
            seen.push((format!("{name}"), shape.to_vec()));
        });
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "time_embed.embed.0.weight",
                "time_embed.embed.0.bias",
                "time_embed.embed.2.weight",
                "time_embed.embed.2.bias",
                "input_layer.0.weight",
                "input_layer.0.bias",
                "hidden_layers.0.0.weight",
                "hidden_layers.0.0.bias",
                "hidden_layers.0.2.weight",
                "hidden_layers.0.2.bias",
                "hidden_layers.1.0.weight",
                "hidden_layers.1.0.bias",
                "hidden_layers.1.2.weight",
                "hidden_layers.1.2.bias",
                "output_layer.weight",
                "output_layer.bias",
            ]
        );
        assert_eq!(seen[0].1, [4, 1]);
        assert_eq!(seen[14].1, [2, 4]);
        let total: usize = seen.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(total, Model::<4, 2>::PARAMS);
    }

    /// D sets the input layer's inputs and the output layer's outputs, nothing else.
    #[test]
    fn the_dimension_shapes_only_the_input_and_output_layers() {
        extern crate std;
        use std::vec::Vec;
        fn weight_shapes<const D: usize>() -> Vec<(Layer, Vec<usize>)> {
            let mut shapes = Vec::new();
            Model::<4, 2, D>::ZERO.for_each_tensor(|name, shape, _| {
                if let TensorName::Weight(layer) = name {
                    shapes.push((layer, shape.to_vec()));
                }
            });
            shapes
        }
        let (three, two) = (weight_shapes::<3>(), weight_shapes::<2>());
        assert_eq!(three.len(), two.len());
        for ((layer, s3), (_, s2)) in three.iter().zip(&two) {
            match layer {
                Layer::Input => assert_eq!((&s3[..], &s2[..]), (&[4, 3][..], &[4, 2][..])),
                Layer::Output => assert_eq!((&s3[..], &s2[..]), (&[3, 4][..], &[2, 4][..])),
                _ => assert_eq!(s3, s2, "{layer:?}"),
            }
        }
        assert_eq!(Model::<4, 2, 3>::PARAMS, Model::<4, 2>::PARAMS + 4 + 4 + 1);
    }
}
