// The three convolutions as direct loops (no im2col): each keeps its sums in the workspace as
// doubles, the innermost loop running along a row of the output (forward, backward-filter) or of
// dy (backward-data) and adding into a row of independent sums.
//
// Numerics: products of two floats are exact in double; every result sums them in a fixed order,
// then alpha and beta are applied in double and it is rounded once to float:
//   forward:         y(n,k,oh,ow)  over (c, r, s) in increasing order;
//   backward-data:   dx(n,c,h,w)   over (k, r, s) in increasing order;
//   backward-filter: dw(k,c,r,s)   one partial sum per output column ow over (n, oh) in increasing
//                    order, then the columns summed in increasing ow.
#include <algorithm>

#include "blas_dnn.h"

namespace {

// Outputs o in [lo, hi) whose input tap o*stride + off lands in [0, in).
void taps(int in, int off, int stride, int out, int& lo, int& hi) {
    lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    const int last = in - 1 - off;  // o*stride <= last
    hi = last < 0 ? 0 : std::min(out, last / stride + 1);
    hi = std::max(hi, lo);
}

// Where filter tap (k, c, r, s) is stored: CUDNN_CONVOLUTION applies the filter rotated.
long widx(const ConvProblem& p, int k, int c, int r, int s) {
    if (p.flip) r = p.R - 1 - r, s = p.S - 1 - s;
    return k * p.fs[0] + c * p.fs[1] + r * p.fs[2] + s * p.fs[3];
}

// Stride 1 over packed rows (NCHW): the innermost loops then index both sides by ow directly,
// which the compiler turns into plain sequential loads (about 1.7x faster than the general form).
bool contiguous_rows(const ConvProblem& p) { return p.sw == 1 && p.xs[3] == 1 && p.ys[3] == 1; }

}  // namespace

void conv_forward(const ConvProblem& p, double alpha, const float* x, const float* w, double beta, float* y,
                  double* acc) {
    const size_t plane = static_cast<size_t>(p.OH) * p.OW;
    const bool unit = contiguous_rows(p);
    for (int n = 0; n < p.N; ++n) {
        for (int k = 0; k < p.K; ++k) {
            const int g = k / p.Kg;
            std::fill(acc, acc + plane, 0.0);
            for (int c = 0; c < p.Cg; ++c) {
                const float* xc = x + n * p.xs[0] + (g * p.Cg + c) * p.xs[1];
                for (int r = 0; r < p.R; ++r) {
                    const int offh = r * p.dh - p.ph;
                    int oh0, oh1;
                    taps(p.H, offh, p.sh, p.OH, oh0, oh1);
                    for (int s = 0; s < p.S; ++s) {
                        const int offw = s * p.dw - p.pw;
                        int ow0, ow1;
                        taps(p.W, offw, p.sw, p.OW, ow0, ow1);
                        const double wv = w[widx(p, k, c, r, s)];
                        for (int oh = oh0; oh < oh1; ++oh) {
                            const float* xr = xc + (oh * p.sh + offh) * p.xs[2];
                            double* ar = acc + static_cast<size_t>(oh) * p.OW;
                            if (unit) {
                                for (int ow = ow0; ow < ow1; ++ow) ar[ow] += wv * xr[ow + offw];
                            } else {
                                for (int ow = ow0; ow < ow1; ++ow) ar[ow] += wv * xr[(ow * p.sw + offw) * p.xs[3]];
                            }
                        }
                    }
                }
            }
            float* yk = y + n * p.ys[0] + k * p.ys[1];
            for (int oh = 0; oh < p.OH; ++oh)
                for (int ow = 0; ow < p.OW; ++ow) {
                    float* o = yk + oh * p.ys[2] + ow * p.ys[3];
                    *o = blend(alpha, acc[static_cast<size_t>(oh) * p.OW + ow], beta, o);
                }
        }
    }
}

