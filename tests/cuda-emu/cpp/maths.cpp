// common.cu's device maths built for the CPU, for the test that checks it against the core
// bit for bit (tests/maths.rs).
#include "cuda_cpu.h"

namespace device_maths {
#include "common.cu"
}

using namespace device_maths;

static u32 bits(float f) { return __float_as_uint(f); }

// For each of the `n` words of `in`, EMU_MATHS_WORDS words of `out`: gelu, core_ln,
// sincos_turns (cos, sin), box_muller (two), two gaussian_pair draws of a stream seeded from
// the word, exp_nonpositive and gelu_derivative (results as f32 bits; 0 where the input is
// out of the function's range).
extern "C" void emu_maths(const u32 *in, size_t n, u32 *out) {
    const u32 fallback[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; ++i) {
        const u32 w = in[i];
        const float x = __uint_as_float(w);
        u32 *r = out + 12 * i;
        memset(r, 0, 12 * sizeof(u32));
        if (isfinite(x)) {
            r[0] = bits(gelu(x));
            r[11] = bits(gelu_derivative(x));
            if (x <= 0.0f) {
                r[10] = bits(exp_nonpositive(x));
            }
        }
        if (isnormal(x) && x > 0) {
            r[1] = bits(core_ln(x));
        }
        float c, s;
        sincos_turns(w, &c, &s);
        r[2] = bits(c);
        r[3] = bits(s);
        box_muller(w >> 8, (w * 2654435761u) >> 8, &c, &s);
        r[4] = bits(c);
        r[5] = bits(s);
        Xoshiro128pp st = stream_new((u64)w * 0x9e3779b97f4a7c15ull, (u64)w ^ 0x5555, fallback);
        gaussian_pair(&st, &c, &s);
        r[6] = bits(c);
        r[7] = bits(s);
        gaussian_pair(&st, &c, &s);
        r[8] = bits(c);
        r[9] = bits(s);
    }
}
