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

// The training step's random start, twin of counter_start in src/ops/pgd.rs: u = (2·unit − 1)·r
// with unit word j % 4 of Philox4x32-10 block j / 4 under key (k0, k1) (src/ops/philox.rs), top
// 24 bits, j = first + i (a rank's share starts inside the batch's stream), so the GPU draws in
// place what the CPU draws; x' = project(x0 + u) within r.
extern "C" __global__ void pgd_start_philox(float* xa, const float* x0, float r, unsigned k0, unsigned k1,
                                           unsigned long long first, int n) {
    FOR_EACH(i, n) {
        unsigned long long j = first + (unsigned long long)i, block = j / 4;
        unsigned c[4] = {(unsigned)block, (unsigned)(block >> 32), 0u, 0u}, key0 = k0, key1 = k1;
        for (int round = 0; round < 10; round++) {
            if (round > 0) key0 += 0x9E3779B9u, key1 += 0xBB67AE85u;
            unsigned long long p0 = 0xD2511F53ull * c[0], p1 = 0xCD9E8D57ull * c[2];
            unsigned next[4] = {(unsigned)(p1 >> 32) ^ c[1] ^ key0, (unsigned)p1, (unsigned)(p0 >> 32) ^ c[3] ^ key1,
                                (unsigned)p0};
            for (int w = 0; w < 4; w++) c[w] = next[w];
        }
        float unit = (float)(c[j & 3] >> 8) * (1.0f / 16777216.0f);
        float u = (unit * 2.0f - 1.0f) * r;
        xa[i] = project(x0[i] + u, x0[i], r);
    }
}
