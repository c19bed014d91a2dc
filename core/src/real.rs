//! The arithmetic a "lane" type must offer to run the core's formulas.
//!
//! The forward pass, GELU and reverse-step update are written once, generic over [`Real`].
//! `f32` is the scalar reference; [`Lanes`](crate::Lanes) carries several independent samples
//! in plain Rust, and the host instantiates the same code with SIMD vectors. Every operation
//! here is a single IEEE-754 binary32 operation rounded to nearest (or an exact one: `min`,
//! `max`, `abs`), so each lane follows the scalar sequence and produces the scalar's bits.

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
    /// Independent values (one per sample) a value of this type carries.
    const LANES: usize;
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
    /// The value of lane `i` (`i < LANES`).
    fn lane(self, i: usize) -> f32;
    /// Sets lane `i` (`i < LANES`) to `v`, leaving the others.
    fn set_lane(&mut self, i: usize, v: f32);
}

impl Real for f32 {
    const LANES: usize = 1;
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
    #[inline(always)]
    fn lane(self, _: usize) -> f32 {
        self
    }
    #[inline(always)]
    fn set_lane(&mut self, _: usize, v: f32) {
        *self = v;
    }
}
