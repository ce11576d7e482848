// What the emulator's C++ test programs share: the driver API through the libcuda stand-in,
// wrapped so that any failing call ends the program with its name and code.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "emu_cuda.h"

inline void ok(CUresult r, const char* what) {
    if (r != CUDA_SUCCESS) {
        const char* name = nullptr;
        cuGetErrorName(r, &name);
        fprintf(stderr, "%s failed: %s\n", what, name ? name : "?");
        exit(3);
    }
}
#define OK(call) ok(call, #call)

inline void start() {
    OK(cuInit(0));
    CUcontext ctx;
    OK(cuDevicePrimaryCtxRetain(&ctx, 0));
    OK(cuCtxSetCurrent(ctx));
}

template <class T>
CUdeviceptr upload(const std::vector<T>& v) {
    CUdeviceptr p;
    OK(cuMemAlloc_v2(&p, v.size() * sizeof(T)));
    OK(cuMemcpyHtoD_v2(p, v.data(), v.size() * sizeof(T)));
    return p;
}

template <class T>
std::vector<T> download(CUdeviceptr p, size_t n) {
    std::vector<T> v(n);
    OK(cuMemcpyDtoH_v2(v.data(), p, n * sizeof(T)));
    return v;
}

// The kernel `name` through a module whose PTX text declares it, as the real build's PTX does.
inline CUfunction function(const char* name) {
    std::string ptx = std::string(".visible .entry ") + name + "(\n";
    CUmodule m;
    OK(cuModuleLoadData(&m, ptx.c_str()));
    CUfunction f;
    OK(cuModuleGetFunction(&f, m, name));
    return f;
}

template <class... A>
CUresult launch(CUfunction f, dim3 grid, dim3 block, A... args) {
    void* params[] = {&args..., nullptr};
    return cuLaunchKernel(f, grid.x, grid.y, grid.z, block.x, block.y, block.z, 0, nullptr, params, nullptr);
}

// A deterministic pseudo-random float in [lo, hi).
inline float uniform(uint64_t& s, float lo, float hi) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((s >> 40) * 0x1p-24);
}

// An FNV-1a hash of the bits of v, so runs under two seeds can be compared through stdout.
template <class T>
uint64_t hash_bits(const std::vector<T>& v, uint64_t h = 1469598103934665603ull) {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(v.data());
    for (size_t i = 0; i < v.size() * sizeof(T); i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
