// Negative controls: bugs planted on purpose, one per mode (argv[1]); the emulator must catch each,
// by stopping the program with a message or by a result that differs from the reference (exit 1)
// or between seeds (the result's hash on stdout).
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

#include "cuda_emu.h"
#include "harness.h"

// A block sum of 256 values through shared memory, missing the barrier between the stores and
// the first reads: which values the first step sees depends on which warps have run.
__global__ void sum_missing_barrier(const float* x, float* out) {
    __shared__ float s[256];
    unsigned t = threadIdx.x;
    s[t] = x[blockIdx.x * 256 + t];
    for (unsigned o = 128; o > 0; o >>= 1) {
        if (t < o) s[t] += s[t + o];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}
EMU_REGISTER(sum_missing_barrier);

// One past the end: i <= n.
__global__ void copy_off_by_one(const float* x, float* y, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i <= n; i += blockDim.x * gridDim.x) y[i] = x[i];
}
EMU_REGISTER(copy_off_by_one);

// The upper half of the block leaves before the barrier the lower half waits at.
__global__ void barrier_after_return(float* y) {
    if (threadIdx.x >= 32) return;
    __syncthreads();
    y[threadIdx.x] = 1.f;
}
EMU_REGISTER(barrier_after_return);

// The two halves of the block wait at two different barriers.
__global__ void divergent_barriers(float* y) {
    if (threadIdx.x < 32) {
        y[threadIdx.x] = 1.f;
        __syncthreads();
    } else {
        __syncthreads();
        y[threadIdx.x] = 2.f;
    }
}
EMU_REGISTER(divergent_barriers);

// 128 KiB of locals: more than a thread's 64 KiB stack.
__global__ void large_locals(float* y) {
    volatile float big[32768];
    for (int i = 0; i < 32768; i++) big[i] = (float)i;
    y[threadIdx.x] = big[threadIdx.x];
}
EMU_REGISTER(large_locals);

// 52 KB of shared memory, in a section of its own (as if in a file of its own).
#undef EMU_SHARED
#define EMU_SHARED emu_shared_big
__global__ void large_shared(float* y) {
    __shared__ float big[13000];
    big[threadIdx.x] = 1.f;
    __syncthreads();
    y[threadIdx.x] = big[31 - threadIdx.x];
}
EMU_REGISTER(large_shared);
#undef EMU_SHARED
#define EMU_SHARED emu_shared

// Half a warp shuffles with a full mask.
__global__ void shuffle_in_branch(float* y) {
    float v = threadIdx.x;
    if (threadIdx.x % 32 < 16) v = __shfl_down_sync(0xffffffffu, v, 1);
    y[threadIdx.x] = v;
}
EMU_REGISTER(shuffle_in_branch);

// The PGD step without the clip to [0, 1].
__global__ void pgd_step_unclipped(float* xa, const float* g, const float* x0, float alpha, float eps, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        float s = g[i] > 0.f ? alpha : (g[i] < 0.f ? -alpha : 0.f);
        xa[i] = fminf(fmaxf(xa[i] + s, x0[i] - eps), x0[i] + eps);
    }
}
EMU_REGISTER(pgd_step_unclipped);

static void race() {
    const int blocks = 4;
    std::vector<float> x(blocks * 256);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)(i % 17);
    CUdeviceptr dx = upload(x), dout = upload(std::vector<float>(blocks));
    OK(launch(function("sum_missing_barrier"), {blocks, 1, 1}, {256, 1, 1}, dx, dout));
    std::vector<float> got = download<float>(dout, blocks);
    printf("%016llx\n", (unsigned long long)hash_bits(got));
    for (int b = 0; b < blocks; b++) {
        float want = 0;
        for (int i = 0; i < 256; i++) want += x[b * 256 + i];
        if (got[b] != want) {
            fprintf(stderr, "block %d: sum %g, the reference %g\n", b, got[b], want);
            exit(1);
        }
    }
}

static void out_of_bounds() {
    const int n = 1000;
    CUdeviceptr x = upload(std::vector<float>(n, 1.f)), y = upload(std::vector<float>(n));
    OK(launch(function("copy_off_by_one"), {4, 1, 1}, {256, 1, 1}, x, y, n));
}

static void partial_barrier() {
    CUdeviceptr y = upload(std::vector<float>(64));
    OK(launch(function("barrier_after_return"), {1, 1, 1}, {64, 1, 1}, y));
}

static void partial_shuffle() {
    CUdeviceptr y = upload(std::vector<float>(64));
    OK(launch(function("shuffle_in_branch"), {1, 1, 1}, {64, 1, 1}, y));
}

static void divergent_barrier() {
    CUdeviceptr y = upload(std::vector<float>(64));
    OK(launch(function("divergent_barriers"), {1, 1, 1}, {64, 1, 1}, y));
}

static void stack_overflow() {
    CUdeviceptr y = upload(std::vector<float>(32));
    OK(launch(function("large_locals"), {1, 1, 1}, {32, 1, 1}, y));
}

