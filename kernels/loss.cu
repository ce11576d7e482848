// Fused losses on logits, twins of src/ops/loss.rs: one warp per sample row (lane l takes the
// classes l, l + 32, ...) computes the log-softmax normaliser of each of its logit sets once, then
// the per-sample value and the gradient of the batch sum for every set. Maxima and sums go across
// the warp by butterfly shuffles, which leave every lane with the same bits; sums are in double,
// as on the CPU, so only their order differs from it. A log-probability is recomputed as
// z/tau - lse where needed (the same bits every time) rather than kept per class.
#include "common.cuh"

// Grid-stride loop over n rows, a warp per row (launched with 32 threads per row).
#define FOR_EACH_ROW(i, n) \
    for (int i = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < (n); i += (blockDim.x * gridDim.x) >> 5)

__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ inline double warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// log-sum-exp of z / tau (with the max taken out first), as the CPU's log_softmax computes it.
__device__ float lse_of(const float* z, float tau, int c) {
    float m = -INFINITY;
    for (int j = threadIdx.x & 31; j < c; j += 32) m = fmaxf(m, z[j]);
    m = warp_max(m) / tau;
    double s = 0.0;
    for (int j = threadIdx.x & 31; j < c; j += 32) s += exp((double)(z[j] / tau - m));
    return (float)log(warp_sum(s)) + m;
}

// A row's logits with its normaliser: log p_j = z[j] / tau - lse.
struct Row {
    const float* z;
    float lse;
    __device__ float lp(int j, float tau) const { return z[j] / tau - lse; }
};

// KL(p_a || p_b) of one row; adds w * its gradients into ga, gb (each lane its classes).
__device__ float kl_row(Row a, Row b, float w, float tau, int c, float* ga, float* gb) {
    double s = 0.0;
    for (int j = threadIdx.x & 31; j < c; j += 32) {
        float la = a.lp(j, tau), lb = b.lp(j, tau);
        s += (double)(expf(la) * (la - lb));
    }
    float kl = (float)warp_sum(s);
    for (int j = threadIdx.x & 31; j < c; j += 32) {
        float la = a.lp(j, tau), lb = b.lp(j, tau);
        float pa = expf(la), pb = expf(lb);
        ga[j] += w * pa * (la - lb - kl) / tau;
        gb[j] += w * (pb - pa) / tau;
    }
    return kl;
}

extern "C" __global__ void cross_entropy(const float* z, const int* labels, float* per_sample, float* g, int n, int c) {
    FOR_EACH_ROW(i, n) {
        Row r = {z + i * c, lse_of(z + i * c, 1.f, c)};
        for (int j = threadIdx.x & 31; j < c; j += 32) g[i * c + j] = expf(r.lp(j, 1.f)) - (j == labels[i] ? 1.f : 0.f);
        if ((threadIdx.x & 31) == 0) per_sample[i] = -r.lp(labels[i], 1.f);
    }
}

// ga, gb must be zeroed.
extern "C" __global__ void kl_div(const float* a, const float* b, float tau, float* per_sample, float* ga, float* gb, int n, int c) {
    FOR_EACH_ROW(i, n) {
        int r = i * c;
        Row ra = {a + r, lse_of(a + r, tau, c)}, rb = {b + r, lse_of(b + r, tau, c)};
        float kl = kl_row(ra, rb, 1.f, tau, c, ga + r, gb + r);
        if ((threadIdx.x & 31) == 0) per_sample[i] = kl;
    }
}

// wta * KL(t || sa) + wtn * KL(t || sn) + wan * KL(sa || sn), edges in that order (as the CPU
// accumulates the gradients); gt, gsa, gsn must be zeroed.
extern "C" __global__ void triangle(const float* t, const float* sa, const float* sn, float wta, float wtn, float wan, float tau,
                                    float* per_sample, float* gt, float* gsa, float* gsn, int n, int c) {
    FOR_EACH_ROW(i, n) {
        int r = i * c;
        Row rt = {t + r, lse_of(t + r, tau, c)}, ra = {sa + r, lse_of(sa + r, tau, c)}, rn = {sn + r, lse_of(sn + r, tau, c)};
        float k1 = kl_row(rt, ra, wta, tau, c, gt + r, gsa + r) * wta;
        float k2 = kl_row(rt, rn, wtn, tau, c, gt + r, gsn + r) * wtn;
        float k3 = kl_row(ra, rn, wan, tau, c, gsa + r, gsn + r) * wan;
        if ((threadIdx.x & 31) == 0) per_sample[i] = k1 + k2 + k3;
    }
}

// Row i of a [rows, cols] matrix times w[i].
extern "C" __global__ void scale_rows(float* x, const float* w, int rows, int cols) {
    for_each_channel(rows * cols, rows, cols, [&](int i, int row) { x[i] *= w[row]; });
}
