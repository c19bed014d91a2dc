//! The integer model re-laid-out for the integer kernels ("prepared integer model").
//!
//! `vpmaddwd` multiplies two int16 pairs and adds the two products into one int32 lane, so a
//! dense layer's inputs are taken two at a time: activations are stored as **pairs of units**
//! (`x[2p]` in the low half of an `i32` lane, `x[2p + 1]` in the high half, one lane per
//! sample), and a [`QPacked`] layer stores, per block of `width` outputs and per input pair
//! `p`, the weight pair `(w[j][2p], w[j][2p + 1])` widened to int16 in one `i32`, k-major like
//! the float [`Packed`](crate::batch::float::packed::Packed). An odd input count gets a zero weight for the
//! missing half; outputs past `O` get zero weights, bias and multiplier. Integer sums are
//! exact, so this pairing (any order of the k-loop) gives the core's sums bit for bit.
//!
//! Per output channel the kernels need the requantization's multiplier, shift and rounding
//! term ([`Requant`]); per GELU its shifts ([`QGelu`]) — both with the out-of-range clamping
//! of the specification (`tinyddpm_core::quant`) already applied.

use tinyddpm_core::Layer;
use tinyddpm_core::quant::{GELU_TABLE, Gelu, MAX_GAP, MAX_SHIFT, MIN_PRE_EXP, QLayer, QParams};

/// One output channel's requantization `sat16(⌊(acc·M + ⌊2^s/2⌋) / 2^s⌋)`, the shift
/// already clamped to [`MAX_SHIFT`] as the core does.
///
/// For `s ≥ 33` the vector paths need only the high 32 bits of the product: with
/// `acc·M = hi·2^32 + lo`, `0 ≤ lo < 2^32`, and `2^(s−1) = 2^(s−33)·2^32`,
/// `⌊(acc·M + 2^(s−1)) / 2^s⌋ = ⌊(hi + 2^(s−33)) / 2^(s−32)⌋` (the fraction `lo/2^32 < 1`
/// cannot carry across a multiple of `2^(s−32)`), all in `i32` (`|hi| ≤ 2^30`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Requant {
    /// M.
    pub multiplier: i32,
    /// s, at most 62.
    pub shift: u8,
    /// `⌊2^s/2⌋`.
    pub round: i64,
    /// Whether `s ≥ 33`, so that the high-half form applies.
    pub high: bool,
    /// `2^(s−33)` (high-half form).
    pub high_round: i32,
    /// `s − 32` (high-half form).
    pub high_shift: u32,
}

impl Requant {
    /// Channel `(multiplier, shift)`, clamped like `tinyddpm_core::quant::requantize`.
    pub const fn new(multiplier: i32, shift: u8) -> Self {
        let shift = if shift > MAX_SHIFT { MAX_SHIFT } else { shift };
        let high = shift >= 33;
        Self {
            multiplier,
            shift,
            round: (1i64 << shift) >> 1,
            high,
            high_round: if high { 1 << (shift - 33) } else { 0 },
            high_shift: if high { shift as u32 - 32 } else { 0 },
        }
    }
}

/// One GELU's shifts, from the exponents clamped by the core ([`Gelu::clamped`]): with
/// `a = |u|`, `i = a >> d`, `f = a − (i << d)` and
/// `c = C[i]·2^d + (C[i+1] − C[i])·f` for `i < 320`, else 0 (the specification's
/// interpolation, regrouped: the same integer), the output is
/// `sat16((max(u, 0) << up) − ((c + half) >> round))`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QGelu {
    /// The core's GELU (the portable path applies it per lane).
    pub gelu: Gelu,
    /// `d = p − 6`: one table step is `2^d` units of the input.
    pub step: u32,
    /// `r = p + 12 − o`.
    pub round: u32,
    /// `⌊2^r/2⌋`.
    pub half: i32,
    /// `o − p`.
    pub up: u32,
    /// `16384·2^d + ⌊2^r/2⌋`: the rounding term plus what the table of `C[i] − 16384`
    /// ([`GELU_C16`]) leaves out.
    pub offset: i32,
    /// Whether some `|u| ≤ 32768` reaches `i ≥ 320` (`d ≤ 6`).
    pub past_table: bool,
}

