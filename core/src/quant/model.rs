//! [`QModel<H, B, D>`]: the float [`Model`](crate::Model)'s network on integers, wired as the
//! module docs of [`quant`](super) specify.

use super::boundary::{MAX_EXP, from_i16, to_i16};
use super::gelu::Gelu;
use super::linear::{Accumulate, Portable, QLinear, accumulate_row, in_range, requantize_lanes};
use super::requant::{SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT, requantize, sat16};
use crate::lanes::Lanes;
use crate::model::Layer;
use crate::sample::PredictNoise;
use crate::sampler::Step;

/// The exponent of the time input t/T ∈ [0, 1): `t_q = round(t/T·2^15)`.
pub const TIME_EXP: u8 = 15;

/// One residual block on integers.
#[derive(Clone, Debug, PartialEq)]
pub struct QBlock<const H: usize> {
    /// `hidden_layers.i.0`: reads the stream, writes `act`'s pre-activation.
    pub first: QLinear<H, H>,
    /// The GELU between the two layers; its output is `second`'s input.
    pub act: Gelu,
    /// `hidden_layers.i.2`: writes the pre-activation of exponent `second_pre_exp`.
    pub second: QLinear<H, H>,
    /// Exponent of `second`'s output, whose GELU writes the residual branch at the stream's
    /// exponent.
    pub second_pre_exp: u8,
}

impl<const H: usize> QBlock<H> {
    /// All zero.
    pub const ZERO: Self = Self {
        first: QLinear::ZERO,
        act: Gelu {
            pre_exp: 0,
            post_exp: 0,
        },
        second: QLinear::ZERO,
        second_pre_exp: 0,
    };
}

/// The integer model: `H` hidden units, `B` residual blocks, points of `D` coordinates (2
/// unless named; `H ≤ 256` and `D ≤ 256`, the widest integer layer's input, checked at compile
/// time). Every activation exponent `e` means the scale `2^−e`.
#[derive(Clone, Debug, PartialEq)]
pub struct QModel<const H: usize, const B: usize, const D: usize = 2> {
    /// `time_embed.embed.0`: reads `t/T` at [`TIME_EXP`].
    pub time_in: QLinear<1, H>,
    /// The time embedding's GELU; its output is `time_out`'s input.
    pub time_act: Gelu,
    /// `time_embed.embed.2`: writes the embedding at `stream_exp`.
    pub time_out: QLinear<H, H>,
    /// Exponent of x_t, the network's input (one for its D coordinates).
    pub input_exp: u8,
    /// `input_layer.0`, D → H: writes the pre-activation of exponent `input_pre_exp`.
    pub input: QLinear<D, H>,
    /// Exponent of `input`'s output, whose GELU writes the stream.
    pub input_pre_exp: u8,
    /// Exponent of the residual stream, the time embedding and each block's branch.
    pub stream_exp: u8,
    /// `hidden_layers.0 .. B`
    pub blocks: [QBlock<H>; B],
    /// `output_layer`, H → D: reads the stream, writes ε̂ at `output_exp`.
    pub output: QLinear<H, D>,
    /// Exponent of ε̂ (one for its D coordinates).
    pub output_exp: u8,
}

/// One dense layer of a [`QModel`] as [`QModel::for_each_layer`] shows it: its parameters
/// (weights `[out][in]`, flattened) and where it sits between the activation exponents.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QLayer<'a> {
    /// The layer.
    pub layer: Layer,
    /// Its weights, `[out][in]` flattened: `weight[j·I + k]` multiplies input `k` into output
    /// `j`, with `I = weight.len() / bias.len()` inputs.
    pub weight: &'a [i8],
    /// Per output channel.
    pub bias: &'a [i32],
    /// Per output channel.
    pub multiplier: &'a [i32],
    /// Per output channel.
    pub shift: &'a [u8],
    /// Exponent of its input.
    pub in_exp: u8,
    /// Exponent of its output (the pre-activation of `act`, where there is one).
    pub out_exp: u8,
    /// The GELU its output goes through, if any.
    pub act: Option<Gelu>,
}

