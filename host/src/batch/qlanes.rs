//! Integer lane types: the integer model's arithmetic on SIMD vectors of `i32` lanes, one lane
//! per sample.
//!
//! A lane holds either an `i32` (a sum, or an activation sign-extended) or a pair of int16
//! activations of two consecutive units (low half: the even unit), the operand layout of
//! `vpmaddwd` (qpacked.rs). Every operation is exact integer arithmetic, so each lane equals
//! the core's scalar `tinyddpm_core::quant` code on that sample, whatever the instruction:
//!
//! - [`IPortable`]: plain Rust, the core's own `requantize` and `Gelu::apply` per lane;
//! - [`I32x8`]: AVX2 (`vpmaddwd` on 8 lanes);
//! - [`I32x16`]: AVX-512F/BW (`vpmaddwd` on 16 lanes), and with `VNNI = true` AVX-512 VNNI's
//!   `vpdpwssd`, the multiply-add and the accumulation in one instruction.
//!
//! The x86 types are only ever created inside functions compiled with their target features,
//! entered after runtime detection (mod.rs), the invariant every `unsafe` block below relies
//! on, as in lanes.rs.

use tinyddpm_core::Lanes;
use tinyddpm_core::quant::{requantize, sat16};

use super::lanes::Lane;
use super::qpacked::{QGelu, Requant};

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
    /// Each lane requantized: `requantize(lane, q.multiplier, q.shift)`.
    fn requantize(self, q: &Requant) -> Self;
    /// Each lane (an int16 value) through the GELU `g`: `g.gelu.apply(lane)`.
    fn gelu(self, g: &QGelu) -> Self;
    /// Pairs: `lo` (int16 values) in the low halves, `hi` in the high halves.
    fn pair(lo: Self, hi: Self) -> Self;
    /// The low halves of pairs, sign-extended.
    fn low(self) -> Self;
    /// The high halves of pairs, sign-extended.
    fn high(self) -> Self;
}

/// The portable path: `N` lanes in plain Rust, the core's integer functions per lane.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IPortable<const N: usize>([i32; N]);

impl<const N: usize> IPortable<N> {
    #[inline(always)]
    fn each(mut self, f: impl Fn(i32) -> i32) -> Self {
        for a in &mut self.0 {
            *a = f(*a);
        }
        self
    }
}

