// The three cuDNN convolutions against a double-precision reference (stride 1/2, padding 0/1,
// dilation, groups 1/2/depthwise, 1x1 and 3x3, true convolution, NHWC layouts, TF32), alpha/beta
// blending with beta = 0 over NaN, the algorithm and workspace queries, and the error codes.
// With "oob-x" or "oob-ws" it passes an input or a workspace that runs past its allocation, which
// must abort.
#include <algorithm>
#include <string>

#include "../src/blas_dnn.h"
#include "blas_dnn_common.h"

using Tensor = cudnnTensorStruct*;
using Filter = cudnnFilterStruct*;
using Conv = cudnnConvolutionStruct*;
using Handle = cudnnContext*;

extern "C" {
int cudnnCreate(Handle*);
int cudnnDestroy(Handle);
int cudnnSetStream(Handle, void*);
size_t cudnnGetVersion();
int cudnnCreateTensorDescriptor(Tensor*);
int cudnnSetTensor4dDescriptor(Tensor, int, int, int, int, int, int);
int cudnnSetTensor4dDescriptorEx(Tensor, int, int, int, int, int, int, int, int, int);
int cudnnDestroyTensorDescriptor(Tensor);
int cudnnCreateFilterDescriptor(Filter*);
int cudnnSetFilter4dDescriptor(Filter, int, int, int, int, int, int);
int cudnnDestroyFilterDescriptor(Filter);
int cudnnCreateConvolutionDescriptor(Conv*);
int cudnnSetConvolution2dDescriptor(Conv, int, int, int, int, int, int, int, int);
int cudnnSetConvolutionGroupCount(Conv, int);
int cudnnSetConvolutionMathType(Conv, int);
int cudnnDestroyConvolutionDescriptor(Conv);
int cudnnGetConvolution2dForwardOutputDim(Conv, Tensor, Filter, int*, int*, int*, int*);
int cudnnGetConvolutionForwardAlgorithm_v7(Handle, Tensor, Filter, Conv, Tensor, int, int*, AlgoPerf*);
int cudnnGetConvolutionBackwardDataAlgorithm_v7(Handle, Filter, Tensor, Conv, Tensor, int, int*, AlgoPerf*);
int cudnnGetConvolutionBackwardFilterAlgorithm_v7(Handle, Tensor, Tensor, Conv, Filter, int, int*, AlgoPerf*);
int cudnnFindConvolutionForwardAlgorithmEx(Handle, Tensor, const void*, Filter, const void*, Conv, Tensor, void*, int,
                                           int*, AlgoPerf*, void*, size_t);
int cudnnGetConvolutionForwardWorkspaceSize(Handle, Tensor, Filter, Conv, Tensor, int, size_t*);
int cudnnGetConvolutionBackwardDataWorkspaceSize(Handle, Filter, Tensor, Conv, Tensor, int, size_t*);
int cudnnGetConvolutionBackwardFilterWorkspaceSize(Handle, Tensor, Tensor, Conv, Filter, int, size_t*);
int cudnnConvolutionForward(Handle, const void*, Tensor, const void*, Filter, const void*, Conv, int, void*, size_t,
                            const void*, Tensor, void*);
int cudnnConvolutionBackwardData(Handle, const void*, Filter, const void*, Tensor, const void*, Conv, int, void*,
                                 size_t, const void*, Tensor, void*);
int cudnnConvolutionBackwardFilter(Handle, const void*, Tensor, const void*, Tensor, const void*, Conv, int, void*,
                                   size_t, const void*, Filter, void*);
}

