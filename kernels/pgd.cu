// The fused L-inf PGD step and its random start, twins of src/ops/pgd.rs:
// x' <- clip[0,1](clip[x0-eps, x0+eps](x' + alpha * sign(g))) in one pass over three tensors.
#include "common.cuh"

__device__ inline float project(float v, float x0, float eps) {
    return fminf(fmaxf(fminf(fmaxf(v, x0 - eps), x0 + eps), 0.f), 1.f);
}

// sign(0) = 0, as torch.sign.
extern "C" __global__ void pgd_step(float* xa, const float* g, const float* x0, float alpha, float eps, int n) {
    FOR_EACH(i, n) {
        float s = g[i] > 0.f ? alpha : (g[i] < 0.f ? -alpha : 0.f);
        xa[i] = project(xa[i] + s, x0[i], eps);
    }
}

// x' = project(x0 + u) for noise u already in [-r, r].
extern "C" __global__ void pgd_start(float* xa, const float* x0, const float* u, float eps, int n) {
    FOR_EACH(i, n) xa[i] = project(x0[i] + u[i], x0[i], eps);
}
