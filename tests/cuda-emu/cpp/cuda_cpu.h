// CUDA's execution model for the project's kernel sources compiled as C++ on the CPU: the
// test suite's emulation of the GPU (runtime.cpp runs the launches).
//
// What it models, and how:
// - threadIdx, blockIdx, blockDim, gridDim: per OS thread variables that the scheduler sets
//   before it resumes a CUDA thread.
// - A launch runs its blocks one after another; the threads of a block are fibers (ucontext)
//   of one OS thread, each on its own stack. Between two barriers the scheduler runs every
//   thread of the block, one after the other, up to its next __syncthreads(); the order
//   (ascending or descending thread index, and block order likewise) is the launch's, so two
//   runs with opposite orders give every pair of threads both orders of their accesses
//   between two barriers: output that depends on it is a race.
// - __syncthreads(): the thread waits until every thread of the block has reached a barrier.
//   All live threads must reach the same __syncthreads() (file and line); a thread that
//   returns while others wait, or threads waiting at different barriers, fail the launch.
// - Shared memory: each block gets fresh arrays, filled with a garbage byte pattern that
//   depends on the order (0xff bytes, NaN floats, or 0x7f, huge finite floats), so a read
//   of shared memory no thread wrote changes the output. Static arrays are declared with
//   SHARED(type, name, dims), the launch's dynamic memory with DYNAMIC_SHARED(type, name)
//   (common.cu gives NVRTC CUDA's own declarations); each is its own heap allocation of
//   exactly its size, so AddressSanitizer sees an access past its end.
// - __fadd_rn and the other round-to-nearest intrinsics: plain IEEE single-precision
//   operations (built with -ffp-contract=off: no fused multiply-add unless fmaf is called,
//   which is fused on both), __ldg a plain load, float2/float4 with CUDA's alignment.
// - __global__, __device__, __forceinline__, __launch_bounds__ and __restrict__ are dropped
//   (a restrict violation is not detected); a KERNEL is a static function of the module's
//   namespace, registered by name (EMU_KERNEL) with a binder that checks every argument's
//   kind (pointer, int, u64, float) against its parameter.
//
// What it cannot model: warp-synchronous code (__shfl, __ballot, warp-sized implicit
// lock-step, __syncwarp) and atomics between threads that run at the same time (a thread
// runs alone until its next barrier; neither is declared here, so a kernel using them does
// not build), interleavings finer than one thread's run between two barriers, timing and
// occupancy, the GPU's own maths library (expf, cosf, sinf are the C library's here), the
// read-only cache of __ldg (a kernel reading with __ldg what the same launch writes works
// here), and blocks of one launch running at the same time (they run one after another; the
// race test reverses their order). With AddressSanitizer, an overrun of a kernel's local
// array is caught by the bounds check (UndefinedBehaviorSanitizer) rather than by
// AddressSanitizer, whose record of a fiber's stack is cleared at every switch.
#pragma once

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <tuple>
#include <utility>

struct uint3 {
    unsigned int x, y, z;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};

// The running CUDA thread's place in its launch (set by the scheduler, runtime.cpp).
inline thread_local uint3 threadIdx, blockIdx, blockDim, gridDim;

