//! This machine's multiply-add peak, measured in the benchmark's own process so that
//! "fraction of peak" compares two runs on the same cores under the same load.
//!
//! The kernel keeps `C` independent chains `acc = acc·m + a` in registers, no loads: the
//! register-only upper bound. Unfused (a multiply rounded, then an add: the core's arithmetic)
//! by default; fused (one FMA) for the training GEMM, which may fuse.
//!
//! How many chains: a chain issues one multiply and one dependent add, so it is bound by their
//! latencies; the ports stay busy only with (latency × ports) chains in flight — on AMD Zen
//! (separate multiply and add pipes, 3-cycle latency each, two of each) 12, on Intel (two FMA
//! ports doing either, 4 cycles) 8. Too many and the chains plus the two constants no longer
//! fit the register file (16 ymm with AVX2: 16 chains spill, which is why an earlier version of
//! this benchmark read ~45 % of a Zen 3's real AVX2 limit). So each width is measured at
//! several chain counts that fit its registers (AVX2 up to 14 = 16 − 2 constants, AVX-512 up
//! to 24 of 32), and the best is the peak: whichever the microarchitecture needs is among
//! them. `objdump -d` of the benchmark shows each count's loop free of stack loads and stores.

use std::time::Instant;

/// Inner iterations per timing (each: C vector multiplies and adds).
const ITERS: u64 = 10_000_000;

/// The vector widths the host sampler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 16 f32 lanes, AVX-512F.
    Avx512,
    /// 8 f32 lanes, AVX2.
    Avx2,
}

impl Width {
    /// The widest width this CPU has.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return Some(Width::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Some(Width::Avx2);
            }
        }
        None
    }

    /// Whether this CPU has the width (and FMA, for the fused peak).
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Width::Avx512 => is_x86_feature_detected!("avx512f"),
                Width::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

macro_rules! spin {
    ($name:ident, $feature:literal, $lanes:literal, $set1:ident, $mul:ident, $add:ident,
     $fma:ident, $zero:ident, $store:ident) => {
        /// `C` chains of `iters` multiply-adds on one vector width; returns a value that
        /// depends on every chain (or the compiler drops the unused ones) and the lane count.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        fn $name<const C: usize>(iters: u64, fused: bool) -> (f32, u64) {
            use std::arch::x86_64::*;
            let m = $set1(0.999_999);
            let a = $set1(1e-7);
            let mut acc = [$set1(1.0); C];
            if fused {
                for _ in 0..iters {
                    for v in &mut acc {
                        *v = $fma(*v, m, a);
                    }
                }
            } else {
                for _ in 0..iters {
                    for v in &mut acc {
                        *v = $add($mul(*v, m), a);
                    }
                }
            }
            let sum = acc.iter().fold($zero(), |s, &v| $add(s, v));
            let mut out = [0.0f32; $lanes];
            // SAFETY: `out` holds exactly one vector's f32 lanes.
            unsafe { $store(out.as_mut_ptr(), sum) };
            (out[0], $lanes)
        }
    };
}

spin!(
    spin_avx512,
    "avx512f",
    16,
    _mm512_set1_ps,
    _mm512_mul_ps,
    _mm512_add_ps,
    _mm512_fmadd_ps,
    _mm512_setzero_ps,
    _mm512_storeu_ps
);
spin!(
    spin_avx2,
    "avx2,fma",
    8,
    _mm256_set1_ps,
    _mm256_mul_ps,
    _mm256_add_ps,
    _mm256_fmadd_ps,
    _mm256_setzero_ps,
    _mm256_storeu_ps
);

/// One thread's rate in FLOP/s (2 per multiply-add) with `chains` chains.
fn one_thread(width: Width, chains: usize, fused: bool) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if !width.available() {
            return f64::NAN;
        }
        let start = Instant::now();
        // SAFETY: `available` checked the width's CPU features just above.
        let (sink, lanes) = unsafe {
            match (width, chains) {
                (Width::Avx512, 8) => spin_avx512::<8>(ITERS, fused),
                (Width::Avx512, 12) => spin_avx512::<12>(ITERS, fused),
                (Width::Avx512, 16) => spin_avx512::<16>(ITERS, fused),
                (Width::Avx512, _) => spin_avx512::<24>(ITERS, fused),
                (Width::Avx2, 8) => spin_avx2::<8>(ITERS, fused),
                (Width::Avx2, 10) => spin_avx2::<10>(ITERS, fused),
                (Width::Avx2, 12) => spin_avx2::<12>(ITERS, fused),
                (Width::Avx2, _) => spin_avx2::<14>(ITERS, fused),
            }
        };
        std::hint::black_box(sink);
        (2 * chains as u64 * lanes * ITERS) as f64 / start.elapsed().as_secs_f64()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (width, chains, fused);
        f64::NAN
    }
}

/// The chain counts measured for a width (each fits its register file, see the module docs).
fn chain_counts(width: Width) -> &'static [usize] {
    match width {
        Width::Avx512 => &[8, 12, 16, 24],
        Width::Avx2 => &[8, 10, 12, 14],
    }
}

/// The multiply-add peak of `threads` threads at once on `width`, GFLOP/s: the best of 3
/// runs of every chain count.
pub fn peak_gflops(width: Width, threads: usize, fused: bool) -> f64 {
    let rate = |chains: usize| {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| s.spawn(move || one_thread(width, chains, fused)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("peak thread"))
                .sum::<f64>()
        })
    };
    chain_counts(width)
        .iter()
        .flat_map(|&c| (0..3).map(move |_| c))
        .map(rate)
        .fold(f64::NAN, f64::max)
        / 1e9
}

/// Unfused multiply-add peak of `threads` threads on this CPU's widest width, GFLOP/s.
pub fn unfused_peak_gflops(threads: usize) -> f64 {
    Width::detect().map_or(f64::NAN, |w| peak_gflops(w, threads, false))
}

/// Fused (FMA) peak of `threads` threads on this CPU's widest width, GFLOP/s.
#[allow(dead_code)] // each bench compiles this module and uses a part of it
pub fn fused_peak_gflops(threads: usize) -> f64 {
    Width::detect().map_or(f64::NAN, |w| peak_gflops(w, threads, true))
}
