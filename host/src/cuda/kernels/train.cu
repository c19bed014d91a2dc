// Adam training of the time-embedded MLP on batches of a built-in data set or of the
// user's points (the CPU trainer's maths).
//
// Compile-time sizes (NVRTC -D options): HID = H, NBLK = B, DIM = D (a point's
// coordinates), NT = T (diffusion steps). Only DIM and NT shape the code: the products take
// their sizes at run time, and HID and NBLK name the module of a shape.
// Parameters, gradients and Adam moments are flat vectors in the model file's order; a
// layer's weight is [out][in] row-major followed by its bias. Activations are [n][feature].
//
// Bits need not match the CPU here (training is outside the sampling contract): products
// are accumulated with explicit fmaf for speed, in another order than the CPU's, and
// agreement with the CPU trainer is to a tolerance. The elementwise work (GELU's
// derivative, ∂loss/∂ε̂, the backward residuals, Adam and the EMA) and the layers'
// epilogues do the CPU trainer's operations in its order, so on the same inputs they give its
// bits (tests/cuda-emu checks every launch on the CPU). Every kernel of a step reads the
// step number from device memory, so the whole step can be captured once in a CUDA graph
// and replayed.

#define SQRT_2_F 1.41421356237309504880f
#define PI_F 3.14159265358979323846f
#define TWO_PI_F (2.0f * PI_F)
#define FRAC_1_SQRT_2_F 0.70710678118654752440f
#define S_MIN_F (1.5f * PI_F)
// data/mod.rs TrainingData::POINTS_TAG: a point set's number, past every DataSet id.
#define POINTS 255
#define SCALE_F 15.0f

// ctr[0] = steps done, ctr[1] = losses logged since the host last read them,
// ctr[2] = 1 once a loss was not finite, 2 once a gradient was not finite (every later
// update is skipped, so the state stays the one before the failing step).
#define CTR_STEP 0
#define CTR_LOGGED 1
#define CTR_DIVERGED 2

// ---- data/mod.rs and data/sets.rs ----------------------------------------------------

// data/mod.rs uniform: one draw, 24 bits.
__device__ __forceinline__ float uniform(Xoshiro128pp *st) {
    return MUL(__uint2float_rn(next_u32(st) >> 8), UNIT_24);
}

// data/mod.rs choice: one draw, an integer in 0..k by multiply-shift.
__device__ __forceinline__ u32 choice(Xoshiro128pp *st, u32 k) {
    return (u32)(((u64)next_u32(st) * (u64)k) >> 32);
}

// Room for a point: DIM coordinates, and at least a built-in set's 2 (a set is 2-D, so
// DIM = 2 whenever one is drawn: TrainingData::dim).
#define PDIM (DIM < 2 ? 2 : DIM)

