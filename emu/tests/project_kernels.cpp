// Kernels of kernels/*.cu (compiled into the libcuda stand-in) against plain C++ references that
// follow the same operation order, so results must match bit for bit. Prints a hash of every
// output, for comparing runs under two seeds. Exit status 1 and a message on a mismatch.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda_emu.h"
#include "harness.h"

static uint64_t hash = 1469598103934665603ull;
static int failures = 0;

template <class T>
static void expect_same(const char* what, const std::vector<T>& got, const std::vector<T>& want) {
    hash = hash_bits(got, hash);
    for (size_t i = 0; i < want.size(); i++)
        if (memcmp(&got[i], &want[i], sizeof(T)) != 0) {
            fprintf(stderr, "%s: element %zu is %.17g, the reference %.17g\n", what, i, (double)got[i],
                    (double)want[i]);
            failures++;
            return;
        }
}

// The order of block_sum (kernels/common.cuh): a shuffle tree per warp, then the warps in order.
static double block_sum_ref(std::vector<double> v) {
    double s = 0.0;
    for (size_t w = 0; w < v.size() / 32; w++) {
        double* lane = &v[w * 32];
        for (int o = 16; o > 0; o >>= 1)
            for (int l = 0; l + o < 32; l++) lane[l] += lane[l + o];
        s += lane[0];
    }
    return s;
}

// Both passes of the batch statistics on a channel x slice grid (3 images in slices of 2), each
// block's threads walking their values in the kernel's order, then the slices added in order.
static void bn_slice_sums() {
    const int n = 3, c = 5, hw = 37, per = 2, slices = 2, threads = 256;
    uint64_t s = 1;
    std::vector<float> x(n * c * hw);
    for (float& v : x) v = uniform(s, -2, 3);
    std::vector<double> sum(c);
    for (int ch = 0; ch < c; ch++) sum[ch] = uniform(s, -50, 50);
    const double count = 111.0;
    CUdeviceptr dx = upload(x), dsum = upload(sum), dpart = upload(std::vector<double>(c * slices));
    for (int squares = 0; squares < 2; squares++) {
        std::vector<double> want(c * slices);
        for (int ch = 0; ch < c; ch++)
            for (int sl = 0; sl < slices; sl++) {
                int k0 = sl * per, k1 = std::min(n, k0 + per), m = (k1 - k0) * hw;
                std::vector<double> part(threads, 0.0);
                for (int t = 0; t < threads; t++)
                    for (int i = t; i < m; i += threads) {
                        double v = x[((k0 + i / hw) * c + ch) * hw + i % hw];
                        double d = squares ? v - sum[ch] / count : v;
                        part[t] += squares ? d * d : d;
                    }
                want[ch * slices + sl] = block_sum_ref(part);
            }
        OK(launch(function("bn_slice_sums"), {slices, c, 1}, {threads, 1, 1}, dx, n, c, hw, per, squares, dsum, count,
                  dpart));
        expect_same(squares ? "bn_slice_sums of squares" : "bn_slice_sums", download<double>(dpart, c * slices), want);
    }
}

static void pgd_step() {
    const int n = 1000;
    uint64_t s = 2;
    std::vector<float> xa(n), g(n), x0(n);
    for (int i = 0; i < n; i++) {
        x0[i] = uniform(s, 0, 1);
        xa[i] = x0[i] + uniform(s, -0.03f, 0.03f);
        g[i] = i % 7 == 0 ? 0.f : uniform(s, -1, 1);
    }
    float alpha = 2.f / 255, eps = 8.f / 255;
    std::vector<float> want(n);
    for (int i = 0; i < n; i++) {
        float step = g[i] > 0.f ? alpha : (g[i] < 0.f ? -alpha : 0.f);
        want[i] = fminf(fmaxf(fminf(fmaxf(xa[i] + step, x0[i] - eps), x0[i] + eps), 0.f), 1.f);
    }
    CUdeviceptr dxa = upload(xa), dg = upload(g), dx0 = upload(x0);
    OK(launch(function("pgd_step"), {3, 1, 1}, {128, 1, 1}, dxa, dg, dx0, alpha, eps, n));
    expect_same("pgd_step", download<float>(dxa, n), want);
}

static void avgpool_fwd() {
    const int hw = 49, planes = 21;
    uint64_t s = 3;
    std::vector<float> x(planes * hw);
    for (float& v : x) v = uniform(s, -1, 1);
    std::vector<float> want(planes);
    for (int p = 0; p < planes; p++) {
        std::vector<double> lane(32, 0.0);
        for (int l = 0; l < 32; l++)
            for (int i = l; i < hw; i += 32) lane[l] += x[p * hw + i];
        for (int o = 16; o > 0; o >>= 1)
            for (int l = 0; l + o < 32; l++) lane[l] += lane[l + o];
        want[p] = (float)(lane[0] / hw);
    }
    CUdeviceptr dx = upload(x), dy = upload(std::vector<float>(planes));
    // 2 blocks of 4 warps: 8 warps stride over the 21 planes.
    OK(launch(function("avgpool_fwd"), {2, 1, 1}, {128, 1, 1}, dx, dy, hw, planes));
    expect_same("avgpool_fwd", download<float>(dy, planes), want);
}

static void sgd_update() {
    const std::vector<int> lens = {300, 7, 1025};
    float lr = 0.05f, momentum = 0.9f, wd = 5e-4f;
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        uint64_t s = 4 + nesterov;
        std::vector<CUdeviceptr> ps, gs, bs;
        std::vector<std::vector<float>> want;
        for (int n : lens) {
            std::vector<float> p(n), g(n), b(n);
            for (int i = 0; i < n; i++) p[i] = uniform(s, -1, 1), g[i] = uniform(s, -1, 1), b[i] = uniform(s, -1, 1);
            ps.push_back(upload(p)), gs.push_back(upload(g)), bs.push_back(upload(b));
            for (int i = 0; i < n; i++) {
                float d = g[i] + wd * p[i];
                b[i] = momentum * b[i] + d;
                float u = nesterov ? d + momentum * b[i] : b[i];
                p[i] -= lr * u;
            }
            want.push_back(p);
        }
        // one table: every parameter's address, every gradient's, every buffer's, every length
        std::vector<uint64_t> table;
        for (const auto* part : {&ps, &gs, &bs}) table.insert(table.end(), part->begin(), part->end());
        for (int n : lens) table.push_back((uint64_t)n);
        const int tensors = (int)lens.size();
        OK(launch(function("sgd_update"), {2, (unsigned)tensors, 1}, {256, 1, 1}, upload(table), tensors, lr, momentum,
                  wd, nesterov));
        for (size_t k = 0; k < lens.size(); k++) expect_same("sgd_update", download<float>(ps[k], lens[k]), want[k]);
    }
}

int main() {
    start();
    bn_slice_sums();
    pgd_step();
    avgpool_fwd();
    sgd_update();
    printf("%016llx\n", (unsigned long long)hash);
    return failures ? 1 : 0;
}
