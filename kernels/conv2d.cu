// The bias of a convolution, forward and gradient, launched from src/ops/conv2d.rs (the
// convolutions themselves are cuDNN's).
#include "common.cuh"

// y[n, c, hw] += b[c]
extern "C" __global__ void bias_add_planes(float* y, const float* b, int c, int hw, int total) {
    FOR_EACH(i, total) y[i] += b[(i / hw) % c];
}

// gb[ch] = sum over images and pixels of gy[n, ch, hw]; one block per channel.
extern "C" __global__ void bias_grad_planes(const float* gy, float* gb, int n, int c, int hw) {
    int ch = blockIdx.x;
    double s = 0.0;
    for (int i = threadIdx.x; i < n * hw; i += blockDim.x) s += gy[((i / hw) * c + ch) * hw + i % hw];
    s = block_sum(s);
    if (threadIdx.x == 0) gb[ch] = (float)s;
}
