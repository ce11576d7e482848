// 2-d batch normalisation, the twin of src/ops/batchnorm.rs: statistics and sums per channel in
// double (two passes like the CPU, each on a channel x slice grid), the output rounded once from
// double.
#include "common.cuh"

// Per-channel sums on a channel x slice grid (blockIdx.y the channel, blockIdx.x a slice of `per`
// images), each block's sum to partial[ch * gridDim.x + slice]; bn_combine adds a channel's
// slices in slice order, so the result does not depend on timing. f(offset, ch) is called for this
// thread's share of the slice's values of the channel, the walk advancing without a division.
template <class F>
__device__ inline void slice_walk(int n, int c, int hw, int per, F f) {
    int ch = blockIdx.y, k0 = blockIdx.x * per, k1 = k0 + per < n ? k0 + per : n;
    int count = (k1 - k0) * hw, step_k = blockDim.x / hw, step_j = blockDim.x % hw;
    int k = k0 + threadIdx.x / hw, j = threadIdx.x % hw;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        f(((long long)k * c + ch) * hw + j, ch);
        k += step_k, j += step_j;
        if (j >= hw) j -= hw, k++;
    }
}

// The batch statistics' two passes (src/ops/batchnorm.rs, batch_stats): with squares == 0 the sum
// of x, else the sum of (x - sum[ch] / count)^2, sum and count being every rank's.
extern "C" __global__ void bn_slice_sums(const float* x, int n, int c, int hw, int per, int squares,
                                         const double* sum, double count, double* partial) {
    double acc = 0.0;
    slice_walk(n, c, hw, per, [&](long long i, int ch) {
        double d = squares ? x[i] - sum[ch] / count : x[i];
        acc += squares ? d * d : d;
    });
    acc = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.y * gridDim.x + blockIdx.x] = acc;
}

extern "C" __global__ void bn_combine(const double* partial, int slices, int c, double* out) {
    FOR_EACH(ch, c) {
        double s = 0.0;
        for (int i = 0; i < slices; i++) s += partial[ch * slices + i];
        out[ch] = s;
    }
}

// Mean, invstd (for eps) and the running statistics from the sums of x and of its squared
// deviations over `count` values (biased variance for normalising, unbiased for the running
// variance, as PyTorch).
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
    for_each_channel(total, c, hw, [&](int i, int ch) {
        double a = invstd[ch] * (double)gamma[ch];
        double b = (double)beta[ch] - mean[ch] * a;
        float v = (float)((double)x[i] * a + b);
        y[i] = relu && v < 0.f ? 0.f : v;
    });
}

// Per channel: sg = sum gy and sgx = invstd * sum gy * (x - mean), on the channel x slice grid of
// bn_slice_sums (partials of sum gy * (x - mean), then bn_bwd_combine); gamma's and beta's
// gradients from them.
extern "C" __global__ void bn_bwd_slice_sums(const float* x, const float* gy, const double* mean, int n, int c,
                                             int hw, int per, double* partial_g, double* partial_gx) {
    double a = 0.0, b = 0.0;
    slice_walk(n, c, hw, per, [&](long long i, int ch) {
        double g = gy[i];
        a += g;
        b += g * ((double)x[i] - mean[ch]);
    });
    a = block_sum(a);
    b = block_sum(b);
    if (threadIdx.x == 0) {
        partial_g[blockIdx.y * gridDim.x + blockIdx.x] = a;
        partial_gx[blockIdx.y * gridDim.x + blockIdx.x] = b;
    }
}

extern "C" __global__ void bn_bwd_combine(const double* partial_g, const double* partial_gx, int slices, int c,
                                          const double* invstd, double* sg, double* sgx, float* dgamma,
                                          float* dbeta) {
    FOR_EACH(ch, c) {
        double a = 0.0, b = 0.0;
        for (int i = 0; i < slices; i++) a += partial_g[ch * slices + i], b += partial_gx[ch * slices + i];
        b *= invstd[ch];
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
    for_each_channel(total, c, hw, [&](int i, int ch) {
        float k = (float)((double)gamma[ch] * invstd[ch]);
        if (train) {
            float mu = (float)mean[ch], inv = (float)invstd[ch];
            float mg = (float)(sg[ch] / m), mgx = (float)(sgx[ch] / m);
            gx[i] = k * (gy[i] - mg - (x[i] - mu) * inv * mgx);
        } else {
            gx[i] = k * gy[i];
        }
    });
}
