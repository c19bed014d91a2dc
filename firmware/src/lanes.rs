//! A batch of samples as one [`Real`]: lane `i` of every value belongs to sample `i`.
//!
//! The core's forward pass is generic over `Real`, so `Model::predict_noise::<Lanes<N>>` runs
//! N samples through each layer together and every weight loaded from flash serves N
//! multiply-adds. Each operation is the scalar `f32` operation applied to each lane on its
//! own, so lane `i` follows exactly the sequence the scalar path runs for sample `i` and
//! produces its bits.

use core::ops::{Add, Div, Mul, Neg, Sub};

use tinyddpm_core::Real;

/// N independent `f32` lanes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanes<const N: usize>(pub [f32; N]);

impl<const N: usize> Lanes<N> {
    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Self(core::array::from_fn(|i| f(self.0[i], other.0[i])))
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
        Self(self.0.map(|a| -a))
    }
}

/// Every operation is the core's `f32` one per lane (`min`/`max` are the core's selects, which
/// compile to a compare and a conditional move here, not calls to `fminf`/`fmaxf`).
impl<const N: usize> Real for Lanes<N> {
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
        Self(self.0.map(<f32 as Real>::abs))
    }
}