// data/mod.rs TrainingData::point: DataSet::point (data/sets.rs) for the set of id `set`
// (DataSet::id) into p[0], p[1], or PointSet::point (data/points.rs) for POINTS into
// p[0 .. DIM], each case a copy of its Rust twin, draw for draw. cosf, sinf and expf are
// CUDA's, within an ulp or two of libm's: the only inexact part of the data (a point set's
// rows are copied exactly).
__device__ __forceinline__ void data_point(int set, const float *__restrict__ points,
                                           int npoints, Xoshiro128pp *st, float p[PDIM]) {
    float *p0 = &p[0];
    float *p1 = &p[1];
    float z0, z1;
    switch (set) {
    case POINTS: { // PointSet::point: row choice(N), one draw, its DIM values
        const u32 i = choice(st, (u32)npoints);
        for (int c = 0; c < DIM; ++c) {
            p[c] = points[DIM * i + c];
        }
        return;
    }
    case 1: { // DataSet::Circles
        const float r = choice(st, 2) == 0 ? 1.0f : 0.5f;
        const float a = MUL(TWO_PI_F, uniform(st));
        gaussian_pair(st, &z0, &z1);
        *p0 = MUL(3.0f, ADD(MUL(r, cosf(a)), MUL(0.08f, z0)));
        *p1 = MUL(3.0f, ADD(MUL(r, sinf(a)), MUL(0.08f, z1)));
        return;
    }
    case 2: { // DataSet::Rings
        const u32 k = choice(st, 4);
        const float r = k == 0 ? 3.0f : k == 1 ? 2.25f : k == 2 ? 1.5f : 0.75f;
        const float a = MUL(TWO_PI_F, uniform(st));
        gaussian_pair(st, &z0, &z1);
        *p0 = ADD(MUL(r, cosf(a)), MUL(0.08f, z0));
        *p1 = ADD(MUL(r, sinf(a)), MUL(0.08f, z1));
        return;
    }
    case 3: { // DataSet::Moons
        const bool lower = choice(st, 2) == 1;
        const float a = MUL(PI_F, uniform(st));
        gaussian_pair(st, &z0, &z1);
        const float c = cosf(a);
        const float s = sinf(a);
        const float m0 = lower ? SUB(1.0f, c) : c;
        const float m1 = lower ? SUB(SUB(1.0f, s), 0.5f) : s;
        *p0 = SUB(MUL(2.0f, ADD(m0, MUL(0.1f, z0))), 1.0f);
        *p1 = SUB(MUL(2.0f, ADD(m1, MUL(0.1f, z1))), 0.2f);
        return;
    }
    case 4: { // DataSet::EightGaussians
        gaussian_pair(st, &z0, &z1);
        const u32 k = choice(st, 8);
        // EIGHT_CENTERS[k]: ±x, ±y, then the diagonals (+,+), (+,−), (−,+), (−,−).
        const float c0 = k == 0 ? 1.0f : k == 1 ? -1.0f : k < 4 ? 0.0f
                       : k < 6 ? FRAC_1_SQRT_2_F : -FRAC_1_SQRT_2_F;
        const float c1 = k < 2 ? 0.0f : k == 2 ? 1.0f : k == 3 ? -1.0f
                       : (k & 1) == 0 ? FRAC_1_SQRT_2_F : -FRAC_1_SQRT_2_F;
        *p0 = DIV(ADD(MUL(4.0f, c0), MUL(0.5f, z0)), 1.414f);
        *p1 = DIV(ADD(MUL(4.0f, c1), MUL(0.5f, z1)), 1.414f);
        return;
    }
    case 5: { // DataSet::Pinwheel
        gaussian_pair(st, &z0, &z1);
        const u32 k = choice(st, 5);
        const float f0 = ADD(1.0f, MUL(0.3f, z0));
        const float f1 = MUL(0.1f, z1);
        const float a = ADD(DIV(MUL(TWO_PI_F, __uint2float_rn(k)), 5.0f), MUL(0.25f, expf(f0)));
        const float c = cosf(a);
        const float s = sinf(a);
        *p0 = MUL(2.0f, ADD(MUL(f0, c), MUL(f1, s)));
        *p1 = MUL(2.0f, SUB(MUL(f1, c), MUL(f0, s)));
        return;
    }
    case 6: { // DataSet::TwoSpirals
        const float n = MUL(MUL(3.0f, PI_F), __fsqrt_rn(uniform(st)));
        const float dx = ADD(MUL(-cosf(n), n), MUL(0.5f, uniform(st)));
        const float dy = ADD(MUL(sinf(n), n), MUL(0.5f, uniform(st)));
        const float sign = choice(st, 2) == 0 ? 1.0f : -1.0f;
        gaussian_pair(st, &z0, &z1);
        *p0 = ADD(DIV(MUL(sign, dx), 3.0f), MUL(0.1f, z0));
        *p1 = ADD(DIV(MUL(sign, dy), 3.0f), MUL(0.1f, z1));
        return;
    }
    case 7: { // DataSet::Checkerboard
        const float x1 = SUB(MUL(4.0f, uniform(st)), 2.0f);
        const float u = uniform(st);
        const float k = __uint2float_rn(choice(st, 2));
        // Python's floor(x1) % 2: the low bit of the two's complement ⌊x1⌋.
        const float m = __int2float_rn((int)floorf(x1) & 1);
        *p0 = MUL(2.0f, x1);
        *p1 = MUL(2.0f, ADD(SUB(u, MUL(2.0f, k)), m));
        return;
    }
    case 8: { // DataSet::Line
        const float x = SUB(MUL(5.0f, uniform(st)), 2.5f);
        *p0 = x;
        *p1 = x;
        return;
    }
    case 9: { // DataSet::Cos
        const float x = SUB(MUL(5.0f, uniform(st)), 2.5f);
        *p0 = x;
        *p1 = MUL(2.5f, sinf(x));
        return;
    }
    default: { // 0, DataSet::SwissRoll: swiss_roll_point(S_MIN·(1 + 2u))
        const float s = MUL(S_MIN_F, ADD(1.0f, MUL(2.0f, uniform(st))));
        *p0 = DIV(MUL(s, cosf(s)), SCALE_F);
        *p1 = DIV(MUL(s, sinf(s)), SCALE_F);
        return;
    }
    }
}

