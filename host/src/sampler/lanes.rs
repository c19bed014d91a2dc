//! Lane types: the core's [`Real`] arithmetic on SIMD vectors, one lane per sample (or per
//! output, on the batch-1 path).
//!
//! Every operation is the single IEEE binary32 instruction the scalar code performs
//! (`mul` then `add`, never a fused multiply-add), so each lane reproduces the scalar's bits
//! and the core's generic GELU and `Step::apply` run unchanged on these types.
//!
//! - [`Portable`]: four `f32`s, plain Rust (the fallback everywhere);
//! - [`F32x8`]: AVX `__m256`, used on the AVX2 path;
//! - [`F32x16`]: AVX-512F `__m512`.
//!
//! The x86 types are only ever created inside functions compiled with their target feature,
//! which the dispatcher in `mod.rs` enters only after runtime detection; that is the invariant
//! every `unsafe` block below relies on. They are crate-private so nothing else can break it.

use core::ops::{Add, Div, Mul, Neg, Sub};

use tinyddpm_core::Real;

/// A vector of independent `f32` lanes with the core's arithmetic.
pub(crate) trait Lane: Real + Send + Sync {
    /// Number of `f32` lanes.
    const LANES: usize;
    /// The first `LANES` values of `src` (panics if shorter).
    fn load(src: &[f32]) -> Self;
    /// Writes the lanes to the first `LANES` values of `dst` (panics if shorter).
    fn store(self, dst: &mut [f32]);
}

/// Four lanes in plain Rust: each operation is the scalar `f32` one, so the bits (signed zeros
/// in `min`/`max` included) are the scalar core's by construction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable([f32; 4]);

impl Portable {
    #[inline(always)]
    fn zip(mut self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = f(*a, b);
        }
        self
    }
}

impl Add for Portable {
    type Output = Self;
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
}

impl Sub for Portable {
    type Output = Self;
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.zip(o, |a, b| a - b)
    }
}

impl Mul for Portable {
    type Output = Self;
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
}

impl Div for Portable {
    type Output = Self;
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self.zip(o, |a, b| a / b)
    }
}

impl Neg for Portable {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Self(self.0.map(|a| -a))
    }
}

impl Real for Portable {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([v; 4])
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.zip(o, Real::min)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, Real::max)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(self.0.map(f32::abs))
    }
}

impl Lane for Portable {
    const LANES: usize = 4;
    #[inline(always)]
    fn load(src: &[f32]) -> Self {
        Self(core::array::from_fn(|i| src[i]))
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        dst[..4].copy_from_slice(&self.0);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{F32x8, F32x16};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;
    use core::ops::{Add, Div, Mul, Neg, Sub};

    use tinyddpm_core::Real;

    use super::Lane;

    /// Generates a vector type: `$feature` names the target feature its intrinsics need.
    /// `maxps(a, b)` is exactly `a > b ? a : b` (and `minps` `a < b ? a : b`): the selects
    /// that define `Real::max`/`min`, signed zeros included.
    macro_rules! vector {
        ($name:ident, $raw:ty, $lanes:literal, $feature:literal,
         $set1:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $min:ident, $max:ident,
         $and:ident, $xor:ident, $loadu:ident, $storeu:ident) => {
            #[doc = concat!("`", stringify!($lanes), "` lanes of `f32` (", $feature, ").")]
            #[derive(Clone, Copy, Debug)]
            #[repr(transparent)]
            pub(crate) struct $name($raw);

            // SAFETY (every block in this impl): values of this type exist only inside code
            // running after `$feature` was detected (module docs), so the intrinsics' target
            // feature is present; loads/stores are bounds-checked by the asserts beside them.
            impl Add for $name {
                type Output = Self;
                #[inline(always)]
                fn add(self, o: Self) -> Self {
                    Self(unsafe { $add(self.0, o.0) })
                }
            }

            impl Sub for $name {
                type Output = Self;
                #[inline(always)]
                fn sub(self, o: Self) -> Self {
                    Self(unsafe { $sub(self.0, o.0) })
                }
            }

            impl Mul for $name {
                type Output = Self;
                #[inline(always)]
                fn mul(self, o: Self) -> Self {
                    Self(unsafe { $mul(self.0, o.0) })
                }
            }

            impl Div for $name {
                type Output = Self;
                #[inline(always)]
                fn div(self, o: Self) -> Self {
                    Self(unsafe { $div(self.0, o.0) })
                }
            }

            impl Neg for $name {
                type Output = Self;
                #[inline(always)]
                fn neg(self) -> Self {
                    Self(unsafe { $xor(self.0, $set1(-0.0)) })
                }
            }

            impl Real for $name {
                #[inline(always)]
                fn splat(v: f32) -> Self {
                    Self(unsafe { $set1(v) })
                }
                #[inline(always)]
                fn min(self, o: Self) -> Self {
                    Self(unsafe { $min(self.0, o.0) })
                }
                #[inline(always)]
                fn max(self, o: Self) -> Self {
                    Self(unsafe { $max(self.0, o.0) })
                }
                #[inline(always)]
                fn abs(self) -> Self {
                    Self(unsafe { $and(self.0, $set1(f32::from_bits(i32::MAX as u32))) })
                }
            }

            impl Lane for $name {
                const LANES: usize = $lanes;
                #[inline(always)]
                fn load(src: &[f32]) -> Self {
                    assert!(src.len() >= $lanes);
                    Self(unsafe { $loadu(src.as_ptr()) })
                }
                #[inline(always)]
                fn store(self, dst: &mut [f32]) {
                    assert!(dst.len() >= $lanes);
                    unsafe { $storeu(dst.as_mut_ptr(), self.0) }
                }
            }
        };
    }

    vector!(
        F32x8,
        __m256,
        8,
        "avx2",
        _mm256_set1_ps,
        _mm256_add_ps,
        _mm256_sub_ps,
        _mm256_mul_ps,
        _mm256_div_ps,
        _mm256_min_ps,
        _mm256_max_ps,
        _mm256_and_ps,
        _mm256_xor_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps
    );

    /// Bitwise AND of two float vectors (AVX-512F has it only on integers; same bits).
    #[inline(always)]
    unsafe fn and512(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller runs with avx512f (see the macro's SAFETY note).
        unsafe {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(a),
                _mm512_castps_si512(b),
            ))
        }
    }

