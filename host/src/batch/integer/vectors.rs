//! Integer lane types: the integer model's arithmetic on SIMD vectors of `i32` lanes, one lane
//! per sample.
//!
//! A lane holds either an `i32` (a sum, or an activation sign-extended) or a pair of int16
//! activations of two consecutive units (low half: the even unit), the operand layout of
//! `vpmaddwd` (packed.rs). Every operation is exact integer arithmetic, so each lane equals
//! the core's scalar `tinyddpm_core::quant` code on that sample, whatever the instructions:
//!
//! - [`PortableI32`]: plain Rust, the core's own `requantize` and `Gelu::apply` per lane;
//! - [`I32x8`]: AVX2 (`vpmaddwd` on 8 lanes; GELU's table by gathers);
//! - [`I32x16`]: AVX-512F/BW (`vpmaddwd` on 16 lanes; GELU's table held in registers and
//!   read by `vpermt2w`, 32 lookups per instruction, as a gather reads about one element per
//!   cycle), and with `VNNI = true` AVX-512 VNNI's `vpdpwssd`, the multiply-add and the
//!   accumulation in one instruction.
//!
//! The x86 types are only ever created inside functions compiled with their target features,
//! entered after runtime detection (simd.rs), the invariant every `unsafe` block below relies
//! on, as in float/vectors.rs. No closures in their methods: a closure is compiled without the
//! caller's target features, and its intrinsics stay calls unless it happens to be inlined.

use tinyddpm_core::Lanes;
use tinyddpm_core::quant::{SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT, requantize, sat16};

use super::packed::{QGelu, Requant};
use crate::batch::float::vectors::Lane;

/// A vector of `i32` lanes with the integer model's operations.
pub(crate) trait ILane: Copy + Send + Sync {
    /// The float lanes of the same samples (the chain's state and the f32 boundary).
    type F: Lane;
    /// Lanes per vector (`F`'s).
    const LANES: usize;
    /// Every lane `v`.
    fn splat(v: i32) -> Self;
    /// The first `LANES` values of `src` (panics if shorter).
    fn load(src: &[i32]) -> Self;
    /// Writes the lanes to the first `LANES` values of `dst` (panics if shorter).
    fn store(self, dst: &mut [i32]);
    /// `self + lo(x)·lo(w) + hi(x)·hi(w)` per lane, the halves int16, the sum wrapping modulo
    /// 2^32 (`w` a weight pair, `x` an activation pair).
    fn dot2(self, x: Self, w: Self) -> Self;
    /// Wrapping `i32` addition.
    fn add(self, o: Self) -> Self;
    /// `sat16` of each lane.
    fn sat16(self) -> Self;
    /// Each lane requantized, possibly before the final saturation: `sat16` of the result is
    /// `requantize(lane, q.multiplier, q.shift)`.
    fn requantize(self, q: &Requant) -> Self;
    /// The residual's division by √2 of lanes `|x| < 2^17` (a sum of three int16 values),
    /// possibly before the final saturation: `sat16` of the result is
    /// `requantize(x, SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT)`.
    fn residual(self) -> Self;
    /// Each lane of `a` and of `b` through the GELU `g`, possibly before the final
    /// saturation: `sat16` of the result is `g.gelu.apply(sat16(lane))`.
    fn gelu2(a: Self, b: Self, g: &QGelu) -> (Self, Self);
    /// Pairs of `sat16(lo)` (low halves) and `sat16(hi)` (high halves).
    fn pack(lo: Self, hi: Self) -> Self;
    /// The low halves of pairs, sign-extended.
    fn low(self) -> Self;
    /// The high halves of pairs, sign-extended.
    fn high(self) -> Self;
}

/// The portable path: `N` lanes in plain Rust, the core's integer functions per lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PortableI32<const N: usize>([i32; N]);

impl<const N: usize> PortableI32<N> {
    #[inline(always)]
    fn each(mut self, f: impl Fn(i32) -> i32) -> Self {
        for a in &mut self.0 {
            *a = f(*a);
        }
        self
    }
}