/// A [`QLayer`]'s parameters, writable ([`QModel::for_each_layer_mut`]).
#[derive(Debug, PartialEq)]
pub struct QLayerMut<'a> {
    /// The layer.
    pub layer: Layer,
    /// Its weights, `[out][in]` flattened.
    pub weight: &'a mut [i8],
    /// Per output channel.
    pub bias: &'a mut [i32],
    /// Per output channel.
    pub multiplier: &'a mut [i32],
    /// Per output channel.
    pub shift: &'a mut [u8],
}

impl QLayer<'_> {
    /// Whether every weight, bias and shift is in range ([`QModel::validate`]).
    pub fn is_valid(&self) -> bool {
        in_range(self.weight, self.bias, self.shift)
    }

    /// Inputs of the layer: `weight.len() / bias.len()`.
    pub fn inputs(&self) -> usize {
        self.weight.len().checked_div(self.bias.len()).unwrap_or(0)
    }

    /// Output `j`'s sums for N lanes, as [`QLinear::accumulate`].
    #[inline(always)]
    pub fn accumulate<const N: usize>(&self, j: usize, x: &[[i16; N]]) -> [i32; N] {
        let i = self.inputs();
        let row = self.weight.get(j * i..(j + 1) * i).unwrap_or(&[]);
        accumulate_row(self.bias.get(j).copied().unwrap_or(0), row, x)
    }

    /// Output `j`'s sums requantized, as [`QLinear::requantize`].
    #[inline(always)]
    pub fn requantize<const N: usize>(&self, j: usize, sums: [i32; N]) -> [i16; N] {
        let (m, s) = (self.multiplier.get(j), self.shift.get(j));
        requantize_lanes(sums, m.copied().unwrap_or(0), s.copied().unwrap_or(0))
    }
}

/// Where `layer` sits between the activation exponents, and the GELU its output goes
/// through: `(in_exp, out_exp, act)`, from `exp(n)`, the model's `n`-th exponent in
/// [`QModel::for_each_exponent`] order. The one statement of the network's wiring of
/// exponents, for the const-generic model and for one of a shape read at run time.
pub fn layer_exponents(exp: impl Fn(usize) -> u8, layer: Layer) -> (u8, u8, Option<Gelu>) {
    let gelu = |pre_exp, post_exp| Gelu { pre_exp, post_exp };
    let (input, stream, output) = (exp(0), exp(1), exp(2));
    let (time_pre, time_post, input_pre) = (exp(3), exp(4), exp(5));
    let block = |i: usize, k: usize| exp(6 + 3 * i + k);
    match layer {
        Layer::TimeIn => (TIME_EXP, time_pre, Some(gelu(time_pre, time_post))),
        Layer::TimeOut => (time_post, stream, None),
        Layer::Input => (input, input_pre, Some(gelu(input_pre, stream))),
        Layer::BlockFirst(i) => (stream, block(i, 0), Some(gelu(block(i, 0), block(i, 1)))),
        Layer::BlockSecond(i) => (block(i, 1), block(i, 2), Some(gelu(block(i, 2), stream))),
        Layer::Output => (stream, output, None),
    }
}

/// The exponent checks of [`QModel::validate`] on `exp(n)`, the `n`-th exponent of a model
/// of `blocks` blocks: the stream's boundary exponents at most [`MAX_EXP`], then every GELU's
/// pair in range, in layer order.
pub(crate) fn validate_exponents(
    exp: impl Fn(usize) -> u8,
    blocks: usize,
) -> Result<(), QuantError> {
    for (name, n) in [("input_exp", 0), ("stream_exp", 1), ("output_exp", 2)] {
        let value = exp(n);
        if value > MAX_EXP {
            return Err(QuantError::Exponent { name, value });
        }
    }
    let gelus = [Layer::TimeIn, Layer::Input]
        .into_iter()
        .chain((0..blocks).flat_map(|i| [Layer::BlockFirst(i), Layer::BlockSecond(i)]));
    for layer in gelus {
        if let (_, _, Some(g)) = layer_exponents(&exp, layer)
            && !g.is_valid()
        {
            return Err(QuantError::Gelu {
                layer,
                pre_exp: g.pre_exp,
                post_exp: g.post_exp,
            });
        }
    }
    Ok(())
}

