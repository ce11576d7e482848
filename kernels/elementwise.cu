// Pointwise ops: ReLU (NaN stays NaN, as in PyTorch), the residual add, scaling and accumulation,
// and the per-channel / per-row bias of convolutions and linear layers.
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

// y += a * x
extern "C" __global__ void axpy(float* y, const float* x, float a, int n) {
    FOR_EACH(i, n) y[i] += a * x[i];
}

// y += x, as a plain add (no multiply by 1: keeps the CPU's rounding exactly)
extern "C" __global__ void add_assign(float* y, const float* x, int n) {
    FOR_EACH(i, n) y[i] += x[i];
}

extern "C" __global__ void scale(float* x, float k, int n) {
    FOR_EACH(i, n) x[i] *= k;
}

// Row i of a [rows, cols] matrix times w[i].
extern "C" __global__ void scale_rows(float* x, const float* w, int rows, int cols) {
    FOR_EACH(i, rows * cols) x[i] *= w[i / cols];
}

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

// Every row of y[rows, cols] set to b (a linear layer's bias, before the GEMM accumulates).
extern "C" __global__ void fill_rows(float* y, const float* b, int rows, int cols) {
    FOR_EACH(i, rows * cols) y[i] = b[i % cols];
}

// gb[j] = sum over rows of g[rows, cols], in row order like the CPU; one thread per column.
extern "C" __global__ void col_sums(const float* g, float* gb, int rows, int cols) {
    FOR_EACH(j, cols) {
        double s = 0.0;
        for (int r = 0; r < rows; r++) s += g[r * cols + j];
        gb[j] = (float)s;
    }
}
