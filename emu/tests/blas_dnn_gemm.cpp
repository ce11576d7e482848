// cublasSgemm_v2 against a double-precision reference: every transpose pair, leading dimensions
// larger than the rows, alpha/beta blending, beta = 0 over NaN, k = 0, TF32 mode, error codes.
// With the argument "oob" it makes a call whose C runs past its allocation, which must abort.
#include <string>

#include "../src/blas_dnn.h"
#include "blas_dnn_common.h"

extern "C" {
int cublasCreate_v2(cublasContext**);
int cublasDestroy_v2(cublasContext*);
int cublasSetStream_v2(cublasContext*, void*);
int cublasGetVersion_v2(cublasContext*, int*);
int cublasSetMathMode(cublasContext*, int);
int cublasSgemm_v2(cublasContext*, int, int, int, int, int, const float*, const float*, int, const float*, int,
                   const float*, float*, int);
}

namespace {

struct Case {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float alpha, beta;
};

// C = alpha op(A) op(B) + beta C in double, straight from the definition.
void reference(const Case& c, const std::vector<float>& A, const std::vector<float>& B, const std::vector<float>& C,
               bool tf32, std::vector<double>& ref, std::vector<double>& mag) {
    auto rd = [&](float v) { return tf32 ? test::tf32_ref(v) : double(v); };
    ref.assign(C.size(), 0.0);
    mag.assign(C.size(), 0.0);
    for (size_t i = 0; i < C.size(); ++i) ref[i] = C[i];  // untouched padding rows stay as they were
    for (int j = 0; j < c.n; ++j)
        for (int i = 0; i < c.m; ++i) {
            double s = 0, a = 0;
            for (int l = 0; l < c.k; ++l) {
                const double av = rd(c.ta ? A[l + size_t(i) * c.lda] : A[i + size_t(l) * c.lda]);
                const double bv = rd(c.tb ? B[j + size_t(l) * c.ldb] : B[l + size_t(j) * c.ldb]);
                s += av * bv;
                a += std::fabs(av * bv);
            }
            const size_t at = i + size_t(j) * c.ldc;
            const double old = c.beta == 0 ? 0.0 : c.beta * double(C[at]);
            ref[at] = c.alpha * s + old;
            mag[at] = std::fabs(c.alpha) * a + std::fabs(old);
        }
}

void run(cublasContext* h, const Case& c, bool tf32, const char* what) {
    const int arows = c.ta ? c.k : c.m, acols = c.ta ? c.m : c.k;
    const int brows = c.tb ? c.n : c.k, bcols = c.tb ? c.k : c.n;
    (void)arows, (void)brows;
    auto A = test::randoms(size_t(c.lda) * std::max(acols, 1), 1);
    auto B = test::randoms(size_t(c.ldb) * std::max(bcols, 1), 2);
    auto C = test::randoms(size_t(c.ldc) * c.n, 3);
    if (c.beta == 0)
        for (auto& v : C) v = NAN;  // beta = 0 must not read C
    std::vector<double> ref, mag;
    reference(c, A, B, C, tf32, ref, mag);
    if (c.beta == 0)  // rows past m are padding: left alone, NaN included
        for (int j = 0; j < c.n; ++j)
            for (int i = c.m; i < c.ldc; ++i) ref[i + size_t(j) * c.ldc] = 0, mag[i + size_t(j) * c.ldc] = 0;
    float *dA = test::dev_copy(A), *dB = test::dev_copy(B), *dC = test::dev_copy(C);
    test::expect_status(cublasSgemm_v2(h, c.ta, c.tb, c.m, c.n, c.k, &c.alpha, dA, c.lda, dB, c.ldb, &c.beta, dC,
                                       c.ldc),
                        CUBLAS_STATUS_SUCCESS, what);
    if (c.beta == 0)
        for (int j = 0; j < c.n; ++j)
            for (int i = c.m; i < c.ldc; ++i) {
                test::expect(std::isnan(dC[i + size_t(j) * c.ldc]), "padding rows of C untouched");
                dC[i + size_t(j) * c.ldc] = 0;
            }
    test::expect_close(dC, ref, mag, what);
}

}  // namespace

