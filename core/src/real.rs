//! The arithmetic a "lane" type must offer to run the core's formulas.
//!
//! The forward pass, GELU and reverse-step update are written once, generic over [`Real`].
//! `f32` is the scalar reference; the host instantiates the same code with SIMD vectors whose
//! lanes are independent samples. Every operation here is a single IEEE-754 binary32 operation
//! rounded to nearest (or an exact one: `min`, `max`, `abs`), so each lane of a vector type
//! follows the scalar sequence and produces the scalar's bits.

use core::ops::{Add, Div, Mul, Neg, Sub};

/// Lane-wise IEEE binary32 arithmetic, no fusion, round to nearest.
pub trait Real:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// Every lane set to `v`.
    fn splat(v: f32) -> Self;
    /// Lane-wise `if self < other { self } else { other }` — exactly that select, so
    /// `min(-0.0, 0.0)` is `+0.0` everywhere (x86 `minps` semantics; `f32::min` leaves the
    /// sign of a zero unspecified, and ARM's `vminnm` differs).
    fn min(self, other: Self) -> Self;
    /// Lane-wise `if self > other { self } else { other }` (x86 `maxps` semantics).
    fn max(self, other: Self) -> Self;
    /// Lane-wise absolute value (clears the sign bit: exact).
    fn abs(self) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        if self < other { self } else { other }
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if self > other { self } else { other }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
}
