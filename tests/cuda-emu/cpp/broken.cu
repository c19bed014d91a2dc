// Deliberately faulty kernels: the sanitizer build must stop each one (tests/sanitizer.rs).

// Writes one float past the end of `out` (n floats): a heap-buffer-overflow in global memory.
KERNEL void write_past_global(float *out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) {
        out[i] = 1.0f;
    }
}

// Writes one float past the end of a 64-float shared array.
KERNEL void write_past_shared(float *out) {
    SHARED(float, tile, [64]);
    tile[threadIdx.x] = 1.0f;
    __syncthreads();
    out[0] = tile[0];
}

// Reads one float4 past the end of `bytes` of dynamic shared memory.
KERNEL void read_past_dynamic(float *out, int floats) {
    DYNAMIC_SHARED(float4, smem);
    float *f = reinterpret_cast<float *>(smem);
    f[threadIdx.x] = 2.0f;
    __syncthreads();
    out[threadIdx.x] = f[threadIdx.x + floats];
}

// Shifts a signed int left past its width (undefined behaviour).
KERNEL void shift_overflow(int *out, int by) { out[threadIdx.x] = 1 << (by + (int)threadIdx.x); }

// Reads a neighbour's shared value without a barrier: a race the thread order reveals.
KERNEL void read_without_barrier(float *out) {
    SHARED(float, v, [32]);
    v[threadIdx.x] = (float)threadIdx.x;
    out[threadIdx.x] = v[(threadIdx.x + 1) % 32];
}

// Waits at a barrier only in some threads.
KERNEL void divergent_barrier(float *out) {
    if (threadIdx.x < 16) {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}
