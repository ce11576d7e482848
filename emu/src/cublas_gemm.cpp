// cublasSgemm_v2: C = alpha op(A) op(B) + beta C, column-major, as the cuBLAS documentation has it.
//
// Numerics: every product of two floats is exact in double; each C element sums its k products
// in double, in increasing l, then alpha and beta are applied in double and the result rounded
// once to float. The order is fixed, so results are reproducible run to run.
#include <algorithm>
#include <vector>

#include "blas_dnn.h"

namespace {

// Elements a column-major rows x cols matrix with leading dimension ld spans.
size_t extent(int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0) return 0;
    return static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows);
}

bool valid_op(int op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

template <bool TF32>
float operand(float v) {
    return TF32 ? tf32(v) : v;
}

template <bool TF32>
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const float* A, int lda, const float* B, int ldb,
          double beta, float* C, int ldc) {
    const bool reads = alpha != 0.0 && k > 0;
    std::vector<double> acc(m);
    std::vector<float> bcol(reads ? k : 0);
    for (int j = 0; j < n; ++j) {
        std::fill(acc.begin(), acc.end(), 0.0);
        if (reads) {
            // column j of op(B), contiguous
            for (int l = 0; l < k; ++l)
                bcol[l] = operand<TF32>(tb ? B[j + static_cast<size_t>(l) * ldb] : B[l + static_cast<size_t>(j) * ldb]);
            if (!ta) {
                // op(A) = A: axpy down each column of A, the innermost loop contiguous
                for (int l = 0; l < k; ++l) {
                    const float* a = A + static_cast<size_t>(l) * lda;
                    const double b = bcol[l];
                    for (int i = 0; i < m; ++i) acc[i] += static_cast<double>(operand<TF32>(a[i])) * b;
                }
            } else {
                // op(A) = Aᵀ: row i of op(A) is column i of A, a contiguous dot product
                for (int i = 0; i < m; ++i) {
                    const float* a = A + static_cast<size_t>(i) * lda;
                    double s = 0.0;
                    for (int l = 0; l < k; ++l) s += static_cast<double>(operand<TF32>(a[l])) * bcol[l];
                    acc[i] = s;
                }
            }
        }
        float* c = C + static_cast<size_t>(j) * ldc;
        for (int i = 0; i < m; ++i) c[i] = blend(alpha, acc[i], beta, &c[i]);
    }
}

}  // namespace

EMU_API int cublasSgemm_v2(cublasContext* handle, int transa, int transb, int m, int n, int k, const float* alpha,
                           const float* A, int lda, const float* B, int ldb, const float* beta, float* C, int ldc) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    if (lda < std::max(1, arows) || ldb < std::max(1, brows) || ldc < std::max(1, m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
    const double al = *alpha, be = *beta;
    // the reference BLAS's quick return: nothing to compute and C unchanged
    if (m == 0 || n == 0 || ((al == 0.0 || k == 0) && be == 1.0)) return CUBLAS_STATUS_SUCCESS;
    need_range("cublasSgemm_v2", "C", C, extent(m, n, ldc) * sizeof(float));
    if (al != 0.0 && k > 0) {
        need_range("cublasSgemm_v2", "A", A, extent(arows, acols, lda) * sizeof(float));
        need_range("cublasSgemm_v2", "B", B, extent(brows, bcols, ldb) * sizeof(float));
    }
    const bool use_tf32 = (handle->math & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION) ==
                              CUBLAS_TF32_TENSOR_OP_MATH &&
                          !tf32_overridden_off();
    if (use_tf32)
        gemm<true>(ta, tb, m, n, k, al, A, lda, B, ldb, be, C, ldc);
    else
        gemm<false>(ta, tb, m, n, k, al, A, lda, B, ldb, be, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}
