//! [`QModel<H, B>`]: the float [`Model`](crate::Model)'s network on integers, wired as the
//! module docs of [`quant`](super) specify.

use super::boundary::{from_i16, to_i16};
use super::gelu::Gelu;
use super::linear::QLinear;
use super::requant::{SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT, requantize, sat16};
use crate::lanes::Lanes;
use crate::model::Layer;
use crate::sample::PredictNoise;
use crate::sampler::Step;

/// The largest activation exponent: scales from 1 down to 2^−24.
pub const MAX_EXP: u8 = 24;
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

/// The integer model: `H` hidden units, `B` residual blocks (`H ≤ 256`, checked at compile
/// time). Every activation exponent `e` means the scale `2^−e`.
#[derive(Clone, Debug, PartialEq)]
pub struct QModel<const H: usize, const B: usize> {
    /// `time_embed.embed.0`: reads `t/T` at [`TIME_EXP`].
    pub time_in: QLinear<1, H>,
    /// The time embedding's GELU; its output is `time_out`'s input.
    pub time_act: Gelu,
    /// `time_embed.embed.2`: writes the embedding at `stream_exp`.
    pub time_out: QLinear<H, H>,
    /// Exponent of x_t, the network's input.
    pub input_exp: u8,
    /// `input_layer.0`: writes the pre-activation of exponent `input_pre_exp`.
    pub input: QLinear<2, H>,
    /// Exponent of `input`'s output, whose GELU writes the stream.
    pub input_pre_exp: u8,
    /// Exponent of the residual stream, the time embedding and each block's branch.
    pub stream_exp: u8,
    /// `hidden_layers.0 .. B`
    pub blocks: [QBlock<H>; B],
    /// `output_layer`: reads the stream, writes ε̂ at `output_exp`.
    pub output: QLinear<H, 2>,
    /// Exponent of ε̂.
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

impl<const H: usize, const B: usize> QModel<H, B> {
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
        + QLinear::<2, H>::BYTES
        + B * 2 * QLinear::<H, H>::BYTES
        + QLinear::<H, 2>::BYTES;

    /// Activation exponents the model holds ([`QModel::for_each_exponent`]).
    pub const EXPONENTS: usize = 6 + 3 * B;

