// Fused losses on logits, twins of src/ops/loss.rs: one thread per sample row computes the
// log-softmax normaliser of each of its logit sets once, then the per-sample value and the
// gradient of the batch sum for every set, in the CPU's operation order. A log-probability is
// recomputed as z/tau - lse where needed (the same bits every time) rather than kept in a
// per-thread array, which would cost local memory for every thread the GPU can hold.
#include "common.cuh"

// log-sum-exp of z / tau (with the max taken out first), as the CPU's log_softmax computes it.
__device__ float lse_of(const float* z, float tau, int c) {
    float m = -INFINITY;
    for (int j = 0; j < c; j++) m = fmaxf(m, z[j]);
    m = m / tau;
    double s = 0.0;
    for (int j = 0; j < c; j++) s += exp((double)(z[j] / tau - m));
    return (float)log(s) + m;
}

// A row's logits with its normaliser: log p_j = z[j] / tau - lse.
struct Row {
    const float* z;
    float lse;
    __device__ float lp(int j, float tau) const { return z[j] / tau - lse; }
};

// KL(p_a || p_b) of one row; adds w * its gradients into ga, gb.
__device__ float kl_row(Row a, Row b, float w, float tau, int c, float* ga, float* gb) {
    double s = 0.0;
    for (int j = 0; j < c; j++) {
        float la = a.lp(j, tau), lb = b.lp(j, tau);
        s += (double)(expf(la) * (la - lb));
    }
    float kl = (float)s;
    for (int j = 0; j < c; j++) {
        float la = a.lp(j, tau), lb = b.lp(j, tau);
        float pa = expf(la), pb = expf(lb);
        ga[j] += w * pa * (la - lb - kl) / tau;
        gb[j] += w * (pb - pa) / tau;
    }
    return kl;
}

extern "C" __global__ void cross_entropy(const float* z, const int* labels, float* per_sample, float* g, int n, int c) {
    FOR_EACH(i, n) {
        Row r = {z + i * c, lse_of(z + i * c, 1.f, c)};
        for (int j = 0; j < c; j++) g[i * c + j] = expf(r.lp(j, 1.f));
        g[i * c + labels[i]] -= 1.f;
        per_sample[i] = -r.lp(labels[i], 1.f);
    }
}

// ga, gb must be zeroed.
extern "C" __global__ void kl_div(const float* a, const float* b, float tau, float* per_sample, float* ga, float* gb, int n, int c) {
    FOR_EACH(i, n) {
        int r = i * c;
        Row ra = {a + r, lse_of(a + r, tau, c)}, rb = {b + r, lse_of(b + r, tau, c)};
        per_sample[i] = kl_row(ra, rb, 1.f, tau, c, ga + r, gb + r);
    }
}

// wta * KL(t || sa) + wtn * KL(t || sn) + wan * KL(sa || sn), edges in that order (as the CPU
// accumulates the gradients); gt, gsa, gsn must be zeroed.
extern "C" __global__ void triangle(const float* t, const float* sa, const float* sn, float wta, float wtn, float wan, float tau,
                                    float* per_sample, float* gt, float* gsa, float* gsn, int n, int c) {
    FOR_EACH(i, n) {
        int r = i * c;
        Row rt = {t + r, lse_of(t + r, tau, c)}, ra = {sa + r, lse_of(sa + r, tau, c)}, rn = {sn + r, lse_of(sn + r, tau, c)};
        float k1 = kl_row(rt, ra, wta, tau, c, gt + r, gsa + r) * wta;
        float k2 = kl_row(rt, rn, wtn, tau, c, gt + r, gsn + r) * wtn;
        float k3 = kl_row(ra, rn, wan, tau, c, gsa + r, gsn + r) * wan;
        per_sample[i] = k1 + k2 + k3;
    }
}

// Row i of a [rows, cols] matrix times w[i].
extern "C" __global__ void scale_rows(float* x, const float* w, int rows, int cols) {
    FOR_EACH(i, rows * cols) x[i] *= w[i / cols];
}
