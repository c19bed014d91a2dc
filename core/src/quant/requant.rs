//! Requantization: an `i32` sum to an `i16` activation by one fixed-point multiply, one
//! rounding and a saturation (the module docs of [`quant`](super) give the derivation).

/// The largest shift: `|acc·M| ≤ 2^62` plus the rounding term `2^61` stays below 2^63.
pub const MAX_SHIFT: u8 = 62;

/// `round(2^31/√2)`: the residual's division by √2 as a multiplier ...
pub const SQRT_HALF_MULTIPLIER: i32 = 1_518_500_250;
/// ... with this shift.
pub const SQRT_HALF_SHIFT: u8 = 31;

/// `min(max(v, −32768), 32767)`.
#[inline(always)]
pub fn sat16(v: i64) -> i16 {
    v.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// `sat16(⌊(acc·M + ⌊2^s/2⌋) / 2^s⌋)` in `i64`: `acc·M·2^−s` rounded to nearest, ties toward
/// +∞ (CMSIS-NN's single-rounding `arm_nn_requantize`), then saturated. A shift above
/// [`MAX_SHIFT`] is taken as [`MAX_SHIFT`].
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: u8) -> i16 {
    let s = shift.min(MAX_SHIFT);
    let product = i64::from(acc) * i64::from(multiplier);
    if s > 32 {
        // The same value from the product's high word in 32-bit operations, which a 32-bit
        // core does without a 64-bit shift (every layer of a quantized model has s > 32):
        // ⌊(P + 2^(s−1)) / 2^s⌋ = ⌊(⌊P / 2^(s−1)⌋ + 1) / 2⌋ for any integer P, and
        // ⌊P / 2^(s−1)⌋ = ⌊⌊P / 2^32⌋ / 2^(s−33)⌋, with |⌊P / 2^32⌋| ≤ 2^30.
        let q = ((product >> 32) as i32) >> (s - 33);
        let rounded = (q >> 1) + (q & 1);
        return rounded.clamp(i16::MIN.into(), i16::MAX.into()) as i16;
    }
    sat16((product + ((1i64 << s) >> 1)) >> s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_half_multiplier_is_the_rounded_constant() {
        let exact = 2f64.powi(31) / core::f64::consts::SQRT_2;
        assert_eq!(f64::from(SQRT_HALF_MULTIPLIER), libm::round(exact));
    }

    /// The formula in i128, `shift` taken as at most [`MAX_SHIFT`].
    fn exact(acc: i32, m: i32, s: u8) -> i16 {
        let s = u32::from(s.min(MAX_SHIFT));
        let want = (i128::from(acc) * i128::from(m) + ((1i128 << s) >> 1)) >> s;
        want.clamp(i16::MIN.into(), i16::MAX.into()) as i16
    }

    #[test]
    fn every_shift_equals_the_formula() {
        // both paths (s ≤ 32 in i64, s > 32 from the high word), ties and saturation
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 32) as u32 as i32
        };
        for s in 0..=64u8 {
            for _ in 0..2000 {
                let (acc, m) = (next(), next());
                // small sums as well as full-range ones, so that results do not all saturate
                for acc in [acc, acc >> 12, acc >> 24] {
                    assert_eq!(requantize(acc, m, s), exact(acc, m, s), "{acc} {m} {s}");
                }
            }
            // exact ties, acc·M = (2k + 1)·2^(s−1), on both paths
            if (1..=58).contains(&s) {
                let b = (s - 1).min(30);
                for k in -5..5 {
                    let (acc, m) = ((2 * k + 1) << (s - 1 - b), 1 << b);
                    assert_eq!(requantize(acc, m, s), exact(acc, m, s), "tie {acc} {m} {s}");
                }
            }
        }
    }

    #[test]
    fn extreme_operands_do_not_overflow() {
        for acc in [i32::MIN, i32::MAX, -1, 0, 1] {
            for m in [i32::MIN, i32::MAX, -1, 0, 1] {
                for s in [0, 1, 31, 32, 33, 34, 61, 62, 63, 255] {
                    assert_eq!(requantize(acc, m, s), exact(acc, m, s), "{acc} {m} {s}");
                }
            }
        }
    }
}