    /// Bitwise XOR of two float vectors, as [`and512`].
    #[inline(always)]
    unsafe fn xor512(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller runs with avx512f (see the macro's SAFETY note).
        unsafe {
            _mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(a),
                _mm512_castps_si512(b),
            ))
        }
    }

    vector!(
        F32x16,
        __m512,
        16,
        "avx512f",
        _mm512_set1_ps,
        _mm512_add_ps,
        _mm512_sub_ps,
        _mm512_mul_ps,
        _mm512_div_ps,
        _mm512_min_ps,
        _mm512_max_ps,
        and512,
        xor512,
        _mm512_loadu_ps,
        _mm512_storeu_ps
    );
}

#[cfg(test)]
mod tests {
    use tinyddpm_core::gelu::gelu;

    use super::*;

    /// Inputs where lanes could plausibly differ from scalar: signed zeros, subnormals,
    /// the fit's clamp at |x| = 6, large values.
    const SPECIAL: [f32; 16] = [
        -0.0,
        0.0,
        1e-45,
        -1e-45,
        1e-39,
        -1e-39,
        6.0,
        -6.0,
        5.999_999_5,
        -6.000_001,
        30.0,
        -30.0,
        1e30,
        -1e30,
        0.5,
        -2.25,
    ];

    /// Runs `f` on the lanes of `V` and checks every lane against the scalar `f`.
    fn check<V: Lane>(f: impl Fn(V) -> V, g: impl Fn(f32) -> f32) {
        for chunk in SPECIAL.chunks_exact(V::LANES) {
            let mut out = [0.0f32; 16];
            f(V::load(chunk)).store(&mut out);
            for (x, y) in chunk.iter().zip(out) {
                // bits, signed zeros included: `Real::min`/`max` are defined as selects
                assert_eq!(y.to_bits(), g(*x).to_bits(), "x = {x:e}");
            }
        }
    }

    fn all_ops<V: Lane>() {
        check::<V>(gelu, gelu);
        check::<V>(|x| x.max(V::splat(0.0)), |x| Real::max(x, 0.0));
        check::<V>(|x| x.min(V::splat(0.0)), |x| Real::min(x, 0.0));
        check::<V>(|x| -x.abs(), |x| -x.abs());
        check::<V>(
            |x| x / V::splat(3.0) - x * V::splat(0.7),
            |x| x / 3.0 - x * 0.7,
        );
    }

    #[test]
    fn portable_lanes_match_scalar() {
        all_ops::<Portable>();
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_lanes_match_scalar() {
        #[target_feature(enable = "avx2")]
        fn avx2() {
            all_ops::<F32x8>();
        }
        #[target_feature(enable = "avx512f")]
        fn avx512() {
            all_ops::<F32x16>();
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the feature was just detected.
            unsafe { avx2() }
        } else {
            println!("skipping AVX2: not available");
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            unsafe { avx512() }
        } else {
            println!("skipping AVX-512: not available");
        }
    }
}
