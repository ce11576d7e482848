// cuDNN stand-in: convolution checks, algorithm queries, workspace sizes and the three launches.
//
// Every supported algorithm runs the same direct loops (cudnn_conv_loops.cpp); the ones cuDNN only
// offers for narrow cases (FFT, Winograd, DIRECT) answer NOT_SUPPORTED so that a caller that
// takes a listed algorithm without checking its status fails here as it could on a GPU.
// The workspace each needs is real: the loops accumulate in it, so a caller that passes less than
// it asked for gets CUDNN_STATUS_BAD_PARAM.
#include <algorithm>
#include <string>
#include <vector>

#include "blas_dnn.h"

size_t tensor_extent(int nb, const int* dim, const long* stride) {
    size_t last = 0;
    for (int i = 0; i < nb; ++i) {
        if (dim[i] <= 0) return 0;
        last += static_cast<size_t>(dim[i] - 1) * static_cast<size_t>(stride[i]);
    }
    return last + 1;
}

int resolve_conv(const cudnnTensorStruct* x, const cudnnFilterStruct* w, const cudnnConvolutionStruct* cv,
                 const cudnnTensorStruct* y, ConvProblem* p) {
    if (!x || x->magic != TENSOR_MAGIC || !y || y->magic != TENSOR_MAGIC || !w || w->magic != FILTER_MAGIC || !cv ||
        cv->magic != CONV_MAGIC)
        return CUDNN_STATUS_BAD_PARAM;
    if (!x->set || !y->set || !w->set || !cv->set) return CUDNN_STATUS_BAD_PARAM;
    if (x->nb != y->nb || x->nb != w->nb || cv->nb + 2 != x->nb) return CUDNN_STATUS_BAD_PARAM;
    if (x->dtype != w->dtype || x->dtype != y->dtype) return CUDNN_STATUS_BAD_PARAM;
    if (x->nb != 4) return CUDNN_STATUS_NOT_SUPPORTED;  // only 2-d convolutions are emulated
    if (x->dtype != CUDNN_DATA_FLOAT || cv->compute != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
    if (w->format == CUDNN_TENSOR_NCHW_VECT_C) return CUDNN_STATUS_NOT_SUPPORTED;
    ConvProblem q{};
    q.N = x->dim[0], q.C = x->dim[1], q.H = x->dim[2], q.W = x->dim[3];
    q.K = w->dim[0], q.Cg = w->dim[1], q.R = w->dim[2], q.S = w->dim[3];
    const int G = cv->groups;
    if (q.C != q.Cg * G || q.K % G) return CUDNN_STATUS_BAD_PARAM;
    q.Kg = q.K / G;
    if (y->dim[0] != q.N || y->dim[1] != q.K) return CUDNN_STATUS_BAD_PARAM;
    q.ph = cv->pad[0], q.pw = cv->pad[1], q.sh = cv->stride[0], q.sw = cv->stride[1];
    q.dh = cv->dil[0], q.dw = cv->dil[1];
    const int span_h = (q.R - 1) * q.dh + 1, span_w = (q.S - 1) * q.dw + 1;
    if (span_h > q.H + 2 * q.ph || span_w > q.W + 2 * q.pw) return CUDNN_STATUS_BAD_PARAM;
    q.OH = 1 + (q.H + 2 * q.ph - span_h) / q.sh;
    q.OW = 1 + (q.W + 2 * q.pw - span_w) / q.sw;
    if (y->dim[2] != q.OH || y->dim[3] != q.OW) return CUDNN_STATUS_NOT_SUPPORTED;
    q.flip = cv->mode == CUDNN_CONVOLUTION;
    // cuDNN may use TF32 tensor cores for fp32 unless the math type is FMA; the emulator always
    // does then, the least precise of what a GPU may give
    q.tf32 = cv->math != CUDNN_FMA_MATH && !tf32_overridden_off();
    for (int i = 0; i < 4; ++i) q.xs[i] = x->stride[i], q.ys[i] = y->stride[i];
    const long R = q.R, S = q.S, Cg = q.Cg;
    if (w->format == CUDNN_TENSOR_NCHW) {
        q.fs[0] = Cg * R * S, q.fs[1] = R * S, q.fs[2] = S, q.fs[3] = 1;
    } else {  // NHWC: KRSC
        q.fs[0] = R * S * Cg, q.fs[1] = 1, q.fs[2] = S * Cg, q.fs[3] = Cg;
    }
    *p = q;
    return CUDNN_STATUS_SUCCESS;
}

namespace {

enum class Dir { Fwd, BwdData, BwdFilter };

// The algorithms each direction runs, reported fastest first: as a GPU often measures them, the
// backward passes' atomics-based, non-deterministic algorithm 0 ahead, so a caller that must be
// deterministic has to filter on the flag.
constexpr int FWD_RUNS[] = {0 /*IMPLICIT_GEMM*/, 1 /*IMPLICIT_PRECOMP_GEMM*/, 2 /*GEMM*/};
constexpr int BWD_DATA_RUNS[] = {0 /*ALGO_0*/, 1 /*ALGO_1*/};
constexpr int BWD_FILTER_RUNS[] = {0 /*ALGO_0*/, 1 /*ALGO_1*/, 3 /*ALGO_3*/};

struct DirInfo {
    const char* launch;  // the launch's name, for range-check messages
    int count;
    const int* runs;
    int nruns;
    const char* names[3];  // first input, second input, output
};

DirInfo info(Dir d) {
    switch (d) {
        case Dir::Fwd:
            return {"cudnnConvolutionForward", FWD_ALGO_COUNT, FWD_RUNS, 3, {"x", "w", "y"}};
        case Dir::BwdData:
            return {"cudnnConvolutionBackwardData", BWD_DATA_ALGO_COUNT, BWD_DATA_RUNS, 2, {"dy", "w", "dx"}};
        default:
            return {"cudnnConvolutionBackwardFilter", BWD_FILTER_ALGO_COUNT, BWD_FILTER_RUNS, 3, {"x", "dy", "dw"}};
    }
}

int algo_status(Dir d, int algo) {
    const DirInfo in = info(d);
    if (algo < 0 || algo >= in.count) return CUDNN_STATUS_BAD_PARAM;
    return std::count(in.runs, in.runs + in.nruns, algo) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_NOT_SUPPORTED;
}

// The double accumulators the loops keep: one output plane, one input plane, one output row per
// filter tap.
size_t workspace_bytes(Dir d, const ConvProblem& p) {
    const size_t n = d == Dir::Fwd ? static_cast<size_t>(p.OH) * p.OW
                   : d == Dir::BwdData ? static_cast<size_t>(p.H) * p.W
                                       : static_cast<size_t>(p.R) * p.S * p.OW;
    return n * sizeof(double);
}

// Algorithm 0 of both backward passes accumulates with atomics on a GPU; the flag says so even
// though the emulator's order is fixed, so callers that filter on it choose as they would there.
int determinism(Dir d, int algo) {
    return d != Dir::Fwd && algo == 0 ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
}

// Fills perf results: the runnable algorithms first (status `run_status`), then the rest.
int list_algos(Dir d, const ConvProblem& p, int math, int requested, int* returned, AlgoPerf* perf,
               int run_status) {
    if (requested <= 0 || !returned || !perf) return CUDNN_STATUS_BAD_PARAM;
    const DirInfo in = info(d);
    std::vector<int> order(in.runs, in.runs + in.nruns);
    for (int a = 0; a < in.count; ++a)
        if (!std::count(in.runs, in.runs + in.nruns, a)) order.push_back(a);
    const int n = std::min(requested, in.count);
    for (int i = 0; i < n; ++i) {
        const bool runs = i < in.nruns;
        perf[i] = AlgoPerf{order[i],
                           runs ? run_status : CUDNN_STATUS_NOT_SUPPORTED,
                           runs ? 0.0f : -1.0f,
                           runs ? workspace_bytes(d, p) : 0,
                           determinism(d, order[i]),
                           math,
                           {0, 0, 0}};
    }
    *returned = n;
    return CUDNN_STATUS_SUCCESS;
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// The operand as the loops should read it: itself, or a TF32-rounded copy of its extent.
const float* operand(const float* p, size_t elems, bool round, std::vector<float>& copy) {
    if (!round) return p;
    copy.resize(elems);
    std::transform(p, p + elems, copy.begin(), tf32);
    return copy.data();
}

// Whether MMARD_EMU_CUDNN_FAIL lists this direction's algorithm (`forward:0,data:1,filter:0`): its
// launches then fail as an algorithm can on a GPU after measuring well, so callers' fallbacks run.
bool refused(Dir d, int algo) {
    const char* v = std::getenv("MMARD_EMU_CUDNN_FAIL");
    if (!v) return false;
    const std::string want = std::string(d == Dir::Fwd ? "forward" : d == Dir::BwdData ? "data" : "filter") + ":" +
                             std::to_string(algo);
    const std::string list = std::string(",") + v + ",";
    return list.find("," + want + ",") != std::string::npos;
}

// One checked launch of direction d; `call` names it in range-check messages.
int launch(Dir d, const char* call, cudnnContext* h, const void* alpha, const void* beta,
           const cudnnTensorStruct* xD, const cudnnFilterStruct* wD, const cudnnConvolutionStruct* cD,
           const cudnnTensorStruct* yD, const void* a, const void* b, void* out, int algo, void* ws, size_t ws_size) {
    if (!h || h->magic != CUDNN_MAGIC) return CUDNN_STATUS_BAD_PARAM;
    ConvProblem p;
    if (int st = resolve_conv(xD, wD, cD, yD, &p)) return st;
    if (!alpha || !beta || !a || !b || !out) return CUDNN_STATUS_BAD_PARAM;
    if (int st = algo_status(d, algo)) return st;
    if (refused(d, algo)) return CUDNN_STATUS_EXECUTION_FAILED;
    const size_t need = workspace_bytes(d, p);
    if (ws_size < need || !ws) return CUDNN_STATUS_BAD_PARAM;
    if (!aligned(a, 4) || !aligned(b, 4) || !aligned(out, 4) || !aligned(ws, alignof(double)))
        return CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER;

    const int xd[4] = {p.N, p.C, p.H, p.W}, yd[4] = {p.N, p.K, p.OH, p.OW}, wd[4] = {p.K, p.Cg, p.R, p.S};
    const size_t xe = tensor_extent(4, xd, p.xs), ye = tensor_extent(4, yd, p.ys), we = tensor_extent(4, wd, p.fs);
    // extents of (first input, second input, output) in this direction
    const size_t ext[3] = {d == Dir::BwdData ? ye : xe, d == Dir::BwdFilter ? ye : we,
                           d == Dir::Fwd ? ye : d == Dir::BwdData ? xe : we};
    const DirInfo in = info(d);
    need_range(call, in.names[0], a, ext[0] * sizeof(float));
    need_range(call, in.names[1], b, ext[1] * sizeof(float));
    need_range(call, in.names[2], out, ext[2] * sizeof(float));
    need_range(call, "workSpace", ws, ws_size);

    std::vector<float> ca, cb;
    const float* fa = operand(static_cast<const float*>(a), ext[0], p.tf32, ca);
    const float* fb = operand(static_cast<const float*>(b), ext[1], p.tf32, cb);
    const double al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    float* o = static_cast<float*>(out);
    double* acc = static_cast<double*>(ws);
    switch (d) {
        case Dir::Fwd: conv_forward(p, al, fa, fb, be, o, acc); break;
        case Dir::BwdData: conv_backward_data(p, al, fa, fb, be, o, acc); break;
        case Dir::BwdFilter: conv_backward_filter(p, al, fa, fb, be, o, acc); break;
    }
    return CUDNN_STATUS_SUCCESS;
}

// Find*Ex: runs the preferred algorithm once into the caller's output (all runnable ones give the
// same result) and reports every algorithm; a workspace too small marks them ALLOC_FAILED.
int find_ex(Dir d, const char* call, cudnnContext* h, const cudnnTensorStruct* xD, const cudnnFilterStruct* wD,
            const cudnnConvolutionStruct* cD, const cudnnTensorStruct* yD, const void* a, const void* b, void* out,
            int requested, int* returned, AlgoPerf* perf, void* ws, size_t ws_size) {
    if (!h || h->magic != CUDNN_MAGIC || requested <= 0 || !returned || !perf) return CUDNN_STATUS_BAD_PARAM;
    ConvProblem p;
    if (int st = resolve_conv(xD, wD, cD, yD, &p)) return st;
    const bool fits = ws && ws_size >= workspace_bytes(d, p);
    if (fits) {
        const float one = 1.0f, zero = 0.0f;
        if (int st = launch(d, call, h, &one, &zero, xD, wD, cD, yD, a, b, out, info(d).runs[0], ws, ws_size))
            return st;
    }
    return list_algos(d, p, cD->math, requested, returned, perf,
                      fits ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED);
}

// The algorithm queries share one shape: resolve, then list.
int query(Dir d, cudnnContext* h, const cudnnTensorStruct* xD, const cudnnFilterStruct* wD,
          const cudnnConvolutionStruct* cD, const cudnnTensorStruct* yD, int requested, int* returned,
          AlgoPerf* perf) {
    if (!h || h->magic != CUDNN_MAGIC) return CUDNN_STATUS_BAD_PARAM;
    ConvProblem p;
    if (int st = resolve_conv(xD, wD, cD, yD, &p)) return st;
    return list_algos(d, p, cD->math, requested, returned, perf, CUDNN_STATUS_SUCCESS);
}

int workspace_size(Dir d, cudnnContext* h, const cudnnTensorStruct* xD, const cudnnFilterStruct* wD,
                   const cudnnConvolutionStruct* cD, const cudnnTensorStruct* yD, int algo, size_t* bytes) {
    if (!h || h->magic != CUDNN_MAGIC || !bytes) return CUDNN_STATUS_BAD_PARAM;
    ConvProblem p;
    if (int st = resolve_conv(xD, wD, cD, yD, &p)) return st;
    if (int st = algo_status(d, algo)) return st;
    *bytes = workspace_bytes(d, p);
    return CUDNN_STATUS_SUCCESS;
}

int max_count(cudnnContext* h, int* count, int n) {
    if (!h || h->magic != CUDNN_MAGIC || !count) return CUDNN_STATUS_BAD_PARAM;
    *count = n;
    return CUDNN_STATUS_SUCCESS;
}

using Tensor = cudnnTensorStruct*;
using Filter = cudnnFilterStruct*;
using Conv = cudnnConvolutionStruct*;

}  // namespace

// ---- forward ---------------------------------------------------------------------------------

EMU_API int cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnContext* h, int* count) {
    return max_count(h, count, FWD_ALGO_COUNT);
}

EMU_API int cudnnGetConvolutionForwardAlgorithm_v7(cudnnContext* h, Tensor x, Filter w, Conv c, Tensor y,
                                                   int requested, int* returned, AlgoPerf* perf) {
    return query(Dir::Fwd, h, x, w, c, y, requested, returned, perf);
}

EMU_API int cudnnFindConvolutionForwardAlgorithm(cudnnContext* h, Tensor x, Filter w, Conv c, Tensor y,
                                                 int requested, int* returned, AlgoPerf* perf) {
    return query(Dir::Fwd, h, x, w, c, y, requested, returned, perf);
}

EMU_API int cudnnFindConvolutionForwardAlgorithmEx(cudnnContext* h, Tensor xD, const void* x, Filter wD,
                                                   const void* w, Conv c, Tensor yD, void* y, int requested,
                                                   int* returned, AlgoPerf* perf, void* ws, size_t ws_size) {
    return find_ex(Dir::Fwd, "cudnnFindConvolutionForwardAlgorithmEx", h, xD, wD, c, yD, x, w, y, requested,
                   returned, perf, ws, ws_size);
}

EMU_API int cudnnGetConvolutionForwardWorkspaceSize(cudnnContext* h, Tensor x, Filter w, Conv c, Tensor y, int algo,
                                                    size_t* bytes) {
    return workspace_size(Dir::Fwd, h, x, w, c, y, algo, bytes);
}

EMU_API int cudnnConvolutionForward(cudnnContext* h, const void* alpha, Tensor xD, const void* x, Filter wD,
                                    const void* w, Conv c, int algo, void* ws, size_t ws_size, const void* beta,
                                    Tensor yD, void* y) {
    return launch(Dir::Fwd, "cudnnConvolutionForward", h, alpha, beta, xD, wD, c, yD, x, w, y, algo, ws, ws_size);
}

// ---- backward data ---------------------------------------------------------------------------

EMU_API int cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnContext* h, int* count) {
    return max_count(h, count, BWD_DATA_ALGO_COUNT);
}

