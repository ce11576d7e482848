// In-place tensor arithmetic, the twins of Tensor::{add_assign, scale, add_scaled} in src/tensor.rs
// (gradient accumulation, loss scaling).
#include "common.cuh"

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
