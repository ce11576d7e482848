// Pointwise ops, the twins of src/ops/elementwise.rs: ReLU (NaN stays NaN, as in PyTorch), the
// residual add, Swish (in double, rounded once) and the per-channel standardisation.
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

// x * sigmoid(x), computed in double and rounded once, as on the CPU.
extern "C" __global__ void swish_fwd(const float* x, float* y, int n) {
    FOR_EACH(i, n) {
        double v = x[i], s = 1.0 / (1.0 + exp(-v));
        y[i] = (float)(v * s);
    }
}

// gy * s * (1 + x * (1 - s)), s = sigmoid(x), in double.
extern "C" __global__ void swish_bwd(const float* x, const float* gy, float* gx, int n) {
    FOR_EACH(i, n) {
        double v = x[i], s = 1.0 / (1.0 + exp(-v));
        gx[i] = (float)((double)gy[i] * (s * (1.0 + v * (1.0 - s))));
    }
}

// (x - sub[c]) / div[c] per channel of an NCHW tensor (no subtraction unless has_sub).
extern "C" __global__ void standardize(const float* x, const float* sub, const float* div, float* y, int c, int hw,
                                       int n, int has_sub) {
    for_each_channel(n, c, hw, [&](int i, int ch) {
        float v = has_sub ? x[i] - sub[ch] : x[i];
        y[i] = v / div[ch];
    });
}