// bn_slice_sums' block_sum shuffles over whole warps; a 48-thread block has half a warp.
static void partial_warp() {
    CUdeviceptr x = upload(std::vector<float>(48)), d = upload(std::vector<double>(1));
    OK(launch(function("bn_slice_sums"), {1, 1, 1}, {48, 1, 1}, x, 1, 1, 48, 1, 0, d, 1.0, d));
}

static void shared_too_large() {
    CUdeviceptr y = upload(std::vector<float>(32));
    OK(launch(function("large_shared"), {1, 1, 1}, {32, 1, 1}, y));
}

static void block_too_large() {
    CUdeviceptr y = upload(std::vector<float>(64));
    OK(launch(function("barrier_after_return"), {1, 1, 1}, {2048, 1, 1}, y));
}

static void grid_too_large() {
    CUdeviceptr y = upload(std::vector<float>(64));
    OK(launch(function("barrier_after_return"), {1, 70000, 1}, {64, 1, 1}, y));
}

static void wrong_formula() {
    const int n = 512;
    uint64_t s = 9;
    std::vector<float> xa(n), g(n), x0(n);
    for (int i = 0; i < n; i++) x0[i] = uniform(s, 0, 1), xa[i] = x0[i], g[i] = uniform(s, -1, 1);
    float alpha = 0.02f, eps = 0.03f;
    CUdeviceptr dxa = upload(xa), dg = upload(g), dx0 = upload(x0);
    OK(launch(function("pgd_step_unclipped"), {2, 1, 1}, {256, 1, 1}, dxa, dg, dx0, alpha, eps, n));
    std::vector<float> got = download<float>(dxa, n);
    for (int i = 0; i < n; i++) {
        float step = g[i] > 0.f ? alpha : -alpha;
        float want = fminf(fmaxf(fminf(fmaxf(xa[i] + step, x0[i] - eps), x0[i] + eps), 0.f), 1.f);
        if (got[i] != want) {
            fprintf(stderr, "element %d: %.9g, the reference %.9g\n", i, got[i], want);
            exit(1);
        }
    }
}

// relu_fwd(const float* x, float* y, int n) given (x, n, y): the length where a pointer goes.
static void swapped_arguments() {
    const int n = 100;
    CUdeviceptr x = upload(std::vector<float>(n)), y = upload(std::vector<float>(n));
    OK(launch(function("relu_fwd"), {1, 1, 1}, {128, 1, 1}, x, n, y));
}

// relu_fwd(x, y, n) with the output and a 10-element scratch buffer swapped.
static void swapped_buffers() {
    const int n = 1000;
    CUdeviceptr x = upload(std::vector<float>(n)), small = upload(std::vector<float>(10));
    OK(launch(function("relu_fwd"), {4, 1, 1}, {256, 1, 1}, x, small, n));
}

static void use_after_free() {
    const int n = 100;
    CUdeviceptr x = upload(std::vector<float>(n)), y = upload(std::vector<float>(n));
    OK(cuMemFree_v2(x));
    OK(launch(function("relu_fwd"), {1, 1, 1}, {128, 1, 1}, x, y, n));
}

// sgd_update's pointer table holds a freed buffer: only the kernel's access can tell.
static void freed_through_table() {
    const int n = 64;
    CUdeviceptr p = upload(std::vector<float>(n)), g = upload(std::vector<float>(n)), b = upload(std::vector<float>(n));
    OK(cuMemFree_v2(g));
    CUdeviceptr table = upload(std::vector<uint64_t>{p, g, b, (uint64_t)n});
    OK(launch(function("sgd_update"), {1, 1, 1}, {64, 1, 1}, table, 1, 0.1f, 0.9f, 0.f, 0));
}

static void copy_past_end() {
    CUdeviceptr y = upload(std::vector<float>(10));
    std::vector<float> host(11);
    OK(cuMemcpyHtoD_v2(y, host.data(), host.size() * sizeof(float)));
}

static void double_free() {
    CUdeviceptr y = upload(std::vector<float>(10));
    OK(cuMemFree_v2(y));
    OK(cuMemFree_v2(y));
}

int main(int argc, char** argv) {
    const std::map<std::string, std::function<void()>> modes = {
        {"race", race},
        {"out_of_bounds", out_of_bounds},
        {"partial_barrier", partial_barrier},
        {"partial_shuffle", partial_shuffle},
        {"divergent_barrier", divergent_barrier},
        {"stack_overflow", stack_overflow},
        {"partial_warp", partial_warp},
        {"block_too_large", block_too_large},
        {"grid_too_large", grid_too_large},
        {"shared_too_large", shared_too_large},
        {"wrong_formula", wrong_formula},
        {"swapped_arguments", swapped_arguments},
        {"swapped_buffers", swapped_buffers},
        {"use_after_free", use_after_free},
        {"freed_through_table", freed_through_table},
        {"copy_past_end", copy_past_end},
        {"double_free", double_free},
    };
    auto mode = argc == 2 ? modes.find(argv[1]) : modes.end();
    if (mode == modes.end()) {
        fprintf(stderr, "usage: planted MODE\n");
        return 2;
    }
    start();
    mode->second();
    return 0;
}