impl<const N: usize> ILane for PortableI32<N> {
    type F = Lanes<N>;
    const LANES: usize = N;
    #[inline(always)]
    fn splat(v: i32) -> Self {
        Self([v; N])
    }
    #[inline(always)]
    fn load(src: &[i32]) -> Self {
        let mut lanes = [0; N];
        lanes.copy_from_slice(&src[..N]);
        Self(lanes)
    }
    #[inline(always)]
    fn store(self, dst: &mut [i32]) {
        dst[..N].copy_from_slice(&self.0);
    }
    #[inline(always)]
    fn dot2(mut self, x: Self, w: Self) -> Self {
        for ((a, x), w) in self.0.iter_mut().zip(x.0).zip(w.0) {
            let lo = i32::from(x as i16) * i32::from(w as i16);
            let hi = (x >> 16) * (w >> 16);
            *a = a.wrapping_add(lo.wrapping_add(hi));
        }
        self
    }
    #[inline(always)]
    fn add(mut self, o: Self) -> Self {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.wrapping_add(b);
        }
        self
    }
    #[inline(always)]
    fn sat16(self) -> Self {
        self.each(|v| sat16(v.into()).into())
    }
    #[inline(always)]
    fn requantize(self, q: &Requant) -> Self {
        self.each(|v| requantize(v, q.multiplier, q.shift).into())
    }
    #[inline(always)]
    fn residual(self) -> Self {
        self.each(|v| requantize(v, SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT).into())
    }
    #[inline(always)]
    fn gelu2(a: Self, b: Self, g: &QGelu) -> (Self, Self) {
        let apply = |v: i32| g.gelu.apply(sat16(v.into())).into();
        (a.each(apply), b.each(apply))
    }
    #[inline(always)]
    fn pack(mut lo: Self, hi: Self) -> Self {
        for (l, h) in lo.0.iter_mut().zip(hi.0) {
            let (l16, h16) = (sat16((*l).into()), sat16(h.into()));
            *l = super::packed::pair(l16, h16);
        }
        lo
    }
    #[inline(always)]
    fn low(self) -> Self {
        self.each(|v| (v as i16).into())
    }
    #[inline(always)]
    fn high(self) -> Self {
        self.each(|v| v >> 16)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{I32x8, I32x16};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use super::super::packed::{GELU_C16, GELU_DIFF, GELU_LAST, GELU_PAIRS, QGelu, Requant, Words};
    use super::ILane;
    use crate::batch::float::vectors::{F32x8, F32x16};
    use tinyddpm_core::quant::SQRT_HALF_MULTIPLIER;

    /// A shift count for the `sll`/`srl`/`sra` family (the count in the low 64 bits).
    #[inline(always)]
    fn count(n: u32) -> __m128i {
        // SAFETY: SSE2, which every caller's AVX2 or AVX-512 implies.
        unsafe { _mm_cvtsi32_si128(n as i32) }
    }

    /// `pshufb` indices that turn `packs(lo, hi)`'s words `lo0..3, hi0..3` (per 128 bits) into
    /// pairs `lo0 hi0 lo1 hi1 ..`.
    const PAIR_BYTES: [i8; 16] = [0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15];

    /// 8 lanes of AVX2.
    #[derive(Clone, Copy, Debug)]
    #[repr(transparent)]
    pub(crate) struct I32x8(__m256i);

    impl I32x8 {
        /// The high 32 bits of each lane's `i64` product with `m`.
        #[inline(always)]
        fn mul_high(self, m: i32) -> __m256i {
            // SAFETY: as the `ILane` impl's.
            unsafe {
                let m = _mm256_set1_epi32(m);
                // `vpmuldq` multiplies the low (signed) 32 bits of each 64-bit lane.
                let even = _mm256_mul_epi32(self.0, m);
                let odd = _mm256_mul_epi32(_mm256_srli_epi64(self.0, 32), m);
                _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b1010_1010)
            }
        }

        /// The GELU of int16 lanes, the table read by a gather.
        #[inline(always)]
        fn gelu(self, g: &QGelu) -> Self {
            // SAFETY: as the `ILane` impl's; the gather's indices are clamped to the table.
            unsafe {
                let u = self.0;
                let a = _mm256_abs_epi32(u);
                let step = count(g.step);
                let i = _mm256_min_epi32(_mm256_srl_epi32(a, step), _mm256_set1_epi32(GELU_LAST));
                let f = _mm256_and_si256(a, _mm256_set1_epi32((1 << g.step) - 1));
                let e = _mm256_i32gather_epi32::<4>(GELU_PAIRS.as_ptr(), i);
                // (C[i] << d) + (C[i+1] − C[i])·f: the difference times f by `vpmaddwd`
                // against f in the high half (the low half, C[i], meets a zero).
                let c = _mm256_sll_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0xffff)), step);
                let c = _mm256_add_epi32(c, _mm256_madd_epi16(e, _mm256_slli_epi32(f, 16)));
                let c = _mm256_add_epi32(c, _mm256_set1_epi32(g.half));
                let c = _mm256_srl_epi32(c, count(g.round));
                let relu = _mm256_max_epi32(u, _mm256_setzero_si256());
                let relu = _mm256_sll_epi32(relu, count(g.up));
                Self(_mm256_sub_epi32(relu, c)).sat16()
            }
        }
    }

    // SAFETY (every block in this impl): values of this type exist only inside code running
    // after AVX2 was detected (module docs), so the intrinsics' target feature is present;
    // loads and stores are bounds-checked by the asserts beside them.
    impl ILane for I32x8 {
        type F = F32x8;
        const LANES: usize = 8;
        #[inline(always)]
        fn splat(v: i32) -> Self {
            Self(unsafe { _mm256_set1_epi32(v) })
        }
        #[inline(always)]
        fn load(src: &[i32]) -> Self {
            assert!(src.len() >= 8);
            Self(unsafe { _mm256_loadu_si256(src.as_ptr().cast()) })
        }
        #[inline(always)]
        fn store(self, dst: &mut [i32]) {
            assert!(dst.len() >= 8);
            unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn dot2(self, x: Self, w: Self) -> Self {
            // `vpmaddwd` wraps only for (−32768)·(−32768) twice; weights are int8.
            Self(unsafe { _mm256_add_epi32(self.0, _mm256_madd_epi16(x.0, w.0)) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Self(unsafe { _mm256_add_epi32(self.0, o.0) })
        }
        #[inline(always)]
        fn sat16(self) -> Self {
            unsafe {
                let v = _mm256_max_epi32(self.0, _mm256_set1_epi32(i16::MIN.into()));
                Self(_mm256_min_epi32(v, _mm256_set1_epi32(i16::MAX.into())))
            }
        }
        #[inline(always)]
        fn requantize(self, q: &Requant) -> Self {
            if q.high {
                // The high-half form (`Requant`), saturated later.
                let hi = self.mul_high(q.multiplier);
                let v = unsafe { _mm256_add_epi32(hi, _mm256_set1_epi32(q.high_round)) };
                return Self(unsafe { _mm256_sra_epi32(v, count(q.high_shift)) });
            }
            // s ≤ 32, in i64. AVX2 has no 64-bit arithmetic shift and no 64-bit min/max:
            // with P = acc·M ∈ [−2^62, 2^62] and R = ⌊2^s/2⌋ ≤ 2^61, P + R + 2^62 lies in
            // [0, 2^64) as an unsigned number, so its logical shift by s is
            // ⌊(P + R)/2^s⌋ + 2^(62−s) exactly; subtracting 2^(62−s) leaves the
            // specification's value, then clamped by compares.
            #[inline(always)]
            unsafe fn one(p: __m256i, bias: __m256i, s: __m128i, unbias: __m256i) -> __m256i {
                // SAFETY: as the impl's (the caller runs with AVX2).
                unsafe {
                    let v = _mm256_add_epi64(p, bias);
                    let v = _mm256_sub_epi64(_mm256_srl_epi64(v, s), unbias);
                    let (lo, hi) = (_mm256_set1_epi64x(-32768), _mm256_set1_epi64x(32767));
                    let v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
                    _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v))
                }
            }
            unsafe {
                let m = _mm256_set1_epi32(q.multiplier);
                let bias = _mm256_set1_epi64x(q.round + (1 << 62));
                let unbias = _mm256_set1_epi64x(1 << (62 - q.shift));
                let s = count(q.shift.into());
                let even = one(_mm256_mul_epi32(self.0, m), bias, s, unbias);
                let odd = _mm256_mul_epi32(_mm256_srli_epi64(self.0, 32), m);
                let odd = one(odd, bias, s, unbias);
                Self(_mm256_blend_epi32(
                    even,
                    _mm256_slli_epi64(odd, 32),
                    0b1010_1010,
                ))
            }
        }
        #[inline(always)]
        fn residual(self) -> Self {
            // ⌊(x·M + 2^30) / 2^31⌋ = ⌊(4x·M + 2^32) / 2^33⌋, the high-half form with
            // s = 33 (|4x| < 2^19).
            let x4 = Self(unsafe { _mm256_slli_epi32(self.0, 2) });
            let hi = x4.mul_high(SQRT_HALF_MULTIPLIER);
            Self(unsafe { _mm256_srai_epi32(_mm256_add_epi32(hi, _mm256_set1_epi32(1)), 1) })
        }
        #[inline(always)]
        fn gelu2(a: Self, b: Self, g: &QGelu) -> (Self, Self) {
            (a.sat16().gelu(g), b.sat16().gelu(g))
        }
        #[inline(always)]
        fn pack(lo: Self, hi: Self) -> Self {
            unsafe {
                let w = _mm256_packs_epi32(lo.0, hi.0);
                let idx = _mm256_broadcastsi128_si256(_mm_loadu_si128(PAIR_BYTES.as_ptr().cast()));
                Self(_mm256_shuffle_epi8(w, idx))
            }
        }
        #[inline(always)]
        fn low(self) -> Self {
            Self(unsafe { _mm256_srai_epi32(_mm256_slli_epi32(self.0, 16), 16) })
        }
        #[inline(always)]
        fn high(self) -> Self {
            Self(unsafe { _mm256_srai_epi32(self.0, 16) })
        }
    }

    /// 16 lanes of AVX-512F/BW; with `VNNI`, the multiply-adds by AVX-512 VNNI.
    #[derive(Clone, Copy, Debug)]
    #[repr(transparent)]
    pub(crate) struct I32x16<const VNNI: bool>(__m512i);

    /// Two vectors of 32 table words (64 entries) from `t`, starting at entry `64·k`.
    #[inline(always)]
    unsafe fn table_pair(t: &Words, k: usize) -> (__m512i, __m512i) {
        assert!(64 * k + 64 <= t.0.len());
        // SAFETY: in bounds (the assert); AVX-512F as the impl's.
        unsafe {
            let p = t.0.as_ptr().add(64 * k);
            (
                _mm512_loadu_si512(p.cast()),
                _mm512_loadu_si512(p.add(32).cast()),
            )
        }
    }

    /// `t[idx]` for 32 word indices, `outside` for an index past the table (≥ 320), which
    /// only a GELU with `past_table` meets: five 64-entry `vpermt2w` lookups, chosen by the
    /// index's bits 6, 7 and 8.
    #[inline(always)]
    unsafe fn lookup(t: &Words, idx: __m512i, outside: i16, past_table: bool) -> __m512i {
        // SAFETY: AVX-512BW, as the impl's.
        unsafe {
            let k6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(64));
            let k7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(128));
            let k8 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(256));
            let (a, b) = table_pair(t, 0);
            let p0 = _mm512_permutex2var_epi16(a, idx, b);
            let (a, b) = table_pair(t, 1);
            let p1 = _mm512_permutex2var_epi16(a, idx, b);
            let (a, b) = table_pair(t, 2);
            let p2 = _mm512_permutex2var_epi16(a, idx, b);
            let (a, b) = table_pair(t, 3);
            let p3 = _mm512_permutex2var_epi16(a, idx, b);
            let (a, b) = table_pair(t, 4);
            let p4 = _mm512_permutex2var_epi16(a, idx, b);
            let p01 = _mm512_mask_blend_epi16(k6, p0, p1);
            let p23 = _mm512_mask_blend_epi16(k6, p2, p3);
            let p03 = _mm512_mask_blend_epi16(k7, p01, p23);
            let v = _mm512_mask_blend_epi16(k8, p03, p4);
            if past_table {
                let inside = _mm512_cmplt_epu16_mask(idx, _mm512_set1_epi16(GELU_LAST as i16));
                _mm512_mask_mov_epi16(_mm512_set1_epi16(outside), inside, v)
            } else {
                v
            }
        }
    }

    impl<const VNNI: bool> I32x16<VNNI> {
        /// The high 32 bits of each lane's `i64` product with `m`.
        #[inline(always)]
        fn mul_high(self, m: i32) -> __m512i {
            // SAFETY: as the `ILane` impl's.
            unsafe {
                let m = _mm512_set1_epi32(m);
                // `vpmuldq` multiplies the low (signed) 32 bits of each 64-bit lane.
                let even = _mm512_mul_epi32(self.0, m);
                let odd = _mm512_mul_epi32(_mm512_srli_epi64(self.0, 32), m);
                _mm512_mask_blend_epi32(0xaaaa, _mm512_srli_epi64(even, 32), odd)
            }
        }

        /// One vector of [`ILane::gelu2`] from the dwords `e` (`C[i] − 16384` low,
        /// `C[i+1] − C[i]` high), `unit_f` (`2^d` low, `f` high) and `relu` (`max(u, 0)`):
        /// `c = (C[i] − 16384)·2^d + (C[i+1] − C[i])·f + offset` by one `vpmaddwd` — or,
        /// when `2^d` = 2^15 is no int16, the first product by a shift, `unit_f`'s low half
        /// being ignored — then the rounding shift and the ReLU part.
        #[inline(always)]
        fn gelu_from(e: __m512i, unit_f: __m512i, relu: __m512i, g: &QGelu) -> Self {
            // SAFETY: as the `ILane` impl's.
            unsafe {
                let c = if g.step < 15 {
                    _mm512_madd_epi16(e, unit_f)
                } else {
                    let c16 = _mm512_srai_epi32(_mm512_slli_epi32(e, 16), 16);
                    let f = _mm512_and_si512(unit_f, _mm512_set1_epi32(!0xffff));
                    _mm512_add_epi32(_mm512_slli_epi32(c16, 15), _mm512_madd_epi16(e, f))
                };
                let c = _mm512_add_epi32(c, _mm512_set1_epi32(g.offset));
                let c = _mm512_srl_epi32(c, count(g.round));
                Self(_mm512_sub_epi32(_mm512_sll_epi32(relu, count(g.up)), c))
            }
        }
    }

    // SAFETY (every block in this impl): values of this type exist only inside code running
    // after AVX-512F and BW (and, for `VNNI = true`, AVX-512 VNNI) were detected (module
    // docs); loads and stores are bounds-checked by the asserts beside them.
    impl<const VNNI: bool> ILane for I32x16<VNNI> {
        type F = F32x16;
        const LANES: usize = 16;
        #[inline(always)]
        fn splat(v: i32) -> Self {
            Self(unsafe { _mm512_set1_epi32(v) })
        }
        #[inline(always)]
        fn load(src: &[i32]) -> Self {
            assert!(src.len() >= 16);
            Self(unsafe { _mm512_loadu_si512(src.as_ptr().cast()) })
        }
        #[inline(always)]
        fn store(self, dst: &mut [i32]) {
            assert!(dst.len() >= 16);
            unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), self.0) }
        }
        #[inline(always)]
        fn dot2(self, x: Self, w: Self) -> Self {
            // `vpdpwssd` (not the saturating `vpdpwssds`) wraps like the separate add.
            if VNNI {
                Self(unsafe { _mm512_dpwssd_epi32(self.0, x.0, w.0) })
            } else {
                Self(unsafe { _mm512_add_epi32(self.0, _mm512_madd_epi16(x.0, w.0)) })
            }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Self(unsafe { _mm512_add_epi32(self.0, o.0) })
        }
        #[inline(always)]
        fn sat16(self) -> Self {
            unsafe {
                let v = _mm512_max_epi32(self.0, _mm512_set1_epi32(i16::MIN.into()));
                Self(_mm512_min_epi32(v, _mm512_set1_epi32(i16::MAX.into())))
            }
        }
        #[inline(always)]
        fn requantize(self, q: &Requant) -> Self {
            if q.high {
                // The high-half form (`Requant`), saturated later.
                let hi = self.mul_high(q.multiplier);
                let v = unsafe { _mm512_add_epi32(hi, _mm512_set1_epi32(q.high_round)) };
                return Self(unsafe { _mm512_sra_epi32(v, count(q.high_shift)) });
            }
            // s ≤ 32: acc·M + R in i64 (|·| < 2^63), arithmetic shift, clamp.
            #[inline(always)]
            unsafe fn one(p: __m512i, round: __m512i, s: __m128i) -> __m512i {
                // SAFETY: as the impl's (the caller runs with AVX-512F).
                unsafe {
                    let v = _mm512_sra_epi64(_mm512_add_epi64(p, round), s);
                    let (lo, hi) = (_mm512_set1_epi64(-32768), _mm512_set1_epi64(32767));
                    _mm512_min_epi64(_mm512_max_epi64(v, lo), hi)
                }
            }
            unsafe {
                let m = _mm512_set1_epi32(q.multiplier);
                let round = _mm512_set1_epi64(q.round);
                let s = count(q.shift.into());
                let even = one(_mm512_mul_epi32(self.0, m), round, s);
                let odd = one(_mm512_mul_epi32(_mm512_srli_epi64(self.0, 32), m), round, s);
                Self(_mm512_mask_blend_epi32(
                    0xaaaa,
                    even,
                    _mm512_slli_epi64(odd, 32),
                ))
            }
        }
        #[inline(always)]
        fn residual(self) -> Self {
            // As `I32x8::residual`.
            let x4 = Self(unsafe { _mm512_slli_epi32(self.0, 2) });
            let hi = x4.mul_high(SQRT_HALF_MULTIPLIER);
            Self(unsafe { _mm512_srai_epi32(_mm512_add_epi32(hi, _mm512_set1_epi32(1)), 1) })
        }
        #[inline(always)]
        fn gelu2(a: Self, b: Self, g: &QGelu) -> (Self, Self) {
            unsafe {
                // As words, saturated: `a`'s lanes then `b`'s per 128 bits, which `unpack`
                // lo/hi turn back into each vector's order.
                let u = _mm512_packs_epi32(a.0, b.0);
                let abs = _mm512_abs_epi16(u); // 32768 for −32768, as an unsigned word
                let idx = _mm512_srl_epi16(abs, count(g.step));
                let c = lookup(&GELU_C16, idx, -16384, g.past_table);
                let d = lookup(&GELU_DIFF, idx, 0, g.past_table);
                let f = _mm512_and_si512(abs, _mm512_set1_epi16(((1u32 << g.step) - 1) as i16));
                let unit = _mm512_set1_epi16((1u32 << g.step.min(14)) as i16);
                let relu = _mm512_max_epi16(u, _mm512_setzero_si512());
                let zero = _mm512_setzero_si512();
                let lo = Self::gelu_from(
                    _mm512_unpacklo_epi16(c, d),
                    _mm512_unpacklo_epi16(unit, f),
                    _mm512_unpacklo_epi16(relu, zero),
                    g,
                );
                let hi = Self::gelu_from(
                    _mm512_unpackhi_epi16(c, d),
                    _mm512_unpackhi_epi16(unit, f),
                    _mm512_unpackhi_epi16(relu, zero),
                    g,
                );
                (lo, hi)
            }
        }
        #[inline(always)]
        fn pack(lo: Self, hi: Self) -> Self {
            unsafe {
                let w = _mm512_packs_epi32(lo.0, hi.0);
                let idx = _mm512_broadcast_i32x4(_mm_loadu_si128(PAIR_BYTES.as_ptr().cast()));
                Self(_mm512_shuffle_epi8(w, idx))
            }
        }
        #[inline(always)]
        fn low(self) -> Self {
            Self(unsafe { _mm512_srai_epi32(_mm512_slli_epi32(self.0, 16), 16) })
        }
        #[inline(always)]
        fn high(self) -> Self {
            Self(unsafe { _mm512_srai_epi32(self.0, 16) })
        }
    }
}

