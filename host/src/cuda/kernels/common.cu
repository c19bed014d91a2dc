// Bit-exact device copies of tinyddpm-core's arithmetic, shared by every kernel source.
//
// Each function below is a line-for-line port of the core function named in its comment.
// Every float operation is written with an explicit round-to-nearest intrinsic
// (__fadd_rn, __fmul_rn, ...): those are never contracted into FMA, whatever the compiler
// flags, so each product is rounded before it is added exactly as in the core's Rust.
// Constants are the core's decimal literals: both compilers round them to the same float.

typedef unsigned int u32;
typedef unsigned long long u64;

// Kernel entry points and shared memory are declared through these macros so that the CPU
// emulation of the test suite (tests/cuda-emu, its header cuda_cpu.h) can define them its
// own way: there a kernel is a plain function and every thread block gets its own copy of
// each shared array. NVRTC sees CUDA's own declarations.
#ifndef KERNEL
// An entry point, by its unmangled name.
#define KERNEL extern "C" __global__
// A statically sized shared array, e.g. SHARED(float, tile, [32][33]).
#define SHARED(type, name, dims) __shared__ type name dims
// The launch's dynamic shared memory as an array of `type`.
#define DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

#define ADD(a, b) __fadd_rn((a), (b))
#define SUB(a, b) __fsub_rn((a), (b))
#define MUL(a, b) __fmul_rn((a), (b))
#define DIV(a, b) __fdiv_rn((a), (b))

// ---- gelu.rs -------------------------------------------------------------------------

// Φ(−a) ≈ P(u)/Q(u), u = min(a/6, 1); coefficients in ascending powers of u.
#define GELU_P0 0.5f
#define GELU_P1 -3.3691027f
#define GELU_P2 9.520966f
#define GELU_P3 -14.433603f
#define GELU_P4 12.370987f
#define GELU_P5 -5.6797323f
#define GELU_P6 1.0904876f
#define GELU_Q0 1.0f
#define GELU_Q1 -1.9508868f
#define GELU_Q2 9.70147f
#define GELU_Q3 -11.118999f
#define GELU_Q4 27.165367f
#define GELU_Q5 -2.2192633f
#define GELU_Q6 0.4919887f
#define GELU_Q7 55.36748f
#define GELU_INV_RANGE (1.0f / 6.0f)

// gelu::normal_upper_tail: Horner from the highest power down, then one division.
__device__ __forceinline__ float normal_upper_tail(float a) {
    float scaled = MUL(a, GELU_INV_RANGE);
    float u = scaled < 1.0f ? scaled : 1.0f; // Real::min: the select a < b ? a : b
    float p = GELU_P6;
    p = ADD(MUL(p, u), GELU_P5);
    p = ADD(MUL(p, u), GELU_P4);
    p = ADD(MUL(p, u), GELU_P3);
    p = ADD(MUL(p, u), GELU_P2);
    p = ADD(MUL(p, u), GELU_P1);
    p = ADD(MUL(p, u), GELU_P0);
    float q = GELU_Q7;
    q = ADD(MUL(q, u), GELU_Q6);
    q = ADD(MUL(q, u), GELU_Q5);
    q = ADD(MUL(q, u), GELU_Q4);
    q = ADD(MUL(q, u), GELU_Q3);
    q = ADD(MUL(q, u), GELU_Q2);
    q = ADD(MUL(q, u), GELU_Q1);
    q = ADD(MUL(q, u), GELU_Q0);
    return DIV(p, q);
}

// gelu::gelu: max(x, 0) − |x|·Φ(−|x|). `Real::max(a, b)` is the select a > b ? a : b
// (x86 maxps), so gelu(−0) = +0 on every backend; fmaxf leaves that sign unspecified.
__device__ __forceinline__ float gelu(float x) {
    float a = fabsf(x);
    return SUB(x > 0.0f ? x : 0.0f, MUL(a, normal_upper_tail(a)));
}

// ---- math.rs (exp) -------------------------------------------------------------------

#define LOG2E_F 1.44269504088896340736f
#define EXP_ROUND 12582912.0f
#define EXP_LN2_HI 0.6933594f
#define EXP_LN2_LO -2.1219444e-4f
#define EXP_MIN -87.0f

