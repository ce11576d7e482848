// The bias of a convolution, forward and gradient, launched from src/ops/conv2d.rs (the
// convolutions themselves are cuDNN's).
#include "common.cuh"

// y[n, c, hw] += b[c], then with relu max(y, 0) (NaN stays NaN): a folded BatchNorm's shift and the
// ReLU after it, in one pass after cuDNN's convolution.
extern "C" __global__ void bias_act_planes(float* y, const float* b, int c, int hw, int total, int relu) {
    for_each_channel(total, c, hw, [&](int i, int ch) {
        float v = y[i] + b[ch];
        y[i] = relu && v < 0.f ? 0.f : v;
    });
}

// max(y, 0) in place (NaN stays NaN).
extern "C" __global__ void relu_in_place(float* y, int total) {
    FOR_EACH(i, total) { float v = y[i]; y[i] = v < 0.f ? 0.f : v; }
}

// gb[ch] = sum over images and pixels of gy[n, ch, hw]; one block per channel.
extern "C" __global__ void bias_grad_planes(const float* gy, float* gb, int n, int c, int hw) {
    int ch = blockIdx.x;
    double s = 0.0;
    for (int i = threadIdx.x; i < n * hw; i += blockDim.x) s += gy[((i / hw) * c + ch) * hw + i % hw];
    s = block_sum(s);
    if (threadIdx.x == 0) gb[ch] = (float)s;
}
