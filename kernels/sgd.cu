// SGD with momentum and weight decay (PyTorch semantics, dampening 0), the twin of
// src/ops/sgd.rs, over every parameter of a model in one launch. `table` holds, for the
// `tensors` tensors, every parameter's address, then every gradient's, every momentum buffer's
// and every length (one upload for all four); blockIdx.y picks the tensor.
#include "common.cuh"

extern "C" __global__ void sgd_update(const unsigned long long* table, int tensors, float lr, float momentum, float wd,
                                      int nesterov) {
    int k = blockIdx.y;
    float* p = (float*)table[k];
    const float* g = (const float*)table[tensors + k];
    float* b = (float*)table[2 * tensors + k];
    int n = (int)table[3 * tensors + k];  // read once: the stores below could alias it as far as the compiler knows
    FOR_EACH(i, n) {
        float d = g[i] + wd * p[i];
        b[i] = momentum * b[i] + d;
        float u = nesterov ? d + momentum * b[i] : b[i];
        p[i] -= lr * u;
    }
}