/// The integer time embedding on slices: [`QModel::time_embedding`] for a model whose
/// shape is known at run time, with the same bits. `time_in` and `time_out` are its first
/// two layers ([`QModel::for_each_layer`]), `hidden` H units of scratch, `temb` the H
/// outputs at the stream's exponent.
pub fn time_embedding_in(
    time_in: &QLayer<'_>,
    time_out: &QLayer<'_>,
    t_input: f32,
    hidden: &mut [[i16; 1]],
    temb: &mut [i16],
) {
    let t = [[to_i16(t_input, TIME_EXP)]];
    let act = time_in.act.unwrap_or(Gelu {
        pre_exp: 0,
        post_exp: 0,
    });
    for (j, hj) in hidden.iter_mut().enumerate() {
        *hj = time_in
            .requantize(j, time_in.accumulate(j, &t))
            .map(|u| act.apply(u));
    }
    for (j, e) in temb.iter_mut().enumerate() {
        [*e] = time_out.requantize(j, time_out.accumulate(j, hidden));
    }
}

impl<const I: usize, const O: usize> QLinear<I, O> {
    fn layer(&self, layer: Layer, in_exp: u8, out_exp: u8, act: Option<Gelu>) -> QLayer<'_> {
        QLayer {
            layer,
            weight: self.weight.as_flattened(),
            bias: &self.bias,
            multiplier: &self.multiplier,
            shift: &self.shift,
            in_exp,
            out_exp,
            act,
        }
    }

    fn layer_mut(&mut self, layer: Layer) -> QLayerMut<'_> {
        QLayerMut {
            layer,
            weight: self.weight.as_flattened_mut(),
            bias: &mut self.bias,
            multiplier: &mut self.multiplier,
            shift: &mut self.shift,
        }
    }
}

/// The seed notebook's size on integers: 125,714 bytes of parameters (the f32 model: 465,928).
pub type QSeedModel = QModel<128, 3>;

/// Why a [`QModel`] is not valid: the field or layer that is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// An activation exponent above [`MAX_EXP`].
    #[error("exponent {name} = {value} is above 24")]
    Exponent {
        /// The field.
        name: &'static str,
        /// Its value.
        value: u8,
    },
    /// A GELU's exponents outside `6 ≤ pre ≤ 21`, `pre ≤ post ≤ pre + 12`.
    #[error("the GELU after {layer:?} has exponents {pre_exp} → {post_exp}: out of range")]
    Gelu {
        /// The layer the GELU follows.
        layer: Layer,
        /// Its pre-activation exponent.
        pre_exp: u8,
        /// Its output exponent.
        post_exp: u8,
    },
    /// A weight of −128, a bias beyond ±2^30 or a shift above 62.
    #[error("{layer:?} has a weight of -128, a bias beyond 2^30 or a shift above 62")]
    Parameters {
        /// The layer.
        layer: Layer,
    },
}

impl<const H: usize, const B: usize, const D: usize> QModel<H, B, D> {
    /// All zero (a `const`, so a model can live in a `static`; not valid until filled).
    pub const ZERO: Self = Self {
        time_in: QLinear::ZERO,
        time_act: Gelu {
            pre_exp: 0,
            post_exp: 0,
        },
        time_out: QLinear::ZERO,
        input_exp: 0,
        input: QLinear::ZERO,
        input_pre_exp: 0,
        stream_exp: 0,
        blocks: [QBlock::ZERO; B],
        output: QLinear::ZERO,
        output_exp: 0,
    };

    /// Bytes of parameters (weights, biases, multipliers, shifts; the few exponents and the
    /// shared 642-byte GELU table not counted).
    pub const BYTES: usize = QLinear::<1, H>::BYTES
        + QLinear::<H, H>::BYTES
        + QLinear::<D, H>::BYTES
        + B * 2 * QLinear::<H, H>::BYTES
        + QLinear::<H, D>::BYTES;

    /// Activation exponents the model holds ([`QModel::for_each_exponent`]).
    pub const EXPONENTS: usize = 6 + 3 * B;

