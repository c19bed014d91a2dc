//! Exact-GELU, `GELU(x) = x·Φ(x) = ½·x·(1 + erf(x/√2))`, without a library `erf`.
//!
//! Rewritten so that no cancellation happens near erf ≈ ±1:
//!
//! `GELU(x) = max(x, 0) − |x|·Φ(−|x|)`
//!
//! (for x ≥ 0: x − x·Φ(−x) = x·Φ(x); for x < 0: 0 + x·Φ(x)). The upper-tail probability
//! `Φ(−a) = ½·erfc(a/√2)` is a rational function `P(u)/Q(u)` of `u = min(a/6, 1)`, fitted
//! (weighted least squares to minimax, coefficients rounded to f32 one at a time and the rest
//! refitted) so that the f32 evaluation here stays within 1.5e-7·max(1, |x|) of an f64
//! exact-erf GELU over [−10, 10] (the tests check 2e-7; `scripts/gelu_fit.py` is the fit, and
//! its `--check` measures these coefficients: 1.474e-7). Beyond a = 6, Φ(−a) < 1e-9 and the
//! clamp changes nothing that f32 can see. Only `+ − × ÷ min max abs`: SIMD lanes and CUDA
//! threads evaluate it identically.

use crate::real::Real;

/// Numerator of Φ(−a) ≈ P(u)/Q(u), ascending powers of u.
const P: [f32; 7] = [
    0.5,
    -3.369_102_7,
    9.520_966,
    -14.433_603,
    12.370_987,
    -5.679_732_3,
    1.090_487_6,
];
/// Denominator of Φ(−a) ≈ P(u)/Q(u), ascending powers of u.
const Q: [f32; 8] = [
    1.0,
    -1.950_886_8,
    9.701_47,
    -11.118_999,
    27.165_367,
    -2.219_263_3,
    0.491_988_7,
    55.367_48,
];
/// The fit's variable is u = a/6 on [0, 1].
const INV_RANGE: f32 = 1.0 / 6.0;

/// `Σ c[i]·u^i` by Horner's rule, highest power first (the one evaluation order).
#[inline(always)]
fn horner<R: Real, const N: usize>(c: &[f32; N], u: R) -> R {
    let mut acc = R::splat(c[N - 1]);
    for &ci in c[..N - 1].iter().rev() {
        acc = acc * u + R::splat(ci);
    }
    acc
}

/// Upper-tail normal probability Φ(−a) for a ≥ 0, absolute error ≤ 1.5e-7.
#[inline(always)]
pub fn normal_upper_tail<R: Real>(a: R) -> R {
    let u = (a * R::splat(INV_RANGE)).min(R::splat(1.0));
    horner(&P, u) / horner(&Q, u)
}

/// Exact-form GELU (not the tanh approximation): `max(x,0) − |x|·Φ(−|x|)`.
#[inline(always)]
pub fn gelu<R: Real>(x: R) -> R {
    let a = x.abs();
    gelu_of_tail(x, a, normal_upper_tail(a))
}

/// GELU from `a = |x|` and `tail = Φ(−a)`: the one formula [`gelu`] and
/// [`gelu_and_derivative`] share.
#[inline(always)]
fn gelu_of_tail<R: Real>(x: R, a: R, tail: R) -> R {
    x.max(R::splat(0.0)) - a * tail
}

/// 1/√(2π), the standard normal density at 0.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// dGELU/dx = Φ(x) + x·φ(x), for the trainer's backward pass (not part of the bit-identity
/// contract). Branch-free scalar code, so loops over a batch vectorise; consistent with
/// [`gelu`] through the same Φ, and within 1e-6 of the exact derivative (tested).
#[inline(always)]
pub fn gelu_derivative(x: f32) -> f32 {
    gelu_and_derivative(x).1
}

/// `(gelu(x), gelu_derivative(x))`, bit for bit those two, with Φ(−|x|) evaluated once: the
/// trainer's forward pass keeps both (the rational function's division is most of the cost).
#[inline(always)]
pub fn gelu_and_derivative(x: f32) -> (f32, f32) {
    let a = x.abs();
    let tail = normal_upper_tail(a);
    let cdf = if x >= 0.0 { 1.0 - tail } else { tail };
    let slope = cdf + x * (crate::math::exp_nonpositive(-0.5 * x * x) * FRAC_1_SQRT_2PI);
    (gelu_of_tail(x, a, tail), slope)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn gelu_f64(x: f64) -> f64 {
        0.5 * x * (1.0 + libm::erf(x / core::f64::consts::SQRT_2))
    }

    #[test]
    fn gelu_within_2e_7_of_exact_erf_over_minus10_to_10() {
        let n = 2_000_000;
        let mut worst = 0.0f64;
        for i in 0..=n {
            let x = (-10.0 + 20.0 * i as f64 / n as f64) as f32;
            let err = (gelu(x) as f64 - gelu_f64(x as f64)).abs() / (x.abs() as f64).max(1.0);
            worst = worst.max(err);
        }
        std::println!("GELU worst scaled error {worst:e}");
        assert!(worst <= 2e-7, "worst scaled error {worst:e}");
    }

    #[test]
    fn gelu_is_exact_at_zero_and_tends_to_relu() {
        assert_eq!(gelu(0.0f32).to_bits(), 0.0f32.to_bits());
        // max(−0, +0) is +0 by the `Real` contract, on every backend
        assert_eq!(gelu(-0.0f32).to_bits(), 0.0f32.to_bits());
        assert_eq!(gelu(30.0f32), 30.0);
        // beyond the fit's range the tail is clamped at Φ(−6) ± 2e-8: still within 2e-7·|x|
        assert!(gelu(-30.0f32) <= 0.0 && gelu(-30.0f32).abs() < 2e-7 * 30.0);
        assert!(gelu(-1e30f32).is_finite());
        assert!(gelu(1e30f32) == 1e30);
    }

    #[test]
    fn derivative_matches_central_difference_of_exact_gelu() {
        for i in -80..=80 {
            let x = i as f64 * 0.1;
            let h = 1e-6;
            let fd = (gelu_f64(x + h) - gelu_f64(x - h)) / (2.0 * h);
            let d = gelu_derivative(x as f32) as f64;
            assert!((d - fd).abs() < 1e-6, "x={x} d={d} fd={fd}");
        }
    }
}