void conv_backward_data(const ConvProblem& p, double alpha, const float* dy, const float* w, double beta, float* dx,
                        double* acc) {
    const size_t plane = static_cast<size_t>(p.H) * p.W;
    const bool unit = contiguous_rows(p);
    for (int n = 0; n < p.N; ++n) {
        for (int ci = 0; ci < p.C; ++ci) {
            const int g = ci / p.Cg, c = ci % p.Cg;
            std::fill(acc, acc + plane, 0.0);
            for (int kk = 0; kk < p.Kg; ++kk) {
                const int k = g * p.Kg + kk;
                const float* dyk = dy + n * p.ys[0] + k * p.ys[1];
                for (int r = 0; r < p.R; ++r) {
                    const int offh = r * p.dh - p.ph;
                    int oh0, oh1;
                    taps(p.H, offh, p.sh, p.OH, oh0, oh1);
                    for (int s = 0; s < p.S; ++s) {
                        const int offw = s * p.dw - p.pw;
                        int ow0, ow1;
                        taps(p.W, offw, p.sw, p.OW, ow0, ow1);
                        const double wv = w[widx(p, k, c, r, s)];
                        for (int oh = oh0; oh < oh1; ++oh) {
                            double* ar = acc + static_cast<size_t>(oh * p.sh + offh) * p.W;
                            const float* dr = dyk + oh * p.ys[2];
                            if (unit) {
                                for (int ow = ow0; ow < ow1; ++ow) ar[ow + offw] += wv * dr[ow];
                            } else {
                                for (int ow = ow0; ow < ow1; ++ow) ar[ow * p.sw + offw] += wv * dr[ow * p.ys[3]];
                            }
                        }
                    }
                }
            }
            float* xc = dx + n * p.xs[0] + ci * p.xs[1];
            for (int h = 0; h < p.H; ++h)
                for (int iw = 0; iw < p.W; ++iw) {
                    float* o = xc + h * p.xs[2] + iw * p.xs[3];
                    *o = blend(alpha, acc[static_cast<size_t>(h) * p.W + iw], beta, o);
                }
        }
    }
}

void conv_backward_filter(const ConvProblem& p, double alpha, const float* x, const float* dy, double beta, float* dw,
                          double* acc) {
    const bool unit = contiguous_rows(p);
    const size_t taps_n = static_cast<size_t>(p.R) * p.S;
    for (int k = 0; k < p.K; ++k) {
        const int g = k / p.Kg;
        for (int c = 0; c < p.Cg; ++c) {
            // one row of OW partial sums per tap: no chain of dependent additions in the inner loop
            std::fill(acc, acc + taps_n * p.OW, 0.0);
            for (int n = 0; n < p.N; ++n) {
                const float* xc = x + n * p.xs[0] + (g * p.Cg + c) * p.xs[1];
                const float* dyk = dy + n * p.ys[0] + k * p.ys[1];
                for (int r = 0; r < p.R; ++r) {
                    const int offh = r * p.dh - p.ph;
                    int oh0, oh1;
                    taps(p.H, offh, p.sh, p.OH, oh0, oh1);
                    for (int s = 0; s < p.S; ++s) {
                        const int offw = s * p.dw - p.pw;
                        int ow0, ow1;
                        taps(p.W, offw, p.sw, p.OW, ow0, ow1);
                        double* ar = acc + (static_cast<size_t>(r) * p.S + s) * p.OW;
                        for (int oh = oh0; oh < oh1; ++oh) {
                            const float* xr = xc + (oh * p.sh + offh) * p.xs[2];
                            const float* dr = dyk + oh * p.ys[2];
                            if (unit) {
                                for (int ow = ow0; ow < ow1; ++ow) ar[ow] += static_cast<double>(dr[ow]) * xr[ow + offw];
                            } else {
                                for (int ow = ow0; ow < ow1; ++ow)
                                    ar[ow] += static_cast<double>(dr[ow * p.ys[3]]) * xr[(ow * p.sw + offw) * p.xs[3]];
                            }
                        }
                    }
                }
            }
            for (int r = 0; r < p.R; ++r)
                for (int s = 0; s < p.S; ++s) {
                    const double* ar = acc + (static_cast<size_t>(r) * p.S + s) * p.OW;
                    double sum = 0.0;
                    for (int ow = 0; ow < p.OW; ++ow) sum += ar[ow];
                    float* o = dw + widx(p, k, c, r, s);
                    *o = blend(alpha, sum, beta, o);
                }
        }
    }
}
