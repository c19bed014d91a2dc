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

    #[test]
    fn extreme_operands_do_not_overflow() {
        for acc in [i32::MIN, i32::MAX, -1, 0, 1] {
            for m in [i32::MIN, i32::MAX, -1, 0, 1] {
                for s in [0, 1, 31, 61, 62, 63, 255] {
                    let exact = i128::from(acc) * i128::from(m);
                    let s_eff = u32::from(s.min(MAX_SHIFT));
                    let want = (exact + ((1i128 << s_eff) >> 1)) >> s_eff;
                    let want = want.clamp(i16::MIN.into(), i16::MAX.into()) as i16;
                    assert_eq!(requantize(acc, m, s), want, "{acc} {m} {s}");
                }
            }
        }
    }
}