impl<const N: usize> ILane for IPortable<N> {
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
    fn gelu(self, g: &QGelu) -> Self {
        self.each(|v| g.gelu.apply(v as i16).into())
    }
    #[inline(always)]
    fn pair(mut lo: Self, hi: Self) -> Self {
        for (l, h) in lo.0.iter_mut().zip(hi.0) {
            *l = (*l & 0xffff) | (h << 16);
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

    use super::super::lanes::{F32x8, F32x16};
    use super::super::qpacked::{GELU_LAST, GELU_PAIRS, QGelu, Requant};
    use super::ILane;

    /// A shift count for the `sll`/`srl`/`sra` family (the count in the low 64 bits).
    #[inline(always)]
    fn count(n: u32) -> __m128i {
        // SAFETY: SSE2, part of the x86_64 baseline.
        unsafe { _mm_cvtsi32_si128(n as i32) }
    }

    /// 8 lanes of AVX2.
    #[derive(Clone, Copy, Debug)]
    #[repr(transparent)]
    pub(crate) struct I32x8(__m256i);

    // SAFETY (every block in this impl): values of this type exist only inside code running
    // after AVX2 was detected (module docs), so the intrinsics' target feature is present;
    // loads and stores are bounds-checked by the asserts beside them, the gather's indices by
    // the clamp before it.
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
            // AVX2 has no 64-bit arithmetic shift and no 64-bit min/max: with
            // P = acc·M ∈ [−2^62, 2^62] and R = ⌊2^s/2⌋ ≤ 2^61, P + R + 2^62 lies in
            // [0, 2^64) as an unsigned number, so its logical shift by s is
            // ⌊(P + R)/2^s⌋ + 2^(62−s) exactly (s ≤ 62); subtracting 2^(62−s) leaves the
            // specification's value, then clamped by compares.
            unsafe {
                let m = _mm256_set1_epi32(q.multiplier);
                let bias = _mm256_set1_epi64x(q.round + (1 << 62));
                let unbias = _mm256_set1_epi64x(1 << (62 - q.shift));
                let s = count(q.shift.into());
                let (lo, hi) = (_mm256_set1_epi64x(-32768), _mm256_set1_epi64x(32767));
                let one = |p: __m256i| {
                    let v =
                        _mm256_sub_epi64(_mm256_srl_epi64(_mm256_add_epi64(p, bias), s), unbias);
                    let v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
                    _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v))
                };
                // `vpmuldq` multiplies the low (signed) 32 bits of each 64-bit lane.
                let even = one(_mm256_mul_epi32(self.0, m));
                let odd = one(_mm256_mul_epi32(_mm256_srli_epi64(self.0, 32), m));
                Self(_mm256_blend_epi32(
                    even,
                    _mm256_slli_epi64(odd, 32),
                    0b1010_1010,
                ))
            }
        }
        #[inline(always)]
        fn gelu(self, g: &QGelu) -> Self {
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
        #[inline(always)]
        fn pair(lo: Self, hi: Self) -> Self {
            Self(unsafe { _mm256_blend_epi16(lo.0, _mm256_slli_epi32(hi.0, 16), 0b1010_1010) })
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

    // SAFETY (every block in this impl): values of this type exist only inside code running
    // after AVX-512F and BW (and, for `VNNI = true`, AVX-512 VNNI) were detected (module
    // docs); loads and stores are bounds-checked by the asserts beside them, the gather's
    // indices by the clamp before it.
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
            unsafe {
                let m = _mm512_set1_epi32(q.multiplier);
                let round = _mm512_set1_epi64(q.round);
                let s = count(q.shift.into());
                let (lo, hi) = (_mm512_set1_epi64(-32768), _mm512_set1_epi64(32767));
                // acc·M + R in i64 (|·| < 2^63), arithmetic shift, clamp: the specification.
                let one = |p: __m512i| {
                    let v = _mm512_sra_epi64(_mm512_add_epi64(p, round), s);
                    _mm512_min_epi64(_mm512_max_epi64(v, lo), hi)
                };
                // `vpmuldq` multiplies the low (signed) 32 bits of each 64-bit lane.
                let even = one(_mm512_mul_epi32(self.0, m));
                let odd = one(_mm512_mul_epi32(_mm512_srli_epi64(self.0, 32), m));
                Self(_mm512_mask_blend_epi32(
                    0xaaaa,
                    even,
                    _mm512_slli_epi64(odd, 32),
                ))
            }
        }
        #[inline(always)]
        fn gelu(self, g: &QGelu) -> Self {
            // As `I32x8::gelu`.
            unsafe {
                let u = self.0;
                let a = _mm512_abs_epi32(u);
                let step = count(g.step);
                let i = _mm512_min_epi32(_mm512_srl_epi32(a, step), _mm512_set1_epi32(GELU_LAST));
                let f = _mm512_and_si512(a, _mm512_set1_epi32((1 << g.step) - 1));
                let e = _mm512_i32gather_epi32::<4>(i, GELU_PAIRS.as_ptr());
                let c = _mm512_sll_epi32(_mm512_and_si512(e, _mm512_set1_epi32(0xffff)), step);
                let c = _mm512_add_epi32(c, _mm512_madd_epi16(e, _mm512_slli_epi32(f, 16)));
                let c = _mm512_add_epi32(c, _mm512_set1_epi32(g.half));
                let c = _mm512_srl_epi32(c, count(g.round));
                let relu = _mm512_max_epi32(u, _mm512_setzero_si512());
                let relu = _mm512_sll_epi32(relu, count(g.up));
                Self(_mm512_sub_epi32(relu, c)).sat16()
            }
        }
        #[inline(always)]
        fn pair(lo: Self, hi: Self) -> Self {
            Self(unsafe { _mm512_mask_blend_epi16(0xaaaa_aaaa, lo.0, _mm512_slli_epi32(hi.0, 16)) })
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

    /// Every lane of `L` over `inputs` (padded with the first), each against `scalar`.
    fn check_lanes<L: ILane>(inputs: &[i32], op: impl Fn(L) -> L, scalar: impl Fn(i32) -> i32) {
        let mut out = vec![0; L::LANES];
        for chunk in inputs.chunks(L::LANES) {
            let mut lanes = vec![chunk[0]; L::LANES];
            lanes[..chunk.len()].copy_from_slice(chunk);
            op(L::load(&lanes)).store(&mut out);
            for (x, y) in lanes.iter().zip(&out) {
                assert_eq!(*y, scalar(*x), "input {x}");
            }
        }
    }

    /// Every operation of `L` against the core's scalar code: requantization over extreme
    /// sums, multipliers and shifts (clamped ones included), GELU over every int16 input for
    /// every valid exponent pair and some clamped ones, the multiply-add with −128 weights
    /// and −32768 activations, and pairs.
    fn all_ops<L: ILane>() {
        let mut multipliers: Vec<i32> = ACCS.to_vec();
        multipliers.extend([1_518_500_250, 1 << 30, -(1 << 30) - 7]);
        for &m in &multipliers {
            for s in (0..=70).step_by(1) {
                let q = Requant::new(m, s);
                check_lanes::<L>(&ACCS, |v| v.requantize(&q), |v| requantize(v, m, s).into());
            }
        }
        let all: Vec<i32> = (i16::MIN..=i16::MAX).map(i32::from).collect();
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
        for g in gelus {
            let qg = QGelu::new(g);
            check_lanes::<L>(&all, |v| v.gelu(&qg), |v| g.apply(v as i16).into());
        }
        check_lanes::<L>(&ACCS, L::sat16, |v| sat16(v.into()).into());
        let pairs = [
            (-128, -32768),
            (-128, 32767),
            (127, -32768),
            (127, 1),
            (0, 5),
        ];
        for &(w, x) in &pairs {
            for &(w2, x2) in &pairs {
                let (wp, xp) = (pair16(w, w2), pair16(x, x2));
                check_lanes::<L>(
                    &ACCS,
                    |a| a.dot2(L::splat(xp), L::splat(wp)),
                    |a| a.wrapping_add(i32::from(w) * i32::from(x) + i32::from(w2) * i32::from(x2)),
                );
            }
        }
        check_lanes::<L>(&all, |v| L::pair(v, L::splat(-7)).low(), |v| v);
        check_lanes::<L>(&all, |v| L::pair(L::splat(-7), v).high(), |v| v);
    }

    fn pair16(lo: i16, hi: i16) -> i32 {
        super::super::qpacked::pair(lo, hi)
    }

    #[test]
    fn portable_integer_lanes_match_scalar() {
        all_ops::<IPortable<4>>();
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
