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

    /// The GELU after `input`, into the stream.
    fn input_act(&self) -> Gelu {
        Gelu {
            pre_exp: self.input_pre_exp,
            post_exp: self.stream_exp,
        }
    }

    /// The GELU after a block's `second`, into the stream.
    fn second_act(&self, block: &QBlock<H>) -> Gelu {
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
