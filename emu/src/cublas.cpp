// cuBLAS stand-in: the handle, its stream and math mode, the version.
#include "blas_dnn.h"

namespace {

constexpr int CUBLAS_VERSION = 130000;  // 13.0.0, the toolkit mmard pins (cuda-13000)

bool valid_math(int mode) {
    int base = mode & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    return base == 0 || base == 1 || base == 2 || base == 3 || base == 4 || base == 8;
}

}  // namespace

bool cublas_live(const cublasContext* h) { return h && h->magic == CUBLAS_MAGIC; }

EMU_API int cublasCreate_v2(cublasContext** handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasContext{CUBLAS_MAGIC, nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}

EMU_API int cublasDestroy_v2(cublasContext* handle) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->magic = 0;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

EMU_API int cublasGetVersion_v2(cublasContext* handle, int* version) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!version) return CUBLAS_STATUS_INVALID_VALUE;
    *version = CUBLAS_VERSION;
    return CUBLAS_STATUS_SUCCESS;
}

// Work runs synchronously on the calling thread, so the stream is only remembered.
EMU_API int cublasSetStream_v2(cublasContext* handle, void* stream) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

EMU_API int cublasGetStream_v2(cublasContext* handle, void** stream) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

EMU_API int cublasSetMathMode(cublasContext* handle, int mode) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_math(mode)) return CUBLAS_STATUS_INVALID_VALUE;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

EMU_API int cublasGetMathMode(cublasContext* handle, int* mode) {
    if (!cublas_live(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math;
    return CUBLAS_STATUS_SUCCESS;
}