// One training batch of the data of number `set` (TrainingData::tag; `points` the point
// set's npoints normalized rows of DIM values, row-major, when it is POINTS), row i from its
// own stream (data/mod.rs, Examples::fill): stream (base0 + step, i); the point, t by
// multiply-shift, then ε as ⌈DIM/2⌉ Box–Muller pairs in order, the last pair's second value
// dropped for an odd DIM. x and eps are [n][DIM].
KERNEL void make_batch(u64 base0, int set, const float *__restrict__ points, int npoints,
                       const u64 *__restrict__ ctr, int n,
                       const float2 *__restrict__ coefs,
                       const u32 *__restrict__ zero_fallback,
                       float *__restrict__ x, float *__restrict__ tin,
                       float *__restrict__ eps) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    Xoshiro128pp st = stream_new(base0 + ctr[CTR_STEP], (u64)i, zero_fallback);
    float p[PDIM];
    data_point(set, points, npoints, &st, p);
    const u32 t = choice(&st, NT);
    float z[DIM];
    for (int c = 0; c < DIM; c += 2) {
        float z0, z1;
        gaussian_pair(&st, &z0, &z1);
        z[c] = z0;
        if (c + 1 < DIM) {
            z[c + 1] = z1;
        }
    }
    const float2 co = coefs[t];
    for (int c = 0; c < DIM; ++c) {
        x[DIM * i + c] = ADD(MUL(co.x, p[c]), MUL(co.y, z[c]));
        eps[DIM * i + c] = z[c];
    }
    tin[i] = DIV(__uint2float_rn(t), (float)NT);
}

