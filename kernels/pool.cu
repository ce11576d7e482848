// Max-pool 2x2 stride 2 (floor mode) and global average pooling, twins of src/ops/pool.rs.
#include "common.cuh"

// One thread per output; idx holds the chosen input's index inside its plane (the first maximum
// in scan order; a NaN wins, as in PyTorch).
extern "C" __global__ void maxpool2_fwd(const float* x, float* y, unsigned* idx, int h, int w, int planes) {
    int oh = h / 2, ow = w / 2;
    FOR_EACH(o, planes * oh * ow) {
        int p = o / (oh * ow), r = o % (oh * ow), oy = r / ow, ox = r % ow;
        const float* xp = x + (long)p * h * w;
        int best = 2 * oy * w + 2 * ox;
        int cand[3] = {best + 1, best + w, best + w + 1};
        for (int k = 0; k < 3; k++)
            if (xp[cand[k]] > xp[best] || isnan(xp[cand[k]])) best = cand[k];
        y[o] = xp[best];
        idx[o] = best;
    }
}

// gx must be zeroed: windows do not overlap, so each output writes its one input.
extern "C" __global__ void maxpool2_bwd(const float* gy, const unsigned* idx, float* gx, int h, int w, int planes) {
    int opix = (h / 2) * (w / 2);
    FOR_EACH(o, planes * opix) gx[(long)(o / opix) * h * w + idx[o]] = gy[o];
}

// One warp per plane (grid-stride over planes), in double.
extern "C" __global__ void avgpool_fwd(const float* x, float* y, int hw, int planes) {
    int lane = threadIdx.x & 31, warps = (gridDim.x * blockDim.x) >> 5;
    for (int p = (blockIdx.x * blockDim.x + threadIdx.x) >> 5; p < planes; p += warps) {
        double s = 0.0;
        for (int i = lane; i < hw; i += 32) s += x[(long)p * hw + i];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
        if (lane == 0) y[p] = (float)(s / hw);
    }
}

extern "C" __global__ void avgpool_bwd(const float* gy, float* gx, int hw, int planes) {
    for_each_channel(planes * hw, planes, hw, [&](int i, int plane) { gx[i] = gy[plane] / (float)hw; });
}