impl QGelu {
    /// The shifts of `gelu`.
    pub fn new(gelu: Gelu) -> Self {
        let (p, o) = gelu.clamped();
        let round = p + u32::from(MAX_GAP) - o;
        let step = p - u32::from(MIN_PRE_EXP);
        let half = (1 << round) >> 1;
        Self {
            gelu,
            step,
            round,
            half,
            up: o - p,
            offset: (16384 << step) + half,
            past_table: (32768 >> step) >= GELU_LAST,
        }
    }
}

/// The last interval's start: indices from here on read `c = 0`.
pub(crate) const GELU_LAST: i32 = (GELU_TABLE.len() - 1) as i32;

/// The GELU table for gathers, one `i32` per index: `C[i]` in the low 16 bits (unsigned, up
/// to 44,557), `C[i+1] − C[i]` in the high 16 bits (signed, |·| ≤ 2,022); the last entry is 0,
/// so a clamped index `min(i, 320)` gives `c = 0` as the specification's `i ≥ 320` does.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) static GELU_PAIRS: [i32; GELU_TABLE.len()] = {
    let mut t = [0i32; GELU_TABLE.len()];
    let mut i = 0;
    while i < GELU_LAST as usize {
        let diff = GELU_TABLE[i + 1] as i32 - GELU_TABLE[i] as i32;
        t[i] = GELU_TABLE[i] as i32 | (diff << 16);
        i += 1;
    }
    t
};

/// `C[i] − 16384` for `i < 320` (in `[−16384, 28173]`: a signed 16-bit operand of
/// `vpmaddwd`), as 16-bit words for in-register lookups (`vpermt2w`: 64 per instruction),
/// aligned for whole-vector loads.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) static GELU_C16: Words = {
    let mut t = [0u16; GELU_LAST as usize];
    let mut i = 0;
    while i < t.len() {
        t[i] = (GELU_TABLE[i] as i32 - 16384) as u16;
        i += 1;
    }
    Words(t)
};

/// `C[i+1] − C[i]` for `i < 320`, as [`GELU_C16`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) static GELU_DIFF: Words = {
    let mut t = [0u16; GELU_LAST as usize];
    let mut i = 0;
    while i < t.len() {
        t[i] = (GELU_TABLE[i + 1] as i32 - GELU_TABLE[i] as i32) as u16;
        i += 1;
    }
    Words(t)
};

/// 320 table words, cache-line aligned.
#[repr(C, align(64))]
pub(crate) struct Words(pub [u16; GELU_LAST as usize]);

/// Two int16 values as one `i32` lane: `lo` in the low half, `hi` in the high half.
#[inline(always)]
pub(crate) fn pair(lo: i16, hi: i16) -> i32 {
    i32::from(lo as u16) | (i32::from(hi) << 16)
}

/// One dense integer layer, blocked by `width` outputs, inputs in pairs.
#[derive(Clone, Debug)]
pub(crate) struct QPacked {
    /// Outputs per block (even: outputs are stored in pairs too).
    pub width: usize,
    /// Input pairs, `⌈I/2⌉`.
    pub pairs: usize,
    /// Real outputs (O).
    pub outputs: usize,
    /// `w[(block·pairs + p)·width + jj]`: `W[j][2p]` in the low half, `W[j][2p+1]` in the high.
    pub weight: Vec<i32>,
    /// `b[block·width + jj]`.
    pub bias: Vec<i32>,
    /// Per padded output channel.
    pub requant: Vec<Requant>,
}