#[cfg(test)]
mod tests {
    use tinyddpm_core::quant::Gelu;

    use super::super::packed::pair;
    use super::*;

    /// Sums, multipliers and shifts at and near every bound, and a few in between.
    const ACCS: [i32; 12] = [
        i32::MIN,
        i32::MIN + 1,
        -1 << 30,
        -65_536,
        -3,
        -1,
        0,
        1,
        2,
        32_767,
        1 << 30,
        i32::MAX,
    ];

    /// `inputs` in vectors of `L` (the last padded with the first input).
    fn vectors<L: ILane>(inputs: &[i32]) -> Vec<(Vec<i32>, L)> {
        inputs
            .chunks(L::LANES)
            .map(|chunk| {
                let mut lanes = vec![chunk[0]; L::LANES];
                lanes[..chunk.len()].copy_from_slice(chunk);
                let v = L::load(&lanes);
                (lanes, v)
            })
            .collect()
    }

    fn lanes<L: ILane>(v: L) -> Vec<i32> {
        let mut out = vec![0; L::LANES];
        v.store(&mut out);
        out
    }

    /// Every lane of `op` over `inputs` against `scalar`.
    fn check_lanes<L: ILane>(inputs: &[i32], op: impl Fn(L) -> L, scalar: impl Fn(i32) -> i32) {
        for (x, v) in vectors::<L>(inputs) {
            for (x, y) in x.iter().zip(lanes(op(v))) {
                assert_eq!(y, scalar(*x), "input {x}");
            }
        }
    }

