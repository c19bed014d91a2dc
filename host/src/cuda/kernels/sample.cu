// Bit-identical reverse-process sampling (tinyddpm-core's `sample`/`sample_from`).
//
// Compile-time sizes (NVRTC -D options): HID = H, NBLK = B, DIM = D (coordinates of a point,
// 1 ..= 16), SMAX = samples per thread block
// (a multiple of 4, chosen by the host so the shared-memory buffers fit the device); the core's
// parameter offsets (tinyddpm_core::Layout::named_offsets): TIME_IN_W/_B, TIME_OUT_W/_B,
// INPUT_W/_B, block 0's FIRST_W/_B and SECOND_W/_B, BLOCK_STRIDE, OUTPUT_W/_B; and the step
// table's row layout (below).
//
// Layout: `params` is the model's parameters in file order (weight row-major, then bias, for
// each layer); `wt` holds the 2·B hidden H×H weights again, each transposed to [k][j], so a
// thread block can stage a whole layer into shared memory with straight 16-byte copies.
//
// The arithmetic of every output is the core's: acc = bias, then acc = acc + w·x for k
// ascending, each product rounded before it is added. Parallelism is across samples and
// across outputs j only (a thread owns a 4-sample × 8-output register tile), never across k.

#define SQRT_2_F 1.41421356237309504880f
#define OG (HID / 8)
#define SG (SMAX / 4)
#define NTHREADS (OG * SG)

// Step table: one row of STEP_WORDS words per reverse step (tinyddpm_core::Step::to_words,
// computed by the host's core code; its layout and kind codes, STEP_*, are -D options from
// Step::named_words): the kind at STEP_KIND, sigma at STEP_SIGMA, the f32 coefficients from
// STEP_COEF (as bits, unused ones zero):
//   STEP_DDPM           Update::Ddpm: c_eps, c_x
//   STEP_DDIM           Update::Ddim: sqrt_one_minus_ab, sqrt_ab, sqrt_ab_prev, dir
//   STEP_DDIM_CLIP      the same with clip
//   STEP_DPM            Update::DpmSolver: sqrt_one_minus_ab, sqrt_ab, w0 … w3
//   STEP_UNIPC          Update::UniPc without the corrector: sqrt_one_minus_ab, sqrt_ab,
//                       c0 … c3 (unused), p0 … p2
//   STEP_UNIPC_CORRECT  the same with the corrector

// multistep::History of one coordinate of one sample: x̂₀ of the last two steps (x0[0] the
// latest) and UniPC's corrected x, zero at the start of a chain. It lives in registers during
// a launch and in `hist` between launches: HIST_WORDS floats per sample, coordinate c's three
// at 3·c.
struct History {
    float x0[2];
    float x;
};
#define HIST_WORDS (3 * DIM)

// Model::time_embedding for each step's t/T: one thread block per step, one thread per output.
KERNEL void time_embedding(const float *__restrict__ params,
                           const float *__restrict__ t_inputs, float *__restrict__ temb) {
    SHARED(float, hidden, [HID]);
    const int step = blockIdx.x;
    const int j = threadIdx.x;
    float acc = params[TIME_IN_B + j];
    acc = ADD(acc, MUL(params[TIME_IN_W + j], t_inputs[step]));
    hidden[j] = gelu(acc);
    __syncthreads();
    const float *w = params + TIME_OUT_W + j * HID;
    acc = params[TIME_OUT_B + j];
    for (int k = 0; k < HID; ++k) {
        acc = ADD(acc, MUL(w[k], hidden[k]));
    }
    temb[step * HID + j] = acc;
}

// sample/sample_from's start: each sample's stream, and x_T = its first draw of DIM
// Gaussians unless has_init (then x_init holds the DIM·count starting coordinates; the draw
// is taken either way, as sample_from skips it).
KERNEL void sample_init(u64 seed, u64 first_index, int count, int has_init,
                        const float *__restrict__ x_init, const u32 *__restrict__ zero_fallback,
                        float *__restrict__ xs, u32 *__restrict__ rng) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) {
        return;
    }
    Xoshiro128pp st = stream_new(seed, first_index + (u64)i, zero_fallback);
    float z[DIM];
    fill_gaussians(&st, z, DIM);
    // Indices in 64 bits: 4·i overflows an int from 2^29 samples on.
    const u64 at = (u64)i;
