// Pointwise ops, the twins of src/ops/elementwise.rs: ReLU (NaN stays NaN, as in PyTorch) and the
// residual add.
#include "common.cuh"

extern "C" __global__ void relu_fwd(const float* x, float* y, int n) {
    FOR_EACH(i, n) { float v = x[i]; y[i] = v < 0.f ? 0.f : v; }
}

// gy where the output was positive (NaN outputs pass the gradient, as on the CPU).
extern "C" __global__ void relu_bwd(const float* y, const float* gy, float* gx, int n) {
    FOR_EACH(i, n) gx[i] = y[i] <= 0.f ? 0.f : gy[i];
}

extern "C" __global__ void add_fwd(const float* a, const float* b, float* y, int n) {
    FOR_EACH(i, n) y[i] = a[i] + b[i];
}
