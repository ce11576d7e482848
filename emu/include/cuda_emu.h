// The CUDA dialect of kernels/*.cu as plain C++, for the emulated GPU: g++ -x c++ -include cuda_emu.h.
// Every thread of a block is a fiber of the runtime (src/scheduler.cpp); threadIdx and friends read
// the running fiber's coordinates, and __syncthreads / shuffles switch fibers. Blocks never
// interleave, so a function-static array serves as a block's __shared__ memory.
#pragma once
#include <math.h>  // libstdc++'s <math.h>: the C math functions plus isnan & co. in the global namespace

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#define EMU_API extern "C" __attribute__((visibility("default")))
// What kernels compiled outside the libcuda stand-in (the tests' own) link against.
#define EMU_EXPORT __attribute__((visibility("default")))

struct uint3 {
    unsigned x, y, z;
};
using dim3 = uint3;

namespace emu {
// The running thread's coordinates (set by the scheduler before it resumes a fiber).
extern EMU_EXPORT uint3 thread_idx, block_idx, block_dim, grid_dim;

// Blocks until every thread of the block has reached a barrier; `site` tells barriers apart.
EMU_EXPORT void barrier(const void* site);
// The warp-wide exchange behind the shuffles: every lane of the warp puts `bytes` of `v` in and gets
// the value of lane src(lane) back in `v`.
enum class Shfl { Down, Xor };
EMU_EXPORT void shuffle(unsigned mask, void* v, size_t bytes, Shfl kind, unsigned arg, int width, const void* site);
}  // namespace emu

#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
constexpr int warpSize = 32;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
// The __shared__ variables go to one section per kernel file (EMU_SHARED, set per file by the
// build), so the runtime can poison them before every block (CUDA leaves shared memory undefined;
// stale or unset values must not look plausible) and check their size against the device's limit.
#ifndef EMU_SHARED
#define EMU_SHARED emu_shared
#endif
#define EMU_STR_(x) #x
#define EMU_STR(x) EMU_STR_(x)
#define EMU_CAT_(a, b) a##b
#define EMU_CAT(a, b) EMU_CAT_(a, b)
#define __shared__ static __attribute__((section(EMU_STR(EMU_SHARED))))

// noinline: the return address names the call site, so a barrier reached at two places is caught.
__attribute__((noinline)) inline void __syncthreads() { emu::barrier(__builtin_return_address(0)); }

template <class T>
__attribute__((noinline)) T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move at most 8 bytes");
    emu::shuffle(mask, &v, sizeof v, emu::Shfl::Down, delta, width, __builtin_return_address(0));
    return v;
}

template <class T>
__attribute__((noinline)) T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move at most 8 bytes");
    emu::shuffle(mask, &v, sizeof v, emu::Shfl::Xor, (unsigned)lane_mask, width, __builtin_return_address(0));
    return v;
}

namespace emu {
// A compiled kernel as the runtime sees it: run one thread with the launch's kernelParams, check
// the pointer arguments, and print the arguments for error messages.
struct Kernel {
    const char* name;
    unsigned arity;
    // The __shared__ variables of the kernel's file (poisoned before each block).
    char *shared_begin, *shared_end;
    void (*run)(void** params);
    // The index of the first pointer argument that is neither null nor inside a live allocation, or -1.
    int (*bad_pointer)(void** params);
    // Writes "a, b, c" (pointers in hex, integers in decimal, floats with %g) into buf.
    void (*describe)(void** params, char* buf, size_t len);
};

// Whether p is null or inside (or one past the end of) a live device allocation.
EMU_EXPORT bool device_pointer_ok(const void* p);

template <class... A, size_t... I>
void call(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<std::remove_reference_t<A>*>(p[I])...);
}

// The signature is deduced from the kernel itself, so no argument list is written twice.
template <class... A>
void call(void (*f)(A...), void** p) {
    call(f, p, std::index_sequence_for<A...>{});
}

template <class... A>
constexpr unsigned arity(void (*)(A...)) {
    return sizeof...(A);
}

template <class... A>
int bad_pointer(void (*)(A...), void** p) {
    constexpr bool is_ptr[] = {std::is_pointer_v<A>..., false};
    for (size_t i = 0; i < sizeof...(A); i++)
        if (is_ptr[i] && !device_pointer_ok(*static_cast<const void* const*>(p[i]))) return (int)i;
    return -1;
}

template <class T>
int describe_one(char* buf, size_t len, const void* v) {
    if constexpr (std::is_pointer_v<T>)
        return snprintf(buf, len, "%p", *static_cast<const void* const*>(v));
    else if constexpr (std::is_floating_point_v<T>)
        return snprintf(buf, len, "%g", (double)*static_cast<const T*>(v));
    else if constexpr (std::is_signed_v<T>)
        return snprintf(buf, len, "%lld", (long long)*static_cast<const T*>(v));
    else
        return snprintf(buf, len, "%llu", (unsigned long long)*static_cast<const T*>(v));
}

template <class... A>
void describe(void (*)(A...), void** p, char* buf, size_t len) {
    using Fn = int (*)(char*, size_t, const void*);
    constexpr Fn one[] = {describe_one<std::remove_cv_t<A>>..., nullptr};
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof...(A) && at < len; i++) {
        if (i > 0) at += snprintf(buf + at, len - at, ", ");
        if (at < len) at += one[i](buf + at, len - at, p[i]);
    }
}

template <auto F>
Kernel kernel(const char* name, char* shared_begin, char* shared_end) {
    return {name, arity(F), shared_begin, shared_end, [](void** p) { call(F, p); }, [](void** p) { return bad_pointer(F, p); },
            [](void** p, char* b, size_t n) { describe(F, p, b, n); }};
}
}  // namespace emu

// Makes a kernel launchable by name (the build generates these for kernels/*.cu; tests write them),
// with the bounds of its EMU_SHARED section from the linker (null where there is none).
EMU_API void emu_register_kernel(const emu::Kernel* k);
#define EMU_REGISTER(f)                                                                           \
    extern "C" char EMU_CAT(__start_, EMU_SHARED)[] __attribute__((weak, visibility("hidden"))); \
    extern "C" char EMU_CAT(__stop_, EMU_SHARED)[] __attribute__((weak, visibility("hidden")));  \
    static const emu::Kernel emu_kernel_##f =                                                     \
        emu::kernel<&f>(#f, EMU_CAT(__start_, EMU_SHARED), EMU_CAT(__stop_, EMU_SHARED));         \
    static const int emu_registered_##f = (emu_register_kernel(&emu_kernel_##f), 0)