EMU_API int cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnContext* h, Filter w, Tensor dy, Conv c, Tensor dx,
                                                        int requested, int* returned, AlgoPerf* perf) {
    return query(Dir::BwdData, h, dx, w, c, dy, requested, returned, perf);
}

EMU_API int cudnnFindConvolutionBackwardDataAlgorithm(cudnnContext* h, Filter w, Tensor dy, Conv c, Tensor dx,
                                                      int requested, int* returned, AlgoPerf* perf) {
    return query(Dir::BwdData, h, dx, w, c, dy, requested, returned, perf);
}

EMU_API int cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnContext* h, Filter wD, const void* w, Tensor dyD,
                                                        const void* dy, Conv c, Tensor dxD, void* dx, int requested,
                                                        int* returned, AlgoPerf* perf, void* ws, size_t ws_size) {
    return find_ex(Dir::BwdData, "cudnnFindConvolutionBackwardDataAlgorithmEx", h, dxD, wD, c, dyD, dy, w, dx,
                   requested, returned, perf, ws, ws_size);
}

EMU_API int cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnContext* h, Filter w, Tensor dy, Conv c, Tensor dx,
                                                         int algo, size_t* bytes) {
    return workspace_size(Dir::BwdData, h, dx, w, c, dy, algo, bytes);
}

