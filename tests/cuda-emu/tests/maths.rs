//! `common.cu`'s device maths, built for the CPU as the emulation builds every kernel, gives
//! the core's bits: GELU and its derivative, ln, exp, sin/cos, Box–Muller and the noise
//! streams. (The intrinsics are plain IEEE operations there, as they are on the GPU.)

use tinyddpm_core::gelu::{gelu, gelu_derivative};
use tinyddpm_core::math;
use tinyddpm_core::noise::{NoiseStream, box_muller, mix64};
use tinyddpm_cuda_emu::{MATHS_WORDS, maths};

#[test]
fn kernel_maths_built_for_the_cpu_matches_the_core_bit_for_bit() {
    // Pseudo-random words (every float class and every turn) plus edge cases and a fine
    // sweep of [-10, 10], where GELU and its derivative do their work.
    let mut words: Vec<u32> = (0..300_000u64).map(|i| (mix64(i) >> 32) as u32).collect();
    words.extend([
        0,
        1,
        0x8000_0000,
        0x3f80_0000,
        0xbf80_0000,
        0x0080_0000,
        0x7f7f_ffff,
        0xff7f_ffff,
        (-87.5f32).to_bits(),
    ]);
    words.extend((0..20_001).map(|i| (-10.0f32 + i as f32 * 1e-3).to_bits()));
    let got = maths(&words);
    let names = [
        "gelu",
        "ln",
        "cos",
        "sin",
        "box_muller.0",
        "box_muller.1",
        "stream.0",
        "stream.1",
        "stream.2",
        "stream.3",
        "exp_nonpositive",
        "gelu_derivative",
    ];
    let mut mismatches = 0;
    for (&w, row) in words.iter().zip(got.chunks_exact(MATHS_WORDS)) {
        let x = f32::from_bits(w);
        let mut want = [0u32; MATHS_WORDS];
        if x.is_finite() {
            want[0] = gelu(x).to_bits();
            want[11] = gelu_derivative(x).to_bits();
            if x <= 0.0 {
                want[10] = math::exp_nonpositive(x).to_bits();
            }
        }
        if x.is_normal() && x > 0.0 {
            want[1] = math::ln(x).to_bits();
        }
        let (c, s) = math::sincos_turns(w);
        (want[2], want[3]) = (c.to_bits(), s.to_bits());
        let z = box_muller(w >> 8, w.wrapping_mul(2_654_435_761) >> 8);
        (want[4], want[5]) = (z[0].to_bits(), z[1].to_bits());
        let mut stream = NoiseStream::new(
            u64::from(w).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            u64::from(w) ^ 0x5555,
        );
        for k in 0..2 {
            let [a, b] = stream.gaussian_pair();
            (want[6 + 2 * k], want[7 + 2 * k]) = (a.to_bits(), b.to_bits());
        }
        for (i, (g, e)) in row.iter().zip(&want).enumerate() {
            if g != e && mismatches < 10 {
                eprintln!(
                    "{}({w:#010x}): device maths {g:#010x}, core {e:#010x}",
                    names[i]
                );
            }
            mismatches += usize::from(g != e);
        }
    }
    assert_eq!(mismatches, 0, "device maths differ from the core");
}