// C[m][n] = Σ_k A(m, k)·B(k, n) over 32×32 tiles of C, 256 threads with 2×2 outputs each;
// `store(m, n, value)` is the epilogue.
#define TILE 32
template <class FA, class FB, class FS>
__device__ __forceinline__ void gemm_tiles(int M, int N, int K, FA a, FB b, FS store) {
    SHARED(float, as, [TILE][TILE + 1]);
    SHARED(float, bs, [TILE][TILE + 1]);
    const int tx = threadIdx.x % 16;
    const int ty = threadIdx.x / 16;
    const int m0 = blockIdx.y * TILE;
    const int n0 = blockIdx.x * TILE;
    float acc[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
    for (int k0 = 0; k0 < K; k0 += TILE) {
        for (int e = threadIdx.x; e < TILE * TILE; e += blockDim.x) {
            const int r = e / TILE;
            const int c = e % TILE;
            as[r][c] = (m0 + r < M && k0 + c < K) ? a(m0 + r, k0 + c) : 0.0f;
            bs[r][c] = (k0 + r < K && n0 + c < N) ? b(k0 + r, n0 + c) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < TILE; ++kk) {
#pragma unroll
            for (int i = 0; i < 2; ++i) {
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    acc[i][j] = fmaf(as[ty + 16 * i][kk], bs[kk][tx + 16 * j], acc[i][j]);
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            const int m = m0 + ty + 16 * i;
            const int nn = n0 + tx + 16 * j;
            if (m < M && nn < N) {
                store(m, nn, acc[i][j]);
            }
        }
    }
}

// Forward epilogues of linear_fwd.
#define FWD_PLAIN 0    // out1 = y
#define FWD_GELU 1     // out1 = y, out2 = gelu(y)
#define FWD_RESIDUAL 2 // out1 = y, out2 = ((gelu(y) + aux1) + aux2) / √2
#define FWD_INPUT 3    // out1 = y, out2 = gelu(y) + aux2

// y[n][j] = bias[j] + Σ_k x[n][k]·w[j][k] for an `in → out` layer, batch rows `rows`.
KERNEL void linear_fwd(const float *__restrict__ x, const float *__restrict__ w,
                       const float *__restrict__ bias, int rows, int out, int in,
                       int mode, float *__restrict__ out1,
                       float *__restrict__ out2, const float *__restrict__ aux1,
                       const float *__restrict__ aux2) {
    gemm_tiles(
        rows, out, in, [&](int n, int k) { return x[n * in + k]; },
        [&](int k, int j) { return w[j * in + k]; },
        [&](int n, int j, float acc) {
            const int o = n * out + j;
            const float y = acc + bias[j];
            out1[o] = y;
            if (mode == FWD_GELU) {
                out2[o] = gelu(y);
            } else if (mode == FWD_RESIDUAL) {
                out2[o] = ((gelu(y) + aux1[o]) + aux2[o]) / SQRT_2_F;
            } else if (mode == FWD_INPUT) {
                out2[o] = gelu(y) + aux2[o];
            }
        });
}

// Backward epilogues of linear_bwd_input.
#define BWD_PLAIN 0    // dx = v
#define BWD_GELU 1     // dx = v · gelu'(aux)
#define BWD_RESIDUAL 2 // dx = v + aux / √2 (in place over aux allowed)

// dx[n][k] = Σ_j dy[n][j]·w[j][k] (the input gradient of an `in → out` layer).
KERNEL void linear_bwd_input(const float *__restrict__ dy,
                             const float *__restrict__ w, int rows, int out,
                             int in, int mode, float *dx, const float *aux) {
    gemm_tiles(
        rows, in, out, [&](int n, int j) { return dy[n * out + j]; },
        [&](int j, int k) { return w[j * in + k]; },
        [&](int n, int k, float v) {
            const int o = n * in + k;
            if (mode == BWD_GELU) {
                v = v * gelu_derivative(aux[o]);
            } else if (mode == BWD_RESIDUAL) {
                v = v + aux[o] / SQRT_2_F;
            }
            dx[o] = v;
        });
}

// dw[j][k] = Σ_n dy[n][j]·x[n][k] and db[j] = Σ_n dy[n][j]: one product over [x | 1].
// A non-finite gradient (with a finite loss) marks the run diverged before Adam runs.
KERNEL void linear_wgrad(const float *__restrict__ dy,
                         const float *__restrict__ x, int rows, int out, int in,
                         float *__restrict__ dw, float *__restrict__ db,
                         u64 *ctr) {
    gemm_tiles(
        out, in + 1, rows, [&](int j, int n) { return dy[n * out + j]; },
        [&](int n, int k) { return k < in ? x[n * in + k] : 1.0f; },
        [&](int j, int k, float v) {
            if (!isfinite(v) && ctr[CTR_DIVERGED] == 0) {
                ctr[CTR_DIVERGED] = 2;
            }
            if (k < in) {
                dw[j * in + k] = v;
            } else {
                db[j] = v;
            }
        });
}

// MSE loss (mean over rows × DIM) into losses[ctr[1]], and its gradient d/d(out).
// One block of 256 threads. A non-finite loss sets ctr[2].
KERNEL void mse_loss(const float *__restrict__ out, const float *__restrict__ eps,
                     int rows, float *__restrict__ dout, u64 *ctr,
                     float *__restrict__ losses) {
    SHARED(float, partial, [256]);
    const int n2 = DIM * rows;
    // net.rs: ∂loss/∂ε̂ = (ε̂ − ε)·(2/count), with 2/count rounded first.
    const float scale = 2.0f / (float)n2;
    float sum = 0.0f;
    for (int e = threadIdx.x; e < n2; e += blockDim.x) {
        const float d = out[e] - eps[e];
        dout[e] = d * scale;
        sum += d * d;
    }
    const int tid = threadIdx.x;
    partial[tid] = sum;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (tid < half) {
            partial[tid] += partial[tid + half];
        }
        __syncthreads();
    }
    if (tid == 0 && ctr[CTR_DIVERGED] == 0) {
        const float loss = partial[0] / (float)n2;
        losses[ctr[CTR_LOGGED]] = loss;
        if (!isfinite(loss)) {
            ctr[CTR_DIVERGED] = 1;
        }
    }
}

// A block's output h' = ((gelu(c) + h) + temb)/√2, going back: g = dh'/√2,
// dc = g·gelu'(c), dtemb (+)= g. `first` says whether dtemb is written or accumulated.
KERNEL void residual_grad(const float *__restrict__ dh,
                          const float *__restrict__ zc, int len, int first,
                          float *__restrict__ dc, float *__restrict__ dtemb) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= len) {
        return;
    }
    const float g = dh[e] / SQRT_2_F;
    dc[e] = g * gelu_derivative(zc[e]);
    dtemb[e] = first ? g : dtemb[e] + g;
}