    /// Every dense layer in PyTorch `state_dict` order (the float model's
    /// [`for_each_tensor`](crate::Model::for_each_tensor) order), with its input and output
    /// exponents and its GELU.
    pub fn for_each_layer(&self, mut f: impl FnMut(QLayer<'_>)) {
        f(self.view(&self.time_in, Layer::TimeIn));
        f(self.view(&self.time_out, Layer::TimeOut));
        f(self.view(&self.input, Layer::Input));
        for (i, b) in self.blocks.iter().enumerate() {
            f(self.view(&b.first, Layer::BlockFirst(i)));
            f(self.view(&b.second, Layer::BlockSecond(i)));
        }
        f(self.view(&self.output, Layer::Output));
    }

    /// `linear`, the model's `layer`, between its exponents ([`layer_exponents`]).
    fn view<'a, const I: usize, const O: usize>(
        &self,
        linear: &'a QLinear<I, O>,
        layer: Layer,
    ) -> QLayer<'a> {
        let (in_exp, out_exp, act) = layer_exponents(|n| self.exponent(n), layer);
        linear.layer(layer, in_exp, out_exp, act)
    }

    /// The `n`-th exponent in [`QModel::for_each_exponent`] order (0 past the end).
    fn exponent(&self, n: usize) -> u8 {
        let t = self.time_act;
        match n {
            0 => self.input_exp,
            1 => self.stream_exp,
            2 => self.output_exp,
            3 => t.pre_exp,
            4 => t.post_exp,
            5 => self.input_pre_exp,
            _ => match self.blocks.get((n - 6) / 3) {
                Some(b) => [b.act.pre_exp, b.act.post_exp, b.second_pre_exp][(n - 6) % 3],
                None => 0,
            },
        }
    }

    /// [`QModel::for_each_layer`]'s parameters, writable, in the same order.
    pub fn for_each_layer_mut(&mut self, mut f: impl FnMut(QLayerMut<'_>)) {
        f(self.time_in.layer_mut(Layer::TimeIn));
        f(self.time_out.layer_mut(Layer::TimeOut));
        f(self.input.layer_mut(Layer::Input));
        for (i, b) in self.blocks.iter_mut().enumerate() {
            f(b.first.layer_mut(Layer::BlockFirst(i)));
            f(b.second.layer_mut(Layer::BlockSecond(i)));
        }
        f(self.output.layer_mut(Layer::Output));
    }

    /// Every activation exponent the model holds, in this order: `input_exp`, `stream_exp`,
    /// `output_exp`, `time_act.pre_exp`, `time_act.post_exp`, `input_pre_exp`, then per
    /// block `act.pre_exp`, `act.post_exp`, `second_pre_exp`.
    pub fn for_each_exponent(&self, mut f: impl FnMut(u8)) {
        for n in 0..Self::EXPONENTS {
            f(self.exponent(n));
        }
    }

    /// [`QModel::for_each_exponent`], writable, in the same order.
    pub fn for_each_exponent_mut(&mut self, mut f: impl FnMut(&mut u8)) {
        let t = &mut self.time_act;
        for e in [
            &mut self.input_exp,
            &mut self.stream_exp,
            &mut self.output_exp,
        ] {
            f(e);
        }
        for e in [&mut t.pre_exp, &mut t.post_exp, &mut self.input_pre_exp] {
            f(e);
        }
        for b in &mut self.blocks {
            for e in [
                &mut b.act.pre_exp,
                &mut b.act.post_exp,
                &mut b.second_pre_exp,
            ] {
                f(e);
            }
        }
    }

    /// The GELU after `input`, into the stream.
    pub fn input_act(&self) -> Gelu {
        Gelu {
            pre_exp: self.input_pre_exp,
            post_exp: self.stream_exp,
        }
    }

    /// The GELU after a block's `second`, into the stream.
    pub fn second_act(&self, block: &QBlock<H>) -> Gelu {
        Gelu {
            pre_exp: block.second_pre_exp,
            post_exp: self.stream_exp,
        }
    }

    /// Checks every exponent, weight, bias and shift against its range, so that evaluation
    /// follows the specification without clamping and every sum is exact.
    pub fn validate(&self) -> Result<(), QuantError> {
        validate_exponents(|n| self.exponent(n), B)?;
        let mut result = Ok(());
        self.for_each_layer(|l| {
            if result.is_ok() && !l.is_valid() {
                result = Err(QuantError::Parameters { layer: l.layer });
            }
        });
        result
    }

    /// The time embedding at the stream's exponent for network input `t_input` (= t/T),
    /// shared by every sample of a step.
    pub fn time_embedding(&self, t_input: f32) -> [i16; H] {
        let time_in = self.view(&self.time_in, Layer::TimeIn);
        let time_out = self.view(&self.time_out, Layer::TimeOut);
        let (mut hidden, mut temb) = ([[0i16; 1]; H], [0i16; H]);
        time_embedding_in(&time_in, &time_out, t_input, &mut hidden, &mut temb);
        temb
    }

    /// [`QModel::time_embedding`] with `kernel`'s dense layers (the same result).
    #[inline]
    pub fn time_embedding_with<K: Accumulate>(&self, kernel: &K, t_input: f32) -> [i16; H] {
        let t = [[to_i16(t_input, TIME_EXP)]];
        let mut sums = [[0i32; 1]; H];
        kernel.accumulate(&self.time_in, &t, &mut sums);
        let mut hidden = [[0i16; 1]; H];
        for (j, (hj, &s)) in hidden.iter_mut().zip(&sums).enumerate() {
            *hj = self
                .time_in
                .requantize(j, s)
                .map(|u| self.time_act.apply(u));
        }
        kernel.accumulate(&self.time_out, &hidden, &mut sums);
        core::array::from_fn(|j| self.time_out.requantize(j, sums[j])[0])
    }

    /// ε̂ at `output_exp` for N samples given as activations at `input_exp` (lane n of each
    /// unit is sample n), with that step's time embedding.
    pub fn forward<const N: usize>(&self, x: &[[i16; N]; D], temb: &[i16; H]) -> [[i16; N]; D] {
        self.forward_with(&Portable, x, temb)
    }

    /// [`QModel::forward`] with `kernel`'s dense layers: the same result (a kernel computes
    /// exact sums, in any order), at the speed of the kernel.
    #[inline]
    pub fn forward_with<K: Accumulate, const N: usize>(
        &self,
        kernel: &K,
        x: &[[i16; N]; D],
        temb: &[i16; H],
    ) -> [[i16; N]; D] {
        // One buffer of sums for every H-wide layer, requantized from before it is refilled.
        let mut sums = [[0i32; N]; H];
        let mut h = [[0i16; N]; H];
        let act = self.input_act();
        kernel.accumulate(&self.input, x, &mut sums);
        for (j, ((hj, &tj), &s)) in h.iter_mut().zip(temb).zip(&sums).enumerate() {
            let u = self.input.requantize(j, s);
            for (hv, uv) in hj.iter_mut().zip(u) {
                *hv = sat16(i64::from(act.apply(uv)) + i64::from(tj));
            }
        }
        let mut v = [[0i16; N]; H];
        for block in &self.blocks {
            kernel.accumulate(&block.first, &h, &mut sums);
            for (j, (vj, &s)) in v.iter_mut().zip(&sums).enumerate() {
                *vj = block.first.requantize(j, s).map(|u| block.act.apply(u));
            }
            let act = self.second_act(block);
            kernel.accumulate(&block.second, &v, &mut sums);
            for (j, ((hj, &tj), &s)) in h.iter_mut().zip(temb).zip(&sums).enumerate() {
                let u = block.second.requantize(j, s);
                for (hv, uv) in hj.iter_mut().zip(u) {
                    let sum = i32::from(act.apply(uv)) + i32::from(*hv) + i32::from(tj);
                    *hv = requantize(sum, SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT);
                }
            }
        }
        let mut out = [[0i32; N]; D];
        kernel.accumulate(&self.output, &h, &mut out);
        core::array::from_fn(|c| self.output.requantize(c, out[c]))
    }

    /// ε̂ for N samples of f32 coordinates (`x[c][n]`: coordinate c of sample n): each
    /// converted at `input_exp`, [`QModel::forward`], each ε̂ converted from `output_exp`.
    pub fn predict_noise<const N: usize>(
        &self,
        x: [[f32; N]; D],
        temb: &[i16; H],
    ) -> [[f32; N]; D] {
        self.predict_noise_with(&Portable, x, temb)
    }

    /// [`QModel::predict_noise`] with `kernel`'s dense layers (the same result).
    #[inline]
    pub fn predict_noise_with<K: Accumulate, const N: usize>(
        &self,
        kernel: &K,
        x: [[f32; N]; D],
        temb: &[i16; H],
    ) -> [[f32; N]; D] {
        let xq = x.map(|c| c.map(|v| to_i16(v, self.input_exp)));
        self.forward_with(kernel, &xq, temb)
            .map(|c| c.map(|q| from_i16(q, self.output_exp)))
    }

    /// This model evaluated with `kernel`'s dense layers, as a noise predictor for the core's
    /// [`chain`](crate::chain): how a board runs the sampler with its own kernel.
    pub fn with_kernel<K: Accumulate>(&self, kernel: K) -> WithKernel<'_, K, H, B, D> {
        WithKernel {
            model: self,
            kernel,
        }
    }
}

