//! The f32 boundary of the integer model: x_t and t/T in, ε̂ out, with IEEE operations every
//! backend has (a multiply by a power of two, two adds, compares) and no platform `roundf`.

/// The largest activation exponent: scales from 1 down to 2^−24. Its bound is the
/// boundary's: `2^−24` is far inside f32's normal range, so `pow2` is exact for every
/// exponent an activation may have.
pub const MAX_EXP: u8 = 24;

/// 1.5·2^23: adding and subtracting it rounds an f32 of magnitude below 2^22 to an integer,
/// half to even (the f32 spacing at 1.5·2^23 is 1 and the addition rounds to nearest even).
const ROUNDER: f32 = 12_582_912.0;

/// `2^e` as an f32, exactly (`e ≤ MAX_EXP`, far inside the normal range).
#[inline(always)]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e) as u32) << 23)
}

/// An f32 to an activation of exponent `exp` (value `q·2^−exp`): `y = v·2^exp`, then NaN → 0,
/// `y ≥ 32767` → 32767, `y ≤ −32768` → −32768, else `y` rounded half to even. An exponent
/// above [`MAX_EXP`] is taken as [`MAX_EXP`].
#[inline(always)]
pub fn to_i16(v: f32, exp: u8) -> i16 {
    let y = v * pow2(i32::from(exp.min(MAX_EXP)));
    if y.is_nan() {
        0
    } else if y >= 32767.0 {
        i16::MAX
    } else if y <= -32768.0 {
        i16::MIN
    } else {
        // |y| < 2^15: the sum is exact to the integer grid, and the difference is exact.
        ((y + ROUNDER) - ROUNDER) as i16
    }
}

/// An activation of exponent `exp` to f32: `q·2^−exp`, exact. An exponent above [`MAX_EXP`]
/// is taken as [`MAX_EXP`].
#[inline(always)]
pub fn from_i16(q: i16, exp: u8) -> f32 {
    f32::from(q) * pow2(-i32::from(exp.min(MAX_EXP)))
}
