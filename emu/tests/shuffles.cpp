// The shuffles against their CUDA definitions: __shfl_down_sync and __shfl_xor_sync at full width
// and in 8-lane segments, on ints (each lane's own id, so every source is visible) and doubles.
// Exit status 1 and a message on a mismatch.
#include "cuda_emu.h"
#include "harness.h"

__global__ void shuffles(int* down, int* xor_, int* down8, int* xor8, double* butterfly) {
    int lane = threadIdx.x % 32, i = threadIdx.x;
    down[i] = __shfl_down_sync(0xffffffffu, lane, 3);
    xor_[i] = __shfl_xor_sync(0xffffffffu, lane, 5);
    down8[i] = __shfl_down_sync(0xffffffffu, lane, 3, 8);
    xor8[i] = __shfl_xor_sync(0xffffffffu, lane, 12, 8);
    double v = lane;
    for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    butterfly[i] = v;
}
EMU_REGISTER(shuffles);

int main() {
    start();
    const int n = 64;
    CUdeviceptr d[4], b = upload(std::vector<double>(n));
    for (CUdeviceptr& p : d) p = upload(std::vector<int>(n));
    OK(launch(function("shuffles"), {1, 1, 1}, {n, 1, 1}, d[0], d[1], d[2], d[3], b));
    int bad = 0;
    auto expect = [&](const char* what, CUdeviceptr p, auto want) {
        std::vector<int> got = download<int>(p, n);
        for (int i = 0; i < n; i++)
            if (got[i] != want(i % 32)) {
                fprintf(stderr, "%s: lane %d got %d, want %d\n", what, i % 32, got[i], want(i % 32));
                bad = 1;
                return;
            }
    };
    // A source outside the (segment of the) warp leaves the caller's own value; xor may only reach
    // within the caller's segment or below.
    expect("down 3", d[0], [](int l) { return l + 3 < 32 ? l + 3 : l; });
    expect("xor 5", d[1], [](int l) { return l ^ 5; });
    expect("down 3 width 8", d[2], [](int l) { return l % 8 + 3 < 8 ? l + 3 : l; });
    expect("xor 12 width 8", d[3], [](int l) { return (l ^ 12) < (l / 8 + 1) * 8 ? l ^ 12 : l; });
    for (double v : download<double>(b, n))
        if (v != 496.0) {
            fprintf(stderr, "butterfly sum %g, want 496\n", v);
            bad = 1;
            break;
        }
    return bad;
}