namespace {

constexpr int IMPLICIT_GEMM = 0, FWD_FFT = 4, BWD_ALGO_1 = 1;

struct Shape {
    int N, C, H, W, K, R, S, pad, stride, dil, groups;
    bool flip = false, nhwc = false, tf32 = false;
    int OH() const { return (H + 2 * pad - (R - 1) * dil - 1) / stride + 1; }
    int OW() const { return (W + 2 * pad - (S - 1) * dil - 1) / stride + 1; }
};

// Logical NCHW index -> offset in memory for the layout under test.
size_t at(const Shape& s, int n, int c, int h, int w, int C, int H, int W) {
    return s.nhwc ? ((size_t(n) * H + h) * W + w) * C + c : ((size_t(n) * C + c) * H + h) * W + w;
}

// Forward, backward-data and backward-filter references from one pass over every
// (output, filter tap) pair, in double, with |term| sums for the tolerances.
struct Ref {
    std::vector<double> y, ymag, dx, dxmag, dw, dwmag;
};

Ref reference(const Shape& s, const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& dy) {
    auto rd = [&](float v) { return s.tf32 ? test::tf32_ref(v) : double(v); };
    const int Cg = s.C / s.groups, Kg = s.K / s.groups, OH = s.OH(), OW = s.OW();
    Ref r;
    r.y.assign(size_t(s.N) * s.K * OH * OW, 0), r.ymag = r.y;
    r.dx.assign(x.size(), 0), r.dxmag = r.dx;
    r.dw.assign(w.size(), 0), r.dwmag = r.dw;
    for (int n = 0; n < s.N; ++n)
        for (int k = 0; k < s.K; ++k)
            for (int oh = 0; oh < OH; ++oh)
                for (int ow = 0; ow < OW; ++ow)
                    for (int c = 0; c < Cg; ++c)
                        for (int i = 0; i < s.R; ++i)
                            for (int j = 0; j < s.S; ++j) {
                                const int ih = oh * s.stride - s.pad + i * s.dil, iw = ow * s.stride - s.pad + j * s.dil;
                                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                                const int fi = s.flip ? s.R - 1 - i : i, fj = s.flip ? s.S - 1 - j : j;
                                const size_t xi = at(s, n, (k / Kg) * Cg + c, ih, iw, s.C, s.H, s.W);
                                const size_t wi = s.nhwc ? ((size_t(k) * s.R + fi) * s.S + fj) * Cg + c
                                                         : ((size_t(k) * Cg + c) * s.R + fi) * s.S + fj;
                                const size_t yi = at(s, n, k, oh, ow, s.K, OH, OW);
                                const double xv = rd(x[xi]), wv = rd(w[wi]), gv = rd(dy[yi]);
                                const double dyv = s.tf32 ? gv : double(dy[yi]);
                                r.y[yi] += wv * xv, r.ymag[yi] += std::fabs(wv * xv);
                                r.dx[xi] += wv * dyv, r.dxmag[xi] += std::fabs(wv * dyv);
                                r.dw[wi] += dyv * xv, r.dwmag[wi] += std::fabs(dyv * xv);
                            }
    return r;
}

struct Descs {
    Tensor x, y;
    Filter w;
    Conv conv;
};

Descs describe(const Shape& s) {
    Descs d;
    const int fmt = s.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    cudnnCreateTensorDescriptor(&d.x);
    cudnnCreateTensorDescriptor(&d.y);
    cudnnCreateFilterDescriptor(&d.w);
    cudnnCreateConvolutionDescriptor(&d.conv);
    test::expect_status(cudnnSetTensor4dDescriptor(d.x, fmt, CUDNN_DATA_FLOAT, s.N, s.C, s.H, s.W), 0, "x desc");
    test::expect_status(cudnnSetTensor4dDescriptor(d.y, fmt, CUDNN_DATA_FLOAT, s.N, s.K, s.OH(), s.OW()), 0, "y desc");
    test::expect_status(cudnnSetFilter4dDescriptor(d.w, CUDNN_DATA_FLOAT, fmt, s.K, s.C / s.groups, s.R, s.S), 0,
                        "w desc");
    test::expect_status(cudnnSetConvolution2dDescriptor(d.conv, s.pad, s.pad, s.stride, s.stride, s.dil, s.dil,
                                                        s.flip ? CUDNN_CONVOLUTION : CUDNN_CROSS_CORRELATION,
                                                        CUDNN_DATA_FLOAT),
                        0, "conv desc");
    test::expect_status(cudnnSetConvolutionGroupCount(d.conv, s.groups), 0, "groups");
    test::expect_status(cudnnSetConvolutionMathType(d.conv, s.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH), 0, "math");
    return d;
}

void release(Descs& d) {
    cudnnDestroyTensorDescriptor(d.x);
    cudnnDestroyTensorDescriptor(d.y);
    cudnnDestroyFilterDescriptor(d.w);
    cudnnDestroyConvolutionDescriptor(d.conv);
}

// Runs the three convolutions of one shape twice: alpha 1, beta 0 over NaN, then alpha -0.5,
// beta 2 over random old outputs.
void check(Handle h, const Shape& s, const std::string& name) {
    Descs d = describe(s);
    int n, c, oh, ow;
    test::expect_status(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &c, &oh, &ow), 0, "output dim");
    test::expect(n == s.N && c == s.K && oh == s.OH() && ow == s.OW(), "output dims");

