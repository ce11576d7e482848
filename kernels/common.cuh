// Shared by every kernel file. Rules: f32 data, NCHW; sizes as int (every tensor this engine
// builds is far below 2^31 elements); per-channel and per-row sums in double, as the CPU twins do,
// so CPU and GPU agree to the last digits; no kernel allocates.
#pragma once

// Grid-stride loop over n elements.
#define FOR_EACH(i, n) for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// A grid-stride loop over the n elements of an NCHW tensor (or any [.., c, hw] layout) calling
// f(i, ch) with element i's channel (i / hw) % c, kept up to date without a division per element:
// the stride's whole planes and leftover elements are added to it at each step instead.
template <class F>
__device__ inline void for_each_channel(int n, int c, int hw, F f) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, stride = blockDim.x * gridDim.x;
    if (i >= n) return;
    int j = i % hw, ch = (i / hw) % c, step_j = stride % hw, step_ch = (stride / hw) % c;
    for (; i < n; i += stride) {
        f(i, ch);
        j += step_j, ch += step_ch;
        if (j >= hw) j -= hw, ch++;
        if (ch >= c) ch -= c;
    }
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ inline double block_sum(double v) {
    __shared__ double warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // warp_sums may still be read by a previous call
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    double s = 0.0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) s += warp_sums[w];
    return s;
}
