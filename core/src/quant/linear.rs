//! A dense integer layer: int8 weights with a per-output-channel scale folded into an int32
//! bias and a requantization multiplier and shift.

use super::requant::{MAX_SHIFT, requantize};

/// The widest input a layer may have: `2^30 + 256·127·32768 < 2^31` (module docs, bounds).
pub const MAX_INPUTS: usize = 256;
/// The largest bias magnitude, 2^30.
pub const MAX_BIAS: i32 = 1 << 30;

/// Whether a weight is in `[−127, 127]`: −128 could make a sum reach 2^31 (module docs,
/// bounds).
pub const fn weight_in_range(w: i8) -> bool {
    w != i8::MIN
}

/// Whether a bias is within ±[`MAX_BIAS`].
pub const fn bias_in_range(b: i32) -> bool {
    b.unsigned_abs() <= MAX_BIAS.unsigned_abs()
}

/// Whether a requantization shift is at most [`MAX_SHIFT`].
pub const fn shift_in_range(s: u8) -> bool {
    s <= MAX_SHIFT
}

/// `acc_j = b_j + Σ_k w_jk·x_k`, then `requantize(acc_j, multiplier[j], shift[j])`.
/// Weights are stored `[out][in]` as in the float [`Linear`](crate::Linear).
#[derive(Clone, Debug, PartialEq)]
pub struct QLinear<const I: usize, const O: usize> {
    /// `weight[j][k]` multiplies input `k` into output `j`; in `[−127, 127]`.
    pub weight: [[i8; I]; O],
    /// In the accumulator's scale; `|bias[j]| ≤ 2^30`.
    pub bias: [i32; O],
    /// Output channel `j`'s requantization multiplier M.
    pub multiplier: [i32; O],
    /// Output channel `j`'s requantization shift s, at most 62.
    pub shift: [u8; O],
}

impl<const I: usize, const O: usize> QLinear<I, O> {
    /// All zero (a `const`, for `static` storage).
    pub const ZERO: Self = Self {
        weight: [[0; I]; O],
        bias: [0; O],
        multiplier: [0; O],
        shift: [0; O],
    };

    /// Bytes of parameters: `O·I` weights, then per channel a bias, a multiplier and a shift.
    pub const BYTES: usize = O * I + O * (4 + 4 + 1);

    /// Whether every weight, bias and shift is in range (the input count is checked at
    /// compile time by [`QLinear::accumulate`]).
    pub fn is_valid(&self) -> bool {
        in_range(self.weight.as_flattened(), &self.bias, &self.shift)
    }

    /// Output `j`'s sum for N samples: `bias[j] + Σ_k weight[j][k]·x[k][n]` per lane `n`,
    /// wrapping modulo 2^32 (exact on a valid layer). Each weight is loaded once for all N
    /// lanes.
    #[inline(always)]
    pub fn accumulate<const N: usize>(&self, j: usize, x: &[[i16; N]; I]) -> [i32; N] {
        const { assert!(I <= MAX_INPUTS, "an integer layer has at most 256 inputs") };
        accumulate_row(self.bias[j], &self.weight[j], x)
    }

    /// Output `j` for N samples: [`QLinear::accumulate`], then [`QLinear::requantize`].
    #[inline(always)]
    pub fn output<const N: usize>(&self, j: usize, x: &[[i16; N]; I]) -> [i16; N] {
        self.requantize(j, self.accumulate(j, x))
    }

    /// Output `j`'s sums (one per lane) requantized with channel `j`'s multiplier and shift.
    #[inline(always)]
    pub fn requantize<const N: usize>(&self, j: usize, sums: [i32; N]) -> [i16; N] {
        requantize_lanes(sums, self.multiplier[j], self.shift[j])
    }
}

/// Whether every weight, bias and shift of a layer is in range.
pub fn in_range(weight: &[i8], bias: &[i32], shift: &[u8]) -> bool {
    weight.iter().all(|&w| weight_in_range(w))
        && bias.iter().all(|&b| bias_in_range(b))
        && shift.iter().all(|&s| shift_in_range(s))
}

/// One output's sum for N lanes from its weight row: `bias + Σ_k row[k]·x[k][n]` per lane
/// `n`, wrapping modulo 2^32 (exact on a valid layer: at most [`MAX_INPUTS`] inputs). Each
/// weight is loaded once for all N lanes.
#[inline(always)]
pub fn accumulate_row<const N: usize>(bias: i32, row: &[i8], x: &[[i16; N]]) -> [i32; N] {
    let mut acc = [bias; N];
    for (&w, xk) in row.iter().zip(x) {
        let w = i32::from(w);
        // A plain loop over lanes: it vectorises across samples.
        for (a, &v) in acc.iter_mut().zip(xk) {
            *a = a.wrapping_add(w * i32::from(v));
        }
    }
    acc
}

/// One channel's sums (one per lane) requantized with its multiplier and shift.
#[inline(always)]
pub fn requantize_lanes<const N: usize>(sums: [i32; N], multiplier: i32, shift: u8) -> [i16; N] {
    sums.map(|a| requantize(a, multiplier, shift))
}

/// How a dense layer's sums are computed: the one step of the integer network a board or a
/// backend may do its own way (a DSP multiply-accumulate, registers blocked for its core),
/// because integer sums are exact in any order. Everything around it — requantization, GELU,
/// the residual, the wiring of the layers — stays [`QModel`](super::QModel)'s, so a kernel
/// cannot change anything but the speed of the result.
/// [`QModel::forward_with`](super::QModel::forward_with) calls it once per layer; the default
/// method is the portable loop ([`Portable`]).
pub trait Accumulate {
    /// `sums[j][n] = bias[j] + Σ_k weight[j][k]·x[k][n]` for every output `j` and lane `n`,
    /// modulo 2^32 (exact on a valid layer), in any order: the value of
    /// [`QLinear::accumulate`] for every `j`.
    #[inline(always)]
    fn accumulate<const I: usize, const O: usize, const N: usize>(
        &self,
        layer: &QLinear<I, O>,
        x: &[[i16; N]; I],
        sums: &mut [[i32; N]; O],
    ) {
        for (j, s) in sums.iter_mut().enumerate() {
            *s = layer.accumulate(j, x);
        }
    }
}

/// The portable kernel: [`QLinear::accumulate`] output by output, what every target runs
/// unless it brings its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Portable;

impl Accumulate for Portable {}

/// A kernel by reference (one a caller keeps, to look at it afterwards).
impl<K: Accumulate> Accumulate for &K {
    #[inline(always)]
    fn accumulate<const I: usize, const O: usize, const N: usize>(
        &self,
        layer: &QLinear<I, O>,
        x: &[[i16; N]; I],
        sums: &mut [[i32; N]; O],
    ) {
        K::accumulate(self, layer, x, sums);
    }
}