    int count = 0;
    AlgoPerf fwd[8], bwd_data[6], bwd_filter[7];
    test::expect_status(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, 8, &count, fwd), 0, "fwd algo");
    test::expect(count == 8 && fwd[0].status == 0 && fwd[0].algo == IMPLICIT_GEMM, "fwd algo list");
    test::expect_status(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, 6, &count, bwd_data), 0,
                        "bwd data algo");
    // fastest first, as a GPU often measures: the atomics-based algorithm 0, then deterministic 1
    test::expect(count == 6 && bwd_data[0].status == 0 && bwd_data[0].determinism == CUDNN_NON_DETERMINISTIC &&
                     bwd_data[1].status == 0 && bwd_data[1].determinism == CUDNN_DETERMINISTIC,
                 "bwd data algo list");
    test::expect_status(
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, 7, &count, bwd_filter), 0,
        "bwd filter algo");
    test::expect(count == 7 && bwd_filter[0].status == 0, "bwd filter algo list");
    size_t ws_f = 0, ws_d = 0, ws_w = 0;
    test::expect_status(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, fwd[0].algo, &ws_f), 0,
                        "fwd ws");
    test::expect_status(
        cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, bwd_data[0].algo, &ws_d), 0,
        "bwd data ws");
    test::expect_status(
        cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, bwd_filter[0].algo, &ws_w), 0,
        "bwd filter ws");
    test::expect(fwd[0].memory == ws_f, "perf memory = workspace size");

    const size_t xn = size_t(s.N) * s.C * s.H * s.W, wn = size_t(s.K) * (s.C / s.groups) * s.R * s.S;
    const size_t yn = size_t(s.N) * s.K * s.OH() * s.OW();
    const auto x = test::randoms(xn, 11), w = test::randoms(wn, 12), dy = test::randoms(yn, 13);
    const Ref ref = reference(s, x, w, dy);
    float *dx_in = test::dev_copy(x), *dw_in = test::dev_copy(w), *ddy = test::dev_copy(dy);
    const size_t wsn = std::max({ws_f, ws_d, ws_w});
    void* ws = test::dev_bytes(wsn);

    for (int pass = 0; pass < 2; ++pass) {
        const float alpha = pass ? -0.5f : 1.0f, beta = pass ? 2.0f : 0.0f;
        const std::string tag = name + (pass ? " (alpha -0.5, beta 2)" : "");
        auto old_y = test::randoms(yn, 21), old_dx = test::randoms(xn, 22), old_dw = test::randoms(wn, 23);
        if (!pass)
            for (auto* v : {&old_y, &old_dx, &old_dw})
                for (auto& e : *v) e = NAN;
        auto blend = [&](const std::vector<double>& r, const std::vector<double>& m, const std::vector<float>& old,
                         std::vector<double>& out, std::vector<double>& mag) {
            out.resize(r.size()), mag.resize(r.size());
            for (size_t i = 0; i < r.size(); ++i) {
                const double o = beta == 0 ? 0.0 : beta * double(old[i]);
                out[i] = alpha * r[i] + o, mag[i] = std::fabs(alpha) * m[i] + std::fabs(o);
            }
        };
        std::vector<double> want, mag;
        float* y = test::dev_copy(old_y);
        test::expect_status(cudnnConvolutionForward(h, &alpha, d.x, dx_in, d.w, dw_in, d.conv, fwd[0].algo, ws, wsn,
                                                    &beta, d.y, y),
                            0, (tag + " forward").c_str());
        blend(ref.y, ref.ymag, old_y, want, mag);
        test::expect_close(y, want, mag, (tag + " forward").c_str());

        float* dx = test::dev_copy(old_dx);
        test::expect_status(cudnnConvolutionBackwardData(h, &alpha, d.w, dw_in, d.y, ddy, d.conv, bwd_data[0].algo, ws,
                                                         wsn, &beta, d.x, dx),
                            0, (tag + " backward data").c_str());
        blend(ref.dx, ref.dxmag, old_dx, want, mag);
        test::expect_close(dx, want, mag, (tag + " backward data").c_str());

        float* dw = test::dev_copy(old_dw);
        test::expect_status(cudnnConvolutionBackwardFilter(h, &alpha, d.x, dx_in, d.y, ddy, d.conv, bwd_filter[0].algo,
                                                           ws, wsn, &beta, d.w, dw),
                            0, (tag + " backward filter").c_str());
        blend(ref.dw, ref.dwmag, old_dw, want, mag);
        test::expect_close(dw, want, mag, (tag + " backward filter").c_str());
    }
    release(d);
}