// math::exp_nonpositive: e^y for y ≤ 0 (Cephes expf polynomial, 2^n from the rounding
// constant's low bits).
__device__ __forceinline__ float exp_nonpositive(float y) {
    y = y > EXP_MIN ? y : EXP_MIN;
    float shifted = ADD(MUL(y, LOG2E_F), EXP_ROUND);
    float n = SUB(shifted, EXP_ROUND);
    float r = SUB(SUB(y, MUL(n, EXP_LN2_HI)), MUL(n, EXP_LN2_LO));
    float p = ADD(MUL(ADD(MUL(ADD(MUL(ADD(MUL(ADD(MUL(1.9875692e-4f, r), 1.3981999e-3f), r),
                                              8.333452e-3f),
                                          r),
                                      4.1665796e-2f),
                                  r),
                              1.6666665e-1f),
                          r),
                      0.5f);
    u32 exponent = __float_as_uint(shifted) - __float_as_uint(EXP_ROUND) + 127u;
    float scale = __uint_as_float(exponent << 23);
    return MUL(ADD(ADD(MUL(MUL(p, r), r), r), 1.0f), scale);
}

// ---- gelu.rs (derivative) ------------------------------------------------------------

// 1/√(2π), the standard normal density at 0.
#define FRAC_1_SQRT_2PI 0.3989423f

// gelu::gelu_derivative: Φ(x) + x·φ(x), Φ from the same tail as gelu (the trainer's).
__device__ __forceinline__ float gelu_derivative(float x) {
    float tail = normal_upper_tail(fabsf(x));
    float cdf = x >= 0.0f ? SUB(1.0f, tail) : tail;
    return ADD(cdf, MUL(x, MUL(exp_nonpositive(MUL(MUL(-0.5f, x), x)), FRAC_1_SQRT_2PI)));
}

// ---- math.rs -------------------------------------------------------------------------

#define LN2_HI 6.9313812e-1f
#define LN2_LO 9.0580006e-6f
#define LG1 0.66666663f
#define LG2 0.40000972f
#define LG3 0.28498787f
#define LG4 0.24279079f
#define SQRT_HALF_BITS 0x3f3504f3u

// math::ln (fdlibm logf reduction and polynomial) for positive normal finite x.
__device__ __forceinline__ float core_ln(float x) {
    u32 bits = __float_as_uint(x) + (0x3f800000u - SQRT_HALF_BITS);
    int k = (int)(bits >> 23) - 0x7f;
    float m = __uint_as_float((bits & 0x007fffffu) + SQRT_HALF_BITS);
    float f = SUB(m, 1.0f);
    float s = DIV(f, ADD(2.0f, f));
    float z = MUL(s, s);
    float w = MUL(z, z);
    float t1 = MUL(w, ADD(LG2, MUL(w, LG4)));
    float t2 = MUL(z, ADD(LG1, MUL(w, LG3)));
    float r = ADD(t2, t1);
    float hfsq = MUL(MUL(0.5f, f), f);
    float dk = __int2float_rn(k);
    return ADD(ADD(SUB(ADD(MUL(s, ADD(hfsq, r)), MUL(dk, LN2_LO)), hfsq), f), MUL(dk, LN2_HI));
}

#define TURN_BITS 24
// math::RADIANS_PER_STEP = TAU / 2^24 in f32 (a power-of-two scaling of f32 TAU: exact).
#define RADIANS_PER_STEP (6.28318530717958647692f / 16777216.0f)
#define SIN_S1 -1.6666655e-1f
#define SIN_S2 8.332161e-3f
#define SIN_S3 -1.9515296e-4f
#define COS_C1 4.1666646e-2f
#define COS_C2 -1.3887316e-3f
#define COS_C3 2.4433157e-5f

