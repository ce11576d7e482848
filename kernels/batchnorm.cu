// 2-d batch normalisation, the twin of src/ops/batchnorm.rs: statistics and sums per channel in
// double (one block per channel, two passes like the CPU), the output rounded once from double.
#include "common.cuh"

// Channel ch's value number i (0 <= i < n*hw) of an NCHW tensor.
__device__ inline float at(const float* x, int c, int hw, int ch, int i) {
    return x[((i / hw) * c + ch) * hw + i % hw];
}

// Batch mean and invstd (for eps) per channel; moves the running statistics in the same pass
// (biased variance for normalising, unbiased for the running variance, as PyTorch).
extern "C" __global__ void bn_batch_stats(const float* x, int n, int c, int hw, float eps, float momentum,
                                          double* mean, double* invstd, float* run_mean, float* run_var) {
    int ch = blockIdx.x, m = n * hw;
    double s = 0.0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) s += at(x, c, hw, ch, i);
    double mu = block_sum(s) / m;
    double q = 0.0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) { double d = at(x, c, hw, ch, i) - mu; q += d * d; }
    double var = block_sum(q) / m;
    if (threadIdx.x == 0) {
        mean[ch] = mu;
        invstd[ch] = 1.0 / sqrt(var + (double)eps);
        double k = (double)momentum, unbias = (double)m / (double)(m > 1 ? m - 1 : 1);
        run_mean[ch] = (float)((1.0 - k) * run_mean[ch] + k * mu);
        run_var[ch] = (float)((1.0 - k) * run_var[ch] + k * unbias * var);
    }
}

// Synchronised BN (src/ops/batchnorm.rs, batch_stats with a group) in three steps, the ranks'
// sums added between them: per channel the sum of x; then the sum of (x - S/M)^2, S the sum over all
// ranks and M their count; then mean, invstd and the running statistics from both sums.
extern "C" __global__ void bn_sum(const float* x, int n, int c, int hw, double* sum) {
    int ch = blockIdx.x, m = n * hw;
    double s = 0.0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) s += at(x, c, hw, ch, i);
    s = block_sum(s);
    if (threadIdx.x == 0) sum[ch] = s;
}

extern "C" __global__ void bn_sum_sq(const float* x, int n, int c, int hw, const double* sum, double count,
                                     double* sq) {
    int ch = blockIdx.x, m = n * hw;
    double mu = sum[ch] / count, q = 0.0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) { double d = at(x, c, hw, ch, i) - mu; q += d * d; }
    q = block_sum(q);
    if (threadIdx.x == 0) sq[ch] = q;
}

extern "C" __global__ void bn_stats_of_sums(const double* sum, const double* sq, double count, float eps,
                                            float momentum, int c, double* mean, double* invstd, float* run_mean,
                                            float* run_var) {
    FOR_EACH(ch, c) {
        double mu = sum[ch] / count, var = sq[ch] / count;
        mean[ch] = mu;
        invstd[ch] = 1.0 / sqrt(var + (double)eps);
        double k = (double)momentum, unbias = count / (count > 1.0 ? count - 1.0 : 1.0);
        run_mean[ch] = (float)((1.0 - k) * run_mean[ch] + k * mu);
        run_var[ch] = (float)((1.0 - k) * run_var[ch] + k * unbias * var);
    }
}

// Eval mode: the running statistics as mean and invstd.
extern "C" __global__ void bn_running_stats(const float* run_mean, const float* run_var, float eps, int c,
                                            double* mean, double* invstd) {
    FOR_EACH(ch, c) {
        mean[ch] = run_mean[ch];
        invstd[ch] = 1.0 / sqrt((double)run_var[ch] + (double)eps);
    }
}

// y = x * a + b with a = invstd * gamma, b = beta - mean * a, in double, rounded once; with relu,
// max(y, 0) in the same pass (NaN stays NaN).
extern "C" __global__ void bn_normalize(const float* x, float* y, const double* mean, const double* invstd,
                                        const float* gamma, const float* beta, int c, int hw, int total, int relu) {
    FOR_EACH(i, total) {
        int ch = (i / hw) % c;
        double a = invstd[ch] * (double)gamma[ch];
        double b = (double)beta[ch] - mean[ch] * a;
        float v = (float)((double)x[i] * a + b);
        y[i] = relu && v < 0.f ? 0.f : v;
    }
}

// Per channel: sg = sum gy, sgx = invstd * sum gy * (x - mean); gamma's and beta's gradients.
extern "C" __global__ void bn_bwd_sums(const float* x, const float* gy, const double* mean, const double* invstd,
                                       int n, int c, int hw, double* sg, double* sgx, float* dgamma, float* dbeta) {
    int ch = blockIdx.x, m = n * hw;
    double a = 0.0, b = 0.0, mu = mean[ch];
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
        double g = at(gy, c, hw, ch, i);
        a += g;
        b += g * ((double)at(x, c, hw, ch, i) - mu);
    }
    a = block_sum(a);
    b = block_sum(b) * invstd[ch];
    if (threadIdx.x == 0) {
        sg[ch] = a;
        sgx[ch] = b;
        dgamma[ch] = (float)b;
        dbeta[ch] = (float)a;
    }
}

// The input gradient in f32, with the CPU's operation order. Train mode (batch statistics):
// k * (gy - sg/m - (x - mean) * invstd * sgx/m); eval mode: k * gy, with k = gamma * invstd.
extern "C" __global__ void bn_bwd_data(const float* x, const float* gy, float* gx, const double* mean,
                                       const double* invstd, const float* gamma, const double* sg, const double* sgx,
                                       int train, int c, int hw, int total, int m) {
    FOR_EACH(i, total) {
        int ch = (i / hw) % c;
        float k = (float)((double)gamma[ch] * invstd[ch]);
        if (train) {
            float mu = (float)mean[ch], inv = (float)invstd[ch];
            float mg = (float)(sg[ch] / m), mgx = (float)(sgx[ch] / m);
            gx[i] = k * (gy[i] - mg - (x[i] - mu) * inv * mgx);
        } else {
            gx[i] = k * gy[i];
        }
    }
}