/// A [`QModel`] and the [`Accumulate`] kernel that computes its dense layers
/// ([`QModel::with_kernel`]); it predicts the noise exactly as the model alone does.
#[derive(Clone, Copy, Debug)]
pub struct WithKernel<'a, K, const H: usize, const B: usize, const D: usize = 2> {
    /// The model.
    pub model: &'a QModel<H, B, D>,
    /// Its dense layers' kernel.
    pub kernel: K,
}

/// One sample: the step's integer time embedding, then the integer network.
impl<K: Accumulate, const H: usize, const B: usize, const D: usize> PredictNoise<f32, D>
    for WithKernel<'_, K, H, B, D>
{
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [f32; D]) -> [f32; D] {
        let (m, kernel) = (self.model, &self.kernel);
        let temb = m.time_embedding_with(kernel, step.t_input);
        m.predict_noise_with(kernel, x.map(|v| [v]), &temb)
            .map(|[v]| v)
    }
}

/// N samples, one per lane, sharing each weight load and the step's time embedding; lane n
/// gets the bits the scalar implementation gives sample n.
impl<K: Accumulate, const H: usize, const B: usize, const D: usize, const N: usize>
    PredictNoise<Lanes<N>, D> for WithKernel<'_, K, H, B, D>
{
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [Lanes<N>; D]) -> [Lanes<N>; D] {
        let (m, kernel) = (self.model, &self.kernel);
        let temb = m.time_embedding_with(kernel, step.t_input);
        m.predict_noise_with(kernel, x.map(|c| c.0), &temb)
            .map(Lanes)
    }
}

