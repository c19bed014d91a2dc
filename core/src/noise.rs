//! Per-sample noise streams: the Gaussian draws of sample `index` depend on `(seed, index)`
//! and nothing else, so samples can be drawn in any batch, order or thread.
//!
//! Stream: Xoshiro128++ (`rand_xoshiro`, 32-bit words, cheap on Cortex-M) whose 128-bit state
//! is `(mix(seed + γ), mix((index ^ mix(seed + γ)) + γ))` — SplitMix64's output function, a
//! bijection, so distinct `(seed, index)` pairs give distinct states.
//!
//! Gaussians: Box–Muller on two 24-bit uniforms, u₁ = (a + 1)/2^24 ∈ (0, 1] (so ln u₁ is
//! finite) and the angle 2π·b/2^24, using the core's own [`math::ln`] and
//! [`math::sincos_turns`] and IEEE `sqrt`: `z = √(−2 ln u₁)·(cos θ, sin θ)`. |z| ≤ 5.8.

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

use crate::math;

/// SplitMix64's increment (2^64 / golden ratio).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output mix (Stafford variant 13): a bijection on u64.
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The 16 seed bytes of the stream for `(seed, index)` (little-endian words).
pub const fn stream_seed(seed: u64, index: u64) -> [u8; 16] {
    let a = mix64(seed.wrapping_add(GAMMA));
    let b = mix64((index ^ a).wrapping_add(GAMMA));
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 8 {
        out[i] = a[i];
        out[i + 8] = b[i];
        i += 1;
    }
    out
}

/// 2^-24: the step of the 24-bit uniforms.
const UNIT: f32 = 1.0 / 16_777_216.0;

/// The Gaussian noise of one sample.
#[derive(Clone, Debug)]
pub struct NoiseStream(Xoshiro128PlusPlus);

impl NoiseStream {
    /// The stream of sample `index` under `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        Self(Xoshiro128PlusPlus::from_seed(stream_seed(seed, index)))
    }

    /// Two independent standard normal draws (Box–Muller); consumes two `u32`s.
    pub fn gaussian_pair(&mut self) -> [f32; 2] {
        let a = self.0.next_u32() >> 8;
        let b = self.0.next_u32() >> 8;
        box_muller(a, b)
    }

    /// One draw of a point of `D` coordinates: ⌈D/2⌉ consecutive [`gaussian_pair`]s,
    /// coordinates 0..D in order (pair k gives coordinates 2k and 2k + 1); when D is odd the
    /// last pair's second value is dropped. D = 2 is exactly one pair.
    ///
    /// Why whole pairs: every draw then starts at a pair boundary, so draw n of a chain (x_T
    /// is draw 0, step k's z draw k + 1) is pairs n·⌈D/2⌉ .. (n+1)·⌈D/2⌉, and no backend
    /// carries a spare value from one draw to the next.
    ///
    /// [`gaussian_pair`]: NoiseStream::gaussian_pair
    pub fn gaussians<const D: usize>(&mut self) -> [f32; D] {
        let mut z = [0.0; D];
        self.fill_gaussians(&mut z);
        z
    }

    /// [`NoiseStream::gaussians`] for a D known at run time: one draw of `z.len()`
    /// coordinates into `z`, by the same rule.
    pub fn fill_gaussians(&mut self, z: &mut [f32]) {
        for coords in z.chunks_mut(2) {
            for (v, g) in coords.iter_mut().zip(self.gaussian_pair()) {
                *v = g;
            }
        }
    }
}

/// Box–Muller on 24-bit integers `a`, `b`: `√(−2 ln((a+1)/2^24))·(cos, sin)(2π·b/2^24)`.
pub fn box_muller(a: u32, b: u32) -> [f32; 2] {
    let u1 = (a + 1) as f32 * UNIT;
    let rho = libm::sqrtf(-2.0 * math::ln(u1));
    let (c, s) = math::sincos_turns(b);
    [rho * c, rho * s]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_seed_and_index_only() {
        let mut a = NoiseStream::new(7, 3);
        let mut b = NoiseStream::new(7, 3);
        let mut c = NoiseStream::new(7, 4);
        let mut d = NoiseStream::new(8, 3);
        for _ in 0..10 {
            let (x, y, z, w) = (
                a.gaussian_pair(),
                b.gaussian_pair(),
                c.gaussian_pair(),
                d.gaussian_pair(),
            );
            assert_eq!(x, y);
            assert_ne!(x, z);
            assert_ne!(x, w);
        }
    }

    #[test]
    fn stream_seed_is_injective_on_swapped_pairs() {
        assert_ne!(stream_seed(0, 1), stream_seed(1, 0));
        assert_ne!(stream_seed(0, 0), [0; 16]);
    }

    #[test]
    fn gaussian_moments_match_a_standard_normal() {
        let n = 200_000;
        let (mut s1, mut s2, mut s4, mut cov) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..n / 2 {
            let [x, y] = NoiseStream::new(1, i).gaussian_pair();
            for v in [x as f64, y as f64] {
                s1 += v;
                s2 += v * v;
                s4 += v * v * v * v;
            }
            cov += x as f64 * y as f64;
        }
        let n = n as f64;
        assert!((s1 / n).abs() < 0.01, "mean {}", s1 / n);
        assert!((s2 / n - 1.0).abs() < 0.01, "variance {}", s2 / n);
        assert!((s4 / n - 3.0).abs() < 0.06, "fourth moment {}", s4 / n);
        assert!((cov / (n / 2.0)).abs() < 0.01);
    }

    #[test]
    fn box_muller_extremes_are_finite() {
        assert_eq!(box_muller((1 << 24) - 1, 0), [0.0, 0.0]);
        let [x, _] = box_muller(0, 0);
        assert!((x as f64 - libm::sqrt(-2.0 * libm::log(1.0 / 16_777_216.0))).abs() < 1e-5);
    }
}