// The error codes: bad and unset descriptors, mismatched shapes, unsupported types and
// algorithms, a workspace too small or missing.
void errors(Handle h) {
    const Shape s{2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1};
    Descs d = describe(s);
    size_t ws = 0;
    test::expect_status(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, IMPLICIT_GEMM, &ws), 0,
                        "ws");
    test::expect(ws > 0, "forward workspace is positive");
    float* x = test::dev(2 * 4 * 8 * 8);
    float* w = test::dev(6 * 4 * 9);
    float* y = test::dev(2 * 6 * 8 * 8);
    void* buf = test::dev_bytes(ws);
    const float one = 1, zero = 0;
    auto fwd = [&](Tensor xd, Filter wd, Conv cd, Tensor yd, int algo, void* wsp, size_t wsn) {
        return cudnnConvolutionForward(h, &one, xd, x, wd, w, cd, algo, wsp, wsn, &zero, yd, y);
    };
    test::expect_status(fwd(d.x, d.w, d.conv, d.y, IMPLICIT_GEMM, buf, ws), 0, "valid forward");
    test::expect_status(fwd(d.x, d.w, d.conv, d.y, IMPLICIT_GEMM, buf, ws - 1), CUDNN_STATUS_BAD_PARAM,
                        "workspace one byte short");
    test::expect_status(fwd(d.x, d.w, d.conv, d.y, IMPLICIT_GEMM, nullptr, 0), CUDNN_STATUS_BAD_PARAM,
                        "no workspace");
    test::expect_status(fwd(d.x, d.w, d.conv, d.y, FWD_FFT, buf, ws), CUDNN_STATUS_NOT_SUPPORTED, "FFT algorithm");
    test::expect_status(fwd(d.x, d.w, d.conv, d.y, 99, buf, ws), CUDNN_STATUS_BAD_PARAM, "algorithm out of range");
    size_t dummy;
    test::expect_status(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, FWD_FFT, &dummy),
                        CUDNN_STATUS_NOT_SUPPORTED, "FFT workspace");

    // input channels that the filter (4 per group) does not match
    Tensor bad_x;
    cudnnCreateTensorDescriptor(&bad_x);
    test::expect_status(cudnnSetTensor4dDescriptor(bad_x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 5, 8, 8), 0,
                        "bad x desc");
    test::expect_status(fwd(bad_x, d.w, d.conv, d.y, IMPLICIT_GEMM, buf, ws), CUDNN_STATUS_BAD_PARAM,
                        "channel mismatch");
    int count;
    AlgoPerf perf[8];
    test::expect_status(cudnnGetConvolutionForwardAlgorithm_v7(h, bad_x, d.w, d.conv, d.y, 8, &count, perf),
                        CUDNN_STATUS_BAD_PARAM, "channel mismatch in the algorithm query");
    test::expect_status(cudnnGetConvolutionForwardWorkspaceSize(h, bad_x, d.w, d.conv, d.y, IMPLICIT_GEMM, &dummy),
                        CUDNN_STATUS_BAD_PARAM, "channel mismatch in the workspace query");
    // the output's spatial size is not the convolution's
    Tensor bad_y;
    cudnnCreateTensorDescriptor(&bad_y);
    cudnnSetTensor4dDescriptor(bad_y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 6, 7, 8);
    test::expect_status(fwd(d.x, d.w, d.conv, bad_y, IMPLICIT_GEMM, buf, ws), CUDNN_STATUS_NOT_SUPPORTED,
                        "output size mismatch");
    // groups that do not divide the channels
    test::expect_status(cudnnSetConvolutionGroupCount(d.conv, 4), 0, "4 groups");
    test::expect_status(fwd(d.x, d.w, d.conv, d.y, IMPLICIT_GEMM, buf, ws), CUDNN_STATUS_BAD_PARAM,
                        "groups inconsistent with filter");
    test::expect_status(cudnnSetConvolutionGroupCount(d.conv, 0), CUDNN_STATUS_BAD_PARAM, "0 groups");
    test::expect_status(cudnnSetConvolutionGroupCount(d.conv, 1), 0, "1 group");
    // double data: a valid descriptor, an unsupported convolution
    Tensor dbl;
    cudnnCreateTensorDescriptor(&dbl);
    test::expect_status(cudnnSetTensor4dDescriptor(dbl, CUDNN_TENSOR_NCHW, 1, 2, 4, 8, 8), 0, "double desc");
    test::expect_status(fwd(dbl, d.w, d.conv, d.y, IMPLICIT_GEMM, buf, ws), CUDNN_STATUS_BAD_PARAM,
                        "mixed data types");
    // a descriptor created but never set
    Tensor unset;
    cudnnCreateTensorDescriptor(&unset);
    test::expect_status(fwd(unset, d.w, d.conv, d.y, IMPLICIT_GEMM, buf, ws), CUDNN_STATUS_BAD_PARAM,
                        "unset descriptor");
    // setters reject nonsense
    test::expect_status(cudnnSetTensor4dDescriptor(unset, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, -1, 8, 8),
                        CUDNN_STATUS_BAD_PARAM, "negative dim");
    test::expect_status(cudnnSetTensor4dDescriptor(unset, 7, CUDNN_DATA_FLOAT, 2, 1, 8, 8), CUDNN_STATUS_BAD_PARAM,
                        "bad format");
    test::expect_status(cudnnSetConvolution2dDescriptor(d.conv, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, 0),
                        CUDNN_STATUS_BAD_PARAM, "stride 0");
    test::expect_status(cudnnSetConvolutionMathType(d.conv, 9), CUDNN_STATUS_BAD_PARAM, "bad math type");
    // a filter larger than the padded input
    Filter big;
    cudnnCreateFilterDescriptor(&big);
    cudnnSetFilter4dDescriptor(big, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 6, 4, 11, 11);
    test::expect_status(fwd(d.x, big, d.conv, d.y, IMPLICIT_GEMM, buf, ws), CUDNN_STATUS_BAD_PARAM,
                        "filter larger than the padded input");
    // the backward passes check their workspace too
    size_t wsd = 0, wsw = 0;
    cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, BWD_ALGO_1, &wsd);
    cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, BWD_ALGO_1, &wsw);
    void* bufd = test::dev_bytes(wsd);
    void* bufw = test::dev_bytes(wsw);
    test::expect_status(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, y, d.conv, BWD_ALGO_1, bufd, wsd - 8,
                                                     &zero, d.x, x),
                        CUDNN_STATUS_BAD_PARAM, "backward data workspace short");
    test::expect_status(cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, y, d.conv, BWD_ALGO_1, bufw, wsw - 8,
                                                       &zero, d.w, w),
                        CUDNN_STATUS_BAD_PARAM, "backward filter workspace short");
    test::expect_status(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, y, d.conv, 2, bufd, wsd, &zero, d.x, x),
                        CUDNN_STATUS_NOT_SUPPORTED, "backward data FFT");

    // FindEx runs into y and reports a too-small workspace per algorithm
    test::expect_status(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x, d.w, w, d.conv, d.y, y, 8, &count, perf, buf,
                                                               ws),
                        0, "FindEx");
    test::expect(count == 8 && perf[0].status == 0 && perf[3].status == CUDNN_STATUS_NOT_SUPPORTED, "FindEx list");
    test::expect_status(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x, d.w, w, d.conv, d.y, y, 8, &count, perf, buf,
                                                               8),
                        0, "FindEx small workspace");
    test::expect(perf[0].status == CUDNN_STATUS_ALLOC_FAILED, "FindEx small workspace marks ALLOC_FAILED");

    cudnnDestroyTensorDescriptor(bad_x);
    cudnnDestroyTensorDescriptor(bad_y);
    cudnnDestroyTensorDescriptor(dbl);
    cudnnDestroyTensorDescriptor(unset);
    cudnnDestroyFilterDescriptor(big);
    release(d);
}

