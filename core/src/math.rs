//! Portable `ln` and `sin`/`cos` for the Gaussian noise: integer bit manipulation plus
//! `+ − × ÷` only, so x86, Cortex-M and CUDA (copying these lines) produce the same bits.
//! Platform maths libraries differ in the last bit; these functions define the project's.

/// ln(2) split so that `k·LN2_HI` is exact for |k| < 2^9 (musl/fdlibm's logf constants,
/// given by their bits: musl writes them as hex floats).
const LN2_HI: f32 = f32::from_bits(0x3f31_7180);
const LN2_LO: f32 = f32::from_bits(0x3717_f7d1);
/// Minimax coefficients of `(ln(1+f) − 2s)/s` in s² (fdlibm `logf`: 0xaaaaaa.0p-24, …).
const LG1: f32 = f32::from_bits(0x3f2a_aaaa);
const LG2: f32 = f32::from_bits(0x3ecc_ce13);
const LG3: f32 = f32::from_bits(0x3e91_e9ee);
const LG4: f32 = f32::from_bits(0x3e78_9e26);
/// Bits of √2/2: the mantissa is reduced into [√2/2, √2).
const SQRT_HALF_BITS: u32 = 0x3f35_04f3;

/// Natural logarithm of a positive, normal, finite `x` (fdlibm's `logf` reduction and
/// polynomial), relative error below 1.5e-7 over the normal range (tested).
///
/// `x = 2^k·m` with m ∈ [√2/2, √2); with f = m − 1 and s = f/(2 + f),
/// ln m = f − f²/2 + s·(f²/2 + R(s²)).
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits().wrapping_add(0x3f80_0000 - SQRT_HALF_BITS);
    let k = (bits >> 23) as i32 - 0x7f;
    let m = f32::from_bits((bits & 0x007f_ffff) + SQRT_HALF_BITS);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * LG4);
    let t2 = z * (LG1 + w * LG3);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    s * (hfsq + r) + dk * LN2_LO - hfsq + f + dk * LN2_HI
}

/// Bits of the turn fraction fed to [`sincos_turns`].
pub const TURN_BITS: u32 = 24;
/// 2π / 2^24: one step of the turn fraction in radians.
const RADIANS_PER_STEP: f32 = core::f32::consts::TAU / (1u32 << TURN_BITS) as f32;

/// Taylor-like minimax coefficients of sin and cos on [−π/4, π/4] (Cephes `sinf`/`cosf`).
const S1: f32 = -1.666_665_5e-1;
const S2: f32 = 8.332_161e-3;
const S3: f32 = -1.951_529_6e-4;
const C1: f32 = 4.166_664_6e-2;
const C2: f32 = -1.388_731_6e-3;
const C3: f32 = 2.443_315_7e-5;

/// `(cos θ, sin θ)` for θ = 2π·k/2^24, k < 2^24: absolute error below 2e-7 (tested).
///
/// The quadrant is taken from the integer k (exact range reduction, no π rounding error):
/// k = q·2^22 + r with r ∈ [−2^21, 2^21), θ = q·π/2 + r·2π/2^24, |r·2π/2^24| ≤ π/4.
pub fn sincos_turns(k: u32) -> (f32, f32) {
    let k = k & ((1 << TURN_BITS) - 1);
    let q = ((k + (1 << 21)) >> 22) & 3;
    let r = k as i32 - (q << 22) as i32;
    let r = if r >= 1 << 23 {
        r - (1 << TURN_BITS)
    } else {
        r
    };
    let x = r as f32 * RADIANS_PER_STEP;
    let z = x * x;
    let s = ((S3 * z + S2) * z + S1) * z * x + x;
    let c = ((C3 * z + C2) * z + C1) * z * z - 0.5 * z + 1.0;
    match q {
        0 => (c, s),
        1 => (-s, c),
        2 => (-c, -s),
        _ => (s, -c),
    }
}

/// log2(e).
const LOG2E: f32 = core::f32::consts::LOG2_E;
/// 1.5·2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to an integer.
const ROUND: f32 = 12_582_912.0;
/// ln 2 split so that `n·EXP_LN2_HI` is exact for the |n| ≤ 126 used here (Cephes `expf`).
const EXP_LN2_HI: f32 = 0.693_359_4;
const EXP_LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, e^y is under f32's smallest normal; clamping keeps 2^n a normal number.
const EXP_MIN: f32 = -87.0;

/// e^y for y ≤ 0, relative error below 3e-7 (tested); y < −87 gives e^−87 ≈ 1.6e-38, not 0.
/// Branch-free (Cephes `expf` polynomial, 2^n from the rounding constant's low bits) so a
/// loop over many values vectorises, unlike a scalar `expf` call.
#[inline(always)]
pub fn exp_nonpositive(y: f32) -> f32 {
    let y = if y > EXP_MIN { y } else { EXP_MIN };
    let shifted = y * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = y - n * EXP_LN2_HI - n * EXP_LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    // `shifted` is 1.5·2^23 + n exactly, so its low bits are n: 2^n without a float-to-int
    // conversion.
    let exponent = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    let scale = f32::from_bits(exponent << 23);
    (p * r * r + r + 1.0) * scale
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn ln_relative_error_below_1_5e_7() {
        let mut worst = 0.0f64;
        let mut check = |x: f32| {
            let exact = libm::log(x as f64);
            let err = if exact == 0.0 {
                (ln(x) as f64).abs()
            } else {
                ((ln(x) as f64 - exact) / exact).abs()
            };
            worst = worst.max(err);
        };
        // every 24-bit uniform the noise uses: (j + 1)·2^-24, plus a sweep of all exponents
        for j in 0..(1u32 << 24) {
            check((j + 1) as f32 * (1.0 / 16_777_216.0));
        }
        for b in (0x0080_0000u32..0x7f80_0000).step_by(4099) {
            check(f32::from_bits(b));
        }
        std::println!("ln worst relative error {worst:e}");
        assert!(worst < 1.5e-7, "worst relative error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn exp_relative_error_below_3e_7() {
        let mut worst = 0.0f64;
        for i in 0..=870_000 {
            let y = -(i as f32) * 1e-4;
            let exact = libm::exp(y as f64);
            worst = worst.max(((exp_nonpositive(y) as f64 - exact) / exact).abs());
        }
        std::println!("exp worst relative error {worst:e}");
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(exp_nonpositive(-1e30) > 0.0 && exp_nonpositive(-1e30) < 2e-38);
    }

    #[test]
    fn sincos_absolute_error_below_2e_7_for_every_turn() {
        let mut worst = 0.0f64;
        for k in 0..(1u32 << TURN_BITS) {
            let (c, s) = sincos_turns(k);
            let theta = core::f64::consts::TAU * k as f64 / (1u64 << TURN_BITS) as f64;
            worst = worst
                .max((c as f64 - libm::cos(theta)).abs())
                .max((s as f64 - libm::sin(theta)).abs());
        }
        std::println!("sincos worst absolute error {worst:e}");
        assert!(worst < 2e-7, "worst absolute error {worst:e}");
        assert_eq!(sincos_turns(0), (1.0, 0.0));
    }
}
