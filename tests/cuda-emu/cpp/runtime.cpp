// The emulation's scheduler: runs a launch's blocks one after another, the threads of each
// as fibers of the calling OS thread (see cuda_cpu.h for what is modelled).
#include "cuda_cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <memory>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

namespace {

// Each CUDA thread's stack: the kernels' frames are small (a 4×8 register tile at most).
constexpr size_t STACK_BYTES = 64 * 1024;
// CUDA's limit on threads per block.
constexpr size_t MAX_THREADS = 1024;

// AddressSanitizer is told about every switch between stacks, so that it checks the right
// one (no-ops without it).
void switch_out(void **fake_stack, const void *bottom, size_t size) {
#if EMU_ASAN
    __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#else
    (void)fake_stack, (void)bottom, (void)size;
#endif
}
void switched_in(void *fake_stack, const void **bottom_old, size_t *size_old) {
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
#else
    (void)fake_stack, (void)bottom_old, (void)size_old;
#endif
}

// An inaccessible page below each stack: a kernel that overflows its stack faults at once.
constexpr size_t GUARD_BYTES = 4096;

// Stacks for the fibers, kept per OS thread and reused by every block.
struct Stacks {
    std::vector<char *> stacks;
    void *get(size_t i) {
        while (stacks.size() <= i) {
            void *s = mmap(nullptr, GUARD_BYTES + STACK_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (s == MAP_FAILED) {
                return nullptr;
            }
            if (mprotect(s, GUARD_BYTES, PROT_NONE) != 0) {
                munmap(s, GUARD_BYTES + STACK_BYTES);
                return nullptr;
            }
            stacks.push_back(static_cast<char *>(s));
        }
        return stacks[i] + GUARD_BYTES;
    }
    ~Stacks() {
        for (char *s : stacks) {
            munmap(s, GUARD_BYTES + STACK_BYTES);
        }
    }
};
thread_local Stacks stacks;

enum State { READY, AT_BARRIER, DONE };

struct Thread {
    ucontext_t context;
    uint3 index;
    State state;
    void *stack;
    // The __syncthreads() it waits at.
    const char *file;
    int line;
};

// The block being run on this OS thread.
struct Block {
    emu::Bound *kernel;
    std::vector<Thread> threads;
    size_t current;
    ucontext_t scheduler;
    const void *scheduler_stack;
    size_t scheduler_stack_size;
    void *dynamic;
    std::vector<void *> statics;
    unsigned long long serial;
    unsigned char garbage;
};
thread_local Block *block = nullptr;
thread_local unsigned long long blocks_run = 0;

void thread_main() {
    Block *b = block;
    switched_in(nullptr, &b->scheduler_stack, &b->scheduler_stack_size);
    b->kernel->run();
    Thread &t = b->threads[b->current];
    t.state = DONE;
    // Never resumed: its fiber (and AddressSanitizer's record of it) ends here.
    switch_out(nullptr, b->scheduler_stack, b->scheduler_stack_size);
    swapcontext(&t.context, &b->scheduler);
}

std::string where(const Thread &t) { return std::string(t.file) + ":" + std::to_string(t.line); }

// Runs `b` to the end, its threads in ascending (or, `reverse`, descending) index order
// between barriers; returns what went wrong, or an empty string.
std::string run_block(Block &b, bool reverse) {
    const size_t n = b.threads.size();
    for (size_t i = 0; i < n; ++i) {
        Thread &t = b.threads[i];
        t.stack = stacks.get(i);
        if (t.stack == nullptr) {
            return "cannot map a stack for thread " + std::to_string(i);
        }
#if EMU_ASAN
        // A block that failed may have left poisoned frames on this stack.
        __asan_unpoison_memory_region(t.stack, STACK_BYTES);
#endif
        getcontext(&t.context);
        t.context.uc_stack.ss_sp = t.stack;
        t.context.uc_stack.ss_size = STACK_BYTES;
        t.context.uc_link = nullptr;
        makecontext(&t.context, thread_main, 0);
        t.state = READY;
    }
    for (;;) {
        for (size_t k = 0; k < n; ++k) {
            const size_t i = reverse ? n - 1 - k : k;
            Thread &t = b.threads[i];
            if (t.state != READY) {
                continue;
            }
            threadIdx = t.index;
            b.current = i;
            void *fake_stack = nullptr;
            switch_out(&fake_stack, t.stack, STACK_BYTES);
            swapcontext(&b.scheduler, &t.context);
            switched_in(fake_stack, nullptr, nullptr);
        }
        const Thread *waiting = nullptr;
        const Thread *returned = nullptr;
        for (Thread &t : b.threads) {
            if (t.state == DONE) {
                returned = &t;
                continue;
            }
            if (waiting != nullptr && (waiting->line != t.line || strcmp(waiting->file, t.file))) {
                return "threads wait at different __syncthreads(): " + where(*waiting) + " and " +
                       where(t);
            }
            waiting = &t;
            t.state = READY;
        }
        if (waiting == nullptr) {
            return "";
        }
        if (returned != nullptr) {
            return "threads returned while others wait at __syncthreads() " + where(*waiting);
        }
    }
}

void copy_error(char *err, size_t err_len, const std::string &message) {
    if (err_len > 0) {
        snprintf(err, err_len, "%s", message.c_str());
    }
}

} // namespace

namespace emu {

void syncthreads(const char *file, int line) {
    Block *b = block;
    Thread &t = b->threads[b->current];
    t.state = AT_BARRIER;
    t.file = file;
    t.line = line;
    void *fake_stack = nullptr;
    switch_out(&fake_stack, b->scheduler_stack, b->scheduler_stack_size);
    swapcontext(&t.context, &b->scheduler);
    switched_in(fake_stack, nullptr, nullptr);
}

void *dynamic_shared() { return block->dynamic; }

void *SharedSlot::get(size_t bytes) {
    Block *b = block;
    if (serial != b->serial) {
        data = malloc(bytes);
        memset(data, b->garbage, bytes);
        b->statics.push_back(data);
        serial = b->serial;
    }
    return data;
}

void bind_error(char *err, size_t err_len, const char *kernel, const char *message, size_t arg) {
    copy_error(err, err_len, std::string(kernel) + " " + message + " " + std::to_string(arg));
}

} // namespace emu

// Runs `kernel` of `module` over `grid` blocks of `block_dim` threads with `shared_bytes` of
// dynamic shared memory per block. `order` bit 0 reverses the threads between barriers and
// the blocks; it also picks the garbage shared memory starts with. Returns 0, or 1 with the
// reason in `err`.
extern "C" int emu_launch(const emu::Module *module, const char *kernel, const uint32_t *grid,
                          const uint32_t *block_dim, uint32_t shared_bytes,
                          const emu::RawArg *args, size_t count, uint32_t order, char *err,
                          size_t err_len) {
    const emu::Kernel *found = nullptr;
    for (size_t i = 0; i < module->count; ++i) {
        if (strcmp(module->kernels[i].name, kernel) == 0) {
            found = &module->kernels[i];
        }
    }
    if (found == nullptr) {
        copy_error(err, err_len, std::string("no kernel ") + kernel + " in " + module->source);
        return 1;
    }
    std::unique_ptr<emu::Bound> bound(found->bind(args, count, err, err_len));
    if (!bound) {
        return 1;
    }
    const size_t threads = size_t(block_dim[0]) * block_dim[1] * block_dim[2];
    const size_t blocks = size_t(grid[0]) * grid[1] * grid[2];
    if (threads == 0 || threads > MAX_THREADS || blocks == 0) {
        copy_error(err, err_len, std::string(kernel) + ": empty grid or block, or a block of " +
                                     std::to_string(threads) + " threads");
        return 1;
    }
    const bool reverse = order & 1;
    Block b{};
    b.kernel = bound.get();
    b.threads.resize(threads);
    b.garbage = reverse ? 0x7f : 0xff;
    for (size_t i = 0; i < threads; ++i) {
        b.threads[i].index = {unsigned(i % block_dim[0]), unsigned(i / block_dim[0] % block_dim[1]),
                              unsigned(i / (size_t(block_dim[0]) * block_dim[1]))};
    }
    blockDim = {block_dim[0], block_dim[1], block_dim[2]};
    gridDim = {grid[0], grid[1], grid[2]};
    for (size_t k = 0; k < blocks; ++k) {
        const size_t i = reverse ? blocks - 1 - k : k;
        blockIdx = {unsigned(i % grid[0]), unsigned(i / grid[0] % grid[1]),
                    unsigned(i / (size_t(grid[0]) * grid[1]))};
        b.serial = ++blocks_run;
        b.dynamic = nullptr;
        if (shared_bytes > 0) {
            b.dynamic = malloc(shared_bytes);
            memset(b.dynamic, b.garbage, shared_bytes);
        }
        block = &b;
        const std::string failed = run_block(b, reverse);
        block = nullptr;
        free(b.dynamic);
        for (void *s : b.statics) {
            free(s);
        }
        b.statics.clear();
        if (!failed.empty()) {
            copy_error(err, err_len,
                       std::string(kernel) + ", block (" + std::to_string(blockIdx.x) + ", " +
                           std::to_string(blockIdx.y) + ", " + std::to_string(blockIdx.z) +
                           "): " + failed);
            return 1;
        }
    }
    return 0;
}