#pragma unroll
    for (int c = 0; c < DIM; ++c) {
        xs[DIM * at + c] = has_init ? x_init[DIM * at + c] : z[c];
    }
    rng[4 * at] = st.s0;
    rng[4 * at + 1] = st.s1;
    rng[4 * at + 2] = st.s2;
    rng[4 * at + 3] = st.s3;
}

// Coefficient i of a step table row.
__device__ __forceinline__ float coef(const u32 *rec, int i) {
    return __uint_as_float(rec[STEP_COEF + i]);
}

// Step::apply for one coordinate, its history `h` read and written by the multistep updates.
__device__ __forceinline__ float apply_step(const u32 *rec, float x, float eps, float z,
                                            History *h) {
    const u32 mode = rec[STEP_KIND];
    const float sigma = __uint_as_float(rec[STEP_SIGMA]);
    float mean;
    if (mode == STEP_DDPM) {
        mean = MUL(SUB(x, MUL(coef(rec, 0), eps)), coef(rec, 1));
    } else {
        // predict_x0: (x − sqrt_one_minus_ab·ε̂)/sqrt_ab
        const float a = coef(rec, 0);
        const float b = coef(rec, 1);
        float x0 = DIV(SUB(x, MUL(a, eps)), b);
        if (mode == STEP_DDIM || mode == STEP_DDIM_CLIP) {
            if (mode == STEP_DDIM_CLIP) {
                // Real::max then Real::min: the selects a > b ? a : b, a < b ? a : b
                x0 = x0 > -1.0f ? x0 : -1.0f;
                x0 = x0 < 1.0f ? x0 : 1.0f;
                eps = DIV(SUB(x, MUL(b, x0)), a);
            }
            mean = ADD(MUL(coef(rec, 2), x0), MUL(coef(rec, 3), eps));
        } else {
            if (mode == STEP_DPM) {
                // ((w0·x + w1·x̂₀) + w2·x̂₀_{k−1}) + w3·x̂₀_{k−2}
                mean = ADD(ADD(ADD(MUL(coef(rec, 2), x), MUL(coef(rec, 3), x0)),
                               MUL(coef(rec, 4), h->x0[0])),
                           MUL(coef(rec, 5), h->x0[1]));
            } else {
                // UniPC: the corrector (from the second step on) replaces x, then the
                // predictor ((p0·x_c + p1·x̂₀) + p2·x̂₀_{k−1}).
                float xc = x;
                if (mode == STEP_UNIPC_CORRECT) {
                    xc = ADD(ADD(ADD(MUL(coef(rec, 2), h->x), MUL(coef(rec, 3), x0)),
                                 MUL(coef(rec, 4), h->x0[0])),
                             MUL(coef(rec, 5), h->x0[1]));
                }
                mean = ADD(ADD(MUL(coef(rec, 6), xc), MUL(coef(rec, 7), x0)),
                           MUL(coef(rec, 8), h->x0[0]));
                h->x = xc;
            }
            h->x0[1] = h->x0[0];
            h->x0[0] = x0;
        }
    }
    return ADD(mean, MUL(sigma, z));
}

// Copies one transposed H×H layer into shared memory.
__device__ __forceinline__ void stage_layer(float *ws, const float *__restrict__ src) {
    const float4 *s4 = reinterpret_cast<const float4 *>(src);
    float4 *d4 = reinterpret_cast<float4 *>(ws);
    for (int i = threadIdx.x; i < HID * HID / 4; i += NTHREADS) {
        d4[i] = __ldg(s4 + i);
    }
}

