// The bias of a linear layer, forward and gradient, launched from src/ops/linear.rs (the GEMMs are
// cuBLAS's).
#include "common.cuh"

// Every row of y[rows, cols] set to b (a linear layer's bias, before the GEMM accumulates).
extern "C" __global__ void fill_rows(float* y, const float* b, int rows, int cols) {
    for_each_channel(rows * cols, cols, 1, [&](int i, int col) { y[i] = b[col]; });
}

// gb[j] = sum over rows of g[rows, cols], in row order like the CPU; one thread per column.
extern "C" __global__ void col_sums(const float* g, float* gb, int rows, int cols) {
    FOR_EACH(j, cols) {
        double s = 0.0;
        for (int r = 0; r < rows; r++) s += g[r * cols + j];
        gb[j] = (float)s;
    }
}