    /// Every dense layer in PyTorch `state_dict` order (the float model's
    /// [`for_each_tensor`](crate::Model::for_each_tensor) order), with its input and output
    /// exponents and its GELU.
    pub fn for_each_layer(&self, mut f: impl FnMut(QLayer<'_>)) {
        let (stream, time) = (self.stream_exp, self.time_act);
        f(self
            .time_in
            .layer(Layer::TimeIn, TIME_EXP, time.pre_exp, Some(time)));
        f(self
            .time_out
            .layer(Layer::TimeOut, time.post_exp, stream, None));
        let input = self.input_act();
        f(self
            .input
            .layer(Layer::Input, self.input_exp, input.pre_exp, Some(input)));
        for (i, b) in self.blocks.iter().enumerate() {
            f(b.first
                .layer(Layer::BlockFirst(i), stream, b.act.pre_exp, Some(b.act)));
            let act = self.second_act(b);
            f(b.second.layer(
                Layer::BlockSecond(i),
                b.act.post_exp,
                act.pre_exp,
                Some(act),
            ));
        }
        f(self
            .output
            .layer(Layer::Output, stream, self.output_exp, None));
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
        let t = self.time_act;
        for e in [self.input_exp, self.stream_exp, self.output_exp] {
            f(e);
        }
        for e in [t.pre_exp, t.post_exp, self.input_pre_exp] {
            f(e);
        }
        for b in &self.blocks {
            for e in [b.act.pre_exp, b.act.post_exp, b.second_pre_exp] {
                f(e);
            }
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
        for (name, value) in [
            ("input_exp", self.input_exp),
            ("stream_exp", self.stream_exp),
            ("output_exp", self.output_exp),
        ] {
            if value > MAX_EXP {
                return Err(QuantError::Exponent { name, value });
            }
        }
        let gelu = |layer, g: Gelu| match g.is_valid() {
            true => Ok(()),
            false => Err(QuantError::Gelu {
                layer,
                pre_exp: g.pre_exp,
                post_exp: g.post_exp,
            }),
        };
        gelu(Layer::TimeIn, self.time_act)?;
        gelu(Layer::Input, self.input_act())?;
        for (i, b) in self.blocks.iter().enumerate() {
            gelu(Layer::BlockFirst(i), b.act)?;
            gelu(Layer::BlockSecond(i), self.second_act(b))?;
        }
        let params = |layer, ok: bool| match ok {
            true => Ok(()),
            false => Err(QuantError::Parameters { layer }),
        };
        params(Layer::TimeIn, self.time_in.is_valid())?;
        params(Layer::TimeOut, self.time_out.is_valid())?;
        params(Layer::Input, self.input.is_valid())?;
        for (i, b) in self.blocks.iter().enumerate() {
            params(Layer::BlockFirst(i), b.first.is_valid())?;
            params(Layer::BlockSecond(i), b.second.is_valid())?;
        }
        params(Layer::Output, self.output.is_valid())
    }

    /// The time embedding at the stream's exponent for network input `t_input` (= t/T),
    /// shared by every sample of a step.
    pub fn time_embedding(&self, t_input: f32) -> [i16; H] {
        let t = [[to_i16(t_input, TIME_EXP)]];
        let mut hidden = [[0i16; 1]; H];
        for (j, hj) in hidden.iter_mut().enumerate() {
            *hj = self.time_in.output(j, &t).map(|u| self.time_act.apply(u));
        }
        core::array::from_fn(|j| self.time_out.output(j, &hidden)[0])
    }

    /// ε̂ at `output_exp` for N samples given as activations at `input_exp` (lane n of each
    /// unit is sample n), with that step's time embedding.
    pub fn forward<const N: usize>(&self, x: &[[i16; N]; 2], temb: &[i16; H]) -> [[i16; N]; 2] {
        let mut h = [[0i16; N]; H];
        let act = self.input_act();
        for (j, (hj, &tj)) in h.iter_mut().zip(temb).enumerate() {
            let u = self.input.output(j, x);
            for (hv, uv) in hj.iter_mut().zip(u) {
                *hv = sat16(i64::from(act.apply(uv)) + i64::from(tj));
            }
        }
        let mut v = [[0i16; N]; H];
        for block in &self.blocks {
            for (j, vj) in v.iter_mut().enumerate() {
                *vj = block.first.output(j, &h).map(|u| block.act.apply(u));
            }
            let act = self.second_act(block);
            for (j, (hj, &tj)) in h.iter_mut().zip(temb).enumerate() {
                let u = block.second.output(j, &v);
                for (hv, uv) in hj.iter_mut().zip(u) {
                    let sum = i32::from(act.apply(uv)) + i32::from(*hv) + i32::from(tj);
                    *hv = requantize(sum, SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT);
                }
            }
        }
        [0, 1].map(|c| self.output.output(c, &h))
    }

    /// ε̂ for N samples of f32 coordinates (`x[c][n]`: coordinate c of sample n): each
    /// converted at `input_exp`, [`QModel::forward`], each ε̂ converted from `output_exp`.
    pub fn predict_noise<const N: usize>(
        &self,
        x: [[f32; N]; 2],
        temb: &[i16; H],
    ) -> [[f32; N]; 2] {
        let xq = x.map(|c| c.map(|v| to_i16(v, self.input_exp)));
        self.forward(&xq, temb)
            .map(|c| c.map(|q| from_i16(q, self.output_exp)))
    }
}

/// One sample: the step's integer time embedding, then the integer network.
impl<const H: usize, const B: usize> PredictNoise<f32> for &QModel<H, B> {
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [f32; 2]) -> [f32; 2] {
        let eps = QModel::predict_noise(self, x.map(|v| [v]), &self.time_embedding(step.t_input));
        eps.map(|[v]| v)
    }
}

/// N samples, one per lane, sharing each weight load and the step's time embedding; lane n
/// gets the bits the scalar implementation gives sample n.
impl<const H: usize, const B: usize, const N: usize> PredictNoise<Lanes<N>> for &QModel<H, B> {
    #[inline]
    fn predict_noise(&mut self, _k: usize, step: &Step, x: [Lanes<N>; 2]) -> [Lanes<N>; 2] {
        let eps = QModel::predict_noise(self, x.map(|c| c.0), &self.time_embedding(step.t_input));
        eps.map(Lanes)
    }
}