/// One sample, the model alone: [`WithKernel`] with the [`Portable`] kernel.
impl<const H: usize, const B: usize, const D: usize> PredictNoise<f32, D> for &QModel<H, B, D> {
    #[inline]
    fn predict_noise(&mut self, k: usize, step: &Step, x: [f32; D]) -> [f32; D] {
        self.with_kernel(Portable).predict_noise(k, step, x)
    }
}

/// N samples, the model alone: [`WithKernel`] with the [`Portable`] kernel.
impl<const H: usize, const B: usize, const D: usize, const N: usize> PredictNoise<Lanes<N>, D>
    for &QModel<H, B, D>
{
    #[inline]
    fn predict_noise(&mut self, k: usize, step: &Step, x: [Lanes<N>; D]) -> [Lanes<N>; D] {
        self.with_kernel(Portable).predict_noise(k, step, x)
    }
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use super::*;

    /// A kernel that sums in another order (last input first, last output first) and counts
    /// its calls.
    #[derive(Default)]
    struct Reversed {
        calls: Cell<usize>,
    }

    impl Accumulate for Reversed {
        fn accumulate<const I: usize, const O: usize, const N: usize>(
            &self,
            layer: &QLinear<I, O>,
            x: &[[i16; N]; I],
            sums: &mut [[i32; N]; O],
        ) {
            self.calls.set(self.calls.get() + 1);
            for j in (0..O).rev() {
                let mut acc = [layer.bias[j]; N];
                for k in (0..I).rev() {
                    for (a, &v) in acc.iter_mut().zip(&x[k]) {
                        *a = a.wrapping_add(i32::from(layer.weight[j][k]) * i32::from(v));
                    }
                }
                sums[j] = acc;
            }
        }
    }

    /// A kernel whose sums are off by one: the model must use what a kernel returns.
    struct OffByOne;

    impl Accumulate for OffByOne {
        fn accumulate<const I: usize, const O: usize, const N: usize>(
            &self,
            layer: &QLinear<I, O>,
            x: &[[i16; N]; I],
            sums: &mut [[i32; N]; O],
        ) {
            Portable.accumulate(layer, x, sums);
            for s in sums.as_flattened_mut() {
                *s += 1 << 16;
            }
        }
    }

    /// A deterministic valid model with full-range weights (a 64-bit LCG, top bits).
    fn model<const H: usize, const B: usize>() -> QModel<H, B> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |lo: i64, hi: i64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            lo + ((state >> 33) as i64).rem_euclid(hi - lo + 1)
        };
        fn fill<const I: usize, const O: usize>(
            l: &mut QLinear<I, O>,
            next: &mut impl FnMut(i64, i64) -> i64,
        ) {
            for w in l.weight.as_flattened_mut() {
                *w = next(-127, 127) as i8;
            }
            for j in 0..O {
                l.bias[j] = next(-(1 << 20), 1 << 20) as i32;
                l.multiplier[j] = next(1 << 30, (1 << 31) - 1) as i32;
                l.shift[j] = next(36, 44) as u8;
            }
        }
        let mut m = QModel::<H, B>::ZERO;
        let gelu = Gelu {
            pre_exp: 10,
            post_exp: 12,
        };
        (m.time_act, m.input_exp, m.input_pre_exp, m.stream_exp) = (gelu, 12, 10, 12);
        m.output_exp = 12;
        fill(&mut m.time_in, &mut next);
        fill(&mut m.time_out, &mut next);
        fill(&mut m.input, &mut next);
        for b in &mut m.blocks {
            (b.act, b.second_pre_exp) = (gelu, 10);
            fill(&mut b.first, &mut next);
            fill(&mut b.second, &mut next);
        }
        fill(&mut m.output, &mut next);
        m.validate().expect("a valid model");
        m
    }

    #[test]
    fn a_kernel_summing_in_another_order_gives_the_same_bits() {
        let m = model::<16, 2>();
        let kernel = Reversed::default();
        for t in [0.0, 0.3, 0.999] {
            let temb = m.time_embedding(t);
            assert_eq!(m.time_embedding_with(&kernel, t), temb);
            let x = [[-32768, -700, 0, 5, 32767], [32767, 12, -1, 3000, -32768]];
            let want = m.forward(&x, &temb);
            assert_eq!(m.forward_with(&kernel, &x, &temb), want);
            let one = m.forward_with(&kernel, &[[x[0][1]], [x[1][1]]], &temb);
            assert_eq!(one, [[want[0][1]], [want[1][1]]]);
        }
    }

    #[test]
    fn every_dense_layer_goes_through_the_kernel() {
        let m = model::<16, 2>();
        let kernel = Reversed::default();
        let step = Step {
            t: 10,
            t_input: 0.01,
            update: crate::Update::Ddpm {
                c_eps: 0.5,
                c_x: 1.0,
            },
            sigma: 0.0,
        };
        let mut p = m.with_kernel(&kernel);
        let x = [0.25f32, -1.5];
        let eps = p.predict_noise(0, &step, x);
        // time_in, time_out, input, 2 per block, output
        assert_eq!(kernel.calls.get(), 3 + 2 * 2 + 1);
        assert_eq!(
            eps,
            PredictNoise::<f32>::predict_noise(&mut &m, 0, &step, x)
        );
        let lanes = [Lanes([0.25, 2.0]), Lanes([-1.5, 0.0])];
        let eps3 = p.predict_noise(0, &step, lanes);
        assert_eq!([eps3[0].0[0], eps3[1].0[0]], eps);
        // and what it returns is what the model uses
        let temb = m.time_embedding(0.5);
        let xq = [[100], [-100]];
        assert_ne!(m.forward_with(&OffByOne, &xq, &temb), m.forward(&xq, &temb));
    }
}
