//! Lane types: the core's [`Real`] arithmetic on SIMD vectors, one lane per sample (or per
//! output, on the batch-1 path).
//!
//! Every operation is the single IEEE binary32 instruction the scalar code performs
//! (`mul` then `add`, never a fused multiply-add), so each lane reproduces the scalar's bits
//! and the core's generic GELU and `Step::apply` run unchanged on these types.
//!
//! - [`PortableF32`]: the core's `Lanes<4>`, plain Rust (the fallback everywhere);
//! - [`F32x8`]: AVX `__m256`, used on the AVX2 path;
//! - [`F32x16`]: AVX-512F `__m512`;
//! - [`Tile`]: `S` of one of those as a single `Real`, the unit the core's chain steps.
//!
//! The x86 types are only ever created inside functions compiled with their target feature,
//! which the dispatcher in simd.rs enters only after runtime detection; that is the invariant
//! every `unsafe` block below relies on. They are crate-private so nothing else can break it.

use core::ops::{Add, Div, Mul, Neg, Sub};

use tinyddpm_core::{Lanes, Real};

/// A vector of independent `f32` lanes with the core's arithmetic.
pub(crate) trait Lane: Real + Send + Sync {
    /// The first `LANES` values of `src` (panics if shorter).
    fn load(src: &[f32]) -> Self;
    /// Writes the lanes to the first `LANES` values of `dst` (panics if shorter).
    fn store(self, dst: &mut [f32]);
}

/// The portable path: the core's own lanes, four `f32`s in plain Rust.
pub(crate) type PortableF32 = Lanes<4>;

impl<const N: usize> Lane for Lanes<N> {
    #[inline(always)]
    fn load(src: &[f32]) -> Self {
        let mut lanes = [0.0; N];
        lanes.copy_from_slice(&src[..N]);
        Self(lanes)
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32]) {
        dst[..N].copy_from_slice(&self.0);
    }
}

/// `S` vectors of samples as one [`Real`]: the throughput kernels' unit of work, so that the
/// core's reverse chain (`tinyddpm_core::chain`) drives a whole tile. Lane `i` is lane
/// `i % V::LANES` of vector `i / V::LANES`; every operation is the vector's, per vector.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tile<V, const S: usize>(pub [V; S]);

impl<V: Lane, const S: usize> Tile<V, S> {
    #[inline(always)]
    fn zip(mut self, o: Self, f: impl Fn(V, V) -> V) -> Self {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = f(*a, b);
        }
        self
    }
}

macro_rules! tile_op {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<V: Lane, const S: usize> $trait for Tile<V, S> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, o: Self) -> Self {
                self.zip(o, |a, b| a $op b)
            }
        }
    };
}
tile_op!(Add, add, +);
tile_op!(Sub, sub, -);
tile_op!(Mul, mul, *);
tile_op!(Div, div, /);

impl<V: Lane, const S: usize> Neg for Tile<V, S> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.zip(self, |a, _| -a)
    }
}

impl<V: Lane, const S: usize> Real for Tile<V, S> {
    const LANES: usize = S * V::LANES;
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self([V::splat(v); S])
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.zip(o, V::min)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, V::max)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.zip(self, |a, _| a.abs())
    }
    #[inline(always)]
    fn lane(self, i: usize) -> f32 {
        self.0[i / V::LANES].lane(i % V::LANES)
    }
    #[inline(always)]
    fn set_lane(&mut self, i: usize, v: f32) {
        self.0[i / V::LANES].set_lane(i % V::LANES, v);
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
                const LANES: usize = $lanes;
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
                // Through memory: used only to move noise and results in and out of a tile,
                // a few times per step, never in the dense layers.
                #[inline(always)]
                fn lane(self, i: usize) -> f32 {
                    let mut all = [0.0; $lanes];
                    self.store(&mut all);
                    all[i]
                }
                #[inline(always)]
                fn set_lane(&mut self, i: usize, v: f32) {
                    let mut all = [0.0; $lanes];
                    self.store(&mut all);
                    all[i] = v;
                    *self = Self::load(&all);
                }
            }

            impl Lane for $name {
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
        all_ops::<PortableF32>();
    }

    #[test]
    fn a_tiles_lanes_are_its_vectors_lanes_in_order_with_scalar_arithmetic() {
        let mut tile = Tile::<PortableF32, 4>::splat(0.0);
        for (i, &v) in SPECIAL.iter().enumerate() {
            tile.set_lane(i, v);
        }
        assert_eq!(tile.0[1].0, [1e-39, -1e-39, 6.0, -6.0]);
        let out = gelu(tile) / Tile::splat(3.0) - tile.max(-tile).min(Tile::splat(7.0));
        for (i, &x) in SPECIAL.iter().enumerate() {
            let scalar = gelu(x) / 3.0 - Real::min(Real::max(x, -x), 7.0);
            assert_eq!(out.lane(i).to_bits(), scalar.to_bits(), "x = {x:e}");
        }
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
