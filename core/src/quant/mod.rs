//! The integer model: int8 weights, int16 activations, int32 sums — and its exact arithmetic.
//!
//! Why: the seed model is 466 KB of f32, and on an FPU-less Cortex-M0 every float
//! multiply-add is a software routine of a few hundred instructions. Here weights are int8
//! (4× smaller), a product is one 32-bit `MULS` on every Cortex-M, and integer sums are exact,
//! so the result no longer depends on the summation order: any SIMD blocking, lane layout or
//! thread split gives the same bits. Only the f32 boundary (x_t in, ε̂ out) and the reverse
//! step (`Step::apply`, unchanged) are floating point.
//!
//! This page is the specification: every rounding, saturation and bound, so that another
//! implementation (host SIMD tiles, CUDA, firmware, C) can match it bit for bit. The code in
//! this module is its reference implementation and `core/tests/quant.rs` checks it against a
//! second, independent one written from this text.
//!
//! # Notation
//!
//! `⌊·⌋` is the floor; `a >> s` is an arithmetic shift, i.e. `⌊a / 2^s⌋` (also for a < 0).
//! `sat16(v) = min(max(v, −32768), 32767)`. Every integer below is computed exactly (the
//! bounds section shows no intermediate overflows its type).
//!
//! # Scales
//!
//! - **Activations** are `i16` values `q` with the real value `q·2^−e`: a **power-of-two
//!   scale**, one exponent `e` per tensor, `0 ≤ e ≤ 24` ([`MAX_EXP`]), fixed at quantization
//!   time. A power of two costs at most one bit of the 16 and makes every conversion between
//!   activations a shift: the f32 boundary is exact, GELU needs one shared table, ε̂ leaves
//!   exactly.
//! - **Weights** are `i8` in `[−127, 127]` (symmetric, zero point 0; −128 is not allowed,
//!   see the bounds), with a real scale `s_w[j]` per output channel `j`. The scale is not
//!   stored: it is folded into the bias and the requantization multiplier of channel `j`.
//! - **Biases** are `i32` with `|b| ≤ 2^30` ([`MAX_BIAS`]), in the accumulator's scale
//!   `2^−e_in·s_w[j]`.
//!
//! # Operations
//!
//! **Boundary in** ([`to_i16`]), f32 `v` to an activation of exponent `e`:
//! `y = v·2^e` (one f32 multiply by an exact power of two: exact, or ±∞ on overflow); then
//! NaN → 0; `y ≥ 32767` → 32767; `y ≤ −32768` → −32768; otherwise round half to even, computed
//! as `(y + 1.5·2^23) − 1.5·2^23` in f32 (exact for `|y| < 2^22` in round-to-nearest-even
//! mode), and converted to an integer (exact). No platform `roundf` is involved.
//!
//! **Dense layer** ([`QLinear`]), input activations `x_k` (one exponent `e_in`):
//! `acc_j = b_j + Σ_k w_jk·x_k` in `i32`. The sum is taken modulo 2^32 (wrapping adds), so it
//! is the same in any order and never traps; on a valid model it never wraps (bounds), so it
//! is the exact integer sum.
//!
//! **Requantization** ([`requantize`]) with an `i32` multiplier `M` and a shift
//! `0 ≤ s ≤ 62` ([`MAX_SHIFT`]), per output channel:
//! `sat16(⌊(acc·M + ⌊2^s/2⌋) / 2^s⌋)`, the product and sum in `i64`. That is `acc·M·2^−s`
//! rounded to the nearest integer, ties toward +∞, then saturated: one rounding, the correctly
//! rounded result. It is CMSIS-NN's `arm_nn_requantize` with `CMSIS_NN_USE_SINGLE_ROUNDING`:
//! its `(((acc·M) >> (t−1)) + 1) >> 1` with `t = 31 − shift ∈ [1, 62]` is this formula with
//! `s = t`, before our saturation (CMSIS keeps the first shift's result in an `i32`, so the two
//! agree wherever `|acc·M·2^−s| < 2^30`, in particular wherever the result is not saturated).
//! CMSIS-NN's default branch — `arm_nn_doubling_high_mult` (round half away from zero on
//! 2^31) and then `arm_nn_divide_by_power_of_two` (again half away from zero) — rounds twice
//! and can land one unit from the correctly rounded value; it is not used. The quantizer
//! normalises `M` into `[2^30, 2^31)` (31 significant bits) whenever `s ≤ 62` allows.
//!
//! **GELU** ([`Gelu`]), from a pre-activation `u` of exponent `p` to an activation of
//! exponent `o`, with `6 ≤ p ≤ 21` and `p ≤ o ≤ p + 12`. Exact GELU is
//! `GELU(x) = max(x, 0) − c(|x|)` with `c(a) = a·Φ(−a)` (even, at most 0.17, below 2e-6 past
//! a = 5). One table [`GELU_TABLE`] holds `C[i] = round(c(i/64)·2^18)` for `i = 0..=320`
//! (a ∈ [0, 5] in steps of 1/64; 321 `u16`, 642 bytes, shared by every layer and every shape).
//! With `a = |u|`, `d = p − 6` (so that one table step is `2^d` units of `u`):
//!
//! ```text
//! i = a >> d,  f = a − (i << d)                          index and fraction
//! c = C[i]·(2^d − f) + C[i+1]·f   if i < 320,  else 0    exact; units 2^−(p+12)
//! r = p + 12 − o                                          0 ≤ r ≤ 12
//! c' = (c + ⌊2^r/2⌋) >> r                                 to units 2^−o, ties toward +∞
//! out = sat16((max(u, 0) << (o − p)) − c')
//! ```
//!
//! Measured against exact GELU (`core/tests/quant.rs`, every i16 input): the table and its
//! interpolation are within 2.6e-5 of `c` (linear interpolation `c''·Δ²/8` with `|c''| ≤ 0.8`,
//! Δ = 1/64, plus the entries' rounding), so `|out·2^−o − GELU(u·2^−p)| ≤ 2.6e-5 + 2^−o/2`
//! wherever the output does not saturate.
//!
//! **Boundary out** ([`from_i16`]): `ε̂ = (q as f32)·2^−e`, both steps exact (`|q| ≤ 2^15`).
//!
//! # The network
//!
//! Exponents: `t` has [`TIME_EXP`] = 15 (t/T < 1, so 2^15 covers it); `x` has
//! [`QModel::input_exp`]; the residual stream `h`, the time embedding and each block's
//! residual branch share one exponent [`QModel::stream_exp`], so the residual sum is a plain
//! integer sum; each GELU has its own pre-activation exponent and, where it does not feed
//! the stream, its own output exponent; ε̂ has [`QModel::output_exp`]. With `L(·)` a dense
//! layer followed by its requantization:
//!
//! ```text
//! t_q   = to_i16(t/T, 15)                                     the step's time input
//! temb  = L_time_out(GELU(L_time_in(t_q)))                    at the stream's exponent
//! x_q   = to_i16(x, input_exp)                                per coordinate, D of them
//! h     = sat16(GELU(L_input(x_q)) + temb)                    i32 sum, saturated; D → H
//! B ×:  v = GELU(L_first(h));  r = GELU(L_second(v))          r at the stream's exponent
//!       h = requantize(r + h + temb, M = 1518500250, s = 31)  i32 sum, then ×(1/√2)
//! ε̂     = from_i16(L_output(h), output_exp)                   H → D, per coordinate
//! ```
//!
//! D, the data's dimension (`QModel<H, B, D>`, 2 unless named), sets only `L_input`'s inputs
//! and `L_output`'s outputs; the exponents are per tensor, so x and ε̂ keep one each whatever
//! D is, and the exponent list does not depend on D.
//!
//! `M = round(2^31/√2)`: the residual's division by √2 is one fixed-point multiply with one
//! rounding (relative error of `M` 8e-12).
//!
//! **The time embedding is integer too**: `t/T` to int16 exactly as above, int8 weights,
//! integer GELU, requantized to the stream's exponent — so a board without an FPU computes it
//! per step in integers (16,500 multiply-adds for H = 128). The alternatives do not fit a
//! small part: a float embedding quantized per step costs a Cortex-M0 about 6 M instructions
//! per step in software float, and a precomputed table of every step's embedding is
//! T·H·2 bytes, 256 KB for DDPM-1000 at H = 128.
//!
//! # Bounds
//!
//! - Dense sum: `|acc| ≤ |b| + I·127·32768 ≤ 2^30 + 256·4,161,536 = 2,139,095,040 < 2^31 − 1`
//!   for `I ≤ 256` ([`MAX_INPUTS`]): a valid model never wraps. (−128 weights are excluded
//!   because 256·128·32768 = 2^30 would reach 2^31 with the largest bias.) For the seed
//!   model, H = 128, the products alone stay below 2^29.
//! - Requantization: `|acc·M| ≤ 2^31·2^31 = 2^62` and `⌊2^s/2⌋ ≤ 2^61`, so the `i64` sum
//!   stays below 2^63 for any `i32` acc and M.
//! - GELU: `C[i] ≤ 44,557 < 2^16` and `d ≤ 15`, so `c ≤ 44,557·2^15 < 2^31`;
//!   `max(u, 0) << (o − p) < 2^15·2^12 = 2^27`.
//! - Residual: `|r + h + temb| ≤ 3·2^15 < 2^17`, times M < 2^48.
//!
//! Out-of-range parameters never make evaluation panic: an exponent or shift outside its
//! range is clamped into it when used, and sums wrap. [`QModel::validate`] rejects such a
//! model, so a model that validates is evaluated exactly as written above.
//!
//! # Order of work
//!
//! Everything inside the network is integer and exact, so implementations may reorder
//! freely: the k-loop of a sum in any order or blocking, outputs in any order or split across
//! threads, samples as lanes of any width (the core's [`QModel::forward`] runs N samples per
//! weight load, `[i16; N]` per unit). Per element, the steps of one requantization, one GELU
//! or one residual are a fixed sequence and stay as written. The f32 boundary is per sample.

mod boundary;
mod gelu;
mod linear;
mod model;
mod params;
mod requant;

pub use boundary::{MAX_EXP, from_i16, to_i16};
pub use gelu::{GELU_TABLE, Gelu, MAX_GAP, MAX_PRE_EXP, MIN_PRE_EXP, TABLE_END};
pub use linear::{
    Accumulate, MAX_BIAS, MAX_INPUTS, Portable, QLinear, accumulate_row, bias_in_range,
    requantize_lanes, shift_in_range, weight_in_range,
};
#[cfg(feature = "file")]
pub(crate) use model::validate_exponents;
pub use model::{
    QBlock, QLayer, QLayerMut, QModel, QSeedModel, QuantError, TIME_EXP, WithKernel,
    layer_exponents, time_embedding_in,
};
pub use params::{QParams, QParamsMut};
pub use requant::{MAX_SHIFT, SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT, requantize, sat16};