impl QPacked {
    /// `layer` blocked by `width` (even) outputs.
    pub fn new(layer: &QLayer<'_>, width: usize) -> Self {
        assert!(width.is_multiple_of(2), "outputs are stored in pairs");
        let (inputs, outputs) = (layer.inputs(), layer.bias.len());
        let (blocks, pairs) = (outputs.div_ceil(width), inputs.div_ceil(2));
        let mut weight = vec![0; blocks * pairs * width];
        let mut bias = vec![0; blocks * width];
        let mut requant = vec![Requant::new(0, 0); blocks * width];
        for (j, row) in layer.weight.chunks_exact(inputs).enumerate() {
            let (block, jj) = (j / width, j % width);
            bias[j] = layer.bias[j];
            requant[j] = Requant::new(layer.multiplier[j], layer.shift[j]);
            for (p, ws) in row.chunks(2).enumerate() {
                let hi = ws.get(1).map_or(0, |&w| w.into());
                weight[(block * pairs + p) * width + jj] = pair(ws[0].into(), hi);
            }
        }
        Self {
            width,
            pairs,
            outputs,
            weight,
            bias,
            requant,
        }
    }
}

/// Every layer of an integer model but the time embedding's (computed once per step by the
/// core), blocked for one kernel, with the exponents of the f32 boundary.
#[derive(Clone, Debug)]
pub(crate) struct QLayers {
    /// Exponent of x_t.
    pub input_exp: u8,
    /// Exponent of ε̂.
    pub output_exp: u8,
    /// `input_layer.0`.
    pub input: QPacked,
    /// Its GELU into the stream.
    pub input_act: QGelu,
    /// Per block: `first`, its GELU, `second`, its GELU into the stream.
    pub blocks: Vec<QBlockPacked>,
    /// `output_layer`.
    pub output: QPacked,
}

/// One residual block, packed.
#[derive(Clone, Debug)]
pub(crate) struct QBlockPacked {
    /// `hidden_layers.i.0`.
    pub first: QPacked,
    /// Its GELU.
    pub act: QGelu,
    /// `hidden_layers.i.2`.
    pub second: QPacked,
    /// Its GELU into the stream.
    pub second_act: QGelu,
}

impl QLayers {
    /// `model` with H-output layers blocked by `width`, the D-output layer by 2.
    pub fn new(model: &QParams<'_>, width: usize) -> Self {
        let gelu = |l: &QLayer<'_>| QGelu::new(l.act.unwrap_or_default());
        let (input, output) = (model.layer(Layer::Input), model.layer(Layer::Output));
        Self {
            input_exp: input.in_exp,
            output_exp: output.out_exp,
            input: QPacked::new(&input, width),
            input_act: gelu(&input),
            blocks: (0..model.layout.blocks)
                .map(|k| {
                    let first = model.layer(Layer::BlockFirst(k));
                    let second = model.layer(Layer::BlockSecond(k));
                    QBlockPacked {
                        first: QPacked::new(&first, width),
                        act: gelu(&first),
                        second: QPacked::new(&second, width),
                        second_act: gelu(&second),
                    }
                })
                .collect(),
            output: QPacked::new(&output, 2),
        }
    }

    /// D: coordinates of a point.
    pub fn dim(&self) -> usize {
        self.output.outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The regrouped interpolation `C[i]·2^d + (C[i+1] − C[i])·f` read from the pair table
    /// equals the specification's `C[i]·(2^d − f) + C[i+1]·f` for every index and fraction.
    #[test]
    fn pair_table_regroups_the_interpolation_exactly() {
        for d in 0..=15u32 {
            for i in 0..GELU_TABLE.len() - 1 {
                let e = GELU_PAIRS[i];
                let (c, diff) = (e & 0xffff, e >> 16);
                assert_eq!(c, i32::from(GELU_TABLE[i]));
                for f in [0, 1, (1 << d) / 2, (1 << d) - 1] {
                    let spec = i64::from(GELU_TABLE[i]) * ((1 << d) - f)
                        + i64::from(GELU_TABLE[i + 1]) * f;
                    assert_eq!(i64::from((c << d) + diff * f as i32), spec);
                }
            }
        }
        assert_eq!(GELU_PAIRS[GELU_LAST as usize], 0);
    }
}
