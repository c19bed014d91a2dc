// The device maths of common.cu, built for the CPU with the system C++ compiler (by the test
// `kernel_maths_built_for_the_cpu_matches_the_core_bit_for_bit` in tests/cuda.rs, with
// `-std=c++17 -O2 -ffp-contract=off -fno-fast-math`): the `__f*_rn` intrinsics become plain
// IEEE single-precision operations (SSE, contraction off), so each function computes exactly
// what the GPU computes.
//
// Usage: common_harness IN OUT. IN holds 32-bit words; for each, OUT gets ten words: gelu,
// core_ln, sincos_turns (cos, sin), box_muller (two), and two gaussian_pair draws of a
// stream seeded from the word (results as f32 bits; 0 where the input is out of range).
#include <cmath>
#include <cstdio>
#include <cstring>
#define __device__
#define __forceinline__ inline
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }
static inline float __int2float_rn(int a) { return (float)a; }
static inline float __uint2float_rn(unsigned a) { return (float)a; }
static inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
#include "common.cu"
static unsigned bits(float f) { return __float_as_uint(f); }
int main(int argc, char **argv) {
    FILE *in = std::fopen(argv[1], "rb");
    FILE *out = std::fopen(argv[2], "wb");
    const u32 fallback[4] = {0, 0, 0, 0};
    u32 w;
    while (std::fread(&w, 4, 1, in) == 1) {
        float x = __uint_as_float(w);
        u32 r[10] = {0};
        if (std::isfinite(x)) r[0] = bits(gelu(x));
        if (std::isnormal(x) && x > 0) r[1] = bits(core_ln(x));
        float c, s;
        sincos_turns(w, &c, &s);
        r[2] = bits(c); r[3] = bits(s);
        box_muller(w >> 8, (w * 2654435761u) >> 8, &c, &s);
        r[4] = bits(c); r[5] = bits(s);
        Xoshiro128pp st = stream_new((u64)w * 0x9e3779b97f4a7c15ull, (u64)w ^ 0x5555, fallback);
        gaussian_pair(&st, &c, &s); r[6] = bits(c); r[7] = bits(s);
        gaussian_pair(&st, &c, &s); r[8] = bits(c); r[9] = bits(s);
        std::fwrite(r, 4, 10, out);
    }
    std::fclose(out);
    return 0;
}
