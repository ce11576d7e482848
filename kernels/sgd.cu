// SGD with momentum and weight decay (PyTorch semantics, dampening 0), the twin of
// src/ops/sgd.rs, over every parameter of a model in one launch: tensor k is ps[k], gs[k], bufs[k]
// with lens[k] values; blockIdx.y picks the tensor.
#include "common.cuh"

extern "C" __global__ void sgd_update(float* const* ps, const float* const* gs, float* const* bufs, const int* lens,
                                      float lr, float momentum, float wd, int nesterov) {
    int k = blockIdx.y;
    float* p = ps[k];
    const float* g = gs[k];
    float* b = bufs[k];
    int n = lens[k];  // read once: the stores below could alias it as far as the compiler knows
    FOR_EACH(i, n) {
        float d = g[i] + wd * p[i];
        b[i] = momentum * b[i] + d;
        float u = nesterov ? d + momentum * b[i] : b[i];
        p[i] -= lr * u;
    }
}