// h0 = gelu(z0) + temb, going back: dz0 = dh0·gelu'(z0), dtemb (+)= dh0 (written when
// `first`, i.e. when there are no blocks).
KERNEL void input_grad(const float *__restrict__ dh, const float *__restrict__ z0,
                       int len, int first, float *__restrict__ dz0,
                       float *__restrict__ dtemb) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= len) {
        return;
    }
    dz0[e] = dh[e] * gelu_derivative(z0[e]);
    dtemb[e] = first ? dh[e] : dtemb[e] + dh[e];
}

// Adam over every parameter in the CPU trainer's (torch.optim.Adam's) sequence, then the
// optional EMA (ema_decay < 0: none); see adam.rs. neg_step_size = −lr/(1 − β1^t) and
// bc2_sqrt = √(1 − β2^t) come from the host per step count t, as f64 rounded to f32:
// t is read from ctr, so they are tabulated by the host for t = 1 … and indexed here.
// Skipped entirely once the run has diverged (loss or a gradient not finite).
KERNEL void adam(float *__restrict__ p, const float *__restrict__ g,
                 float *__restrict__ m, float *__restrict__ v,
                 float *__restrict__ ema, int len, float ema_decay,
                 const float2 *__restrict__ step_coefs, int step_coefs_len,
                 const u64 *__restrict__ ctr) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= len || ctr[CTR_DIVERGED] != 0) {
        return;
    }
    const u64 t = ctr[CTR_STEP];
    const float2 c = step_coefs[t < (u64)step_coefs_len ? t : (u64)step_coefs_len - 1];
    const float ge = g[e];
    float me = m[e];
    float ve = v[e];
    me += 0.1f * (ge - me);
    ve = ve * 0.999f + 0.001f * ge * ge;
    const float denom = sqrtf(ve) / c.y + 1e-8f;
    const float pe = p[e] + c.x * me / denom;
    m[e] = me;
    v[e] = ve;
    p[e] = pe;
    if (ema_decay >= 0.0f) {
        const float w = 1.0f - ema_decay;
        ema[e] += w * (pe - ema[e]);
    }
}

// Ends a step: counts it and its logged loss, unless the run has diverged.
KERNEL void advance(u64 *ctr) {
    if (threadIdx.x == 0 && blockIdx.x == 0 && ctr[CTR_DIVERGED] == 0) {
        ctr[CTR_STEP] += 1;
        ctr[CTR_LOGGED] += 1;
    }
}
