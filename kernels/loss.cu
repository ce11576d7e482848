// Fused losses on logits, twins of src/ops/loss.rs: one thread per sample row computes the
// log-softmaxes of its logit sets once, the per-sample value and the gradient of the batch sum for
// every set, in one pass (rows have few classes; the CPU's operation order is kept exactly).
#include "common.cuh"

#define MAX_CLASSES 1000

// log-softmax of z / tau into out.
__device__ void log_softmax(const float* z, float tau, int c, float* out) {
    float m = -INFINITY;
    for (int j = 0; j < c; j++) m = fmaxf(m, z[j]);
    m = m / tau;
    double s = 0.0;
    for (int j = 0; j < c; j++) s += exp((double)(z[j] / tau - m));
    float lse = (float)log(s) + m;
    for (int j = 0; j < c; j++) out[j] = z[j] / tau - lse;
}

// KL(p_a || p_b) of one row from its log-probabilities; adds w * its gradients into ga, gb.
__device__ float kl_row(const float* la, const float* lb, float w, float tau, int c, float* ga, float* gb) {
    double s = 0.0;
    for (int j = 0; j < c; j++) s += (double)(expf(la[j]) * (la[j] - lb[j]));
    float kl = (float)s;
    for (int j = 0; j < c; j++) {
        float pa = expf(la[j]), pb = expf(lb[j]);
        ga[j] += w * pa * (la[j] - lb[j] - kl) / tau;
        gb[j] += w * (pb - pa) / tau;
    }
    return kl;
}

extern "C" __global__ void cross_entropy(const float* z, const int* labels, float* per_sample, float* g, int n, int c) {
    float lp[MAX_CLASSES];
    FOR_EACH(i, n) {
        log_softmax(z + i * c, 1.f, c, lp);
        for (int j = 0; j < c; j++) g[i * c + j] = expf(lp[j]);
        g[i * c + labels[i]] -= 1.f;
        per_sample[i] = -lp[labels[i]];
    }
}

// ga, gb must be zeroed.
extern "C" __global__ void kl_div(const float* a, const float* b, float tau, float* per_sample, float* ga, float* gb, int n, int c) {
    float la[MAX_CLASSES], lb[MAX_CLASSES];
    FOR_EACH(i, n) {
        log_softmax(a + i * c, tau, c, la);
        log_softmax(b + i * c, tau, c, lb);
        per_sample[i] = kl_row(la, lb, 1.f, tau, c, ga + i * c, gb + i * c);
    }
}

// wta * KL(t || sa) + wtn * KL(t || sn) + wan * KL(sa || sn); gt, gsa, gsn must be zeroed.
extern "C" __global__ void triangle(const float* t, const float* sa, const float* sn, float wta, float wtn, float wan, float tau,
                                    float* per_sample, float* gt, float* gsa, float* gsn, int n, int c) {
    float lt[MAX_CLASSES], la[MAX_CLASSES], ln[MAX_CLASSES];
    FOR_EACH(i, n) {
        int r = i * c;
        log_softmax(t + r, tau, c, lt);
        log_softmax(sa + r, tau, c, la);
        log_softmax(sn + r, tau, c, ln);
        per_sample[i] = kl_row(lt, la, wta, tau, c, gt + r, gsa + r) * wta
                      + kl_row(lt, ln, wtn, tau, c, gt + r, gsn + r) * wtn
                      + kl_row(la, ln, wan, tau, c, gsa + r, gsn + r) * wan;
    }
}
