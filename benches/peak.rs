//! This machine's unfused multiply-then-add peak, measured in the benchmark's own process so
//! that "fraction of peak" compares two runs on the same cores under the same load.
//!
//! The kernel keeps 16 independent `acc = acc·m + a` chains in registers (a multiply rounded,
//! then an add: the core's arithmetic, no FMA) — no loads, the register-only upper bound.

use std::time::Instant;

/// Register-resident chains: enough to cover mul + add latency on two ports.
const CHAINS: usize = 16;
/// Inner iterations per timing (each: CHAINS vector multiplies and adds).
const ITERS: u64 = 20_000_000;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn spin_avx512(iters: u64) -> (f32, u64) {
    use std::arch::x86_64::*;
    let m = _mm512_set1_ps(0.999_999);
    let a = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for v in &mut acc {
            *v = _mm512_add_ps(_mm512_mul_ps(*v, m), a);
        }
    }
    // Every chain feeds the result, or the compiler drops the unused ones.
    let sum = acc
        .iter()
        .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
    let mut out = [0.0f32; 16];
    // SAFETY: `out` holds 16 f32, the width of one __m512 store.
    unsafe { _mm512_storeu_ps(out.as_mut_ptr(), sum) };
    (out[0], 16)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn spin_avx2(iters: u64) -> (f32, u64) {
    use std::arch::x86_64::*;
    let m = _mm256_set1_ps(0.999_999);
    let a = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for v in &mut acc {
            *v = _mm256_add_ps(_mm256_mul_ps(*v, m), a);
        }
    }
    let sum = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds 8 f32, the width of one __m256 store.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    (out[0], 8)
}

/// One thread's rate in FLOP/s (2 per multiply-add).
fn one_thread() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        let start = Instant::now();
        // SAFETY: each path runs only after its CPU feature was detected.
        let (sink, lanes) = if is_x86_feature_detected!("avx512f") {
            unsafe { spin_avx512(ITERS) }
        } else if is_x86_feature_detected!("avx2") {
            unsafe { spin_avx2(ITERS) }
        } else {
            return f64::NAN;
        };
        std::hint::black_box(sink);
        (2 * CHAINS as u64 * lanes * ITERS) as f64 / start.elapsed().as_secs_f64()
    }
    #[cfg(not(target_arch = "x86_64"))]
    f64::NAN
}

/// Unfused multiply-add peak of `threads` threads running at once, GFLOP/s (best of 3).
pub fn unfused_peak_gflops(threads: usize) -> f64 {
    (0..3)
        .map(|_| {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|_| s.spawn(one_thread)).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("peak thread"))
                    .sum::<f64>()
            })
        })
        .fold(0.0, f64::max)
        / 1e9
}
