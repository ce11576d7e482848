// Shared by the cuBLAS stand-in (cublas*.cpp -> libcublas.so.13) and the cuDNN stand-in
// (cudnn*.cpp -> libcudnn.so.9). Everything runs synchronously on the calling thread; device
// pointers are host addresses handed out by the libcuda stand-in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// The exported API; everything else stays out of the libraries' symbol tables.
#define EMU_API extern "C" __attribute__((visibility("default")))

// From the libcuda stand-in: 1 when [ptr, ptr+bytes) lies inside one live device allocation.
// Deliberately no fallback definition here: a weak one inside libcublas/libcudnn would win over
// libcuda's at run time (a dlopen'ed library resolves its own symbols before its dependencies'),
// silently turning every check off. The test programs define their own.
extern "C" int emu_check_range(unsigned long long ptr, size_t bytes);

#pragma GCC visibility push(hidden)

// Aborts with the message the emulator's users grep for when a device argument's extent is not
// inside a live allocation.
inline void need_range(const char* call, const char* arg, const void* p, size_t bytes) {
    if (bytes == 0) return;
    if (!emu_check_range(reinterpret_cast<uintptr_t>(p), bytes)) {
        std::fprintf(stderr, "mmard-emu: %s: %s outside a live allocation\n", call, arg);
        std::abort();
    }
}

// TensorFloat-32 as the tensor cores see an fp32 operand (cvt.rna.tf32.f32): 10 mantissa bits,
// rounded to nearest with ties away from zero; infinities and NaNs pass through.
inline float tf32(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    std::memcpy(&v, &u, 4);
    return v;
}

// NVIDIA_TF32_OVERRIDE=0 forbids TF32 in both libraries whatever the math mode says.
inline bool tf32_overridden_off() {
    const char* v = std::getenv("NVIDIA_TF32_OVERRIDE");
    return v && std::strcmp(v, "0") == 0;
}

// The result blended into an output the way both libraries document it: beta == 0 never reads
// the old value (it may be uninitialised, even NaN).
inline float blend(double alpha, double acc, double beta, const float* old) {
    return static_cast<float>(beta == 0.0 ? alpha * acc : alpha * acc + beta * static_cast<double>(*old));
}

// ---- cuBLAS ----------------------------------------------------------------------------------

enum : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
};
enum : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum : int { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3, CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION = 16 };

// Magic numbers tell a live handle or descriptor from a destroyed or foreign pointer.
constexpr uint32_t CUBLAS_MAGIC = 0xb1a5b1a5u;

struct cublasContext {
    uint32_t magic;
    void* stream;
    int math;
};

bool cublas_live(const cublasContext* h);

// ---- cuDNN -----------------------------------------------------------------------------------

// cuDNN 9's status values (they changed from cuDNN 8's small integers).
enum : int {
    CUDNN_STATUS_SUCCESS = 0,
    CUDNN_STATUS_BAD_PARAM = 2000,
    CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER = 2003,
    CUDNN_STATUS_NOT_SUPPORTED = 3000,
    // cuDNN 9 keeps the name as a deprecated alias of INTERNAL_ERROR_HOST_ALLOCATION_FAILED; the
    // Find*Ex perf results use it for a workspace that is too small.
    CUDNN_STATUS_ALLOC_FAILED = 4003,
    CUDNN_STATUS_EXECUTION_FAILED = 5000,
};
enum : int { CUDNN_DATA_FLOAT = 0, CUDNN_DATA_TYPE_LAST = 14 };
enum : int { CUDNN_TENSOR_NCHW = 0, CUDNN_TENSOR_NHWC = 1, CUDNN_TENSOR_NCHW_VECT_C = 2 };
enum : int { CUDNN_CONVOLUTION = 0, CUDNN_CROSS_CORRELATION = 1 };
enum : int { CUDNN_DEFAULT_MATH = 0, CUDNN_FMA_MATH = 3 };
enum : int { CUDNN_NON_DETERMINISTIC = 0, CUDNN_DETERMINISTIC = 1 };
enum : int { FWD_ALGO_COUNT = 8, BWD_DATA_ALGO_COUNT = 6, BWD_FILTER_ALGO_COUNT = 7 };
constexpr int CUDNN_DIM_MAX = 8;

constexpr uint32_t CUDNN_MAGIC = 0xd11d0001u, TENSOR_MAGIC = 0xd11d0002u, FILTER_MAGIC = 0xd11d0003u,
                   CONV_MAGIC = 0xd11d0004u;

struct cudnnContext {
    uint32_t magic;
    void* stream;
};

struct cudnnTensorStruct {
    uint32_t magic;
    bool set;
    int dtype, nb;
    int dim[CUDNN_DIM_MAX], stride[CUDNN_DIM_MAX];
};

struct cudnnFilterStruct {
    uint32_t magic;
    bool set;
    int dtype, format, nb;
    int dim[CUDNN_DIM_MAX];
};

struct cudnnConvolutionStruct {
    uint32_t magic;
    bool set;
    int nb;  // spatial dimensions
    int pad[CUDNN_DIM_MAX - 2], stride[CUDNN_DIM_MAX - 2], dil[CUDNN_DIM_MAX - 2];
    int mode, compute, math, groups;
};

// The layout of cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (identical for all three).
struct AlgoPerf {
    int algo, status;
    float time;
    size_t memory;
    int determinism, mathType;
    int reserved[3];
};

// A 2-d convolution resolved from its descriptors: x [N,C,H,W], w [K,C/G,R,S], y [N,K,OH,OW],
// each addressed through its own element strides (any layout the descriptors allow).
struct ConvProblem {
    int N, C, H, W, K, Cg, Kg, R, S, OH, OW;
    int ph, pw, sh, sw, dh, dw;
    bool flip;  // CUDNN_CONVOLUTION: the filter is applied rotated by 180 degrees
    bool tf32;  // operands rounded to TensorFloat-32 as tensor-core kernels do
    long xs[4], fs[4], ys[4];  // element strides of x, w, y
};

// Resolves and checks the four descriptors of a convolution (cudnn_conv.cpp).
int resolve_conv(const cudnnTensorStruct* x, const cudnnFilterStruct* w, const cudnnConvolutionStruct* cv,
                 const cudnnTensorStruct* y, ConvProblem* p);

// Elements spanned by a tensor with these dims and strides (0 for an empty one).
size_t tensor_extent(int nb, const int* dim, const long* stride);

// The three convolutions (cudnn_conv_loops.cpp). `acc` is the workspace: OH*OW doubles for the
// forward, H*W for backward-data, R*S*OW for backward-filter.
void conv_forward(const ConvProblem& p, double alpha, const float* x, const float* w, double beta, float* y,
                  double* acc);
void conv_backward_data(const ConvProblem& p, double alpha, const float* dy, const float* w, double beta, float* dx,
                        double* acc);
void conv_backward_filter(const ConvProblem& p, double alpha, const float* x, const float* dy, double beta, float* dw,
                          double* acc);

#pragma GCC visibility pop