// A forward whose x (or workspace) is one element (byte) past its allocation: must abort.
int out_of_bounds(Handle h, bool workspace) {
    const Shape s{1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1};
    Descs d = describe(s);
    size_t ws = 0;
    cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, IMPLICIT_GEMM, &ws);
    float* x = test::dev(workspace ? 32 : 31);
    float* w = test::dev(36);
    float* y = test::dev(32);
    void* buf = test::dev_bytes(ws);
    const float one = 1, zero = 0;
    cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv, IMPLICIT_GEMM, buf, workspace ? ws + 1 : ws, &zero, d.y,
                            y);
    std::fprintf(stderr, "oob call returned\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Handle h;
    test::expect_status(cudnnCreate(&h), 0, "create");
    test::expect_status(cudnnSetStream(h, nullptr), 0, "set stream");
    test::expect(cudnnGetVersion() >= 90000, "version 9.x");
    if (argc > 1) return out_of_bounds(h, std::string(argv[1]) == "oob-ws");

    //          N   C   H   W   K  R  S pad str dil groups
    check(h, {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1}, "3x3 pad 1 stride 1");
    check(h, {2, 4, 9, 8, 6, 3, 3, 1, 2, 1, 1}, "3x3 pad 1 stride 2");
    check(h, {2, 4, 8, 8, 6, 3, 3, 0, 1, 1, 1}, "3x3 pad 0");
    check(h, {1, 8, 5, 5, 8, 3, 3, 1, 1, 1, 8}, "depthwise 3x3");
    check(h, {2, 6, 6, 7, 4, 1, 1, 0, 2, 1, 2}, "1x1 stride 2, 2 groups");
    check(h, {2, 8, 8, 8, 16, 1, 1, 0, 1, 1, 1}, "1x1");
    check(h, {1, 4, 9, 9, 4, 3, 3, 1, 1, 2, 1}, "3x3 dilation 2");
    Shape flipped{2, 3, 7, 6, 4, 3, 2, 1, 1, 1, 1};
    flipped.flip = true;
    check(h, flipped, "true convolution (CUDNN_CONVOLUTION), 3x2");
    Shape nhwc{2, 4, 9, 8, 6, 3, 3, 1, 2, 1, 2};
    nhwc.nhwc = true;
    check(h, nhwc, "NHWC tensors and filter, 2 groups");
    Shape tf{2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 1};
    tf.tf32 = true;
    check(h, tf, "TF32 (CUDNN_DEFAULT_MATH)");
    check(h, {4, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1}, "ResNet-18 block 3x3 (64 ch, 16x16)");
    check(h, {4, 32, 16, 16, 64, 1, 1, 0, 2, 1, 1}, "WideResNet shortcut 1x1 stride 2");
    errors(h);
    test::expect_status(cudnnDestroy(h), 0, "destroy");
    return test::finish("blas_dnn_conv");
}