int main(int argc, char** argv) {
    cublasContext* h = nullptr;
    test::expect_status(cublasCreate_v2(&h), CUBLAS_STATUS_SUCCESS, "create");
    test::expect_status(cublasSetStream_v2(h, nullptr), CUBLAS_STATUS_SUCCESS, "set stream");
    int version = 0;
    test::expect_status(cublasGetVersion_v2(h, &version), CUBLAS_STATUS_SUCCESS, "version");
    test::expect(version >= 130000, "version is 13.x");

    if (argc > 1 && std::string(argv[1]) == "oob") {
        // C is 4x4 with ldc 4 but only 15 floats are allocated: must abort
        float* A = test::dev(16);
        float* B = test::dev(16);
        float* C = test::dev(15);
        const float one = 1, zero = 0;
        cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, A, 4, B, 4, &zero, C, 4);
        std::fprintf(stderr, "oob call returned\n");
        return 0;
    }

    // every transpose pair, odd sizes, lda/ldb/ldc past the rows
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            const int m = 13, n = 7, k = 19;
            const Case c{ta, tb, m, n, k, (ta ? k : m) + 3, (tb ? n : k) + 2, m + 5, 1.0f, 0.0f};
            std::string what = "sgemm " + std::string(ta ? "T" : "N") + (tb ? "T" : "N");
            run(h, c, false, what.c_str());
            Case blended = c;
            blended.alpha = -0.75f, blended.beta = 1.5f;
            run(h, blended, false, (what + " alpha/beta").c_str());
        }
    // mmard's three calls (linear forward, dx, dW) at a WideResNet head's size
    run(h, Case{1, 0, 10, 8, 640, 640, 640, 10, 1.0f, 1.0f}, false, "linear forward (T,N, beta 1)");
    run(h, Case{0, 0, 640, 8, 10, 640, 10, 640, 1.0f, 0.0f}, false, "linear dx (N,N)");
    run(h, Case{0, 1, 640, 10, 8, 640, 10, 640, 1.0f, 0.0f}, false, "linear dW (N,T)");
    // k = 0: C = beta C, so zeros for beta = 0 even over NaN
    run(h, Case{0, 1, 5, 4, 0, 5, 4, 5, 1.0f, 0.0f}, false, "k = 0, beta 0");
    run(h, Case{0, 0, 5, 4, 0, 5, 1, 5, 1.0f, 0.5f}, false, "k = 0, beta 0.5");
    run(h, Case{0, 0, 6, 3, 4, 6, 4, 6, 0.0f, 2.0f}, false, "alpha = 0");

    // TF32 math mode rounds both operands to 10 mantissa bits
    test::expect_status(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS, "tf32 mode");
    run(h, Case{1, 0, 9, 5, 33, 33, 33, 9, 1.0f, 0.0f}, true, "tf32 sgemm");
    test::expect_status(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS, "default mode");
    test::expect_status(cublasSetMathMode(h, 77), CUBLAS_STATUS_INVALID_VALUE, "bad math mode");

    // invalid arguments
    {
        float* A = test::dev(64);
        float* B = test::dev(64);
        float* C = test::dev(64);
        const float one = 1, zero = 0;
        test::expect_status(cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, A, 3, B, 4, &zero, C, 4),
                            CUBLAS_STATUS_INVALID_VALUE, "lda < m");
        test::expect_status(cublasSgemm_v2(h, CUBLAS_OP_T, CUBLAS_OP_N, 4, 4, 6, &one, A, 4, B, 6, &zero, C, 4),
                            CUBLAS_STATUS_INVALID_VALUE, "lda < k for op T");
        test::expect_status(cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_T, 4, 5, 4, &one, A, 4, B, 4, &zero, C, 4),
                            CUBLAS_STATUS_INVALID_VALUE, "ldb < n for op T");
        test::expect_status(cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, A, 4, B, 4, &zero, C, 3),
                            CUBLAS_STATUS_INVALID_VALUE, "ldc < m");
        test::expect_status(cublasSgemm_v2(h, 9, CUBLAS_OP_N, 4, 4, 4, &one, A, 4, B, 4, &zero, C, 4),
                            CUBLAS_STATUS_INVALID_VALUE, "bad op");
        test::expect_status(cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, -1, 4, 4, &one, A, 4, B, 4, &zero, C, 4),
                            CUBLAS_STATUS_INVALID_VALUE, "negative m");
        test::expect_status(cublasSgemm_v2(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, A, 4, B, 4, &zero, C, 4),
                            CUBLAS_STATUS_NOT_INITIALIZED, "null handle");
    }
    test::expect_status(cublasDestroy_v2(h), CUBLAS_STATUS_SUCCESS, "destroy");
    return test::finish("blas_dnn_gemm");
}
