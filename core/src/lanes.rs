//! [`Lanes<N>`]: N independent samples as one [`Real`], in plain Rust.
//!
//! The core's forward pass and reverse step are generic over `Real`, so
//! `Model::predict_noise::<Lanes<N>>` runs N samples through each layer together: every weight
//! loaded serves N multiply-adds (the firmware's batched path, the host's portable path and its
//! figure runner use this). Each operation is the scalar `f32` operation applied to each lane on
//! its own, so lane `i` follows exactly the sequence the scalar code runs for sample `i` and
//! produces its bits (tested below against the scalar path, signed zeros and all).

use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::real::Real;

/// N independent `f32` lanes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanes<const N: usize>(pub [f32; N]);

impl<const N: usize> Lanes<N> {
    // A plain loop rather than `array::from_fn`: inside a caller compiled with a target
    // feature, a closure is a separate function and may not be vectorised with it.
    #[inline(always)]
    fn zip(mut self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = f(*a, b);
        }
        self
    }

    #[inline(always)]
    fn each(mut self, f: impl Fn(f32) -> f32) -> Self {
        for a in &mut self.0 {
            *a = f(*a);
        }
        self
    }
}

impl<const N: usize> Add for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }
}

impl<const N: usize> Sub for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        self.zip(other, |a, b| a - b)
    }
}

impl<const N: usize> Mul for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self.zip(other, |a, b| a * b)
    }
}

impl<const N: usize> Div for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn div(self, other: Self) -> Self {
        self.zip(other, |a, b| a / b)
    }
}

impl<const N: usize> Neg for Lanes<N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.each(|a| -a)
    }
}

/// Every operation is the scalar `f32` one per lane (`min`/`max` are the scalar's selects,
/// which compile to a compare and a conditional move, not calls to `fminf`/`fmaxf`).
impl<const N: usize> Real for Lanes<N> {
    const LANES: usize = N;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; N])
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        self.zip(other, <f32 as Real>::min)
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        self.zip(other, <f32 as Real>::max)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.each(<f32 as Real>::abs)
    }
    #[inline(always)]
    fn lane(self, i: usize) -> f32 {
        self.0[i]
    }
    #[inline(always)]
    fn set_lane(&mut self, i: usize, v: f32) {
        self.0[i] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gelu::gelu;

    /// Values that exercise every branch of the scalar code: signed zeros, subnormals,
    /// the GELU clamp, huge and tiny magnitudes.
    const VALUES: [f32; 12] = [
        0.0, -0.0, 1e-40, -1e-40, 0.5, -0.5, 3.0, -7.5, 1e30, -1e30, 12.0, -12.0,
    ];

    #[test]
    fn every_operation_is_the_scalar_one_per_lane() {
        let a = Lanes(VALUES);
        let mut b = VALUES;
        b.rotate_left(5);
        let b = Lanes(b);
        let bits = |l: Lanes<12>| l.0.map(f32::to_bits);
        let scalar = |f: &dyn Fn(f32, f32) -> f32| {
            core::array::from_fn::<u32, 12, _>(|i| f(a.0[i], b.0[i]).to_bits())
        };
        assert_eq!(bits(a + b), scalar(&|x, y| x + y));
        assert_eq!(bits(a - b), scalar(&|x, y| x - y));
        assert_eq!(bits(a * b), scalar(&|x, y| x * y));
        assert_eq!(bits(a / b), scalar(&|x, y| x / y));
        assert_eq!(bits(a.min(b)), scalar(&|x, y| Real::min(x, y)));
        assert_eq!(bits(a.max(b)), scalar(&|x, y| Real::max(x, y)));
        assert_eq!(bits(-a), scalar(&|x, _| -x));
        assert_eq!(bits(a.abs()), scalar(&|x, _| x.abs()));
        assert_eq!(bits(gelu(a)), scalar(&|x, _| gelu(x)));
        // min/max are selects: a tie of signed zeros returns the second operand.
        assert_eq!(Lanes([-0.0f32]).min(Lanes([0.0])).0[0].to_bits(), 0);
        let mut c = a;
        c.set_lane(3, 2.5);
        assert_eq!((c.lane(3), c.lane(4)), (2.5, a.lane(4)));
    }
}