#define __device__
#define __forceinline__ inline
#define __global__
#define __launch_bounds__(...)
#define __restrict__
#define KERNEL static

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __int2float_rn(int a) { return (float)a; }
inline float __uint2float_rn(unsigned int a) { return (float)a; }
inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}
inline float __uint_as_float(unsigned int u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
template <class T> inline T __ldg(const T *p) { return *p; }

namespace emu {

// Waits at a barrier (the __syncthreads() at `file`:`line`) until the block's other threads
// have reached it too.
void syncthreads(const char *file, int line);

// The running launch's dynamic shared memory (null without any).
void *dynamic_shared();

// The running block's copy of one SHARED array: made on first use in each block.
struct SharedSlot {
    // The block it was made for (blocks are numbered from 1 per OS thread).
    unsigned long long serial = 0;
    void *data = nullptr;
    void *get(size_t bytes);
};

// A kernel argument as the host passes it (Rust's `RawArg`).
enum ArgKind : uint32_t { ARG_PTR = 0, ARG_I32 = 1, ARG_U64 = 2, ARG_F32 = 3 };
struct RawArg {
    uint32_t kind;
    uint64_t bits;
};

// A kernel with its arguments, run by every thread of a launch.
struct Bound {
    virtual ~Bound() = default;
    virtual void run() = 0;
};

// Binds arguments to a kernel, or writes why they do not fit it into `err` and returns null.
typedef Bound *(*Binder)(const RawArg *args, size_t count, char *err, size_t err_len);

struct Kernel {
    const char *name;
    Binder bind;
};

// One kernel source compiled with one set of compile-time sizes.
struct Module {
    const char *source;
    const char *defines;
    const Kernel *kernels;
    size_t count;
};

template <class T> struct Param;
template <class T> struct Param<T *> {
    static constexpr uint32_t kind = ARG_PTR;
    static T *get(uint64_t bits) { return reinterpret_cast<T *>(static_cast<uintptr_t>(bits)); }
};
template <> struct Param<int> {
    static constexpr uint32_t kind = ARG_I32;
    static int get(uint64_t bits) { return static_cast<int>(static_cast<uint32_t>(bits)); }
};
template <> struct Param<unsigned long long> {
    static constexpr uint32_t kind = ARG_U64;
    static unsigned long long get(uint64_t bits) { return bits; }
};
template <> struct Param<float> {
    static constexpr uint32_t kind = ARG_F32;
    static float get(uint64_t bits) { return __uint_as_float(static_cast<uint32_t>(bits)); }
};

template <class... P> struct BoundKernel final : Bound {
    void (*kernel)(P...);
    std::tuple<P...> args;
    BoundKernel(void (*k)(P...), std::tuple<P...> a) : kernel(k), args(a) {}
    void run() override { std::apply(kernel, args); }
};

// Writes "kernel: message" into err.
void bind_error(char *err, size_t err_len, const char *kernel, const char *message, size_t arg);

template <class... P, size_t... I>
Bound *bind_args(const char *name, void (*kernel)(P...), const RawArg *args, size_t count,
                 char *err, size_t err_len, std::index_sequence<I...>) {
    if (count != sizeof...(P)) {
        bind_error(err, err_len, name, "takes a different number of arguments: got", count);
        return nullptr;
    }
    const uint32_t kinds[] = {Param<P>::kind..., 0};
    for (size_t i = 0; i < count; ++i) {
        if (args[i].kind != kinds[i]) {
            bind_error(err, err_len, name, "has a parameter of another kind at argument", i);
            return nullptr;
        }
    }
    return new BoundKernel<P...>(kernel, std::tuple<P...>(Param<P>::get(args[I].bits)...));
}

template <class... P>
Bound *bind(const char *name, void (*kernel)(P...), const RawArg *args, size_t count, char *err,
            size_t err_len) {
    return bind_args(name, kernel, args, count, err, err_len, std::index_sequence_for<P...>());
}

} // namespace emu

#define __syncthreads() ::emu::syncthreads(__FILE__, __LINE__)
#define SHARED(type, name, dims)                                                               \
    static thread_local ::emu::SharedSlot name##_emu_slot;                                     \
    type(&name) dims = *static_cast<type(*) dims>(name##_emu_slot.get(sizeof(type dims)))
#define DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(::emu::dynamic_shared())
#define EMU_KERNEL(name)                                                                       \
    ::emu::Kernel {                                                                            \
        #name, [](const ::emu::RawArg *args, size_t count, char *err, size_t err_len) {        \
            return ::emu::bind(#name, &name, args, count, err, err_len);                      \
        }                                                                                      \
    }