EMU_API int cudnnConvolutionBackwardData(cudnnContext* h, const void* alpha, Filter wD, const void* w, Tensor dyD,
                                         const void* dy, Conv c, int algo, void* ws, size_t ws_size, const void* beta,
                                         Tensor dxD, void* dx) {
    return launch(Dir::BwdData, "cudnnConvolutionBackwardData", h, alpha, beta, dxD, wD, c, dyD, dy, w, dx, algo, ws,
                  ws_size);
}

// ---- backward filter -------------------------------------------------------------------------

EMU_API int cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnContext* h, int* count) {
    return max_count(h, count, BWD_FILTER_ALGO_COUNT);
}

EMU_API int cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnContext* h, Tensor x, Tensor dy, Conv c, Filter dw,
                                                          int requested, int* returned, AlgoPerf* perf) {
    return query(Dir::BwdFilter, h, x, dw, c, dy, requested, returned, perf);
}

EMU_API int cudnnFindConvolutionBackwardFilterAlgorithm(cudnnContext* h, Tensor x, Tensor dy, Conv c, Filter dw,
                                                        int requested, int* returned, AlgoPerf* perf) {
    return query(Dir::BwdFilter, h, x, dw, c, dy, requested, returned, perf);
}

EMU_API int cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnContext* h, Tensor xD, const void* x, Tensor dyD,
                                                          const void* dy, Conv c, Filter dwD, void* dw,
                                                          int requested, int* returned, AlgoPerf* perf, void* ws,
                                                          size_t ws_size) {
    return find_ex(Dir::BwdFilter, "cudnnFindConvolutionBackwardFilterAlgorithmEx", h, xD, dwD, c, dyD, x, dy, dw,
                   requested, returned, perf, ws, ws_size);
}

EMU_API int cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnContext* h, Tensor x, Tensor dy, Conv c, Filter dw,
                                                           int algo, size_t* bytes) {
    return workspace_size(Dir::BwdFilter, h, x, dw, c, dy, algo, bytes);
}

EMU_API int cudnnConvolutionBackwardFilter(cudnnContext* h, const void* alpha, Tensor xD, const void* x, Tensor dyD,
                                           const void* dy, Conv c, int algo, void* ws, size_t ws_size,
                                           const void* beta, Filter dwD, void* dw) {
    return launch(Dir::BwdFilter, "cudnnConvolutionBackwardFilter", h, alpha, beta, xD, dwD, c, dyD, x, dy, dw, algo,
                  ws, ws_size);
}