    /// Every operation of `L` against the core's scalar code: requantization over extreme
    /// sums, multipliers and every shift (both forms, and clamped shifts), the residual over
    /// its whole input range, GELU over every int16 input for every valid exponent pair and
    /// some clamped ones, the multiply-add with −128 weights and −32768 activations, packing
    /// with saturation and unpacking.
    fn all_ops<L: ILane>() {
        let mut multipliers: Vec<i32> = ACCS.to_vec();
        multipliers.extend([SQRT_HALF_MULTIPLIER, 1 << 30, -(1 << 30) - 7]);
        for &m in &multipliers {
            for s in 0..=70 {
                let q = Requant::new(m, s);
                check_lanes::<L>(
                    &ACCS,
                    |v| v.requantize(&q).sat16(),
                    |v| requantize(v, m, s).into(),
                );
            }
        }
        let sums: Vec<i32> = (-3 * 32768..=3 * 32767).collect();
        let residual = |v| requantize(v, SQRT_HALF_MULTIPLIER, SQRT_HALF_SHIFT).into();
        for (x, v) in vectors::<L>(&sums) {
            let got = lanes(L::pack(v.residual(), L::splat(0)).low());
            let want: Vec<i32> = x.iter().map(|&x| residual(x)).collect();
            assert_eq!(got, want);
        }
        let all: Vec<i32> = (i16::MIN..=i16::MAX).map(i32::from).collect();
        // GELU inputs: every int16 value, and some that saturate first.
        let mut inputs = all.clone();
        inputs.extend([i32::MIN, -40_000, -32_769, 32_768, 40_000, i32::MAX]);
        let mut gelus: Vec<Gelu> = (6..=21u8)
            .flat_map(|p| {
                (p..=p + 12).map(move |o| Gelu {
                    pre_exp: p,
                    post_exp: o,
                })
            })
            .collect();
        gelus.extend(
            [(0, 0), (5, 30), (22, 22), (30, 3), (12, 11)].map(|(p, o)| Gelu {
                pre_exp: p,
                post_exp: o,
            }),
        );
        let reversed: Vec<i32> = inputs.iter().rev().copied().collect();
        let (a, b) = (vectors::<L>(&inputs), vectors::<L>(&reversed));
        for g in gelus {
            let qg = QGelu::new(g);
            let apply = |x: &i32| i32::from(g.apply(sat16((*x).into())));
            for ((xa, va), (xb, vb)) in a.iter().zip(&b) {
                let (ga, gb) = L::gelu2(*va, *vb, &qg);
                let (ga, gb) = (lanes(ga.sat16()), lanes(gb.sat16()));
                assert_eq!(ga, xa.iter().map(apply).collect::<Vec<_>>(), "{g:?}");
                assert_eq!(gb, xb.iter().map(apply).collect::<Vec<_>>(), "{g:?}");
            }
        }
        check_lanes::<L>(&ACCS, L::sat16, |v| sat16(v.into()).into());
        for (x, v) in vectors::<L>(&ACCS) {
            let p = lanes(L::pack(v, L::splat(-40_000)));
            let want: Vec<i32> = x.iter().map(|&x| pair(sat16(x.into()), i16::MIN)).collect();
            assert_eq!(p, want);
        }
        check_lanes::<L>(&all, |v| L::pack(v, L::splat(-7)).low(), |v| v);
        check_lanes::<L>(&all, |v| L::pack(L::splat(-7), v).high(), |v| v);
        let pairs = [
            (-128, -32768),
            (-128, 32767),
            (127, -32768),
            (127, 1),
            (0, 5),
        ];
        for &(w, x) in &pairs {
            for &(w2, x2) in &pairs {
                let (wp, xp) = (pair(w, w2), pair(x, x2));
                let product = i32::from(w) * i32::from(x) + i32::from(w2) * i32::from(x2);
                check_lanes::<L>(
                    &ACCS,
                    |a| a.dot2(L::splat(xp), L::splat(wp)),
                    |a| a.wrapping_add(product),
                );
            }
        }
    }

    #[test]
    fn portable_integer_lanes_match_scalar() {
        all_ops::<PortableI32<4>>();
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_integer_lanes_match_scalar() {
        #[target_feature(enable = "avx2")]
        fn avx2() {
            all_ops::<I32x8>();
        }
        #[target_feature(enable = "avx512f,avx512bw")]
        fn avx512() {
            all_ops::<I32x16<false>>();
        }
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        fn avx512vnni() {
            all_ops::<I32x16<true>>();
        }
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") {
            // SAFETY: the feature was just detected.
            unsafe { avx2() }
        } else {
            println!("skipping AVX2: not available");
        }
        if has!("avx512f") && has!("avx512bw") {
            // SAFETY: the features were just detected.
            unsafe { avx512() }
        } else {
            println!("skipping AVX-512: not available");
        }
        if has!("avx512f") && has!("avx512bw") && has!("avx512vnni") {
            // SAFETY: the features were just detected.
            unsafe { avx512vnni() }
        } else {
            println!("skipping AVX-512 VNNI: not available");
        }
    }
}
