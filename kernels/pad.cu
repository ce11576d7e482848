// Zero padding of NCHW planes and its backward, the crop, the twins of src/ops/pad.rs: an (h, w)
// plane sits at (top, left) of a (ph, pw) one.
#include "common.cuh"

// out[n, c, ph, pw]: the input where it lies, 0 around it.
extern "C" __global__ void pad2d(const float* x, float* out, int h, int w, int top, int left, int ph, int pw, int total) {
    FOR_EACH(i, total) {
        int plane = i / (ph * pw), r = (i / pw) % ph - top, col = i % pw - left;
        out[i] = (r >= 0 && r < h && col >= 0 && col < w) ? x[(plane * h + r) * w + col] : 0.f;
    }
}

// out[n, c, h, w]: the (h, w) window at (top, left) of each (ph, pw) plane of g.
extern "C" __global__ void crop2d(const float* g, float* out, int h, int w, int top, int left, int ph, int pw, int total) {
    FOR_EACH(i, total) {
        int plane = i / (h * w), r = (i / w) % h, col = i % w;
        out[i] = g[(plane * ph + r + top) * pw + col + left];
    }
}