// acc[ss][jj] = bias[j0+jj] + Σ_k ws[k][j0+jj]·in[k][s0+ss], k ascending.
__device__ __forceinline__ void layer_tile(float acc[4][8], const float *__restrict__ bias,
                                          const float *ws, const float *in, int j0, int s0) {
#pragma unroll
    for (int jj = 0; jj < 8; ++jj) {
        const float b = __ldg(bias + j0 + jj);
#pragma unroll
        for (int ss = 0; ss < 4; ++ss) {
            acc[ss][jj] = b;
        }
    }
#pragma unroll 4
    for (int k = 0; k < HID; ++k) {
        const float4 xv = *reinterpret_cast<const float4 *>(in + k * SMAX + s0);
        const float4 w0 = *reinterpret_cast<const float4 *>(ws + k * HID + j0);
        const float4 w1 = *reinterpret_cast<const float4 *>(ws + k * HID + j0 + 4);
        const float x[4] = {xv.x, xv.y, xv.z, xv.w};
        const float w[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
        for (int ss = 0; ss < 4; ++ss) {
#pragma unroll
            for (int jj = 0; jj < 8; ++jj) {
                acc[ss][jj] = ADD(acc[ss][jj], MUL(w[jj], x[ss]));
            }
        }
    }
}

// Reverse steps [step_begin, step_end) for samples [base, base + count): thread block b owns
// samples base + b·spb … (spb ≤ SMAX, a multiple of 4). The state (x, stream, history) lives
// in registers of thread s during the launch and in xs/rng/hist between launches.
KERNEL void __launch_bounds__(NTHREADS)
sample_steps(const float *__restrict__ params, const float *__restrict__ wt,
             const float *__restrict__ temb, const u32 *__restrict__ steps, int step_begin,
             int step_end, int base, int count, int spb, float *__restrict__ xs,
             u32 *__restrict__ rng, float *__restrict__ hist) {
    DYNAMIC_SHARED(float4, smem4);
    float *smem = reinterpret_cast<float *>(smem4);
    float *hs = smem;                  // h, [HID][SMAX]
    float *us = hs + HID * SMAX;       // first layer's output, [HID][SMAX]
    float *ws = us + HID * SMAX;       // staged transposed weights, [HID][HID]
    float *xsm = ws + HID * HID;       // x, [DIM][SMAX]
    float *es = xsm + DIM * SMAX;      // predicted noise, [DIM][SMAX]

    const int tid = threadIdx.x;
    const int og = tid % OG;
    const int sg = tid / OG;
    const int j0 = og * 8;
    const int s0 = sg * 4;
    const bool tile_active = s0 < spb;
    const int first = base + blockIdx.x * spb;

    // Thread s < spb carries sample s; padding samples (past `count`) run on zeros.
    const bool owner = tid < spb;
    const bool valid = owner && first + tid < base + count;
    const int me = first + tid;
    // Sample me's place in xs, rng and hist, in 64 bits: HIST_WORDS·me overflows an int from
    // 2^31/(3·D) samples on (358 million at D = 2), which fit in a large GPU's memory.
    const u64 at = (u64)me;
    float x[DIM];
    History h[DIM];
    Xoshiro128pp st = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int c = 0; c < DIM; ++c) {
        x[c] = 0.0f;
        h[c] = {{0.0f, 0.0f}, 0.0f};
    }
    if (valid) {
        st.s0 = rng[4 * at];
        st.s1 = rng[4 * at + 1];
        st.s2 = rng[4 * at + 2];
        st.s3 = rng[4 * at + 3];
        const float *hm = hist + HIST_WORDS * at;
#pragma unroll
        for (int c = 0; c < DIM; ++c) {
            x[c] = xs[DIM * at + c];
            h[c] = {{hm[3 * c], hm[3 * c + 1]}, hm[3 * c + 2]};
        }
    }
    if (owner) {
#pragma unroll
        for (int c = 0; c < DIM; ++c) {
            xsm[c * SMAX + tid] = x[c];
        }
    }
    __syncthreads();

    for (int step = step_begin; step < step_end; ++step) {
        const float *te = temb + step * HID;

        // h = GELU(Linear(D,H)(x)) + temb
        if (tile_active) {
#pragma unroll
            for (int jj = 0; jj < 8; ++jj) {
                const int j = j0 + jj;
                float w[DIM];
#pragma unroll
                for (int k = 0; k < DIM; ++k) {
                    w[k] = __ldg(params + INPUT_W + DIM * j + k);
                }
                const float b = __ldg(params + INPUT_B + j);
                const float t = __ldg(te + j);
#pragma unroll
                for (int ss = 0; ss < 4; ++ss) {
                    const int s = s0 + ss;
                    float acc = b;
#pragma unroll
                    for (int k = 0; k < DIM; ++k) {
                        acc = ADD(acc, MUL(w[k], xsm[k * SMAX + s]));
                    }
                    hs[j * SMAX + s] = ADD(gelu(acc), t);
                }
            }
        }

        for (int blk = 0; blk < NBLK; ++blk) {
            const float *first_b = params + FIRST_B + blk * BLOCK_STRIDE;
            const float *second_b = params + SECOND_B + blk * BLOCK_STRIDE;
            float acc[4][8];

            // u = GELU(first(h))
            __syncthreads();
            stage_layer(ws, wt + (2 * blk) * HID * HID);
            __syncthreads();
            if (tile_active) {
                layer_tile(acc, first_b, ws, hs, j0, s0);
#pragma unroll
                for (int jj = 0; jj < 8; ++jj) {
#pragma unroll
                    for (int ss = 0; ss < 4; ++ss) {
                        us[(j0 + jj) * SMAX + s0 + ss] = gelu(acc[ss][jj]);
                    }
                }
            }

            // h = ((GELU(second(u)) + h) + temb) / √2
            __syncthreads();
            stage_layer(ws, wt + (2 * blk + 1) * HID * HID);
            __syncthreads();
            if (tile_active) {
                layer_tile(acc, second_b, ws, us, j0, s0);
#pragma unroll
                for (int jj = 0; jj < 8; ++jj) {
                    const float t = __ldg(te + j0 + jj);
#pragma unroll
                    for (int ss = 0; ss < 4; ++ss) {
                        float *h = hs + (j0 + jj) * SMAX + s0 + ss;
                        *h = DIV(ADD(ADD(gelu(acc[ss][jj]), *h), t), SQRT_2_F);
                    }
                }
            }
        }
        __syncthreads();

        // ε̂ = Linear(H,D)(h): one thread per (sample, coordinate), k ascending.
        for (int t = tid; t < DIM * spb; t += NTHREADS) {
            const int s = t / DIM;
            const int o = t % DIM;
            const float *w = params + OUTPUT_W + o * HID;
            float acc = __ldg(params + OUTPUT_B + o);
            for (int k = 0; k < HID; ++k) {
                acc = ADD(acc, MUL(__ldg(w + k), hs[k * SMAX + s]));
            }
            es[o * SMAX + s] = acc;
        }
        __syncthreads();

        // x = Step::apply(x, ε̂, z) per coordinate, z = the step's draw of DIM Gaussians.
        if (owner) {
            const u32 *rec = steps + step * STEP_WORDS;
            float z[DIM];
            fill_gaussians(&st, z, DIM);
#pragma unroll
            for (int c = 0; c < DIM; ++c) {
                x[c] = apply_step(rec, x[c], es[c * SMAX + tid], z[c], &h[c]);
                xsm[c * SMAX + tid] = x[c];
            }
        }
        __syncthreads();
    }

    if (valid) {
        rng[4 * at] = st.s0;
        rng[4 * at + 1] = st.s1;
        rng[4 * at + 2] = st.s2;
        rng[4 * at + 3] = st.s3;
        float *hm = hist + HIST_WORDS * at;
#pragma unroll
        for (int c = 0; c < DIM; ++c) {
            xs[DIM * at + c] = x[c];
            hm[3 * c] = h[c].x0[0];
            hm[3 * c + 1] = h[c].x0[1];
            hm[3 * c + 2] = h[c].x;
        }
    }
}