// math::sincos_turns: (cos, sin) of 2π·k/2^24 with the quadrant taken from the integer k.
__device__ __forceinline__ void sincos_turns(u32 k, float *cos_out, float *sin_out) {
    k = k & ((1u << TURN_BITS) - 1u);
    u32 q = ((k + (1u << 21)) >> 22) & 3u;
    int r = (int)k - (int)(q << 22);
    if (r >= (1 << 23)) {
        r = r - (1 << TURN_BITS);
    }
    float x = MUL(__int2float_rn(r), RADIANS_PER_STEP);
    float z = MUL(x, x);
    float s = ADD(MUL(MUL(ADD(MUL(ADD(MUL(SIN_S3, z), SIN_S2), z), SIN_S1), z), x), x);
    float c = ADD(SUB(MUL(MUL(ADD(MUL(ADD(MUL(COS_C3, z), COS_C2), z), COS_C1), z), z), MUL(0.5f, z)),
                  1.0f);
    switch (q) {
    case 0: *cos_out = c; *sin_out = s; break;
    case 1: *cos_out = -s; *sin_out = c; break;
    case 2: *cos_out = -c; *sin_out = -s; break;
    default: *cos_out = s; *sin_out = -c; break;
    }
}

// ---- noise.rs ------------------------------------------------------------------------

#define SPLITMIX_GAMMA 0x9e3779b97f4a7c15ull
// noise::UNIT = 2^-24
#define UNIT_24 (1.0f / 16777216.0f)

// noise::mix64: SplitMix64's output function.
__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// rand_xoshiro's Xoshiro128PlusPlus state.
struct Xoshiro128pp {
    u32 s0, s1, s2, s3;
};

// Xoshiro128PlusPlus::from_seed(noise::stream_seed(seed, index)): the 16 seed bytes are
// mix(seed+γ) then mix((index ^ mix(seed+γ))+γ), little-endian, read as four LE u32 words.
// rand_xoshiro maps an all-zero seed to a fixed state, passed in as `zero_fallback`.
__device__ __forceinline__ Xoshiro128pp stream_new(u64 seed, u64 index, const u32 *zero_fallback) {
    u64 a = mix64(seed + SPLITMIX_GAMMA);
    u64 b = mix64((index ^ a) + SPLITMIX_GAMMA);
    Xoshiro128pp st;
    if (a == 0 && b == 0) {
        st.s0 = zero_fallback[0];
        st.s1 = zero_fallback[1];
        st.s2 = zero_fallback[2];
        st.s3 = zero_fallback[3];
    } else {
        st.s0 = (u32)a;
        st.s1 = (u32)(a >> 32);
        st.s2 = (u32)b;
        st.s3 = (u32)(b >> 32);
    }
    return st;
}

__device__ __forceinline__ u32 rotl32(u32 x, int k) { return (x << k) | (x >> (32 - k)); }

// Xoshiro128PlusPlus::next_u32.
__device__ __forceinline__ u32 next_u32(Xoshiro128pp *st) {
    u32 result = rotl32(st->s0 + st->s3, 7) + st->s0;
    u32 t = st->s1 << 9;
    st->s2 ^= st->s0;
    st->s3 ^= st->s1;
    st->s1 ^= st->s2;
    st->s0 ^= st->s3;
    st->s2 ^= t;
    st->s3 = rotl32(st->s3, 11);
    return result;
}

// noise::box_muller on 24-bit integers a, b.
__device__ __forceinline__ void box_muller(u32 a, u32 b, float *z0, float *z1) {
    float u1 = MUL(__uint2float_rn(a + 1u), UNIT_24);
    float rho = __fsqrt_rn(MUL(-2.0f, core_ln(u1)));
    float c, s;
    sincos_turns(b, &c, &s);
    *z0 = MUL(rho, c);
    *z1 = MUL(rho, s);
}

// NoiseStream::gaussian_pair: two u32 draws, top 24 bits each.
__device__ __forceinline__ void gaussian_pair(Xoshiro128pp *st, float *z0, float *z1) {
    u32 a = next_u32(st) >> 8;
    u32 b = next_u32(st) >> 8;
    box_muller(a, b, z0, z1);
}

// NoiseStream::fill_gaussians: n values from whole pairs in order, the second value of the
// last pair dropped when n is odd (its draws are still taken).
__device__ __forceinline__ void fill_gaussians(Xoshiro128pp *st, float *z, int n) {
#pragma unroll
    for (int c = 0; c < n; c += 2) {
        float z0, z1;
        gaussian_pair(st, &z0, &z1);
        z[c] = z0;
        if (c + 1 < n) {
            z[c + 1] = z1;
        }
    }
}
